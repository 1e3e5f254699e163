"""pytest fixtures for the fakes; import them into a conftest.py:

    from tests.fakes import fake_coingecko, fake_yahoo  # noqa: F401

``fast_coingecko_config(fake)`` / ``fast_yahoo_config(fake)`` give client settings pointed at a
fake with tiny retry delays, so fault tests finish in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.yahoo import FakeYahoo

FAST = {
    "max_retry_seconds": 3.0,
    "timeout_seconds": 1.0,
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 0.05,
}


def fast_coingecko_config(fake: FakeCoinGecko, **overrides: Any):
    """A :class:`CoinGeckoConfig` for ``fake``: its plan and key, no practical rate limit."""
    from flows.sources.coingecko import CoinGeckoConfig

    kwargs: dict[str, Any] = {
        "plan": fake.plan,
        "api_key": fake.api_key,
        "base_url": fake.url,
        "calls_per_minute": 60_000.0,
        **FAST,
    }
    kwargs.update(overrides)
    return CoinGeckoConfig(**kwargs)


def fast_yahoo_config(fake: FakeYahoo, **overrides: Any):
    """A :class:`YahooConfig` for ``fake`` with tiny retry delays."""
    from flows.sources.yahoo import YahooConfig

    kwargs: dict[str, Any] = {"base_url": fake.url, "calls_per_minute": 60_000.0, **FAST}
    kwargs.update(overrides)
    return YahooConfig(**kwargs)


@pytest.fixture
def fake_coingecko() -> Iterator[FakeCoinGecko]:
    """A keyless FakeCoinGecko with 20 AI coins (real ids first), BTC and ETH."""
    with FakeCoinGecko() as fake:
        yield fake


@pytest.fixture
def fake_yahoo() -> Iterator[FakeYahoo]:
    """A FakeYahoo serving NVDA, AMD, SPY, QQQ (real adjusted closes when shared data exists)."""
    with FakeYahoo() as fake:
        yield fake
