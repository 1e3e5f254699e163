"""Fetching one series, as a pure function any worker process can run.

A fetch task may run in a thread of the flow's process or in a Dask worker on another
process or host, so its inputs are plain picklable values (the plan, the non-secret settings)
and its output carries everything the loader needs: the parsed histories and the raw answers
(for ``raw_responses``). Keys are never passed along: each process reads its own from the
environment (or a Prefect Secret block) when it builds its client.

Rate limits across processes: each process has one limiter per host; a run spread over N
worker processes gives each ``R / N`` calls per minute (see ``SourceSettings.per_worker``), so
together they stay within R.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any

from flows.errors import TickerNotFoundError
from flows.sources import coingecko as cg
from flows.sources import equities as eq
from warehouse.ingest_load import COINGECKO, RawExchange
from warehouse.runs import utcnow


@dataclass(frozen=True)
class SeriesPlan:
    """The close-date ranges to fetch for one coin or ticker (empty: up to date)."""

    source: str
    series_id: str
    ranges: tuple[tuple[date, date], ...]
    covered_from: date | None
    covered_to: date | None

    @property
    def up_to_date(self) -> bool:
        return not self.ranges


@dataclass(frozen=True)
class SourceSettings:
    """Every setting of both sources except the keys: safe to pickle, log and ship."""

    coingecko: dict[str, Any]
    yahoo: dict[str, Any]

    @classmethod
    def of(cls, cg_config: cg.CoinGeckoConfig, yahoo_config: eq.YahooConfig) -> SourceSettings:
        cg_fields = {
            f.name: getattr(cg_config, f.name) for f in fields(cg_config) if f.name != "api_key"
        }
        y_fields = {f.name: getattr(yahoo_config, f.name) for f in fields(yahoo_config)}
        return cls(cg_fields, y_fields)

    def per_worker(self, workers: int) -> SourceSettings:
        """Split each host's rate limit evenly over ``workers`` processes."""
        n = max(1, workers)
        return SourceSettings(
            {**self.coingecko, "calls_per_minute": self.coingecko["calls_per_minute"] / n},
            {**self.yahoo, "calls_per_minute": self.yahoo["calls_per_minute"] / n},
        )


@dataclass
class FetchResult:
    """What one series' fetch produced, shipped back to the loading process."""

    plan: SeriesPlan
    histories: list[Any]
    raw: list[RawExchange] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    # The close-date range each plan range really asked for, after a plan's history cap cut it
    # (None: nothing could be asked). Coverage must record these, never the wish.
    requested: list[tuple[date, date] | None] = field(default_factory=list)

    @property
    def skipped(self) -> str | None:
        return next((h.skipped for h in self.histories if h.skipped), None)


def endpoint_kind(endpoint: str) -> str:
    """Endpoint with ids replaced, for call counts: ``/coins/{id}/market_chart/range``."""
    parts = endpoint.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "coins":
        return "/coins/{id}/" + "/".join(parts[2:])
    if "chart" in parts:
        return "/" + "/".join(parts[:-1]) + "/{ticker}"
    return endpoint


class _Capture(threading.local):
    """Per-thread list of the answers of the fetch running in that thread."""

    def __init__(self) -> None:
        self.exchanges: list[RawExchange] | None = None


_capture = _Capture()
_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()
_process_keys: dict[str, str | None] = {}


def register_key(plan: str, key: str | None) -> None:
    """Let this process's fetches use a key the run already holds (thread runner). Worker
    processes never receive it: they resolve their own from the environment."""
    _process_keys[plan] = key


def _api_key(plan: str) -> str | None:
    if plan in _process_keys:
        return _process_keys[plan]
    return cg.CoinGeckoConfig.from_env(plan=plan).api_key


def _record(endpoint: str, params: Any, status: int, body: str) -> None:
    if _capture.exchanges is not None:
        _capture.exchanges.append(RawExchange(endpoint, dict(params), status, body, utcnow()))


def _client(kind: str, settings: dict[str, Any]) -> Any:
    """One client per process and settings (its limiter is shared by the process's threads)."""
    api_key = _api_key(settings["plan"]) if kind == "coingecko" else None
    # The key is part of the cache key (in memory only): a changed key gets a new client.
    key = (kind, tuple(sorted((k, repr(v)) for k, v in settings.items())), hash(api_key))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if kind == "coingecko":
                config = cg.CoinGeckoConfig(**settings, api_key=api_key)
                client = cg.CoinGeckoClient(config, on_exchange=_record)
            else:
                client = eq.YahooClient(eq.YahooConfig(**settings), on_exchange=_record)
            _clients[key] = client
        return client


def fetch_series(plan: SeriesPlan, settings: SourceSettings, now: datetime) -> FetchResult:
    """Fetch every range of one series; a 404 comes back as ``skipped``, other errors raise
    (the caller records them and the next run asks again)."""
    _capture.exchanges = []
    result = FetchResult(plan, [])
    try:
        if plan.source == COINGECKO:
            client = _client("coingecko", settings.coingecko)
            for lo, hi in plan.ranges:
                history = cg.fetch_coin_history(client, plan.series_id, lo, hi, now=now)
                result.histories.append(history)
                result.requested.append(
                    (history.chunks[0].start, history.chunks[-1].end) if history.chunks else None
                )
                result.notes += history.notes
                if history.skipped:
                    break
        else:
            client = _client("yahoo", settings.yahoo)
            for lo, hi in plan.ranges:
                try:
                    parsed = eq.fetch_equity_daily(client, plan.series_id, lo, hi, now=now)
                except TickerNotFoundError as exc:
                    result.histories.append(
                        eq.EquityHistory(plan.series_id, eq.empty_equity_frame(), skipped=str(exc))
                    )
                    break
                result.histories.append(eq.EquityHistory(plan.series_id, parsed.frame))
                result.requested.append((lo, hi))
                if parsed.n_null_close:
                    result.notes.append(
                        f"{plan.series_id}: {parsed.n_null_close} bars without a close dropped"
                    )
    except Exception as exc:
        exc.raw_exchanges = list(_capture.exchanges)  # type: ignore[attr-defined]
        raise
    finally:
        result.raw = list(_capture.exchanges or [])
        _capture.exchanges = None
    result.calls.update(endpoint_kind(x.endpoint) for x in result.raw)
    return result


def with_rate(settings: SourceSettings, coingecko_cpm: float) -> SourceSettings:
    return replace(settings, coingecko={**settings.coingecko, "calls_per_minute": coingecko_cpm})
