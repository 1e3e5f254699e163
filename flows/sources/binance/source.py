"""Binance spot daily klines as a :class:`~flows.sources.base.Source`: closes, volumes and
trade counts of the pairs a run follows, into ``exchange_daily``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from flows.sources.base import SeriesFetch, SeriesPlan, Source, TableSpec, UniverseRequest
from flows.sources.binance.client import BinanceClient, SymbolNotFoundError
from flows.sources.binance.config import BinanceConfig
from flows.sources.binance.klines import KLINE_COLUMNS, fetch_klines, kline_windows
from flows.sources.http import ExchangeCallback

EXCHANGE_DAILY = TableSpec("exchange_daily", ("symbol", "date", "source"), "symbol", "date")


class BinanceSpotDaily(Source):
    """``/api/v3/klines?interval=1d``, one series per pair, one call per 1,000 days.

    Off by default: a run fetches it when asked, e.g. ``IngestOptions(sources=("coingecko",
    "yahoo", "binance"))``.
    """

    name = "binance"
    label = "the Binance API"
    table = EXCHANGE_DAILY
    enabled_by_default = False
    config_class = BinanceConfig
    config: BinanceConfig

    @classmethod
    def build_client(
        cls, settings: Mapping[str, Any], api_key: str | None, on_exchange: ExchangeCallback
    ) -> BinanceClient:
        return BinanceClient(BinanceConfig(**settings), on_exchange=on_exchange)

    def follows(self, request: UniverseRequest) -> list[str]:
        return list(self.config.symbols)

    def planned_calls(self, plan: SeriesPlan, today: date) -> int:
        return sum(len(kline_windows(lo, hi)) for lo, hi in plan.ranges)

    @classmethod
    def fetch(cls, client: Any, plan: SeriesPlan, now: datetime) -> SeriesFetch:
        result = SeriesFetch(plan)
        for lo, hi in plan.ranges:
            try:
                parsed = fetch_klines(client, plan.series_id, lo, hi, now=now)
            except SymbolNotFoundError as exc:
                result.skipped = str(exc)  # like a delisted coin: recorded, asked again tomorrow
                break
            frame = parsed.frame[KLINE_COLUMNS].copy()
            frame["source"] = cls.name
            result.frames.append(frame)
            result.requested.append((lo, hi))
            result.notes += parsed.notes
        return result
