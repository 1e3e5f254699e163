"""Which factor series a study needs and how they reach the engine (``--model factor``).

The planner (:func:`flows.services.study.plan_study`) calls three functions here and nothing
else, so the factor model adds a few lines to it:

* :func:`check_factor_request` refuses a bad combination before anything is read,
* :func:`factor_symbols` names the held series the study must load (series choice and each
  leg's panel get them beside the leg's benchmark),
* :func:`leg_assets` drops the factors from a leg's studied assets (an asset regressed on
  itself has no abnormal return).

The engine receives the factors through :meth:`warehouse.studyspec.StudySpec.engine_kwargs`
(``factors=...``) and finds their returns in the leg's panel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from warehouse.errors import InputError
from warehouse.studyspec import StudySpec

if TYPE_CHECKING:
    import datetime as dt

    import duckdb
    import pandas as pd

    from warehouse.studies import SeriesChoice


def check_factor_request(req: StudySpec) -> None:
    """``--model factor`` needs ``--factors``; ``--factors`` needs ``--model factor``; the
    hourly clock has no factor model yet (the hourly planner loads token series only)."""
    if req.model == "factor" and not req.factors:
        raise InputError("--model factor needs --factors (held symbols, e.g. --factors BTC,NVDA)")
    if req.factors and req.model != "factor":
        raise InputError(
            f"--factors {','.join(req.factors)} needs --model factor (got --model {req.model})"
        )
    if len(set(req.factors)) != len(req.factors):
        raise InputError(f"--factors {','.join(req.factors)} names a symbol twice")
    if req.factors and req.hourly:
        raise InputError("--model factor runs on daily closes only; drop --interval 1h")


def factor_symbols(catalog: pd.DataFrame, req: StudySpec) -> list[str]:
    """The held symbols of ``--factors`` (none for another model); an unknown one is refused
    with close matches, as ``--benchmark`` is."""
    from warehouse.studies import resolve_symbols

    if req.model != "factor":
        return []
    return resolve_symbols(catalog, req.factors, what="--factors")


def leg_assets(syms: Sequence[str], factors: Sequence[str]) -> list[str]:
    """A leg's assets without the factors."""
    return [s for s in syms if s not in set(factors)]


# ------------------------------------------------------------------ built indexes (ALTS)
def _wants_alts(req: StudySpec) -> bool:
    from warehouse.alt_market import ALTS

    return ALTS in {req.benchmark.upper(), *req.factors}


def with_indexes(
    con: duckdb.DuckDBPyConnection, catalog: pd.DataFrame, req: StudySpec
) -> pd.DataFrame:
    """The series catalog plus the row of ``ALTS`` when the study names it (as benchmark or
    factor), so the planner resolves it like a held symbol."""
    import pandas as pd

    from warehouse.alt_market import alt_market_choice

    if not _wants_alts(req):
        return catalog
    choice = alt_market_choice(con)
    if choice is None:
        raise InputError("ALTS needs non-AI coins of class crypto in the warehouse; none is held")
    row = {
        "symbol": choice.symbol,
        "asset_id": choice.asset_id,
        "asset_class": choice.asset_class,
        "calendar": choice.calendar,
        "source": choice.source,
        "first_date": pd.Timestamp(choice.first_date),
        "last_date": pd.Timestamp(choice.last_date),
        "n_obs": choice.n_obs,
    }
    return pd.concat([catalog, pd.DataFrame([row])], ignore_index=True)


def choose_with_indexes(
    con: duckdb.DuckDBPyConnection,
    symbols: Sequence[str],
    *,
    spans: Mapping[str, tuple[dt.date, dt.date]],
    sources: Sequence[str] = (),
) -> dict[str, SeriesChoice]:
    """:func:`warehouse.studies.choose_series`, with ``ALTS`` built in the warehouse."""
    from warehouse.alt_market import ALTS, alt_market_choice
    from warehouse.studies import choose_series

    held = [s for s in symbols if s != ALTS]
    choices = choose_series(con, held, spans=spans, sources=sources)
    if ALTS in symbols:
        alts = alt_market_choice(con)
        if alts is not None:
            choices[ALTS] = alts
    return choices


def load_with_indexes(
    con: duckdb.DuckDBPyConnection, series: Iterable[tuple[str, str]]
) -> pd.DataFrame:
    """:func:`warehouse.studies.load_series`, with the closes of ``ALTS`` when asked for."""
    import pandas as pd

    from warehouse.alt_market import ALTS_ASSET_ID, alt_market_closes
    from warehouse.studies import load_series

    pairs = list(series)
    held = [p for p in pairs if p[0] != ALTS_ASSET_ID]
    panel = load_series(con, held)
    if len(held) == len(pairs):
        return panel
    out = pd.concat([panel, alt_market_closes(con)], ignore_index=True)
    return out.sort_values(["symbol", "date"], kind="stable", ignore_index=True)


__all__ = [
    "check_factor_request",
    "choose_with_indexes",
    "factor_symbols",
    "leg_assets",
    "load_with_indexes",
    "with_indexes",
]
