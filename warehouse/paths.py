"""Where the warehouse's files live beside each other.

Kept in one module so every room that must recognise a warehouse file (the snapshot publisher,
the output-path guard, the `paths` command) agrees on the names without importing each other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SNAPSHOT_SUFFIX = ".snapshot"
CONFIG_NAME = "aitokens.toml"
ENV_HOME = "AITOKENS_HOME"
WAREHOUSE_IN_ROOT = Path("data") / "aitokens.duckdb"

RESOLUTION_ORDER = (
    "--db",
    "AITOKENS_DB",
    "[warehouse] path of aitokens.toml (relative to the file)",
    "data/aitokens.duckdb beside the nearest aitokens.toml (this folder or a parent)",
    "$AITOKENS_HOME/data/aitokens.duckdb",
    "the nearest data/aitokens.duckdb that exists (this folder or a parent)",
    "$XDG_DATA_HOME/aitokens/aitokens.duckdb (~/.local/share/aitokens/aitokens.duckdb)",
)
"""How the warehouse path is chosen, first match wins (printed by `aitokens paths --explain`
and stated in docs/warehouse.md): the same file from any folder of a project."""


def _parents(start: Path) -> list[Path]:
    start = start.absolute()
    return [start, *start.parents]


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``aitokens.toml`` in ``start`` (default: the current folder) or a parent."""
    for folder in _parents(start or Path.cwd()):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def default_db_path(environ: Mapping[str, str] | None = None, start: Path | None = None) -> Path:
    """The warehouse when neither ``--db`` nor ``AITOKENS_DB`` names one (see
    :data:`RESOLUTION_ORDER`): never simply relative to the current folder, so the CLI, the
    notebooks under Jupyter and ``aitokens report`` find the same file wherever they run."""
    env = os.environ if environ is None else environ
    config = find_config_file(start)
    if config is not None:
        return config.parent / WAREHOUSE_IN_ROOT
    home = env.get(ENV_HOME, "").strip()
    if home:
        return Path(home).expanduser().absolute() / WAREHOUSE_IN_ROOT
    for folder in _parents(start or Path.cwd()):
        if (folder / WAREHOUSE_IN_ROOT).is_file():
            return folder / WAREHOUSE_IN_ROOT
    data_home = env.get("XDG_DATA_HOME", "").strip() or str(Path("~/.local/share").expanduser())
    return Path(data_home).expanduser().absolute() / "aitokens" / "aitokens.duckdb"


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
