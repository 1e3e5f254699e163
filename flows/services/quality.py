"""The quarantine's services: list the suspect points, release one, reconcile vendors.

Why a service: `aitokens check`, `aitokens status` and the study planner read the same
quarantine; the CLI only parses and renders (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse.db import open_reader, open_warehouse, publish_snapshot_of
from warehouse.quality import SuspectPoint, accept, quarantined

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from warehouse.studies import SeriesChoice


def list_suspects(db: str | Path | None) -> list[SuspectPoint]:
    """Every point still quarantined (read from the analysts' snapshot)."""
    with open_reader(db) as con:
        return quarantined(con)


def accept_point(db: str | Path | None, symbol: str, when: str, source: str | None) -> int:
    """Release a quarantined point (one transaction), then republish the snapshot."""
    from warehouse.db import transaction

    with open_warehouse(db) as con, transaction(con):
        n = accept(con, symbol, when, source=source)
    publish_snapshot_of(db)
    return n


def suspect_exclusions(
    found: Mapping[tuple[str, str], list[SuspectPoint]],
    symbol_of: Mapping[tuple[str, str], str],
    *,
    allow_suspect: bool = False,
) -> tuple[set[str], list[str]]:
    """Turn the quarantined points touching a study's windows into (excluded symbols, notes).

    ``found`` is :func:`warehouse.quality.quarantined_in_span` for the study's series and span;
    ``symbol_of`` maps each ``(asset_id, source)`` to the symbol the study knows. With
    ``allow_suspect`` nothing is excluded, and the notes flag the pairs kept."""
    excluded: set[str] = set()
    notes = []
    for key, points in sorted(found.items()):
        symbol = symbol_of.get(key)
        if symbol is None or not points:
            continue
        what = "; ".join(f"{p.when()} {p.check} ({p.reason})" for p in points[:3])
        more = f" and {len(points) - 3} more" if len(points) > 3 else ""
        if allow_suspect:
            notes.append(f"{symbol}: kept with --allow-suspect despite quarantined {what}{more}")
        else:
            excluded.add(symbol)
            notes.append(
                f"{symbol}: excluded, its estimation or event window touches quarantined "
                f"{what}{more} (see aitokens check; --allow-suspect keeps it)"
            )
    return excluded, notes


def study_exclusions(
    con: duckdb.DuckDBPyConnection,
    choices: Mapping[str, SeriesChoice],
    spans: Mapping[str, tuple[date, date]],
    *,
    allow_suspect: bool = False,
) -> tuple[set[str], list[str]]:
    """The planner's one call (coverage step): which of the chosen series have a quarantined
    point inside their calendar's study span (first estimation day .. last event-window day),
    as (symbols to exclude, notes). ``spans`` is the planner's per-calendar span."""
    from warehouse.quality import quarantined_in_span

    found: dict[tuple[str, str], list[SuspectPoint]] = {}
    for cal, (first, last) in spans.items():
        series = [(c.asset_id, c.source) for c in choices.values() if c.calendar == cal]
        found.update(quarantined_in_span(con, series, first, last))
    symbol_of = {(c.asset_id, c.source): s for s, c in choices.items()}
    return suspect_exclusions(found, symbol_of, allow_suspect=allow_suspect)


def quarantine_caveats(db: str | Path | None) -> list[str]:
    """One report caveat per open quarantined point: what the report's studies left out (or
    kept with --allow-suspect)."""
    return [
        f"quarantined and kept out of studies: {p.one_line()}; see aitokens check"
        for p in list_suspects(db)
    ]


def reconcile_sources(db: str | Path | None, tolerance_bp: float) -> pd.DataFrame:
    """Cross-vendor daily disagreement (``warehouse.quality.reconcile``)."""
    from warehouse.quality import reconcile

    with open_reader(db) as con:
        return reconcile(con, tolerance_bp)
