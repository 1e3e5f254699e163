"""Yahoo as a :class:`~flows.sources.base.Source`: daily equity sessions into ``equity_daily``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flows.errors import TickerNotFoundError
from flows.sources.base import SeriesFetch, SeriesPlan, Source, TableSpec, UniverseRequest
from flows.sources.http import ExchangeCallback
from flows.sources.yahoo.bars import fetch_equity_daily
from flows.sources.yahoo.client import YahooClient
from flows.sources.yahoo.config import YahooConfig

EQUITY_DAILY = TableSpec("equity_daily", ("ticker", "date", "source"), "ticker", "date")
EQUITY_DAILY_COLUMNS = ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]


class YahooDaily(Source):
    """Yahoo's chart JSON, one call per range and ticker (daily bars)."""

    name = "yahoo"
    label = "Yahoo Finance"
    table = EQUITY_DAILY
    holds_equities = True
    config_class = YahooConfig
    config: YahooConfig

    @classmethod
    def build_client(
        cls, settings: Mapping[str, Any], api_key: str | None, on_exchange: ExchangeCallback
    ) -> YahooClient:
        return YahooClient(YahooConfig(**settings), on_exchange=on_exchange)

    def follows(self, request: UniverseRequest) -> list[str]:
        return list(request.tickers or self.config.tickers)

    def refine_plans(self, plans: list[SeriesPlan]) -> list[SeriesPlan]:
        return [_whole_history(_only_session_ranges(p)) for p in plans]

    @classmethod
    def fetch(cls, client: Any, plan: SeriesPlan, now: datetime) -> SeriesFetch:
        result = SeriesFetch(plan)
        for lo, hi in plan.ranges:
            try:
                parsed = fetch_equity_daily(client, plan.series_id, lo, hi, now=now)
            except TickerNotFoundError as exc:
                result.skipped = str(exc)
                break
            frame = parsed.frame[EQUITY_DAILY_COLUMNS].copy()
            frame["source"] = cls.name
            result.frames.append(frame)
            result.requested.append((lo, hi))
            if parsed.n_null_close:
                result.notes.append(
                    f"{plan.series_id}: {parsed.n_null_close} bars without a close dropped"
                )
        return result


def _whole_history(plan: SeriesPlan) -> SeriesPlan:
    """An equity that needs new sessions is fetched over its whole range, still one call.

    Yahoo revises past adjusted closes after every split and dividend (NVDA's 10:1 split of
    2024-06-10 rewrote all its earlier prices): fetching only the new days would leave a series
    mixing two adjustments and a fake -90% return on the split day. The upsert then updates
    exactly the rows the vendor revised. A ticker already up to date costs no call at all.
    """
    if not plan.ranges or plan.covered_from is None:
        return plan
    start = min(plan.covered_from, *(lo for lo, _ in plan.ranges))
    end = max(hi for _, hi in plan.ranges)
    return plan.with_ranges([(start, end)])


def _only_session_ranges(plan: SeriesPlan) -> SeriesPlan:
    """Drop ranges without an NYSE session (a weekend, a holiday): asking Yahoo for them would
    cost a call and return nothing."""
    from analysis.calendars import sessions

    return plan.with_ranges([(lo, hi) for lo, hi in plan.ranges if len(sessions("XNYS", lo, hi))])
