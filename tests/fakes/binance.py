"""A local Binance spot API: ``/api/v3/klines`` in the real JSON shape, on 127.0.0.1.

Each kline is ``[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume",
trades, "takerBuyBase", "takerBuyQuote", "0"]``: times in unix milliseconds, numbers as strings
with 8 decimals, as Binance sends them. ``interval=1d`` klines open at 00:00 UTC from each
pair's listing day up to today, whose kline is still open (its close moves until 23:59:59.999).
Klines opening between ``startTime`` and ``endTime`` (both included) are answered, oldest
first, at most ``limit`` (default 500, above 1000 refused). Prices are a deterministic random
walk per pair (the same on every run).

Errors in Binance's shape ``{"code": ..., "msg": ...}``: an unknown pair answers 400 -1121
``Invalid symbol.``; a bad interval -1120; a limit over 1000 -1130; 429 and 418 carry -1003
(with ``Retry-After`` when injected, or from the base's rate limit). Every fault kind of
:class:`~tests.fakes.server.FakeServer` applies; transforms: ``empty`` (``[]``), ``nulls`` (a
close set to null), ``duplicates`` (the last kline twice), ``out_of_order`` (reversed).
Extra fault kind: ``bad_symbol`` (the -1121 answer whatever the pair).

    with FakeBinance() as fake:
        config = BinanceConfig(base_url=fake.url, calls_per_minute=60_000)
"""

from __future__ import annotations

import math
import random
import threading
from datetime import date, timedelta
from typing import Any

from tests.fakes.server import FakeServer, Fault, Reply
from tests.fakes.universe import seed_of, today_utc

KLINES = "/api/v3/klines"
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
KNOWN = ("BTCUSDT", "ETHUSDT", "FETUSDT", "RENDERUSDT")
LISTED = date(2020, 1, 1)  # first kline of every pair unless told otherwise
START_PRICE = {"BTCUSDT": 7200.0, "ETHUSDT": 130.0, "FETUSDT": 0.03, "RENDERUSDT": 0.06}
INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
TOO_MANY = {
    "code": -1003,
    "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
    "Please use the websocket for live updates to avoid polling the API.",
}
BANNED = {"code": -1003, "msg": "Way too many requests; IP(127.0.0.1) banned until 0."}


def open_ms(d: date) -> int:
    return (d - EPOCH).days * DAY_MS


def fmt(x: float) -> str:
    return f"{x:.8f}"


class FakeBinance(FakeServer):
    """Local Binance klines: ``with FakeBinance() as fake: ... fake.url ...``.

    ``symbols``: the pairs it lists (default BTCUSDT, ETHUSDT, FETUSDT, RENDERUSDT);
    ``listed``: a pair's first day, when later than 2020-01-01.
    """

    root = ""

    def __init__(
        self,
        symbols: tuple[str, ...] = KNOWN,
        *,
        listed: dict[str, date] | None = None,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: bool = True,
    ) -> None:
        super().__init__(rate_limit=rate_limit, rate_limit_retry_after=rate_limit_retry_after)
        self.symbols = tuple(s.upper() for s in symbols)
        self.listed = dict(listed or {})
        self._cache: dict[tuple[str, date], list[list[Any]]] = {}
        self._data_lock = threading.Lock()

    # -- data ------------------------------------------------------------------------------
    def klines(self, symbol: str) -> list[list[Any]]:
        """Every daily kline of ``symbol`` up to today's (open) one, oldest first."""
        today = today_utc()
        with self._data_lock:
            key = (symbol, today)
            if key not in self._cache:
                self._cache[key] = self._make(symbol, self.listed.get(symbol, LISTED), today)
            return self._cache[key]

    def close_of(self, symbol: str, day: date) -> float:
        """The close the fake serves for ``symbol`` on ``day`` (a float, as parsed)."""
        for k in self.klines(symbol):
            if k[0] == open_ms(day):
                return float(k[4])
        raise KeyError((symbol, day))

    @staticmethod
    def _make(symbol: str, first: date, today: date) -> list[list[Any]]:
        rng = random.Random(seed_of(symbol))
        price = START_PRICE.get(symbol, 1.0 + rng.random())
        out = []
        day = first
        while day <= today:
            opened = open_ms(day)
            open_ = price
            price = max(1e-6, price * math.exp(rng.gauss(0.0005, 0.04)))
            high = max(open_, price) * (1 + rng.random() * 0.02)
            low = min(open_, price) * (1 - rng.random() * 0.02)
            volume = 1000 + rng.random() * 50_000
            vwap = (high + low + price) / 3
            trades = rng.randint(1_000, 2_000_000)
            out.append(
                [
                    opened,
                    fmt(open_),
                    fmt(high),
                    fmt(low),
                    fmt(price),
                    fmt(volume),
                    opened + DAY_MS - 1,  # today's too: its scheduled close, in the future
                    fmt(volume * vwap),
                    trades,
                    fmt(volume / 2),
                    fmt(volume * vwap / 2),
                    "0",
                ]
            )
            day += timedelta(days=1)
        return out

    # -- answers ---------------------------------------------------------------------------
    def error_reply(self, status: int, path: str) -> Reply:
        if status == 429:
            return Reply(429, TOO_MANY)
        if status == 418:
            return Reply(418, BANNED)
        if status == 400:
            return Reply(400, INVALID_SYMBOL)
        return Reply(
            status,
            {"code": -1000, "msg": "An unknown error occurred while processing the request."},
        )

    def rate_limited_reply(self) -> Reply:
        return Reply(429, TOO_MANY)

    def fault_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        if fault.kind == "bad_symbol":
            return Reply(400, INVALID_SYMBOL)
        return None

    def route(
        self, path: str, params: dict[str, str], headers: dict[str, str], transform: str | None
    ) -> Reply:
        if path != KLINES:
            return Reply(404, text="", content_type="text/html")
        symbol = params.get("symbol", "")
        if symbol not in self.symbols:
            return Reply(400, INVALID_SYMBOL)
        if params.get("interval") != "1d":
            return Reply(400, {"code": -1120, "msg": "Invalid interval."})
        try:
            limit = int(params.get("limit", "500"))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return Reply(400, {"code": -1100, "msg": "Illegal characters found in a parameter."})
        if not 1 <= limit <= 1000:
            return Reply(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
        rows = [
            k
            for k in self.klines(symbol)
            if (start is None or k[0] >= start) and (end is None or k[0] <= end)
        ][:limit]
        rows = [list(k) for k in rows]
        if transform == "empty":
            rows = []
        elif transform == "nulls" and rows:
            rows[len(rows) // 2][4] = None
        elif transform == "duplicates" and rows:
            rows.append(list(rows[-1]))
        elif transform == "out_of_order":
            rows.reverse()
        return Reply(200, rows)


__all__ = ["FakeBinance", "KLINES", "open_ms"]
