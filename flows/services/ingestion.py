"""One ingestion run, step by step, as plain Python: snapshots, plans, loads, bookkeeping.

State is read from the warehouse, never kept elsewhere (:mod:`warehouse.ingest_state`):

- a series' history is fetched from the day after the last close held (``fetch_coverage``),
  up to the last complete UTC day; a backfill also fills from ``since`` up to where the
  coverage starts; a day not yet published is asked for again next time;
- each series is loaded in its own transaction together with its raw answers and its new
  coverage, so a crash loses at most the batch in flight and a rerun resumes there;
- the CoinGecko sector snapshots (category figures, members, ``/global``) are taken once per UTC
  day: a second run on the same day makes no call for them and changes no row.

The price sources are whatever the registry holds (:mod:`flows.sources.registry`): this module
names none of them except CoinGecko, whose AI category defines the coin universe. The order of
the steps lives in :func:`flows.services.steps.run_ingestion`, the one path both the in-process
runner and the Prefect flows take.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from flows.errors import (
    BadApiKeyError,
    CallBudgetError,
    ConfigError,
    HtmlResponseError,
    SourceError,
)
from flows.redact import scrub
from flows.services.ingest_options import IngestOptions
from flows.services.ingest_summary import IngestSummary
from flows.sources import coingecko as cg
from flows.sources.base import SeriesFetch, SeriesPlan, Source, UniverseRequest
from flows.sources.coingecko.sector import refused_ids_note
from flows.sources.connectivity import DEFAULT_TIMEOUT_S as DEFAULT_CHECK_TIMEOUT_S
from flows.sources.connectivity import NoNetworkError, no_network_message, unreachable_sources
from flows.sources.http_client import ENV_MAX_CALLS, CallBudget
from flows.sources.planning import extended_coverage
from flows.sources.registry import default_sources, source_class
from flows.sources.worker import SourceSettings, endpoint_kind, register_key
from warehouse import ingest_load as wl
from warehouse import ingest_state as state
from warehouse.db import open_warehouse, resolve_db_path, transaction
from warehouse.load import UpsertResult
from warehouse.quality import check_series
from warehouse.runs import RunRecord, mark_abandoned, record_run, utcnow

log = logging.getLogger("aitokens.ingest")

DAY = timedelta(days=1)
UNIVERSE_SOURCE = "coingecko"  # its AI category defines the coin universe of every run

ABANDONED_REASON = (
    "the process ended without finishing (killed or crashed); its committed batches are kept "
    "and the next run resumed after them"
)

# Errors that mean every further call would fail too: stop the run instead of skipping.
FATAL_SOURCE_ERRORS = (BadApiKeyError, HtmlResponseError, CallBudgetError)


def network_check_seconds() -> float:
    """Seconds the connectivity check may take (``AITOKENS_NETWORK_CHECK_SECONDS``, default 3;
    0 turns it off)."""
    raw = os.environ.get("AITOKENS_NETWORK_CHECK_SECONDS", "").strip()
    if not raw:
        return DEFAULT_CHECK_TIMEOUT_S
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise ConfigError(
            f"AITOKENS_NETWORK_CHECK_SECONDS={raw!r} is not a number of seconds"
        ) from None


def network_preflight(options: IngestOptions, db: str | Path | None = None) -> None:
    """Stop before starting anything slow (a Prefect server) when no source can be reached."""
    ing = Ingestion(options, db=db)
    try:
        ing.check_network()
    finally:
        ing.close()


def last_complete_day(now: datetime | None = None) -> date:
    """Yesterday in UTC: today's close does not exist yet."""
    return (now or datetime.now(UTC)).astimezone(UTC).date() - DAY


class RawCollector:
    """The answers to the run's own snapshot calls (categories, members, /coins/list,
    /global), written in the same transaction as the rows they produced. History answers
    travel with each series' ``SeriesFetch`` instead. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[wl.RawExchange] = []
        self.calls: Counter = Counter()

    def __call__(self, endpoint: str, params: Mapping[str, Any], status: int, body: str) -> None:
        exchange = wl.RawExchange(endpoint, dict(params), status, body, utcnow())
        with self._lock:
            self._pending.append(exchange)
            self.calls[endpoint_kind(endpoint)] += 1

    def take(self) -> list[wl.RawExchange]:
        """The answers not yet written, emptying the list."""
        with self._lock:
            taken, self._pending = self._pending, []
            return taken


class Ingestion:
    """One ingestion run against one warehouse file. Steps are methods, so Prefect tasks and
    the in-process runner share them; each step opens the warehouse only while it works.

    ``configs`` maps a source name to its settings object (e.g. a ``CoinGeckoConfig`` for a
    test fake); a source without one is configured from the environment.
    """

    def __init__(
        self,
        options: IngestOptions,
        *,
        db: str | Path | None = None,
        configs: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.options = options
        self.db_file = resolve_db_path(db)
        self.now = now or datetime.now(UTC)
        self.end = min(options.until or last_complete_day(self.now), last_complete_day(self.now))
        self.raw = RawCollector()
        configs = dict(configs or {})
        self.fetched_sources = tuple(
            name
            for name in options.source_names(default_sources())
            if options.equities or not source_class(name).holds_equities
        )
        # The CoinGecko sector (snapshot, universe, /global) only when a source follows it: a
        # run of other sources alone (e.g. Binance) makes no CoinGecko call.
        self.needs_universe = any(source_class(n).uses_coin_universe for n in self.fetched_sources)
        self.sources: dict[str, Source] = {}
        universe = (UNIVERSE_SOURCE,) if self.needs_universe else ()
        for name in dict.fromkeys((*universe, *self.fetched_sources)):
            self.sources[name] = source_class(name).from_run_configs(configs)
        if options.categories and self.needs_universe:
            config = self.coingecko.config
            values = {f.name: getattr(config, f.name) for f in fields(config)}
            self.sources[UNIVERSE_SOURCE] = source_class(UNIVERSE_SOURCE)(
                cg.CoinGeckoConfig(**{**values, "categories": options.categories})
            )
        # One cap on the HTTP calls of the run (AITOKENS_MAX_CALLS_PER_RUN): the run's own
        # client spends it call by call; history fetches (other threads or processes) are
        # checked against it before fetching (planned calls) and after each series.
        self.budget = CallBudget.from_env(os.environ)
        self.cg = self.coingecko.client(self.raw) if self.needs_universe else None
        if self.cg is not None:
            self.cg.budget = self.budget
        # What fetch tasks receive (no key: a worker process resolves its own, this process
        # lends the run's keys to its own threads).
        self.settings = SourceSettings.of({n: self.sources[n] for n in self.fetched_sources})
        for source in self.sources.values():
            register_key(source)
        self.history_calls: Counter = Counter()
        self.run = RunRecord(flow=options.flow, details={"options": options.to_params()})
        self.summary = IngestSummary(self.run.run_id, options.flow, self.run.started_at)
        self._summary_lock = threading.Lock()

    @property
    def coingecko(self) -> Source:
        return self.sources[UNIVERSE_SOURCE]

    @property
    def sector_client(self) -> cg.CoinGeckoClient:
        """The client of the run's own CoinGecko calls (snapshots, /coins/list, /global)."""
        if self.cg is None:
            raise RuntimeError("this run follows no CoinGecko source: no sector calls")
        return self.cg

    @property
    def _midnight(self) -> datetime:
        return datetime.combine(self.now.date(), datetime.min.time())

    # -- bookkeeping --------------------------------------------------------------------
    def start(self) -> str:
        """Record this run as ``running``. Called with the run lock held, so any other run
        still ``running`` died without finishing (killed, power cut): it is marked
        ``abandoned``; its whole batches stay and this run resumes after them."""
        with open_warehouse(self.db_file) as con, transaction(con):
            stale = mark_abandoned(
                con, except_run=self.run.run_id, reason=ABANDONED_REASON, at=utcnow()
            )
            record_run(con, self.run)
        if stale:
            self._note(
                f"{len(stale)} earlier run(s) ended without finishing (killed or crashed) and "
                f"were marked abandoned: {', '.join(stale)}; resuming after "
                "their last whole batch"
            )
        return self.run.run_id

    def finish(self, status: str, error: str | None = None) -> IngestSummary:
        s = self.summary
        # Source errors are scrubbed when built; an error of another kind (a library quoting
        # a payload) is scrubbed here, before it reaches ingest_runs and the reports.
        error = scrub(error) if error else error
        s.status, s.error, s.finished_at = status, error, utcnow()
        s.calls = self.raw.calls + self.history_calls
        self.run.status, self.run.finished_at = status, s.finished_at
        self.run.rows_inserted, self.run.rows_updated, self.run.rows_unchanged = (
            s.inserted,
            s.updated,
            s.unchanged,
        )
        self.run.calls = s.total_calls
        self.run.errors = [{"item": k, "reason": v} for k, v in s.skipped.items()]
        if error:
            self.run.errors.append({"item": "run", "reason": error})
        self.run.details.update(
            {
                "notes": s.notes,
                "calls": dict(s.calls),
                "series_fetched": s.series_fetched,
                "series_up_to_date": s.series_up_to_date,
            }
        )
        with open_warehouse(self.db_file) as con:
            with transaction(con):
                record_run(con, self.run)
            if s.skipped:
                wl.record_skipped(con, self.run.run_id, s.skipped)
        if self.cg is not None:
            self.cg.close()
        return s

    def _note(self, text: str) -> None:
        with self._summary_lock:
            if text not in self.summary.notes:
                self.summary.notes.append(text)
                log.warning("%s", text)

    # -- before anything: can each source be reached at all? --------------------------------
    def check_network(self) -> list[str]:
        """DNS and TCP to each source's host (a few seconds at most, all hosts at once).

        An unreachable source is left out of this run with a note (the next run fetches it):
        the others still run, so a CoinGecko outage does not stop Yahoo. Sources that follow
        the CoinGecko coin universe go with CoinGecko. When nothing is left the run stops at
        once with :class:`~flows.sources.connectivity.NoNetworkError` ("no network: cannot
        reach the CoinGecko API at ... (DNS failed)") instead of spending every call's retry
        budget. Returns the notes. ``AITOKENS_NETWORK_CHECK_SECONDS=0`` turns the check off.
        """
        timeout = network_check_seconds()
        if timeout <= 0:
            return []
        urls = {
            name: str(source.config.base_url)
            for name, source in self.sources.items()
            if getattr(source.config, "base_url", None)
        }
        failures = unreachable_sources(urls, timeout)
        if not failures:
            return []
        down = {f.source for f in failures}
        kept = tuple(
            name
            for name in self.fetched_sources
            if name not in down
            and not (UNIVERSE_SOURCE in down and source_class(name).uses_coin_universe)
        )
        if not kept:
            raise NoNetworkError(no_network_message(failures))
        notes = [
            f"{f.describe()}: {f.source} is left out of this run; the next run fetches it"
            for f in failures
        ]
        for note in notes:
            self._note(note)
        self.fetched_sources = kept
        self.needs_universe = any(source_class(n).uses_coin_universe for n in kept)
        if not self.needs_universe and self.cg is not None:
            self.cg.close()
            self.cg = None
        self.settings = SourceSettings.of({n: self.sources[n] for n in kept})
        return notes

    def close(self) -> None:
        """Release the run's own CoinGecko client (when the run never reaches ``finish``)."""
        if self.cg is not None:
            self.cg.close()

    # -- the CoinGecko sector: snapshots and the coin universe ---------------------------
    def snapshot_sector(self) -> list[str]:
        """Today's category figures and members (once per UTC day); returns the coin universe
        (empty, with no call, when no source of the run follows it)."""
        if not self.needs_universe:
            return []
        today = self.now.date()
        categories = self.coingecko.config.categories
        with open_warehouse(self.db_file) as con:
            held = state.snapshotted_categories(con, today)
        if self.options.refresh_snapshot or not set(categories) <= held:
            figures = cg.fetch_categories(self.sector_client, categories, fetched_at=self.now)
            parts = [
                cg.fetch_category_members(self.sector_client, c, snapshot_date=today)
                for c in categories
            ]
            for part in parts:
                note = refused_ids_note("/coins/markets", part.attrs.get("refused_ids", {}))
                if note:
                    self._note(note)
            members = pd.concat(parts, ignore_index=True)
            with open_warehouse(self.db_file) as con:
                results = wl.load_snapshot(
                    con, figures, members, run_id=self.run.run_id, raw=self.raw.take()
                )
            for result in results.values():
                self.summary.add_rows(result)
        return self.universe()

    def universe(self) -> list[str]:
        """Coins to follow: the latest members of each category, plus BTC and ETH; a renamed
        CoinGecko id is followed under its new id (:meth:`_follow_renames`)."""
        if self.options.coins:
            return self._follow_renames(cg.coin_universe(list(self.options.coins)))
        with open_warehouse(self.db_file) as con:
            members = state.latest_category_members(con, self.coingecko.config.categories)
        if self.options.universe == "all":
            return self._follow_renames(
                cg.coin_universe(members + self._whole_universe(set(members)))
            )
        return self._follow_renames(cg.coin_universe(members))

    def _follow_renames(self, ids: list[str]) -> list[str]:
        """``ids`` with each old id of a lineage rename (``asset_lineage``, e.g.
        ``render-token`` -> ``render``) replaced by its new id once CoinGecko no longer serves
        the old one (answered "not found" within the last 30 days): a stale snapshot, group or
        ``--coins`` keeps working, and no call is spent on a dead id. Until then the old id is
        asked as before (CoinGecko may keep serving it)."""
        from warehouse.caps import renamed_coingecko_ids

        with open_warehouse(self.db_file) as con:
            renamed = renamed_coingecko_ids(con)
            gone = state.not_found_since(con, self._midnight - timedelta(days=30))
        moved = {old: new for old, new in renamed.items() if old in gone and old in ids}
        for old, new in moved.items():
            self._note(f"CoinGecko id {old} was renamed {new} (asset_lineage): following {new}")
        return list(dict.fromkeys(moved.get(i, i) for i in ids))

    def _whole_universe(self, members: set[str]) -> list[str]:
        """Every coin CoinGecko lists (one /coins/list call, once per UTC day), recorded in
        ``coins``; the sector's members come first in the returned order."""
        with open_warehouse(self.db_file) as con:
            listed_today = state.coin_list_fetched_since(con, self._midnight)
            known = state.known_coin_ids(con)
        if listed_today and not self.options.refresh_snapshot:
            return sorted(set(known) - members)
        listed = cg.fetch_coin_list(self.sector_client)
        note = refused_ids_note("/coins/list", listed.attrs.get("refused_ids", {}))
        if note:
            self._note(note)
        listed["asset_class"] = [
            wl.BENCHMARK_COINS.get(c, "ai_token" if c in members else "crypto")
            for c in listed["coin_id"]
        ]
        listed["updated_at"] = utcnow()
        with open_warehouse(self.db_file) as con, transaction(con):
            self.summary.add_rows(wl.upsert_coins(con, listed))
            wl.save_raw_responses(con, self.run.run_id, self.raw.take())
        self._note(f"whole-universe mode: CoinGecko lists {len(listed):,} coins")
        return sorted(set(listed["coin_id"]) - members)

    def snapshot_global(self) -> None:
        """``/global`` once per UTC day (with the CoinGecko sector only).

        Not critical: the coins of the run are loaded by then, so a failed or unreadable
        ``/global`` is a note of the run (retried next run), never a failed run. A bad key,
        a block page or the call cap still stop it: every call would meet them.
        """
        if not self.needs_universe:
            return
        with open_warehouse(self.db_file) as con:
            held = state.global_snapshot_held(con, self.now.date())
        if held and not self.options.refresh_snapshot:
            return
        try:
            frame = cg.fetch_global(self.sector_client)
        except FATAL_SOURCE_ERRORS:
            raise
        except (SourceError, ValueError, TypeError, KeyError) as exc:
            self.raw.take()  # the failed answer is in raw_responses only when loaded
            self._note(
                f"/global skipped: {exc}; the coins loaded in this run are kept, and the next "
                "run asks again"
            )
            return
        with open_warehouse(self.db_file) as con:
            result = wl.load_global(con, frame, run_id=self.run.run_id, raw=self.raw.take())
        self.summary.add_rows(result)

    # -- histories: plan -> fetch (elsewhere) -> load ------------------------------------
    def plan_histories(self, coin_ids: list[str]) -> list[SeriesPlan]:
        """Each fetched source's plans from its coverage; only those with ranges to fetch."""
        request = UniverseRequest(coins=tuple(coin_ids), tickers=self.options.tickers)
        with open_warehouse(self.db_file) as con:
            coverage = {
                name: state.read_coverage(
                    con,
                    name,
                    table=source.table.name,
                    series_column=source.table.series_column,
                    time_column=source.table.time_column,
                )
                for name, source in self.sources.items()
                if name in self.fetched_sources
            }
            gone = state.not_found_since(con, self._midnight)
            if coin_ids:
                with transaction(con):
                    wl.ensure_coins(con, coin_ids)
        plans: list[SeriesPlan] = []
        for name in self.fetched_sources:
            source = self.sources[name]
            # A backfill's dates are for the sources of its interval; the others (an hourly
            # source in a daily backfill) keep their own window.
            own_interval = source.interval == self.options.interval
            planned = source.plan(
                source.follows(request),
                coverage[name],
                end=self.end,
                since=self.options.since if own_interval else None,
                lookback_days=self.options.lookback_days,
            )
            plans += [
                p.with_ranges(()) if p.series_id in gone or self.skip_key(p) in gone else p
                for p in planned
            ]
        with self._summary_lock:
            self.summary.series_up_to_date += sum(p.up_to_date for p in plans)
        todo = [p for p in plans if not p.up_to_date]
        n_calls = self.planned_calls(todo)
        if self.budget.spent + n_calls > self.budget.limit:
            raise CallBudgetError(
                f"this run plans {n_calls:,} history calls (after {self.budget.spent:,} "
                f"snapshot calls), more than its cap of {self.budget.limit:,} "
                f"({ENV_MAX_CALLS}); narrow the run (--coins, --since) or raise the cap"
            )
        return todo

    def check_call_budget(self) -> None:
        """Stop the run once the calls made so far (snapshots and histories, retries
        included) pass the cap: the history fetches run elsewhere, so they are counted here,
        as each series comes back."""
        with self._summary_lock:
            spent = self.budget.spent + sum(self.history_calls.values())
        if spent > self.budget.limit:
            raise CallBudgetError(
                f"the run made {spent:,} HTTP calls, more than its cap of "
                f"{self.budget.limit:,} ({ENV_MAX_CALLS}); stopped"
            )

    def planned_calls(self, plans: Iterable[SeriesPlan]) -> int:
        """History calls the plans will make, for progress bars and ETAs."""
        today = self.now.date()
        return sum(self.sources[p.source].planned_calls(p, today) for p in plans)

    def load(self, result: SeriesFetch) -> UpsertResult | None:
        """Rows, raw answers and coverage of one series: one transaction."""
        plan = result.plan
        source = self.sources[plan.source]
        table = source.table
        for note in result.notes:
            self._note(note)
        frame = result.frame()
        with open_warehouse(self.db_file) as con, transaction(con):
            rows = (
                wl.upsert_series_rows(con, table.name, table.key, frame)
                if frame is not None
                else None
            )
            if frame is not None and len(frame):
                # Issue 22: a bad print is quarantined with its reason; the run goes on.
                for point in check_series(
                    con,
                    [(plan.series_id, plan.source)],
                    run_id=self.run.run_id,
                    interval=source.interval,
                ):
                    self._note(f"quarantined {point.one_line()}")
            wl.save_raw_responses(con, self.run.run_id, result.raw)
            if not result.skipped:
                received = (
                    source.days_received(frame)
                    if frame is not None
                    else pd.Series([], dtype=object)
                )
                covered_from, covered_to = extended_coverage(plan, result.requested, received)
                if covered_from is not None:
                    wl.save_coverage(con, plan.source, plan.series_id, covered_from, covered_to)
        with self._summary_lock:
            self.history_calls.update(result.calls)
            self.summary.series_fetched += 1
            if result.skipped:
                self.summary.skipped[self.skip_key(plan)] = result.skipped
            if rows is not None:
                self.summary.add_rows(rows)
        self.check_call_budget()
        return rows

    def skip_key(self, plan: SeriesPlan) -> str:
        """How a skipped series is named in the summary and ``skipped_coins``: its id for a
        daily source, ``id [source]`` for another interval's, so a coin's daily and hourly
        outcomes never overwrite each other (a daily 404 still holds the hourly series too)."""
        if self.sources[plan.source].interval == "1d":
            return plan.series_id
        return f"{plan.series_id} [{plan.source}]"

    def record_failure(self, plan: SeriesPlan, exc: BaseException) -> None:
        """A series whose fetch failed after retries: keep its raw answers and the reason;
        coverage is not advanced, so the next run asks again."""
        raw = list(getattr(exc, "raw_exchanges", []))
        with open_warehouse(self.db_file) as con, transaction(con):
            wl.save_raw_responses(con, self.run.run_id, raw)
        with self._summary_lock:
            self.history_calls.update(endpoint_kind(x.endpoint) for x in raw)
            self.summary.series_fetched += 1
            self.summary.skipped[self.skip_key(plan)] = f"failed, retried next run: {exc}"
        self.check_call_budget()


def completed_fetches(
    ing: Ingestion, futures: list[tuple[SeriesPlan, Any]]
) -> Iterator[tuple[SeriesPlan, SeriesFetch]]:
    """Each series' fetch result, in plan order, for loading by the one writer.

    A series that failed after its retries is recorded (raw answers, reason) and skipped: the
    next run asks again. An error that every further call would meet too (bad key, block page)
    stops the run: fetches not yet started are cancelled where the engine allows it (a thread
    pool does; Prefect futures run out and are discarded) and the error is raised.
    """
    for plan, future in futures:
        try:
            result = future.result()
        except FATAL_SOURCE_ERRORS:
            for _, other in futures:
                cancel = getattr(other, "cancel", None)
                if cancel is not None:
                    cancel()
            raise
        except SourceError as exc:
            ing.record_failure(plan, exc)
            log.warning("%s failed after retries: %s", plan.series_id, exc)
            continue
        yield plan, result
