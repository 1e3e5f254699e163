"""Coin Metrics' constants in one place: host, endpoint, metrics, paging, limits, licence.

Community API (no key): ``GET https://community-api.coinmetrics.io/v4/timeseries/asset-metrics
?assets=fet&metrics=CapMrktEstUSD,ReferenceRateUSD,volume_reported_spot_usd_1d&frequency=1d
&start_time=YYYY-MM-DD&end_time=YYYY-MM-DD&page_size=N&paging_from=start`` answers

    {"data": [{"asset": "fet", "time": "2024-02-15T00:00:00.000000000Z",
               "CapMrktEstUSD": "681642646.99", "volume_reported_spot_usd_1d": "40009990.66"},
              ...],
     "next_page_token": "...", "next_page_url": "https://community-api.../asset-metrics?..."}

Values are decimal strings; a metric the asset lacks that day is absent from its row. A further
page exists while the answer carries ``next_page_url`` (fetched as given). Errors come as
``{"error": {"type": "bad_parameter", "message": "..."}}``: an asset the API does not cover is a
400 ``bad_parameter`` naming it; 401/403 (``unauthorized``/``forbidden``) a metric the community
tier does not serve; 429 (with ``Retry-After`` when the server sends one) the rate limit.
"""

from __future__ import annotations

COINMETRICS_URL = "https://community-api.coinmetrics.io/v4/"
COINMETRICS_OFFICIAL_URLS = (COINMETRICS_URL, "https://api.coinmetrics.io/v4/")
ASSET_METRICS_PATH = "timeseries/asset-metrics"
FREQUENCY = "1d"
# The three metrics of issue 25, in the warehouse's columns.
CAP_METRIC = "CapMrktEstUSD"  # estimated market cap, USD, end of the UTC day
PRICE_METRIC = "ReferenceRateUSD"  # Coin Metrics' reference rate (a price), USD
VOLUME_METRIC = "volume_reported_spot_usd_1d"  # reported spot volume over the day, USD
METRICS = (CAP_METRIC, PRICE_METRIC, VOLUME_METRIC)
COLUMN_OF = {CAP_METRIC: "market_cap", PRICE_METRIC: "price_usd", VOLUME_METRIC: "volume_usd"}

PAGE_SIZE = 10_000  # the API's largest page: about 27 years of daily rows in one call
MAX_PAGES = 200  # far beyond any daily history; a server paging forever stops here

# Community limit: 10 requests per 6-second sliding window per IP (docs: Rate limits).
RATE_WINDOW_SECONDS = 6.0
COINMETRICS_CALLS_PER_MINUTE = 100.0  # = 10 per 6 s

# The AI tokens of ../shared/data/ai_events/market_caps.csv, as Coin Metrics names them.
DEFAULT_ASSETS = ("fet", "grt", "inj", "nmr", "rndr", "render", "arkm", "wld")

SOURCE_NAME = "coinmetrics"
LICENCE = (
    "Coin Metrics community data, CC BY-NC 4.0: non-commercial use, with attribution to "
    "Coin Metrics"
)

# Settings and their variables are declared once, on CoinMetricsConfig (HttpEnv.prefixed):
# AITOKENS_COINMETRICS_URL, _CALLS_PER_MINUTE, _TIMEOUT, _MAX_RETRY_SECONDS, _ASSETS.
ENV_COINMETRICS_ASSETS = "AITOKENS_COINMETRICS_ASSETS"
