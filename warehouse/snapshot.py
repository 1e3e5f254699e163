"""The analysts' snapshot and the compatible storage format.

DuckDB lets one process write a file or many read it, never both: an analyst holding the
warehouse open in a notebook or the DuckDB CLI would stall the daily run. So the warehouse file
is private to write runs, and after each successful write run (import, ingest, backfill,
pipeline) the writer publishes a consistent copy beside it (:func:`warehouse.paths.snapshot_path`)
that every reader opens instead: written under a temporary name, fsynced, then renamed into place.
A reader holding the old snapshot keeps reading the old file (POSIX rename leaves an open file
intact) until it reconnects; no lock is ever shared between the writer and a reader.

Both the snapshot and new warehouse files are written in DuckDB's 1.4 storage format
(``STORAGE_VERSION``), which DuckDB 1.4, 1.5 and 2.x all read; DuckDB 2's default format
(storage version 69) is refused by every 1.x client and most BI drivers.
:func:`rewrite_compatible` converts an older file in place, atomically.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import duckdb

from warehouse.paths import snapshot_path

log = logging.getLogger(__name__)

# The oldest DuckDB release whose storage format we write: 1.4.0 (Sept 2025) is the first LTS
# line; files in this format open in DuckDB 1.4.x, 1.5.x and 2.x.
STORAGE_VERSION = "v1.4.0"
_ALIAS = "_aitokens_copy"


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def temp_name(target: Path) -> Path:
    """Where a copy of ``target`` is written before the rename (unique per process)."""
    return target.with_name(f"{target.name}.tmp-{os.getpid()}")


def copy_database(con: duckdb.DuckDBPyConnection, target: Path) -> Path:
    """Copy every table, view and constraint of ``con``'s database into ``target`` in the
    compatible format, atomically: a temporary file, fsynced, renamed over ``target``.

    ``con`` may be read-only (a snapshot needs no write access to the warehouse). Returns
    ``target``. On any failure the temporary file is removed and ``target`` is untouched.
    """
    source = con.execute("SELECT current_database()").fetchall()[0][0]
    tmp = temp_name(target)
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        _remove(leftover)
    try:
        con.execute(
            f"ATTACH {_quote_literal(str(tmp))} AS {_ALIAS} "
            f"(STORAGE_VERSION {_quote_literal(STORAGE_VERSION)}, READ_ONLY false)"
        )
        try:
            con.execute(f"COPY FROM DATABASE {_quote_ident(source)} TO {_ALIAS}")
            con.execute(f"CHECKPOINT {_ALIAS}")
        finally:
            con.execute(f"DETACH {_ALIAS}")
        _remove(tmp.with_name(tmp.name + ".wal"))  # empty after the checkpoint
        _fsync_path(tmp)
        os.replace(tmp, target)
        _fsync_path(target.parent, directory=True)
    except BaseException:
        _remove(tmp)
        _remove(tmp.with_name(tmp.name + ".wal"))
        raise
    return target


def publish_snapshot(db_file: Path, con: duckdb.DuckDBPyConnection | None = None) -> Path | None:
    """Publish the analysts' snapshot of ``db_file``; return its path, or None when it failed.

    Called by the writer at the end of a successful write run. A failure is logged, never
    raised: the run's data is safely in the warehouse, and readers keep the previous snapshot.
    """
    target = snapshot_path(db_file)
    try:
        if con is not None:
            return copy_database(con, target)
        owned = duckdb.connect(str(db_file), read_only=True)
        try:
            return copy_database(owned, target)
        finally:
            owned.close()
    except (duckdb.Error, OSError) as exc:
        log.warning(
            "the analysts' snapshot %s was not updated (%s); it still holds the previous run",
            target,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return None


def storage_version(con: duckdb.DuckDBPyConnection) -> str:
    """The storage format of ``con``'s database as DuckDB tags it (e.g. ``v1.4.0+``)."""
    rows = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    tags = rows[0][0] if rows else {}
    return str((tags or {}).get("storage_version", "unknown"))


def rewrite_compatible(con: duckdb.DuckDBPyConnection, db_file: Path) -> Path:
    """Rewrite the warehouse ``db_file`` (open for writing as ``con``) in the compatible format.

    The copy replaces the file while ``con`` still holds DuckDB's lock, so no other process
    can open the old file in between; ``con`` must be closed right after (it then points at
    the unlinked old file).
    """
    con.execute("CHECKPOINT")
    return copy_database(con, db_file)


def reader_path(db_file: Path) -> tuple[Path, bool]:
    """The file a reader opens: the snapshot when one was published, else the warehouse.

    Returns ``(path, is_snapshot)``.
    """
    snap = snapshot_path(db_file)
    if snap.exists():
        return snap, True
    return db_file, False


__all__ = [
    "STORAGE_VERSION",
    "copy_database",
    "publish_snapshot",
    "reader_path",
    "rewrite_compatible",
    "storage_version",
]
