"""Step retries reach a scheduled run as a flow parameter (`aitokens serve` passes 2), never by
writing ``AITOKENS_STEP_RETRIES`` into ``os.environ``; the variable still works as before."""

from __future__ import annotations

import os

import pytest

from flows.errors import ConfigError
from flows.services.steps import (
    ENV_STEP_RETRIES,
    LOCKED_LOAD,
    TRANSIENT_SOURCE,
    step_retries,
    step_retries_bound,
)


def test_a_bound_value_is_used_inside_the_block_only(monkeypatch):
    monkeypatch.delenv(ENV_STEP_RETRIES, raising=False)
    assert LOCKED_LOAD.retries() == 0
    with step_retries_bound(2):
        assert (LOCKED_LOAD.retries(), TRANSIENT_SOURCE.retries(), step_retries()) == (2, 2, 2)
        assert step_retries({ENV_STEP_RETRIES: "1"}) == 1  # an explicit environment is read
    assert LOCKED_LOAD.retries() == 0 and ENV_STEP_RETRIES not in os.environ
    monkeypatch.setenv(ENV_STEP_RETRIES, "1")
    with step_retries_bound(None):  # no parameter: the environment's setting
        assert LOCKED_LOAD.retries() == 1


@pytest.mark.parametrize("bad", [-1, 6, True, "2"])
def test_a_bad_parameter_is_refused(bad):
    with (
        pytest.raises(ConfigError, match=r"step_retries=.* must be 0\.\.5"),
        step_retries_bound(bad),
    ):
        pass


def test_the_pipeline_flow_takes_the_setting_as_a_parameter():
    from flows.pipelines.daily_pipeline import pipeline

    assert "step_retries" in pipeline.parameters.properties
