"""Load a validated CSV batch into ``imported_daily`` in one transaction, with its run record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.db import transaction
from warehouse.load import UpsertResult, upsert
from warehouse.runs import RunRecord, record_run, utcnow

IMPORTED_KEY = ("symbol", "date", "source")


@dataclass(frozen=True)
class ImportReport:
    """Counts of one import, for the CLI to print."""

    path: Path
    rows_read: int
    exact_duplicates: int
    series: int
    result: UpsertResult
    run_id: str

    @property
    def changed_nothing(self) -> bool:
        return self.result.written == 0


def import_prices(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    path: Path,
    rows_read: int,
    exact_duplicates: int,
) -> ImportReport:
    """Upsert the batch and record the run; both commit together or not at all."""
    run = RunRecord(flow="csv_import", details={"file": path.name, "rows_read": rows_read})
    with transaction(con):
        result = upsert(con, "imported_daily", frame, IMPORTED_KEY)
        run.rows_inserted, run.rows_updated, run.rows_unchanged = (
            result.inserted,
            result.updated,
            result.unchanged,
        )
        run.status, run.finished_at = "completed", utcnow()
        record_run(con, run)
    series = frame[["symbol", "source"]].drop_duplicates().shape[0]
    return ImportReport(path, rows_read, exact_duplicates, series, result, run.run_id)
