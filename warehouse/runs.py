"""Rows of ``ingest_runs``: one per import or ingestion run, written in the run's own transaction
where possible so a run's record and its data land (or vanish) together."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb


def utcnow() -> datetime:
    """Naive UTC timestamp: the warehouse stores every TIMESTAMP in UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(flow: str) -> str:
    return f"{flow}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    """What a run did; saved to ``ingest_runs`` by ``record_run``."""

    flow: str
    run_id: str = ""
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    status: str = "running"
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    calls: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = new_run_id(self.flow)


def record_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """Insert or update the run's row (the caller decides the transaction)."""
    con.execute(
        "INSERT OR REPLACE INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id,
            run.flow,
            run.started_at,
            run.finished_at,
            run.status,
            run.rows_inserted,
            run.rows_updated,
            run.rows_unchanged,
            run.calls,
            json.dumps(run.errors, default=str),
            json.dumps(run.details, default=str),
        ],
    ).fetchall()


def last_run(con: duckdb.DuckDBPyConnection) -> RunRecord | None:
    """The most recently started run (import or ingestion), or None for a warehouse never
    loaded."""
    rows = con.execute("SELECT run_id FROM ingest_runs ORDER BY started_at DESC LIMIT 1").fetchall()
    return read_run(con, rows[0][0]) if rows else None


def read_run(con: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord | None:
    """The run's row as a :class:`RunRecord` (errors and details decoded), or None."""
    rows = con.execute(
        "SELECT run_id, flow, started_at, finished_at, status, rows_inserted, rows_updated, "
        "rows_unchanged, calls, errors, details FROM ingest_runs WHERE run_id = ?",
        [run_id],
    ).fetchall()
    if not rows:
        return None
    (rid, flow, started, finished, status, inserted, updated, unchanged, calls, errors, details) = (
        rows[0]
    )
    return RunRecord(
        flow=flow,
        run_id=rid,
        started_at=started,
        finished_at=finished,
        status=status,
        rows_inserted=inserted or 0,
        rows_updated=updated or 0,
        rows_unchanged=unchanged or 0,
        calls=calls or 0,
        errors=json.loads(errors or "[]"),
        details=json.loads(details or "{}"),
    )


def mark_abandoned(
    con: duckdb.DuckDBPyConnection, *, except_run: str, reason: str, at: datetime
) -> list[str]:
    """Mark every other run still ``running`` as ``abandoned`` (it died without finishing);
    returns their ids. Called with the run lock held, inside the caller's transaction."""
    rows = con.execute(
        "UPDATE ingest_runs SET status = 'abandoned', finished_at = ?, "
        "errors = json_array(json_object('item', 'run', 'reason', ?)) "
        "WHERE status = 'running' AND run_id <> ? RETURNING run_id",
        [at, reason, except_run],
    ).fetchall()
    return [r[0] for r in rows]
