"""CoinGecko's HTTP client: pycoingecko for URLs and parameters, the shared client base for the
rest (limiter, bounded retries, scrubbing, error mapping), and CoinGecko's error shapes."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from pycoingecko import CoinGeckoAPI

from flows.errors import (
    BadApiKeyError,
    CoinNotFoundError,
    NotFoundError,
    PlanLimitError,
    UpstreamError,
)
from flows.sources.coingecko import constants as C
from flows.sources.coingecko.config import CoinGeckoConfig
from flows.sources.http import ExchangeCallback, RateLimiter, one_line
from flows.sources.http_client import CallBudget, HttpClient
from flows.sources.transport import BoundedSession

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


# ------------------------------------------------------------------------------ ids
# CoinGecko's ids are lower-case slugs ("render-token", "0x", "usd-coin", "wrapped-steth"):
# letters, digits and "-", "_", "."; an id is put into a URL path, so anything else ("/", "?",
# "#", "%", "..", spaces) could walk the path or add parameters, and is refused.
_COIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")


def coin_id_problem(coin_id: object) -> str | None:
    """Why ``coin_id`` may not enter a URL path, or None when it may."""
    if not isinstance(coin_id, str) or not coin_id:
        return "not a text id"
    if ".." in coin_id:
        return "contains '..'"
    for ch in "/?#%\\&=":
        if ch in coin_id:
            return f"contains {ch!r}"
    if not _COIN_ID.fullmatch(coin_id):
        return "not a plain id (letters, digits, '-', '_', '.')"
    return None


# ------------------------------------------------------------------------------ client
class CoinGeckoClient(HttpClient):
    """pycoingecko wrapped with rate limiting, bounded retries and typed errors.

    Each method returns the decoded JSON body of one endpoint. ``on_exchange(endpoint, params,
    status, body)`` is called for every answer (retries included) with the key scrubbed; it may
    be called from several threads at once. ``calls`` counts HTTP attempts.
    """

    vendor = "CoinGecko"
    # Error bodies that are not JSON (a 4xx from a CDN) are classified by their status.
    classify_text_client_errors = True
    config: CoinGeckoConfig

    def __init__(
        self,
        config: CoinGeckoConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        config = config or CoinGeckoConfig.from_env()
        # Built keyless on purpose: pycoingecko would put the key into the query string.
        cg = CoinGeckoAPI()
        cg.api_base_url = config.base_url
        cg.request_timeout = config.timeout_seconds
        # pycoingecko calls ``self.session.get``: hand it the bounded session (deadline, body
        # cap, same-host redirects only) instead of its own, whose urllib3 Retry for
        # 502/503/504 would also bypass our limiter and call count.
        cg.session.close()
        cg.session = BoundedSession()
        super().__init__(
            config,
            on_exchange=on_exchange,
            limiter=limiter,
            secrets=[config.api_key],
            session=cg.session,
            budget=budget,
        )
        if config.api_key:
            self.session.headers[C.PLAN_KEY_HEADER[config.plan]] = config.api_key
        self._local = threading.local()
        self.session.hooks["response"].append(self._remember)
        self._cg = cg

    # -- endpoints ---------------------------------------------------------------------
    def categories(self) -> list[dict[str, Any]]:
        """``/coins/categories``: every category with market cap and 24 h volume."""
        body = self._get("/coins/categories", {}, self._cg.get_coins_categories)
        if not isinstance(body, list):
            raise self.shape_error("/coins/categories", "a list", body)
        return body

    def coins_list(self) -> list[dict[str, Any]]:
        """``/coins/list``: every coin CoinGecko lists (id, symbol, name), in one call."""
        body = self._get("/coins/list", {}, self._cg.get_coins_list)
        if not isinstance(body, list):
            raise self.shape_error("/coins/list", "a list", body)
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
            raise self.shape_error("/coins/markets", "a list", body)
        return body

    def market_chart_range(self, coin_id: str, from_ts: int, to_ts: int) -> dict[str, Any]:
        """``/coins/{id}/market_chart/range`` between two unix times (seconds).

        An id that is not a plain slug (:func:`coin_id_problem`) is refused before any call.
        """
        problem = coin_id_problem(coin_id)
        if problem is not None:
            raise UpstreamError(
                f"CoinGecko coin id {str(coin_id)[:80]!r} refused: {problem} (it would change "
                "the URL path); not requested",
                endpoint="/coins/{id}/market_chart/range",
            )
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
            raise self.shape_error(endpoint, "an object with a 'prices' list", body)
        return body

    def global_(self) -> dict[str, Any]:
        """``/global``: the whole body (``{"data": {...}}``)."""
        body = self._get("/global", {}, self._cg.get_global)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise self.shape_error("/global", "an object with 'data'", body)
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
        """One endpoint through pycoingecko (``invoke``), on the base's retrying GET."""

        def send() -> requests.Response:
            self._local.response = None
            try:
                invoke()
            except requests.HTTPError:
                # pycoingecko re-raises raise_for_status() when an error body is not JSON
                if getattr(self._local, "response", None) is None:
                    raise
            except requests.RequestException:
                raise  # timeouts, refused connections...: mapped by the base
            except Exception:
                # pycoingecko raises ValueError(body) / JSONDecodeError / KeyError on any answer
                # it dislikes; the answer itself is classified by the base and interpret().
                if getattr(self._local, "response", None) is None:
                    raise
            response: requests.Response = self._local.response
            return response

        return self.get(endpoint, params, send=send, coin_id=coin_id)

    def interpret(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        payload: Any,
        coin_id: str | None = None,
        **context: Any,
    ) -> Any:
        """CoinGecko's error shapes and codes (see :func:`error_info`)."""
        status = response.status_code
        what = f"CoinGecko {endpoint}"
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
                f"{what} does not exist ({detail}); check {self.config.env.url}",
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
