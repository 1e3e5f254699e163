"""One ingestion run at a time per warehouse: an advisory file lock beside the DuckDB file.

DuckDB's own lock is held only while a connection is open, and ingestion opens the file
briefly per batch, so two runs could interleave. This lock spans the whole run; the second
run refuses at once with the holder's PID. The OS drops the lock when a process dies, so a
crashed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from warehouse.errors import UserInputError, WarehouseError
from warehouse.files import check_warehouse_file


class RunLockedError(WarehouseError, UserInputError):
    """Another ingestion run holds the warehouse's run lock: wait for it, then run again."""


def lock_path(db_file: Path) -> Path:
    return db_file.with_name(db_file.name + ".ingest.lock")


@contextlib.contextmanager
def run_lock(db_file: Path, flow: str) -> Iterator[None]:
    """Hold the run lock for the block, or raise ``RunLockedError`` naming the holder."""
    check_warehouse_file(db_file)  # no `/dev/null.ingest.lock` for a --db that is no warehouse
    path = lock_path(db_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(path)
            raise RunLockedError(
                f"another ingestion run is in progress on {db_file} ({holder}); "
                "this run was not started: wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "flow": flow, "started": datetime.now(UTC).isoformat()}
        os.write(fd, json.dumps(info).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    if not info:
        return "holder unknown"
    return f"{info.get('flow', 'a run')} PID {info.get('pid')}, started {info.get('started')}"
