"""Ingestion core against the fakes over real HTTP: data, call counts, idempotence, resume."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from flows.services import ingestion
from flows.services.ingest_options import IngestOptions
from flows.sources.coingecko import plan_chunks
from flows.sources.planning import plan_series
from tests.ingest.conftest import days_ago
from tests.warehouse.helpers import dump_tables

SINCE_DAYS = 500  # two chunks of at most 365 days per coin


def coin_rows(db) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT coin_id, date, price, market_cap, volume, source_ts "
            "FROM coin_daily ORDER BY coin_id, date"
        ).df()
    finally:
        con.close()


def test_backfill_loads_true_values_with_one_call_per_coin_per_chunk(env):
    since = days_ago(SINCE_DAYS)
    summary = env.run(IngestOptions(flow="backfill", since=since, equities=False))
    assert summary.status == "completed"
    end = days_ago(1)
    chunks = len(plan_chunks(since, end))
    assert chunks == 2
    members = env.cg.universe.ai_ids  # 6 live + the delisted one
    chart_calls = env.cg.calls("/coins/*/market_chart/range")
    per_coin = pd.Series([r.path.split("/")[2] for r in chart_calls]).value_counts()
    live = [c for c in members if c != "old-ai-coin"] + ["bitcoin", "ethereum"]
    assert {c: per_coin[c] for c in live} == {c: chunks for c in live}
    assert per_coin["old-ai-coin"] == 1  # 404 on the first chunk: no further call
    assert (
        summary.skipped.keys() == {"old-ai-coin"}
        and "not found" in summary.skipped["old-ai-coin"].lower()
    )
    assert len(env.cg.calls("/coins/markets")) == 1 and len(env.cg.calls("/coins/categories")) == 1

    rows = coin_rows(env.db)
    # Every stored close equals the fake's value stamped the NEXT day at 00:00 UTC.
    for row in rows.sample(50, random_state=1).itertuples():
        stamp = pd.Timestamp(row.date).date() + timedelta(days=1)
        price, cap, vol = env.cg.universe.value_on(row.coin_id, stamp)
        assert (row.price, row.market_cap, row.volume) == pytest.approx(
            (price, cap, vol), rel=1e-12
        )
        assert row.source_ts == pd.Timestamp(stamp)
    btc = rows[rows.coin_id == "bitcoin"]
    assert btc["date"].min().date() == since and btc["date"].max().date() == end
    assert btc["date"].is_unique and len(btc) == (end - since).days + 1


def test_second_run_same_day_makes_no_history_call_and_changes_nothing(env):
    env.run(IngestOptions(flow="backfill", since=days_ago(40)))
    before = dump_tables(env.db)
    env.cg.reset_log()
    env.yahoo.reset_log()
    summary = env.run(IngestOptions(flow="daily_ingest"))
    assert env.cg.requests == [] and env.yahoo.requests == []
    assert summary.total_calls == 0 and summary.inserted == summary.updated == 0
    after = dump_tables(env.db)
    for table in before:
        if table != "ingest_runs":
            assert after[table] == before[table], table
    assert len(after["ingest_runs"]) == len(before["ingest_runs"]) + 1


def test_daily_run_fetches_only_the_missing_days(env):
    env.run(IngestOptions(flow="backfill", since=days_ago(30), until=days_ago(5), equities=False))
    env.cg.reset_log()
    env.run(IngestOptions(flow="daily_ingest", equities=False, refresh_snapshot=False))
    calls = env.cg.calls("/coins/bitcoin/market_chart/range")
    assert len(calls) == 1
    rows = coin_rows(env.db)
    btc = rows[rows.coin_id == "bitcoin"]["date"]
    assert btc.max().date() == days_ago(1) and btc.is_unique
    assert len(btc) == 30  # days_ago(30) .. days_ago(1), no gap, no duplicate


def test_backfill_never_asks_again_for_days_before_a_listing(env):
    env.run(IngestOptions(flow="backfill", since=days_ago(30), equities=False))
    env.cg.reset_log()
    env.run(IngestOptions(flow="backfill", since=days_ago(30), equities=False))
    # Not even the delisted coin: its 404 earlier today holds until tomorrow.
    assert env.cg.calls("/coins/*/market_chart/range") == []


def test_plan_series_ranges():
    end = days_ago(1)
    cov = {"a": (days_ago(10), days_ago(3)), "b": (days_ago(10), end)}
    plans = {
        p.series_id: p
        for p in plan_series(
            "coingecko", ["a", "b", "c"], cov, end=end, since=days_ago(20), lookback_days=365
        )
    }
    assert plans["a"].ranges == ((days_ago(20), days_ago(11)), (days_ago(2), end))
    assert plans["b"].ranges == ((days_ago(20), days_ago(11)),)
    assert plans["c"].ranges == ((days_ago(20), end),)
    daily = {
        p.series_id: p
        for p in plan_series("coingecko", ["b", "c"], cov, end=end, since=None, lookback_days=7)
    }
    assert daily["b"].up_to_date and daily["c"].ranges == ((days_ago(7), end),)


def test_crash_mid_backfill_then_rerun_equals_uninterrupted_run(env, tmp_path, monkeypatch):
    """Kill the run after three coins are loaded; the rerun completes with no gap or duplicate."""
    reference_db = tmp_path / "reference.duckdb"
    options = IngestOptions(
        flow="backfill", since=days_ago(60), equities=False, global_market=False
    )
    from flows.services.steps import run_ingestion

    run_ingestion(
        options,
        db=reference_db,
        configs={"coingecko": env.cg_config(), "yahoo": env.yahoo_config()},
    )

    real_load = ingestion.Ingestion.load
    loaded = []

    def crashing_load(self, result):
        if len(loaded) == 3:
            raise KeyboardInterrupt("simulated crash")
        loaded.append(result.plan.series_id)
        return real_load(self, result)

    monkeypatch.setattr(ingestion.Ingestion, "load", crashing_load)
    with pytest.raises(KeyboardInterrupt):
        env.run(options)
    partial = coin_rows(env.db)
    assert partial["coin_id"].nunique() == 3  # whole coins only
    monkeypatch.setattr(ingestion.Ingestion, "load", real_load)
    env.run(options)
    got = coin_rows(env.db).drop(columns="source_ts")
    want = coin_rows(reference_db).drop(columns="source_ts")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    con = duckdb.connect(str(env.db), read_only=True)
    statuses = [
        r[0] for r in con.execute("SELECT status FROM ingest_runs ORDER BY started_at").fetchall()
    ]
    con.close()
    assert statuses == ["failed", "completed"]


def test_a_capped_backfill_records_only_what_was_asked_and_a_pro_key_fills_the_rest(tmp_path):
    """Keyless plans serve 365 days: a backfill since 500 days ago asks for 365. Its coverage
    must say so, so that a later backfill with a pro key fetches the older 135 days."""
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.fixtures import fast_coingecko_config, fast_yahoo_config
    from tests.fakes.yahoo import FakeYahoo

    db = tmp_path / "w.duckdb"
    since = days_ago(500)
    opts = IngestOptions(
        flow="backfill", since=since, coins=("fetch-ai",), equities=False, global_market=False
    )
    with FakeCoinGecko(n_coins=3) as cg, FakeYahoo() as yahoo:
        from flows.services.steps import run_ingestion

        summary = run_ingestion(
            opts,
            db=db,
            configs={"coingecko": fast_coingecko_config(cg), "yahoo": fast_yahoo_config(yahoo)},
        )
        assert any("serves only the past 365 days" in n for n in summary.notes)
        cov = dict(
            (
                (s, f)
                for s, f, _ in duckdb.connect(str(db), read_only=True)
                .execute("SELECT series_id, covered_from, covered_to FROM fetch_coverage")
                .fetchall()
            )
        )
        assert cov["bitcoin"] > since  # not the wish: what the cap let it ask
        cg.history_days = None  # the account is upgraded
        cg.reset_log()
        run_ingestion(
            opts,
            db=db,
            configs={
                "coingecko": fast_coingecko_config(cg, plan="pro", api_key="upgraded-pro-key"),
                "yahoo": fast_yahoo_config(yahoo),
            },
        )
        assert len(cg.calls("/coins/bitcoin/market_chart/range")) == 1
    btc = coin_rows(db).query("coin_id == 'bitcoin'")["date"]
    assert btc.min().date() == since and btc.max().date() == days_ago(1)
    assert btc.is_unique and len(btc) == 500


def test_an_error_while_loading_cancels_the_fetches_not_yet_started(env, monkeypatch):
    def failing_load(self, result):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(ingestion.Ingestion, "load", failing_load)
    with pytest.raises(RuntimeError, match="the disk is full"):
        env.run(
            IngestOptions(
                flow="backfill",
                since=days_ago(30),
                equities=False,
                global_market=False,
                max_workers=1,
            )
        )
    # One fetch failed to load; at most the one already running besides it was made.
    assert len(env.cg.calls("/coins/*/market_chart/range")) <= 2


def test_equity_revisions_from_a_split_or_dividend_are_applied_to_held_rows(env):
    """Yahoo rewrites past adjusted closes after a split or dividend: the next run that needs
    new sessions refetches the ticker's whole range (one call) and updates the revised rows."""
    opts = IngestOptions(
        flow="backfill",
        since=days_ago(40),
        until=days_ago(8),
        global_market=False,
        coins=("fetch-ai",),
    )
    env.run(opts)
    series = env.yahoo.series("AITK")
    series.adjclose[:] = series.adjclose * 0.98  # a dividend: every past adjusted close moves
    env.yahoo.reset_log()
    summary = env.run(IngestOptions(flow="daily_ingest", global_market=False, coins=("fetch-ai",)))
    assert len(env.yahoo.calls("/v8/finance/chart/AITK")) == 1
    assert summary.rows["equity_daily"].updated > 10
    con = duckdb.connect(str(env.db), read_only=True)
    held = con.execute(
        "SELECT date, adj_close FROM equity_daily WHERE ticker = 'AITK' ORDER BY date"
    ).df()
    con.close()
    want = dict(zip(series.dates, series.adjclose, strict=True))
    assert all(
        row.adj_close == pytest.approx(want[row.date.date()], rel=1e-12)
        for row in held.itertuples()
    )
