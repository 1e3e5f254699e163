"""Ingestion core, plain Python: what to fetch, fetching, and loading, step by step.

The Prefect flows in :mod:`flows.ingest` call these steps as tasks; ``run_ingestion`` runs the
same steps without Prefect. State is read from the warehouse, never kept elsewhere:

- a coin's history is fetched from the day after the last close held (``fetch_coverage``),
  up to the last complete UTC day; a backfill also fills from ``since`` up to where the
  coverage starts; a day not yet published is asked for again next time;
- each coin (or ticker) is loaded in its own transaction together with its raw answers and
  its new coverage, so a crash loses at most the batch in flight and a rerun resumes there;
- snapshots (category figures, members, ``/global``) are taken once per UTC day: a second run
  on the same day makes no call for them and changes no row.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from flows.errors import (
    BadApiKeyError,
    ConfigError,
    HtmlResponseError,
    SourceError,
)
from flows.fetching import (
    FetchResult,
    SeriesPlan,
    SourceSettings,
    endpoint_kind,
    fetch_series,
    register_key,
)
from flows.runlock import run_lock
from flows.sources import coingecko as cg
from flows.sources import constants as C
from flows.sources import equities as eq
from warehouse import ingest_load as wl
from warehouse.db import open_warehouse, resolve_db_path, transaction
from warehouse.load import UpsertResult
from warehouse.runs import RunRecord, record_run, utcnow

log = logging.getLogger("aitokens.ingest")

DAY = timedelta(days=1)
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
    equities: bool = True
    global_market: bool = True
    max_workers: int = 4  # threads fetching in parallel; the rate limiter still spaces calls
    universe: str = "category"  # "all": every coin CoinGecko lists (/coins/list), not one sector

    def __post_init__(self) -> None:
        """Refuse hostile or absurd options before anything is fetched or written."""
        for what, values, pattern, hint in (
            ("coin id", self.coins, _COIN_ID, "CoinGecko ids are like fetch-ai, bitcoin"),
            ("ticker", self.tickers, _TICKER, "tickers are like NVDA, BRK-B, ^GSPC"),
            ("category", self.categories, _COIN_ID, "e.g. artificial-intelligence"),
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
        if not 1 <= self.max_workers <= 64:
            raise ConfigError(f"max_workers {self.max_workers} must be 1..64")

    def to_params(self) -> dict[str, Any]:
        """JSON-friendly form for logs, Prefect parameters and ``ingest_runs.details``."""
        return {
            k: (v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v)
            for k, v in self.__dict__.items()
        }


@dataclass
class IngestSummary:
    """What a run did: the row of ``ingest_runs``, the CLI's closing table, the artifact."""

    run_id: str
    flow: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    calls: Counter = field(default_factory=Counter)
    rows: dict[str, UpsertResult] = field(default_factory=dict)
    series_fetched: int = 0
    series_up_to_date: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add_rows(self, result: UpsertResult) -> None:
        held = self.rows.get(result.table)
        self.rows[result.table] = result if held is None else held + result

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def inserted(self) -> int:
        return sum(r.inserted for r in self.rows.values())

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.rows.values())

    @property
    def unchanged(self) -> int:
        return sum(r.unchanged for r in self.rows.values())

    def to_markdown(self) -> str:
        """The Prefect artifact: counts, skipped coins with reasons, notes. No secrets."""
        lines = [
            f"# {self.flow} `{self.run_id}`: {self.status}",
            "",
            f"- started {self.started_at:%Y-%m-%d %H:%M:%S} UTC, finished "
            f"{self.finished_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.finished_at
            else "- running",
            f"- API calls: {self.total_calls} ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.calls.items()))
            + ")",
            f"- series fetched: {self.series_fetched}, "
            f"already up to date: {self.series_up_to_date}",
            "",
            "| table | inserted | updated | unchanged |",
            "| --- | ---: | ---: | ---: |",
        ]
        for table, r in sorted(self.rows.items()):
            lines.append(f"| {table} | {r.inserted} | {r.updated} | {r.unchanged} |")
        if self.skipped:
            lines += ["", "## Skipped", "", "| series | reason |", "| --- | --- |"]
            lines += [f"| {k} | {v} |" for k, v in sorted(self.skipped.items())]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.error:
            lines += ["", f"**Error:** {self.error}"]
        return "\n".join(lines)


class RawCollector:
    """The answers to the run's own snapshot calls (categories, members, /coins/list,
    /global), written in the same transaction as the rows they produced. History answers
    travel with each series' ``FetchResult`` instead. Thread-safe."""

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


def last_complete_day(now: datetime | None = None) -> date:
    """Yesterday in UTC: today's close does not exist yet."""
    return (now or datetime.now(UTC)).astimezone(UTC).date() - DAY


def plan_series(
    source: str,
    series_ids: Iterable[str],
    coverage: Mapping[str, tuple[date, date | None]],
    *,
    end: date,
    since: date | None,
    lookback_days: int,
) -> list[SeriesPlan]:
    """The ranges each series still needs, from its coverage.

    Upper range: from the day after ``covered_to`` (or, for a new series, from ``since`` or
    ``end - lookback_days``) to ``end``. Lower range (backfill only): from ``since`` to the day
    before ``covered_from``. Ranges that are empty are left out, so a series up to date costs
    no call.
    """
    plans = []
    for sid in series_ids:
        covered_from, covered_to = coverage.get(sid, (None, None))
        ranges: list[tuple[date, date]] = []
        if covered_from is None:
            start = since or end - timedelta(days=lookback_days - 1)
            if start <= end:
                ranges.append((start, end))
        else:
            if since is not None and since < covered_from and since <= end:
                ranges.append((since, min(covered_from - DAY, end)))
            upper_start = (covered_to or covered_from - DAY) + DAY
            if upper_start <= end:
                ranges.append((upper_start, end))
        plans.append(SeriesPlan(source, sid, tuple(ranges), covered_from, covered_to))
    return plans


def extended_coverage(
    plan: SeriesPlan, requested: Sequence[tuple[date, date] | None], received: pd.Series
) -> tuple[date | None, date | None]:
    """The series' coverage after this fetch: every day in it was really asked for.

    ``requested`` is what each plan range actually asked for once a plan's history cap cut it.
    A range below the coverage (a backfill) extends it down to its start. The upper range
    normally starts the day after the coverage ends; when a cap cut its start forward (a
    warehouse idle for over a year), the days between were never asked for, so the coverage
    restarts at the range's start and a later backfill fills the hole. The end is the last
    day actually received: a day not yet published is asked for again next run.
    """
    lo, hi = plan.covered_from, plan.covered_to
    for asked in requested:
        if asked is None:
            continue  # the cap left nothing of this range to ask for
        start, end = asked
        if lo is not None and end < lo:
            lo = start  # a lower range ends the day before the coverage: contiguous
            continue
        reach = (hi if hi is not None else lo - DAY) + DAY if lo is not None else None
        if reach is None or start > reach:
            lo, hi = start, None  # nothing held yet, or a hole the cap left: restart here
        elif start < lo:
            lo = start  # one range spanning below and through the coverage (equities)
    last_received = max(received) if len(received) else None
    candidates = [d for d in (hi, last_received) if d is not None]
    return lo, (max(candidates) if candidates else None)


class Ingestion:
    """One ingestion run against one warehouse file. Steps are methods, so Prefect tasks and
    plain code share them; each step opens the warehouse only for as long as it writes."""

    def __init__(
        self,
        options: IngestOptions,
        *,
        db: str | Path | None = None,
        coingecko: cg.CoinGeckoConfig | None = None,
        yahoo: eq.YahooConfig | None = None,
        now: datetime | None = None,
    ) -> None:
        self.options = options
        self.db_file = resolve_db_path(db)
        self.now = now or datetime.now(UTC)
        self.end = min(options.until or last_complete_day(self.now), last_complete_day(self.now))
        self.raw = RawCollector()
        self.cg_config = coingecko or cg.CoinGeckoConfig.from_env()
        if options.categories:
            self.cg_config = cg.CoinGeckoConfig(
                **{**_config_fields(self.cg_config), "categories": options.categories}
            )
        self.yahoo_config = yahoo or eq.YahooConfig.from_env()
        self.cg = cg.CoinGeckoClient(self.cg_config, on_exchange=self.raw)
        self.yahoo = eq.YahooClient(self.yahoo_config, on_exchange=self.raw)
        # What fetch tasks receive (no key: a worker process resolves its own, this process
        # lends the run's key to its own threads).
        self.settings = SourceSettings.of(self.cg_config, self.yahoo_config)
        register_key(self.cg_config.plan, self.cg_config.api_key)
        self.history_calls: Counter = Counter()
        self.run = RunRecord(flow=options.flow, details={"options": options.to_params()})
        self.summary = IngestSummary(self.run.run_id, options.flow, self.run.started_at)
        self._summary_lock = threading.Lock()

    # -- bookkeeping --------------------------------------------------------------------
    def start(self) -> None:
        """Record this run as ``running``. Called with the run lock held, so any other run
        still ``running`` died without finishing (killed, power cut): it is marked
        ``abandoned``; its whole batches stay and this run resumes after them."""
        with open_warehouse(self.db_file) as con, transaction(con):
            stale = con.execute(
                "UPDATE ingest_runs SET status = 'abandoned', finished_at = ?, "
                "errors = json_array(json_object('item', 'run', 'reason', ?)) "
                "WHERE status = 'running' AND run_id <> ? RETURNING run_id",
                [utcnow(), ABANDONED_REASON, self.run.run_id],
            ).fetchall()
            record_run(con, self.run)
        if stale:
            self._note(
                f"{len(stale)} earlier run(s) ended without finishing (killed or crashed) and "
                f"were marked abandoned: {', '.join(r[0] for r in stale)}; resuming after "
                "their last whole batch"
            )

    def finish(self, status: str, error: str | None = None) -> IngestSummary:
        s = self.summary
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
        self.cg.close()
        self.yahoo.close()
        return s

    def _note(self, text: str) -> None:
        with self._summary_lock:
            if text not in self.summary.notes:
                self.summary.notes.append(text)
                log.warning("%s", text)

    # -- snapshots ----------------------------------------------------------------------
    def snapshot_sector(self) -> list[str]:
        """Today's category figures and members (once per UTC day); returns the coin universe."""
        today = self.now.date()
        categories = self.cg_config.categories
        with open_warehouse(self.db_file) as con:
            held = {
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT category_id FROM category_snapshots WHERE snapshot_date = ?",
                    [today],
                ).fetchall()
            }
        if self.options.refresh_snapshot or not set(categories) <= held:
            figures = cg.fetch_categories(self.cg, categories, fetched_at=self.now)
            members = pd.concat(
                [cg.fetch_category_members(self.cg, c, snapshot_date=today) for c in categories],
                ignore_index=True,
            )
            with open_warehouse(self.db_file) as con:
                results = wl.load_snapshot(
                    con, figures, members, run_id=self.run.run_id, raw=self.raw.take()
                )
            for result in results.values():
                self.summary.add_rows(result)
        return self.universe()

    def universe(self) -> list[str]:
        """Coins to follow: the latest members of each category, plus BTC and ETH."""
        if self.options.coins:
            return list(dict.fromkeys([*self.options.coins, *C.ALWAYS_COINS]))
        with open_warehouse(self.db_file) as con:
            rows = con.execute(
                "SELECT m.coin_id FROM category_members m JOIN ("
                "  SELECT category_id, max(snapshot_date) AS d FROM category_members"
                "  WHERE category_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1"
                ") l ON m.category_id = l.category_id AND m.snapshot_date = l.d "
                "ORDER BY m.rank, m.coin_id",
                [list(self.cg_config.categories)],
            ).fetchall()
        members = [r[0] for r in rows]
        if self.options.universe == "all":
            return cg.coin_universe(members + self._whole_universe(set(members)))
        return cg.coin_universe(members)

    def _whole_universe(self, members: set[str]) -> list[str]:
        """Every coin CoinGecko lists (one /coins/list call, once per UTC day), recorded in
        ``coins``; the sector's members come first in the returned order."""
        midnight = datetime.combine(self.now.date(), datetime.min.time())
        with open_warehouse(self.db_file) as con:
            listed_today = con.execute(
                "SELECT count(*) FROM raw_responses WHERE endpoint = '/coins/list' "
                "AND status = 200 AND fetched_at >= ?",
                [midnight],
            ).fetchall()[0][0]
            known = [r[0] for r in con.execute("SELECT coin_id FROM coins").fetchall()]
        if listed_today and not self.options.refresh_snapshot:
            return sorted(set(known) - members)
        listed = cg.fetch_coin_list(self.cg)
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
        """``/global`` once per UTC day."""
        with open_warehouse(self.db_file) as con:
            held = con.execute(
                "SELECT count(*) FROM global_daily WHERE date = ?", [self.now.date()]
            ).fetchall()[0][0]
        if held and not self.options.refresh_snapshot:
            return
        frame = cg.fetch_global(self.cg)
        with open_warehouse(self.db_file) as con:
            result = wl.load_global(con, frame, run_id=self.run.run_id, raw=self.raw.take())
        self.summary.add_rows(result)

    # -- histories ----------------------------------------------------------------------
    def plan_coins(self, coin_ids: list[str]) -> list[SeriesPlan]:
        with open_warehouse(self.db_file) as con:
            coverage = wl.read_coverage(con, wl.COINGECKO)
            gone = self._not_found_today(con)
            with transaction(con):
                wl.ensure_coins(con, coin_ids)
        plans = plan_series(
            wl.COINGECKO,
            coin_ids,
            coverage,
            end=self.end,
            since=self.options.since,
            lookback_days=self.options.lookback_days,
        )
        plans = [_without_ranges(p) if p.series_id in gone else p for p in plans]
        self._count_plans(plans)
        return plans

    def _not_found_today(self, con) -> set[str]:
        """Series that answered 404 earlier today: not asked again until tomorrow (a delisted
        coin would otherwise cost a call on every run)."""
        midnight = datetime.combine(self.now.date(), datetime.min.time())
        rows = con.execute(
            "SELECT DISTINCT coin_id FROM skipped_coins WHERE skipped_at >= ? "
            "AND reason NOT LIKE 'failed%'",
            [midnight],
        ).fetchall()
        return {r[0] for r in rows}

    def plan_equities(self) -> list[SeriesPlan]:
        tickers = list(self.options.tickers or self.yahoo_config.tickers)
        with open_warehouse(self.db_file) as con:
            coverage = wl.read_coverage(con, wl.YAHOO)
        plans = plan_series(
            wl.YAHOO,
            tickers,
            coverage,
            end=self.end,
            since=self.options.since,
            lookback_days=self.options.lookback_days,
        )
        with open_warehouse(self.db_file) as con:
            gone = self._not_found_today(con)
        plans = [
            _without_ranges(p) if p.series_id in gone else _whole_history(_only_session_ranges(p))
            for p in plans
        ]
        self._count_plans(plans)
        return plans

    def _count_plans(self, plans: list[SeriesPlan]) -> None:
        with self._summary_lock:
            self.summary.series_up_to_date += sum(p.up_to_date for p in plans)

    def planned_calls(self, plans: Iterable[SeriesPlan]) -> int:
        """History calls the plans will make (one per chunk), for progress bars and ETAs."""
        total = 0
        for p in plans:
            for lo, hi in p.ranges:
                if p.source == wl.COINGECKO:
                    total += len(
                        cg.plan_history(self.cg_config, lo, hi, today=self.now.date()).chunks
                    )
                else:
                    total += 1
        return total

    def fetch(self, plan: SeriesPlan) -> FetchResult:
        """HTTP only, in this process (thread runner); Dask workers call ``fetch_series``."""
        return fetch_series(plan, self.settings, self.now)

    def load(self, result: FetchResult) -> UpsertResult | None:
        """Rows, raw answers and coverage of one series: one transaction."""
        plan = result.plan
        for note in result.notes:
            self._note(note)
        frames = [h.frame for h in result.histories if len(h.frame)]
        frame = pd.concat(frames, ignore_index=True) if frames else None
        upsert_rows = (
            wl.upsert_coin_daily if plan.source == wl.COINGECKO else wl.upsert_equity_daily
        )
        with open_warehouse(self.db_file) as con, transaction(con):
            rows = upsert_rows(con, frame) if frame is not None else None
            wl.save_raw_responses(con, self.run.run_id, result.raw)
            if not result.skipped:
                received = frame["date"] if frame is not None else pd.Series([], dtype=object)
                covered_from, covered_to = extended_coverage(plan, result.requested, received)
                if covered_from is not None:
                    wl.save_coverage(con, plan.source, plan.series_id, covered_from, covered_to)
        with self._summary_lock:
            self.history_calls.update(result.calls)
            self.summary.series_fetched += 1
            if result.skipped:
                self.summary.skipped[plan.series_id] = result.skipped
            if rows is not None:
                self.summary.add_rows(rows)
        return rows

    def record_failure(self, plan: SeriesPlan, exc: BaseException) -> None:
        """A series whose fetch failed after retries: keep its raw answers and the reason;
        coverage is not advanced, so the next run asks again."""
        raw = list(getattr(exc, "raw_exchanges", []))
        with open_warehouse(self.db_file) as con, transaction(con):
            wl.save_raw_responses(con, self.run.run_id, raw)
        with self._summary_lock:
            self.history_calls.update(endpoint_kind(x.endpoint) for x in raw)
            self.summary.series_fetched += 1
            self.summary.skipped[plan.series_id] = f"failed, retried next run: {exc}"


ABANDONED_REASON = (
    "the process ended without finishing (killed or crashed); its committed batches are kept "
    "and the next run resumed after them"
)

# Errors that mean every further call would fail too: stop the run instead of skipping.
FATAL_SOURCE_ERRORS = (BadApiKeyError, HtmlResponseError)


def completed_fetches(
    ing: Ingestion, futures: list[tuple[SeriesPlan, Any]]
) -> Iterator[tuple[SeriesPlan, FetchResult]]:
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


def _without_ranges(plan: SeriesPlan) -> SeriesPlan:
    return SeriesPlan(plan.source, plan.series_id, (), plan.covered_from, plan.covered_to)


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
    return SeriesPlan(
        plan.source, plan.series_id, ((start, end),), plan.covered_from, plan.covered_to
    )


def _only_session_ranges(plan: SeriesPlan) -> SeriesPlan:
    """Drop equity ranges without an NYSE session (a weekend, a holiday): asking Yahoo for
    them would cost a call and return nothing."""
    from analysis.calendars import sessions

    kept = tuple((lo, hi) for lo, hi in plan.ranges if len(sessions("XNYS", lo, hi)))
    return SeriesPlan(plan.source, plan.series_id, kept, plan.covered_from, plan.covered_to)


def _config_fields(config: cg.CoinGeckoConfig) -> dict[str, Any]:
    return {f: getattr(config, f) for f in config.__dataclass_fields__}


ProgressCallback = Callable[[str, int], None]


def run_ingestion(
    options: IngestOptions,
    *,
    db: str | Path | None = None,
    coingecko: cg.CoinGeckoConfig | None = None,
    yahoo: eq.YahooConfig | None = None,
    now: datetime | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestSummary:
    """The whole run without Prefect: lock, snapshots, coins, equities, summary.

    ``on_plan(total_calls)`` is called once the history calls are known and
    ``on_progress(series_id, calls)`` after each series, to drive a progress bar.
    """
    from concurrent.futures import ThreadPoolExecutor

    ing = Ingestion(options, db=db, coingecko=coingecko, yahoo=yahoo, now=now)
    with run_lock(ing.db_file, options.flow):
        ing.start()
        try:
            coin_ids = ing.snapshot_sector()
            coin_plans = [p for p in ing.plan_coins(coin_ids) if not p.up_to_date]
            equity_plans = (
                [p for p in ing.plan_equities() if not p.up_to_date] if options.equities else []
            )
            if on_plan:
                on_plan(ing.planned_calls(coin_plans) + ing.planned_calls(equity_plans))
            with ThreadPoolExecutor(max_workers=max(1, options.max_workers)) as pool:
                futures = [(p, pool.submit(ing.fetch, p)) for p in coin_plans + equity_plans]
                try:
                    for plan, result in completed_fetches(ing, futures):  # in order, one writer
                        ing.load(result)
                        if on_progress:
                            on_progress(plan.series_id, ing.planned_calls([plan]))
                except BaseException:
                    # Any error (a held lock, Ctrl-C, a bug) stops the run now: fetches not yet
                    # started are cancelled instead of spending the API's quota for nothing.
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
            if options.global_market:
                ing.snapshot_global()
        except BaseException as exc:
            ing.finish("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return ing.finish("completed")


def wait_seconds(calls: int, calls_per_minute: float) -> float:
    """How long ``calls`` take at a plan's rate: printed before a long backfill starts."""
    return calls * 60.0 / calls_per_minute


__all__ = [
    "IngestOptions",
    "IngestSummary",
    "Ingestion",
    "SeriesPlan",
    "last_complete_day",
    "plan_series",
    "run_ingestion",
    "wait_seconds",
]
