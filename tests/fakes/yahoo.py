"""A local Yahoo Finance chart API: ``/v8/finance/chart/{ticker}`` in the real JSON shape.

``{"chart": {"result": [{"meta": {...}, "timestamp": [...], "events": {...}, "indicators":
{"quote": [{"open","high","low","close","volume"}], "adjclose": [{"adjclose"}]}}], "error":
null}}``. Timestamps are session opens (09:30 America/New_York) in unix seconds. Unknown
tickers answer 404 ``{"chart":{"result":null,"error":{"code":"Not Found","description":
"No data found, symbol may be delisted"}}}``; a request without a browser User-Agent answers 429
``Too Many Requests`` as the real service does. NVDA, AMD, SPY and QQQ come from the shared
``raw/yahoo_*_daily_adjusted.csv`` when present; other tickers are generated on weekdays.

Fault transforms: ``nulls`` (one row all null, some closes null), ``duplicates`` (the last
session repeated), ``out_of_order`` (sessions reversed), ``empty`` (no ``timestamp`` key, as
Yahoo answers for a range without sessions).
"""

from __future__ import annotations

import threading
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from tests.fakes.server import FakeServer, Reply
from tests.fakes.universe import EquitySeries, make_equity, today_utc

NEW_YORK = ZoneInfo("America/New_York")
KNOWN = ("NVDA", "AMD", "SPY", "QQQ")
ETFS = ("SPY", "QQQ")


def session_open(d: date) -> int:
    return int(datetime.combine(d, time(9, 30), NEW_YORK).timestamp())


class FakeYahoo(FakeServer):
    """Local Yahoo chart API: ``with FakeYahoo() as yf: ... yf.url ...``.

    ``tickers``: the symbols it knows (default NVDA, AMD, SPY, QQQ plus any ``extra``).
    """

    root = ""

    def __init__(
        self,
        tickers: tuple[str, ...] = KNOWN,
        *,
        extra: tuple[str, ...] = (),
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: bool = True,
        require_browser: bool = True,
    ) -> None:
        super().__init__(rate_limit=rate_limit, rate_limit_retry_after=rate_limit_retry_after)
        self.tickers = tuple(t.upper() for t in (*tickers, *extra))
        self.require_browser = require_browser
        self._cache: dict[str, EquitySeries] = {}
        self._data_lock = threading.Lock()

    def series(self, ticker: str) -> EquitySeries:
        with self._data_lock:
            if ticker not in self._cache:
                self._cache[ticker] = make_equity(ticker, today_utc())
            return self._cache[ticker]

    def error_reply(self, status: int, path: str) -> Reply:
        if status == 429:
            return Reply(429, text="Too Many Requests\r\n", content_type="text/plain")
        if status == 404:
            return self._not_found()
        return Reply(
            status,
            {
                "chart": {
                    "result": None,
                    "error": {"code": "Internal Server Error", "description": f"HTTP {status}"},
                }
            },
        )

    def rate_limited_reply(self) -> Reply:
        return Reply(429, text="Too Many Requests\r\n", content_type="text/plain")

    @staticmethod
    def _not_found() -> Reply:
        return Reply(
            404,
            {
                "chart": {
                    "result": None,
                    "error": {
                        "code": "Not Found",
                        "description": "No data found, symbol may be delisted",
                    },
                }
            },
        )

    def route(
        self, path: str, params: dict[str, str], headers: dict[str, str], transform: str | None
    ) -> Reply:
        ua = headers.get("user-agent", "")
        if self.require_browser and not ua.startswith("Mozilla/"):
            return self.rate_limited_reply()
        prefix = "/v8/finance/chart/"
        if not path.startswith(prefix):
            return Reply(
                404,
                {
                    "finance": {
                        "result": None,
                        "error": {"code": "Not Found", "description": "Path not found"},
                    }
                },
            )
        ticker = path[len(prefix) :].upper()
        if ticker not in self.tickers:
            return self._not_found()
        try:
            p1, p2 = int(params["period1"]), int(params["period2"])
        except (KeyError, ValueError):
            return Reply(
                400,
                {
                    "chart": {
                        "result": None,
                        "error": {
                            "code": "Bad Request",
                            "description": "Invalid input - period1/period2",
                        },
                    }
                },
            )
        s = self.series(ticker)
        rows = [i for i, d in enumerate(s.dates) if p1 <= session_open(d) < p2]
        return Reply(200, self._payload(ticker, s, rows, params, transform))

    def _payload(
        self,
        ticker: str,
        s: EquitySeries,
        rows: list[int],
        params: dict[str, str],
        transform: str | None,
    ) -> dict[str, Any]:
        last = s.dates[-1]
        offset = int(datetime.combine(last, time(16), NEW_YORK).utcoffset().total_seconds())
        meta = {
            "currency": "USD",
            "symbol": ticker,
            "exchangeName": "PCX" if ticker in ETFS else "NMS",
            "fullExchangeName": "NYSEArca" if ticker in ETFS else "NasdaqGS",
            "instrumentType": "ETF" if ticker in ETFS else "EQUITY",
            "firstTradeDate": session_open(s.dates[0]),
            "regularMarketTime": int(datetime.combine(last, time(16), NEW_YORK).timestamp()),
            "hasPrePostMarketData": True,
            "gmtoffset": offset,
            "timezone": "EDT" if offset == -14400 else "EST",
            "exchangeTimezoneName": "America/New_York",
            "regularMarketPrice": round(float(s.close[-1]), 4),
            "chartPreviousClose": round(float(s.close[rows[0] - 1]), 4)
            if rows and rows[0]
            else None,
            "priceHint": 2,
            "currentTradingPeriod": {
                "regular": {
                    "timezone": "EDT" if offset == -14400 else "EST",
                    "start": session_open(last),
                    "end": int(datetime.combine(last, time(16), NEW_YORK).timestamp()),
                    "gmtoffset": offset,
                }
            },
            "dataGranularity": params.get("interval", "1d"),
            "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        result: dict[str, Any] = {"meta": meta}
        if transform == "empty" or not rows:
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
            return {"chart": {"result": [result], "error": None}}
        if transform == "out_of_order":
            rows = rows[::-1]
        elif transform == "duplicates":
            rows = [*rows, rows[-1]]
        ts = [session_open(s.dates[i]) for i in rows]
        quote = {
            "open": [float(s.open[i]) for i in rows],
            "high": [float(s.high[i]) for i in rows],
            "low": [float(s.low[i]) for i in rows],
            "close": [float(s.close[i]) for i in rows],
            "volume": [int(s.volume[i]) for i in rows],
        }
        adj = [float(s.adjclose[i]) for i in rows]
        if transform == "nulls":
            for key in quote:
                quote[key][0] = None
            adj[0] = None
            for i in range(3, len(rows), 4):
                quote["close"][i] = None
                adj[i] = None
            for i in range(2, len(rows), 4):
                quote["volume"][i] = None
        result["timestamp"] = ts
        events = {}
        if "div" in params.get("events", ""):
            divs = {
                str(session_open(d)): {"amount": a, "date": session_open(d)}
                for d, a in s.dividends.items()
                if p1_le(d, ts)
            }
            if divs:
                events["dividends"] = divs
        if events:
            result["events"] = events
        result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": adj}]}
        return {"chart": {"result": [result], "error": None}}


def p1_le(d: date, ts: list[int]) -> bool:
    t = session_open(d)
    return min(ts) <= t <= max(ts)


__all__ = ["FakeYahoo", "session_open"]
