"""Fetching one series, as a pure function any worker process can run.

A fetch may run in a thread of the flow's process or in a Dask worker on another process or
host, so its inputs are plain picklable values (the plan, the sources' non-secret settings)
and its output (:class:`~flows.sources.base.SeriesFetch`) carries everything the loader needs:
tidy frames and the raw answers (for ``raw_responses``). Keys are never passed along: each
process resolves its own (:meth:`Source.key_from_env`) when it builds its client, except the
run's own process, which lends its key to its threads (:func:`register_key`).

Rate limits across processes: each process has one limiter per host; a run spread over N
worker processes gives each ``R / N`` calls per minute (:meth:`SourceSettings.per_worker`), so
together they stay within R.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.sources.base import SeriesFetch, SeriesPlan, Source
from flows.sources.registry import source_class
from warehouse.ingest_load import RawExchange
from warehouse.runs import utcnow


@dataclass(frozen=True)
class SourceSettings:
    """The non-secret settings of each source of a run, by source name: safe to pickle, log
    and ship."""

    by_source: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, sources: Mapping[str, Source]) -> SourceSettings:
        return cls({name: source.settings() for name, source in sources.items()})

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        return self.by_source[name]

    def per_worker(self, workers: int) -> SourceSettings:
        """Split each host's rate limit evenly over ``workers`` processes."""
        n = max(1, workers)
        return SourceSettings(
            {
                name: {**s, "calls_per_minute": float(s["calls_per_minute"]) / n}
                for name, s in self.by_source.items()
            }
        )


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
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()
_process_keys: dict[tuple[str, str], str | None] = {}


def _key_scope(source: type[Source], settings: Mapping[str, Any]) -> tuple[str, str]:
    return source.name, str(settings.get("plan", ""))


def register_key(source: Source) -> None:
    """Let this process's fetches use a key the run already holds (thread runner). Worker
    processes never receive it: they resolve their own from the environment."""
    _process_keys[_key_scope(type(source), source.settings())] = source.api_key


def _api_key(source: type[Source], settings: Mapping[str, Any]) -> str | None:
    scope = _key_scope(source, settings)
    if scope in _process_keys:
        return _process_keys[scope]
    return source.key_from_env(settings)


def _record(endpoint: str, params: Mapping[str, Any], status: int, body: str) -> None:
    if _capture.exchanges is not None:
        _capture.exchanges.append(RawExchange(endpoint, dict(params), status, body, utcnow()))


def _client(source: type[Source], settings: Mapping[str, Any]) -> Any:
    """One client per process and settings (its limiter is shared by the process's threads)."""
    api_key = _api_key(source, settings)
    # The key is part of the cache key (in memory only): a changed key gets a new client.
    cache_key = (
        source.name,
        tuple(sorted((k, repr(v)) for k, v in settings.items())),
        hash(api_key),
    )
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            client = _clients[cache_key] = source.build_client(settings, api_key, _record)
        return client


def fetch_series(plan: SeriesPlan, settings: Any, now: datetime) -> SeriesFetch:
    """Fetch every range of one series through its source; a series the vendor does not serve
    comes back ``skipped``, other errors raise with the raw answers attached (the caller
    records them and the next run asks again)."""
    source = source_class(plan.source)
    _capture.exchanges = []
    try:
        result = source.fetch(_client(source, settings[plan.source]), plan, now)
    except Exception as exc:
        exc.raw_exchanges = list(_capture.exchanges or [])  # type: ignore[attr-defined]
        raise
    finally:
        raw = list(_capture.exchanges or [])
        _capture.exchanges = None
    result.raw = raw
    result.calls.update(endpoint_kind(x.endpoint) for x in raw)
    return result
