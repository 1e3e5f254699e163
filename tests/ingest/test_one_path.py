"""One orchestration path: ``--no-prefect`` and the Prefect flow run the same steps, in the same
order, through the same code, and leave the same warehouse; step retries follow one table."""

from __future__ import annotations

import pytest

from flows.errors import RateLimitedError, UpstreamError
from flows.pipelines.prefect_steps import PrefectSteps
from flows.services import steps as steps_module
from flows.services.ingest_options import IngestOptions
from flows.services.steps import (
    ENV_STEP_RETRIES,
    STEP_POLICIES,
    InProcessSteps,
    StepPolicy,
    call_with_policy,
    run_ingestion,
    step_retries,
)
from tests.ingest.conftest import days_ago
from tests.ingest.test_prefect_flows import flow_env  # noqa: F401 - fixture
from tests.reliability.helpers import canonical_dump
from warehouse.errors import WarehouseLockedError


def _recording(monkeypatch, cls) -> list[str]:
    seen: list[str] = []
    call, submit = cls.call, cls.submit_fetch

    def recorded_call(self, step, fn, *args):
        seen.append(step)
        return call(self, step, fn, *args)

    def recorded_submit(self, plan, settings, now):
        seen.append(f"fetch_history:{plan.source}:{plan.series_id}")
        return submit(self, plan, settings, now)

    monkeypatch.setattr(cls, "call", recorded_call)
    monkeypatch.setattr(cls, "submit_fetch", recorded_submit)
    return seen


def test_in_process_and_prefect_take_the_same_steps_and_leave_the_same_data(
    prefect_harness,
    flow_env,  # noqa: F811 - the fixture imported above
    tmp_path,
    monkeypatch,
):
    from flows.pipelines.ingest_flows import backfill

    since = days_ago(40)
    plain_steps = _recording(monkeypatch, InProcessSteps)
    plain_db = tmp_path / "plain.duckdb"
    summary = run_ingestion(IngestOptions(flow="backfill", since=since), db=plain_db)

    prefect_steps = _recording(monkeypatch, PrefectSteps)
    flow_db = tmp_path / "flow.duckdb"
    result = backfill(since=since, db=str(flow_db))

    assert summary.status == result["status"] == "completed"
    # the connectivity check comes first, before the run is recorded (issue 13)
    assert plain_steps[:4] == ["check_network", "start_run", "snapshot_sector", "plan_histories"]
    assert plain_steps[-1] == "snapshot_global"
    assert plain_steps == prefect_steps
    assert sum(s.startswith("fetch_history:yahoo") for s in plain_steps) == 2
    assert canonical_dump(plain_db) == canonical_dump(flow_db)


@pytest.mark.parametrize(
    ("step", "exc", "retried"),
    [
        ("fetch_history", RateLimitedError("429", endpoint="/x"), True),
        ("fetch_history", UpstreamError("bad shape", endpoint="/x", retryable=False), False),
        ("load_history", WarehouseLockedError("held by PID 1"), True),
        ("load_history", UpstreamError("503", endpoint="/x", retryable=True), False),
        ("plan_histories", WarehouseLockedError("held by PID 1"), False),
    ],
)
def test_step_policies_are_applied_in_process_only_when_asked(step, exc, retried, monkeypatch):
    """Off by default (one retry budget per call); with AITOKENS_STEP_RETRIES the in-process
    runner retries exactly what the policy names, with the policy's delays."""
    monkeypatch.setitem(
        STEP_POLICIES,
        step,
        StepPolicy(STEP_POLICIES[step].retry_on, (0.0,) * len(STEP_POLICIES[step].delays)),
    )
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise exc
        return "ok"

    with pytest.raises(type(exc)):
        call_with_policy(step, flaky)  # default: no step retries
    assert len(attempts) == 1

    attempts.clear()
    monkeypatch.setenv(ENV_STEP_RETRIES, "2")
    if retried:
        assert call_with_policy(step, flaky) == "ok"
        assert len(attempts) == 2
    else:
        with pytest.raises(type(exc)):
            call_with_policy(step, flaky)
        assert len(attempts) == 1


def test_prefect_tasks_get_the_same_retries_as_the_table(monkeypatch):
    from flows.pipelines.prefect_steps import _task_options

    assert "retries" not in _task_options("load_history")
    monkeypatch.setenv(ENV_STEP_RETRIES, "2")
    options = _task_options("load_history")
    assert options["retries"] == 2
    assert options["retry_delay_seconds"] == list(STEP_POLICIES["load_history"].delays[:2])
    assert "retries" not in _task_options("plan_histories")


@pytest.mark.parametrize("raw", ["x", "-1", "6"])
def test_step_retries_setting_is_checked(raw):
    from flows.errors import ConfigError

    with pytest.raises(ConfigError, match=ENV_STEP_RETRIES):
        step_retries({ENV_STEP_RETRIES: raw})


def test_the_module_names_every_step_the_paths_use():
    import inspect

    source = inspect.getsource(steps_module.run_ingestion)
    for step in ("start_run", "snapshot_sector", "plan_histories", "load_history"):
        assert f'"{step}"' in source and step in STEP_POLICIES
