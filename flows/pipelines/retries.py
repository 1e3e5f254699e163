"""Retry conditions for Prefect tasks, built from the step policies of
:mod:`flows.services.steps` (which the in-process runner applies the same way).

Prefect calls ``retry_condition_fn(task, task_run, state)`` after a failed attempt; reading the
state's result re-raises the task's exception, which is matched here against the given types.
An error that says ``retryable = False`` (a source's own verdict) is never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows.services.steps import LOCKED_LOAD, TRANSIENT_SOURCE

RetryCondition = Callable[[Any, Any, Any], bool]


def retry_when(*errors: type[BaseException]) -> RetryCondition:
    """A retry condition true only for ``errors`` (and not for any other exception)."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except errors as exc:
            return bool(getattr(exc, "retryable", True))
        except BaseException:
            return False
        return False

    condition.__name__ = "retry_when_" + "_or_".join(e.__name__ for e in errors)
    return condition


# A step whose DuckDB file an analyst held past the lock timeout: worth another try later.
warehouse_locked = retry_when(*LOCKED_LOAD.retry_on)
# 429, 5xx and timeouts (the client already retried within its time budget), never a 4xx, a
# bad key or a block page.
transient_source_error = retry_when(*TRANSIENT_SOURCE.retry_on)
