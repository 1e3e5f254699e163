"""The one orchestration path: an ingestion run and the daily pipeline as named steps.

:func:`run_ingestion` and :func:`run_pipeline` hold the order of the steps, the lock, the error
handling and the bookkeeping, once. A :class:`StepRunner` executes each named step: the
in-process runner here (``--no-prefect``: calls and a thread pool), or Prefect's
(:class:`flows.pipelines.prefect_steps.PrefectSteps`: each step a task, fetches on the flow's
task runner, possibly Dask). So the two ways of running cannot diverge.

Retries. Each call already has one retry budget: the HTTP client's (``*_MAX_RETRY_SECONDS``,
429/5xx/timeouts with backoff) and the warehouse's lock wait (``AITOKENS_LOCK_TIMEOUT``).
Step-level retries would multiply them, so they are off by default; ``AITOKENS_STEP_RETRIES=N``
(for unattended servers) lets every I/O step be tried up to N more times after a transient
failure, with the delays of :data:`STEP_POLICIES`, the same way under both runners.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from flows.errors import ConfigError, RateLimitedError, UpstreamError
from flows.services.ingest_options import IngestOptions
from flows.services.ingest_summary import IngestSummary
from flows.services.ingestion import Ingestion, completed_fetches
from flows.services.runlock import run_lock
from flows.sources.base import SeriesPlan
from flows.sources.worker import fetch_series
from warehouse.errors import WarehouseLockedError
from warehouse.snapshot import publish_snapshot

log = logging.getLogger("aitokens.steps")

T = TypeVar("T")
ENV_STEP_RETRIES = "AITOKENS_STEP_RETRIES"


@dataclass(frozen=True)
class StepPolicy:
    """Which failures of a step are worth another try, and the waits before each try."""

    retry_on: tuple[type[BaseException], ...] = ()
    delays: tuple[float, ...] = ()

    def retries(self) -> int:
        """How many more tries this step gets under the current setting (0 by default)."""
        return min(step_retries(), len(self.delays))

    def should_retry(self, exc: BaseException) -> bool:
        """Only the listed errors, and never one whose source said ``retryable = False``."""
        return isinstance(exc, self.retry_on) and bool(getattr(exc, "retryable", True))


# 429, 5xx and timeouts (after the client's own budget), never a 4xx, a bad key or a block
# page; and a write whose DuckDB file an analyst held past the lock timeout.
TRANSIENT_SOURCE = StepPolicy((RateLimitedError, UpstreamError), (10, 60))
LOCKED_LOAD = StepPolicy((WarehouseLockedError,), (5, 30, 120))
LOCKED_STEP = StepPolicy((WarehouseLockedError,), (10, 60))
NO_RETRY = StepPolicy()

STEP_POLICIES: dict[str, StepPolicy] = {
    "start_run": NO_RETRY,
    "snapshot_sector": TRANSIENT_SOURCE,
    "plan_histories": NO_RETRY,
    "fetch_history": TRANSIENT_SOURCE,
    "load_history": LOCKED_LOAD,
    "snapshot_global": TRANSIENT_SOURCE,
    "import_prices": LOCKED_STEP,
    "run_study": LOCKED_STEP,
    "build_report": NO_RETRY,
}


_BOUND_RETRIES: ContextVar[int | None] = ContextVar("step_retries", default=None)


def check_step_retries(value: int, what: str = ENV_STEP_RETRIES) -> int:
    """``value`` if it is a number of retries a step may get (0..5); a ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise ConfigError(f"{what}={value!r} must be 0..5")
    return value


@contextlib.contextmanager
def step_retries_bound(value: int | None) -> Iterator[None]:
    """Give every step of the block ``value`` retries (None: the environment's setting); how a
    scheduled run receives its setting as a flow parameter, not through ``os.environ``."""
    if value is None:
        yield
        return
    token = _BOUND_RETRIES.set(check_step_retries(value, "step_retries"))
    try:
        yield
    finally:
        _BOUND_RETRIES.reset(token)


def step_retries(environ: dict[str, str] | None = None) -> int:
    """The bound number of retries, else ``AITOKENS_STEP_RETRIES`` as a whole number 0..5
    (default 0)."""
    bound = _BOUND_RETRIES.get()
    if bound is not None and environ is None:
        return bound
    env = os.environ if environ is None else environ
    raw = env.get(ENV_STEP_RETRIES, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_STEP_RETRIES}={raw!r} is not a whole number") from None
    if not 0 <= value <= 5:
        raise ConfigError(f"{ENV_STEP_RETRIES}={raw!r} must be 0..5")
    return value


class StepRunner(Protocol):
    """Executes named steps; see :class:`InProcessSteps` and ``PrefectSteps``."""

    def call(self, step: str, fn: Callable[..., T], *args: Any) -> T: ...

    def submit_fetch(self, plan: SeriesPlan, settings: Any, now: datetime) -> Any: ...

    def fetch_processes(self) -> int: ...

    def cancel_pending(self) -> None: ...

    def publish(self, summary: IngestSummary) -> None: ...

    def info(self, message: str) -> None: ...


def call_with_policy(step: str, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)``, trying again as :data:`STEP_POLICIES` allows (in-process runner)."""
    policy = STEP_POLICIES.get(step, NO_RETRY)
    retries = policy.retries()
    attempt = 0
    while True:
        try:
            return fn(*args)
        except BaseException as exc:
            if attempt >= retries or not policy.should_retry(exc):
                raise
            delay = policy.delays[attempt]
            attempt += 1
            log.warning("%s failed (%s); try %d in %g s", step, exc, attempt + 1, delay)
            time.sleep(delay)


class InProcessSteps:
    """Steps as plain calls in this process; fetches on a thread pool (the rate limiter still
    spaces every call, so threads only hide latency)."""

    def __init__(self, max_workers: int = 4) -> None:
        self._max_workers = max(1, max_workers)
        self._pool: ThreadPoolExecutor | None = None  # made at the first fetch

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._max_workers)
        return self._pool

    def call(self, step: str, fn: Callable[..., T], *args: Any) -> T:
        return call_with_policy(step, fn, *args)

    def submit_fetch(self, plan: SeriesPlan, settings: Any, now: datetime) -> Future:
        # In the caller's context: settings bound for the run (step retries) hold in the thread.
        return self.pool.submit(
            copy_context().run, call_with_policy, "fetch_history", fetch_series, plan, settings, now
        )

    def fetch_processes(self) -> int:
        return 1

    def cancel_pending(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def publish(self, summary: IngestSummary) -> None:
        log.info("%s", summary.log_line())

    def info(self, message: str) -> None:
        log.info("%s", message)


ProgressCallback = Callable[[str, int], None]


def run_ingestion(
    options: IngestOptions,
    *,
    db: str | Path | None = None,
    configs: dict[str, Any] | None = None,
    now: datetime | None = None,
    runner: StepRunner | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestSummary:
    """The whole ingestion run: lock, snapshot, plans, fetches, loads, ``/global``, summary.

    ``runner`` executes the steps (default: in this process). ``on_plan(total_calls)`` is
    called once the history calls are known and ``on_progress(series_id, calls)`` after each
    series, to drive a progress bar.
    """
    ing = Ingestion(options, db=db, configs=configs, now=now)
    own_runner = runner is None
    steps: StepRunner = runner if runner is not None else InProcessSteps(options.max_workers)
    steps.info(f"ingesting into {ing.db_file} through {ing.end} ({options.to_params()})")
    try:
        with run_lock(ing.db_file, options.flow):
            steps.call("check_network", ing.check_network)  # seconds, not minutes, offline
            steps.call("start_run", ing.start)
            try:
                coin_ids = steps.call("snapshot_sector", ing.snapshot_sector)
                plans = steps.call("plan_histories", ing.plan_histories, coin_ids)
                total = ing.planned_calls(plans)
                steps.info(f"{len(plans)} series to fetch, {total} history calls planned")
                if on_plan:
                    on_plan(total)
                processes = steps.fetch_processes()
                settings = ing.settings.per_worker(processes)
                if processes > 1:
                    steps.info(f"fetching on {processes} worker processes (rate split evenly)")
                futures = [(p, steps.submit_fetch(p, settings, ing.now)) for p in plans]
                try:
                    for plan, result in completed_fetches(ing, futures):  # in order, one writer
                        steps.call("load_history", ing.load, result)
                        if on_progress:
                            on_progress(plan.series_id, ing.planned_calls([plan]))
                except BaseException:
                    # Any error (a held lock, Ctrl-C, a bug) stops the run now: fetches not yet
                    # started are cancelled instead of spending the API's quota for nothing.
                    steps.cancel_pending()
                    raise
                if options.global_market:
                    steps.call("snapshot_global", ing.snapshot_global)
            except BaseException as exc:
                summary = ing.finish("failed", error=f"{type(exc).__name__}: {exc}")
                steps.publish(summary)
                raise
            summary = ing.finish("completed")
            publish_snapshot(ing.db_file)  # analysts see the run's data from now on
        steps.publish(summary)
        return summary
    finally:
        if own_runner and isinstance(steps, InProcessSteps):
            steps.close()
