"""CoinGecko source: the AI category, its members, their daily history, and ``/global``.

Built on ``pycoingecko`` (URL building and parameters) wrapped for what it lacks: a process-wide
rate limiter, retries (429 with ``Retry-After``, 5xx, timeouts, refused connections, truncated
JSON) bounded in total time, typed errors, and an optional callback that sees every answer so
the loader can keep ``raw_responses``. Nothing here knows DuckDB.

Dates. A ``market_chart/range`` daily point stamped D 00:00 UTC is CoinGecko's close of the
UTC day D-1 (it is published about 00:35 UTC on D). Frames keep the original stamp in ``ts``
and the day whose close it is in ``date`` (= D-1). Points not at 00:00 UTC (the partial "now"
point at the end of a range, hourly points) are dropped and counted.

The API key. pycoingecko 3.2 sends it as a query parameter, which ends up in every logged or
stored URL. Here the client is built keyless and the key rides in the session header
``x-cg-demo-api-key`` / ``x-cg-pro-api-key`` instead; URLs, ``params`` handed to the callback,
log lines and error messages never contain it, and any text we surface is scrubbed as well.
"""

from flows.sources.coingecko.client import CoinGeckoClient, error_info
from flows.sources.coingecko.config import CoinGeckoConfig
from flows.sources.coingecko.history import (
    CHART_COLUMNS,
    ChartParse,
    Chunk,
    CoinHistory,
    HistoryPlan,
    chunk_request_range,
    earliest_close_date,
    empty_chart_frame,
    fetch_coin_history,
    fetch_market_chart,
    iter_coin_histories,
    parse_market_chart,
    plan_chunks,
    plan_history,
    utc_today,
)
from flows.sources.coingecko.sector import (
    coin_universe,
    fetch_categories,
    fetch_category_members,
    fetch_coin_list,
    fetch_global,
    iter_markets_pages,
)
from flows.sources.coingecko.source import CoinGeckoDaily

# The registry finds this source here (flows/sources/registry.py).
SOURCE = CoinGeckoDaily

__all__ = [
    "SOURCE",
    "CoinGeckoDaily",
    "CHART_COLUMNS",
    "ChartParse",
    "Chunk",
    "CoinGeckoClient",
    "CoinGeckoConfig",
    "CoinHistory",
    "HistoryPlan",
    "chunk_request_range",
    "coin_universe",
    "earliest_close_date",
    "empty_chart_frame",
    "error_info",
    "fetch_categories",
    "fetch_category_members",
    "fetch_coin_history",
    "fetch_coin_list",
    "fetch_global",
    "fetch_market_chart",
    "iter_coin_histories",
    "iter_markets_pages",
    "parse_market_chart",
    "plan_chunks",
    "plan_history",
    "utc_today",
]
