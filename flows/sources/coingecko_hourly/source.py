"""CoinGecko hourly as a :class:`~flows.sources.base.Source` (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from flows.errors import CoinNotFoundError, ConfigError, PlanLimitError
from flows.sources.base import SeriesFetch, SeriesPlan, TableSpec
from flows.sources.coingecko import constants as C
from flows.sources.coingecko.config import CoinGeckoConfig
from flows.sources.coingecko.history import earliest_close_date
from flows.sources.coingecko.source import CoinGeckoDaily
from flows.sources.coingecko_hourly.snapping import (
    MAX_LAG_SECONDS,
    SnapResult,
    snap_to_hour_closes,
)
from flows.sources.http_client import setting

PRICE_HOURLY = TableSpec("price_hourly", ("asset_id", "ts", "source"), "asset_id", "ts")
ROW_SOURCE = "coingecko"  # rows are CoinGecko's, like coin_daily's; the registry key differs
DEFAULT_ROLLING_DAYS = 90
MAX_CHUNK_DAYS = 89  # CoinGecko answers hourly points up to 90 days; keep a day of margin
MIN_SPAN_SECONDS = 2 * 86_400 + 600  # below 2 days it answers 5-minute points
DAY = timedelta(days=1)


@dataclass(frozen=True, repr=False)
class CoinGeckoHourlyConfig(CoinGeckoConfig):
    """CoinGecko's settings (same plan, key, host and rate limiter) plus the rolling window."""

    section: ClassVar[str] = "coingecko_hourly"  # its own key; the rest is [coingecko]'s
    rolling_days: int = setting(DEFAULT_ROLLING_DAYS, "non_negative", "AITOKENS_HOURLY_DAYS")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.rolling_days, int) or not 0 <= self.rolling_days <= 365:
            raise ConfigError(
                f"{self.env_var('rolling_days')}={self.rolling_days!r} must be a whole number of "
                "days 0..365"
            )

    @classmethod
    def from_coingecko(
        cls, config: CoinGeckoConfig, environ: Mapping[str, str] | None = None
    ) -> CoinGeckoHourlyConfig:
        """The run's CoinGecko settings with the rolling window from ``AITOKENS_HOURLY_DAYS``."""
        values = {f.name: getattr(config, f.name) for f in fields(CoinGeckoConfig)}
        return cls(**values, rolling_days=rolling_days_setting(environ))


def rolling_days_setting(environ: Mapping[str, str] | None = None) -> int:
    """``AITOKENS_HOURLY_DAYS``, else ``[coingecko_hourly] rolling_days`` of aitokens.toml,
    else 90."""
    from flows.config import merged_settings

    env = os.environ if environ is None else environ
    name = CoinGeckoHourlyConfig.env_var("rolling_days")
    raw = env.get(name, "").strip()
    if not raw:
        from_file = merged_settings(CoinGeckoHourlyConfig.section, environ).get("rolling_days")
        return DEFAULT_ROLLING_DAYS if from_file is None else int(from_file)
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number of days") from None


def _midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


class CoinGeckoHourly(CoinGeckoDaily):
    """Hourly closes of the run's coins, snapped to hour closes (see :mod:`.snapping`).

    The same vendor, key, client and coin universe as :class:`CoinGeckoDaily` (inherited); its
    own table, clock, plan, chunking and parser."""

    name = "coingecko_hourly"
    table = PRICE_HOURLY
    interval = "1h"
    config_class = CoinGeckoHourlyConfig
    config: CoinGeckoHourlyConfig

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> CoinGeckoHourly:
        config = CoinGeckoHourlyConfig.from_coingecko(CoinGeckoConfig.from_env(environ), environ)
        return cls(replace(config, **overrides) if overrides else config)

    @classmethod
    def from_run_configs(cls, configs: Mapping[str, Any]) -> CoinGeckoHourly:
        """Its own config if the run has one, else the run's CoinGecko connection."""
        if cls.name in configs:
            return cls(configs[cls.name])
        if "coingecko" in configs:
            return cls(CoinGeckoHourlyConfig.from_coingecko(configs["coingecko"]))
        return cls.from_env()

    def plan(
        self,
        series_ids: list[str],
        coverage: Mapping[str, tuple[date, date | None]],
        *,
        end: date,
        since: date | None,
        lookback_days: int,
    ) -> list[SeriesPlan]:
        """Rolling mode (``since`` None, the daily ingest): the last ``rolling_days`` days not
        yet covered. Window mode (``since`` given: ``backfill --interval 1h --around``): the
        days ``since..end`` not yet covered. Refused before any call when the plan cannot reach
        them (keyless/demo: the past 365 days)."""
        rolling = since is None
        if rolling and self.config.rolling_days == 0:
            return []
        earliest = earliest_close_date(self.config, datetime.now(UTC).date())
        if since is None:
            since_or_floor = end - timedelta(days=self.config.rolling_days - 1)
            lookback_days = self.config.rolling_days
        else:
            since_or_floor = since
            if earliest is not None and since < earliest:
                raise PlanLimitError(
                    f"the {self.config.plan} plan serves hourly history only for the past "
                    f"{self.config.history_days} days (CoinGecko error 10012): {since} is older; "
                    f"set {C.ENV_COINGECKO_PLAN}=pro with a pro key, or study this event by the "
                    "day (`aitokens study --event ...` without --interval 1h)"
                )
        plans = super().plan(
            series_ids, coverage, end=end, since=since, lookback_days=lookback_days
        )
        # Rolling mode never reaches back past its window (a warehouse idle for long restarts
        # there); neither mode asks for what the plan's history cap refuses.
        lowest = max(d for d in (since_or_floor, earliest) if d is not None)
        return [
            p.with_ranges([(max(lo, lowest), hi) for lo, hi in p.ranges if max(lo, lowest) <= hi])
            for p in plans
        ]

    def planned_calls(self, plan: SeriesPlan, today: date) -> int:
        return sum(len(_chunks(lo, hi)) for lo, hi in plan.ranges)

    def days_received(self, frame: pd.DataFrame) -> pd.Series:
        """The UTC days whose last hour was received: day D counts once its close at D+1 00:00
        is held, so a day whose last hours were not yet published (or not yet within the
        5 minutes after 00:00) is asked for again next run."""
        ts = pd.to_datetime(frame["ts"])
        return (ts[ts.dt.hour == 0] - pd.Timedelta(days=1)).dt.date

    @classmethod
    def fetch(cls, client: Any, plan: SeriesPlan, now: datetime) -> SeriesFetch:
        result = SeriesFetch(plan)
        now_s = int(now.timestamp())
        late = 0
        for lo, hi in plan.ranges:
            for start, stop in _chunks(lo, hi):
                first_close, last_close = _midnight(start) + 3600, _midnight(stop + DAY)
                to_ts = min(now_s, last_close + MAX_LAG_SECONDS)
                from_ts = min(_midnight(start), to_ts - MIN_SPAN_SECONDS)
                try:
                    body = client.market_chart_range(plan.series_id, from_ts, to_ts)
                except CoinNotFoundError as exc:
                    result.skipped = str(exc)
                    return result
                # Points after the last close's window (the live "now" point) close no hour
                # asked for; they are not counted as late.
                snapped = _snap(body, until_ms=(last_close + MAX_LAG_SECONDS) * 1000)
                late += snapped.n_late
                frame = snapped.frame
                lo_ts = pd.Timestamp(first_close, unit="s")
                hi_ts = pd.Timestamp(last_close, unit="s")
                frame = frame[(frame["ts"] >= lo_ts) & (frame["ts"] <= hi_ts)]
                result.frames.append(_tidy(frame, plan.series_id))
            result.requested.append((lo, hi))
        if late:
            result.notes.append(
                f"{plan.series_id}: {late} hourly points observed more than "
                f"{MAX_LAG_SECONDS // 60} min after the hour were not used as closes"
            )
        return result


def _chunks(lo: date, hi: date) -> list[tuple[date, date]]:
    out, start = [], lo
    while start <= hi:
        stop = min(hi, start + timedelta(days=MAX_CHUNK_DAYS - 1))
        out.append((start, stop))
        start = stop + DAY
    return out


def _points(body: Mapping[str, Any], key: str) -> dict[int, float]:
    values: dict[int, float] = {}
    for point in body.get(key) or []:
        if isinstance(point, list | tuple) and len(point) == 2 and point[0] is not None:
            try:
                values[int(point[0])] = float(point[1]) if point[1] is not None else np.nan
            except (TypeError, ValueError):
                continue
    return values


def _snap(body: Mapping[str, Any], *, until_ms: int) -> SnapResult:
    prices = _points(body, "prices")
    caps = _points(body, "market_caps")
    stamps = np.array(
        sorted(t for t, p in prices.items() if np.isfinite(p) and p > 0 and t <= until_ms),
        dtype=np.int64,
    )
    return snap_to_hour_closes(
        stamps,
        np.array([prices[t] for t in stamps], dtype=float),
        np.array([caps.get(t, np.nan) for t in stamps], dtype=float),
    )


def _tidy(frame: pd.DataFrame, coin_id: str) -> pd.DataFrame:
    """Snapped closes as ``price_hourly`` rows. ``volume_usd`` stays NULL: CoinGecko's
    ``total_volumes`` is a rolling 24-hour figure, not the hour's volume."""
    return pd.DataFrame(
        {
            "asset_id": coin_id,
            "ts": frame["ts"].to_numpy(),
            "source": ROW_SOURCE,
            "close": frame["close"].to_numpy(),
            "volume_usd": np.nan,
            "market_cap": frame["market_cap"].to_numpy(),
            "vendor_ts": frame["vendor_ts"].to_numpy(),
        }
    )
