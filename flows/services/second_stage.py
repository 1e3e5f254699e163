"""The second stage of `aitokens study`: results by group (``--by-group``), the cross-sectional
regression of one window's CARs (``--regress``, ``--regress-window``, ``--wls``) and abnormal
volume (``--measure volume``).

Reads what it needs (group members as of the first event's day 0, USD volumes of the chosen
series) on the study's read-only connection, then works on the fitted legs in memory. Plain
functions, no click.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flows.services.windows import parse_window
from warehouse.errors import InputError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from analysis import Event, EventStudy, EventStudyResult
    from analysis.groups import GroupResults
    from analysis.placebo import PlaceboResult
    from analysis.regression import RegressionResult
    from analysis.volume import VolumeResult
    from warehouse.studies import SeriesChoice


# What the second stage reads of the study service's records, declared here (structural types)
# so this module never imports flows.services.study, which calls it: no import cycle, and
# flows.services.study's StudyRequest, Plan, Leg and LegResult satisfy them as they are.
class StudyRequest(Protocol):
    """The options of the study that the second stage reads."""

    @property
    def by_group(self) -> bool: ...
    @property
    def regress(self) -> str: ...
    @property
    def regress_window(self) -> str: ...
    @property
    def wls(self) -> bool: ...
    @property
    def measure(self) -> str: ...
    @property
    def hourly(self) -> bool: ...


class Leg(Protocol):
    """One planned leg (tokens or equities) of the study."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def assets(self) -> list[str]: ...
    @property
    def benchmark(self) -> str: ...
    @property
    def choices(self) -> dict[str, SeriesChoice]: ...
    @property
    def panel(self) -> pd.DataFrame: ...
    @property
    def placebo_panel(self) -> pd.DataFrame | None: ...
    @property
    def study(self) -> EventStudy: ...


class Plan(Protocol):
    """The planned study: its events, legs and the whole catalog."""

    @property
    def events(self) -> list[Event]: ...
    @property
    def legs(self) -> Sequence[Leg]: ...
    @property
    def catalog(self) -> list[Event]: ...


class LegResult(Protocol):
    """One fitted leg."""

    @property
    def leg(self) -> Leg: ...
    @property
    def result(self) -> EventStudyResult: ...
    @property
    def placebo(self) -> PlaceboResult | None: ...


MEASURES = ("returns", "volume")
DEFAULT_REGRESS_WINDOW = "0:5"


def wants_second_stage(req: StudyRequest) -> bool:
    return bool(req.by_group or req.regress or req.measure == "volume")


def check_request(req: StudyRequest) -> None:
    """Option combinations that cannot work, refused before anything is read."""
    from analysis.regression import parse_regressors

    if req.measure not in MEASURES:
        raise InputError(f"--measure {req.measure!r} is not one of {', '.join(MEASURES)}")
    if req.regress:
        parse_regressors(req.regress)
        if req.hourly:
            raise InputError(
                "--regress uses daily characteristics (market cap at day -6, closes on days -31 "
                "and -6, volume over days -30..-6): run it with --interval 1d"
            )
    elif req.wls or req.regress_window:
        raise InputError("--wls and --regress-window go with --regress NAMES")


@dataclass
class SecondStageInputs:
    as_of: dt.date
    groups: dict[str, list[str]]
    volumes: dict[str, pd.DataFrame] = field(default_factory=dict)  # leg -> long volumes


def load_inputs(con: duckdb.DuckDBPyConnection, plan: Plan, req: StudyRequest) -> SecondStageInputs:
    """Group members as of the first event's day 0, and USD volumes of every leg's series."""
    from warehouse.groups import load_volumes, members_as_of

    as_of = min(e.map("crypto").session for e in plan.events).date()
    groups = members_as_of(con, as_of) if (req.by_group or req.regress) else {}
    volumes = {}
    need_volume = req.measure == "volume" or any(
        r.strip() == "log_volume" for r in req.regress.split(",")
    )
    if need_volume:
        for leg in plan.legs:
            series = [
                (leg.choices[s].asset_id, leg.choices[s].source)
                for s in [*leg.assets, leg.benchmark]
            ]
            volumes[leg.name] = load_volumes(con, series, hourly=req.hourly)
    return SecondStageInputs(as_of, groups, volumes)


@dataclass
class SecondStage:
    """What the second stage found, as text and as JSON."""

    groups: dict[str, GroupResults] = field(default_factory=dict)  # leg -> results by group
    regression: RegressionResult | None = None
    regression_leg: str = ""
    volume: dict[str, VolumeResult] = field(default_factory=dict)  # leg -> abnormal volume
    texts: dict[str, str] = field(default_factory=dict)  # section -> printable text
    figures: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.groups:
            out["groups"] = {leg: g.to_dict() for leg, g in self.groups.items()}
        if self.regression is not None:
            out["regression"] = {"leg": self.regression_leg, **self.regression.to_dict()}
        if self.volume:
            out["volume"] = {leg: v.to_dict() for leg, v in self.volume.items()}
        return out


def regress_window_label(text: str) -> tuple[int, int]:
    return parse_window(text, "--regress-window")


def run(
    plan: Plan, results: Sequence[LegResult], inputs: SecondStageInputs, req: StudyRequest
) -> SecondStage:
    """Groups, regression and abnormal volume on the fitted legs."""
    import pandas as pd

    from analysis.groups import fit_groups
    from analysis.regression import regress_result
    from analysis.volume import abnormal_volume

    out = SecondStage()
    by_name = {lr.leg.name: lr for lr in results}
    if req.by_group:
        for lr in results:
            held = set(lr.leg.assets)
            groups = {
                g: m
                for g, m in inputs.groups.items()
                if lr.leg.name == "tokens" or held.intersection(m)
            }
            if not groups:
                continue
            # the placebo of each group as the leg's own (flows.services.study.leg_placebo):
            # same history, same catalog windows, only when the leg has one
            history = lr.leg.panel if lr.leg.placebo_panel is None else lr.leg.placebo_panel
            gr = fit_groups(
                lr.leg.study,
                _fit_panel(lr.leg.panel),
                groups,
                lr.result,
                as_of=str(inputs.as_of),
                placebo_prices=_fit_panel(history),
                catalog=plan.catalog,
                with_placebo=lr.placebo is not None,
            )
            out.groups[lr.leg.name] = gr
            out.texts[f"groups:{lr.leg.name}"] = (
                f"=== {lr.leg.title}: by group ===\n{gr.summary().as_text()}"
            )
    if req.regress:
        lr = by_name.get("tokens") or results[0]
        lo, hi = regress_window_label(req.regress_window or DEFAULT_REGRESS_WINDOW)
        panel = lr.leg.panel
        vol = inputs.volumes.get(lr.leg.name)
        if vol is not None:
            panel = panel.drop(columns=["volume_usd"], errors="ignore").merge(
                vol, on=["date", "symbol"], how="left"
            )
        reg = regress_result(
            lr.result,
            panel,
            req.regress.split(","),
            f"[{lo},{hi}]",
            groups=inputs.groups,
            wls=req.wls,
        )
        out.regression, out.regression_leg = reg, lr.leg.name
        table = reg.table.map(lambda v: f"{v: .4f}")
        out.texts["regression"] = (
            f"=== {lr.leg.title}: cross-sectional {reg.method} of CAR[{lo},{hi}] "
            f"(N = {reg.nobs}, HC3 errors, p from t({reg.nobs - len(reg.params)}), "
            f"R-squared {reg.rsquared:.3f}) ===\n"
            f"{table.to_string()}"
            + "".join(
                f"\nLeft out {r.asset} / {r.event}: {r.reason}." for r in reg.dropped.itertuples()
            )
            + "\nCharacteristics: log_cap = ln(market cap at day -6); beta = market-model beta of "
            "the estimation window; pre_return = close(-6)/close(-31) - 1; log_volume = ln(mean "
            "volume_usd over days -30..-6); group:<name> = 1 for members as of "
            f"{inputs.as_of}."
        )
    if req.measure == "volume":
        for lr in results:
            spec = lr.result.spec
            vol = inputs.volumes.get(
                lr.leg.name, pd.DataFrame(columns=["date", "symbol", "volume_usd"])
            )
            vr = abnormal_volume(
                lr.result.params,
                vol,
                estimation_window=spec["estimation_window"],
                event_window=spec["event_window"],
                windows=spec["car_windows"],
                interval=spec.get("interval", "1d"),
            )
            out.volume[lr.leg.name] = vr
            out.texts[f"volume:{lr.leg.name}"] = (
                f"=== {lr.leg.title}: abnormal volume ===\n{vr.summary().as_text()}"
            )
    if req.measure == "volume" and not any(v.abnormal for v in out.volume.values()):
        why = "; ".join(
            f"{r.asset}: {r.reason}" for v in out.volume.values() for r in v.excluded.itertuples()
        )
        raise InputError(
            f"--measure volume: no asset has USD volume over the estimation window ({why}); "
            "import or ingest prices with volume first"
        )
    return out


def _fit_panel(panel: pd.DataFrame) -> pd.DataFrame:
    return panel[["date", "symbol", "close", "market_cap", "asset_class"]]


__all__ = [
    "DEFAULT_REGRESS_WINDOW",
    "MEASURES",
    "SecondStage",
    "check_request",
    "load_inputs",
    "run",
    "wants_second_stage",
]
