"""The Prefect step runner: each named step of :mod:`flows.services.steps` as a Prefect task.

Task names are the step names, retries follow :data:`flows.services.steps.STEP_POLICIES`
(off unless ``AITOKENS_STEP_RETRIES`` is set), fetches go to the flow's task runner (threads or
Dask workers), and a run's summary becomes a markdown artifact. Logs go to the run logger.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture

from flows.pipelines.retries import retry_when
from flows.pipelines.runners import fetch_processes
from flows.services.ingest_summary import IngestSummary
from flows.services.steps import NO_RETRY, STEP_POLICIES
from flows.sources.base import SeriesFetch, SeriesPlan
from flows.sources.worker import fetch_series

T = TypeVar("T")


def _run_step(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


def _task_options(step: str) -> dict[str, Any]:
    policy = STEP_POLICIES.get(step, NO_RETRY)
    retries = policy.retries()
    options: dict[str, Any] = {"name": step, "cache_policy": NO_CACHE}
    if retries:
        options.update(
            retries=retries,
            retry_delay_seconds=list(policy.delays[:retries]),
            retry_condition_fn=retry_when(*policy.retry_on),
        )
    return options


@task(name="fetch_history", task_run_name="fetch-{plan.series_id}", cache_policy=NO_CACHE)
def fetch_history(plan: SeriesPlan, settings: Any, now: datetime) -> SeriesFetch:
    """Picklable in and out, so it runs in a thread or on a Dask worker alike."""
    return fetch_series(plan, settings, now)


class PrefectSteps:
    """Runs each step as a task of the current flow run."""

    def call(self, step: str, fn: Callable[..., T], *args: Any) -> T:
        return task(**_task_options(step))(_run_step)(fn, *args)

    def submit_fetch(self, plan: SeriesPlan, settings: Any, now: datetime) -> PrefectFuture:
        return fetch_history.with_options(**_task_options("fetch_history")).submit(
            plan, settings, now
        )

    def fetch_processes(self) -> int:
        context = FlowRunContext.get()
        return fetch_processes(context.task_runner if context else None)

    def cancel_pending(self) -> None:
        """Prefect futures cannot be cancelled; they run out and their results are dropped."""

    def publish(self, summary: IngestSummary) -> None:
        create_markdown_artifact(
            key=summary.flow.replace("_", "-") + "-summary",
            markdown=summary.to_markdown(),
            description=f"{summary.flow} {summary.run_id}: {summary.status}",
        )
        get_run_logger().info("%s %s", summary.run_id, summary.log_line())

    def info(self, message: str) -> None:
        get_run_logger().info("%s", message)
