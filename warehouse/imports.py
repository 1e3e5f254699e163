"""Load a validated CSV batch in one transaction, with its run record: daily rows (a ``date``
column) into ``imported_daily``, hourly closes (a ``ts`` column) into ``price_hourly``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.db import transaction
from warehouse.errors import InputError
from warehouse.hourly import HOURLY_TABLE, upsert_hourly
from warehouse.load import UpsertResult, upsert
from warehouse.quality import SuspectPoint, check_series
from warehouse.runs import RunRecord, record_run, utcnow

IMPORTED_KEY = ("symbol", "date", "source")
IMPORTED_TABLE = "imported_daily"


@dataclass(frozen=True)
class ImportReport:
    """Counts of one import, for the CLI to print."""

    path: Path
    rows_read: int
    exact_duplicates: int
    series: int
    result: UpsertResult
    run_id: str
    suspects: list[SuspectPoint] = field(default_factory=list)  # newly quarantined (issue 22)

    @property
    def changed_nothing(self) -> bool:
        return self.result.written == 0

    @property
    def interval(self) -> str:
        """``"1h"`` when the rows went to ``price_hourly``, else ``"1d"``."""
        return "1h" if self.result.table == HOURLY_TABLE else "1d"


def record_completed_import(
    con: duckdb.DuckDBPyConnection, run: RunRecord, result: UpsertResult
) -> None:
    """Close an import's run with the upsert's counts, inside the import's own transaction (a
    run row never claims rows that did not commit). Shared by the price and the cap imports."""
    run.rows_inserted, run.rows_updated, run.rows_unchanged = (
        result.inserted,
        result.updated,
        result.unchanged,
    )
    run.status, run.finished_at = "completed", utcnow()
    record_run(con, run)


def import_prices(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    path: Path,
    rows_read: int,
    exact_duplicates: int,
) -> ImportReport:
    """Upsert the batch and record the run; both commit together or not at all.

    The frame is ``ParsedCsv.frame``: a ``date`` column makes it daily (``imported_daily``), a
    ``ts`` column (UTC hour-close times) hourly (``price_hourly``, the symbol as ``asset_id``).
    """
    hourly = "ts" in frame.columns
    if hourly and "date" in frame.columns:
        raise InputError("a batch holds either a date column (daily) or a ts column (hourly)")
    table = HOURLY_TABLE if hourly else IMPORTED_TABLE
    run = RunRecord(
        flow="csv_import",
        details={
            "file": path.name,
            "rows_read": rows_read,
            "interval": "1h" if hourly else "1d",
            "table": table,
        },
    )
    touched = [
        (str(a), str(b))
        for a, b in frame[["symbol", "source"]].drop_duplicates().itertuples(index=False)
    ]
    with transaction(con):
        if hourly:
            result = upsert_hourly(con, frame.rename(columns={"symbol": "asset_id"}))
        else:
            result = upsert(con, table, frame, IMPORTED_KEY)
        suspects = check_series(
            con,
            touched,
            run_id=run.run_id,
            interval="1h" if hourly else "1d",
        )
        run.details["quarantined"] = len(suspects)
        record_completed_import(con, run, result)
    return ImportReport(
        path, rows_read, exact_duplicates, len(touched), result, run.run_id, suspects
    )
