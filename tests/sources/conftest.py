"""Fixtures of the source tests: the fakes, and clients pointed at them with tiny delays."""

from __future__ import annotations

import pytest

from flows.sources.coingecko import CoinGeckoClient
from flows.sources.yahoo import YahooClient
from tests.fakes import (  # noqa: F401 - fixtures are used by name
    FakeCoinGecko,
    FakeYahoo,
    fake_coingecko,
    fake_yahoo,
    fast_coingecko_config,
    fast_yahoo_config,
)


class ExchangeLog:
    """Collects what the clients report for ``raw_responses``."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict, int, str]] = []

    def __call__(self, endpoint, params, status, body) -> None:
        self.rows.append((endpoint, dict(params), status, body))


@pytest.fixture
def exchanges() -> ExchangeLog:
    return ExchangeLog()


@pytest.fixture
def cg_client(fake_coingecko: FakeCoinGecko, exchanges: ExchangeLog) -> CoinGeckoClient:  # noqa: F811
    with CoinGeckoClient(fast_coingecko_config(fake_coingecko), on_exchange=exchanges) as client:
        yield client


@pytest.fixture
def yahoo_client(fake_yahoo: FakeYahoo, exchanges: ExchangeLog) -> YahooClient:  # noqa: F811
    with YahooClient(fast_yahoo_config(fake_yahoo), on_exchange=exchanges) as client:
        yield client
