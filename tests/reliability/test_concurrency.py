"""Concurrency: an analyst's read-only connection against the writing flow, and two
ingestion runs started together.

- the flow meets the analyst's lock, waits (retrying with backoff) and completes once the
  connection closes;
- the lock is held past ``AITOKENS_LOCK_TIMEOUT``: the run fails with a message naming the
  holder's PID, nothing committed is lost, and the next run catches up to the exact warehouse
  of an undisturbed run;
- a second ingestion run refuses at once (run lock, exit 2, the first run's PID) and the first
  one completes untouched.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.cli import main
from flows.services.ingest_options import IngestOptions
from flows.services.runlock import lock_path
from flows.services.steps import run_ingestion
from tests.ingest.conftest import days_ago
from tests.reliability.helpers import REPO, canonical_dump, cli_command, fake_env, run_statuses
from warehouse.errors import WarehouseLockedError

HOLDER = """
import sys, duckdb
con = None
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "open":
        con = duckdb.connect(sys.argv[1], read_only=True)
        con.execute("SELECT count(*) FROM coin_daily").fetchall()
        print("held", flush=True)
    elif cmd == "close":
        con.close()
        print("released", flush=True)
    else:
        break
"""


class Analyst:
    """Another process that opens the warehouse read-only on demand (as a notebook would)."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _say(self, cmd: str, answer: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == answer

    def hold(self) -> None:
        self._say("open", "held")

    def release(self) -> None:
        self._say("close", "released")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)


COINS = ("fetch-ai", "render-token")  # plus BTC and ETH: four coins keep the runs short
FIRST = IngestOptions(
    flow="backfill", since=days_ago(60), until=days_ago(20), coins=COINS, global_market=False
)
SECOND = IngestOptions(flow="backfill", since=days_ago(60), coins=COINS, global_market=False)


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, dict]:
    """Undisturbed runs against fakes built like ``env``'s (their data is deterministic):
    ``two_runs`` = FIRST then SECOND; ``cli`` = the CLI's backfill over the same span."""
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.fixtures import fast_coingecko_config, fast_yahoo_config
    from tests.fakes.yahoo import FakeYahoo
    from tests.ingest.conftest import SYNTHETIC_TICKERS

    folder = tmp_path_factory.mktemp("references")
    out = {}
    with (
        FakeCoinGecko(
            n_coins=6, plan="pro", api_key="pro-secret-key-123", delisted=("old-ai-coin",)
        ) as cg,
        FakeYahoo(extra=SYNTHETIC_TICKERS) as yahoo,
    ):
        configs = {
            "coingecko": fast_coingecko_config(cg),
            "yahoo": fast_yahoo_config(yahoo, tickers=SYNTHETIC_TICKERS),
        }
        for name, runs in (
            ("two_runs", (FIRST, SECOND)),
            ("cli", (IngestOptions(flow="backfill", since=SECOND.since, coins=COINS),)),
        ):
            db = folder / f"{name}.duckdb"
            for options in runs:
                run_ingestion(options, db=db, configs=configs)
            out[name] = canonical_dump(db)
    return out


@pytest.fixture
def reference(references) -> dict:
    return references["two_runs"]


def test_flow_waits_for_the_analyst_and_completes_once_released(
    env, reference, monkeypatch, caplog
):
    env.run(FIRST)
    analyst = Analyst(env.db)
    try:
        analyst.hold()
        monkeypatch.setenv("AITOKENS_LOCK_TIMEOUT", "30")
        threading.Timer(1.5, analyst.release).start()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="warehouse.db"):
            summary = env.run(SECOND)
        waited = time.monotonic() - started
    finally:
        analyst.stop()
    assert summary.status == "completed"
    assert waited >= 1.4
    assert any(
        f"PID {analyst.proc.pid}" in r.getMessage() and "retrying" in r.getMessage()
        for r in caplog.records
    )
    assert canonical_dump(env.db) == reference


def test_lock_held_past_the_timeout_fails_clearly_and_the_next_run_catches_up(
    env, reference, monkeypatch
):
    """The analyst opens the file mid-run (after the first series is loaded) and keeps it."""
    env.run(FIRST)
    analyst = Analyst(env.db)
    monkeypatch.setenv("AITOKENS_LOCK_TIMEOUT", "1")
    loaded = []

    def grab_after_first(series_id: str, calls: int) -> None:
        loaded.append(series_id)
        if len(loaded) == 1:
            analyst.hold()

    try:
        with pytest.raises(WarehouseLockedError) as info:
            run_ingestion(
                SECOND,
                db=env.db,
                configs={"coingecko": env.cg_config(), "yahoo": env.yahoo_config()},
                on_progress=grab_after_first,
            )
        message = str(info.value)
        assert f"it is locked by PID {analyst.proc.pid}" in message
        assert "gave up after 1s" in message and "AITOKENS_LOCK_TIMEOUT" in message
        analyst.release()
    finally:
        analyst.stop()
    summary = env.run(SECOND)  # the next run: catches up, nothing lost, nothing twice
    assert summary.status == "completed"
    assert canonical_dump(env.db) == reference
    statuses = run_statuses(env.db)
    assert statuses[-1] == "completed" and "running" not in statuses
    assert statuses.count("abandoned") + statuses.count("failed") == 1


def test_cli_names_the_holder_and_exits_1_after_the_timeout(env, monkeypatch, capsys):
    env.run(FIRST)
    for name, value in fake_env(env.cg, env.yahoo).items():
        if name.startswith(("AITOKENS_", "COINGECKO_")):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AITOKENS_LOCK_TIMEOUT", "0.5")
    before = canonical_dump(env.db)
    analyst = Analyst(env.db)
    try:
        analyst.hold()
        code = main(["ingest", "--no-prefect", "--db", str(env.db)])
    finally:
        analyst.stop()
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("Error: cannot open ") and f"PID {analyst.proc.pid}" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert canonical_dump(env.db) == before


def test_second_ingestion_run_refuses_cleanly_and_the_first_completes(
    env, references, monkeypatch, capsys
):
    want = references["cli"]
    env.cg.inject("/coins/*/market_chart/range", kind="slow", delay=1.0, times=None)
    env_vars = fake_env(env.cg, env.yahoo)
    args = [
        "backfill",
        "--no-prefect",
        "--since",
        SECOND.since.isoformat(),
        "--coins",
        ",".join(COINS),
        "--db",
        str(env.db),
    ]
    first = subprocess.Popen(
        cli_command(*args),
        env=env_vars,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lock = lock_path(env.db)
        while not (lock.exists() and lock.read_text().strip()):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        for name, value in env_vars.items():
            if name.startswith(("AITOKENS_", "COINGECKO_")):
                monkeypatch.setenv(name, value)
        code = main(args)
        err = capsys.readouterr().err
        out, first_err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert code == 2
    assert err.startswith("Error: another ingestion run is in progress")
    assert f"PID {first.pid}" in err and "Traceback" not in err and err.count("\n") == 1
    assert first.returncode == 0, first_err
    got = canonical_dump(env.db)
    assert got == {**want, "raw_failed": got["raw_failed"]}
    assert run_statuses(env.db) == ["completed"]  # the refused run left no row
