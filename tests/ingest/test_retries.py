"""Which failures the Prefect tasks retry: transient source errors and held locks only."""

from __future__ import annotations

import pytest

from flows.errors import BadApiKeyError, HtmlResponseError, RateLimitedError, UpstreamError
from flows.pipelines.retries import transient_source_error as _transient_source_error
from flows.pipelines.retries import warehouse_locked as _warehouse_locked
from warehouse.errors import WarehouseLockedError


class State:
    """Stands in for a Prefect state: ``result()`` re-raises the task's exception."""

    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    def result(self):
        if self.exc is not None:
            raise self.exc
        return 1


@pytest.mark.parametrize(
    ("exc", "fetch_retried", "load_retried"),
    [
        (RateLimitedError("429", endpoint="/x"), True, False),
        (UpstreamError("503", endpoint="/x", retryable=True), True, False),
        (UpstreamError("bad shape", endpoint="/x", retryable=False), False, False),
        (HtmlResponseError("block page", endpoint="/x"), False, False),
        (BadApiKeyError("bad key", endpoint="/x"), False, False),
        (WarehouseLockedError("held by PID 1"), False, True),
        (ValueError("a bug"), False, False),
        (None, False, False),
    ],
)
def test_retry_conditions(exc, fetch_retried, load_retried):
    assert _transient_source_error(None, None, State(exc)) is fetch_retried
    assert _warehouse_locked(None, None, State(exc)) is load_retried
