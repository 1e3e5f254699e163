"""Coin Metrics' community API over ``requests`` on the shared client base: asset metrics, cursor
paging by ``next_page_url``, and Coin Metrics' error envelope ``{"error": {"type", "message"}}``.

Why the project's client base and not the official ``coinmetrics-api-client``: the official
client brings its own session, retries and pager, which would bypass what every source here
shares (the process-wide limiter of the host, the run's call budget, the bounded transport with
its deadline and body cap, secret scrubbing, and the ``raw_responses`` record of every answer);
it would also be one more dependency (with its own) for one endpoint. The endpoint is a few query
parameters and a cursor, which this module covers in full, and the fake in
``tests/fakes/coinmetrics.py`` is then exercised through the same transport as every vendor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from flows.errors import NotFoundError, UpstreamError
from flows.sources.coinmetrics import constants as C
from flows.sources.coinmetrics.config import CoinMetricsConfig
from flows.sources.http import ExchangeCallback, RateLimiter, one_line
from flows.sources.http_client import HttpClient


class AssetNotCoveredError(NotFoundError):
    """Coin Metrics does not serve this asset (unknown id, or not in the community tier): skip
    it and record why, like a delisted coin."""

    def __init__(self, message: str, *, asset: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.asset = asset


def error_info(payload: Any) -> tuple[str | None, str | None]:
    """(type, message) of ``{"error": {"type": ..., "message": ...}}``, else (None, None)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return None, None
    err = payload["error"]
    kind, message = err.get("type"), err.get("message")
    return (
        str(kind) if kind is not None else None,
        str(message) if message is not None else None,
    )


class CoinMetricsClient(HttpClient):
    """Coin Metrics API v4 (the community host needs no key), one method per endpoint."""

    vendor = "Coin Metrics"
    config: CoinMetricsConfig

    def __init__(
        self,
        config: CoinMetricsConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(
            config or CoinMetricsConfig.from_env(), on_exchange=on_exchange, limiter=limiter
        )

    def asset_metrics_pages(
        self, asset: str, start: date, end: date, *, metrics: tuple[str, ...] = C.METRICS
    ) -> Iterator[list[Any]]:
        """The ``data`` rows of each page of ``asset``'s daily metrics from ``start`` to
        ``end`` (both included), oldest first, following ``next_page_url`` until an answer
        carries none.

        A next page must be on the configured host and endpoint (a cursor pointing elsewhere is
        refused, never followed), must not repeat a page already fetched, and at most
        :data:`~flows.sources.coinmetrics.constants.MAX_PAGES` are fetched.
        """
        params: dict[str, Any] = {
            "assets": asset,
            "metrics": ",".join(metrics),
            "frequency": C.FREQUENCY,
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "page_size": int(self.config.page_size),
            "paging_from": "start",
        }
        seen: set[str] = set()
        for _ in range(C.MAX_PAGES):
            body = self.get(C.ASSET_METRICS_PATH, params, asset=asset)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise self.shape_error(C.ASSET_METRICS_PATH, 'an object with a "data" list', body)
            yield body["data"]
            nxt = body.get("next_page_url")
            if not nxt:
                return
            params = self._next_params(str(nxt))
            token = str(params.get("next_page_token", ""))
            if not token or token in seen:
                raise UpstreamError(
                    f"Coin Metrics {C.ASSET_METRICS_PATH} {asset}: next_page_url repeats a page "
                    "already fetched (or carries no next_page_token); stopped (paging would "
                    "never end)",
                    endpoint=C.ASSET_METRICS_PATH,
                )
            seen.add(token)
        raise UpstreamError(
            f"Coin Metrics {C.ASSET_METRICS_PATH} {asset}: more than {C.MAX_PAGES} pages; "
            "stopped (the server keeps sending next_page_url)",
            endpoint=C.ASSET_METRICS_PATH,
        )

    def _next_params(self, url: str) -> dict[str, str]:
        """The query of ``next_page_url`` when it names this host's asset-metrics endpoint."""
        base, nxt = urlsplit(self.base_url), urlsplit(url)
        wanted = base.path.rstrip("/") + "/" + C.ASSET_METRICS_PATH
        if (nxt.scheme, nxt.netloc) != (base.scheme, base.netloc) or nxt.path != wanted:
            raise UpstreamError(
                f"Coin Metrics {C.ASSET_METRICS_PATH}: next_page_url points to "
                f"{nxt.scheme}://{nxt.netloc}{nxt.path}, not {self.base_url}"
                f"{C.ASSET_METRICS_PATH}; refused (check {self.config.env.url})",
                endpoint=C.ASSET_METRICS_PATH,
            )
        return dict(parse_qsl(nxt.query, keep_blank_values=True))

    def interpret(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        response: requests.Response,
        payload: Any,
        asset: str = "",
        **context: Any,
    ) -> Any:
        """Coin Metrics' ``{"error": {"type", "message"}}``: a 400 ``bad_parameter`` naming
        the asset skips it; 401/403 are refusals (a metric outside the community tier); 5xx is
        retried."""
        status = response.status_code
        kind, message = error_info(payload)
        detail = (
            f"HTTP {status}"
            + (f", {kind}" if kind else "")
            + (f": {one_line(message, 200)}" if message else "")
        )
        what = f"Coin Metrics {endpoint}"
        if status >= 500:
            raise UpstreamError(
                f"{what}: server error ({detail})", endpoint=endpoint, status=status, retryable=True
            )
        if status == 400 and kind == "bad_parameter" and "asset" in (message or "").lower():
            raise AssetNotCoveredError(
                f"Coin Metrics does not cover asset {asset!r} ({detail}); skipped (check "
                f"{C.ENV_COINMETRICS_ASSETS})",
                asset=asset,
                endpoint=endpoint,
                status=status,
            )
        if status >= 400:
            hint = (
                "; the community API serves only some metrics of some assets"
                if status in (401, 403)
                else ""
            )
            raise UpstreamError(
                f"{what}: request refused ({detail}){hint}", endpoint=endpoint, status=status
            )
        if kind is not None:
            raise UpstreamError(
                f"{what}: error in a {status} answer ({detail})", endpoint=endpoint, status=status
            )
        return payload
