"""CoinGecko's HTTP client: pycoingecko for URLs and parameters, the shared client base for the
rest (limiter, bounded retries, scrubbing, error mapping), and CoinGecko's error shapes."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from pycoingecko import CoinGeckoAPI
from requests.adapters import HTTPAdapter

from flows.errors import (
    BadApiKeyError,
    CoinNotFoundError,
    HtmlResponseError,
    NotFoundError,
    PlanLimitError,
    RateLimitedError,
    UpstreamError,
)
from flows.sources.coingecko import constants as C
from flows.sources.coingecko.config import CoinGeckoConfig
from flows.sources.http import (
    ExchangeCallback,
    RateLimiter,
    Scrubber,
    call_with_retries,
    looks_like_html,
    one_line,
    parse_retry_after,
    shared_limiter,
)

log = logging.getLogger("aitokens.sources.coingecko")


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
