"""A second process holding the DuckDB file: retry with backoff, then one clear error."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from warehouse.db import connect, open_warehouse
from warehouse.errors import WarehouseLockedError

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
print("released", flush=True)
time.sleep(30)
"""


def hold(path: Path, seconds: float, mode: str = "rw", *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode, str(seconds), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.fixture
def warehouse_file(db_path: Path) -> Path:
    with open_warehouse(db_path):
        pass
    return db_path


def test_lock_held_past_timeout_names_the_holder(warehouse_file):
    # the holder's command line carries a secret: the message names the PID and the program only
    proc = hold(warehouse_file, 60, "rw", "--password=HOLDER-SECRET-42")
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as info:
            connect(warehouse_file, lock_timeout=1.0)
        waited = time.monotonic() - started
        message = str(info.value)
        assert f"PID {proc.pid} (python" in message
        assert "HOLDER-SECRET-42" not in message and "import sys" not in message
        assert "gave up after 1s" in message and "AITOKENS_LOCK_TIMEOUT" in message
        assert 1.0 <= waited < 30.0  # gave up at its timeout, long before the 60 s hold ends
        assert "\n" not in message
    finally:
        proc.kill()
        proc.wait()


def test_writer_waits_for_a_reader_and_then_succeeds(warehouse_file):
    proc = hold(warehouse_file, 1.5, mode="ro")
    try:
        started = time.monotonic()
        con = connect(warehouse_file, lock_timeout=20)
        waited = time.monotonic() - started
        con.execute("INSERT INTO equities VALUES ('NVDA', 'NVIDIA', 'equity')").fetchall()
        con.close()
        assert waited >= 1.0  # it really waited for the release
    finally:
        proc.kill()
        proc.wait()


def test_cli_reports_lock_with_exit_1_and_no_traceback(warehouse_file):
    proc = hold(warehouse_file, 60)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "import",
                "nothing.csv",
                "--db",
                str(warehouse_file),
            ],
            capture_output=True,
            text=True,
            env={"AITOKENS_LOCK_TIMEOUT": "0.5", "PATH": ""},
        )
    finally:
        proc.kill()
        proc.wait()
    # The file does not exist, so validation fails first: exit 2 without touching the lock.
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_a_warehouse_from_a_newer_version_is_refused_untouched(warehouse_file):
    import duckdb

    from warehouse.errors import WarehouseError

    con = duckdb.connect(str(warehouse_file))
    # What a newer version leaves behind: its migration, and the version in schema_meta.
    con.execute("INSERT INTO schema_migrations VALUES (999, '999_future.sql', now())").fetchall()
    con.execute("UPDATE schema_meta SET value = '999' WHERE key = 'schema_version'").fetchall()
    con.close()
    before = warehouse_file.read_bytes()
    with pytest.raises(WarehouseError, match="written by a newer aitokens"):
        connect(warehouse_file)
    assert warehouse_file.read_bytes() == before
