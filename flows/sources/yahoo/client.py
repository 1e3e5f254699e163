"""Yahoo's chart API client over ``requests`` on the shared client base."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests

from flows.errors import (
    RateLimitedError,
    TickerNotFoundError,
    UpstreamError,
)
from flows.sources.http import ExchangeCallback, RateLimiter
from flows.sources.http_client import HttpClient
from flows.sources.yahoo import constants as C
from flows.sources.yahoo.config import YahooConfig

log = logging.getLogger("aitokens.sources.yahoo")


class YahooClient(HttpClient):
    """Yahoo chart API over a ``requests`` session with a browser User-Agent.

    Shares the process-wide limiter of its host; every answer goes to ``on_exchange``.
    """

    vendor = "Yahoo"
    timeout_hint = False  # its timeout message has always named no setting
    config: YahooConfig

    def __init__(
        self,
        config: YahooConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        config = config or YahooConfig.from_env()
        super().__init__(config, on_exchange=on_exchange, limiter=limiter)
        self.session.headers["User-Agent"] = config.user_agent

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
        body: dict[str, Any] = self.get(endpoint, params, ticker=ticker)
        return body

    def rate_limited(
        self, endpoint: str, status: int, retry_after: float | None, html: bool
    ) -> RateLimitedError:
        # Yahoo answers 429 (text or HTML) both when throttling and to non-browser agents
        return RateLimitedError(
            f"Yahoo {endpoint}: rate limited (HTTP 429); lower {self.config.env.calls_per_minute}",
            endpoint=endpoint,
            status=status,
            retry_after=retry_after,
        )

    def interpret(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        payload: Any,
        ticker: str = "",
        **context: Any,
    ) -> dict[str, Any]:
        """Yahoo's ``chart.error`` bodies, its 404 for an unknown ticker and its quirks."""
        status = response.status_code
        what = f"Yahoo {endpoint}"
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
