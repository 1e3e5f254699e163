"""End to end against the fakes: a daily backfill and an hourly backfill around a catalog event
(`backfill --interval 1h --around`), then the hourly study and the report's first-hours section.

The CoinGecko fake serves hourly points stamped 37-56 s past the hour (as the real API does) with
moves within the day; the snapped closes must land on the hour with their vendor stamp kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from tests.reliability.helpers import fake_env
from tests.reports.conftest import run_cli


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.yahoo import FakeYahoo

    root = tmp_path_factory.mktemp("hourly_fakes")
    db, out = root / "wh.duckdb", root / "reports"
    day0 = datetime.now(UTC).date() - timedelta(days=12)
    when = f"{day0.isoformat()}T14:30Z"
    mp = pytest.MonkeyPatch()
    with FakeCoinGecko(n_coins=4, plan="pro", api_key="pro-key-hourly") as cg, FakeYahoo() as y:
        for name, value in fake_env(cg, y).items():
            mp.setenv(name, value)
        mp.setenv("AITOKENS_HOURLY_DAYS", "0")
        steps = {
            "event": run_cli(
                [
                    "events",
                    "add",
                    "--name",
                    "fake_launch",
                    "--when",
                    when,
                    "--kind",
                    "ai",
                    "--db",
                    str(db),
                ]
            ),
            "daily": run_cli(
                [
                    "backfill",
                    "--no-prefect",
                    "--since",
                    (day0 - timedelta(days=200)).isoformat(),
                    "--db",
                    str(db),
                ]
            ),
            "hourly": run_cli(
                [
                    "backfill",
                    "--no-prefect",
                    "--interval",
                    "1h",
                    "--around",
                    "fake_launch",
                    "--window-days",
                    "60",
                    "--db",
                    str(db),
                ]
            ),
        }
        calls = len(cg.calls("/coins/*/market_chart/range"))
    steps["study"] = run_cli(
        [
            "study",
            "--interval",
            "1h",
            "--event",
            "fake_launch",
            "--estimation",
            "-480:-25",
            "--window",
            "-24:48",
            "--car",
            "0:5",
            "--car",
            "0:23",
            "--benchmark",
            "BTC",
            "--no-equities",
            "--db",
            str(db),
        ]
    )
    steps["report"] = run_cli(
        ["report", "--only", "event", "--event", "fake_launch", "--db", str(db), "--out", str(out)]
    )
    mp.undo()
    return steps, db, out, day0, calls


def test_each_step_succeeds(fake_run):
    steps, *_ = fake_run
    for name, result in steps.items():
        assert result.code == 0, (name, result.err)


def test_hourly_closes_are_snapped_on_the_hour_around_the_event(fake_run):
    _, db, _, day0, _ = fake_run
    con = duckdb.connect(str(db), read_only=True)
    try:
        first, last, lag_min, lag_max, n_coins, n_per = con.execute(
            "SELECT min(ts), max(ts), min(epoch(vendor_ts - ts)), max(epoch(vendor_ts - ts)), "
            "count(DISTINCT asset_id), max(n) FROM price_hourly, "
            "(SELECT count(*) AS n FROM price_hourly GROUP BY asset_id)"
        ).fetchall()[0]
    finally:
        con.close()
    assert first == datetime.combine(day0 - timedelta(days=30), datetime.min.time()) + timedelta(
        hours=1
    )
    assert last.date() <= datetime.now(UTC).date()
    assert 37 <= lag_min <= lag_max <= 60  # the fake's stamps: 37-56 s (+0.123) past the hour
    assert n_coins >= 6  # the category's coins and BTC/ETH


def test_the_hourly_study_reads_the_snapped_closes(fake_run):
    steps, *_ = fake_run
    out = steps["study"].out
    assert out.startswith("Hour-0 policy hour_0_floor")
    # the catalog's 14:30Z: hour 0 is the return over [14:00, 15:00), labelled 15:00
    assert "hour 0 = the return over [14:00, 15:00) UTC" in out
    # the summary's padding follows its widest cell, which depends on the fakes' dates (today)
    assert re.search(r"(^|  )Clock: +1h \(every UTC hour\)", out, re.MULTILINE), out
    kept = [line for line in out.splitlines() if line.startswith("=== AI tokens vs BTC (hourly)")]
    assert len(kept) == 1 and kept[0].endswith("pairs kept, 0 excluded ===")
    assert "[0,23]" in out and "KP-BMP" in out


def test_the_event_report_has_the_first_hours_section(fake_run):
    _, _, out, _, _ = fake_run
    html = (out / "fake_launch_event_study.html").read_text(encoding="utf-8")
    assert "The first hours (hourly closes)" in html
