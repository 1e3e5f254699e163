"""What an ingestion run did: the row of ``ingest_runs``, the CLI's closing table, the artifact."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warehouse.load import UpsertResult
from warehouse.runs import RunRecord


@dataclass
class IngestSummary:
    """Counts of one run: calls per endpoint, rows per table, skipped series, notes."""

    run_id: str
    flow: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    calls: Counter = field(default_factory=Counter)
    rows: dict[str, UpsertResult] = field(default_factory=dict)
    series_fetched: int = 0
    series_up_to_date: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add_rows(self, result: UpsertResult) -> None:
        held = self.rows.get(result.table)
        self.rows[result.table] = result if held is None else held + result

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def inserted(self) -> int:
        return sum(r.inserted for r in self.rows.values())

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.rows.values())

    @property
    def unchanged(self) -> int:
        return sum(r.unchanged for r in self.rows.values())

    @classmethod
    def from_record(cls, run: RunRecord) -> IngestSummary:
        """The summary of a finished run rebuilt from its ``ingest_runs`` row (e.g. a run a
        Prefect flow made in another process); row counts come as one ``all tables`` line."""
        details = run.details
        summary = cls(run.run_id, run.flow, run.started_at, run.finished_at, run.status)
        summary.calls.update(details.get("calls", {}))
        summary.rows["all tables"] = UpsertResult(
            "all tables", run.rows_inserted, run.rows_updated, run.rows_unchanged
        )
        summary.series_fetched = details.get("series_fetched", 0)
        summary.series_up_to_date = details.get("series_up_to_date", 0)
        summary.notes = list(details.get("notes", []))
        summary.skipped = {e["item"]: e["reason"] for e in run.errors if e.get("item") != "run"}
        return summary

    def to_dict(self) -> dict[str, Any]:
        """The small summary a flow returns (never the data)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "calls": dict(self.calls),
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
        }

    def to_markdown(self) -> str:
        """The Prefect artifact: counts, skipped coins with reasons, notes. No secrets."""
        lines = [
            f"# {self.flow} `{self.run_id}`: {self.status}",
            "",
            f"- started {self.started_at:%Y-%m-%d %H:%M:%S} UTC, finished "
            f"{self.finished_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.finished_at
            else "- running",
            f"- API calls: {self.total_calls} ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.calls.items()))
            + ")",
            f"- series fetched: {self.series_fetched}, "
            f"already up to date: {self.series_up_to_date}",
            "",
            "| table | inserted | updated | unchanged |",
            "| --- | ---: | ---: | ---: |",
        ]
        for table, r in sorted(self.rows.items()):
            lines.append(f"| {table} | {r.inserted} | {r.updated} | {r.unchanged} |")
        if self.skipped:
            lines += ["", "## Skipped", "", "| series | reason |", "| --- | --- |"]
            lines += [f"| {k} | {v} |" for k, v in sorted(self.skipped.items())]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.error:
            lines += ["", f"**Error:** {self.error}"]
        return "\n".join(lines)

    def log_line(self) -> str:
        return (
            f"{self.flow} {self.status}: {self.total_calls} calls, {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {len(self.skipped)} skipped"
        )
