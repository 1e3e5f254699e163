"""The daily pipeline: (import a CSV) -> ingest -> study -> report, so every run leaves a report.

Its steps (``import_step``, ``ingest_step``, ``study_step``, ``report_step``) and their order
(:func:`run_pipeline`) are plain Python; a step runner executes them in this process or as
Prefect tasks (:mod:`flows.services.steps`), so ``--no-prefect`` and the Prefect flow
(:mod:`flows.pipelines.daily_pipeline`, scheduled by `aitokens serve`) take one path.

A failed ingest does not stop the run: it is recorded, the study and the report are built on
the data already held, the report carries a visible "data may be stale: ingest failed: ..."
caveat, and the run ends with :class:`PipelineFailedError` (exit 1; the Prefect run is Failed)
so a scheduler still sees the failure. A failed study or report is fatal at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from flows.services.report import DEFAULT_EVENT, DEFAULT_OUT, ReportSummary, build_reports
from flows.services.steps import InProcessSteps
from warehouse.db import resolve_db_path
from warehouse.errors import AitokensError
from warehouse.files import atomic_write_text, fixable_os_errors, safe_file_stem


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineSummary:
        """The summary a flow returned (:meth:`to_dict`), back as an object."""
        return cls(
            data["db"],
            data["event"],
            data["out"],
            steps=[StepOutcome(**s) for s in data["steps"]],
            caveats=list(data["caveats"]),
            reports=list(data["reports"]),
        )

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
def import_files(import_csv: str | Path | Sequence[str | Path] | None) -> list[str]:
    """The files ``--import`` names, in order: one path (the form every earlier caller
    uses) or several (prices, then market caps); none for ``None`` or an empty list."""
    if import_csv is None:
        return []
    if isinstance(import_csv, str | Path):
        return [str(import_csv)] if str(import_csv) else []
    return [str(f) for f in import_csv if str(f)]


def import_step(db: str | Path | None, csv_file: str | Path) -> str:
    """Upsert a long-format price CSV or a cap file (idempotent: a second import changes
    nothing)."""
    from flows.services.csv_import import import_csv

    return import_csv(db, csv_file, publish=False).one_line()  # published after the study


def ingest_step(db: str | Path | None) -> str:
    """The daily ingestion without Prefect (CoinGecko and Yahoo settings from the environment)."""
    from flows.services.ingest_options import IngestOptions
    from flows.services.steps import run_ingestion

    s = run_ingestion(IngestOptions(flow="daily_ingest"), db=db)
    return _ingest_detail(s.status, s.total_calls, s.inserted, s.updated, len(s.skipped))


def _ingest_detail(status: str, calls: int, inserted: int, updated: int, skipped: int) -> str:
    return f"{status}: {calls} API calls, {inserted:,} rows inserted, {updated:,} updated" + (
        f", {skipped} series skipped" if skipped else ""
    )


def study_step(
    db: str | Path | None, event: str, out: str | Path, return_kind: str = "simple"
) -> str:
    """:func:`stored_study_step`'s one-line detail."""
    return stored_study_step(db, event, out, return_kind)[0]


def stored_study_step(
    db: str | Path | None, event: str, out: str | Path, return_kind: str = "simple"
) -> tuple[str, str]:
    """Run and store the event study (``aitokens study --event EVENT [--return-kind KIND]``'s
    plain functions: one leg for the AI tokens against BTC, one for NVDA/AMD against SPY), and
    write its text summary and JSON beside the report. Returns the step's detail and the stored
    group id, which the report step renders (``aitokens report --study ID``), so the report
    uses the pipeline's return kind too."""
    from flows.services.study import StudyRequest, execute_study

    spec = StudyRequest.from_cli({"events": [event], "return_kind": return_kind})
    outcome = execute_study(db, spec)
    folder = Path(out)
    stem = f"{safe_file_stem(event)}_study"  # an event named `../../x` or `*` stays in `out`
    warehouse = resolve_db_path(db)
    with fixable_os_errors():
        atomic_write_text(folder / f"{stem}.txt", outcome.text, db=warehouse)
        atomic_write_text(
            folder / f"{stem}.json", json.dumps(outcome.to_payload(), indent=1), db=warehouse
        )
    results, group_id = outcome.results, outcome.group_id
    kept = sum(len(lr.result.params) for lr in results)
    return f"saved as {group_id} ({kept} pairs in {len(results)} legs); {stem}.txt", group_id


def report_step(
    db: str | Path | None,
    event: str,
    out: str | Path,
    caveats: list[str],
    study: str | None = None,
) -> ReportSummary:
    """Execute both notebooks into ``out`` (see :func:`flows.services.report.build_reports`);
    the event report renders stored study ``study`` (the one the pipeline just ran)."""
    return build_reports(db, event=event, out=out, caveats=caveats, study=study)


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


def report_summary_step(
    db: str, event: str, out: str, caveats: list[str], study: str | None = None
) -> dict[str, Any]:
    """The report step with a small, picklable result (paths and a count)."""
    rep = report_step(db, event, out, caveats, study)
    return {"html": [str(p) for p in rep.html], "figures": len(rep.figures)}


class PipelineSteps(Protocol):
    """Executes the pipeline's named steps (in process, or as Prefect tasks)."""

    def call(self, step: str, fn: Callable[..., Any], *args: Any) -> Any: ...

    def info(self, message: str) -> None: ...


def run_pipeline(
    db: str | Path | None = None,
    *,
    import_csv: str | Path | Sequence[str | Path] | None = None,
    offline: bool = False,
    event: str = DEFAULT_EVENT,
    out: str | Path = DEFAULT_OUT,
    return_kind: str = "simple",
    ingest: Callable[[str], str] = ingest_step,
    runner: PipelineSteps | None = None,
) -> PipelineSummary:
    """The whole run: import, ingest, study, report, the same under both runners.

    ``ingest(db)`` runs the ingestion and returns its one-line detail (in process by default;
    the Prefect flow passes its ``daily_ingest`` subflow). A failed ingest is recorded and the
    run goes on; :class:`PipelineFailedError` is raised at the end (after the report is
    written); study or report errors propagate at once.
    """
    steps: PipelineSteps = runner if runner is not None else InProcessSteps()
    path = str(resolve_db_path(db))
    out = str(Path(out).resolve())
    summary = PipelineSummary(path, event, out)
    for csv_file in import_files(import_csv):
        detail = steps.call("import_prices", import_step, path, csv_file)
        summary.steps.append(StepOutcome("import", "ok", detail))
    if offline:
        summary.steps.append(StepOutcome("ingest", "skipped", "--offline"))
        summary.caveats.append(offline_caveat())
    else:
        try:
            summary.steps.append(StepOutcome("ingest", "ok", ingest(path)))
        except Exception as exc:  # recorded; study and report still run on the data held
            step = StepOutcome("ingest", "failed", _first_line(exc))
            summary.steps.append(step)
            summary.caveats.append(stale_caveat(step))
            steps.info(f"ingest failed, continuing on the data held: {step.detail}")
    detail, study_id = steps.call("run_study", stored_study_step, path, event, out, return_kind)
    summary.steps.append(StepOutcome("study", "ok", detail))
    # The study's save published the snapshot: the report (and every analyst) reads it, and
    # renders that very study, so its numbers are the study step's.
    rep = steps.call(
        "build_report", report_summary_step, path, event, out, summary.caveats, study_id
    )
    summary.reports = list(rep["html"])
    summary.steps.append(StepOutcome("report", "ok", f"{rep['figures']} figures"))
    for line in summary.lines():
        steps.info(line)
    return finish(summary)


def ingest_detail(summary: dict[str, Any]) -> str:
    """The ingest step's one line from a run's summary dict (as a flow returns it)."""
    calls = sum(summary.get("calls", {}).values())
    return _ingest_detail(
        summary["status"],
        calls,
        summary.get("inserted", 0),
        summary.get("updated", 0),
        len(summary.get("skipped", {})),
    )


__all__ = [
    "PipelineFailedError",
    "PipelineSummary",
    "StepOutcome",
    "import_files",
    "import_step",
    "ingest_step",
    "report_step",
    "run_pipeline",
    "stored_study_step",
    "study_step",
]
