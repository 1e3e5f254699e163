"""Binance's spot REST client over ``requests`` on the shared client base: klines, and
Binance's error bodies ``{"code": -1121, "msg": "Invalid symbol."}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from flows.errors import NotFoundError, UpstreamError
from flows.sources.binance import constants as C
from flows.sources.binance.config import BinanceConfig
from flows.sources.http import ExchangeCallback, RateLimiter, one_line, parse_retry_after
from flows.sources.http_client import HttpClient


class SymbolNotFoundError(NotFoundError):
    """Binance has no such spot pair (delisted, renamed or misspelt): skip it and record why."""

    def __init__(self, message: str, *, symbol: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.symbol = symbol


def error_info(payload: Any) -> tuple[int | None, str | None]:
    """(code, msg) of a Binance error body ``{"code": -1121, "msg": "..."}``, else (None, None)."""
    if not isinstance(payload, dict) or "code" not in payload:
        return None, None
    code = payload.get("code")
    message = payload.get("msg")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        str(message) if message is not None else None,
    )


class BinanceClient(HttpClient):
    """Binance spot market data (public: no key), one method per endpoint."""

    vendor = "Binance"
    config: BinanceConfig

    def __init__(
        self,
        config: BinanceConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(
            config or BinanceConfig.from_env(), on_exchange=on_exchange, limiter=limiter
        )

    def klines(
        self, symbol: str, start_ms: int, end_ms: int, limit: int = C.KLINES_LIMIT
    ) -> list[Any]:
        """Daily klines of ``symbol`` opening between two unix times (milliseconds, both
        included), oldest first, at most ``limit`` of them."""
        params = {
            "symbol": symbol,
            "interval": C.INTERVAL,
            "startTime": int(start_ms),
            "endTime": int(end_ms),
            "limit": int(limit),
        }
        body = self.get(C.KLINES_PATH, params, symbol=symbol)
        if not isinstance(body, list):
            raise self.shape_error(C.KLINES_PATH, "a list of klines", body)
        return body

    def interpret(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        payload: Any,
        symbol: str = "",
        **context: Any,
    ) -> Any:
        """Binance's ``{"code", "msg"}`` errors: -1121 skips the symbol, 418 is a rate limit."""
        status = response.status_code
        code, message = error_info(payload)
        detail = (
            f"HTTP {status}"
            + (f", code {code}" if code is not None else "")
            + (f": {one_line(message, 200)}" if message else "")
        )
        if status == C.IP_BANNED:
            # 418: the IP kept calling through 429s and is banned for Retry-After seconds;
            # retried like a 429 (the whole limiter pauses) within the retry budget.
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise self.rate_limited(endpoint, status, retry_after, html=False)
        if code == C.ERR_INVALID_SYMBOL:
            raise SymbolNotFoundError(
                f"Binance has no spot pair {symbol!r} ({detail}); delisted, renamed or "
                f"misspelt, skipped (check {self.config.env_var('symbols')})",
                symbol=symbol,
                endpoint=endpoint,
                status=status,
            )
        what = f"Binance {endpoint}"
        if status >= 500:
            raise UpstreamError(
                f"{what}: server error ({detail})", endpoint=endpoint, status=status, retryable=True
            )
        if status >= 400:
            raise UpstreamError(
                f"{what}: request refused ({detail})", endpoint=endpoint, status=status
            )
        if code is not None:
            raise UpstreamError(
                f"{what}: error in a {status} answer ({detail})", endpoint=endpoint, status=status
            )
        return payload
