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

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import requests
from pycoingecko import CoinGeckoAPI
from requests.adapters import HTTPAdapter

from flows.errors import (
    BadApiKeyError,
    CoinNotFoundError,
    ConfigError,
    HtmlResponseError,
    NotFoundError,
    PlanLimitError,
    RateLimitedError,
    UpstreamError,
)
from flows.sources import constants as C
from flows.sources.http import (
    ExchangeCallback,
    RateLimiter,
    RetryPolicy,
    Scrubber,
    call_with_retries,
    env_float,
    looks_like_html,
    one_line,
    paginate,
    parse_retry_after,
    shared_limiter,
)

log = logging.getLogger("aitokens.sources.coingecko")

DAY = timedelta(days=1)
MS_PER_DAY = 86_400_000
CHART_COLUMNS = ["coin_id", "date", "ts", "price", "market_cap", "volume"]


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class CoinGeckoConfig:
    """Settings of the CoinGecko source; :meth:`from_env` reads them from the environment.

    ``plan`` is ``keyless``, ``demo`` or ``pro`` (``COINGECKO_PLAN``; default ``demo`` when a
    key is set, else ``keyless``); ``api_key`` comes from ``COINGECKO_API_KEY`` and is never
    shown by ``repr``. ``base_url`` (``AITOKENS_COINGECKO_URL``) overrides the plan's host, e.g.
    for a mirror or a test fake. ``calls_per_minute`` defaults to the plan's figure in
    :mod:`flows.sources.constants`; ``history_days`` to the plan's history cap (None: no cap).
    """

    plan: str = "keyless"
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    calls_per_minute: float | None = None
    max_retry_seconds: float = C.DEFAULT_MAX_RETRY_SECONDS
    timeout_seconds: float = C.DEFAULT_TIMEOUT_SECONDS
    backoff_base_seconds: float = C.DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = C.DEFAULT_BACKOFF_MAX_SECONDS
    rate_window_seconds: float = 60.0  # the server counts calls per minute
    categories: tuple[str, ...] = C.DEFAULT_CATEGORIES
    history_days: int | None = -1  # -1: the plan's cap
    per_page: int = C.MARKETS_PER_PAGE

    def __post_init__(self) -> None:
        if self.plan not in C.PLANS:
            raise ConfigError(
                f"{C.ENV_COINGECKO_PLAN}={self.plan!r} is not a plan; use one of "
                f"{', '.join(C.PLANS)}."
            )
        key = (self.api_key or "").strip() or None
        if self.plan != "keyless" and key is None:
            raise BadApiKeyError(
                f"{C.ENV_COINGECKO_PLAN}={self.plan} needs an API key: set {C.ENV_COINGECKO_KEY} "
                f"or a Prefect Secret block (see flows/secrets.py), or {C.ENV_COINGECKO_PLAN}="
                "keyless."
            )
        if self.plan == "keyless":
            key = None  # a keyless plan sends no key even if one is set
        base = self.base_url or C.PLAN_BASE_URL[self.plan]
        if not base.endswith("/"):
            base += "/"  # pycoingecko concatenates paths onto it
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "base_url", base)
        if self.calls_per_minute is None:
            object.__setattr__(self, "calls_per_minute", C.PLAN_CALLS_PER_MINUTE[self.plan])
        if self.history_days == -1:
            object.__setattr__(self, "history_days", C.PLAN_HISTORY_DAYS[self.plan])
        if not self.calls_per_minute > 0:
            raise ConfigError(
                f"{C.ENV_COINGECKO_CPM} must be positive, got {self.calls_per_minute}."
            )
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ConfigError(
                f"{C.ENV_COINGECKO_TIMEOUT} must be a positive number of seconds, "
                f"got {self.timeout_seconds}."
            )
        if not self.max_retry_seconds >= 0:
            raise ConfigError(
                f"{C.ENV_COINGECKO_MAX_RETRY} must be zero or more, got {self.max_retry_seconds}."
            )
        object.__setattr__(self, "categories", tuple(self.categories))

    def __repr__(self) -> str:
        key = "***" if self.api_key else None
        return (
            f"CoinGeckoConfig(plan={self.plan!r}, api_key={key!r}, base_url={self.base_url!r}, "
            f"calls_per_minute={self.calls_per_minute}, history_days={self.history_days}, "
            f"categories={self.categories!r})"
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> CoinGeckoConfig:
        """Build from ``COINGECKO_*`` / ``AITOKENS_COINGECKO_*`` variables over the settings
        file's ``[coingecko]`` section (:mod:`flows.config`); ``overrides`` win.

        The key comes from ``COINGECKO_API_KEY`` or a Prefect Secret block
        (:mod:`flows.secrets`), never from the file.
        """
        from flows.config import load_config, merged_settings
        from flows.secrets import resolve_coingecko_key, secret_block_name

        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = merged_settings("coingecko", environ)
        key = resolve_coingecko_key(environ)
        env_plan = env.get(C.ENV_COINGECKO_PLAN, "").strip().lower()
        file_plan = kwargs.pop("plan", None)
        plan = env_plan or file_plan or ("demo" if key else "keyless")
        if not env_plan and file_plan and file_plan != "keyless" and not key:
            label = load_config(environ).label
            raise BadApiKeyError(
                f"{label} [coingecko] plan = {file_plan!r} needs an API key: set "
                f"{C.ENV_COINGECKO_KEY} or store it in the Prefect Secret block "
                f'{secret_block_name(environ)!r} (or set plan = "keyless").'
            )
        kwargs.update({"plan": plan, "api_key": key})
        if env.get(C.ENV_COINGECKO_URL, "").strip():
            kwargs["base_url"] = env[C.ENV_COINGECKO_URL].strip()
        for name, attr in (
            (C.ENV_COINGECKO_CPM, "calls_per_minute"),
            (C.ENV_COINGECKO_MAX_RETRY, "max_retry_seconds"),
            (C.ENV_COINGECKO_TIMEOUT, "timeout_seconds"),
        ):
            value = env_float(env, name)
            if value is not None:
                kwargs[attr] = value
        cats = env.get(C.ENV_COINGECKO_CATEGORIES, "").strip()
        if cats:
            kwargs["categories"] = tuple(c.strip() for c in cats.split(",") if c.strip())
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_retry_seconds, self.backoff_base_seconds, self.backoff_max_seconds
        )


# ------------------------------------------------------------------------------ errors
def error_info(payload: Any) -> tuple[int | None, str | None]:
    """(error_code, message) from CoinGecko's three error shapes, (None, None) otherwise.

    Shapes: ``{"status": {"error_code", "error_message"}}`` (401/429),
    ``{"error": {"status": {...}}}`` (10012 and some 401s) and ``{"error": "..."}`` (404, 400).
    """
    if not isinstance(payload, dict):
        return None, None
    node = payload.get("error", payload)
    if isinstance(node, str):
        return None, node
    if isinstance(node, dict) and isinstance(node.get("status"), dict):
        status = node["status"]
        code = status.get("error_code")
        try:
            code = int(code) if code is not None else None
        except (TypeError, ValueError):
            code = None
        return code, status.get("error_message")
    if "error" in payload:
        return None, str(payload["error"])
    return None, None


# ------------------------------------------------------------------------------ client
class CoinGeckoClient:
    """pycoingecko wrapped with rate limiting, bounded retries and typed errors.

    Each method returns the decoded JSON body of one endpoint. ``on_exchange(endpoint, params,
    status, body)`` is called for every answer (retries included) with the key scrubbed; it may
    be called from several threads at once. ``calls`` counts HTTP attempts.
    """

    def __init__(
        self,
        config: CoinGeckoConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config or CoinGeckoConfig.from_env()
        self.on_exchange = on_exchange
        self.limiter = limiter or shared_limiter(
            self.config.base_url, self.config.calls_per_minute, self.config.rate_window_seconds
        )
        self._scrub = Scrubber([self.config.api_key])
        self._local = threading.local()
        self._count_lock = threading.Lock()
        self.calls = 0
        # Built keyless on purpose: pycoingecko would put the key into the query string.
        cg = CoinGeckoAPI()
        cg.api_base_url = self.config.base_url
        cg.request_timeout = self.config.timeout_seconds
        session = cg.session
        # pycoingecko mounts a urllib3 Retry for 502/503/504 on https://; those hidden retries
        # would bypass the limiter and the call count, so every attempt goes through ours.
        session.mount("https://", HTTPAdapter(max_retries=0, pool_maxsize=32))
        session.mount("http://", HTTPAdapter(max_retries=0, pool_maxsize=32))
        session.headers["accept"] = "application/json"
        if self.config.api_key:
            session.headers[C.PLAN_KEY_HEADER[self.config.plan]] = self.config.api_key
        session.hooks["response"].append(self._remember)
        self._cg = cg

    def __repr__(self) -> str:
        return f"CoinGeckoClient({self.config!r})"

    def close(self) -> None:
        self._cg.session.close()

    def __enter__(self) -> CoinGeckoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------------
    def categories(self) -> list[dict[str, Any]]:
        """``/coins/categories``: every category with market cap and 24 h volume."""
        body = self._get("/coins/categories", {}, self._cg.get_coins_categories)
        if not isinstance(body, list):
            raise self._shape_error("/coins/categories", "a list", body)
        return body

    def coins_list(self) -> list[dict[str, Any]]:
        """``/coins/list``: every coin CoinGecko lists (id, symbol, name), in one call."""
        body = self._get("/coins/list", {}, self._cg.get_coins_list)
        if not isinstance(body, list):
            raise self._shape_error("/coins/list", "a list", body)
        return body

    def markets_page(
        self, category: str, page: int, per_page: int | None = None
    ) -> list[dict[str, Any]]:
        """One page of ``/coins/markets`` for a category, by market cap, largest first."""
        params = {
            "vs_currency": C.VS_CURRENCY,
            "category": category,
            "order": "market_cap_desc",
            "per_page": per_page or self.config.per_page,
            "page": page,
        }
        body = self._get("/coins/markets", params, lambda: self._cg.get_coins_markets(**params))
        if not isinstance(body, list):
            raise self._shape_error("/coins/markets", "a list", body)
        return body

    def market_chart_range(self, coin_id: str, from_ts: int, to_ts: int) -> dict[str, Any]:
        """``/coins/{id}/market_chart/range`` between two unix times (seconds)."""
        endpoint = f"/coins/{coin_id}/market_chart/range"
        params = {"vs_currency": C.VS_CURRENCY, "from": int(from_ts), "to": int(to_ts)}
        body = self._get(
            endpoint,
            params,
            lambda: self._cg.get_coin_market_chart_range_by_id(
                coin_id, C.VS_CURRENCY, int(from_ts), int(to_ts)
            ),
            coin_id=coin_id,
        )
        if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
            raise self._shape_error(endpoint, "an object with a 'prices' list", body)
        return body

    def global_(self) -> dict[str, Any]:
        """``/global``: the whole body (``{"data": {...}}``)."""
        body = self._get("/global", {}, self._cg.get_global)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise self._shape_error("/global", "an object with 'data'", body)
        return body

    # -- machinery ---------------------------------------------------------------------
    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.response = response

    def _get(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        invoke: Callable[[], Any],
        coin_id: str | None = None,
    ) -> Any:
        what = f"CoinGecko {endpoint}"

        def attempt() -> Any:
            with self._count_lock:
                self.calls += 1
            self._local.response = None
            try:
                invoke()
            except requests.Timeout:
                raise UpstreamError(
                    f"{what} timed out after {self.config.timeout_seconds:g} s "
                    f"(raise {C.ENV_COINGECKO_TIMEOUT} if the network is slow)",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise UpstreamError(
                    f"{what}: connection failed ({type(exc).__name__}: "
                    f"{one_line(self._scrub(str(exc)), 160)})",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except requests.HTTPError:
                # pycoingecko re-raises raise_for_status() when an error body is not JSON
                if getattr(self._local, "response", None) is None:
                    raise
            except requests.RequestException as exc:
                raise UpstreamError(
                    f"{what}: request failed ({type(exc).__name__}: "
                    f"{one_line(self._scrub(str(exc)), 160)})",
                    endpoint=endpoint,
                ) from None
            except Exception:
                # pycoingecko raises ValueError(body) / HTTPError / JSONDecodeError / KeyError
                # on any answer it dislikes; the answer itself is classified below.
                if getattr(self._local, "response", None) is None:
                    raise
            response = self._local.response
            return self._interpret(endpoint, params, response, coin_id)

        return call_with_retries(
            attempt, policy=self.config.retry_policy, limiter=self.limiter, what=what
        )

    def _interpret(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        coin_id: str | None,
    ) -> Any:
        status = response.status_code
        text = response.text
        # Scrub only what is logged, raised or stored; the data itself is parsed from the
        # raw text, so a key that happens to occur inside it (say, an id) cannot corrupt it.
        body = self._scrub(text)
        if self.on_exchange is not None:
            self.on_exchange(endpoint, self._scrub.params(params), status, body)
        what = f"CoinGecko {endpoint}"
        if looks_like_html(response.headers.get("content-type"), body):
            if status == 429:
                raise RateLimitedError(
                    f"{what}: rate limited (HTTP 429, HTML page); lower {C.ENV_COINGECKO_CPM}",
                    endpoint=endpoint,
                    status=status,
                    retry_after=parse_retry_after(response.headers.get("retry-after")),
                )
            raise HtmlResponseError(
                f"{what}: received HTML, likely a proxy or block page (HTTP {status}) instead of "
                f"JSON; check {C.ENV_COINGECKO_URL} and any HTTP proxy",
                endpoint=endpoint,
                status=status,
                retryable=status >= 500,
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RateLimitedError(
                f"{what}: rate limited (HTTP 429{'' if retry_after is None else ', Retry-After '}"
                f"{'' if retry_after is None else f'{retry_after:g} s'}); lower "
                f"{C.ENV_COINGECKO_CPM} (now {self.config.calls_per_minute:g})",
                endpoint=endpoint,
                status=status,
                retry_after=retry_after,
            )
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
            if status < 400 or status >= 500:
                raise UpstreamError(
                    f"{what}: invalid or truncated JSON (HTTP {status}, {len(body)} characters: "
                    f"{one_line(body, 80)!r})",
                    endpoint=endpoint,
                    status=status,
                    retryable=True,
                ) from None
        code, message = error_info(payload)
        detail = (
            f"HTTP {status}"
            + (f", error {code}" if code is not None else "")
            + (f": {one_line(message, 200)}" if message else "")
        )
        if code == C.CG_HISTORY_CAP:
            raise PlanLimitError(
                f"{what} from={params.get('from')} is beyond the {self.config.plan} plan's history "
                f"window ({detail}); keyless/demo plans serve the past 365 days only: request "
                f"ranges within it (fetch_coin_history clamps them) or set "
                f"{C.ENV_COINGECKO_PLAN}=pro",
                endpoint=endpoint,
                status=status,
            )
        if code == C.CG_PLAN_RESTRICTED:
            raise PlanLimitError(
                f"{what} is not available on the {self.config.plan} plan ({detail})",
                endpoint=endpoint,
                status=status,
            )
        if code in C.CG_KEY_ERROR_CODES or status == 401 or (status == 403 and self.config.api_key):
            raise BadApiKeyError(
                f"CoinGecko rejected the API key ({detail}); check {C.ENV_COINGECKO_KEY} and "
                f"{C.ENV_COINGECKO_PLAN}={self.config.plan} (demo keys work on api.coingecko.com, "
                f"pro keys on pro-api.coingecko.com)",
                endpoint=endpoint,
                status=status,
            )
        if status == 404:
            if coin_id is not None:
                raise CoinNotFoundError(
                    f"CoinGecko has no coin {coin_id!r} ({detail}); delisted or renamed, skipped",
                    coin_id=coin_id,
                    endpoint=endpoint,
                    status=status,
                )
            raise NotFoundError(
                f"{what} does not exist ({detail}); check {C.ENV_COINGECKO_URL}",
                endpoint=endpoint,
                status=status,
            )
        if status >= 500:
            raise UpstreamError(
                f"{what}: server error ({detail})", endpoint=endpoint, status=status, retryable=True
            )
        if status >= 400:
            raise UpstreamError(
                f"{what}: request refused ({detail})", endpoint=endpoint, status=status
            )
        if code is not None or (isinstance(payload, dict) and "error" in payload):
            raise UpstreamError(
                f"{what}: error in a {status} answer ({detail})", endpoint=endpoint, status=status
            )
        return payload

    @staticmethod
    def _shape_error(endpoint: str, expected: str, body: Any) -> UpstreamError:
        got = type(body).__name__ if not isinstance(body, dict) else f"keys {sorted(body)[:6]}"
        return UpstreamError(
            f"CoinGecko {endpoint}: unexpected payload shape: expected {expected}, got {got}",
            endpoint=endpoint,
        )


# ------------------------------------------------------------------------------ chunks
@dataclass(frozen=True)
class Chunk:
    """Close dates ``start..end`` (inclusive) fetched with one ``market_chart/range`` call."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def plan_chunks(start: date, end: date, max_days: int = C.MAX_CHUNK_DAYS) -> list[Chunk]:
    """Split close dates ``start..end`` into consecutive chunks of at most ``max_days`` days.

    The chunks cover every date once, in order; an empty list when ``start > end``.
    """
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}.")
    chunks = []
    cursor = start
    while cursor <= end:
        last = min(end, cursor + timedelta(days=max_days - 1))
        chunks.append(Chunk(cursor, last))
        cursor = last + DAY
    return chunks


def utc_today() -> date:
    return datetime.now(UTC).date()


def earliest_close_date(config: CoinGeckoConfig, today: date | None = None) -> date | None:
    """First close date the plan can serve (None: no cap).

    With a cap of N days the first midnight stamp must be within N days of now; one day of
    margin covers clock differences, so the first stamp is ``today - (N - 2)`` and its close
    date the day before.
    """
    if config.history_days is None:
        return None
    today = today or utc_today()
    return today - timedelta(days=config.history_days - 2) - DAY


def _midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def chunk_request_range(
    chunk: Chunk, *, earliest: date | None = None, now: datetime | None = None
) -> tuple[int, int]:
    """Unix ``(from, to)`` for a chunk: the stamps of its close dates (each date + 1 day).

    Quirk: ``market_chart/range`` answers hourly points for spans of 90 days or less, so a
    short chunk is widened to :data:`MIN_DAILY_SPAN_DAYS` (backwards, not before ``earliest``,
    then forwards, not past ``now``); the extra days are trimmed when parsing.
    """
    now = now or datetime.now(UTC)
    first_stamp, last_stamp = chunk.start + DAY, chunk.end + DAY
    from_ts, to_ts = _midnight(first_stamp), _midnight(last_stamp)
    span = timedelta(days=C.MIN_DAILY_SPAN_DAYS)
    if (last_stamp - first_stamp) < span:
        widened = last_stamp - span
        if earliest is not None:
            widened = max(widened, earliest + DAY)
        from_ts = min(from_ts, _midnight(widened))
        if to_ts - from_ts < span.total_seconds():
            to_ts = min(int(now.timestamp()), from_ts + int(span.total_seconds()))
    return from_ts, to_ts


# ------------------------------------------------------------------------------ parsing
@dataclass
class ChartParse:
    """A tidy ``market_chart/range`` answer and what was removed on the way.

    ``frame`` has :data:`CHART_COLUMNS`, one row per close date, sorted. Counters: points not
    at 00:00 UTC (``n_partial``, incl. the "now" point), repeated stamps (``n_duplicates``,
    the last one in the answer wins), rows without a price (``n_null_price``, dropped), rows
    outside the chunk (``n_outside``, from widening) and malformed points (``n_malformed``).
    Null market caps and volumes stay NaN (young coins often lack a market cap).
    """

    coin_id: str
    frame: pd.DataFrame
    n_points: int = 0
    n_partial: int = 0
    n_duplicates: int = 0
    n_null_price: int = 0
    n_bad_price: int = 0
    n_outside: int = 0
    n_malformed: int = 0
    unordered: bool = False
    n_coerced: int = 0  # numbers sent as strings ("123.4"), read as numbers
    notes: list[str] = field(default_factory=list)  # schema drift seen in this answer


# Stamps a daily series can hold: 2000-01-01 .. 2100-01-01 in ms (pandas overflows far beyond).
_MIN_TS_MS, _MAX_TS_MS = 946_684_800_000, 4_102_444_800_000


def _number(value: Any) -> tuple[float | None, bool]:
    """(value, coerced) for a JSON number or a numeric string; (None, False) otherwise."""
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        return float(value), False
    if isinstance(value, str):
        try:
            return float(value.strip()), True
        except ValueError:
            return None, False
    return None, False


def _series(points: Any, name: str) -> tuple[pd.DataFrame, int, int, bool, int]:
    """(frame of ts_ms and value, malformed, duplicates, unordered, coerced) of one list.

    A point is ``[ts_ms, value]``; numbers may come as strings (coerced and counted). Stamps
    outside 2000..2100, non-finite stamps, other shapes are malformed. A null, non-finite or
    negative value becomes NaN: the row is kept, and a price that is NaN drops it later.
    """
    rows, bad, coerced = [], 0, 0
    for item in points if isinstance(points, list) else []:
        if not (isinstance(item, list | tuple) and len(item) == 2):
            bad += 1
            continue
        stamp, c1 = _number(item[0])
        value, c2 = (None, False) if item[1] is None else _number(item[1])
        if (
            stamp is None
            or not math.isfinite(stamp)
            or not _MIN_TS_MS <= stamp <= _MAX_TS_MS
            or (item[1] is not None and value is None)
        ):
            bad += 1
            continue
        coerced += c1 or c2
        if value is not None and (not math.isfinite(value) or value < 0):
            value = None  # NaN/inf/negative: not a price, not a cap or volume
        rows.append((int(stamp), float("nan") if value is None else value))
    frame = pd.DataFrame(rows, columns=["ts_ms", name]).astype({"ts_ms": "int64", name: "float64"})
    unordered = not frame["ts_ms"].is_monotonic_increasing
    # Quirk: duplicated stamps occur; sort stably and keep the last value given for a stamp.
    frame = frame.sort_values("ts_ms", kind="stable")
    dup = int(frame["ts_ms"].duplicated(keep="last").sum())
    frame = frame.drop_duplicates("ts_ms", keep="last")
    return frame, bad, dup, unordered, coerced


def empty_chart_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in CHART_COLUMNS})
    frame["coin_id"] = frame["coin_id"].astype("object")
    frame["date"] = frame["date"].astype("object")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def parse_market_chart(
    coin_id: str, payload: Mapping[str, Any], *, start: date | None = None, end: date | None = None
) -> ChartParse:
    """Turn a ``market_chart/range`` body into one row per close date ``start..end``.

    Schema drift: a body that is not an object or has no ``prices`` list raises
    :class:`UpstreamError` ("unexpected payload shape"), so an answer we cannot read is never
    taken for an empty history. Missing ``market_caps``/``total_volumes`` leave NaN and a note;
    numbers sent as strings are read and counted (``n_coerced``); extra fields are ignored.
    """
    endpoint = f"/coins/{coin_id}/market_chart/range"
    if not isinstance(payload, Mapping):
        raise UpstreamError(
            f"CoinGecko {endpoint}: unexpected payload shape: expected an "
            f"object, got {type(payload).__name__}",
            endpoint=endpoint,
        )
    if not isinstance(payload.get("prices"), list):
        keys = ", ".join(sorted(map(str, payload))[:6]) or "none"
        what = "missing 'prices'" if "prices" not in payload else "'prices' is not a list"
        raise UpstreamError(
            f"CoinGecko {endpoint}: unexpected payload shape: {what} (keys: {keys})",
            endpoint=endpoint,
        )
    notes = [
        f"{coin_id}: answer lacks '{k}', left empty"
        for k in ("market_caps", "total_volumes")
        if not isinstance(payload.get(k), list)
    ]
    prices, bad_p, dup, unordered, co_p = _series(payload.get("prices"), "price")
    caps, bad_c, _, _, co_c = _series(payload.get("market_caps"), "market_cap")
    vols, bad_v, _, _, co_v = _series(payload.get("total_volumes"), "volume")
    merged = prices.merge(caps, on="ts_ms", how="left").merge(vols, on="ts_ms", how="left")
    result = ChartParse(
        coin_id,
        empty_chart_frame(),
        n_points=len(merged),
        n_duplicates=dup,
        n_malformed=bad_p + bad_c + bad_v,
        unordered=unordered,
        n_coerced=co_p + co_c + co_v,
        notes=notes,
    )
    if result.n_coerced:
        result.notes.append(
            f"{coin_id}: {result.n_coerced} numbers came as strings, read as numbers"
        )
    if result.n_malformed:
        result.notes.append(f"{coin_id}: {result.n_malformed} malformed points dropped")
    daily = merged["ts_ms"] % MS_PER_DAY == 0
    result.n_partial = int((~daily).sum())
    merged = merged[daily]
    null_price = merged["price"].isna()
    result.n_null_price = int(null_price.sum())
    merged = merged[~null_price]
    if merged.empty:
        return result
    ts = pd.to_datetime(merged["ts_ms"], unit="ms", utc=True)
    dates = (ts - pd.Timedelta(days=1)).dt.date  # stamp D 00:00 UTC is the close of D-1
    keep = pd.Series(True, index=merged.index)
    if start is not None:
        keep &= dates >= start
    if end is not None:
        keep &= dates <= end
    result.n_outside = int((~keep).sum())
    # A price of 0 is never a close (returns through it would be -100% and -inf in log); the
    # parse above already made negative and non-finite prices NaN. Dropped, counted and said.
    zero = keep & ~(merged["price"] > 0)
    result.n_bad_price = int(zero.sum())
    if result.n_bad_price:
        result.notes.append(
            f"{coin_id}: {result.n_bad_price} daily points with a price of 0 dropped"
        )
    keep &= ~zero
    frame = pd.DataFrame(
        {
            "coin_id": coin_id,
            "date": dates[keep].to_numpy(dtype=object),
            "ts": ts[keep].to_numpy(),
            "price": merged.loc[keep, "price"].to_numpy(dtype="float64"),
            "market_cap": merged.loc[keep, "market_cap"].to_numpy(dtype="float64"),
            "volume": merged.loc[keep, "volume"].to_numpy(dtype="float64"),
        }
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    result.frame = frame.reset_index(drop=True)
    return result


# ------------------------------------------------------------------------------ fetchers
def fetch_categories(
    client: CoinGeckoClient,
    category_ids: Iterable[str] | None = None,
    *,
    fetched_at: datetime | None = None,
) -> pd.DataFrame:
    """Snapshot of the configured categories from ``/coins/categories`` (one call).

    Columns: category_id, name, market_cap, market_cap_change_24h, volume_24h, updated_at
    (UTC, CoinGecko's), snapshot_ts (UTC, when fetched), snapshot_date. Raises
    :class:`NotFoundError` naming any category id CoinGecko does not list.
    """
    wanted = list(category_ids or client.config.categories)
    fetched_at = fetched_at or datetime.now(UTC)
    rows = {row.get("id"): row for row in client.categories() if isinstance(row, dict)}
    missing = [c for c in wanted if c not in rows]
    if missing:
        raise NotFoundError(
            f"CoinGecko lists no category {', '.join(map(repr, missing))}; check "
            f"{C.ENV_COINGECKO_CATEGORIES}",
            endpoint="/coins/categories",
        )
    frame = pd.DataFrame(
        [
            {
                "category_id": c,
                "name": rows[c].get("name"),
                "market_cap": rows[c].get("market_cap"),
                "market_cap_change_24h": rows[c].get("market_cap_change_24h"),
                "volume_24h": rows[c].get("volume_24h"),
                "updated_at": rows[c].get("updated_at"),
            }
            for c in wanted
        ]
    )
    for col in ("market_cap", "market_cap_change_24h", "volume_24h"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True, errors="coerce")
    frame["snapshot_ts"] = pd.Timestamp(fetched_at)
    frame["snapshot_date"] = fetched_at.astimezone(UTC).date()
    return frame


def iter_markets_pages(
    client: CoinGeckoClient, category: str, per_page: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Yield every ``/coins/markets`` page of a category until a short page."""
    size = per_page or client.config.per_page
    yield from paginate(lambda page: client.markets_page(category, page, size), size)


def fetch_category_members(
    client: CoinGeckoClient,
    category: str,
    *,
    snapshot_date: date | None = None,
    per_page: int | None = None,
) -> pd.DataFrame:
    """Every member of a category today, one row per coin, by market cap (all pages).

    Columns: category_id, snapshot_date, coin_id, symbol, name, rank (1 = largest, by position
    across pages), market_cap_rank (CoinGecko's global rank), price, market_cap, volume_24h,
    last_updated. A coin seen twice (ranks move during pagination) is kept at its first place.
    """
    snapshot_date = snapshot_date or utc_today()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for page in iter_markets_pages(client, category, per_page):
        for item in page:
            coin_id = item.get("id") if isinstance(item, dict) else None
            if not coin_id or coin_id in seen:
                continue
            seen.add(coin_id)
            rows.append(
                {
                    "category_id": category,
                    "snapshot_date": snapshot_date,
                    "coin_id": coin_id,
                    "symbol": item.get("symbol"),
                    "name": item.get("name"),
                    "rank": len(rows) + 1,
                    "market_cap_rank": item.get("market_cap_rank"),
                    "price": item.get("current_price"),
                    "market_cap": item.get("market_cap"),
                    "volume_24h": item.get("total_volume"),
                    "last_updated": item.get("last_updated"),
                }
            )
    columns = [
        "category_id",
        "snapshot_date",
        "coin_id",
        "symbol",
        "name",
        "rank",
        "market_cap_rank",
        "price",
        "market_cap",
        "volume_24h",
        "last_updated",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("price", "market_cap", "volume_24h"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["market_cap_rank"] = pd.to_numeric(frame["market_cap_rank"], errors="coerce").astype(
        "Int64"
    )
    frame["rank"] = frame["rank"].astype("int64")
    frame["last_updated"] = pd.to_datetime(frame["last_updated"], utc=True, errors="coerce")
    return frame


def fetch_coin_list(client: CoinGeckoClient) -> pd.DataFrame:
    """Every coin CoinGecko lists (whole-universe mode): coin_id, symbol, name; one call.

    Rows without an id are dropped; a coin listed twice keeps its first row.
    """
    rows = [
        {"coin_id": item.get("id"), "symbol": item.get("symbol") or "", "name": item.get("name")}
        for item in client.coins_list()
        if isinstance(item, dict) and item.get("id")
    ]
    frame = pd.DataFrame(rows, columns=["coin_id", "symbol", "name"])
    return frame.drop_duplicates("coin_id").reset_index(drop=True)


def coin_universe(members: pd.DataFrame | Iterable[str]) -> list[str]:
    """Member ids in order, then :data:`ALWAYS_COINS` (BTC, ETH) if not already there."""
    ids = list(members["coin_id"]) if isinstance(members, pd.DataFrame) else list(members)
    return list(dict.fromkeys([*ids, *C.ALWAYS_COINS]))


def fetch_market_chart(
    client: CoinGeckoClient, coin_id: str, chunk: Chunk, *, now: datetime | None = None
) -> ChartParse:
    """One ``market_chart/range`` call for a chunk of close dates, parsed and trimmed."""
    earliest = earliest_close_date(client.config, (now or datetime.now(UTC)).date())
    from_ts, to_ts = chunk_request_range(chunk, earliest=earliest, now=now)
    body = client.market_chart_range(coin_id, from_ts, to_ts)
    return parse_market_chart(coin_id, body, start=chunk.start, end=chunk.end)


@dataclass
class CoinHistory:
    """Daily history of one coin over a date range, or why it was skipped."""

    coin_id: str
    frame: pd.DataFrame
    chunks: list[Chunk] = field(default_factory=list)
    calls: int = 0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    n_partial: int = 0
    n_duplicates: int = 0
    n_null_price: int = 0


@dataclass(frozen=True)
class HistoryPlan:
    """The chunks to fetch for ``start..end`` under a plan, and a note when the plan clamped."""

    start: date
    end: date
    chunks: tuple[Chunk, ...]
    note: str | None = None


def plan_history(
    config: CoinGeckoConfig, start: date, end: date, *, today: date | None = None
) -> HistoryPlan:
    """Clamp ``start..end`` to completed days and to the plan's history window, then chunk.

    ``end`` stops at yesterday (the last complete UTC day). On keyless/demo plans ``start`` is
    raised to :func:`earliest_close_date` and ``note`` says so (error 10012 otherwise).
    """
    today = today or utc_today()
    end = min(end, today - DAY)
    note = None
    earliest = earliest_close_date(config, today)
    if earliest is not None and start < earliest:
        note = (
            f"the {config.plan} plan serves only the past {config.history_days} days "
            f"(CoinGecko error 10012): history before {earliest} was not fetched; set "
            f"{C.ENV_COINGECKO_PLAN}=pro with a pro key for older data"
        )
        start = earliest
    return HistoryPlan(start, end, tuple(plan_chunks(start, end)), note)


def fetch_coin_history(
    client: CoinGeckoClient,
    coin_id: str,
    start: date,
    end: date,
    *,
    plan: HistoryPlan | None = None,
    now: datetime | None = None,
) -> CoinHistory:
    """Daily closes of one coin for close dates ``start..end``: one call per chunk.

    A coin CoinGecko does not know (404) is returned with ``skipped`` set to the reason and no
    further call is made for it; every other error propagates.
    """
    now = now or datetime.now(UTC)
    plan = plan or plan_history(client.config, start, end, today=now.date())
    history = CoinHistory(coin_id, empty_chart_frame(), chunks=list(plan.chunks))
    if plan.note:
        history.notes.append(plan.note)
    frames = []
    for chunk in plan.chunks:
        history.calls += 1
        try:
            parsed = fetch_market_chart(client, coin_id, chunk, now=now)
        except CoinNotFoundError as exc:
            history.skipped = str(exc)
            log.warning("skipping %s: %s", coin_id, exc)
            return history
        history.notes.extend(n for n in parsed.notes if n not in history.notes)
        history.n_partial += parsed.n_partial
        history.n_duplicates += parsed.n_duplicates
        history.n_null_price += parsed.n_null_price
        if len(parsed.frame):
            frames.append(parsed.frame)
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        history.frame = (
            frame.drop_duplicates(["coin_id", "date"], keep="last")
            .sort_values("date", kind="stable")
            .reset_index(drop=True)
        )
    if history.n_null_price:
        history.notes.append(f"{history.n_null_price} daily points without a price were dropped")
    return history


def iter_coin_histories(
    client: CoinGeckoClient,
    coin_ids: Iterable[str],
    start: date,
    end: date,
    *,
    max_workers: int = 1,
    now: datetime | None = None,
) -> Iterator[CoinHistory]:
    """Yield :func:`fetch_coin_history` for each coin, in input order.

    With ``max_workers > 1`` coins are fetched in threads; the shared limiter still spaces
    every call, so threads only hide latency. The plan-clamp note is logged once.
    """
    now = now or datetime.now(UTC)
    plan = plan_history(client.config, start, end, today=now.date())
    if plan.note:
        log.warning("%s", plan.note)

    def one(coin_id: str) -> CoinHistory:
        return fetch_coin_history(client, coin_id, start, end, plan=plan, now=now)

    ids = list(coin_ids)
    if max_workers <= 1:
        for coin_id in ids:
            yield one(coin_id)
        return
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="coingecko") as pool:
        yield from pool.map(one, ids)


def fetch_global(client: CoinGeckoClient) -> pd.DataFrame:
    """Today's ``/global`` figures, one row; a daily run builds the daily total-cap series.

    Columns: date (UTC day of ``updated_at``), updated_at, total_market_cap_usd,
    total_volume_usd, market_cap_change_pct_24h, btc_dominance_pct, eth_dominance_pct,
    active_cryptocurrencies. (The history endpoint ``/global/market_cap_chart`` is pro-only.)
    """
    data = client.global_()["data"]
    updated = data.get("updated_at")
    updated_at = (
        pd.Timestamp(int(updated), unit="s", tz="UTC")
        if updated is not None
        else pd.Timestamp(time.time(), unit="s", tz="UTC")
    )

    def pick(node: str, key: str) -> float:
        value = (data.get(node) or {}).get(key)
        return float(value) if value is not None else float("nan")

    row = {
        "date": updated_at.date(),
        "updated_at": updated_at,
        "total_market_cap_usd": pick("total_market_cap", "usd"),
        "total_volume_usd": pick("total_volume", "usd"),
        "market_cap_change_pct_24h": float(
            data.get("market_cap_change_percentage_24h_usd") or float("nan")
        ),
        "btc_dominance_pct": pick("market_cap_percentage", "btc"),
        "eth_dominance_pct": pick("market_cap_percentage", "eth"),
        "active_cryptocurrencies": data.get("active_cryptocurrencies"),
    }
    return pd.DataFrame([row])


__all__ = [
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
    "error_info",
    "fetch_coin_list",
    "fetch_categories",
    "fetch_category_members",
    "fetch_coin_history",
    "fetch_global",
    "fetch_market_chart",
    "iter_coin_histories",
    "iter_markets_pages",
    "parse_market_chart",
    "plan_chunks",
    "plan_history",
]
