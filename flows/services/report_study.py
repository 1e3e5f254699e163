"""The studies an event report renders: outcomes of the study service, never studies of its own.

The event report shows the study ``aitokens study --event EVENT`` runs (or, with
``aitokens report --study ID``, the stored study ID replayed on the series and dates it read),
so every number it prints equals the CLI's by construction: the same planner, the same series
choice (:func:`warehouse.studies.choose_series`), the same coverage checks, engine calls and
placebo. The "first hours" section is the service's hourly study of the same event; the group
and volume section is the service's second stage of the same legs. What the report adds are
CAR paths (:func:`flows.services.study.path_result`), drawn from each leg's own study.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from warehouse.db import open_reader
from warehouse.errors import AitokensError
from warehouse.studyspec import StudySpec

if TYPE_CHECKING:
    from analysis import Event
    from analysis.groups import GroupResults
    from analysis.placebo import PlaceboResult
    from analysis.volume import VolumeResult
    from flows.services.study import LegResult, StudyOutcome

# The "first hours" section (hourly clock, DESIGN.md section 5): windows in hours around hour 0.
HOURLY_ESTIMATION = (-720, -25)
HOURLY_WINDOW = (-24, 72)
HOURLY_CARS = ((0, 0), (0, 5), (0, 23), (0, 71), (-24, -1))
PORTFOLIO = "AI_EW"  # the equal-weight AI-token portfolio's pseudo-asset in the CAR paths


def _window(w: tuple[int, int]) -> str:
    return f"{w[0]}:{w[1]}"


def hourly_spec(event: str) -> StudySpec:
    """The "first hours" study of ``event``: tokens against BTC on the hourly clock, as
    ``aitokens study --interval 1h --event EVENT --estimation -720:-25 --window -24:72 --car
    0:0 --car 0:5 --car 0:23 --car 0:71 --car -24:-1 --no-equities`` runs it."""
    return StudySpec(
        interval="1h",
        events=[event],
        estimation=_window(HOURLY_ESTIMATION),
        window=_window(HOURLY_WINDOW),
        cars=[_window(w) for w in HOURLY_CARS],
        no_equities=True,
    )


@dataclass
class ReportStudy:
    """What the event report renders: the daily study's outcome, the hourly one (or why there
    is none), and the closes of every held symbol for the context figures, each series chosen
    by the study's own rule."""

    outcome: StudyOutcome
    prices: pd.DataFrame  # long daily closes of every held symbol (the study's series choice)
    members: pd.DataFrame  # latest AI-category membership (empty for CSV-only warehouses)
    replayed: bool = False  # a stored study replayed (aitokens report --study ID)
    equity_note: str | None = None  # why the equity leg is absent, when it failed
    hourly: StudyOutcome | None = None
    hourly_reason: str = ""

    @property
    def event(self) -> Event:
        return self.outcome.plan.events[0]

    @property
    def others(self) -> list[Event]:
        """Every other catalog event (the timeline's markers)."""
        return [e for e in self.outcome.plan.catalog if e.name != self.event.name]

    def leg(self, name: str) -> LegResult | None:
        return next((lr for lr in self.outcome.results if lr.leg.name == name), None)

    @property
    def tokens(self) -> LegResult:
        lr = self.leg("tokens")
        if lr is None:
            raise AitokensError("the study has no token leg")
        return lr

    @property
    def equities(self) -> LegResult | None:
        return self.leg("equities")

    @property
    def study_id(self) -> str:
        return self.outcome.group_id


def _run(db: Path | str, spec: StudySpec) -> StudyOutcome:
    from flows.services.study import execute_study

    return execute_study(db, spec, save=False)


def report_study(db: Path | str, event: str = "sora", study_id: str | None = None) -> ReportStudy:
    """The daily study the report shows, run by the study service: stored study ``study_id``
    replayed on its own series and dates, else ``aitokens study --event EVENT`` (not saved).
    An equity leg that cannot be estimated leaves the tokens' study standing, with the reason
    (the CLI fails the whole run instead: a report still shows the tokens)."""
    from flows.services.study import replay_study

    if study_id is not None:
        outcome = replay_study(db, study_id)
        note = None
    else:
        spec = StudySpec(events=[event])
        try:
            outcome, note = _run(db, spec), None
        except AitokensError as exc:
            if not str(exc).startswith("Equities vs"):
                raise
            outcome = _run(db, replace(spec, no_equities=True))
            note = f"The equity leg could not be estimated: {exc}"
    from warehouse.report_inputs import latest_members

    with open_reader(db) as con:
        members = latest_members(con)
    prices = context_prices(db, outcome)
    return ReportStudy(outcome, prices, members, study_id is not None, note)


def with_hourly(db: Path | str, study: ReportStudy) -> ReportStudy:
    """The report's study with its "first hours" study (:func:`hourly_spec`) when hourly closes
    cover the event, else the reason there is none (a date-only event, no hourly closes, hours
    that stop short of the windows)."""
    from analysis.calendars import is_date_only

    ev = study.event
    if is_date_only(ev.when):
        study.hourly_reason = "the event has no time of day"
        return study
    try:
        study.hourly = _run(db, hourly_spec(ev.name))
    except AitokensError as exc:  # the service's own refusal says why
        study.hourly_reason = str(exc)
    return study


def context_prices(db: Path | str, outcome: StudyOutcome) -> pd.DataFrame:
    """Daily closes of every held symbol for the figures around the study (BTC, NVDA, the
    crypto index of the robustness grid): the legs' own series, and for the other symbols the
    series the study's rule (:func:`warehouse.studies.choose_series`, the study's spans and
    ``--source`` preferences) picks."""
    from flows.services.study import study_spans
    from warehouse.studies import choose_series, load_series, series_catalog

    plan = outcome.plan
    with open_reader(db) as con:
        catalog = series_catalog(con)
        symbols = sorted(set(catalog["symbol"]))
        spans = study_spans(plan, set(catalog["calendar"]))
        choices = choose_series(con, symbols, spans=spans, sources=plan.request.sources)
        for leg in plan.legs:
            if leg.study.interval == "1d":
                choices.update(leg.choices)
        prices = load_series(con, [(c.asset_id, c.source) for c in choices.values()])
    prices["date"] = pd.to_datetime(prices["date"])
    return prices


@dataclass
class SecondStageSection:
    """The event report's group and volume section: the service's second stage
    (``aitokens study --by-group --measure volume``) of the report's own legs."""

    groups: GroupResults | None
    volume: VolumeResult | None
    volume_reason: str = ""


def second_stage_section(db: Path | str, study: ReportStudy) -> SecondStageSection:
    """Results by group with each group's placebo p, and the tokens' abnormal log volume."""
    from flows.services import second_stage

    plan, results = study.outcome.plan, study.outcome.results
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exclusions are listed by the study's own section
        req = replace(plan.request, by_group=True, measure="returns")
        with open_reader(db) as con:
            inputs = second_stage.load_inputs(con, plan, replace(req, measure="volume"))
        groups = second_stage.run(plan, results, inputs, req).groups.get("tokens")
        try:
            only_volume = replace(req, by_group=False, measure="volume")
            vol = second_stage.run(plan, results, inputs, only_volume)
            volume, reason = vol.volume.get("tokens"), ""
        except AitokensError as exc:
            volume, reason = None, str(exc)
    return SecondStageSection(groups or None, volume, reason)


def leg_placebo(lr: LegResult | None) -> PlaceboResult | None:
    return None if lr is None else lr.placebo


__all__ = [
    "HOURLY_CARS",
    "HOURLY_ESTIMATION",
    "HOURLY_WINDOW",
    "PORTFOLIO",
    "ReportStudy",
    "SecondStageSection",
    "context_prices",
    "hourly_spec",
    "report_study",
    "second_stage_section",
    "with_hourly",
]
