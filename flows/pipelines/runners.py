"""Which engine runs the fetch tasks: threads in the flow's process (default) or Dask.

Chosen per call (`aitokens ingest --task-runner dask [--dask-address tcp://...]`) or, for
scheduled runs started by `aitokens serve`, by the environment the flows are imported in:
``AITOKENS_TASK_RUNNER`` (``threads`` | ``dask``), ``AITOKENS_DASK_ADDRESS`` (an existing
cluster; default: a local cluster), ``AITOKENS_DASK_WORKERS`` (local worker processes).
"""

from __future__ import annotations

import os
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from warehouse.errors import InputError

RUNNERS = ("threads", "dask")
FETCH_THREADS = 4


def build_task_runner(
    kind: str | None = None, *, address: str | None = None, workers: int | None = None
) -> Any:
    """A Prefect task runner for the fetch tasks."""
    kind = (kind or os.environ.get("AITOKENS_TASK_RUNNER") or "threads").strip().lower()
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=FETCH_THREADS)
    if kind != "dask":
        raise InputError(f"unknown task runner {kind!r}: use one of {', '.join(RUNNERS)}")
    from prefect_dask import DaskTaskRunner

    address = address or os.environ.get("AITOKENS_DASK_ADDRESS") or None
    if address:
        return DaskTaskRunner(address=address)
    raw = workers or os.environ.get("AITOKENS_DASK_WORKERS") or 2
    try:
        n = int(raw)
    except ValueError:
        raise InputError(f"AITOKENS_DASK_WORKERS={raw!r} is not a whole number") from None
    if not 1 <= n <= 256:
        raise InputError(f"the number of Dask workers must be 1..256, got {n}")
    # Worker processes (not threads): the engine a remote cluster would be, on one machine.
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n,
            "threads_per_worker": 2,
            "processes": True,
            "dashboard_address": None,
        }
    )


def fetch_processes(task_runner: Any) -> int:
    """How many processes share the API rate limit under this runner (1 for threads)."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:  # pragma: no cover - prefect-dask is a dependency
        return 1
    if not isinstance(task_runner, DaskTaskRunner):
        return 1
    client = task_runner.client
    client.wait_for_workers(1, timeout=120)
    return max(1, len(client.scheduler_info()["workers"]))
