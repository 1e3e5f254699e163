"""`aitokens ingest`, `aitokens backfill` and `aitokens serve`."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from flows.cli.options import db_option

DAILY_CRON = "15 1 * * *"  # UTC: CoinGecko publishes the last complete day at about 00:35 UTC


def _csv_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _quiet_prefect(verbose: bool) -> None:
    """Prefect's own INFO chatter and telemetry (no network here) stay off unless asked for."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _verbose() -> bool:
    ctx = click.get_current_context()
    root = ctx.find_root()
    return bool(root.params.get("verbose"))


def print_summary(summary: Any) -> None:
    """The closing table of a run: calls, rows, skipped series with reasons, notes."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    console.print(
        f"[bold]{summary.flow}[/bold] {summary.run_id}: {summary.status}; "
        f"{summary.total_calls} API calls, {summary.series_fetched} series fetched, "
        f"{summary.series_up_to_date} already up to date"
    )
    if summary.calls:
        console.print("calls: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.calls.items())))
    table = Table("table", "inserted", "updated", "unchanged")
    for name, r in sorted(summary.rows.items()):
        table.add_row(name, f"{r.inserted:,}", f"{r.updated:,}", f"{r.unchanged:,}")
    if summary.rows:
        console.print(table)
    elif summary.skipped:
        console.print("No rows written: every series to fetch was skipped (reasons below).")
    else:
        console.print("No rows written: the warehouse was already up to date.")
    for series, reason in sorted(summary.skipped.items()):
        console.print(f"skipped {series}: {reason}")
    for note in summary.notes:
        console.print(f"note: {note}")


class _Progress:
    """A rich progress bar over history calls, with ETA; fed by the ingestion's hooks."""

    def __init__(self, label: str, calls_per_minute: float) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.calls_per_minute = calls_per_minute
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("calls"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task(label, total=None)
        self.label = label

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_plan(self, total_calls: int) -> None:
        minutes = total_calls / self.calls_per_minute
        span = f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
        self.progress.console.print(
            f"{total_calls:,} history calls planned; at {self.calls_per_minute:g} calls/min "
            f"that takes about {span}"
        )
        self.progress.update(self.task, total=total_calls)

    def on_progress(self, series_id: str, calls: int) -> None:
        self.progress.update(self.task, advance=calls, description=f"{self.label} {series_id}")


def _run(
    options: Any,
    db: Path | None,
    use_prefect: bool,
    label: str,
    task_runner: str | None = None,
    dask_address: str | None = None,
) -> None:
    from flows.services.steps import run_ingestion
    from flows.sources.registry import source_class
    from warehouse.errors import InputError

    if (task_runner == "dask" or dask_address) and not use_prefect:
        raise InputError("the Dask task runner runs Prefect tasks: drop --no-prefect")
    _quiet_prefect(_verbose())
    # The ETA is paced by CoinGecko: its plan's rate is the tightest of the sources.
    rate = source_class("coingecko").from_env().calls_per_minute
    with _Progress(label, rate) as bar:
        if use_prefect:
            from flows.pipelines.ephemeral import guard_temporary_server
            from flows.services.ingestion import network_preflight

            network_preflight(options, db)  # no network: say so before starting Prefect
            guard_temporary_server()  # before Prefect is imported: it reads settings then
            from flows.pipelines import ingest_flows as prefect_flows

            if not os.environ.get("PREFECT_API_URL"):
                bar.progress.console.print(
                    "Starting Prefect with a temporary local server (~15 s); point "
                    "PREFECT_API_URL at `prefect server start` to keep run history."
                )
            prefect_flows.progress_hooks = (bar.on_plan, bar.on_progress)
            try:
                flow = (
                    prefect_flows.backfill
                    if options.flow == "backfill"
                    else prefect_flows.daily_ingest
                )
                if task_runner or dask_address:
                    from flows.pipelines.runners import build_task_runner

                    runner = build_task_runner(task_runner or "dask", address=dask_address)
                    flow = flow.with_options(task_runner=runner)
                params = _flow_params(options, db)
                result = flow(**params)
            finally:
                prefect_flows.progress_hooks = None
            summary = _run_summary(db, result["run_id"])
        else:
            summary = run_ingestion(
                options, db=db, on_plan=bar.on_plan, on_progress=bar.on_progress
            )
    print_summary(summary)


def _flow_params(options: Any, db: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "db": str(db) if db else None,
        "coins": list(options.coins) if options.coins else None,
        "tickers": list(options.tickers) if options.tickers else None,
        "universe": options.universe,
        "sources": list(options.sources) if options.sources else None,
    }
    if options.flow == "backfill":
        params.update(since=options.since, until=options.until, interval=options.interval)
    else:
        params["refresh_snapshot"] = options.refresh_snapshot
    return params


def _run_summary(db: Path | None, run_id: str) -> Any:
    """Rebuild the summary of the run the flow just finished (by its id) from ``ingest_runs``."""
    from flows.services.ingest_summary import IngestSummary
    from warehouse.db import open_warehouse
    from warehouse.runs import read_run

    with open_warehouse(db, read_only=True) as con:
        run = read_run(con, run_id)
    if run is None:  # the flow returned an id it never recorded: a bug, not the user's
        raise RuntimeError(f"run {run_id} is not in ingest_runs")
    return IngestSummary.from_record(run)


def _common(fn: Any) -> Any:
    fn = click.option(
        "--dask-address",
        default=None,
        help="Run fetch tasks on this Dask cluster (tcp://host:8786); implies --task-runner dask.",
    )(fn)
    fn = click.option(
        "--task-runner",
        type=click.Choice(["threads", "dask"]),
        default=None,
        help="Where fetch tasks run (default threads, or $AITOKENS_TASK_RUNNER); dask starts a "
        "local cluster of worker processes unless --dask-address is given.",
    )(fn)
    fn = click.option(
        "--universe",
        type=click.Choice(["category", "all"]),
        default="category",
        show_default=True,
        help="all: every coin CoinGecko lists (~15,000), not only the configured categories; "
        "the calls and time it needs are printed before history fetching starts.",
    )(fn)
    fn = click.option(
        "--no-prefect", is_flag=True, help="Run the same steps in-process, without Prefect."
    )(fn)
    fn = click.option(
        "--tickers", help="Equity tickers (default NVDA,AMD,SPY,QQQ or $AITOKENS_YAHOO_TICKERS)."
    )(fn)
    fn = click.option("--coins", help="Only these CoinGecko ids (BTC and ETH are always added).")(
        fn
    )
    fn = click.option(
        "--sources",
        help="Only these price sources, e.g. binance or coingecko,yahoo (default: the enabled "
        "ones of the run's interval; `ingest` also keeps coingecko_hourly's rolling window).",
    )(fn)
    return db_option(fn)


@click.command("ingest")
@click.option(
    "--refresh-snapshot",
    is_flag=True,
    help="Take today's category and /global snapshot again even if held.",
)
@_common
def ingest_command(
    refresh_snapshot: bool,
    universe: str,
    task_runner: str | None,
    dask_address: str | None,
    coins: str | None,
    tickers: str | None,
    no_prefect: bool,
    sources: str | None,
    db: Path | None,
) -> None:
    """Fetch the complete UTC days missing since the last run (the daily job).

    Snapshots the artificial-intelligence category and its members, then each coin's and
    ticker's missing days, then /global. A second run on the same day makes no history call.
    Keys: COINGECKO_PLAN (keyless|demo|pro) and COINGECKO_API_KEY, read from the environment.

    Example: aitokens ingest --db data/aitokens.duckdb
    """
    from flows.services.ingest_options import IngestOptions

    options = IngestOptions(
        flow="daily_ingest",
        coins=_tuple(coins),
        tickers=_tuple(tickers),
        refresh_snapshot=refresh_snapshot,
        universe=universe,
        sources=_tuple(sources),
    )
    _run(options, db, not no_prefect, "ingest", task_runner, dask_address)


@click.command("backfill")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="First close date to hold, e.g. 2023-01-01 (a daily backfill needs it).",
)
@click.option(
    "--interval",
    type=click.Choice(["1d", "1h"]),
    default="1d",
    show_default=True,
    help="1h: hourly closes of the AI coins and BTC/ETH (CoinGecko), around --around.",
)
@click.option(
    "--around",
    default=None,
    help="With --interval 1h: a catalog event (e.g. sora) or a date; fetch the hours of the "
    "--window-days around it.",
)
@click.option(
    "--window-days",
    type=click.IntRange(2, 89),
    default=30,
    show_default=True,
    help="With --around: days of hourly history, centred on the event (one call per coin).",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Last close date (default: yesterday, the last complete UTC day).",
)
@_common
def backfill_command(
    since: datetime | None,
    interval: str,
    around: str | None,
    window_days: int,
    until: datetime | None,
    universe: str,
    task_runner: str | None,
    dask_address: str | None,
    coins: str | None,
    tickers: str | None,
    no_prefect: bool,
    sources: str | None,
    db: Path | None,
) -> None:
    """Fill history from --since; resumable: a rerun continues where a crash stopped.

    Keyless and demo CoinGecko plans serve only the past 365 days (error 10012): the range is
    cut to fit and the summary says so (hourly windows older than that are refused).

    Example: aitokens backfill --since 2023-01-01
    Example: aitokens backfill --interval 1h --around sora --window-days 30
    """
    from flows.services.ingest_options import IngestOptions
    from warehouse.errors import InputError

    given = click.get_current_context().get_parameter_source("window_days")
    if around is None and given is click.core.ParameterSource.COMMANDLINE:
        raise InputError("--window-days goes with --around (the window around an event)")
    if around is not None:
        if interval != "1h":
            raise InputError("--around goes with --interval 1h (hourly history around an event)")
        if since is not None or until is not None:
            raise InputError("--around sets the dates itself: drop --since/--until")
        start, end = _window_around(around, window_days, db)
    elif since is None:
        raise click.UsageError(
            "Missing option '--since' (or, for hourly history: --interval 1h --around EVENT)."
        )
    else:
        start, end = since.date(), (until.date() if until else None)
    if end is not None and end < start:
        raise InputError(f"--until {end} is before --since {start}")
    if start < date(2009, 1, 3):
        raise InputError(f"--since {start} is before the first bitcoin block (2009-01-03)")
    options = IngestOptions(
        flow="backfill",
        since=start,
        until=end,
        coins=_tuple(coins),
        tickers=_tuple(tickers),
        universe=universe,
        interval=interval,
        sources=_tuple(sources),
    )
    _run(options, db, not no_prefect, "backfill", task_runner, dask_address)


def _window_around(event: str, days: int, db: Path | None) -> tuple[date, date | None]:
    """The UTC days of a window of ``days`` centred on ``event`` (a catalog name or a date),
    ending no later than yesterday (the last complete UTC day)."""
    from datetime import UTC, timedelta

    from flows.services.study import resolve_event
    from warehouse.db import open_warehouse, resolve_db_path
    from warehouse.errors import InputError

    # Read-only when the file exists (the run lock is not held yet); a new file is created
    # here with its seeded catalog, as the backfill would create it anyway.
    existing = resolve_db_path(db).exists()
    with open_warehouse(db, read_only=existing) as con:
        ev = resolve_event(con, event)
    day0 = ev.map("crypto").session.date()
    start = day0 - timedelta(days=days // 2)
    end = start + timedelta(days=days - 1)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    if start > yesterday:
        raise InputError(f"{event} ({day0}) has no complete UTC day of hourly history yet")
    return start, min(end, yesterday)


@click.command("serve")
@click.option("--cron", default=DAILY_CRON, show_default=True, help="Schedule, in UTC.")
@click.option("--name", default="daily", show_default=True, help="Deployment name.")
@click.option("--db", "db", default=None, help="Warehouse file the scheduled runs write.")
@click.option("--event", default=None, help="Event each run studies and reports (default sora).")
@click.option(
    "--out", default=None, help="Folder each run writes its report to (default reports/)."
)
def serve_command(cron: str, name: str, db: str | None, event: str | None, out: str | None) -> None:
    """Serve the daily pipeline as a Prefect deployment on a cron schedule (UTC).

    Needs a Prefect server: run `prefect server start` in another terminal and
    `export PREFECT_API_URL=http://127.0.0.1:4200/api`. Keeps running; Ctrl-C stops it.

    Example: aitokens serve --cron "15 1 * * *"
    """
    from flows.pipelines.schedule import serve_daily

    _quiet_prefect(True)
    serve_daily(name=name, cron=cron, db=db, event=event, out=out)


def _tuple(value: str | None) -> tuple[str, ...] | None:
    items = _csv_list(value)
    return tuple(items) if items else None


def register(cli: click.Group) -> None:
    for command in (ingest_command, backfill_command, serve_command):
        cli.add_command(command)
