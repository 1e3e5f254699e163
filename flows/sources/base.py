"""The source interface: plan what the warehouse's coverage lacks -> fetch pages -> tidy frames.

A price source is one package under ``flows/sources/`` whose ``SOURCE`` is a :class:`Source`
subclass; :mod:`flows.sources.registry` finds it, so a new vendor (or a new interval of one) is
one package plus a warehouse migration for its table (and, for daily closes studies should read,
its feed view in ``warehouse/price_feeds.sql``), and touches no other source:

1. **plan** (loader process): which series to follow (:meth:`Source.follows`), and for each the
   ranges its coverage lacks (:func:`flows.sources.planning.plan_series`, then
   :meth:`Source.refine_plans` for vendor rules such as "no call for a weekend");
2. **fetch** (any process, e.g. a Dask worker): :meth:`Source.fetch` turns one
   :class:`SeriesPlan` into pages through the vendor's client and returns a :class:`SeriesFetch`;
3. **tidy frames**: the frames of a :class:`SeriesFetch` have exactly the columns of the
   declared :attr:`Source.table` and are upserted on its key, with the run's raw answers and the
   series' new coverage, in one transaction (:mod:`flows.services.ingestion`).

Sources know HTTP and payloads, nothing of DuckDB: the table is only named here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, ClassVar

import pandas as pd

from flows.sources.http import ExchangeCallback
from flows.sources.planning import SeriesPlan, plan_series
from warehouse.ingest_load import RawExchange


@dataclass(frozen=True)
class TableSpec:
    """Where a source's tidy frames go: the warehouse table and its upsert key.

    ``series_column`` and ``time_column`` name the key columns that identify a series and a
    period; the warehouse reads a series' held range from them when no coverage was recorded.
    """

    name: str
    key: tuple[str, ...]
    series_column: str
    time_column: str


@dataclass
class SeriesFetch:
    """What one series' fetch produced, shipped back to the loading process (picklable).

    ``frames`` are tidy: the columns of the source's table. ``requested`` is the close-date range
    each plan range really asked for once a plan cap cut it (None: nothing could be asked);
    coverage records these, never the wish. ``skipped`` is the reason a series is not served
    (e.g. a 404 for a delisted coin); it is recorded and asked again another day.
    """

    plan: SeriesPlan
    frames: list[pd.DataFrame] = field(default_factory=list)
    requested: list[tuple[date, date] | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    raw: list[RawExchange] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)

    def frame(self) -> pd.DataFrame | None:
        """All rows fetched, or None when there are none."""
        frames = [f for f in self.frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else None


@dataclass(frozen=True)
class UniverseRequest:
    """What a run asked to follow, for :meth:`Source.follows` (None: the source's default)."""

    coins: tuple[str, ...] = ()  # the CoinGecko universe (sector members + BTC/ETH)
    tickers: tuple[str, ...] | None = None  # equities asked for by the run


class Source(ABC):
    """One price source. Subclasses set the class attributes and implement the abstract methods.

    An instance holds the source's settings (``config``, a frozen dataclass that may carry a
    key) in the loading process; :meth:`settings` is the same without any key, safe to pickle,
    log and ship to worker processes, where :meth:`build_client` rebuilds a client from it.
    """

    name: ClassVar[str]  # the warehouse's source label and the registry key
    table: ClassVar[TableSpec]
    interval: ClassVar[str] = "1d"
    enabled_by_default: ClassVar[bool] = True
    # True: the source follows the CoinGecko coin universe (the AI category + BTC/ETH), so a
    # run that fetches it takes the sector snapshot first; False: it follows its own list.
    uses_coin_universe: ClassVar[bool] = False
    # True: the source's series are equities (left out of a run with ``equities=False``).
    holds_equities: ClassVar[bool] = False
    # How messages name the vendor's API ("cannot reach the Binance API at ...").
    label: ClassVar[str]
    # The settings, declared once as fields of this frozen dataclass
    # (:func:`flows.sources.http_client.setting`: default, aitokens.toml key and kind, variable).
    config_class: ClassVar[type[Any]]
    # Derived from ``config_class`` (never written by hand): the ``aitokens.toml`` section and
    # key -> (kind, overriding environment variable), checked by flows.config.
    settings_section: ClassVar[str]
    settings_schema: ClassVar[Mapping[str, tuple[str | tuple[str, ...], str | None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        config = cls.__dict__.get("config_class")
        if config is not None:
            cls.settings_section = config.section
            cls.settings_schema = config.settings_schema()

    def __init__(self, config: Any) -> None:
        self.config = config

    # -- settings and clients ---------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Source:
        """The source configured from the environment over ``aitokens.toml``."""
        return cls(cls.config_class.from_env(environ, **overrides))

    @property
    def calls_per_minute(self) -> float:
        return float(self.config.calls_per_minute)

    @property
    def api_key(self) -> str | None:
        return getattr(self.config, "api_key", None)

    def settings(self) -> dict[str, Any]:
        """Every setting except the key: what worker processes receive."""
        return {
            f.name: getattr(self.config, f.name) for f in fields(self.config) if f.name != "api_key"
        }

    @classmethod
    def key_from_env(cls, settings: Mapping[str, Any]) -> str | None:
        """The key a worker process resolves for itself (never shipped); None: keyless."""
        return None

    @classmethod
    @abstractmethod
    def build_client(
        cls, settings: Mapping[str, Any], api_key: str | None, on_exchange: ExchangeCallback
    ) -> Any:
        """A client for these settings whose every answer goes to ``on_exchange``."""

    @classmethod
    def from_run_configs(cls, configs: Mapping[str, Any]) -> Source:
        """The source for one run: its config from ``configs`` (by name) if given (e.g. a
        test fake), else from the environment."""
        return cls(configs[cls.name]) if cls.name in configs else cls.from_env()

    def client(self, on_exchange: ExchangeCallback) -> Any:
        """A client in this process, with the key the run holds."""
        return self.build_client(self.settings(), self.api_key, on_exchange)

    # -- plan ------------------------------------------------------------------------------
    @abstractmethod
    def follows(self, request: UniverseRequest) -> list[str]:
        """The series ids this run follows."""

    def plan(
        self,
        series_ids: list[str],
        coverage: Mapping[str, tuple[date, date | None]],
        *,
        end: date,
        since: date | None,
        lookback_days: int,
    ) -> list[SeriesPlan]:
        """What each series still needs: the coverage rule of
        :func:`flows.sources.planning.plan_series`, then :meth:`refine_plans`."""
        planned = plan_series(
            self.name, series_ids, coverage, end=end, since=since, lookback_days=lookback_days
        )
        return self.refine_plans(planned)

    def refine_plans(self, plans: list[SeriesPlan]) -> list[SeriesPlan]:
        """Vendor rules applied to the coverage plans (default: none)."""
        return plans

    def planned_calls(self, plan: SeriesPlan, today: date) -> int:
        """History calls ``plan`` will make (for progress bars and ETAs); default one a range."""
        return len(plan.ranges)

    def days_received(self, frame: pd.DataFrame) -> pd.Series:
        """The days a fetched frame holds (for coverage): the table's time column by default."""
        return frame[self.table.time_column]

    # -- fetch -----------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def fetch(cls, client: Any, plan: SeriesPlan, now: datetime) -> SeriesFetch:
        """Fetch every range of one series into tidy frames of :attr:`table`.

        A series the vendor does not serve comes back with ``skipped`` set; every other error
        raises (the caller records it and the next run asks again).
        """
