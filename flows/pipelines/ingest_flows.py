"""Prefect 3 flows of the ingestion: ``daily_ingest`` and ``backfill``.

Thin on purpose: each builds the run's options and hands :func:`flows.services.steps.
run_ingestion` a :class:`~flows.pipelines.prefect_steps.PrefectSteps` runner. Fetch tasks run
concurrently on the flow's task runner; loads run one at a time in the flow (DuckDB has one
writer). Flow parameters never carry secrets: keys are read from the environment (or a
Prefect Secret block) inside the run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from prefect import flow

from flows.pipelines.prefect_steps import PrefectSteps
from flows.pipelines.runners import build_task_runner
from flows.services.ingest_options import IngestOptions
from flows.services.steps import run_ingestion

# Set by the CLI to drive its progress bar; called from the flow's own thread.
ProgressHooks = tuple[Callable[[int], None], Callable[[str, int], None]]
progress_hooks: ProgressHooks | None = None


def _run(options: IngestOptions, db: str | None) -> dict[str, Any]:
    """Shared body of both flows; returns a small summary (never the data)."""
    on_plan, on_progress = progress_hooks or (None, None)
    summary = run_ingestion(
        options, db=db, runner=PrefectSteps(), on_plan=on_plan, on_progress=on_progress
    )
    return summary.to_dict()


@flow(
    name="daily_ingest",
    flow_run_name="daily-ingest-{db}",
    task_runner=build_task_runner(),
    log_prints=True,
)
def daily_ingest(
    db: str | None = None,
    coins: list[str] | None = None,
    tickers: list[str] | None = None,
    refresh_snapshot: bool = False,
    universe: str = "category",
    sources: list[str] | None = None,
) -> dict[str, Any]:
    """Fetch the complete days missing since the last run: snapshot, histories, /global.

    ``universe="all"`` follows every coin CoinGecko lists instead of the configured categories.
    """
    options = IngestOptions(
        flow="daily_ingest",
        coins=tuple(coins) if coins else None,
        tickers=tuple(tickers) if tickers else None,
        refresh_snapshot=refresh_snapshot,
        universe=universe,
        sources=tuple(sources) if sources else None,
    )
    return _run(options, db)


@flow(
    name="backfill",
    flow_run_name="backfill-since-{since}",
    task_runner=build_task_runner(),
    log_prints=True,
)
def backfill(
    since: date,
    db: str | None = None,
    until: date | None = None,
    coins: list[str] | None = None,
    tickers: list[str] | None = None,
    universe: str = "category",
    interval: str = "1d",
    sources: list[str] | None = None,
) -> dict[str, Any]:
    """Fill history from ``since`` (``interval`` "1h": the hourly sources' window); resumes
    where an interrupted backfill stopped."""
    options = IngestOptions(
        flow="backfill",
        since=since,
        until=until,
        coins=tuple(coins) if coins else None,
        tickers=tuple(tickers) if tickers else None,
        universe=universe,
        interval=interval,
        sources=tuple(sources) if sources else None,
    )
    return _run(options, db)
