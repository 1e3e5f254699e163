"""Token lineage for studies: a holding of an old asset continues as its successor.

``asset_lineage`` (migration 010) says that from ``effective_at`` one unit of ``old_symbol`` is
``ratio`` units of ``new_symbol`` (RNDR -> RENDER 1:1; AGIX -> FET at 0.433350 and OCEAN -> FET at
0.433226 on 2024-07-01 03:00 UTC). A study's price panel follows it (:func:`continue_series`):
where the old asset's series stops, from the first day whose close comes after the change on
(the UTC day of ``effective_at``), its closes continue as ``ratio`` times the successor's closes,
so the holding's return series runs on without a break:

.. math:: P^{old}_t = r \\, P^{new}_t \\quad (t \\geq \\max(J, T_{old} + 1)), \\qquad
    R_J = r P^{new}_J / P^{old}_{J-1} - 1

with :math:`J` the join day and :math:`T_{old}` the old series' last day. Rows the old series
holds are never replaced (an exchange may quote the legacy token for a while), and a join is
flagged (the ``lineage`` column; the study prints it). The continued rows carry no market cap
of their own (the holding is part of the successor's network).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import numpy as np
import pandas as pd

LINEAGE_COLUMN = "lineage"


@dataclass(frozen=True)
class LineageChange:
    """One identity change of ``asset_lineage``."""

    old_symbol: str
    new_symbol: str
    ratio: float
    effective_at: dt.datetime  # naive UTC
    kind: str
    source: str

    @property
    def join_day(self) -> dt.date:
        """The first UTC day whose close (its end, 24:00) comes after the change."""
        return self.effective_at.date()


def lineage_changes(con: duckdb.DuckDBPyConnection) -> list[LineageChange]:
    """Every identity change, oldest first (none for a file older than migration 010)."""
    try:
        rows = con.execute(
            "SELECT old_symbol, new_symbol, ratio, effective_at, kind, source FROM asset_lineage "
            "ORDER BY effective_at, old_symbol"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [LineageChange(*r) for r in rows]


_SUCCESSOR = """
WITH counts AS (
    SELECT asset_id, source, count(*) AS n FROM daily_prices
    WHERE symbol = ? AND date >= ? AND date <= ? GROUP BY ALL
)
SELECT p.date, p.close, p.source
FROM daily_prices AS p
JOIN (SELECT asset_id, source FROM counts ORDER BY n DESC, source, asset_id LIMIT 1) AS k
  USING (asset_id, source)
WHERE p.date >= ? AND p.date <= ?
ORDER BY p.date
"""


def continue_series(
    con: duckdb.DuckDBPyConnection,
    panel: pd.DataFrame,
    *,
    date_range: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """``panel`` (long ``date, symbol, asset_id, asset_class, calendar, source, close,
    market_cap``) with each old asset's series continued as its successor's closes times the
    ratio (see the module doc) and a ``lineage`` column: the join's description on continued
    rows, else None. The successor's series is the one with most closes after the join (ties:
    by source name), within ``date_range`` when given."""
    out = panel.copy()
    out[LINEAGE_COLUMN] = None
    if panel.empty:
        return out
    changes = {c.old_symbol: c for c in lineage_changes(con)}
    extra = []
    for symbol, rows in panel.groupby("symbol", sort=False):
        change = changes.get(str(symbol))
        if change is None:
            continue
        last_old = pd.Timestamp(rows["date"].max()).date()
        start = max(change.join_day, last_old + dt.timedelta(days=1))
        stop = dt.date.fromisoformat(str(date_range[1])[:10]) if date_range else dt.date.max
        if start > stop:
            continue
        succ = con.execute(_SUCCESSOR, [change.new_symbol, start, stop, start, stop]).df()
        if succ.empty:
            continue
        first = rows.iloc[0]
        text = (
            f"{symbol} continues as {change.ratio:g} {change.new_symbol} "
            f"({succ['source'].iloc[0]}) from {pd.Timestamp(succ['date'].iloc[0]).date()} "
            f"({change.kind} of {change.effective_at:%Y-%m-%d %H:%M} UTC)"
        )
        cont = pd.DataFrame(
            {
                "date": succ["date"].to_numpy(),
                "symbol": symbol,
                "asset_id": first["asset_id"],
                "asset_class": first["asset_class"],
                "calendar": first["calendar"],
                "source": first["source"],
                "close": succ["close"].to_numpy(float) * change.ratio,
                "market_cap": np.nan,
                LINEAGE_COLUMN: text,
            }
        )
        extra.append(cont[[c for c in out.columns if c in cont.columns]])
    if not extra:
        return out
    joined = pd.concat([out, *extra], ignore_index=True)
    joined["date"] = pd.to_datetime(joined["date"])
    return joined.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def extend_choices(choices: Mapping[str, Any], panel: pd.DataFrame) -> dict[str, Any]:
    """``choices`` (symbol -> :class:`warehouse.studies.SeriesChoice`) with the last date of
    each series continued through its lineage moved to the last continued close, so coverage
    checks see what the study will have."""
    out = dict(choices)
    if LINEAGE_COLUMN not in panel.columns:
        return out
    joined = panel.loc[panel[LINEAGE_COLUMN].notna()]
    for symbol, rows in joined.groupby("symbol"):
        if symbol in out:
            last = pd.Timestamp(rows["date"].max()).date()
            out[symbol] = replace(out[symbol], last_date=max(out[symbol].last_date, last))
    return out


def lineage_notes(panel: pd.DataFrame) -> list[str]:
    """One line per join in ``panel`` (from :func:`continue_series`), for a study's notes."""
    if LINEAGE_COLUMN not in panel.columns:
        return []
    texts = panel[LINEAGE_COLUMN].dropna().unique()
    return [f"lineage: {t}; the return on the join day spans both assets" for t in texts]


__all__ = [
    "LineageChange",
    "continue_series",
    "extend_choices",
    "lineage_changes",
    "lineage_notes",
]
