"""Binance's constants in one place: host, klines endpoint, limits, error codes (the settings
and their variables are declared once, on :class:`~flows.sources.binance.config.BinanceConfig`)."""

from __future__ import annotations

BINANCE_URL = "https://api.binance.com/"
# GET /api/v3/klines?symbol=BTCUSDT&interval=1d&startTime=ms&endTime=ms&limit=1000 answers a
# JSON array of klines, each an array (prices and volumes as strings):
# [openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBase,
#  takerQuote, ignore]
KLINES_PATH = "/api/v3/klines"
INTERVAL = "1d"
KLINES_LIMIT = 1000  # the most klines one call returns: longer ranges are split
DAY_MS = 86_400_000
# Fields of a kline by position (Binance may append more; they are ignored).
OPEN_TIME, OPEN, HIGH, LOW, CLOSE, VOLUME, CLOSE_TIME, QUOTE_VOLUME, TRADES = range(9)

# Pairs followed by default: the benchmarks and two AI tokens, all quoted in USDT (~USD).
# RNDR trades as RENDER since Binance's 2024 ticker change: RNDRUSDT now answers -1121.
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "FETUSDT", "RENDERUSDT")

# Binance limits request *weight* per IP and minute (6,000 today); a klines call with
# limit=1000 weighs 2 to 5 depending on the API version. 600 calls a minute stays far below
# either way, with room for other clients behind the same IP (configurable).
BINANCE_CALLS_PER_MINUTE = 600.0

# Error codes (https://developers.binance.com/docs/binance-spot-api-docs/errors)
ERR_TOO_MANY_REQUESTS = -1003  # with HTTP 429, or 418 once an IP ignored its 429s
ERR_INVALID_SYMBOL = -1121  # with HTTP 400: unknown, delisted or renamed pair
IP_BANNED = 418  # "I'm a teapot": the IP is banned for Retry-After seconds

BINANCE_OFFICIAL_URLS = (
    BINANCE_URL,
    "https://api1.binance.com/",
    "https://api2.binance.com/",
    "https://api3.binance.com/",
    "https://api4.binance.com/",
    "https://data-api.binance.vision/",
)
