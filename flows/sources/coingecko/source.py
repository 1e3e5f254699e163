"""CoinGecko as a :class:`~flows.sources.base.Source`: daily closes, market caps and volumes
of the coins a run follows, into ``coin_daily``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar

import pandas as pd

from flows.sources.base import SeriesFetch, SeriesPlan, Source, TableSpec, UniverseRequest
from flows.sources.coingecko.client import CoinGeckoClient
from flows.sources.coingecko.config import CoinGeckoConfig
from flows.sources.coingecko.history import fetch_coin_history, plan_history
from flows.sources.http import ExchangeCallback

COIN_DAILY = TableSpec("coin_daily", ("coin_id", "date", "source"), "coin_id", "date")


class CoinGeckoDaily(Source):
    """``/coins/{id}/market_chart/range`` in chunks of at most 365 days, one series per coin."""

    name = "coingecko"
    label = "the CoinGecko API"
    table = COIN_DAILY
    uses_coin_universe = True
    config_class: ClassVar[type[CoinGeckoConfig]] = CoinGeckoConfig
    config: CoinGeckoConfig

    @classmethod
    def key_from_env(cls, settings: Mapping[str, Any]) -> str | None:
        return CoinGeckoConfig.from_env(plan=settings["plan"]).api_key

    @classmethod
    def build_client(
        cls, settings: Mapping[str, Any], api_key: str | None, on_exchange: ExchangeCallback
    ) -> CoinGeckoClient:
        return CoinGeckoClient(
            cls.config_class(**settings, api_key=api_key), on_exchange=on_exchange
        )

    def follows(self, request: UniverseRequest) -> list[str]:
        return list(request.coins)

    def planned_calls(self, plan: SeriesPlan, today: date) -> int:
        return sum(
            len(plan_history(self.config, lo, hi, today=today).chunks) for lo, hi in plan.ranges
        )

    @classmethod
    def fetch(cls, client: Any, plan: SeriesPlan, now: datetime) -> SeriesFetch:
        result = SeriesFetch(plan)
        for lo, hi in plan.ranges:
            history = fetch_coin_history(client, plan.series_id, lo, hi, now=now)
            result.frames.append(tidy_coin_daily(history.frame, cls.name))
            result.requested.append(
                (history.chunks[0].start, history.chunks[-1].end) if history.chunks else None
            )
            result.notes += history.notes
            if history.skipped:
                result.skipped = history.skipped
                break
        return result


def tidy_coin_daily(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Parsed closes (coin_id, date, ts, price, market_cap, volume) as ``coin_daily`` rows: the
    vendor stamp kept as naive UTC ``source_ts``."""
    batch = frame.rename(columns={"ts": "source_ts"})[
        ["coin_id", "date", "price", "market_cap", "volume", "source_ts"]
    ].copy()
    stamps = pd.to_datetime(batch["source_ts"], utc=True, errors="coerce")
    batch["source_ts"] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    batch["source"] = source
    return batch
