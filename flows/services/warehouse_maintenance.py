"""Maintenance of the warehouse file: the compatible-format rewrite (`warehouse compat`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.services.runlock import run_lock
from warehouse.db import open_warehouse, resolve_db_path
from warehouse.errors import WarehouseMissingError
from warehouse.snapshot import publish_snapshot, rewrite_compatible, storage_version


@dataclass(frozen=True)
class CompatRewrite:
    """What `warehouse compat` did: the file, its format before and after, the snapshot."""

    db_file: Path
    before: str
    after: str
    snapshot: Path | None


def make_compatible(db: str | Path | None) -> CompatRewrite:
    """Rewrite the warehouse in the compatible storage format under the run lock (no ingestion
    interleaves) and DuckDB's write lock (no other process opens the old file meanwhile)."""
    db_file = resolve_db_path(db)
    if not db_file.exists():
        raise WarehouseMissingError(
            f"no warehouse at {db_file}: run `aitokens import FILE.csv` or `aitokens ingest` first"
        )
    with run_lock(db_file, "warehouse_compat"):
        with open_warehouse(db_file) as con:
            before = storage_version(con)
            rewrite_compatible(con, db_file)
        with open_warehouse(db_file, read_only=True) as con:
            after = storage_version(con)
        snapshot = publish_snapshot(db_file)
    return CompatRewrite(db_file, before, after, snapshot)
