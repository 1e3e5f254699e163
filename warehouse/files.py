"""The files around the warehouse: what may be opened as one, and where outputs may be written.

Every command that writes a file (a report, a study's JSON, an export) goes through the checks
here, so that no option value, event name or damaged file can make the tool overwrite the
warehouse, write outside the folder it was given, or write into a file DuckDB cannot read back:

- :func:`check_warehouse_file` refuses, before DuckDB opens anything, a ``--db`` that is a FIFO
  (DuckDB would block on it forever), a device, a folder, a file of another format (CSV,
  SQLite, ...) or a DuckDB file cut short (not whole blocks, or missing a block its header
  points at: DuckDB may open it and write to it, turning a damaged file into a lost one).
- :func:`check_output_path` refuses an output that is one of the warehouse's files
  (:func:`warehouse.paths.warehouse_files`), a folder, or a special file.
- :func:`safe_file_stem` turns an event name into a file name that stays in its folder.
- :func:`atomic_write_text` writes beside the target and renames into place, so a killed run or
  a full disk leaves the previous file, never a truncated one.
- :func:`user_fixable_message` names the fix for the OS errors a user can fix (full disk,
  read-only folder, permissions), which the CLI turns into exit code 2.

This module imports only :mod:`warehouse.errors` and :mod:`warehouse.paths`, so the CLI can call
it before DuckDB is imported.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from warehouse.errors import InputError
from warehouse.paths import warehouse_files

# DuckDB's storage layout (storage/storage_info.hpp): a 4 KiB main header whose bytes 8..12 are
# the magic "DUCK", then two 4 KiB database headers; the newer one (higher iteration) names the
# block size and the blocks holding the metadata and the free list. Whole blocks follow.
_MAGIC = b"DUCK"
_HEADER_SIZE = 4096
_DB_HEADER_FIELDS = "<QQQQQQ"  # checksum, iteration, meta_block, free_list, block_count, block_size
_BLOCK_ID_MASK = (1 << 56) - 1  # a metadata pointer: block id below, index in block above
# Names other tools give their files, to say what a wrong --db is.
_OTHER_FORMATS = ((b"SQLite format 3\x00", "a SQLite database"), (b"PAR1", "a Parquet file"))
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?:partial|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


class WarehouseFileError(InputError):
    """``--db`` names something that is not a DuckDB warehouse file; nothing was opened."""


class DamagedWarehouseError(InputError):
    """The warehouse file is damaged (e.g. truncated); it was not opened and not written."""


class OutputPathError(InputError):
    """An output path would overwrite the warehouse or is not a writable file; nothing written."""


def _kind(mode: int) -> str | None:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_warehouse_file(path: Path) -> None:
    """Refuse ``path`` as a warehouse unless it is absent, empty, or a whole DuckDB file.

    Reads at most 12 KiB and never opens a FIFO (``os.stat`` only), so it cannot hang.

    Raises
    ------
    WarehouseFileError
        A folder, FIFO, device, socket, or a file of another format.
    DamagedWarehouseError
        A DuckDB file cut short (see :func:`_truncation`).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WarehouseFileError(
            f"cannot read the warehouse {path}: {exc.strerror}; check the path and its "
            "permissions (--db or $AITOKENS_DB)"
        ) from None
    kind = _kind(st.st_mode)
    if kind is not None:
        raise WarehouseFileError(
            f"the warehouse path {path} is {kind}, not a DuckDB file: point --db (or "
            "$AITOKENS_DB) at a .duckdb file, e.g. data/aitokens.duckdb"
        )
    if st.st_size == 0:
        return  # a new, empty file: DuckDB initialises it
    try:
        with path.open("rb") as handle:
            head = handle.read(3 * _HEADER_SIZE)
    except OSError as exc:
        raise WarehouseFileError(
            f"cannot read the warehouse {path}: {exc.strerror}; check its permissions"
        ) from None
    if head[8:12] != _MAGIC:
        what = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
        raise WarehouseFileError(
            f"{path} is not a DuckDB warehouse ({what or 'another kind of file'}): point --db "
            "(or $AITOKENS_DB) at the .duckdb file `aitokens import` or `aitokens ingest` wrote"
        )
    problem = _truncation(head, st.st_size)
    if problem is not None:
        raise DamagedWarehouseError(
            f"the file is damaged: {path} is truncated ({problem}); it was not opened or "
            "written. Restore it from your last backup, export or snapshot "
            "(aitokens.snapshot.duckdb beside it), or move it away and rerun "
            "`aitokens backfill` / `aitokens import` to rebuild it"
        )


def _truncation(head: bytes, size: int) -> str | None:
    """Why a DuckDB file of ``size`` bytes starting with ``head`` is cut short, or None.

    DuckDB writes whole blocks after the three 4 KiB headers and may drop free blocks from the
    end (its header's ``block_count`` then stays larger than the file), so the checks are: the
    file holds whole blocks, and the blocks its newer header points at (the metadata and the
    free list) are inside the file.
    """
    if len(head) < 3 * _HEADER_SIZE:
        return f"{size:,} bytes, less than DuckDB's three headers"
    width = struct.calcsize(_DB_HEADER_FIELDS)
    headers = [
        struct.unpack(_DB_HEADER_FIELDS, head[off : off + width])
        for off in (_HEADER_SIZE, 2 * _HEADER_SIZE)
    ]
    _, _, meta_block, free_list, _, block_size = max(headers, key=lambda h: h[1])
    if not 0 < block_size <= 1 << 30:
        return f"its header names a block size of {block_size:,} bytes"
    blocks, rest = divmod(size - 3 * _HEADER_SIZE, block_size)
    if rest:
        return f"{size:,} bytes: {blocks:,} whole blocks of {block_size:,} and {rest:,} bytes"
    for what, pointer in (("metadata", meta_block), ("free list", free_list)):
        block = pointer & _BLOCK_ID_MASK
        if block != _BLOCK_ID_MASK and block >= blocks:
            return f"{size:,} bytes: its {what} is in block {block:,} of {blocks:,}"
    return None


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: Path, db: Path | None) -> Path:
    """Return ``path`` when a command may write a file there; else raise OutputPathError.

    Refused: any file of the warehouse at ``db`` (the file, its WAL, its snapshot and the
    snapshot's WAL, also through a symlink or hard link), a folder, and a special file
    (FIFO, device).
    """
    if db is not None:
        for own in warehouse_files(db):
            if _same_file(path, own):
                raise OutputPathError(
                    f"refusing to write {path}: it is the warehouse's file {own}; choose "
                    "another output path"
                )
    with contextlib.suppress(FileNotFoundError):
        kind = _kind(path.stat().st_mode)
        if kind is not None:
            raise OutputPathError(
                f"refusing to write {path}: it is {kind}; name a file to write instead"
            )
    return path


def safe_file_stem(name: str, max_length: int = 80) -> str:
    """A file-name stem for ``name`` that stays inside its folder and matches no glob.

    Letters, digits, ``-`` and ``_`` are kept; anything else (``/``, ``..``, ``*``, spaces)
    becomes ``_``. A changed name gets 8 hex digits of its SHA-256, so ``a/b`` and ``a_b``
    never share a file.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:max_length]
    if stem == name and stem:
        return stem
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem or 'event'}-{digest}"


def staging_name(target: Path, kind: str = "partial") -> Path:
    """A hidden sibling of ``target`` for work in progress: ``.NAME.partial-PID-XXXXXXXX``.

    The PID lets :func:`clean_stale_partials` tell a crashed run's leftovers from a live one's.
    """
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{os.urandom(4).hex()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_partials(target: Path) -> list[Path]:
    """Delete the ``.partial-*``/``.old-*`` siblings of ``target`` whose writer is dead.

    A killed export or report leaves its staging folder behind; the next run removes it. A
    sibling whose PID is still running is left alone (another run at work).
    """
    removed: list[Path] = []
    parent = target.parent
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _PARTIAL.match(entry.name)
        if not match or match.group("name") != target.name or _alive(int(match.group("pid"))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def atomic_write_text(path: Path, text: str, *, db: Path | None = None) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling renamed into place.

    The previous file stays whole until the new one is complete and synced; a failure (full
    disk, kill) leaves the old file and no temporary. ``db`` is the warehouse the file must not
    replace (see :func:`check_output_path`).
    """
    return atomic_write_bytes(path, text.encode("utf-8"), db=db)


def atomic_write_bytes(path: Path, data: bytes, *, db: Path | None = None) -> Path:
    """:func:`atomic_write_text` for bytes."""
    check_output_path(path, db)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_name(path)  # named with our PID: clean_stale_partials removes a killed run's
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# errno -> what the user can do about it
_FIXABLE = {
    errno.ENOSPC: "the disk is full: free some space (or choose another folder) and rerun",
    errno.EDQUOT: "the disk quota is exhausted: free some space and rerun",
    errno.EFBIG: "the file size limit was reached (ulimit -f, or the file system's maximum): "
    "raise the limit or choose another folder and rerun",
    errno.EROFS: "the file system is read-only: choose a writable folder (--out / --db) and rerun",
    errno.EACCES: "permission denied: choose a folder you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a folder you may write to, or fix its "
    "permissions",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENOTDIR: "a part of the path is not a folder: check the path",
    errno.EISDIR: "the path is a folder: name a file instead",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter path",
}
# The same conditions as DuckDB words them in its IOException texts.
_FIXABLE_TEXT = (
    ("No space left on device", errno.ENOSPC),
    ("Disk quota exceeded", errno.EDQUOT),
    ("File too large", errno.EFBIG),
    ("Read-only file system", errno.EROFS),
    ("Permission denied", errno.EACCES),
)


def user_fixable_message(exc: BaseException) -> str | None:
    """The one-line fix for an OS-level error the user can fix, or None if it is our bug.

    Covers Python's ``OSError`` (by errno) and DuckDB's ``IOException`` (by its text, since
    DuckDB does not keep the errno).
    """
    code: int | None = None
    where = ""
    if isinstance(exc, OSError) and exc.errno in _FIXABLE:
        code = exc.errno
        where = exc.filename if isinstance(exc.filename, str) else ""
    elif type(exc).__module__.startswith(("duckdb", "_duckdb")):
        text = str(exc)
        code = next((c for needle, c in _FIXABLE_TEXT if needle in text), None)
        match = re.search(r'file "([^"]+)"', text)
        where = match.group(1) if match else ""
    if code is None:
        return None
    return f"cannot write{f' {where}' if where else ''}: {_FIXABLE[code]}"


@contextlib.contextmanager
def fixable_os_errors() -> Iterator[None]:
    """Turn a user-fixable OS error inside the block into an :class:`OutputPathError`."""
    try:
        yield
    except OSError as exc:
        message = user_fixable_message(exc)
        if message is None:
            raise
        raise OutputPathError(message) from exc
