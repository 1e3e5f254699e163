"""Open the DuckDB warehouse: path rules, lock handling, migrations and views.

DuckDB lets one process write OR many processes read a file. Writers therefore open late and
close early, and a lock held by someone else is retried with backoff until a deadline, then
reported with the holder's PID and command line so the user knows whom to ask.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import random
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb

from warehouse import price_feeds
from warehouse.errors import WarehouseError, WarehouseLockedError, WarehouseMissingError
from warehouse.files import DamagedWarehouseError, WarehouseFileError, check_warehouse_file
from warehouse.paths import default_db_path
from warehouse.settings import DEFAULT_LOCK_TIMEOUT_S, WarehouseSettings  # noqa: F401 (re-exported)
from warehouse.settings import current as current_settings
from warehouse.snapshot import STORAGE_VERSION, publish_snapshot, reader_path

log = logging.getLogger(__name__)

SESSION_CALENDARS = ("XNYS",)
SESSIONS_START, SESSIONS_END = "2000-01-01", "2035-12-31"

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


def resolve_db_path(
    path: str | os.PathLike[str] | None = None, settings: WarehouseSettings | None = None
) -> Path:
    """The warehouse path: the argument, else the settings' path (``AITOKENS_DB``, then
    ``[warehouse] path``: :class:`warehouse.settings.WarehouseSettings`, the bound ones by
    default), else :func:`warehouse.paths.default_db_path` (project root by ``aitokens.toml``,
    ``$AITOKENS_HOME``, ...; the order is :data:`warehouse.paths.RESOLUTION_ORDER`)."""
    if path:
        return Path(path).expanduser()
    chosen = (settings or current_settings()).path
    return chosen if chosen is not None else default_db_path()


def publish_snapshot_of(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Republish the analysts' snapshot of the warehouse at ``path`` (resolved as every command
    resolves ``--db``) after a write; the snapshot's path, or None when publishing failed (logged:
    the written data is safe, readers keep the previous snapshot)."""
    return publish_snapshot(resolve_db_path(path))


def lock_timeout_from_env() -> float:
    """Seconds to keep retrying a locked file: the bound settings' ``lock_timeout``, else
    ``$AITOKENS_LOCK_TIMEOUT``, else 30 (:class:`warehouse.settings.WarehouseSettings`)."""
    return current_settings().lock_timeout


def describe_lock_holder(message: str) -> str | None:
    """Name the process behind a DuckDB lock error: its PID and program name, never its
    arguments (a command line can carry another tool's secrets, e.g. ``--password=...``).

    The program is the kernel's short name (``/proc/PID/comm``), else the file name of the
    executable DuckDB reports; both are names, not arguments.
    """
    match = _LOCK_RE.search(message)
    if not match:
        return None
    pid = match.group("pid")
    program = ""
    with contextlib.suppress(OSError):
        program = Path(f"/proc/{pid}/comm").read_text(errors="replace").strip()
    if not program:
        program = Path(match.group("exe").strip()).name
    program = "".join(ch for ch in program if ch.isprintable())[:40] or "unknown program"
    return f"PID {pid} ({program})"


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _open_with_retry(path: Path, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying lock conflicts with jittered exponential backoff until a deadline."""
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    while True:
        try:
            if read_only:
                return duckdb.connect(str(path), read_only=True)
            # New files in the format DuckDB 1.4+ reads (warehouse.snapshot.STORAGE_VERSION).
            return duckdb.connect(
                str(path), config={"storage_compatibility_version": STORAGE_VERSION}
            )
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise _damaged_or(exc, path) from None
            holder = describe_lock_holder(str(exc)) or "another process"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                mode = "read" if read_only else "write"
                raise WarehouseLockedError(
                    f"cannot open {path} to {mode}: it is locked by {holder}; gave up after "
                    f"{lock_timeout:g}s (close that process, or raise AITOKENS_LOCK_TIMEOUT)"
                ) from None
            sleep_for = min(delay * (1 + random.random()), remaining, 2.0)
            log.warning("warehouse %s is locked by %s; retrying in %.2fs", path, holder, sleep_for)
            time.sleep(sleep_for)
            delay = min(delay * 2, 2.0)


def _damaged_or(exc: duckdb.IOException, path: Path) -> Exception:
    """DuckDB's words for a file it cannot read, as the user's fix (else ``exc`` unchanged)."""
    text = str(exc)
    if "not a valid DuckDB database file" in text:
        return WarehouseFileError(
            f"{path} is not a DuckDB warehouse: point --db (or $AITOKENS_DB) at the .duckdb "
            "file `aitokens import` or `aitokens ingest` wrote"
        )
    if "Could not read enough bytes" in text or "Corrupt database file" in text:
        return DamagedWarehouseError(
            f"the file is damaged: DuckDB cannot read {path} ({text.splitlines()[0]}); it was "
            "not written. Restore it from your last backup, export or snapshot, or move it "
            "away and rerun `aitokens backfill` / `aitokens import` to rebuild it"
        )
    return exc


_VERIFIED: set[Path] = set()


def _verify_once(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read every column of every table once per process before the first write, so a file
    whose blocks are missing or fail DuckDB's block checksums is refused before anything is
    written to it (the header check in :func:`warehouse.files.check_warehouse_file` catches a
    cut that breaks the block layout; this catches one at a block boundary). An aggregate hash
    per table reads every block without holding rows (0.15 s for 3 million rows)."""
    key = path.resolve()
    if key in _VERIFIED:
        return
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema = 'main'"
    ).fetchall()
    try:
        for (name,) in tables:
            quoted = '"' + name.replace('"', '""') + '"'
            con.execute(f"SELECT bit_xor(hash(COLUMNS(*))) FROM {quoted}").fetchall()
    except duckdb.IOException as exc:
        raise _damaged_or(exc, path) from None
    _VERIFIED.add(key)


def connect(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    lock_timeout: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a writable open creates the folder and brings the schema up to date.

    Read-only opens never create anything: a missing file raises ``WarehouseMissingError``
    telling the user which command fills it.
    """
    db_file = resolve_db_path(path)
    timeout = lock_timeout_from_env() if lock_timeout is None else lock_timeout
    # Before DuckDB touches it: a FIFO would hang the open, a truncated file would be written.
    check_warehouse_file(db_file)
    if read_only:
        if not db_file.exists():
            raise WarehouseMissingError(
                f"no warehouse at {db_file}: "
                "run `aitokens import FILE.csv` or `aitokens ingest` first"
            )
        return _open_with_retry(db_file, True, timeout)
    db_file.parent.mkdir(parents=True, exist_ok=True)
    con = _open_with_retry(db_file, False, timeout)
    try:
        _verify_once(con, db_file)
        migrate(con)
    except BaseException:
        con.close()
        raise
    return con


@contextlib.contextmanager
def open_warehouse(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    lock_timeout: float | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``connect`` as a context manager that always closes, so the file lock is held briefly."""
    con = connect(path, read_only=read_only, lock_timeout=lock_timeout)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def open_reader(
    path: str | os.PathLike[str] | None = None, *, lock_timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open what analysts read: the snapshot beside the warehouse (never locked by a write
    run), else, before any write run published one, the warehouse itself, read-only, saying so.
    """
    db_file = resolve_db_path(path)
    target, is_snapshot = reader_path(db_file)
    if not is_snapshot and db_file.exists():
        log.info(
            "no snapshot beside %s yet: reading the warehouse itself, which waits while a "
            "write run holds it (the next import, ingest or pipeline publishes the snapshot)",
            db_file,
        )
    with open_warehouse(target, read_only=True, lock_timeout=lock_timeout) as con:
        yield con


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: commit on success, roll back and re-raise on any error."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


@functools.lru_cache(maxsize=1)
def migration_files() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped in ``warehouse/migrations`` as (version, name, sql)."""
    folder = resources.files("warehouse") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{3})_[\w-]+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {sorted(n for _, n, _ in found)}")
    return sorted(found)


def views_sql() -> str:
    """Every view, in the order they are created: the price feeds and the ``daily_prices``
    generated over them (:mod:`warehouse.price_feeds`), then ``views.sql``. Its checksum decides
    when the views are re-created."""
    views = (resources.files("warehouse") / "views.sql").read_text(encoding="utf-8")
    return f"{price_feeds.script()}\n{views}"


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the feeds, check their columns, then ``daily_prices`` and the views over it."""
    feeds = price_feeds.feeds_sql()
    con.execute(feeds)
    views = price_feeds.feed_views(feeds)
    price_feeds.check_feeds(con, views)
    con.execute(price_feeds.daily_prices_sql(views))
    con.execute((resources.files("warehouse") / "views.sql").read_text(encoding="utf-8"))


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """First column of the first row. Fetches everything: DuckDB 2 refuses further work on a
    connection while a result is only partly fetched."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Highest applied migration, 0 for an empty file."""
    exists = scalar(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'",
    )
    if not exists:
        return 0
    return scalar(con, "SELECT coalesce(max(version), 0) FROM schema_migrations")


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations and (re)create views, all in one transaction.

    Returns the names of the migrations applied. A failure leaves the file as it was.
    """
    applied: list[str] = []
    views = views_sql()
    views_checksum = hashlib.sha256(views.encode()).hexdigest()
    if _schema_current(con, views_checksum):
        return applied  # the common case: one small query per open
    with transaction(con):
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        current = schema_version(con)
        latest = migration_files()[-1][0]
        if current > latest:
            # Re-applying this version's views over a newer schema would flip them back and
            # forth between versions: refuse instead.
            raise WarehouseError(
                f"this warehouse was written by a newer aitokens (schema version {current}; "
                f"this one knows up to {latest}): upgrade aitokens to use it"
            )
        now = datetime.now(UTC).replace(tzinfo=None)
        for version, name, sql in migration_files():
            if version <= current:
                continue
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, now])
            applied.append(name)
        stored = scalar(con, "SELECT value FROM schema_meta WHERE key = 'views_sha256'")
        if applied or stored != views_checksum:
            _create_views(con)
            con.execute(
                "INSERT OR REPLACE INTO schema_meta VALUES ('views_sha256', ?)", [views_checksum]
            )
        _fill_trading_sessions(con)
        con.execute(
            "INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)",
            [str(schema_version(con))],
        )
    if applied:
        log.info("warehouse migrated: %s", ", ".join(applied))
    return applied


def _schema_current(con: duckdb.DuckDBPyConnection, views_checksum: str) -> bool:
    """True when the file already holds every shipped migration and the current views."""
    try:
        rows = con.execute(
            "SELECT key, value FROM schema_meta WHERE key IN ('schema_version', 'views_sha256')"
        ).fetchall()
    except duckdb.CatalogException:
        return False  # a new file: no schema_meta yet
    meta = dict(rows)
    latest = migration_files()[-1][0]
    return meta.get("schema_version") == str(latest) and meta.get("views_sha256") == views_checksum


@functools.lru_cache(maxsize=4)
def _session_frame(calendar: str):
    """Sessions 2000-2035 of an exchange; built once per process (exchange_calendars is slow)."""
    import exchange_calendars as xcals
    import pandas as pd

    cal = xcals.get_calendar(calendar, start=SESSIONS_START, end=SESSIONS_END)
    return pd.DataFrame({"calendar": calendar, "date": cal.sessions.date})


def _fill_trading_sessions(con: duckdb.DuckDBPyConnection) -> None:
    """Load exchange sessions once per calendar, from exchange_calendars (NYSE holidays etc.)."""
    for calendar in SESSION_CALENDARS:
        have = scalar(con, "SELECT count(*) FROM trading_sessions WHERE calendar = ?", [calendar])
        if have:
            continue
        frame = _session_frame(calendar)
        con.register("_sessions_stage", frame)
        try:
            con.execute("INSERT INTO trading_sessions SELECT calendar, date FROM _sessions_stage")
        finally:
            con.unregister("_sessions_stage")
