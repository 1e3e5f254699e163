"""The alt-market index ``ALTS``: the non-AI altcoins held, equal-weighted (issue 23 item 3).

Against BTC alone an AI token's "abnormal" return holds every move all altcoins share; ``ALTS``
is the benchmark (``--benchmark ALTS``) and factor (``--factors BTC,ALTS``) of that common move.

Definition (all in :data:`ALTS_SQL`):

* members: every symbol of asset class ``crypto`` that is in no AI group (``group_members``,
  any group, any date: the groups are sub-sectors of the AI category), so neither
  ``ai_token`` nor a benchmark (``crypto_benchmark``: BTC, ETH) is ever a member;
* each member's series: the source with the most closes (ties: source name), as
  ``choose_series`` would pick without a span;
* the day's return: the equal-weighted mean of the members' simple close-to-close returns over
  consecutive days (a member with a gap sits that day out), on days with at least
  :data:`MIN_MEMBERS` members; equal weights because caps are missing for most Binance coins
  (cap weights need a cap for every member every day);
* the close: the index level :math:`\\prod_t (1 + r_t)`, starting at 1 the day before the first
  return, so the engine's returns from closes give back exactly :math:`r_t` (simple returns;
  log returns are :math:`\\ln(1 + r_t)`).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from warehouse.studies import SeriesChoice

ALTS = "ALTS"
ALTS_ASSET_ID = "index:alts"
ALTS_SOURCE = "warehouse_index"
MIN_MEMBERS = 5
"""Fewest members with a return for the index to have one that day."""

ALTS_SQL = """
WITH members AS (
    SELECT DISTINCT symbol FROM daily_prices WHERE asset_class = 'crypto'
    EXCEPT SELECT symbol FROM group_members
),
counts AS (
    SELECT symbol, asset_id, source, count(*) AS n FROM daily_prices
    JOIN members USING (symbol) GROUP BY ALL
),
one AS (
    SELECT symbol, asset_id, source FROM counts
    QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY n DESC, source, asset_id) = 1
),
rets AS (
    SELECT p.date,
        p.close / lag(p.close) OVER w - 1 AS r,
        date_diff('day', lag(p.date) OVER w, p.date) AS gap
    FROM daily_prices AS p JOIN one USING (symbol, asset_id, source)
    WINDOW w AS (PARTITION BY p.symbol ORDER BY p.date)
),
daily AS (
    SELECT date, avg(r) AS r, count(*) AS n FROM rets
    WHERE r IS NOT NULL AND gap = 1 GROUP BY date HAVING count(*) >= ?
),
levels AS (
    SELECT date, exp(sum(ln(1 + r)) OVER (ORDER BY date)) AS close, n FROM daily
)
SELECT (SELECT min(date) FROM daily) - INTERVAL 1 DAY AS date, 1.0 AS close, 0 AS n
WHERE EXISTS (SELECT 1 FROM daily)
UNION ALL SELECT date, close, n FROM levels
ORDER BY date
"""


def alt_market_closes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """ALTS as long closes in :func:`warehouse.studies.load_series`' columns (no cap)."""
    df = con.execute(ALTS_SQL, [MIN_MEMBERS]).df()
    df["date"] = pd.to_datetime(df["date"]).dt.date
    return pd.DataFrame(
        {
            "date": pd.to_datetime(df["date"]),
            "symbol": ALTS,
            "asset_id": ALTS_ASSET_ID,
            "asset_class": "crypto_benchmark",
            "calendar": "crypto",
            "source": ALTS_SOURCE,
            "close": df["close"].astype(float),
            "market_cap": float("nan"),
        }
    )


def alt_market_choice(con: duckdb.DuckDBPyConnection) -> SeriesChoice | None:
    """The series choice of ALTS (``None`` when no member has returns)."""
    df = con.execute(ALTS_SQL, [MIN_MEMBERS]).df()
    if df.empty:
        return None
    dates = pd.to_datetime(df["date"]).dt.date
    first: dt.date = dates.iloc[0]
    last: dt.date = dates.iloc[-1]
    return SeriesChoice(
        ALTS,
        ALTS_ASSET_ID,
        ALTS_SOURCE,
        "crypto_benchmark",
        "crypto",
        first,
        last,
        len(df),
        f"equal-weighted non-AI crypto index, {int(df['n'].max())} members at most",
    )


__all__ = ["ALTS", "ALTS_SQL", "MIN_MEMBERS", "alt_market_choice", "alt_market_closes"]
