"""Coin Metrics daily asset metrics as a :class:`~flows.sources.base.Source`: estimated market
caps, reference rates and reported spot volumes of the assets a run follows, into
``market_caps_daily`` (migration 009) beside the other vendors' caps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from flows.sources.base import SeriesFetch, SeriesPlan, Source, TableSpec, UniverseRequest
from flows.sources.coinmetrics import constants as C
from flows.sources.coinmetrics.client import AssetNotCoveredError, CoinMetricsClient
from flows.sources.coinmetrics.config import CoinMetricsConfig
from flows.sources.coinmetrics.metrics import ROW_COLUMNS, fetch_metrics
from flows.sources.http import ExchangeCallback

MARKET_CAPS_DAILY = TableSpec("market_caps_daily", ("symbol", "date", "source"), "symbol", "date")


class CoinMetricsDaily(Source):
    """``/v4/timeseries/asset-metrics?frequency=1d``, one series per asset (its upper-cased id
    as the symbol), one call per 10,000 days (pages followed by ``next_page_url``).

    Off by default: a run fetches it when asked, e.g. ``IngestOptions(sources=("coingecko",
    "yahoo", "coinmetrics"))``. Licence of the data: CC BY-NC 4.0 (Coin Metrics community).
    """

    name = C.SOURCE_NAME
    table = MARKET_CAPS_DAILY
    enabled_by_default = False
    label = "the Coin Metrics API"
    config_class = CoinMetricsConfig
    config: CoinMetricsConfig

    @classmethod
    def build_client(
        cls, settings: Mapping[str, Any], api_key: str | None, on_exchange: ExchangeCallback
    ) -> CoinMetricsClient:
        return CoinMetricsClient(CoinMetricsConfig(**settings), on_exchange=on_exchange)

    def follows(self, request: UniverseRequest) -> list[str]:
        return [a.upper() for a in self.config.assets]

    @classmethod
    def fetch(cls, client: Any, plan: SeriesPlan, now: datetime) -> SeriesFetch:
        result = SeriesFetch(plan)
        asset = plan.series_id.lower()
        for lo, hi in plan.ranges:
            try:
                parsed = fetch_metrics(client, asset, lo, hi, now=now)
            except AssetNotCoveredError as exc:
                result.skipped = str(exc)  # like a delisted coin: recorded, asked again tomorrow
                break
            result.frames.append(parsed.frame[ROW_COLUMNS].copy())
            result.requested.append((lo, hi))
            result.notes += parsed.notes
        return result

    def planned_calls(self, plan: SeriesPlan, today: date) -> int:
        return len(plan.ranges)
