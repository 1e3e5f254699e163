"""Local fakes of the CoinGecko and Yahoo APIs: real HTTP on 127.0.0.1, faults on demand.

from tests.fakes import FakeCoinGecko
with FakeCoinGecko(n_coins=300, rate_limit=(30, 60.0)) as cg:
    cg.inject("/coins/fetch-ai/market_chart/range", status=429, retry_after=1, times=2)
    ...  # point a client at cg.url; count calls with cg.calls("/coins/*/market_chart/range")
"""

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.fixtures import (
    fake_coingecko,
    fake_yahoo,
    fast_coingecko_config,
    fast_yahoo_config,
)
from tests.fakes.server import FakeServer, Fault, RecordedRequest, Reply
from tests.fakes.universe import REAL_AI_COINS, Universe
from tests.fakes.yahoo import FakeYahoo

__all__ = [
    "REAL_AI_COINS",
    "FakeCoinGecko",
    "FakeServer",
    "FakeYahoo",
    "Fault",
    "RecordedRequest",
    "Reply",
    "Universe",
    "fake_coingecko",
    "fake_yahoo",
    "fast_coingecko_config",
    "fast_yahoo_config",
]
