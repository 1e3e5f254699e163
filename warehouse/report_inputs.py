"""What the report notebooks read from the warehouse, as named queries.

Every function takes an open (read-only) connection and returns a labelled DataFrame or a typed
record; the report service (:mod:`flows.services.report`) opens the file, calls these and
closes it at once, so no SQL lives outside ``warehouse/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd

AI_CATEGORY = "artificial-intelligence"


def one_series_per_symbol(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Daily closes of every symbol, one series each, chosen by the studies' one rule
    (:func:`warehouse.studies.choose_series` over the whole history: the most observations,
    ties by source name). Columns: date, symbol, asset_id, asset_class, calendar, source, close,
    volume_usd, market_cap."""
    from warehouse.studies import choose_series, load_series

    symbols = [r[0] for r in con.execute("SELECT DISTINCT symbol FROM daily_prices").fetchall()]
    choices = choose_series(con, sorted(symbols))
    return load_series(con, [(c.asset_id, c.source) for c in choices.values()])


def series_freshness(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every series held (the ``freshness`` view), also those not chosen for a symbol."""
    return con.execute(
        "SELECT symbol, asset_class, calendar, source, first_date, last_date, n_obs, gaps, "
        "stale_sessions FROM freshness ORDER BY asset_class, symbol, source"
    ).df()


def latest_members(con: duckdb.DuckDBPyConnection, category: str = AI_CATEGORY) -> pd.DataFrame:
    """The category's latest member snapshot: snapshot_date, coin_id, symbol, name, rank,
    market_cap (largest first; empty for a warehouse filled from CSV only)."""
    return con.execute(
        "SELECT m.snapshot_date, m.coin_id, upper(coalesce(c.symbol, m.coin_id)) AS symbol, "
        "c.name, m.rank, m.market_cap FROM category_members AS m "
        "LEFT JOIN coins AS c USING (coin_id) "
        "WHERE m.category_id = ? AND m.snapshot_date = ("
        "  SELECT max(snapshot_date) FROM category_members WHERE category_id = ?) "
        "ORDER BY m.market_cap DESC NULLS LAST",
        [category, category],
    ).df()


def sector_daily(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The ``ai_sector_daily`` view, by date."""
    return con.execute("SELECT * FROM ai_sector_daily ORDER BY date").df()


def category_figures(con: duckdb.DuckDBPyConnection, category: str = AI_CATEGORY) -> pd.DataFrame:
    """CoinGecko's own figures for the category: snapshot_date, snapshot_ts, market_cap,
    volume_24h, n_coins."""
    return con.execute(
        "SELECT snapshot_date, snapshot_ts, market_cap, volume_24h, n_coins "
        "FROM category_snapshots WHERE category_id = ? ORDER BY snapshot_date",
        [category],
    ).df()


def member_market_caps(con: duckdb.DuckDBPyConnection, category: str = AI_CATEGORY) -> pd.DataFrame:
    """Long date, symbol, market_cap of every coin ever in the category (CoinGecko's caps)."""
    return con.execute(
        "SELECT d.date, upper(coalesce(c.symbol, d.coin_id)) AS symbol, d.market_cap "
        "FROM coin_daily AS d LEFT JOIN coins AS c USING (coin_id) "
        "WHERE d.source = 'coingecko' AND d.market_cap IS NOT NULL AND d.coin_id IN ("
        "  SELECT coin_id FROM category_members WHERE category_id = ?)"
        " ORDER BY d.date",
        [category],
    ).df()


def has_event_catalog(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse has the ``events`` table (older files do not)."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'"
    ).fetchall()
    return bool(rows[0][0])


@dataclass(frozen=True)
class SymbolSpan:
    """The daily closes held for one symbol of one asset class."""

    asset_class: str
    symbol: str
    first: date
    last: date
    n_obs: int


def symbol_spans(con: duckdb.DuckDBPyConnection) -> list[SymbolSpan]:
    """First and last date and count of the daily closes held per asset class and symbol."""
    rows = con.execute(
        "SELECT asset_class, symbol, min(date), max(date), count(*) FROM daily_prices GROUP BY ALL"
    ).fetchall()
    return [SymbolSpan(*row) for row in rows]


_HOURLY_AROUND = """
WITH counts AS (
    SELECT symbol, asset_id, source, count(*) AS n FROM hourly_prices
    WHERE ts BETWEEN ? AND ? AND calendar = 'crypto' GROUP BY ALL
), ranked AS (
    SELECT symbol, asset_id, source,
           row_number() OVER (PARTITION BY symbol ORDER BY n DESC, source, asset_id) AS k
    FROM counts
)
SELECT p.ts AS date, p.symbol, p.asset_id, p.asset_class, p.source, p.close
FROM hourly_prices AS p JOIN ranked AS r USING (symbol, asset_id, source)
WHERE r.k = 1 AND p.ts BETWEEN ? AND ?
ORDER BY p.symbol, p.ts
"""


def hourly_closes_around(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> pd.DataFrame:
    """Hourly closes of every 24/7 symbol within ``[start, end]`` (naive UTC hour closes), one
    series per symbol: the source with most closes in the span (ties: by name). Columns: date
    (the hour's UTC close time, naive), symbol, asset_id, asset_class, source, close."""
    frame = con.execute(_HOURLY_AROUND, [start, end, start, end]).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame
