"""Where the warehouse's files live beside each other.

Kept in one module so every room that must recognise a warehouse file (the snapshot publisher,
the output-path guard, the `paths` command) agrees on the names without importing each other.
"""

from __future__ import annotations

from pathlib import Path

SNAPSHOT_SUFFIX = ".snapshot"


def snapshot_path(db_path: Path) -> Path:
    """The analysts' read-only copy: ``aitokens.duckdb`` -> ``aitokens.snapshot.duckdb``."""
    return db_path.with_name(db_path.stem + SNAPSHOT_SUFFIX + db_path.suffix)


def warehouse_files(db_path: Path) -> tuple[Path, ...]:
    """Every file that belongs to the warehouse at ``db_path`` (the file, its WAL, its snapshot)."""
    snap = snapshot_path(db_path)
    return (
        db_path,
        db_path.with_name(db_path.name + ".wal"),
        snap,
        snap.with_name(snap.name + ".wal"),
    )
