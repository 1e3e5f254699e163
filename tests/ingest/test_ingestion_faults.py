"""Every API fault, injected into one coin's history mid-run, ends in correct data or a clear
error, and never in a partial batch: each coin is either whole in the warehouse or absent."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from flows.errors import HtmlResponseError
from flows.services.ingest_options import IngestOptions
from flows.services.steps import run_ingestion
from tests.ingest.conftest import days_ago

VICTIM = "render-token"
CHART = f"/coins/{VICTIM}/market_chart/range"


def options() -> IngestOptions:
    return IngestOptions(
        flow="backfill", since=days_ago(120), equities=False, global_market=False, max_workers=2
    )


def coin_frame(db) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT coin_id, date, price, market_cap, volume FROM coin_daily ORDER BY coin_id, date"
        ).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean run against fakes built like ``env``'s (their data is deterministic)."""
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.fixtures import fast_coingecko_config, fast_yahoo_config
    from tests.fakes.yahoo import FakeYahoo

    db = tmp_path_factory.mktemp("clean") / "clean.duckdb"
    with (
        FakeCoinGecko(
            n_coins=6, plan="pro", api_key="pro-secret-key-123", delisted=("old-ai-coin",)
        ) as cg,
        FakeYahoo() as yahoo,
    ):
        run_ingestion(
            options(),
            db=db,
            configs={"coingecko": fast_coingecko_config(cg), "yahoo": fast_yahoo_config(yahoo)},
        )
    return coin_frame(db)


# (fault, calls the victim's history must cost: one per failed attempt, plus the good one)
TRANSIENT = [
    pytest.param(
        {"kind": "status", "status": 429, "retry_after": 0, "times": 2}, 3, id="429-retry-after"
    ),
    pytest.param({"kind": "status", "status": 429, "times": 2}, 3, id="429-no-retry-after"),
    pytest.param({"kind": "status", "status": 500, "times": 2}, 3, id="500"),
    pytest.param({"kind": "status", "status": 502, "times": 1}, 2, id="502"),
    pytest.param({"kind": "status", "status": 503, "times": 2}, 3, id="503"),
    pytest.param({"kind": "slow", "delay": 0.3, "times": 1}, 1, id="slow"),
    pytest.param({"kind": "timeout", "delay": 1.5, "times": 1}, 2, id="timeout"),
    pytest.param({"kind": "truncated", "times": 1}, 2, id="truncated-json"),
    pytest.param({"kind": "disconnect", "times": 1}, 2, id="disconnect"),
    pytest.param({"kind": "duplicates", "times": 1}, 1, id="duplicate-timestamps"),
    pytest.param({"kind": "out_of_order", "times": 1}, 1, id="out-of-order"),
]


@pytest.mark.parametrize(("fault", "calls"), TRANSIENT)
def test_transient_faults_end_in_the_same_data_as_a_clean_run(env, reference, fault, calls):
    env.cg.inject(CHART, **fault)
    summary = env.run(options())
    assert summary.status == "completed" and VICTIM not in summary.skipped
    pd.testing.assert_frame_equal(coin_frame(env.db), reference)
    assert len(env.cg.calls(CHART)) == calls


def test_null_prices_are_dropped_and_the_rest_is_exact(env, reference):
    env.cg.inject(CHART, kind="nulls", times=1)
    env.run(options())
    got = coin_frame(env.db)
    victim, want = got[got.coin_id == VICTIM], reference[reference.coin_id == VICTIM]
    assert 0 < len(victim) < len(want)
    merged = victim.merge(want, on=["coin_id", "date"], suffixes=("", "_ref"))
    assert len(merged) == len(victim)
    assert (merged["price"] == merged["price_ref"]).all()
    others = got[got.coin_id != VICTIM].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        others, reference[reference.coin_id != VICTIM].reset_index(drop=True)
    )


def test_empty_answer_writes_nothing_and_is_asked_again(env, reference):
    env.cg.inject(CHART, kind="empty", times=1)
    env.run(options())
    assert VICTIM not in set(coin_frame(env.db).coin_id)
    env.run(IngestOptions(flow="daily_ingest", equities=False, global_market=False))
    assert len(coin_frame(env.db).query("coin_id == @VICTIM")) > 0


def test_persistent_5xx_skips_the_coin_with_reason_and_the_next_run_completes(env, reference):
    env.cg.inject(CHART, kind="status", status=503, times=None)
    summary = env.run(options())
    assert summary.status == "completed"
    assert summary.skipped[VICTIM].startswith("failed, retried next run: ")
    assert "503" in summary.skipped[VICTIM]
    got = coin_frame(env.db)
    assert VICTIM not in set(got.coin_id)
    env.cg.clear_faults()
    env.run(options())
    pd.testing.assert_frame_equal(coin_frame(env.db), reference)


def test_html_block_page_stops_the_run_with_a_clear_error_and_whole_batches_only(env, reference):
    env.cg.inject(CHART, kind="html", times=None)
    with pytest.raises(HtmlResponseError, match="received HTML, likely a proxy or block page"):
        env.run(options())
    got = coin_frame(env.db)
    for coin, rows in got.groupby("coin_id"):  # every coin present is complete
        pd.testing.assert_frame_equal(
            rows.reset_index(drop=True), reference[reference.coin_id == coin].reset_index(drop=True)
        )
    con = duckdb.connect(str(env.db), read_only=True)
    status, errors = con.execute("SELECT status, errors FROM ingest_runs").fetchall()[-1]
    con.close()
    assert status == "failed" and "HTML" in errors
    env.cg.clear_faults()
    env.run(options())
    pd.testing.assert_frame_equal(coin_frame(env.db), reference)


def test_delisted_coin_is_skipped_with_its_reason(env, reference):
    env.cg.inject(CHART, kind="not_found", times=None)
    summary = env.run(options())
    assert "no coin 'render-token'" in summary.skipped[VICTIM]
    con = duckdb.connect(str(env.db), read_only=True)
    reasons = con.execute("SELECT coin_id, reason FROM skipped_coins").fetchall()
    con.close()
    assert {c for c, _ in reasons} == {VICTIM, "old-ai-coin"}


def test_history_cap_10012_on_a_chunk_fails_that_coin_clearly(env, reference):
    env.cg.inject(CHART, kind="plan_limit", times=None)
    summary = env.run(options())
    assert "10012" in summary.skipped[VICTIM] or "365" in summary.skipped[VICTIM]
    others = coin_frame(env.db)
    assert VICTIM not in set(others.coin_id)
