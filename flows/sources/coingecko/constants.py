"""CoinGecko's constants in one place: hosts, plans, limits, error codes, settings' names."""

from __future__ import annotations

from flows.sources.http import (  # noqa: F401  (re-exported: one place per vendor)
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_MAX_SECONDS,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    RATE_HEADROOM,
)

COINGECKO_PUBLIC_URL = "https://api.coingecko.com/api/v3/"  # keyless and demo plans
COINGECKO_PRO_URL = "https://pro-api.coingecko.com/api/v3/"

PLANS = ("keyless", "demo", "pro")
PLAN_BASE_URL = {
    "keyless": COINGECKO_PUBLIC_URL,
    "demo": COINGECKO_PUBLIC_URL,
    "pro": COINGECKO_PRO_URL,
}
# Header that carries the key. pycoingecko 3.2 would put it in the query string
# (x_cg_demo_api_key=...), where it ends up in logged and stored URLs; a header never does.
PLAN_KEY_HEADER = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
# Calls per minute we plan for. CoinGecko documents 100/min for demo and IP-based limits for
# keyless, but both throttle well below that in practice: 30 is the safe default (configurable).
PLAN_CALLS_PER_MINUTE = {"keyless": 30.0, "demo": 30.0, "pro": 500.0}
# Keyless/demo plans only serve the past 365 days of history (error 10012); pro is unlimited.
PLAN_HISTORY_DAYS: dict[str, int | None] = {"keyless": 365, "demo": 365, "pro": None}

# CoinGecko error codes (https://docs.coingecko.com/docs/errors-and-rate-limits)
CG_MISSING_KEY = 10002
CG_PLAN_RESTRICTED = 10005
CG_PRO_KEY_ON_PUBLIC_HOST = 10010
CG_DEMO_KEY_ON_PRO_HOST = 10011
CG_HISTORY_CAP = 10012
CG_KEY_ERROR_CODES = frozenset({CG_MISSING_KEY, CG_PRO_KEY_ON_PUBLIC_HOST, CG_DEMO_KEY_ON_PRO_HOST})

VS_CURRENCY = "usd"
MARKETS_PER_PAGE = 250  # the maximum /coins/markets accepts
MAX_CHUNK_DAYS = 365  # market_chart/range chunk length, fits the keyless/demo history cap
# market_chart/range returns daily points only when the range spans more than 90 days
# (hourly below that); requests are widened to at least this many days, then trimmed.
MIN_DAILY_SPAN_DAYS = 92
DEFAULT_CATEGORIES = ("artificial-intelligence",)
ALWAYS_COINS = ("bitcoin", "ethereum")  # benchmarks, fetched whatever the category holds

# Named in many messages (and the plan a setting of CoinGeckoConfig, where the other settings
# and their variables are declared); the key is never a setting of the file.
ENV_COINGECKO_PLAN = "COINGECKO_PLAN"
ENV_COINGECKO_KEY = "COINGECKO_API_KEY"
