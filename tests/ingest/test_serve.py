"""`aitokens serve` against a real `prefect server` on 127.0.0.1: the deployment is registered
with its cron, a triggered run completes against the fakes and fills the warehouse."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests

from tests.ingest.conftest import SYNTHETIC_TICKERS, days_ago

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited early with {proc.returncode}")
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent))
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"

    def healthy():
        try:
            return requests.get(f"{api}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(healthy, 180, "prefect server health", proc)
        yield api, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


async def _deployment(api: str, name: str):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api) as client:
        try:
            return await client.read_deployment_by_name(name)
        except Exception:  # noqa: BLE001 - not registered yet
            return None


async def _trigger(api: str, deployment_id):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api) as client:
        run = await client.create_flow_run_from_deployment(deployment_id)
        return run.id


async def _state(api: str, run_id):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api) as client:
        run = await client.read_flow_run(run_id)
        return run.state


def test_serve_registers_the_daily_cron_and_a_triggered_run_completes(
    prefect_server, env, tmp_path
):
    api, home = prefect_server
    from flows.pipelines.schedule import daily_flow

    flow_name = daily_flow().name
    serve_env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home),
        "AITOKENS_COINGECKO_URL": env.cg.url,
        "AITOKENS_YAHOO_URL": env.yahoo.url,
        "COINGECKO_PLAN": "pro",
        "COINGECKO_API_KEY": "pro-secret-key-123",
        "AITOKENS_COINGECKO_CALLS_PER_MINUTE": "6000",
        "AITOKENS_YAHOO_CALLS_PER_MINUTE": "6000",
        "AITOKENS_YAHOO_TICKERS": ",".join(SYNTHETIC_TICKERS),
        "AITOKENS_DB": str(env.db),
    }
    aitokens = shutil.which("aitokens", path=str(Path(sys.executable).parent))
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    # The fakes' history is the last year: the scheduled pipeline studies an event inside it.
    event = str(days_ago(20))
    serve = subprocess.Popen(
        [
            aitokens,
            "serve",
            "--db",
            str(env.db),
            "--event",
            event,
            "--out",
            str(tmp_path / "reports"),
        ],
        env=serve_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deployment = wait_for(
            lambda: asyncio.run(_deployment(api, f"{flow_name}/daily")),
            120,
            "the deployment to register",
            serve,
        )
        (schedule,) = deployment.schedules
        assert schedule.schedule.cron == "15 1 * * *"
        assert schedule.schedule.timezone == "UTC"
        assert schedule.active

        run_id = asyncio.run(_trigger(api, deployment.id))
        state = wait_for(
            lambda: (s := asyncio.run(_state(api, run_id))) and s.is_final() and s,
            240,
            "the triggered run to finish",
            serve,
        )
        assert state.is_completed(), f"run ended {state.type}: {state.message}"
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()
    con = duckdb.connect(str(env.db), read_only=True)
    coins, runs = con.execute(
        "SELECT (SELECT count(DISTINCT coin_id) FROM coin_daily), "
        "(SELECT count(*) FROM ingest_runs WHERE status = 'completed')"
    ).fetchall()[0]
    con.close()
    assert coins == 8 and runs >= 1
    assert env.cg.calls("/coins/*/market_chart/range")
    # The scheduled run left a fresh report.
    assert (tmp_path / "reports" / f"{event}_event_study.html").stat().st_size > 10_000
    assert (tmp_path / "reports" / "ai_sector.html").stat().st_size > 10_000
