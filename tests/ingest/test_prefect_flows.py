"""The real Prefect flows, end to end into a real DuckDB file, against the fakes."""

from __future__ import annotations

import asyncio

import duckdb
import pytest

from tests.ingest.conftest import SYNTHETIC_TICKERS, days_ago

KEY = "pro-secret-key-123"


@pytest.fixture
def flow_env(env, monkeypatch):
    """The flows read their sources from the environment, as a scheduled run does."""
    monkeypatch.setenv("AITOKENS_COINGECKO_URL", env.cg.url)
    monkeypatch.setenv("AITOKENS_YAHOO_URL", env.yahoo.url)
    monkeypatch.setenv("COINGECKO_PLAN", "pro")
    monkeypatch.setenv("COINGECKO_API_KEY", KEY)
    monkeypatch.setenv("AITOKENS_COINGECKO_CALLS_PER_MINUTE", "6000")
    monkeypatch.setenv("AITOKENS_YAHOO_CALLS_PER_MINUTE", "6000")
    monkeypatch.setenv("AITOKENS_YAHOO_TICKERS", ",".join(SYNTHETIC_TICKERS))
    return env


async def _artifacts(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


def test_backfill_then_daily_flow_through_prefect(prefect_harness, flow_env):
    from flows.pipelines.ingest_flows import backfill, daily_ingest

    result = backfill(since=days_ago(100), db=str(flow_env.db))
    assert result["status"] == "completed"
    assert result["calls"]["/coins/{id}/market_chart/range"] == 9  # 8 coins + 1 delisted, 1 chunk
    assert result["skipped"].keys() == {"old-ai-coin"}
    con = duckdb.connect(str(flow_env.db), read_only=True)
    n_coins, n_days = con.execute(
        "SELECT count(DISTINCT coin_id), count(DISTINCT date) FROM coin_daily"
    ).fetchall()[0]
    tickers = {r[0] for r in con.execute("SELECT DISTINCT ticker FROM equity_daily").fetchall()}
    con.close()
    assert (n_coins, n_days) == (8, 100)
    assert tickers == set(SYNTHETIC_TICKERS)

    flow_env.cg.reset_log()
    flow_env.yahoo.reset_log()
    again = daily_ingest(db=str(flow_env.db))
    assert again["calls"] == {} and again["inserted"] == again["updated"] == 0
    assert flow_env.cg.requests == [] and flow_env.yahoo.requests == []

    # The harness is shared by the session: pick this run's artifact by its run id.
    artifacts = [
        a for a in asyncio.run(_artifacts("backfill-summary")) if result["run_id"] in a.data
    ]
    assert len(artifacts) == 1, "the backfill left no markdown artifact of its own"
    text = artifacts[0].data
    assert "# backfill" in text and "| coin_daily | 800 |" in text and "old-ai-coin" in text
    assert KEY not in text


def test_flow_failure_is_recorded_and_published(prefect_harness, flow_env):
    from flows.errors import HtmlResponseError
    from flows.pipelines.ingest_flows import daily_ingest

    flow_env.cg.inject("/coins/categories", kind="html", times=None)
    with pytest.raises(HtmlResponseError):
        daily_ingest(db=str(flow_env.db))
    con = duckdb.connect(str(flow_env.db), read_only=True)
    status, errors = con.execute("SELECT status, errors FROM ingest_runs").fetchall()[-1]
    con.close()
    assert status == "failed" and "received HTML" in errors
    artifacts = asyncio.run(_artifacts("daily-ingest-summary"))
    assert any("failed" in a.data for a in artifacts)


def test_block_page_mid_history_stops_the_flow_with_the_clear_error(prefect_harness, flow_env):
    from flows.errors import HtmlResponseError
    from flows.pipelines.ingest_flows import backfill

    flow_env.cg.inject("/coins/render-token/market_chart/range", kind="html", times=None)
    with pytest.raises(HtmlResponseError, match="received HTML"):
        backfill(since=days_ago(20), db=str(flow_env.db))
    con = duckdb.connect(str(flow_env.db), read_only=True)
    status = con.execute("SELECT status FROM ingest_runs").fetchall()[-1][0]
    coins = con.execute("SELECT coin_id, count(*) FROM coin_daily GROUP BY 1").fetchall()
    con.close()
    assert status == "failed"
    assert all(n == 20 for _, n in coins)  # whole coins only
