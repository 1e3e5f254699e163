"""The daily deployment: ``aitokens serve`` registers it on a Prefect server and runs it.

The schedule is a cron in UTC (01:15: CoinGecko's last complete day appears about 00:35 UTC).
``serve`` is a long-running process: it registers the deployment, polls the server for due
runs and executes them in subprocesses; Ctrl-C pauses the schedule and stops.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect.schedules import Cron

from warehouse.errors import InputError


def daily_flow() -> Any:
    """The flow the schedule runs: the whole pipeline (ingest, study, report)."""
    from flows.pipelines.daily_pipeline import pipeline

    return pipeline


def serve_daily(
    *,
    name: str = "daily",
    cron: str = "15 1 * * *",
    db: str | None = None,
    event: str | None = None,
    out: str | None = None,
    limit: int | None = None,
) -> None:
    """Register ``<flow>/<name>`` with ``cron`` (UTC) and serve it until interrupted."""
    if not os.environ.get("PREFECT_API_URL"):
        raise InputError(
            "`aitokens serve` needs a Prefect server: start one with `prefect server start` and "
            "set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    try:
        schedule = Cron(cron, timezone="UTC")
    except ValueError as exc:
        raise InputError(f"--cron {cron!r} is not a valid cron expression: {exc}") from None
    # Unattended runs try a failed I/O step again (a held warehouse, a 5xx after the client's
    # own budget), the same way in-process or under Prefect: see flows/services/steps.py. The
    # flow runs in subprocesses: the setting travels as a parameter, not through os.environ.
    from flows.services.steps import ENV_STEP_RETRIES, step_retries

    retries = step_retries() if os.environ.get(ENV_STEP_RETRIES, "").strip() else 2
    flow = daily_flow()
    given = {
        "db": db,
        "event": event,
        "out": str(Path(out).resolve()) if out else None,
        "step_retries": retries,
    }
    parameters = {k: v for k, v in given.items() if v is not None}
    flow.serve(
        name=name,
        schedule=schedule,
        parameters=parameters,
        limit=limit,
        description="Daily aitokens run at 01:15 UTC, after CoinGecko publishes the "
        "last complete UTC day.",
    )
