"""Event studies on the warehouse: plan, estimate, store, reproduce.

A study reads its panel on a read-only connection and closes it, estimates in memory, then opens
the file writable only to save (one transaction), so the lock is held for milliseconds. A run
has one or two legs, each its own ``EventStudy`` and ``study_runs`` row: AI tokens against BTC
on the crypto calendar, and equities (NVDA, AMD) against SPY on NYSE sessions. Keeping them apart
keeps the headline Kolari-Pynnonen test on one market with one benchmark.

``--interval 1h`` studies the tokens on the hourly clock (``price_hourly``; windows count hours;
hour 0 = the return over ``[floor_hour(t), floor_hour(t) + 1h)`` of the event time ``t``, from
``--event-time`` or the catalog). Equities stay daily: an hourly run has the tokens leg only and
says so when equities were asked for; with ``--no-equities`` it reads no equity at all.

Plain functions (``parse_window``, ``plan_study``, ``run_plan``, ``rerun_study``) used by the
`aitokens study` command and by the daily pipeline; no click here.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.services import second_stage
from flows.services.factors import (
    check_factor_request,
    choose_with_indexes,
    factor_symbols,
    leg_assets,
    load_with_indexes,
    with_indexes,
)
from flows.services.second_stage import DEFAULT_REGRESS_WINDOW, SecondStage, regress_window_label
from flows.services.windows import parse_window
from warehouse.errors import InputError
from warehouse.studyspec import StudySpec

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from analysis import Event, EventStudy, EventStudyResult
    from analysis.placebo import PlaceboResult
    from warehouse.studies import SeriesChoice, StoredStudy, StudyRecord

DEFAULT_EQUITIES = ("NVDA", "AMD")
EQUITY_CLASSES = frozenset({"equity", "equity_benchmark"})
RERUN_TOLERANCE = 1e-12
EQUITIES_DAILY_NOTE = "equities stay daily in hourly studies: left out"


# ---------------------------------------------------------------------------------- parsing
# What the user asked for: every option declared once in warehouse.studyspec (click options,
# stored command line, --rerun refusals and engine arguments derive from it).
StudyRequest = StudySpec


# ---------------------------------------------------------------------------------- planning
@dataclass
class Leg:
    """One market of a study: its assets, benchmark, chosen series, panel and model."""

    name: str  # 'tokens' or 'equities'
    title: str
    assets: list[str]
    benchmark: str
    choices: dict[str, SeriesChoice]
    panel: pd.DataFrame
    study: EventStudy
    notes: list[str] = field(default_factory=list)
    # the whole history of the leg's series for the placebo dates, when ``panel`` holds only the
    # event's span (hourly legs); daily legs read every close already
    placebo_panel: pd.DataFrame | None = None

    def fingerprint(self) -> dict[str, Any]:
        roles = {a: "asset" for a in self.assets} | {self.benchmark: "benchmark"}
        series = [
            {**self.choices[s].to_dict(), "role": roles[s]}
            for s in sorted(self.choices)
            if s in roles
        ]
        dates = self.panel["date"]
        if self.study.interval == "1h":
            # exact UTC hour closes, so a rerun reads the same hours
            return {
                "series": series,
                "interval": "1h",
                "date_range": [
                    f"{dates.min():%Y-%m-%dT%H:%M:%S}Z",
                    f"{dates.max():%Y-%m-%dT%H:%M:%S}Z",
                ],
                "rows": len(self.panel),
            }
        return {
            "series": series,
            "date_range": [str(dates.min().date()), str(dates.max().date())],
            "rows": len(self.panel),
        }


@dataclass
class Plan:
    """Everything a study needs, read from the warehouse in one short read-only session."""

    request: StudyRequest
    events: list[Event]
    descriptions: dict[str, str]
    confounders: list[Event]
    legs: list[Leg]
    notes: list[str]
    time_sources: dict[str, str] = field(default_factory=dict)  # event -> where its time is from
    catalog: list[Event] = field(default_factory=list)  # every catalog event (placebo avoids them)


def _resolve_events(con: duckdb.DuckDBPyConnection, req: StudyRequest) -> list[Event]:
    import pandas as pd

    from analysis import Event
    from warehouse.studies import find_event, parse_when

    if not req.events:
        raise InputError("give at least one --event (a catalog name such as sora, or a date)")
    if req.event_times and len(req.event_times) != len(req.events):
        raise InputError(
            f"--event-time was given {len(req.event_times)} time(s) for {len(req.events)} "
            "--event(s): give one per event, in the same order"
        )
    events = []
    for i, raw in enumerate(req.events):
        text = raw.strip()
        if len(text) >= 10 and text[:4].isdigit() and text[4] == "-":
            day, ts = parse_when(text, what="--event")
            when = text if ts is None else ts.isoformat()
            ev = {"name": text, "when": when, "description": "", "kind": ""}
        else:
            ev = find_event(con, text)
            ev.pop("is_confounder")
        if req.event_times:
            day0 = pd.Timestamp(ev["when"][:10]).date()
            t_day, ts = parse_when(req.event_times[i], what="--event-time")
            if ts is None:
                raise InputError(
                    f"--event-time {req.event_times[i]!r} has no time of day: give e.g. "
                    f"{t_day}T18:00Z"
                )
            if t_day != day0:
                raise InputError(
                    f"--event-time {req.event_times[i]} is on {t_day}, not on the day of event "
                    f"{ev['name']} ({day0})"
                )
            ev["when"] = ts.isoformat()
        events.append(Event(**ev))
    names = [e.name for e in events]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"--event {', '.join(dup)} given twice")
    return events


def resolve_event(con: duckdb.DuckDBPyConnection, text: str) -> Event:
    """One event from a catalog name (``events`` table, analyst-editable) or a date or
    timezone-aware timestamp, as ``--event`` reads it."""
    return _resolve_events(con, StudyRequest(events=[text]))[0]


def _session_at(calendar: str, day0: pd.Timestamp, k: int) -> pd.Timestamp | None:
    """The session ``k`` sessions from session ``day0`` on ``calendar`` (None when the exchange
    calendar ends before it)."""
    import pandas as pd

    from analysis import sessions
    from analysis.calendars import HOURLY

    if calendar == "crypto":
        return day0 + pd.Timedelta(days=k)
    if calendar == HOURLY:
        return day0 + pd.Timedelta(hours=k)
    pad = pd.Timedelta(days=abs(k) * 2 + 15)
    if k >= 0:
        s = sessions(calendar, day0, day0 + pad)
        return s[k] if len(s) > k else None
    s = sessions(calendar, day0 - pad, day0)
    return s[len(s) - 1 + k] if len(s) - 1 + k >= 0 else None


def _spans(
    events: Sequence[Event], calendars: set[str], est: tuple[int, int], win: tuple[int, int]
) -> dict[str, tuple[dt.date, dt.date]]:
    spans = {}
    for cal in calendars:
        lo, hi = [], []
        for ev in events:
            day0 = ev.map(cal).session
            first, last = _session_at(cal, day0, est[0]), _session_at(cal, day0, win[1])
            # an exchange calendar that ends before the window: span up to day 0
            lo.append(day0 if first is None else first)
            hi.append(day0 if last is None else last)
        spans[cal] = (min(lo).date(), max(hi).date())
    return spans


def _car_windows(req: StudyRequest, win: tuple[int, int]) -> list[tuple[int, int]]:
    from analysis import DEFAULT_CAR_WINDOWS

    if req.cars:
        cars = [parse_window(c, "--car") for c in req.cars]
        for lo, hi in cars:
            if lo < win[0] or hi > win[1]:
                raise InputError(
                    f"--car {lo}:{hi} lies outside the event window --window {win[0]}:{win[1]}"
                )
        return list(dict.fromkeys(cars))
    cars = [w for w in DEFAULT_CAR_WINDOWS if win[0] <= w[0] and w[1] <= win[1]]
    return list(dict.fromkeys([*cars, win]))


def _check_coverage(
    leg_title: str,
    events: Sequence[Event],
    assets: list[str],
    benchmark: str,
    choices: dict[str, SeriesChoice],
    win: tuple[int, int],
) -> list[str]:
    """Raise when an event window lies outside the benchmark's or every asset's prices; return
    notes for single assets whose prices stop inside a window."""
    from analysis import WindowOutsideDataError

    notes = []
    bench = choices[benchmark]
    for ev in events:
        cal = bench.calendar
        day0 = ev.map(cal).session
        first, last = _session_at(cal, day0, win[0]), _session_at(cal, day0, win[1])
        if first is None or last is None:
            raise WindowOutsideDataError(
                f"{leg_title}: the event window {win[0]}:{win[1]} of {ev.name} reaches past the "
                f"sessions of calendar {cal}; choose a shorter --window"
            )
        start, end = first, last
        label = f"the event window {win[0]}:{win[1]} of {ev.name} ({start.date()} to {end.date()})"
        if bench.first_date > start.date() or bench.last_date < end.date():
            raise WindowOutsideDataError(
                f"{leg_title}: {label} lies outside the prices of benchmark {benchmark} "
                f"({bench.source}: {bench.first_date} to {bench.last_date}); choose another "
                "--event or --window, or load the missing dates"
            )
        covering = [
            a
            for a in assets
            if choices[a].first_date <= day0.date() and choices[a].last_date >= end.date()
        ]
        if not covering:
            held = ", ".join(
                f"{a} {choices[a].first_date} to {choices[a].last_date}" for a in assets
            )
            raise WindowOutsideDataError(
                f"{leg_title}: {label} lies outside the prices of every asset ({held}); "
                "choose another --event or --window, or load the missing dates"
            )
        for a in assets:
            c = choices[a]
            if c.last_date < end.date() and c.last_date >= day0.date():
                notes.append(
                    f"{a}: prices end {c.last_date}, inside the event window of {ev.name} "
                    f"(ends {end.date()}): CARs reaching past that date are empty"
                )
    return notes


def _leg_title(name: str, classes: Sequence[str], bench: str) -> str:
    """How a leg is named in every output: ``AI tokens vs BTC``, ``Tokens vs ETH`` (not all AI
    tokens), ``Equities vs SPY``."""
    if name == "equities":
        return f"Equities vs {bench}"
    title = "AI tokens" if all(c == "ai_token" for c in classes) else "Tokens"
    return f"{title} vs {bench}"


def _leg_study(
    req: StudyRequest,
    events: list[Event],
    confounders: list[Event],
    syms: list[str],
    bench: str,
    choices: Mapping[str, SeriesChoice],
    est: tuple[int, int],
    win: tuple[int, int],
    cars: list[tuple[int, int]],
    *,
    interval: str = "1d",
) -> EventStudy:
    """The engine for one leg: the request's model and windows, each asset class of ``syms``
    against ``bench``, on the daily or the hourly clock."""
    from analysis import EventStudy

    leg_classes = sorted({choices[s].asset_class for s in syms})
    return EventStudy(
        events,
        estimation_window=est,
        event_window=win,
        car_windows=cars,
        benchmarks=dict.fromkeys(leg_classes, bench),
        assets=syms,
        confounders=confounders,
        interval=interval,
        **req.engine_kwargs(),
    )


def plan_study(con: duckdb.DuckDBPyConnection, req: StudyRequest) -> Plan:
    """Resolve events, confounders, assets, sources and panels on an open (read-only) connection."""
    import pandas as pd

    from analysis import Event
    from warehouse.caps import cap_source_notes
    from warehouse.lineage import extend_choices, lineage_notes
    from warehouse.studies import (
        catalog_events,
        category_symbols,
        resolve_symbols,
        series_catalog,
    )

    est = parse_window(req.estimation, "--estimation")
    win = parse_window(req.window, "--window")
    if est[1] >= win[0]:
        raise InputError(
            f"--estimation {req.estimation} must end before --window {req.window} starts "
            f"(estimation ends on day {est[1]}, the event window starts on day {win[0]})"
        )
    if req.min_obs is not None and not 5 <= req.min_obs <= est[1] - est[0] + 1:
        raise InputError(
            f"--min-obs {req.min_obs} must lie between 5 and the {est[1] - est[0] + 1} days of "
            f"--estimation {req.estimation}"
        )
    cars = _car_windows(req, win)
    check_factor_request(req)  # issue 23: --model factor (flows.services.factors)
    events = _resolve_events(con, req)
    notes: list[str] = []

    # confounders: catalog events marked so, near enough to an event to fall in its window
    studied = {e.name for e in events}
    reach = pd.Timedelta(days=int(max(abs(win[0]), abs(win[1])) * 1.5) + 7)
    days = [pd.Timestamp(e.map("crypto").session) for e in events]
    confounders, descriptions = [], {e.name: e.description for e in events}
    catalog_list: list[Event] = []
    for row in catalog_events(con):
        descriptions.setdefault(row["name"], row["description"])
        catalog_list.append(Event(row["name"], row["when"], row["description"], row["kind"]))
        if not row["is_confounder"] or row["name"] in studied:
            continue
        ev = Event(row["name"], row["when"], row["description"], row["kind"])
        cday = pd.Timestamp(ev.map("crypto").session)
        if any(abs(cday - d) <= reach for d in days):
            confounders.append(ev)
    time_sources = _time_sources(con, req, events)
    if req.hourly:
        legs, hourly_notes = _plan_hourly(
            con, req, events, confounders, est=est, win=win, cars=cars
        )
        return Plan(
            req,
            events,
            descriptions,
            confounders,
            legs,
            notes + hourly_notes,
            time_sources,
            catalog_list,
        )

    catalog = series_catalog(con)
    if catalog.empty:
        raise InputError("the warehouse holds no prices yet: run `aitokens import FILE.csv` first")
    catalog = with_indexes(con, catalog, req)  # issue 23: + ALTS when named (factors.py)
    classes = catalog.groupby("symbol")["asset_class"].first().to_dict()

    # which symbols go to which leg
    explicit = resolve_symbols(catalog, req.assets, what="--assets") if req.assets else []
    token_syms = [s for s in explicit if classes[s] not in EQUITY_CLASSES]
    equity_syms = [s for s in explicit if classes[s] in EQUITY_CLASSES]
    if req.category:
        members, how = category_symbols(con, req.category, as_of=min(days).date())
        token_syms += [s for s in members if s not in token_syms]
        notes.append(f"--category {req.category}: {how}")
    elif not req.assets:
        token_syms = sorted(s for s, c in classes.items() if c == "ai_token")
    if req.equities:
        equity_syms += resolve_symbols(catalog, req.equities, what="--equities")
    equity_default = not req.equities and not equity_syms and not req.no_equities
    if equity_default:
        equity_syms = [s for s in DEFAULT_EQUITIES if s in classes]
    if req.no_equities:
        equity_syms = []
    equity_syms = list(dict.fromkeys(equity_syms))

    leg_specs = []
    if token_syms:
        bench = resolve_symbols(catalog, [req.benchmark], what="--benchmark")[0]
        token_syms = [s for s in token_syms if s != bench]
        title = _leg_title("tokens", [classes.get(s, "") for s in token_syms], bench)
        leg_specs.append(("tokens", title, token_syms, bench))
    if equity_syms:
        if equity_default and req.equity_benchmark.upper() not in classes:
            notes.append(
                f"equities skipped: benchmark {req.equity_benchmark.upper()} is not in the "
                "warehouse"
            )
        else:
            bench = resolve_symbols(catalog, [req.equity_benchmark], what="--equity-benchmark")[0]
            syms = [s for s in equity_syms if s != bench]
            leg_specs.append(("equities", _leg_title("equities", [], bench), syms, bench))
    elif equity_default:
        notes.append(f"equities skipped: none of {', '.join(DEFAULT_EQUITIES)} is in the warehouse")
    leg_specs = [spec for spec in leg_specs if spec[2]]
    if not leg_specs:
        raise InputError("no asset to study: give --assets, --category or --equities")

    factors = factor_symbols(catalog, req)  # issue 23: factor series load beside the benchmark
    leg_specs = [(n, t, a, b) for n, t, ss, b in leg_specs if (a := leg_assets(ss, factors))]
    all_syms = sorted({s for _, _, syms, b in leg_specs for s in [*syms, b, *factors]})
    cals = set(catalog.loc[catalog["symbol"].isin(all_syms), "calendar"])
    spans = _spans(events, cals, est, win)
    choices = choose_with_indexes(con, all_syms, spans=spans, sources=req.sources)  # + ALTS
    for choice in choices.values():
        if choice.alternatives:
            notes.append(
                f"{choice.symbol}: source {choice.source} ({choice.reason}); not mixed with "
                f"{', '.join(choice.alternatives)}"
            )

    # Issue 22: pairs whose windows touch a quarantined point (flows.services.quality).
    from flows.services.quality import study_exclusions

    suspect, suspect_notes = study_exclusions(con, choices, spans, allow_suspect=req.allow_suspect)
    notes += suspect_notes
    leg_specs = [(n, t, [s for s in ss if s not in suspect], b) for n, t, ss, b in leg_specs]
    leg_specs = [spec for spec in leg_specs if spec[2] and spec[3] not in suspect]
    if not leg_specs:
        raise InputError(
            "no asset to study: every pair touches a quarantined point (see "
            "aitokens check; --allow-suspect keeps them)"
        )

    legs = []
    for name, title, syms, bench in leg_specs:
        with_f = dict.fromkeys([*syms, bench, *factors])  # issue 23: + the factor series
        panel = load_with_indexes(con, [(choices[s].asset_id, choices[s].source) for s in with_f])
        # issue 25: a series continued through its lineage (AGIX as FET) covers what it reaches
        covered = extend_choices(choices, panel)
        leg_notes = _check_coverage(title, events, syms, bench, covered, win)
        leg_notes = [*leg_notes, *lineage_notes(panel), *cap_source_notes(con, panel)]
        study = _leg_study(req, events, confounders, syms, bench, choices, est, win, cars)
        legs.append(Leg(name, title, syms, bench, choices, panel, study, leg_notes))
    return Plan(req, events, descriptions, confounders, legs, notes, time_sources, catalog_list)


def _time_sources(
    con: duckdb.DuckDBPyConnection, req: StudyRequest, events: Sequence[Event]
) -> dict[str, str]:
    """Where each studied event's time of day comes from (none for a date)."""
    from analysis.calendars import is_date_only
    from warehouse.studies import event_time_sources

    catalog = event_time_sources(con)
    out = {}
    for i, ev in enumerate(events):
        if is_date_only(ev.when):
            continue
        if req.event_times:
            out[ev.name] = f"--event-time {req.event_times[i]}"
        elif ev.name in catalog:
            out[ev.name] = f"the catalog: {catalog[ev.name]}"
        elif ev.name == req.events[i].strip():
            out[ev.name] = "given with --event" if ev.name[:1].isdigit() else "the catalog"
    return out


def _plan_hourly(
    con: duckdb.DuckDBPyConnection,
    req: StudyRequest,
    events: list[Event],
    confounders: list[Event],
    *,
    est: tuple[int, int],
    win: tuple[int, int],
    cars: list[tuple[int, int]],
) -> tuple[list[Leg], list[str]]:
    """The tokens leg of an hourly study: series from ``price_hourly`` (one per symbol, as
    ``warehouse.queries.hourly_closes`` chooses), hour 0 from each event's time. Equities stay
    daily: asked for, they are left out with a note; with ``--no-equities`` none is read."""
    import pandas as pd

    from analysis import WindowOutsideDataError
    from analysis.calendars import HOURLY, is_date_only
    from warehouse.studies import (
        category_symbols,
        choose_series,
        hourly_series_catalog,
        load_hourly_series,
        resolve_symbols,
        series_catalog,
    )

    notes: list[str] = []
    dated = [e.name for e in events if is_date_only(e.when)]
    if dated:
        day = pd.Timestamp(next(e for e in events if e.name == dated[0]).when).date()
        raise InputError(
            f"--interval 1h needs the time of day of event {', '.join(dated)} (the catalog "
            f"holds a date only): give --event-time {day}THH:MMZ (its time with its zone), or "
            f"store it: aitokens events add --replace --name {dated[0]} --when {day}THH:MMZ"
        )
    hcat = hourly_series_catalog(con)
    if hcat.empty:
        raise InputError(
            "the warehouse holds no hourly closes: run `aitokens import FILE.csv` with a ts "
            "column (e.g. ../shared/data/sora2024/hourly.csv) first"
        )
    hclasses = hcat.groupby("symbol")["asset_class"].first().to_dict()
    # daily symbols only to recognise equities that were asked for (never read with --no-equities)
    dcat = series_catalog(con) if not req.no_equities else hcat.iloc[0:0]
    dclasses = dcat.groupby("symbol")["asset_class"].first().to_dict()
    known = pd.concat([hcat[["symbol"]], dcat[["symbol"]]], ignore_index=True)
    classes = {**dclasses, **hclasses}

    explicit = resolve_symbols(known, req.assets, what="--assets") if req.assets else []
    token_syms = [s for s in explicit if classes[s] not in EQUITY_CLASSES]
    left_out = [s for s in explicit if classes[s] in EQUITY_CLASSES]
    if req.category:
        day0 = min(e.map("crypto").session for e in events).date()
        members, how = category_symbols(con, req.category, as_of=day0)
        token_syms += [s for s in members if s not in token_syms]
        notes.append(f"--category {req.category}: {how}")
    elif not req.assets:
        token_syms = sorted(s for s, c in hclasses.items() if c == "ai_token")
    if not req.no_equities:
        if req.equities:
            left_out += resolve_symbols(known, req.equities, what="--equities")
        elif not left_out:
            left_out = [s for s in DEFAULT_EQUITIES if s in classes]
        if left_out or req.equities:
            held = ", ".join(dict.fromkeys(left_out))
            notes.append(f"{EQUITIES_DAILY_NOTE}{f' ({held})' if held else ''}")
    no_hourly = [s for s in token_syms if s not in hclasses]
    if no_hourly:
        if req.category:  # members without hourly closes drop out, named
            notes.append(f"no hourly closes, left out: {', '.join(no_hourly)}")
            token_syms = [s for s in token_syms if s in hclasses]
        else:
            resolve_symbols(hcat, no_hourly, what="--assets (hourly closes)")
    bench = resolve_symbols(hcat, [req.benchmark], what="--benchmark (hourly closes)")[0]
    token_syms = list(dict.fromkeys(s for s in token_syms if s != bench))
    if not token_syms:
        raise InputError(
            "no token to study on the hourly clock: give --assets or --category (equities stay "
            "daily)"
        )
    hour0 = [e.map(HOURLY).session for e in events]
    one = pd.Timedelta(hours=1)
    # the close before the first estimation return, through the last event hour
    start = min(h + (est[0] - 1) * one for h in hour0)
    end = max(h + win[1] * one for h in hour0)
    choices = choose_series(
        con,
        [*token_syms, bench],
        spans={HOURLY: (start.to_pydatetime(), end.to_pydatetime())},
        sources=req.sources,
        clock="1h",
    )
    for choice in choices.values():
        if choice.alternatives:
            notes.append(
                f"{choice.symbol}: hourly source {choice.source} ({choice.reason}); not mixed "
                f"with {', '.join(choice.alternatives)}"
            )
    panel = load_hourly_series(
        con,
        [(choices[s].asset_id, choices[s].source) for s in [*token_syms, bench]],
        ts_range=(str(start), str(end)),
    )
    # coverage: the benchmark must hold every hour of each event window; some token hour 0
    title = _leg_title("tokens", [hclasses.get(s, "") for s in token_syms], bench) + " (hourly)"
    span = panel.groupby("symbol")["date"].agg(["min", "max"])
    for ev, h0 in zip(events, hour0, strict=True):
        lo, hi = h0 + (win[0] - 1) * one, h0 + win[1] * one
        label = (
            f"the event window {win[0]}:{win[1]} hours of {ev.name} ({lo:%Y-%m-%d %H:%M}Z to "
            f"{hi:%Y-%m-%d %H:%M}Z)"
        )
        if bench not in span.index or span.loc[bench, "min"] > lo or span.loc[bench, "max"] < hi:
            raise WindowOutsideDataError(
                f"{title}: {label} lies outside the hourly closes of benchmark {bench}; choose "
                "another --event or --window, or import the missing hours"
            )
        if not any(
            s in span.index and span.loc[s, "min"] < h0 <= span.loc[s, "max"] for s in token_syms
        ):
            raise WindowOutsideDataError(
                f"{title}: {label}: no token has hourly closes around hour 0; import them first"
            )
    study = _leg_study(
        req, events, confounders, token_syms, bench, choices, est, win, cars, interval="1h"
    )
    leg = Leg("tokens", title, token_syms, bench, choices, panel, study)
    if req.placebo and len(events) == 1:
        leg.placebo_panel = load_hourly_series(
            con, [(choices[s].asset_id, choices[s].source) for s in [*token_syms, bench]]
        )
    return [leg], notes


# ---------------------------------------------------------------------------------- estimation
@dataclass
class LegResult:
    leg: Leg
    result: EventStudyResult
    warnings: list[str]
    placebo: PlaceboResult | None = None


def fit_leg(study: EventStudy, panel: pd.DataFrame, title: str) -> tuple[Any, list[str]]:
    """Fit one leg; excluded-pair warnings are dropped (the summary lists the exclusions),
    other engine warnings come back as notes; input errors name the leg."""
    from analysis import AssetsExcludedWarning, EventStudyInputError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = study.fit(panel[["date", "symbol", "close", "market_cap", "asset_class"]])
        except EventStudyInputError as exc:
            raise type(exc)(f"{title}: {exc}") from None
    notes = [str(w.message) for w in caught if not issubclass(w.category, AssetsExcludedWarning)]
    return result, list(dict.fromkeys(notes))


def leg_placebo(plan: Plan, leg: Leg) -> PlaceboResult | None:
    """The calendar-time placebo distribution of one leg (``None`` when the request turned it
    off or the study has several events): the leg's identical study on every pseudo-date of its
    series' history outside the catalog's event windows (:func:`analysis.placebo.placebo`)."""
    from analysis import EventStudyInputError
    from analysis.eventstudy import _label
    from analysis.placebo import PlaceboResult, placebo

    if not plan.request.placebo or len(leg.study.events) != 1:
        return None
    panel = leg.panel if leg.placebo_panel is None else leg.placebo_panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit of the leg has reported the data's warnings
        try:
            return placebo(
                leg.study,
                panel[["date", "symbol", "close", "market_cap", "asset_class"]],
                catalog=plan.catalog,
            )
        except EventStudyInputError as exc:  # the study stands; its placebo says why it is absent
            windows = [_label(*w) for w in leg.study.car_windows]
            return PlaceboResult.skipped(windows, f"the placebo history could not be read: {exc}")


def run_plan(plan: Plan) -> list[LegResult]:
    out = []
    for leg in plan.legs:
        result, notes = fit_leg(leg.study, leg.panel, leg.title)
        out.append(LegResult(leg, result, notes, leg_placebo(plan, leg)))
    return out


# ---------------------------------------------------------------------------------- output
def headline(plan: Plan, results: Sequence[LegResult]) -> str:
    """First line: the day-0 (hour-0) policy and the confounders flagged."""
    from analysis.calendars import EVENT_POLICY, HOURLY_POLICY

    flagged: dict[str, list[str]] = {}
    for lr in results:
        fl = lr.result.flags
        for detail, sub in fl[fl["flag"] == "confounder"].groupby("detail", sort=True):
            flagged.setdefault(detail, []).extend(sorted(sub["asset"]))
    if flagged:
        conf = "; ".join(f"{d} for {', '.join(a)}" for d, a in flagged.items())
    elif plan.confounders:
        conf = "none in the event windows"
    else:
        conf = "none"
    if plan.request.hourly:
        return (
            f"Hour-0 policy {HOURLY_POLICY}: hour 0 is the return over [floor_hour(t), "
            "floor_hour(t) + 1h) of the event time t, labelled by its UTC close; windows count "
            f"hours. Confounders flagged: {conf}."
        )
    return (
        f"Day-0 policy {EVENT_POLICY}: a non-session date, or a time at or after the close, "
        f"moves to the next session. Confounders flagged: {conf}."
    )


def headline_tests(results: Sequence[LegResult]) -> dict[str, list[dict[str, Any]]]:
    """What the study found, per leg: each CAR window's mean CAR (CAAR) over the pairs and its
    Kolari-Pynnonen adjusted BMP test (Kolari & Pynnonen 2010), the study's headline test."""
    import pandas as pd

    out: dict[str, list[dict[str, Any]]] = {}
    for lr in results:
        res = lr.result
        caar = res.car.mean() if not res.car.empty else pd.Series(dtype=float)
        rows = []
        for r in res.headline.to_dict("records"):
            window = str(r["window"])
            mean = caar.get(window)
            rows.append(
                {
                    "window": window,
                    "caar": None if mean is None or pd.isna(mean) else float(mean),
                    "test": "kp_bmp",
                    "stat": None if pd.isna(r["stat"]) else float(r["stat"]),
                    "pvalue": None if pd.isna(r["pvalue"]) else float(r["pvalue"]),
                    "n": None if pd.isna(r["n"]) else int(r["n"]),
                }
            )
        out[lr.leg.name] = rows
    return out


def results_headline(results: Sequence[LegResult]) -> str:
    """One sentence of results, e.g. ``AI tokens vs BTC: CAR [0,1] +5.20% (N 8, KP-adjusted
    BMP t 2.31, p 0.021); ...``: what ``--json`` gives as ``headline``."""
    tests = headline_tests(results)
    parts = []
    for lr in results:
        cells = []
        for r in tests[lr.leg.name]:
            caar = "n/a" if r["caar"] is None else f"{100 * r['caar']:+.2f}%"
            stat = "n/a" if r["stat"] is None else f"{r['stat']:.2f}"
            pval = "n/a" if r["pvalue"] is None else f"{r['pvalue']:.3f}"
            cells.append(
                f"CAR {r['window']} {caar} (N {r['n']}, KP-adjusted BMP t {stat}, p {pval})"
            )
        parts.append(f"{lr.leg.title}: {'; '.join(cells) if cells else 'no test computed'}")
    return ". ".join(parts) + "."


def context_lines(plan: Plan, results: Sequence[LegResult]) -> list[str]:
    """Events with their day 0 per calendar, confounder descriptions, series and notes."""
    lines = []
    for ev in plan.events:
        maps = {}
        for lr in results:
            m = lr.result.event_mappings
            for r in m[m["event"] == ev.name].to_dict("records"):
                maps[r["calendar"]] = f"{r['calendar']} {r['session']} ({r['reason']})"
        desc = f" ({ev.description})" if ev.description else ""
        zero = "hour 0" if plan.request.hourly else "day 0"
        source = plan.time_sources.get(ev.name)
        told = f"; time from {source}" if source and plan.request.hourly else ""
        lines.append(
            f"Event {ev.name} = {ev.when}{desc}{told}; {zero}: {'; '.join(maps.values())}."
        )
    flagged = {
        d.split(" ")[0]
        for lr in results
        for d in lr.result.flags.loc[lr.result.flags["flag"] == "confounder", "detail"]
    }
    for c in plan.confounders:
        if c.name in flagged:
            lines.append(f"Confounder {c.name} = {c.when}: {c.description} (from the catalog).")
    for lr in results:
        leg = lr.leg
        by_source: dict[str, list[str]] = {}
        for s in [*leg.assets, leg.benchmark]:
            by_source.setdefault(leg.choices[s].source, []).append(s)
        src = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_source.items()))
        lines.append(f"{leg.title}: {len(leg.assets)} assets; sources {src}.")
    lines += [f"Note: {n}." for n in plan.notes]
    for lr in results:
        lines += [f"Note ({lr.leg.title}): {n}." for n in [*lr.leg.notes, *lr.warnings]]
    return lines


def leg_text(lr: LegResult, study_id: str) -> str:
    res = lr.result
    excluded = res.excluded
    ex = (
        "; ".join(f"{r.asset}/{r.event}: {r.reason}" for r in excluded.itertuples())
        if not excluded.empty
        else "none"
    )
    head = (
        f"=== {lr.leg.title} ({study_id}): {len(res.params)} pairs kept, "
        f"{len(excluded)} excluded ==="
    )
    from analysis.robustness import portfolio_kp_sentence

    text = f"{head}\n{res.summary().as_text()}\nExcluded: {ex}."
    cars = list(res.car.columns)
    why = portfolio_kp_sentence(res, "[0,3]" if "[0,3]" in cars else cars[0]) if cars else ""
    extra = "\n".join(wrap_lines(t) for t in (placebo_text(lr), why) if t)
    return f"{text}\n{extra}" if extra else text


TEXT_WIDTH = 100
"""Columns of a study's text (issue 19 item 8): terminals and pasted notes want 100."""


def wrap_lines(text: str, width: int = TEXT_WIDTH) -> str:
    """Each line of ``text`` wrapped to ``width``, its continuation lines indented to the
    line's own indent + 4, so a placebo row or a headline stays visibly one item; no word is
    dropped or split (a word longer than ``width`` keeps its line)."""
    out = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent=indent + "    ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [line]
    return "\n".join(out)


def placebo_text(lr: LegResult) -> str:
    """The placebo table and the headline per CAR window (the placebo p-value is the headline
    below five assets); empty for a multi-event leg."""
    from analysis.placebo import verdict_lines

    pl = lr.placebo
    if pl is None:
        return ""
    lines = []
    if pl.reason:
        lines.append(f"Placebo (calendar-time): not computed ({pl.reason}).")
    else:
        unit = "hours" if lr.leg.study.interval == "1h" else "dates"
        lines.append(
            f"Placebo (calendar-time): the same study on {pl.n_placebo} placebo {unit} of the "
            f"same {pl.n_assets} assets (of {pl.candidates} with full windows; left out: "
            + "; ".join(f"{v} {k}" for k, v in pl.dropped.items())
            + "). Two-sided empirical p-value of the real CAAR and KP-BMP t among them:"
        )
        for r in pl.records():
            kp = "n/a" if r["kp_t"] is None else f"{r['kp_t']:.2f}"
            pk = "n/a" if r["p_value_kp"] is None else f"{r['p_value_kp']:.3f}"
            caar = "n/a" if r["caar"] is None else f"{r['caar']:+.4f}"
            p = "n/a" if r["p_value"] is None else f"{r['p_value']:.3f}"
            lo, hi = r["placebo_caar_q025"], r["placebo_caar_q975"]
            band = "" if lo is None else f", 95% of placebo CAARs in [{lo:+.4f}, {hi:+.4f}]"
            lines.append(
                f"  {r['window']:>8}  CAAR {caar} (placebo p {p}{band})  "
                f"KP-BMP t {kp} (placebo p {pk})"
            )
    lines += [f"Headline: {v}." for v in verdict_lines(lr.result, pl)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- persistence
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aitokens")
    except PackageNotFoundError:
        return "unknown"


def build_records(
    plan: Plan, results: Sequence[LegResult], group_id: str, texts: dict[str, str]
) -> list[StudyRecord]:
    from warehouse.studies import StudyRecord, result_rows

    records = []
    for lr in results:
        sid = f"{group_id}-{lr.leg.name}"
        spec = lr.result.spec
        fp = lr.leg.fingerprint()
        fp["data_sha256"] = spec["resolved"]["data_sha256"]
        records.append(
            StudyRecord(
                study_id=sid,
                group_id=group_id,
                leg=lr.leg.name,
                spec=spec,
                fingerprint=fp,
                summary=texts[lr.leg.name],
                command=plan.request.command(),
                package_version=package_version(),
                rows=result_rows(sid, lr.result),
            )
        )
    return records


def ensure_schema(db: Path | None) -> None:
    """Bring an older warehouse up to the current schema (a brief writable open) so read-only
    commands find the event catalog."""
    from warehouse.db import migration_files, open_warehouse, schema_version

    latest = max(v for v, _, _ in migration_files())
    with open_warehouse(db, read_only=True) as con:
        current = schema_version(con)
    if current < latest:
        with open_warehouse(db):
            pass


def ensure_reader_schema(db: Path | None) -> None:
    """Make sure what reading commands open (:func:`warehouse.db.open_reader`: the snapshot,
    else the warehouse read-only) holds the current schema, so they find the event catalog,
    the groups and the study tables.

    A snapshot published by an older aitokens can lack a later migration: the warehouse is
    then migrated (a brief writable open, as :func:`ensure_schema`) and the snapshot
    republished. Otherwise this only reads the snapshot, never touching the writer's file.
    """
    from warehouse.db import (
        migration_files,
        open_reader,
        open_warehouse,
        publish_snapshot_of,
        schema_version,
    )

    latest = max(v for v, _, _ in migration_files())
    with open_reader(db) as con:
        current = schema_version(con)
    if current < latest:
        with open_warehouse(db):
            pass
        publish_snapshot_of(db)


@dataclass
class RerunReport:
    study_id: str
    result: Any
    data_matches: bool
    stored_sha: str
    fresh_sha: str
    values_compared: int
    max_abs_diff: float
    mismatches: tuple[str, ...]


def replay_plan(
    con: duckdb.DuckDBPyConnection, study_or_group: str, *, placebo: bool = False
) -> tuple[Plan, list[StoredStudy]]:
    """The plan of a stored study: its request (from the stored command line), each leg's
    stored engine spec, and exactly the series and dates it read. ``--rerun`` refits it to
    check the stored numbers; ``aitokens report --study ID`` renders it, placebo included
    (``placebo``), so the report shows that study and no other."""
    import pandas as pd

    from analysis import Event, EventStudy
    from flows.services.factors import load_with_indexes
    from warehouse.studies import catalog_events, load_hourly_series, load_study

    runs = load_study(con, study_or_group)
    req = StudyRequest.from_command(runs[0].command)
    req.placebo = req.placebo and placebo
    legs = []
    for run in runs:
        series = [(s.asset_id, s.source) for s in run.series]
        if run.interval == "1h":
            panel = load_hourly_series(con, series, ts_range=run.date_range)
        else:
            panel = load_with_indexes(con, series)  # ALTS is built, not stored
            lo, hi = (pd.Timestamp(d) for d in run.date_range)
            panel = panel[panel["date"].between(lo, hi)].reset_index(drop=True)
        choices = {s.symbol: s.choice() for s in run.series}
        study = EventStudy.from_spec(run.spec)
        title = _leg_title(run.leg, [choices[a].asset_class for a in run.assets], run.benchmark)
        leg = Leg(
            run.leg,
            title + (" (hourly)" if run.interval == "1h" else ""),
            run.assets,
            run.benchmark,
            choices,
            panel,
            study,
        )
        if req.placebo and run.interval == "1h" and len(study.events) == 1:
            leg.placebo_panel = load_hourly_series(con, series)
        legs.append(leg)
    events = list(legs[0].study.events)
    catalog = [
        Event(r["name"], r["when"], r["description"], r["kind"]) for r in catalog_events(con)
    ]
    descriptions = {e.name: e.description for e in catalog} | {
        e.name: e.description for e in events if e.description
    }
    plan = Plan(
        req,
        events,
        descriptions,
        list(legs[0].study.confounders),
        legs,
        [],
        _time_sources(con, req, events),
        catalog,
    )
    return plan, runs


def replay_study(db: Path | str | None, study_or_group: str) -> StudyOutcome:
    """The outcome of stored study ``study_or_group`` replayed (:func:`replay_plan`, placebo
    included), read from the analysts' snapshot and not saved again: what ``aitokens report
    --study ID`` renders."""
    from warehouse.db import open_reader

    ensure_reader_schema(Path(db) if db else None)
    with open_reader(db) as con:
        plan, runs = replay_plan(con, study_or_group, placebo=True)
    results = run_plan(plan)
    group_id = runs[0].group_id
    legs = {lr.leg.name: leg_text(lr, f"{group_id}-{lr.leg.name}") for lr in results}
    lines = [headline(plan, results), *context_lines(plan, results)]
    return StudyOutcome(plan.request, plan, results, group_id, False, lines, legs)


def study_spans(plan: Plan, calendars: set[str]) -> dict[str, tuple[dt.date, dt.date]]:
    """The dates the plan's series choice counts observations in, per daily calendar."""
    est = parse_window(plan.request.estimation, "--estimation")
    win = parse_window(plan.request.window, "--window")
    return _spans(plan.events, calendars - {"crypto_1h"}, est, win)


def path_result(
    leg: Leg,
    assets: Sequence[str],
    prices: pd.DataFrame | None = None,
    *,
    windows: Sequence[tuple[int, int]] | None = None,
    portfolios: bool = False,
) -> EventStudyResult:
    """The leg's own study with a CAR window ``[first, d]`` for every event day (``windows``
    to choose others) and the cross-sectional t only: the CAR paths a report draws, for
    ``assets`` (the leg's assets, and a portfolio pseudo-asset whose closes ``prices`` adds;
    ``portfolios`` adds the engine's own equal-weight portfolio instead)."""
    import pandas as pd

    from analysis import EventStudy

    spec = leg.study.spec
    first, last = spec["event_window"]
    paths = windows or [(first, d) for d in range(first, last + 1)]
    spec.update(
        car_windows=[list(w) for w in paths],
        assets=list(assets),
        tests=["t_cs"],
        portfolios=portfolios,
    )
    cols = ["date", "symbol", "close", "asset_class"]
    panel = leg.panel[cols]
    if prices is not None:
        panel = pd.concat([panel, prices[cols]], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the leg's fit has reported the data's warnings
        return EventStudy.from_spec(spec).fit(prices=panel)


def rerun_study(
    con: duckdb.DuckDBPyConnection, study_or_group: str
) -> list[tuple[StoredStudy, RerunReport]]:
    """Rebuild each stored leg from its spec and the same series and dates (:func:`replay_plan`),
    refit, and compare every stored number (tolerance 1e-12)."""
    from warehouse.studies import compare_rows, result_rows

    plan, runs = replay_plan(con, study_or_group)
    out = []
    for run, leg in zip(runs, plan.legs, strict=True):
        result, _ = fit_leg(leg.study, leg.panel, f"rerun of {run.study_id}")
        cmp = compare_rows(run.rows, result_rows(run.study_id, result), tol=RERUN_TOLERANCE)
        fresh_sha = result.spec["resolved"]["data_sha256"]
        stored_sha = run.spec["resolved"]["data_sha256"]
        out.append(
            (
                run,
                RerunReport(
                    run.study_id,
                    result,
                    fresh_sha == stored_sha,
                    stored_sha,
                    fresh_sha,
                    cmp.values_compared,
                    cmp.max_abs_diff,
                    cmp.mismatches,
                ),
            )
        )
    return out


# ---------------------------------------------------------------------------------- commands


@dataclass
class StudyOutcome:
    """One executed study: what was planned and estimated, its ids and its printable text."""

    request: StudyRequest
    plan: Plan
    results: list[LegResult]
    group_id: str
    saved: bool
    lines: list[str]  # the headline, then the context lines
    leg_texts: dict[str, str]  # leg name (or 'groups:tokens', 'regression', ...) -> its text
    second: SecondStage | None = None  # groups, regression, volume

    @property
    def study_ids(self) -> dict[str, str]:
        return {lr.leg.name: f"{self.group_id}-{lr.leg.name}" for lr in self.results}

    @property
    def text(self) -> str:
        return "\n\n".join(["\n".join(self.lines), *self.leg_texts.values()]) + "\n"

    def to_payload(self) -> dict[str, Any]:
        """The JSON written by ``--json`` and by the pipeline beside its report."""
        return {
            "group_id": self.group_id,
            "interval": self.request.interval,
            "saved": self.saved,
            "command": self.request.command(),
            "headline": results_headline(self.results),
            "headline_tests": headline_tests(self.results),
            "policy": self.lines[0],
            "legs": {
                lr.leg.name: {
                    **lr.result.to_dict(),
                    "placebo": lr.placebo.records() if lr.placebo is not None else [],
                }
                for lr in self.results
            },
            "study_ids": self.study_ids,
            **(self.second.payload() if self.second is not None else {}),
        }


def execute_study(db: Path | str | None, req: StudyRequest, *, save: bool = True) -> StudyOutcome:
    """Plan on a read-only connection, estimate with the file closed, then save every leg in
    one short write transaction (unless ``save`` is false)."""
    from warehouse.db import open_reader, open_warehouse
    from warehouse.studies import new_group_id, save_studies

    second_stage.check_request(req)
    if req.regress:
        _add_regress_window(req)
    if req.measure == "volume":
        save = False  # the return legs only place day 0 and the benchmarks: not stored
    # A study that is not stored only reads: it reads the analysts' snapshot, as every reading
    # command does, so it never delays a write run. A stored study plans on the warehouse it
    # writes to (a brief read-only open; estimation runs with the file closed).
    if save:
        ensure_schema(Path(db) if db else None)
        opened = open_warehouse(db, read_only=True)
    else:
        ensure_reader_schema(Path(db) if db else None)
        opened = open_reader(db)
    with opened as con:
        plan = plan_study(con, req)
        extra = (
            second_stage.load_inputs(con, plan, req)
            if second_stage.wants_second_stage(req)
            else None
        )
    results = run_plan(plan)
    second = second_stage.run(plan, results, extra, req) if extra is not None else None
    group_id = new_group_id()
    legs = {lr.leg.name: leg_text(lr, f"{group_id}-{lr.leg.name}") for lr in results}
    if req.measure == "volume" and second is not None:
        legs = dict(second.texts)  # abnormal volume (and groups, regression) replace the tables
    elif second is not None:
        legs.update(second.texts)
    lines = [headline(plan, results), *context_lines(plan, results)]
    if save:
        # each leg's stored summary is what is printed: the context lines, then its tables
        texts = {lr.leg.name: "\n".join([*lines, "", legs[lr.leg.name]]) for lr in results}
        with open_warehouse(db) as con:
            save_studies(con, build_records(plan, results, group_id, texts))
        from warehouse.db import publish_snapshot_of

        publish_snapshot_of(db)  # reports and analysts see the saved study
    return StudyOutcome(req, plan, results, group_id, save, lines, legs, second)


def _add_regress_window(req: StudyRequest) -> None:
    """Make the regression's window one of the study's CAR windows (added when missing)."""
    rw = regress_window_label(req.regress_window or DEFAULT_REGRESS_WINDOW)
    win = parse_window(req.window, "--window")
    if rw[0] < win[0] or rw[1] > win[1]:
        raise InputError(
            f"--regress-window {rw[0]}:{rw[1]} lies outside the event window --window {req.window}"
        )
    cars = _car_windows(req, win)
    if rw not in cars:
        req.cars = [f"{a}:{b}" for a, b in cars] + [f"{rw[0]}:{rw[1]}"]
