"""Yahoo's constants in one place: host, chart path, tickers, rate (the settings and their
variables are declared once, on :class:`~flows.sources.yahoo.config.YahooConfig`)."""

from __future__ import annotations

from flows.sources.http import (  # noqa: F401  (re-exported: one place per vendor)
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_MAX_SECONDS,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    RATE_HEADROOM,
)

YAHOO_URL = "https://query1.finance.yahoo.com/"
YAHOO_CHART_PATH = "v8/finance/chart/{ticker}"
DEFAULT_TICKERS = ("NVDA", "AMD", "SPY", "QQQ")
YAHOO_CALLS_PER_MINUTE = 60.0
# Yahoo answers 429 to the default python-requests User-Agent: present a browser.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
YAHOO_OFFICIAL_URLS = (YAHOO_URL, "https://query2.finance.yahoo.com/")
CURRENCY = "USD"  # the warehouse holds US-dollar prices
