"""The backfill on a local Dask cluster (worker processes) against the fakes: the same
warehouse as the default thread runner, and the API rate limit holds across workers."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from tests.ingest.conftest import SYNTHETIC_TICKERS, days_ago

pytestmark = pytest.mark.slow

RATE, WINDOW = 30, 3.0  # the fake answers 429 past 30 calls in any 3 s: R = 600/min


def tables(db) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "coin_daily": con.execute(
                "SELECT coin_id, date, price, market_cap, volume FROM coin_daily ORDER BY ALL"
            ).df(),
            "equity_daily": con.execute(
                "SELECT ticker, date, close, adj_close FROM equity_daily ORDER BY ALL"
            ).df(),
            "fetch_coverage": con.execute(
                "SELECT source, series_id, covered_from, covered_to "
                "FROM fetch_coverage ORDER BY ALL"
            ).df(),
        }
    finally:
        con.close()


def test_dask_backfill_matches_threads_and_respects_the_rate_limit(
    prefect_harness, tmp_path, monkeypatch
):
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.yahoo import FakeYahoo

    with (
        FakeCoinGecko(
            n_coins=40, plan="pro", api_key="pro-secret-key-123", rate_limit=(RATE, WINDOW)
        ) as cg,
        FakeYahoo(extra=SYNTHETIC_TICKERS) as yahoo,
    ):
        for name, value in {
            "AITOKENS_COINGECKO_URL": cg.url,
            "AITOKENS_YAHOO_URL": yahoo.url,
            "COINGECKO_PLAN": "pro",
            "COINGECKO_API_KEY": "pro-secret-key-123",
            "AITOKENS_COINGECKO_CALLS_PER_MINUTE": str(RATE * 60 / WINDOW),
            "AITOKENS_YAHOO_CALLS_PER_MINUTE": "6000",
            "AITOKENS_YAHOO_TICKERS": ",".join(SYNTHETIC_TICKERS),
        }.items():
            monkeypatch.setenv(name, value)
        from flows.pipelines.ingest_flows import backfill
        from flows.pipelines.runners import build_task_runner

        since = days_ago(60)
        threads = backfill.with_options(task_runner=build_task_runner("threads"))
        threads(since=since, db=str(tmp_path / "threads.duckdb"))
        cg.reset_log()
        dask = backfill.with_options(task_runner=build_task_runner("dask", workers=2))
        result = dask(since=since, db=str(tmp_path / "dask.duckdb"))
        history = cg.calls("/coins/*/market_chart/range")
        limited = cg.calls("*", status=429)
    assert result["status"] == "completed"
    assert len(history) == 42 and limited == []
    want, got = tables(tmp_path / "threads.duckdb"), tables(tmp_path / "dask.duckdb")
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
