"""Yahoo's chart API client over ``requests`` on the shared client base."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from flows.errors import (
    HtmlResponseError,
    RateLimitedError,
    TickerNotFoundError,
    UpstreamError,
)
from flows.sources.http import (
    ExchangeCallback,
    RateLimiter,
    call_with_retries,
    looks_like_html,
    one_line,
    parse_retry_after,
    shared_limiter,
)
from flows.sources.yahoo import constants as C
from flows.sources.yahoo.config import YahooConfig

log = logging.getLogger("aitokens.sources.yahoo")


class YahooClient:
    """Yahoo chart API over a ``requests`` session with a browser User-Agent.

    Shares the process-wide limiter of its host; every answer goes to ``on_exchange``.
    """

    def __init__(
        self,
        config: YahooConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config or YahooConfig.from_env()
        self.on_exchange = on_exchange
        self.limiter = limiter or shared_limiter(
            self.config.base_url, self.config.calls_per_minute, self.config.rate_window_seconds
        )
        self.session = requests.Session()
        self.session.mount("https://", HTTPAdapter(max_retries=0))
        self.session.mount("http://", HTTPAdapter(max_retries=0))
        self.session.headers.update(
            {"User-Agent": self.config.user_agent, "Accept": "application/json"}
        )
        self._count_lock = threading.Lock()
        self.calls = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> YahooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chart(self, ticker: str, period1: int, period2: int) -> dict[str, Any]:
        """The chart body for ``ticker`` between two unix times (seconds), daily bars."""
        endpoint = "/" + C.YAHOO_CHART_PATH.format(ticker=ticker)
        params = {
            "period1": int(period1),
            "period2": int(period2),
            "interval": "1d",
            "events": "div,splits",
            "includeAdjustedClose": "true",
        }
        url = self.config.base_url + endpoint.lstrip("/")
        what = f"Yahoo {endpoint}"

        def attempt() -> dict[str, Any]:
            with self._count_lock:
                self.calls += 1
            try:
                response = self.session.get(url, params=params, timeout=self.config.timeout_seconds)
            except requests.Timeout:
                raise UpstreamError(
                    f"{what} timed out after {self.config.timeout_seconds:g} s",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise UpstreamError(
                    f"{what}: connection failed ({type(exc).__name__}: {one_line(str(exc), 160)})",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            return self._interpret(endpoint, params, response, ticker)

        return call_with_retries(
            attempt, policy=self.config.retry_policy, limiter=self.limiter, what=what
        )

    def _interpret(
        self, endpoint: str, params: Mapping[str, Any], response: requests.Response, ticker: str
    ) -> dict[str, Any]:
        status, body = response.status_code, response.text
        if self.on_exchange is not None:
            self.on_exchange(endpoint, dict(params), status, body)
        what = f"Yahoo {endpoint}"
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 429:
            # Yahoo answers 429 (text or HTML) both when throttling and to non-browser agents
            raise RateLimitedError(
                f"{what}: rate limited (HTTP 429); lower {C.ENV_YAHOO_CPM}",
                endpoint=endpoint,
                status=status,
                retry_after=retry_after,
            )
        if looks_like_html(response.headers.get("content-type"), body):
            raise HtmlResponseError(
                f"{what}: received HTML, likely a proxy or block page (HTTP {status}) instead of "
                f"JSON; check {C.ENV_YAHOO_URL} and any HTTP proxy",
                endpoint=endpoint,
                status=status,
                retryable=status >= 500,
            )
        try:
            payload = json.loads(body)
        except ValueError:
            raise UpstreamError(
                f"{what}: invalid or truncated JSON (HTTP {status}, {len(body)} "
                f"characters: {one_line(body, 80)!r})",
                endpoint=endpoint,
                status=status,
                retryable=status < 400 or status >= 500,
            ) from None
        error = (payload.get("chart") or {}).get("error") if isinstance(payload, dict) else None
        detail = f"HTTP {status}" + (
            f": {error.get('code')}: {error.get('description')}" if isinstance(error, dict) else ""
        )
        if status == 404 or (isinstance(error, dict) and error.get("code") == "Not Found"):
            raise TickerNotFoundError(
                f"Yahoo has no chart for {ticker!r} ({detail}); delisted or misspelt, skipped",
                ticker=ticker,
                endpoint=endpoint,
                status=status,
            )
        if status >= 500:
            raise UpstreamError(
                f"{what}: server error ({detail})", endpoint=endpoint, status=status, retryable=True
            )
        if (
            status == 400
            and isinstance(error, dict)
            and "doesn't exist" in str(error.get("description", ""))
        ):
            # Quirk: a range without sessions (before listing) is a 400 "Data doesn't exist"
            return {
                "chart": {"result": [{"meta": {}, "indicators": {"quote": [{}]}}], "error": None}
            }
        if status >= 400:
            raise UpstreamError(
                f"{what}: request refused ({detail}); if 401/403, Yahoo may want "
                f"a browser User-Agent or blocks this network",
                endpoint=endpoint,
                status=status,
            )
        result = (payload.get("chart") or {}).get("result") if isinstance(payload, dict) else None
        if error or not isinstance(result, list) or not result:
            raise UpstreamError(
                f"{what}: no chart result ({detail})", endpoint=endpoint, status=status
            )
        return payload
