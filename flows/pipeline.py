"""The daily pipeline: (import a CSV) -> ingest -> study -> report, so every run leaves a report.

Plain steps first (``import_step``, ``ingest_step``, ``study_step``, ``report_step``,
``run_pipeline``), callable and testable without Prefect; then the Prefect flow ``pipeline``
whose tasks wrap the same steps, with the ingestion as a subflow (``flows.ingest.daily_ingest``).
``aitokens serve`` schedules this flow (see :func:`flows.schedule.daily_flow`).

A failed ingest does not stop the run: it is recorded, the study and the report are built on
the data already held, the report carries a visible "data may be stale: ingest failed: ..."
caveat, and the run ends with :class:`PipelineFailedError` (exit 1; the Prefect run is Failed)
so a scheduler still sees the failure. A failed study or report is fatal at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.report import DEFAULT_EVENT, DEFAULT_OUT, ReportSummary, build_reports
from flows.retries import warehouse_locked
from warehouse.db import resolve_db_path
from warehouse.errors import AitokensError


class PipelineFailedError(AitokensError):
    """A step failed but the run went on (e.g. ingest); the report was still written."""

    def __init__(self, message: str, summary: PipelineSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class StepOutcome:
    """One step of a run: ``ok``, ``skipped`` or ``failed``, with one line of detail."""

    name: str
    status: str
    detail: str = ""


@dataclass
class PipelineSummary:
    """What a run did (small: never the data)."""

    db: str
    event: str
    out: str
    steps: list[StepOutcome] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[StepOutcome]:
        return [s for s in self.steps if s.status == "failed"]

    def lines(self) -> list[str]:
        out = [f"Pipeline on {self.db} (event {self.event}):"]
        out += [f"  {s.name:<7} {s.status:<8} {s.detail}".rstrip() for s in self.steps]
        out += [f"  report  {p}" for p in self.reports]
        out += [f"  caveat  {c}" for c in self.caveats]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "event": self.event,
            "out": self.out,
            "steps": [s.__dict__ for s in self.steps],
            "caveats": list(self.caveats),
            "reports": list(self.reports),
        }


# --------------------------------------------------------------------------- plain steps
def import_step(db: str | Path | None, csv_file: str | Path) -> str:
    """Upsert a long-format price CSV (idempotent: a second import changes nothing)."""
    from flows.sources.csv_import import read_price_csv
    from warehouse.db import open_warehouse
    from warehouse.imports import import_prices

    parsed = read_price_csv(Path(csv_file))
    with open_warehouse(db) as con:
        report = import_prices(
            con,
            parsed.frame,
            path=Path(csv_file),
            rows_read=parsed.rows_read,
            exact_duplicates=parsed.exact_duplicates,
        )
    r = report.result
    return (
        f"{Path(csv_file).name}: {report.rows_read:,} rows, {r.inserted:,} inserted, "
        f"{r.updated:,} updated, {r.unchanged:,} unchanged"
    )


def ingest_step(db: str | Path | None) -> str:
    """The daily ingestion without Prefect (CoinGecko and Yahoo settings from the environment)."""
    from flows.ingestion import IngestOptions, run_ingestion

    s = run_ingestion(IngestOptions(flow="daily_ingest"), db=db)
    return _ingest_detail(s.status, s.total_calls, s.inserted, s.updated, len(s.skipped))


def _ingest_detail(status: str, calls: int, inserted: int, updated: int, skipped: int) -> str:
    return f"{status}: {calls} API calls, {inserted:,} rows inserted, {updated:,} updated" + (
        f", {skipped} series skipped" if skipped else ""
    )


def study_step(db: str | Path | None, event: str, out: str | Path) -> str:
    """Run and store the event study (``aitokens study --event EVENT``'s plain functions: one
    leg for the AI tokens against BTC, one for NVDA/AMD against SPY), and write its text summary
    and JSON beside the report."""
    from flows.study import StudyRequest, execute_study

    outcome = execute_study(db, StudyRequest(events=[event]))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{event}_study.txt").write_text(outcome.text, encoding="utf-8")
    (folder / f"{event}_study.json").write_text(
        json.dumps(outcome.to_payload(), indent=1), encoding="utf-8"
    )
    results, group_id = outcome.results, outcome.group_id
    kept = sum(len(lr.result.params) for lr in results)
    return f"saved as {group_id} ({kept} pairs in {len(results)} legs); {event}_study.txt"


def report_step(
    db: str | Path | None, event: str, out: str | Path, caveats: list[str]
) -> ReportSummary:
    """Execute both notebooks into ``out`` (see :func:`flows.report.build_reports`)."""
    return build_reports(db, event=event, out=out, caveats=caveats)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"


def stale_caveat(outcome: StepOutcome) -> str:
    reason = outcome.detail.rstrip(".")
    return (
        f"data may be stale: ingest failed: {reason}. The study and this report use the data "
        "already in the warehouse; see `aitokens status` for each series' last date."
    )


def offline_caveat() -> str:
    return (
        "ingest skipped (--offline): the study and this report use the data already in the "
        "warehouse; see `aitokens status` for each series' last date."
    )


def finish(summary: PipelineSummary) -> PipelineSummary:
    """Raise :class:`PipelineFailedError` when a step failed (after the report was written)."""
    if summary.failed:
        what = "; ".join(f"{s.name} failed: {s.detail}" for s in summary.failed)
        where = f" ({', '.join(summary.reports)})" if summary.reports else ""
        raise PipelineFailedError(
            f"{what}; the study and report were built on the data already held{where}",
            summary,
        )
    return summary


def run_pipeline(
    db: str | Path | None = None,
    *,
    import_csv: str | Path | None = None,
    offline: bool = False,
    event: str = DEFAULT_EVENT,
    out: str | Path = DEFAULT_OUT,
    ingest: Callable[[str | Path | None], str] = ingest_step,
) -> PipelineSummary:
    """The whole run without Prefect. Raises :class:`PipelineFailedError` at the end when the
    ingest failed (the report is written first); study or report errors propagate at once."""
    path = str(resolve_db_path(db))
    summary = PipelineSummary(path, event, str(out))
    if import_csv:
        summary.steps.append(StepOutcome("import", "ok", import_step(path, import_csv)))
    if offline:
        summary.steps.append(StepOutcome("ingest", "skipped", "--offline"))
        summary.caveats.append(offline_caveat())
    else:
        try:
            summary.steps.append(StepOutcome("ingest", "ok", ingest(path)))
        except Exception as exc:  # recorded; the run goes on
            step = StepOutcome("ingest", "failed", _first_line(exc))
            summary.steps.append(step)
            summary.caveats.append(stale_caveat(step))
    summary.steps.append(StepOutcome("study", "ok", study_step(path, event, out)))
    rep = report_step(path, event, out, summary.caveats)
    summary.reports = [str(p) for p in rep.html]
    summary.steps.append(StepOutcome("report", "ok", f"{len(rep.figures)} figures"))
    return finish(summary)


# --------------------------------------------------------------------------- Prefect
LOCK_RETRY = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": warehouse_locked,
}


@task(name="import_prices", **LOCK_RETRY)
def import_prices(db: str, csv_file: str) -> str:
    return import_step(db, csv_file)


@task(name="run_study", **LOCK_RETRY)
def run_study(db: str, event: str, out: str) -> str:
    return study_step(db, event, out)


@task(name="build_report", cache_policy=NO_CACHE)
def build_report(db: str, event: str, out: str, caveats: list[str]) -> dict[str, Any]:
    rep = report_step(db, event, out, caveats)
    return {"html": [str(p) for p in rep.html], "figures": len(rep.figures)}


@flow(name="pipeline", flow_run_name="pipeline-{event}", log_prints=True)
def pipeline(
    db: str | None = None,
    import_csv: str | None = None,
    offline: bool = False,
    event: str = DEFAULT_EVENT,
    out: str = str(DEFAULT_OUT),
) -> dict[str, Any]:
    """Daily run: optional CSV import, ingestion (subflow), event study, notebooks to HTML."""
    from flows.ingest import daily_ingest

    logger = get_run_logger()
    path = str(resolve_db_path(db))
    out = str(Path(out).resolve()) if not os.path.isabs(out) else out
    summary = PipelineSummary(path, event, out)
    if import_csv:
        summary.steps.append(StepOutcome("import", "ok", import_prices(path, import_csv)))
    if offline:
        summary.steps.append(StepOutcome("ingest", "skipped", "--offline"))
        summary.caveats.append(offline_caveat())
    else:
        try:
            s = daily_ingest(db=path)
            inserted, updated = s.get("inserted", 0), s.get("updated", 0)
            calls = sum(s.get("calls", {}).values())
            detail = _ingest_detail(s["status"], calls, inserted, updated, len(s["skipped"]))
            summary.steps.append(StepOutcome("ingest", "ok", detail))
        except Exception as exc:  # recorded; study and report still run on the data held
            step = StepOutcome("ingest", "failed", _first_line(exc))
            summary.steps.append(step)
            summary.caveats.append(stale_caveat(step))
            logger.warning("ingest failed, continuing on the data held: %s", step.detail)
    summary.steps.append(StepOutcome("study", "ok", run_study(path, event, out)))
    rep = build_report(path, event, out, summary.caveats)
    summary.reports = rep["html"]
    summary.steps.append(StepOutcome("report", "ok", f"{rep['figures']} figures"))
    for line in summary.lines():
        logger.info(line)
    return finish(summary).to_dict()


__all__ = [
    "PipelineFailedError",
    "PipelineSummary",
    "StepOutcome",
    "import_step",
    "ingest_step",
    "pipeline",
    "report_step",
    "run_pipeline",
    "study_step",
]
