"""Binance closes reach studies: ingested from the fakes into ``exchange_daily``, they feed
``daily_prices`` (warehouse/price_feeds.sql), and ``aitokens study --source FET=binance`` studies
them: the stored series choice names binance and the pair, and the closes are the fake's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.services.ingest_options import IngestOptions
from flows.services.steps import run_ingestion
from tests.fakes.binance import FakeBinance
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.fixtures import fast_coingecko_config
from tests.sources.test_binance import fast_binance_config

SORA = date(2024, 2, 15)  # the catalog's `sora`, inside the fakes' data (they start 2020)


@pytest.fixture(scope="module")
def both_vendors(tmp_path_factory) -> tuple[Path, dict[date, float], dict[date, float]]:
    """A warehouse with FET and BTC from CoinGecko and from Binance, both over the Sora window;
    also the fake Binance closes of FETUSDT and BTCUSDT around the event."""
    db = tmp_path_factory.mktemp("binance_study") / "aitokens.duckdb"
    since = SORA - timedelta(days=400)
    with (
        FakeCoinGecko(n_coins=1, plan="pro", api_key="binance-study-key") as cg,
        FakeBinance() as bn,
    ):
        configs = {
            "coingecko": fast_coingecko_config(cg),
            "binance": fast_binance_config(bn, symbols=("BTCUSDT", "FETUSDT")),
        }
        summary = run_ingestion(
            IngestOptions(
                flow="backfill",
                since=since,
                until=SORA + timedelta(days=60),
                sources=("coingecko", "binance"),
                global_market=False,
            ),
            db=db,
            configs=configs,
        )
        assert summary.status == "completed", summary
        days = [SORA + timedelta(days=k) for k in range(-5, 6)]
        fet = {d: bn.close_of("FETUSDT", d) for d in days}
        btc = {d: bn.close_of("BTCUSDT", d) for d in days}
    return db, fet, btc


def stored_series(db: Path) -> dict[str, dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        (fp,) = con.execute(
            "SELECT fingerprint FROM study_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchall()[0]
    finally:
        con.close()
    return {s["symbol"]: s for s in json.loads(fp)["series"]}


def test_binance_closes_are_in_daily_prices_under_the_base_symbol(both_vendors):
    db, fet, btc = both_vendors
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT symbol, asset_id, date, close FROM daily_prices "
            "WHERE source = 'binance' AND date BETWEEN ? AND ? ORDER BY symbol, date",
            [min(fet), max(fet)],
        ).fetchall()
        sources = con.execute(
            "SELECT symbol, list(DISTINCT source ORDER BY source) FROM daily_prices "
            "WHERE symbol IN ('FET', 'BTC') GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("BTC", "BTCUSDT", d, c) for d, c in btc.items()] + [
        ("FET", "FETUSDT", d, c) for d, c in fet.items()
    ]
    assert sources == [("BTC", ["binance", "coingecko"]), ("FET", ["binance", "coingecko"])]


def test_study_source_fet_binance_studies_the_binance_closes(both_vendors, capsys):
    db, _, _ = both_vendors
    args = ["study", "--db", str(db), "--event", "sora", "--assets", "FET", "--no-equities"]
    assert main([*args, "--source", "FET=binance"]) == 0
    out = capsys.readouterr().out
    assert "Note: FET: source binance (--source FET=binance); not mixed with coingecko" in out
    chosen = stored_series(db)["FET"]
    assert (chosen["source"], chosen["asset_id"]) == ("binance", "FETUSDT")

    # The other vendor is still there to choose: the same study on CoinGecko's FET.
    assert main([*args, "--source", "FET=coingecko"]) == 0
    out = capsys.readouterr().out
    assert "Note: FET: source coingecko (--source FET=coingecko); not mixed with binance" in out
    chosen = stored_series(db)["FET"]
    assert (chosen["source"], chosen["asset_id"]) == ("coingecko", "fetch-ai")


def test_a_pair_not_quoted_in_usd_stays_out_of_daily_prices(tmp_path):
    from warehouse.db import open_warehouse, transaction

    db = tmp_path / "pairs.duckdb"
    now = datetime.now(UTC).replace(tzinfo=None)
    with open_warehouse(db) as con, transaction(con):
        con.executemany(
            "INSERT INTO exchange_daily (symbol, date, close, source, ingested_at) "
            "VALUES (?, ?, ?, 'binance', ?)",
            [
                ("ETHBTC", SORA, 0.055, now),
                ("ETHUSDT", SORA, 2800.0, now),
                ("BTCFDUSD", SORA, 52000.0, now),
            ],
        )
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT symbol, asset_id, close FROM daily_prices ORDER BY asset_id"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("BTC", "BTCFDUSD", 52000.0), ("ETH", "ETHUSDT", 2800.0)]
