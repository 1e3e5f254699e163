"""`aitokens report` and `aitokens pipeline`: notebooks to HTML, and the daily run."""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.core import ParameterSource

from flows.cli.options import db_option, some_study_options

event_option = click.option(
    "--event",
    default="sora",
    show_default=True,
    help="Default event to study (see `aitokens events list`; e.g. sora, gpt4o).",
)
out_option = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder for the HTML reports, executed notebooks and PNG figures.",
)


@click.command("report")
@event_option
@out_option
@click.option(
    "--only",
    type=click.Choice(["event", "sector"]),
    default=None,
    help="Build only the event report or only the sector report (default: both).",
)
@click.option(
    "--study",
    "study",
    metavar="ID",
    default=None,
    help="Render this stored study (a study or group id, `aitokens studies list`) instead of "
    "a fresh `aitokens study --event EVENT`; the report is named after its event.",
)
@db_option
def report_command(
    event: str, out: Path, only: str | None, study: str | None, db: Path | None
) -> None:
    """Execute the report notebooks headless and write self-contained HTML and PNG figures.

    The event report shows the study `aitokens study --event EVENT` prints (the same
    service, series and numbers), or with --study ID the stored study ID replayed on the
    series and dates it read (`aitokens pipeline` renders the study it just stored).

    Runs notebooks/sora_event_study.ipynb (the event study of --event) and
    notebooks/ai_sector.ipynb on the warehouse, read-only, and writes OUT/<event>_event_study.html,
    OUT/ai_sector.html (figures embedded), the executed notebooks and
    OUT/figures/<report>/*.png. A warehouse without the needed prices is refused with the
    command that fills it.

    Example: aitokens report --event sora --out reports/
    Example: aitokens report --study st-20240601T120000-ab12cd
    """
    from flows.errors import OptionError
    from flows.services.report import EVENT_NOTEBOOK, SECTOR_NOTEBOOK, build_reports

    ctx = click.get_current_context()
    if study is not None and ctx.get_parameter_source("event") is ParameterSource.COMMANDLINE:
        raise OptionError("--study renders a stored study of its own event: give --study alone")
    chosen = {"event": (EVENT_NOTEBOOK,), "sector": (SECTOR_NOTEBOOK,)}
    notebooks = chosen.get(only or "", (EVENT_NOTEBOOK, SECTOR_NOTEBOOK))
    summary = build_reports(db, event=event, out=out, notebooks=notebooks, study=study)
    for line in summary.lines():
        click.echo(line)


@click.command("pipeline")
@click.option(
    "--import",
    "import_csv",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    help="Import this price CSV or market-cap file first (idempotent: a rerun changes "
    "nothing); repeat for several files, imported in order.",
)
@click.option("--offline", is_flag=True, help="Skip the ingestion (no network).")
@event_option
@out_option
@click.option("--no-prefect", is_flag=True, help="Run the same steps in-process, without Prefect.")
@some_study_options("return_kind")
@db_option
def pipeline_command(
    import_csv: tuple[Path, ...],
    offline: bool,
    event: str,
    out: Path,
    no_prefect: bool,
    return_kind: str,
    db: Path | None,
) -> None:
    """The daily job: [import CSVs ->] ingest -> study -> report, as a Prefect flow.

    Each run leaves a fresh report in OUT. If the ingestion fails (no network, an API
    outage), the failure is recorded, the study and report are still built on the data
    already held with a "data may be stale" caveat at the top, and the command exits 1.
    `aitokens serve` schedules this flow daily at 01:15 UTC.

    Example: aitokens pipeline --import ../shared/data/sora2024/prices.csv --offline
    Example: aitokens pipeline --import ../shared/data/sora2024/prices.csv
    --import ../shared/data/ai_events/market_caps.csv --offline
    """
    from flows.services.pipeline import PipelineFailedError, run_pipeline

    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    try:
        if no_prefect:
            summary = run_pipeline(
                db,
                import_csv=list(import_csv),
                offline=offline,
                event=event,
                out=out,
                return_kind=return_kind,
            )
        else:
            summary = _run_flow(db, import_csv, offline, event, out, verbose, return_kind)
    except PipelineFailedError as exc:
        if exc.summary is not None:
            _echo(exc.summary)
        raise
    _echo(summary)


def _run_flow(db, import_csv, offline, event, out, verbose, return_kind="simple"):
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.pipelines.ephemeral import guard_temporary_server

    guard_temporary_server()  # before Prefect is imported: it reads settings then
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        click.echo(
            "Starting Prefect with a temporary local server (~15 s); point PREFECT_API_URL at "
            "`prefect server start` to keep run history, or pass --no-prefect."
        )
    from flows.pipelines.daily_pipeline import pipeline
    from flows.services.pipeline import PipelineSummary

    result = pipeline(
        db=str(db) if db else None,
        import_csv=[str(f) for f in import_csv] or None,
        offline=offline,
        event=event,
        out=str(out.resolve()),
        return_kind=return_kind,
    )
    return PipelineSummary.from_dict(result)


def _echo(summary) -> None:
    for line in summary.lines():
        click.echo(line)


def register(cli: click.Group) -> None:
    """Add ``aitokens report`` and ``aitokens pipeline`` to the CLI."""
    cli.add_command(report_command)
    cli.add_command(pipeline_command)
