"""Binance source: spot daily klines (``GET /api/v3/klines?interval=1d``) over ``requests``.

The example of a third price source: this package, one migration
(``warehouse/migrations/005_binance.sql``, table ``exchange_daily``) and its feed view
(``exchange_daily_prices`` in ``warehouse/price_feeds.sql``, which puts its closes in
``daily_prices``, so ``aitokens study --source FET=binance`` reads them) are all it takes; the
registry finds :data:`SOURCE`, ``aitokens.toml`` accepts its ``[binance]`` section, and the
shared client base (:mod:`flows.sources.http_client`) gives it the limiter, retries, scrubbing
and the generic error mapping. What is Binance's own:

- the answer, an array of arrays with prices as strings (:mod:`.klines`); the close of the
  kline opening D 00:00 UTC is the close of the UTC day D; today's open kline is dropped;
- paging: at most 1,000 klines a call, so a longer range is several calls;
- errors ``{"code": -1121, "msg": "Invalid symbol."}`` (HTTP 400): the pair is skipped with the
  reason, like a delisted coin; 429 and 418 carry ``Retry-After`` and are retried.

Off by default (``enabled_by_default = False``): a run uses it when its options name it.
"""

from flows.sources.binance.client import BinanceClient, SymbolNotFoundError, error_info
from flows.sources.binance.config import BinanceConfig
from flows.sources.binance.klines import (
    KLINE_COLUMNS,
    KlineParse,
    empty_kline_frame,
    fetch_klines,
    iter_kline_pages,
    kline_windows,
    parse_klines,
)
from flows.sources.binance.source import BinanceSpotDaily

# The registry finds this source here (flows/sources/registry.py).
SOURCE = BinanceSpotDaily

__all__ = [
    "SOURCE",
    "BinanceSpotDaily",
    "BinanceClient",
    "BinanceConfig",
    "KLINE_COLUMNS",
    "KlineParse",
    "SymbolNotFoundError",
    "empty_kline_frame",
    "error_info",
    "fetch_klines",
    "iter_kline_pages",
    "kline_windows",
    "parse_klines",
]
