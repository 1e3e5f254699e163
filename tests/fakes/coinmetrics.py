"""A local Coin Metrics community API v4: ``/v4/timeseries/asset-metrics`` in the documented shape,
on 127.0.0.1.

Answers ``{"data": [{"asset": "fet", "time": "2024-02-15T00:00:00.000000000Z",
"CapMrktEstUSD": "681642646.99", ...}, ...], "next_page_token": "...", "next_page_url": "..."}``:
one row per asset and UTC day from the asset's first day up to today (today's row too, as a
day still running), values as decimal strings, a metric the asset lacks left out of the row
(``ReferenceRateUSD`` is absent for the assets in ``no_price``, as in the community files of
2026). Rows are ordered by (asset, time); ``page_size`` (default 100, at most 10,000) rows a
page; while more remain the answer carries ``next_page_token`` and ``next_page_url`` (this
server's URL with the same query plus the token). ``paging_from=start`` pages from the oldest
row; ``end`` (the API's default) from the newest page back.

Errors in Coin Metrics' envelope ``{"error": {"type": ..., "message": ...}}``: an asset it does
not cover answers 400 ``bad_parameter`` naming it; an unknown metric or frequency 400
``bad_parameter``; 429 ``too_many_requests`` (with ``Retry-After`` when injected or from the
base's rate limit). Every fault kind of :class:`~tests.fakes.server.FakeServer` applies; extra
kinds: ``foreign_next`` (a ``next_page_url`` on another host), ``loop_next`` (a
``next_page_url`` that repeats the token of the page just served).

    with FakeCoinMetrics() as fake:
        config = CoinMetricsConfig(base_url=fake.url, calls_per_minute=60_000)
"""

from __future__ import annotations

import base64
import math
import random
import threading
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.fakes.server import FakeServer, Fault, Reply
from tests.fakes.universe import seed_of, today_utc

ASSET_METRICS = "/timeseries/asset-metrics"
METRICS = ("CapMrktEstUSD", "ReferenceRateUSD", "volume_reported_spot_usd_1d")
KNOWN = ("fet", "grt", "inj", "nmr", "rndr", "render", "arkm", "wld")
FIRST_DAY = date(2022, 6, 1)
START_CAP = {"fet": 1.6e8, "grt": 1.1e9, "inj": 1.5e8, "rndr": 3.0e8, "wld": 4.0e8}
TOO_MANY = {"error": {"type": "too_many_requests", "message": "Requests rate limit exceeded."}}


def bad_parameter(name: str, value: str) -> dict[str, Any]:
    return {
        "error": {
            "type": "bad_parameter",
            "message": f"Bad parameter '{name}'. Value '{value}' is not supported.",
        }
    }


def stamp(d: date) -> str:
    return f"{d.isoformat()}T00:00:00.000000000Z"


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


class FakeCoinMetrics(FakeServer):
    """Local Coin Metrics asset metrics: ``with FakeCoinMetrics() as fake: ... fake.url ...``.

    ``assets``: the asset ids it covers; ``listed``: an asset's first day when later than
    2022-06-01; ``no_price``: assets without ``ReferenceRateUSD`` (default: all of them, as the
    community data of 2026); ``gaps``: ``{asset: {days}}`` without a cap that day.
    """

    root = "/v4"

    def __init__(
        self,
        assets: tuple[str, ...] = KNOWN,
        *,
        listed: dict[str, date] | None = None,
        no_price: tuple[str, ...] | None = None,
        gaps: dict[str, set[date]] | None = None,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: bool = True,
    ) -> None:
        super().__init__(rate_limit=rate_limit, rate_limit_retry_after=rate_limit_retry_after)
        self.assets = tuple(a.lower() for a in assets)
        self.listed = dict(listed or {})
        self.no_price = set(self.assets if no_price is None else no_price)
        self.gaps = {k: set(v) for k, v in (gaps or {}).items()}
        self._cache: dict[tuple[str, date], list[dict[str, Any]]] = {}
        self._data_lock = threading.Lock()

    # -- data ------------------------------------------------------------------------------
    def rows(self, asset: str) -> list[dict[str, Any]]:
        """Every daily row of ``asset`` up to today's (running) one, oldest first."""
        today = today_utc()
        with self._data_lock:
            key = (asset, today)
            if key not in self._cache:
                self._cache[key] = self._make(asset, self.listed.get(asset, FIRST_DAY), today)
            return self._cache[key]

    def value_of(self, asset: str, day: date, metric: str = "CapMrktEstUSD") -> float:
        """The value the fake serves (a float, as parsed); KeyError when it serves none."""
        for row in self.rows(asset):
            if row["time"] == stamp(day):
                return float(row[metric])
        raise KeyError((asset, day))

    def _make(self, asset: str, first: date, today: date) -> list[dict[str, Any]]:
        rng = random.Random(seed_of(f"coinmetrics:{asset}"))
        cap = START_CAP.get(asset, 5e7 + rng.random() * 5e8)
        supply = 1e8 + rng.random() * 1e9
        out = []
        day = first
        while day <= today:
            cap = max(1e3, cap * math.exp(rng.gauss(0.0005, 0.04)))
            row: dict[str, Any] = {"asset": asset, "time": stamp(day)}
            if day not in self.gaps.get(asset, set()):
                row["CapMrktEstUSD"] = repr(cap)
            if asset not in self.no_price:
                row["ReferenceRateUSD"] = repr(cap / supply)
            row["volume_reported_spot_usd_1d"] = repr(cap * (0.01 + 0.05 * rng.random()))
            out.append(row)
            day += timedelta(days=1)
        return out

    # -- answers ---------------------------------------------------------------------------
    def error_reply(self, status: int, path: str) -> Reply:
        if status == 429:
            return Reply(429, TOO_MANY)
        kinds = {401: "unauthorized", 403: "forbidden", 404: "not_found", 400: "bad_parameter"}
        kind = kinds.get(status, "internal_error" if status >= 500 else "bad_request")
        return Reply(status, {"error": {"type": kind, "message": f"HTTP {status} (injected)."}})

    def rate_limited_reply(self) -> Reply:
        return Reply(429, TOO_MANY)

    def fault_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        if fault.kind not in ("foreign_next", "loop_next"):
            return None
        reply = self.route(path, params, headers, None)
        if isinstance(reply.payload, dict) and "data" in reply.payload:
            if fault.kind == "foreign_next":
                reply.payload["next_page_url"] = (
                    "https://evil.example/v4/timeseries/asset-metrics?next_page_token=x"
                )
            else:
                token = params.get("next_page_token", "") or _token(0)
                query = {**params, "next_page_token": token}
                reply.payload["next_page_token"] = token
                reply.payload["next_page_url"] = f"{self.url}timeseries/asset-metrics?" + (
                    urlencode(query)
                )
        return reply

    def route(
        self, path: str, params: dict[str, str], headers: dict[str, str], transform: str | None
    ) -> Reply:
        if path != ASSET_METRICS:
            return Reply(404, {"error": {"type": "not_found", "message": "Not found."}})
        assets = [a for a in params.get("assets", "").lower().split(",") if a]
        if not assets:
            return Reply(400, bad_parameter("assets", ""))
        for asset in assets:
            if asset not in self.assets:
                return Reply(400, bad_parameter("assets", asset))
        metrics = [m for m in params.get("metrics", "").split(",") if m]
        for metric in metrics:
            if metric not in METRICS:
                return Reply(400, bad_parameter("metrics", metric))
        if params.get("frequency", "1d") != "1d":
            return Reply(400, bad_parameter("frequency", params["frequency"]))
        try:
            size = int(params.get("page_size", "100"))
            start = _day(params["start_time"]) if params.get("start_time") else None
            end = _day(params["end_time"]) if params.get("end_time") else None
            offset = _offset(params.get("next_page_token", ""))
        except ValueError:
            return Reply(400, bad_parameter("page_size", params.get("page_size", "")))
        if not 1 <= size <= 10_000:
            return Reply(400, bad_parameter("page_size", str(size)))
        rows = []
        for asset in sorted(assets):
            for row in self.rows(asset):
                d = _day(row["time"])
                if (start is None or d >= start) and (end is None or d <= end):
                    rows.append({k: v for k, v in row.items() if k in ("asset", "time", *metrics)})
        from_end = params.get("paging_from", "end") == "end"
        if from_end:  # pages from the newest back; rows inside a page stay oldest first
            stop = len(rows) - offset
            page, more = rows[max(0, stop - size) : stop], stop - size > 0
        else:
            page, more = rows[offset : offset + size], offset + size < len(rows)
        if transform == "empty":
            page = []
        elif transform == "nulls" and page:
            page[len(page) // 2]["CapMrktEstUSD"] = None
        elif transform == "duplicates" and page:
            page.append(dict(page[-1]))
        elif transform == "out_of_order":
            page.reverse()
        body: dict[str, Any] = {"data": page}
        if more:
            token = _token(offset + size)
            query = {k: v for k, v in params.items() if k != "next_page_token"}
            query["next_page_token"] = token
            body["next_page_token"] = token
            body["next_page_url"] = f"{self.url}timeseries/asset-metrics?{urlencode(query)}"
        return Reply(200, body)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    if not token:
        return 0
    padded = token + "=" * (-len(token) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    if not text.startswith("offset:"):
        raise ValueError(token)
    return int(text.split(":", 1)[1])


__all__ = ["ASSET_METRICS", "FakeCoinMetrics", "METRICS", "stamp"]
