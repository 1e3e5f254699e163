"""What one ingestion run should do, validated before anything is fetched or written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flows.errors import ConfigError

DAY = timedelta(days=1)
INTERVALS = ("1d", "1h")
DEFAULT_LOOKBACK_DAYS = 365  # a coin first seen by a daily run gets this much history
FIRST_CRYPTO_DAY = date(2009, 1, 3)  # the bitcoin genesis block: no price series before it
_COIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_TICKER = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.^=-]{0,19}")


@dataclass(frozen=True)
class IngestOptions:
    """What one run should do. Everything here is safe to show (no secrets)."""

    flow: str = "daily_ingest"
    since: date | None = None  # backfill: fill history from this date
    until: date | None = None  # default: the last complete UTC day
    coins: tuple[str, ...] | None = None  # restrict to these CoinGecko ids
    tickers: tuple[str, ...] | None = None  # default: AITOKENS_YAHOO_TICKERS or NVDA,AMD,SPY,QQQ
    categories: tuple[str, ...] | None = None  # default: the CoinGecko config's categories
    refresh_snapshot: bool = False  # take today's snapshot again even if held
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    equities: bool = True  # False: leave the sources that hold equities (Yahoo) out of this run
    global_market: bool = True
    max_workers: int = 4  # threads fetching in parallel; the rate limiter still spaces calls
    universe: str = "category"  # "all": every coin CoinGecko lists (/coins/list), not one sector
    sources: tuple[str, ...] | None = None  # price sources to fetch (default: see source_names)
    interval: str = "1d"  # a backfill's interval: "1d" (daily sources) or "1h" (hourly ones)

    def __post_init__(self) -> None:
        """Refuse hostile or absurd options before anything is fetched or written."""
        for what, values, pattern, hint in (
            ("coin id", self.coins, _COIN_ID, "CoinGecko ids are like fetch-ai, bitcoin"),
            ("ticker", self.tickers, _TICKER, "tickers are like NVDA, BRK-B, ^GSPC"),
            ("category", self.categories, _COIN_ID, "e.g. artificial-intelligence"),
            ("source", self.sources, _COIN_ID, "e.g. coingecko, yahoo"),
        ):
            for value in values or ():
                if not isinstance(value, str) or not pattern.fullmatch(value):
                    raise ConfigError(f"{what} {value!r} is not valid ({hint})")
        today = datetime.now(UTC).date()
        if self.since is not None:
            if self.since < FIRST_CRYPTO_DAY:
                raise ConfigError(
                    f"since {self.since} is before the first bitcoin block ({FIRST_CRYPTO_DAY})"
                )
            if self.since >= today:
                raise ConfigError(
                    f"since {self.since} is not a complete day yet (the last one is "
                    f"{today - DAY}, UTC)"
                )
        if self.until is not None and self.since is not None and self.until < self.since:
            raise ConfigError(f"until {self.until} is before since {self.since}")
        if self.until is not None and self.until < FIRST_CRYPTO_DAY:
            raise ConfigError(f"until {self.until} is before the first bitcoin block")
        if not 1 <= self.lookback_days <= 36_500:
            raise ConfigError(f"lookback_days {self.lookback_days} must be 1..36500")
        if self.interval not in INTERVALS:
            raise ConfigError(f"interval {self.interval!r} is not one of {', '.join(INTERVALS)}")
        if not 1 <= self.max_workers <= 64:
            raise ConfigError(f"max_workers {self.max_workers} must be 1..64")

    def source_names(self, available: Mapping[str, str]) -> tuple[str, ...]:
        """The sources this run fetches, from ``available`` (name -> interval): ``sources`` if
        given; else a daily ingest takes every one (the hourly ones keep their rolling window)
        and a backfill those of its ``interval``. (Sources that hold equities are dropped by the
        ingestion when ``equities`` is False: :attr:`Source.holds_equities`.)"""
        if self.sources is not None:
            names: tuple[str, ...] = self.sources
        elif self.flow == "daily_ingest":
            names = tuple(available)
        else:
            names = tuple(n for n, interval in available.items() if interval == self.interval)
        return names

    def to_params(self) -> dict[str, Any]:
        """JSON-friendly form for logs, Prefect parameters and ``ingest_runs.details``."""
        return {
            k: (v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v)
            for k, v in self.__dict__.items()
        }
