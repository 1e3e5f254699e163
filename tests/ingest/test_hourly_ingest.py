"""CoinGecko hourly closes: the snapping rule (no look-ahead), the rolling window of the daily
ingest, and `backfill --interval 1h --around` against the local fake over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.cli import main
from flows.services.ingest_options import IngestOptions
from flows.sources.coingecko_hourly import MAX_LAG_SECONDS, snap_to_hour_closes
from flows.sources.registry import source_classes
from tests.ingest.conftest import days_ago
from tests.reliability.helpers import fake_env

HOUR_MS = 3_600_000
T0 = int(datetime(2024, 2, 15, 18, tzinfo=UTC).timestamp() * 1000)


def _snap(stamps):
    n = len(stamps)
    return snap_to_hour_closes(np.array(stamps), np.arange(1, n + 1, dtype=float), np.ones(n))


def test_a_point_seconds_after_the_hour_is_that_hour_s_close():
    out = _snap([T0 + 41_123])
    assert out.frame["ts"].tolist() == [pd.Timestamp("2024-02-15 18:00")]
    assert out.frame["vendor_ts"].tolist() == [pd.Timestamp("2024-02-15 18:00:41.123")]


def test_a_late_point_is_no_close_at_all():
    out = _snap([T0 + (MAX_LAG_SECONDS + 1) * 1000, T0 + HOUR_MS + 5_000])
    assert out.n_late == 1
    assert out.frame["ts"].tolist() == [pd.Timestamp("2024-02-15 19:00")]


def test_the_earliest_observation_of_an_hour_wins():
    out = _snap([T0 + 200_000, T0 + 3_000])
    assert out.n_duplicate_hours == 1
    assert out.frame["close"].tolist() == [2.0]  # the one stamped 18:00:03


@given(st.lists(st.integers(min_value=0, max_value=400 * HOUR_MS), min_size=1, max_size=60))
def test_no_close_is_observed_before_its_hour_or_more_than_the_lag_after(offsets):
    out = _snap(sorted({T0 + o for o in offsets}))
    lag = (out.frame["vendor_ts"] - out.frame["ts"]).dt.total_seconds()
    assert (lag >= 0).all() and (lag <= MAX_LAG_SECONDS).all()
    assert out.frame["ts"].is_unique and (out.frame["ts"].dt.minute == 0).all()


def test_the_registry_holds_the_hourly_source():
    cls = source_classes()["coingecko_hourly"]
    assert cls.interval == "1h" and cls.table.name == "price_hourly"


def _hourly(db) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT * FROM price_hourly ORDER BY asset_id, ts").df()
    finally:
        con.close()


def test_daily_ingest_keeps_a_rolling_hourly_window_and_a_rerun_makes_no_call(env, monkeypatch):
    monkeypatch.setenv("AITOKENS_HOURLY_DAYS", "3")
    env.run(IngestOptions(flow="daily_ingest", equities=False, global_market=False))
    rows = _hourly(env.db)
    coins = set(rows["asset_id"])
    assert {"bitcoin", "ethereum"} <= coins
    per_coin = rows.groupby("asset_id")["ts"].agg(["min", "max", "size"])
    first_close = pd.Timestamp(days_ago(3)) + pd.Timedelta(hours=1)
    last_close = pd.Timestamp(days_ago(0))
    assert (per_coin["min"] == first_close).all() and (per_coin["max"] == last_close).all()
    assert (per_coin["size"] == 72).all()
    lag = (rows["vendor_ts"] - rows["ts"]).dt.total_seconds()
    assert lag.between(0, MAX_LAG_SECONDS).all()
    assert rows["source"].eq("coingecko").all() and rows["volume_usd"].isna().all()

    env.cg.reset_log()
    again = env.run(IngestOptions(flow="daily_ingest", equities=False, global_market=False))
    assert env.cg.calls("/coins/*/market_chart/range") == []
    assert again.inserted == again.updated == 0
    pd.testing.assert_frame_equal(
        _hourly(env.db).drop(columns="ingested_at"), rows.drop(columns="ingested_at")
    )


def test_a_daily_backfill_makes_no_hourly_call(env, monkeypatch):
    monkeypatch.setenv("AITOKENS_HOURLY_DAYS", "3")
    env.run(IngestOptions(flow="backfill", since=days_ago(10), equities=False))
    assert _hourly(env.db).empty


def _cli_env(env, monkeypatch):
    for name, value in fake_env(env.cg, env.yahoo).items():
        monkeypatch.setenv(name, value)


def test_backfill_interval_1h_around_an_event_fetches_its_window_once(env, monkeypatch, capsys):
    _cli_env(env, monkeypatch)
    monkeypatch.setenv("AITOKENS_HOURLY_DAYS", "0")
    day0 = days_ago(20)
    args = [
        "backfill",
        "--no-prefect",
        "--interval",
        "1h",
        "--around",
        day0.isoformat(),
        "--window-days",
        "6",
        "--db",
        str(env.db),
    ]
    assert main(args) == 0, capsys.readouterr().err
    rows = _hourly(env.db)
    span = rows.groupby("asset_id")["ts"].agg(["min", "max", "size"])
    assert (span["min"] == pd.Timestamp(day0 - timedelta(days=3)) + pd.Timedelta(hours=1)).all()
    assert (span["max"] == pd.Timestamp(day0 + timedelta(days=3))).all()
    assert (span["size"] == 6 * 24).all()
    n_coins = len(span)
    calls = env.cg.calls("/coins/*/market_chart/range")
    assert len(calls) == n_coins + 1  # one call per coin, and the delisted member's 404
    env.cg.reset_log()
    assert main(args) == 0  # a rerun: nothing new to fetch
    assert env.cg.calls("/coins/*/market_chart/range") == []


def test_hourly_window_beyond_the_keyless_history_is_refused_with_the_fix(
    tmp_path, monkeypatch, capsys
):
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.yahoo import FakeYahoo

    with FakeCoinGecko(n_coins=2) as cg, FakeYahoo() as yahoo:
        for name, value in fake_env(cg, yahoo).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("COINGECKO_PLAN", "keyless")
        monkeypatch.delenv("COINGECKO_API_KEY", raising=False)
        code = main(
            [
                "backfill",
                "--no-prefect",
                "--interval",
                "1h",
                "--around",
                "2024-02-15",
                "--db",
                str(tmp_path / "w.duckdb"),
            ]
        )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "serves hourly history only for the past 365 days" in err
    assert "COINGECKO_PLAN=pro" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "1h"], "Missing option '--since'"),
        (["--around", "sora"], "--around goes with --interval 1h"),
        (["--interval", "1h", "--around", "2024-02-15", "--since", "2024-01-01"], "drop --since"),
        (["--interval", "1h", "--around", "sora", "--window-days", "120"], "--window-days"),
    ],
)
def test_bad_hourly_backfill_options_exit_2(args, message, tmp_path, capsys):
    code = main(["backfill", "--no-prefect", *args, "--db", str(tmp_path / "w.duckdb")])
    assert code == 2
    assert message in capsys.readouterr().err
