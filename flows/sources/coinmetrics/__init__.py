"""Coin Metrics source: daily estimated market caps (``CapMrktEstUSD``), reference rates
(``ReferenceRateUSD``) and reported spot volumes (``volume_reported_spot_usd_1d``) from the
community API v4, into ``market_caps_daily`` (migration 009) beside the other vendors' caps.

What is Coin Metrics' own (the rest is the shared client base of
:mod:`flows.sources.http_client`: limiter, retries with ``Retry-After``, scrubbing, call budget):

- the answer ``{"data": [...], "next_page_url": ...}`` with decimal strings, a metric left out
  of a row where the asset lacks it (:mod:`.metrics`); the row stamped D 00:00 UTC is day D;
- cursor paging: the next page is the answer's ``next_page_url``, on the same host only;
- errors ``{"error": {"type", "message"}}``: a 400 ``bad_parameter`` naming the asset skips
  it with the reason (an asset Coin Metrics does not cover), like a delisted coin;
- the community limit, 10 requests per 6-second sliding window per IP.

Licence of the data: **CC BY-NC 4.0** (non-commercial use, attribution to Coin Metrics); the
sector report names it wherever its caps are shown. Off by default
(``enabled_by_default = False``): a run uses it when its options name it.
"""

from flows.sources.coinmetrics.client import AssetNotCoveredError, CoinMetricsClient, error_info
from flows.sources.coinmetrics.config import CoinMetricsConfig
from flows.sources.coinmetrics.metrics import ROW_COLUMNS, MetricsParse, fetch_metrics, parse_rows
from flows.sources.coinmetrics.source import CoinMetricsDaily

# The registry finds this source here (flows/sources/registry.py).
SOURCE = CoinMetricsDaily

__all__ = [
    "ROW_COLUMNS",
    "SOURCE",
    "AssetNotCoveredError",
    "CoinMetricsClient",
    "CoinMetricsConfig",
    "CoinMetricsDaily",
    "MetricsParse",
    "error_info",
    "fetch_metrics",
    "parse_rows",
]
