"""``daily_prices`` generated from the price feeds (warehouse/price_feeds.sql): the same rows as
the hand-written union it replaced, every feed in it, and a malformed feed refused by name."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from warehouse import price_feeds
from warehouse.db import open_warehouse, transaction
from warehouse.errors import WarehouseError

# The union of views.sql before the feeds (main, 2026-12): the reference the generated view
# must reproduce row for row on CoinGecko, Yahoo and CSV data.
HAND_WRITTEN_UNION = """
SELECT upper(k.symbol) AS symbol, c.coin_id AS asset_id,
       coalesce(k.asset_class, 'crypto') AS asset_class, 'crypto' AS calendar, c.source,
       c.date, c.price AS close, c.volume AS volume_usd, c.market_cap
FROM coin_daily AS c LEFT JOIN coins AS k USING (coin_id) WHERE c.price IS NOT NULL
UNION ALL
SELECT e.ticker, e.ticker, coalesce(q.asset_class, 'equity'), 'XNYS', e.source, e.date,
       coalesce(e.adj_close, e.close), e.volume * e.close, NULL
FROM equity_daily AS e LEFT JOIN equities AS q USING (ticker)
WHERE coalesce(e.adj_close, e.close) IS NOT NULL
UNION ALL
SELECT i.symbol, i.symbol, i.asset_class,
       CASE WHEN i.asset_class LIKE 'equity%' THEN 'XNYS' ELSE 'crypto' END, i.source, i.date,
       i.close, i.volume_usd, i.market_cap
FROM imported_daily AS i
"""


def test_the_shipped_feeds_are_the_four_price_tables_in_file_order():
    views = price_feeds.feed_views(price_feeds.feeds_sql())
    assert views == [
        "coin_daily_prices",
        "equity_daily_prices",
        "imported_daily_prices",
        "exchange_daily_prices",
    ]
    sql = price_feeds.daily_prices_sql(views)
    assert sql.count("UNION ALL") == 3
    assert all(f"market_cap FROM {v}" in sql for v in views)


def test_generated_daily_prices_equals_the_hand_written_union(db_path, sora_prices_csv):
    from flows.cli import main

    sora_db = db_path
    assert main(["import", str(sora_prices_csv), "--db", str(sora_db)]) == 0
    now = datetime(2024, 5, 1)
    with open_warehouse(sora_db) as con, transaction(con):
        con.execute(
            "INSERT INTO coins VALUES ('fetch-ai', 'fet', 'Fetch.ai', 'crypto', ?), "
            "('bitcoin', 'btc', 'Bitcoin', 'crypto_benchmark', ?)",
            [now, now],
        )
        con.execute(
            "INSERT INTO coin_daily (coin_id, date, price, market_cap, volume, source, "
            "ingested_at) VALUES ('fetch-ai', DATE '2024-02-15', 0.61, 5e8, 1e7, 'coingecko', ?),"
            " ('bitcoin', DATE '2024-02-15', 51800, 1e12, NULL, 'coingecko', ?),"
            " ('unknown-coin', DATE '2024-02-15', 2.5, NULL, NULL, 'coingecko', ?),"
            " ('fetch-ai', DATE '2024-02-16', NULL, NULL, NULL, 'coingecko', ?)",
            [now, now, now, now],
        )
        con.execute(
            "INSERT INTO equity_daily (ticker, date, close, adj_close, volume, source, "
            "ingested_at) VALUES ('NVDA', DATE '2024-02-15', 726.58, 726.1, 4.2e7, 'yahoo', ?),"
            " ('SPY', DATE '2024-02-15', 502.0, NULL, 6e7, 'yahoo', ?),"
            " ('AMD', DATE '2024-02-15', NULL, NULL, NULL, 'yahoo', ?)",
            [now, now, now],
        )
    con = duckdb.connect(str(sora_db), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM daily_prices").fetchall()[0][0]
        extra = con.execute(f"SELECT * FROM daily_prices EXCEPT ALL ({HAND_WRITTEN_UNION})")
        extra_rows = extra.fetchall()
        lost = con.execute(f"({HAND_WRITTEN_UNION}) EXCEPT ALL SELECT * FROM daily_prices")
        lost_rows = lost.fetchall()
        types = con.execute("DESCRIBE daily_prices").fetchall()
        reference = con.execute(f"DESCRIBE ({HAND_WRITTEN_UNION})").fetchall()
    finally:
        con.close()
    assert n > 1000 and extra_rows == [] and lost_rows == []
    assert [t[:2] for t in types] == [t[:2] for t in reference]


def test_a_feed_without_a_column_of_daily_prices_is_refused_by_name():
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE VIEW okx_daily_prices AS SELECT 'FET' AS symbol, DATE '2024-02-15' AS date"
        )
        with pytest.raises(WarehouseError, match=r"price feed okx_daily_prices lacks asset_id"):
            price_feeds.check_feeds(con, ["okx_daily_prices"])
    finally:
        con.close()
    with pytest.raises(WarehouseError, match="twice"):
        price_feeds.feed_views("CREATE OR REPLACE VIEW a AS SELECT 1;\nCREATE OR REPLACE VIEW a AS")


def test_a_binance_row_appears_once_in_daily_prices(db_path):
    with open_warehouse(db_path) as con, transaction(con):
        con.execute(
            "INSERT INTO exchange_daily (symbol, date, close, volume_quote, source, ingested_at) "
            "VALUES ('FETUSDT', ?, 0.6, 1e6, 'binance', ?)",
            [date(2024, 2, 15), datetime(2024, 5, 1)],
        )
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute("SELECT * FROM daily_prices").fetchall()
    finally:
        con.close()
    assert rows == [
        ("FET", "FETUSDT", "crypto", "crypto", "binance", date(2024, 2, 15), 0.6, 1e6, None)
    ]
