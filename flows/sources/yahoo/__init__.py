"""Equity source: daily bars from Yahoo's chart JSON over ``requests``.

``GET {base}/v8/finance/chart/{ticker}?period1=S&period2=S&interval=1d&events=div,splits``
answers ``chart.result[0]`` with ``timestamp`` (session opens, unix seconds), ``indicators.
quote[0]`` (open/high/low/close/volume) and ``indicators.adjclose[0].adjclose``. Yahoo's
``close`` is split-adjusted; ``adj_close`` is split- and dividend-adjusted: both are kept.

Dates. A bar's timestamp is the session's open in exchange time; ``date`` is that instant in
the exchange's time zone (``meta.exchangeTimezoneName``), i.e. the session date. A bar for
today's session while the market is still open is partial and dropped.

Nulls. Yahoo returns nulls (whole null rows on some holidays, a missing volume). Bars without a
``close`` are dropped and counted; other nulls stay NaN.
"""

from flows.sources.yahoo.bars import (
    EQUITY_COLUMNS,
    EquityHistory,
    EquityParse,
    empty_equity_frame,
    fetch_equity_daily,
    iter_equity_daily,
    parse_chart,
)
from flows.sources.yahoo.client import YahooClient
from flows.sources.yahoo.config import YahooConfig
from flows.sources.yahoo.source import YahooDaily

# The registry finds this source here (flows/sources/registry.py).
SOURCE = YahooDaily

__all__ = [
    "SOURCE",
    "YahooDaily",
    "EQUITY_COLUMNS",
    "EquityHistory",
    "EquityParse",
    "YahooClient",
    "YahooConfig",
    "empty_equity_frame",
    "fetch_equity_daily",
    "iter_equity_daily",
    "parse_chart",
]
