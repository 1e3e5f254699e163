"""A local CoinGecko v3 API in the real response shapes (see ../shared/data/raw/coingecko_api_fixtures).

Endpoints: ``/ping``, ``/coins/categories``, ``/coins/categories/list``, ``/coins/markets``,
``/coins/{id}/market_chart/range``, ``/global``. Behaviour copied from the real API:

- ``market_chart/range``: daily points at 00:00 UTC when ``to - from`` spans more than 90 days,
  hourly points (not on the hour) otherwise; a last point at "now" when ``to`` reaches it;
  nothing before the coin's listing; ``{"error":"coin not found"}`` (404) for unknown or
  ``delisted`` ids; with ``history_days`` set (keyless/demo), a ``from`` older than that
  answers 401 with error 10012 in the ``{"error":{"status":{...}}}`` shape.
- keys: ``plan="demo"``/``"pro"`` with ``api_key`` require the key in the plan's header
  (``x-cg-demo-api-key``/``x-cg-pro-api-key``) or query parameter; missing -> 401 error 10002,
  a pro key on the demo host -> 10010, a demo key on the pro host -> 10011.
- 429 bodies are ``{"status":{"error_code":429,"error_message":...}}``.

Extra fault kinds: ``plan_limit`` (10012 answer) and ``not_found`` (404 coin not found).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from tests.fakes.server import FakeServer, Fault, Reply
from tests.fakes.universe import Universe, seed_of

DAY_S = 86_400
AI = "artificial-intelligence"
OTHER_CATEGORIES = (
    ("layer-1", "Layer 1 (L1)", ("bitcoin", "ethereum")),
    ("smart-contract-platform", "Smart Contract Platform", ("ethereum",)),
)
HISTORY_CAP_MESSAGE = (
    "Your request exceeds the allowed time range. Public API users are limited to querying "
    "historical data within the past 365 days. Upgrade to a paid plan to enjoy full historical "
    "data access: https://www.coingecko.com/en/api/pricing. "
)
RATE_LIMIT_MESSAGE = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to "
    "subscribe to our API plans for higher rate limits."
)


def _intraday_factor(coin_id: str, hour: int) -> float:
    """A deterministic move within the day for hourly points (a market part shared by every
    coin and a coin's own part), so hourly returns are not all zero; daily points stay the
    day's close."""
    common = np.random.default_rng(hour).standard_normal()
    own = np.random.default_rng(seed_of(coin_id) * 1_000_003 + hour).standard_normal()
    return float(np.exp(0.004 * common + 0.006 * own))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def _status_body(code: int, message: str) -> dict[str, Any]:
    return {"status": {"error_code": code, "error_message": message}}


class FakeCoinGecko(FakeServer):
    """Local CoinGecko: ``with FakeCoinGecko(n_coins=300) as cg: ... cg.url ...``.

    Parameters
    ----------
    n_coins
        Members of ``artificial-intelligence`` (real AI ids first, then ``ai-token-NNN``).
    delisted
        Extra member ids whose ``market_chart/range`` answers 404.
    plan, api_key
        ``keyless`` accepts anything; ``demo``/``pro`` check the key (see module doc).
    history_days
        History cap in days (keyless/demo: 365), None for none. Default: 365 unless ``pro``.
    rate_limit, rate_limit_retry_after
        See :class:`~tests.fakes.server.FakeServer`.
    """

    root = "/api/v3"

    def __init__(
        self,
        n_coins: int = 20,
        *,
        delisted: tuple[str, ...] = (),
        plan: str = "keyless",
        api_key: str | None = None,
        history_days: int | None | str = "plan",
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: bool = True,
        last: date | None = None,
        n_other: int = 0,
    ) -> None:
        super().__init__(rate_limit=rate_limit, rate_limit_retry_after=rate_limit_retry_after)
        self.universe = Universe(n_coins, delisted=delisted, last=last, n_other=n_other)
        self.plan = plan
        self.api_key = api_key
        self.history_days = (
            (None if plan == "pro" else 365) if history_days == "plan" else history_days
        )

    # -- errors ------------------------------------------------------------------------
    def error_reply(self, status: int, path: str) -> Reply:
        if status == 429:
            return Reply(429, _status_body(429, RATE_LIMIT_MESSAGE))
        if status == 404:
            return Reply(404, {"error": "coin not found"})
        if status >= 500:
            return Reply(
                status,
                {"error": {"status": {"error_code": status, "error_message": "Internal error"}}},
            )
        return Reply(status, {"error": f"HTTP {status}"})

    def rate_limited_reply(self) -> Reply:
        return Reply(429, _status_body(429, RATE_LIMIT_MESSAGE))

    def fault_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        if fault.kind == "plan_limit":
            return self._history_cap()
        if fault.kind == "not_found":
            return Reply(404, {"error": "coin not found"})
        return None

    def _history_cap(self) -> Reply:
        return Reply(
            401,
            {
                "error": {
                    "status": {
                        "timestamp": _iso(time.time()),
                        "error_code": 10012,
                        "error_message": HISTORY_CAP_MESSAGE,
                    }
                }
            },
        )

    def _check_key(self, params: dict[str, str], headers: dict[str, str]) -> Reply | None:
        if self.plan == "keyless" or self.api_key is None:
            return None
        demo = headers.get("x-cg-demo-api-key") or params.get("x_cg_demo_api_key")
        pro = headers.get("x-cg-pro-api-key") or params.get("x_cg_pro_api_key")
        if self.plan == "demo":
            if pro and not demo:
                return Reply(
                    401,
                    _status_body(
                        10010, "Invalid API Key: a pro key must use pro-api.coingecko.com"
                    ),
                )
            given = demo
        else:
            if demo and not pro:
                return Reply(
                    401,
                    _status_body(10011, "Invalid API Key: a demo key must use api.coingecko.com"),
                )
            given = pro
        if not given:
            return Reply(401, _status_body(10002, "API Key Missing"))
        if given != self.api_key:
            return Reply(401, _status_body(10002, "Incorrect API Key"))
        return None

    # -- routes ------------------------------------------------------------------------
    def route(
        self, path: str, params: dict[str, str], headers: dict[str, str], transform: str | None
    ) -> Reply:
        refused = self._check_key(params, headers)
        if refused is not None:
            return refused
        if path == "/ping":
            return Reply(200, {"gecko_says": "(V3) To the Moon!"})
        if path == "/coins/categories/list":
            return Reply(200, [{"category_id": c, "name": n} for c, n, _ in self._categories()])
        if path == "/coins/categories":
            return Reply(200, self._category_rows())
        if path == "/coins/list":  # every coin CoinGecko knows: id, symbol, name
            return Reply(
                200,
                [{"id": c, "symbol": s, "name": n} for c, s, n, _ in self.universe.specs.values()],
            )
        if path == "/coins/markets":
            return self._markets(params, transform)
        if path == "/global":
            return self._global(transform)
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == "coins" and parts[2:] == ["market_chart", "range"]:
            return self._market_chart_range(parts[1], params, transform)
        return Reply(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/"})

    def _categories(self) -> list[tuple[str, str, tuple[str, ...]]]:
        return [
            (AI, "Artificial Intelligence (AI)", tuple(self.universe.ai_ids)),
            *OTHER_CATEGORIES,
        ]

    def _today_stamp(self) -> date:
        return min(self.universe.last, datetime.now(UTC).date())

    def _latest(self, coin_id: str) -> tuple[float, float, float, float]:
        """(price, market cap, volume, price a day earlier) at the last stamp."""
        stamp = self._today_stamp()
        now = self.universe.value_on(coin_id, stamp) or (float("nan"),) * 3
        before = self.universe.value_on(coin_id, stamp - timedelta(days=1)) or now
        return now[0], now[1], now[2], before[0]

    def _category_rows(self) -> list[dict[str, Any]]:
        rows = []
        for cid, name, members in self._categories():
            listed = [m for m in members if m not in self.universe.delisted]
            latest = [self._latest(m) for m in listed]
            cap = sum(v[1] for v in latest if v[1] == v[1])
            cap_before = sum(v[1] * v[3] / v[0] for v in latest if v[0] == v[0] and v[0])
            top = sorted(listed, key=lambda m: -self._latest(m)[1])[:3]
            rows.append(
                {
                    "id": cid,
                    "name": name,
                    "market_cap": cap,
                    "market_cap_change_24h": (cap / cap_before - 1) * 100 if cap_before else None,
                    "content": "",
                    "top_3_coins_id": top,
                    "top_3_coins": [
                        f"https://assets.coingecko.com/coins/images/1/small/{m}.png" for m in top
                    ],
                    "volume_24h": sum(v[2] for v in latest if v[2] == v[2]),
                    "updated_at": _iso(time.time()),
                }
            )
        return sorted(rows, key=lambda r: -r["market_cap"])

    def _markets(self, params: dict[str, str], transform: str | None) -> Reply:
        if "vs_currency" not in params:
            return Reply(400, {"error": "Missing parameter vs_currency"})
        category = params.get("category")
        if category:
            cats = {c: m for c, _, m in self._categories()}
            if category not in cats:
                return Reply(404, {"error": "category not found"})
            ids = list(cats[category])
        elif params.get("ids"):
            ids = [i for i in params["ids"].split(",") if self.universe.has(i)]
        else:
            ids = list(self.universe.specs)
        per_page = min(250, max(1, int(params.get("per_page", 100))))
        page = max(1, int(params.get("page", 1)))
        everyone = sorted(self.universe.specs, key=lambda m: -self._latest(m)[1])
        global_rank = {m: i + 1 for i, m in enumerate(everyone)}
        ids.sort(key=lambda m: (-self._latest(m)[1], m))
        chosen = ids[(page - 1) * per_page : page * per_page]
        now = time.time()
        rows = []
        for coin_id in chosen:
            _, symbol, name, _ = self.universe.specs[coin_id]
            price, cap, vol, before = self._latest(coin_id)
            rows.append(
                {
                    "id": coin_id,
                    "symbol": symbol,
                    "name": name,
                    "image": f"https://assets.coingecko.com/coins/images/1/large/{coin_id}.png",
                    "current_price": price,
                    "market_cap": round(cap),
                    "market_cap_rank": global_rank[coin_id],
                    "fully_diluted_valuation": round(cap * 1.2),
                    "total_volume": round(vol),
                    "high_24h": max(price, before) * 1.01,
                    "low_24h": min(price, before) * 0.99,
                    "price_change_24h": price - before,
                    "price_change_percentage_24h": (price / before - 1) * 100,
                    "market_cap_change_24h": cap - cap * before / price,
                    "market_cap_change_percentage_24h": (price / before - 1) * 100,
                    "circulating_supply": cap / price,
                    "total_supply": cap / price * 1.2,
                    "max_supply": None,
                    "ath": price * 2,
                    "ath_change_percentage": -50.0,
                    "ath_date": "2024-03-14T07:10:36.635Z",
                    "atl": price / 10,
                    "atl_change_percentage": 900.0,
                    "atl_date": "2020-03-13T00:00:00.000Z",
                    "roi": None,
                    "last_updated": _iso(now),
                }
            )
        if transform == "empty":
            rows = []
        elif transform == "nulls":
            for row in rows[::2]:
                row["market_cap"] = None
                row["total_volume"] = None
        return Reply(200, rows)

    def _global(self, transform: str | None) -> Reply:
        caps = {m: self._latest(m)[1] for m in self.universe.specs}
        vols = {m: self._latest(m)[2] for m in self.universe.specs}
        total = sum(caps.values()) * 3  # the rest of the market
        btc_usd = self._latest("bitcoin")[0]
        data = {
            "active_cryptocurrencies": 17111,
            "upcoming_icos": 0,
            "ongoing_icos": 49,
            "ended_icos": 3376,
            "markets": 1297,
            "total_market_cap": {"btc": total / btc_usd, "usd": total},
            "total_volume": {
                "btc": sum(vols.values()) * 3 / btc_usd,
                "usd": sum(vols.values()) * 3,
            },
            "market_cap_percentage": {
                "btc": caps["bitcoin"] / total * 100,
                "eth": caps["ethereum"] / total * 100,
            },
            "market_cap_change_percentage_24h_usd": -1.25,
            "updated_at": int(time.time()),
        }
        if transform == "nulls":
            data["total_market_cap"]["usd"] = None
        return Reply(200, {"data": data})

    def _market_chart_range(
        self, coin_id: str, params: dict[str, str], transform: str | None
    ) -> Reply:
        if not self.universe.has(coin_id) or coin_id in self.universe.delisted:
            return Reply(404, {"error": "coin not found"})
        try:
            start, end = float(params["from"]), float(params["to"])
        except (KeyError, ValueError):
            return Reply(400, {"error": "Missing or invalid parameters from/to"})
        if "vs_currency" not in params:
            return Reply(400, {"error": "Missing parameter vs_currency"})
        now = time.time()
        if self.history_days is not None and start < now - self.history_days * DAY_S:
            return self._history_cap()
        series = self.universe.series(coin_id)
        first_ts = datetime(
            series.first.year, series.first.month, series.first.day, tzinfo=UTC
        ).timestamp()
        last_stamp = self._today_stamp()
        points: list[tuple[int, float, float, float]] = []
        if end - start > 90 * DAY_S:
            t = max(first_ts, (start // DAY_S) * DAY_S)
            if t < start:
                t += DAY_S
            while t <= end and t <= now:
                stamp = datetime.fromtimestamp(t, UTC).date()
                if stamp > last_stamp:
                    break
                i = series.index(stamp)
                points.append(
                    (
                        int(t) * 1000,
                        float(series.prices[i]),
                        float(series.market_caps[i]),
                        float(series.volumes[i]),
                    )
                )
                t += DAY_S
        else:  # hourly, stamped a few seconds past the hour as the real API does
            offset = 37 + (seed_of(coin_id) % 20)
            t = (start // 3600) * 3600 + offset
            while t <= end and t <= now:
                if t >= first_ts:
                    stamp = datetime.fromtimestamp(t, UTC).date()
                    i = min(series.index(stamp), len(series.prices) - 1)
                    wiggle = _intraday_factor(coin_id, int(t // 3600))
                    points.append(
                        (
                            int(t * 1000) + 123,
                            float(series.prices[i]) * wiggle,
                            float(series.market_caps[i]) * wiggle,
                            float(series.volumes[i]),
                        )
                    )
                t += 3600
        if end >= now - DAY_S and points:  # the live "now" point, as the real API appends
            points.append(
                (int(now * 1000), points[-1][1] * 1.001, points[-1][2] * 1.001, points[-1][3])
            )
        return Reply(200, self._chart_payload(points, transform))

    @staticmethod
    def _chart_payload(
        points: list[tuple[int, float, float, float]], transform: str | None
    ) -> dict[str, list[list[Any]]]:
        if transform == "empty":
            points = []
        prices = [[t, p] for t, p, _, _ in points]
        caps = [[t, c] for t, _, c, _ in points]
        vols = [[t, v] for t, _, _, v in points]
        if transform == "nulls":
            for i in range(0, len(points), 5):
                prices[i][1] = None
            for i in range(1, len(points), 3):
                caps[i][1] = None
        elif transform == "duplicates":
            for series in (prices, caps, vols):
                for i in range(len(series) - 1, -1, -7):
                    series.insert(i, list(series[i]))
        elif transform == "out_of_order":
            for series in (prices, caps, vols):
                series.reverse()
        elif transform in ("glitch_x100", "glitch_zero") and prices:
            mid = len(prices) // 2  # one bad print mid-answer (issue 22's gate must catch it)
            prices[mid][1] = prices[mid][1] * 100 if transform == "glitch_x100" else 0.0
        return {"prices": prices, "market_caps": caps, "total_volumes": vols}
