"""Prefect 3 flows of the ingestion: ``daily_ingest`` and ``backfill``.

Thin on purpose: each task wraps one step of :class:`flows.ingestion.Ingestion` (plain Python,
tested without Prefect). Fetch tasks run concurrently on the flow's task runner and retry only
transient failures (429, 5xx, timeouts); loads run one at a time in the flow (DuckDB has one
writer) and retry only a held file lock. Flow parameters never carry secrets: keys are read
from the environment (or a Prefect Secret block) inside the run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture

from flows.errors import RateLimitedError, UpstreamError
from flows.fetching import FetchResult, SourceSettings, fetch_series
from flows.ingestion import (
    Ingestion,
    IngestOptions,
    IngestSummary,
    SeriesPlan,
    completed_fetches,
)
from flows.retries import retry_when, warehouse_locked
from flows.runlock import run_lock
from flows.runners import build_task_runner, fetch_processes

# Set by the CLI to drive its progress bar; called from the flow's own thread.
ProgressHooks = tuple[Callable[[int], None], Callable[[str, int], None]]
progress_hooks: ProgressHooks | None = None


# 429, 5xx and timeouts (the client already retried within its time budget), never a 4xx, a
# bad key or a block page; and a load whose file an analyst held past the lock timeout.
_transient_source_error = retry_when(RateLimitedError, UpstreamError)


IO_TASK = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": _transient_source_error,
}
LOAD_TASK = {
    "cache_policy": NO_CACHE,
    "retries": 3,
    "retry_delay_seconds": [5, 30, 120],
    "retry_condition_fn": warehouse_locked,
}


@task(name="start_run", cache_policy=NO_CACHE)
def start_run(ing: Ingestion) -> str:
    ing.start()
    return ing.run.run_id


@task(name="snapshot_sector", **IO_TASK)
def snapshot_sector(ing: Ingestion) -> list[str]:
    return ing.snapshot_sector()


@task(name="plan_histories", cache_policy=NO_CACHE)
def plan_histories(ing: Ingestion, coin_ids: list[str]) -> list[SeriesPlan]:
    plans = ing.plan_coins(coin_ids)
    if ing.options.equities:
        plans += ing.plan_equities()
    return [p for p in plans if not p.up_to_date]


@task(name="fetch_history", task_run_name="fetch-{plan.series_id}", **IO_TASK)
def fetch_history(plan: SeriesPlan, settings: SourceSettings, now: datetime) -> FetchResult:
    """Picklable in and out, so it runs in a thread or on a Dask worker alike."""
    return fetch_series(plan, settings, now)


@task(name="load_history", task_run_name="load-{result.plan.series_id}", **LOAD_TASK)
def load_history(ing: Ingestion, result: FetchResult) -> None:
    ing.load(result)


@task(name="snapshot_global", **IO_TASK)
def snapshot_global(ing: Ingestion) -> None:
    ing.snapshot_global()


def _run(options: IngestOptions, db: str | None) -> dict[str, Any]:
    """Shared body of both flows; returns a small summary (never the data)."""
    logger = get_run_logger()
    ing = Ingestion(options, db=db)
    logger.info("ingesting into %s through %s (%s)", ing.db_file, ing.end, options.to_params())
    with run_lock(ing.db_file, options.flow):
        start_run(ing)
        try:
            coin_ids = snapshot_sector(ing)
            plans = plan_histories(ing, coin_ids)
            total = ing.planned_calls(plans)
            logger.info("%d series to fetch, %d history calls planned", len(plans), total)
            if progress_hooks:
                progress_hooks[0](total)
            processes = fetch_processes(FlowRunContext.get().task_runner)
            settings = ing.settings.per_worker(processes)
            if processes > 1:
                logger.info(
                    "fetching on %d worker processes, %.1f calls/min each",
                    processes,
                    settings.coingecko["calls_per_minute"],
                )
            futures: list[tuple[SeriesPlan, PrefectFuture]] = [
                (p, fetch_history.submit(p, settings, ing.now)) for p in plans
            ]
            for plan, result in completed_fetches(ing, futures):
                load_history(ing, result)
                if progress_hooks:
                    progress_hooks[1](plan.series_id, ing.planned_calls([plan]))
            if options.global_market:
                snapshot_global(ing)
        except BaseException as exc:
            summary = ing.finish("failed", error=f"{type(exc).__name__}: {exc}")
            _publish(summary)
            raise
        summary = ing.finish("completed")
    _publish(summary)
    return summary_dict(summary)


def _publish(summary: IngestSummary) -> None:
    create_markdown_artifact(
        key=summary.flow.replace("_", "-") + "-summary",
        markdown=summary.to_markdown(),
        description=f"{summary.flow} {summary.run_id}: {summary.status}",
    )
    get_run_logger().info(
        "%s %s: %d calls, %d inserted, %d updated, %d unchanged, %d skipped",
        summary.flow,
        summary.status,
        summary.total_calls,
        summary.inserted,
        summary.updated,
        summary.unchanged,
        len(summary.skipped),
    )


def summary_dict(summary: IngestSummary) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "status": summary.status,
        "calls": dict(summary.calls),
        "inserted": summary.inserted,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "skipped": dict(summary.skipped),
        "notes": list(summary.notes),
    }


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
) -> dict[str, Any]:
    """Fill history from ``since``; resumes where an interrupted backfill stopped."""
    options = IngestOptions(
        flow="backfill",
        since=since,
        until=until,
        coins=tuple(coins) if coins else None,
        tickers=tuple(tickers) if tickers else None,
        universe=universe,
    )
    return _run(options, db)
