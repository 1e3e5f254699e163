"""Two Prefect-mode commands started together both work, and leave no Prefect server behind.

Two `aitokens backfill` runs against the fakes, each on its own warehouse (so the run lock,
which keeps two runs on one warehouse apart, does not apply: this is the case where both must
work), each starting its own temporary Prefect server at the same moment.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from tests.ingest.conftest import days_ago
from tests.ingest.test_no_network import _prefect_servers
from tests.reliability.helpers import REPO, cli_command, fake_env

COINS = ("fetch-ai",)  # plus BTC and ETH: the least a backfill fetches


def _server_details(pid: int) -> tuple[int, str] | None:
    """The ``--port`` of a temporary server (uvicorn's command line) and its database URL."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = dict(item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item)
    except OSError:
        return None
    port = int(args[args.index(b"--port") + 1])
    url = environ.get(b"PREFECT_SERVER_DATABASE_CONNECTION_URL", b"").decode()
    return port, url


@pytest.mark.slow  # two temporary Prefect servers start together (~15 s each on 2 cores)
def test_two_prefect_commands_started_together_both_complete(env, tmp_path: Path) -> None:
    marker = f"AITOKENS_TEST_MARKER={tmp_path}"
    variables = fake_env(env.cg, env.yahoo, AITOKENS_TEST_MARKER=str(tmp_path))
    variables.pop("PREFECT_API_URL", None)
    dbs = [tmp_path / "a" / "w.duckdb", tmp_path / "b" / "w.duckdb"]
    args = ["backfill", "--since", days_ago(12).isoformat(), "--coins", ",".join(COINS)]
    procs = [
        subprocess.Popen(
            cli_command(*args, "--db", str(db)),
            env=variables,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for db in dbs
    ]
    servers: dict[int, tuple[int, str]] = {}
    try:
        while any(p.poll() is None for p in procs):
            for pid in _prefect_servers(marker) - set(servers):
                details = _server_details(pid)
                if details is not None:
                    servers[pid] = details
            time.sleep(0.2)
        done = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_out, err) in zip(procs, done, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    ports = {port for port, _url in servers.values()}
    urls = {url for _port, url in servers.values()}
    assert len(servers) == 2 and len(ports) == 2  # one temporary server each, on its own port
    assert len(urls) == 2 and all(url.startswith("sqlite+aiosqlite:///") for url in urls)
    folders = [Path(url.removeprefix("sqlite+aiosqlite:///")).parent for url in urls]
    for db in dbs:
        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = con.execute(
                "SELECT count(*) FROM coin_daily WHERE coin_id = 'fetch-ai'"
            ).fetchall()
            status = con.execute("SELECT status FROM ingest_runs").fetchall()
        finally:
            con.close()
        assert rows[0][0] >= 10 and status == [("completed",)]
    deadline = time.monotonic() + 20  # the watchdog stops a server within seconds of its command
    while _prefect_servers(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _prefect_servers(marker), "a temporary Prefect server outlived its command"
    for port in ports:
        with socket.socket() as sock:  # nobody listens on it any more (TIME_WAIT aside)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
    assert not any(folder.exists() for folder in folders)  # each private database removed
