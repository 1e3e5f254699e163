"""Fail fast and say why: the connectivity check, sources tried independently, and temporary
Prefect servers that never outlive their command.

Real sockets throughout: a refused port (bound, then closed) and a ``.invalid`` host (DNS must
fail, RFC 6761) stand in for a dead network; the fakes serve the reachable source.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from flows.services.ingest_options import IngestOptions
from flows.sources.connectivity import NoNetworkError, unreachable_sources
from tests.conftest import REPO_ROOT


def closed_port() -> int:
    """A local port nobody listens on (connecting to it is refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_check_names_each_host_and_why():
    dead = f"http://127.0.0.1:{closed_port()}/"
    failures = unreachable_sources(
        {"coingecko": "https://api.example.invalid/api/v3/", "yahoo": dead}, timeout=2
    )
    assert [(f.source, f.reason) for f in failures] == [
        ("coingecko", "DNS failed"),
        ("yahoo", "connection refused"),
    ]
    assert failures[0].describe() == (
        "cannot reach the CoinGecko API at api.example.invalid (DNS failed)"
    )


def test_a_coingecko_outage_does_not_stop_yahoo(env):
    from tests.fakes.fixtures import fast_coingecko_config

    dead_cg = fast_coingecko_config(env.cg, base_url=f"http://127.0.0.1:{closed_port()}/api/v3/")
    from flows.services.steps import run_ingestion

    summary = run_ingestion(
        IngestOptions(flow="daily_ingest", tickers=("AITK",)),
        db=env.db,
        configs={"coingecko": dead_cg, "yahoo": env.yahoo_config()},
    )
    assert summary.status == "completed"
    assert summary.inserted > 0  # Yahoo's rows
    assert any(
        n.startswith("cannot reach the CoinGecko API at 127.0.0.1 (connection refused)")
        for n in summary.notes
    )
    assert not env.cg.calls()  # the fake was never asked: the dead URL was left out


def test_nothing_reachable_stops_at_once_in_process(tmp_path):
    from flows.services.steps import run_ingestion
    from flows.sources.coingecko import CoinGeckoConfig
    from flows.sources.yahoo import YahooConfig
    from tests.fakes.fixtures import FAST

    dead = f"http://127.0.0.1:{closed_port()}/"
    started = time.monotonic()
    with pytest.raises(NoNetworkError, match=r"^no network: cannot reach the CoinGecko API"):
        run_ingestion(
            IngestOptions(flow="daily_ingest"),
            db=tmp_path / "w.duckdb",
            configs={
                "coingecko": CoinGeckoConfig(plan="keyless", base_url=dead, **FAST),
                "yahoo": YahooConfig(base_url="https://yahoo.example.invalid/", **FAST),
            },
        )
    assert time.monotonic() - started < 30
    assert not (tmp_path / "w.duckdb").exists()  # nothing half-written


def _prefect_servers(marker: str = "") -> set[int]:
    """PIDs of temporary Prefect API servers (uvicorn on prefect's app) whose environment holds
    ``marker`` (a server inherits its command's environment: other sessions' servers differ)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if b"uvicorn" not in cmd or b"prefect.server.api.server:create_app" not in cmd:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if marker.encode() in environ:
            found.add(int(entry))
    return found


@pytest.mark.parametrize("prefect", [False, True], ids=["no-prefect", "prefect"])
def test_no_network_ingest_fails_within_30s_with_the_reason(tmp_path, prefect):
    dead = f"http://127.0.0.1:{closed_port()}/"
    env = {
        **os.environ,
        "AITOKENS_DB": str(tmp_path / "w.duckdb"),
        "AITOKENS_COINGECKO_URL": "https://api.coingecko.invalid/api/v3/",
        "AITOKENS_YAHOO_URL": dead,
        "COINGECKO_PLAN": "keyless",
        # Retrying budgets far beyond the timeouts below: only the connectivity check can end
        # the command in time (before it, each call spent its budget inside Prefect's retries).
        "AITOKENS_COINGECKO_MAX_RETRY_SECONDS": "600",
        "AITOKENS_YAHOO_MAX_RETRY_SECONDS": "600",
    }
    env.pop("PREFECT_API_URL", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", *([] if prefect else ["--no-prefect"])],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    # Interpreter start and imports dominate (about 3 s quiet, 40 s on a 2-core machine under
    # load 15); the check itself is timed in-process below 30 s by the test above.
    assert elapsed < 200
    assert done.stderr.startswith(
        "Error: no network: cannot reach the CoinGecko API at api.coingecko.invalid (DNS failed); "
        "cannot reach Yahoo Finance at 127.0.0.1 (connection refused)"
    ), done.stderr
    assert "Traceback" not in done.stderr
    assert not _prefect_servers(str(tmp_path))  # no temporary server left behind


SERVER_HOLDER = textwrap.dedent(
    """
    import time
    from flows.pipelines.ephemeral import guard_temporary_server
    from prefect.server.api.server import SubprocessASGIServer
    guard_temporary_server()
    server = SubprocessASGIServer()
    server.start(timeout=240)
    print(server.port, server.server_process.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow  # starts a real temporary Prefect server (~15 s)
def test_a_temporary_prefect_server_dies_with_its_killed_command():
    """SIGKILL: no handler, no atexit; only the watchdog can stop the server. (SIGTERM and
    Ctrl-C also end in the normal shutdown; SIGKILL is the case that leaked servers.)"""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    parent = subprocess.Popen(
        [sys.executable, "-c", SERVER_HOLDER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    assert parent.stdout is not None
    try:
        port, pid = map(int, parent.stdout.readline().split())
        os.kill(pid, 0)  # the server runs
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and pid in _prefect_servers():
            time.sleep(0.2)
        assert pid not in _prefect_servers(), "the temporary server outlived its command"
        with socket.socket() as sock:  # its port is free again
            sock.bind(("127.0.0.1", port))
    finally:
        if parent.poll() is None:
            parent.kill()
