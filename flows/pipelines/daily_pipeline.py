"""The Prefect flow of the daily pipeline: the steps of :func:`flows.services.pipeline.
run_pipeline` as tasks, with the ingestion as a subflow (``daily_ingest``).

`aitokens serve` schedules this flow (:func:`flows.pipelines.schedule.daily_flow`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from prefect import flow

from flows.pipelines import ingest_flows
from flows.pipelines.prefect_steps import PrefectSteps
from flows.services.pipeline import DEFAULT_EVENT, DEFAULT_OUT, ingest_detail, run_pipeline
from flows.services.steps import step_retries_bound

T = TypeVar("T")


def _ingest_subflow(db: str) -> str:
    # Looked up at call time, so a test (or a deployment) can swap the subflow.
    return ingest_detail(ingest_flows.daily_ingest(db=db))


@flow(name="pipeline", flow_run_name="pipeline-{event}", log_prints=True)
def pipeline(
    db: str | None = None,
    import_csv: str | list[str] | None = None,
    offline: bool = False,
    event: str = DEFAULT_EVENT,
    out: str = str(DEFAULT_OUT),
    step_retries: int | None = None,
    return_kind: str = "simple",
) -> dict[str, Any]:
    """Daily run: optional CSV imports (one file or several: prices, market caps), ingestion
    (subflow), event study, notebooks to HTML.

    ``step_retries``: retries of a failed I/O step (None: ``AITOKENS_STEP_RETRIES``, default
    0); `aitokens serve` passes 2 unless that variable is set."""
    with step_retries_bound(step_retries):
        summary = run_pipeline(
            db,
            import_csv=import_csv,
            offline=offline,
            event=event,
            out=out,
            return_kind=return_kind,
            ingest=_ingest_subflow,
            runner=PrefectSteps(),
        )
    return summary.to_dict()
