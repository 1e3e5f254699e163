"""The event-study model: specification and estimation (``EventStudy(...).fit(data)``).

The model checks its specification when built and is reusable; :meth:`EventStudy.fit` turns a
price (or return) panel into a read-only :class:`~analysis.results.EventStudyResult`. All
asset-event pairs are estimated at once on ``(pairs x days)`` arrays, each pair on its own
calendar with its own estimation window, counted in its own sessions relative to its own day 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis import crosssection, cstests
from analysis.calendars import (
    HOURLY,
    INTERVALS,
    EventMapping,
    calendar_for,
    event_policy,
    is_date_only,
    session_label,
)
from analysis.errors import (
    AssetsExcludedWarning,
    EventStudyInputError,
    InsufficientHistoryError,
    UnknownAssetError,
    WindowOutsideDataError,
)
from analysis.events import Event, as_event
from analysis.factor_model import FactorFit, check_factors, first_factor, gather_factors
from analysis.models import MODELS, ModelFit, fit_model, window_sums
from analysis.panel import (
    CalendarPanel,
    WideData,
    build_panel,
    fingerprint,
    read_prices,
    read_returns,
)
from analysis.results import EventStudyResult
from analysis.returns import RETURN_KINDS
from analysis.statistics import pvalue_t

DEFAULT_ESTIMATION_WINDOW = (-120, -11)
DEFAULT_EVENT_WINDOW = (-5, 10)
DEFAULT_CAR_WINDOWS: tuple[tuple[int, int], ...] = (
    (0, 0),
    (0, 1),
    (-1, 1),
    (0, 3),
    (0, 5),
    (0, 10),
    (-5, 10),
)
DEFAULT_BENCHMARKS: dict[str, str] = {"ai_token": "BTC", "crypto": "BTC", "equity": "SPY"}
"""Benchmark per asset class: tokens against BTC, equities against SPY (override per class or
symbol, e.g. ``benchmarks={"ai_token": "CRYPTO_CAP", "NVDA": "QQQ"}``)."""
BENCHMARK_CLASSES = frozenset({"crypto_benchmark", "equity_benchmark"})
SPEC_VERSION = 1


def _window(value: Sequence[int], what: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise EventStudyInputError(
            f"The {what} must be two integers (first, last day), not {value!r}."
        ) from None
    if lo > hi:
        raise EventStudyInputError(f"The {what} [{lo}, {hi}] starts after it ends.")
    return lo, hi


def _label(lo: int, hi: int) -> str:
    return f"[{lo},{hi}]"


def _nat_bounds(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last non-NaT date of each row of ascending dates (NaT rows: empty interval)."""
    valid = ~np.isnat(dates)
    first = valid.argmax(axis=1)
    last = dates.shape[1] - 1 - valid[:, ::-1].argmax(axis=1)
    rows = np.arange(dates.shape[0])
    none = ~valid.any(axis=1)
    lo = np.where(none, np.datetime64("2262-01-01"), dates[rows, first])
    hi = np.where(none, np.datetime64("1678-01-01"), dates[rows, last])
    return lo, hi


def _gather_rows(
    values: np.ndarray, rows: np.ndarray, c0: np.ndarray, width: int, n_s: int
) -> np.ndarray:
    """Columns ``c0[e] .. c0[e] + width - 1`` of rows ``rows`` of a panel ``(k, S + 1)`` for every
    event ``e``, as ``(events * len(rows), width)`` (column ``n_s``, all NaN, outside the data).
    One event whose window lies inside the data and a run of rows give a view."""
    m = rows.size
    run = m > 0 and rows[-1] - rows[0] == m - 1 and bool((np.diff(rows) == 1).all())
    vt = values[int(rows[0]) : int(rows[0]) + m] if run else np.take(values, rows, axis=0)
    starts = c0.tolist()
    if len(starts) == 1 and starts[0] >= 0 and starts[0] + width <= n_s:
        return vt[:, starts[0] : starts[0] + width]
    out = np.empty((len(starts), m, width))
    for e, c in enumerate(starts):
        if c >= 0 and c + width <= n_s:
            out[e] = vt[:, c : c + width]
        else:
            cols = c + np.arange(width)
            out[e] = vt[:, np.where((cols >= 0) & (cols < n_s), cols, n_s)]
    return out.reshape(-1, width)


class EventStudy:
    """Event study of abnormal returns around one or several events.

    Parameters
    ----------
    events
        Events (:class:`~analysis.events.Event`, dates, timezone-aware timestamps or dicts).
    model
        ``"market"`` (OLS market model, default), ``"market_adjusted"`` or ``"constant_mean"``.
    estimation_window, event_window
        Inclusive day ranges relative to day 0, counted in each asset's own sessions.
        Defaults ``(-120, -11)`` and ``(-5, 10)``; the estimation window must end before the event
        window starts.
    car_windows
        CAR windows inside the event window; default ``[0,0] [0,1] [-1,1] [0,3] [0,5] [0,10]
        [-5,10]``.
    benchmarks
        Benchmark symbol per asset class or per symbol (symbol keys win). Default
        :data:`DEFAULT_BENCHMARKS`.
    calendars
        Calendar code per asset class or symbol; default from
        :func:`analysis.calendars.calendar_for`.
    assets
        Symbols to study; default every symbol whose class is not a ``*_benchmark``.
    return_kind
        ``"simple"`` or ``"log"`` returns from closes (ignored when returns are given).
    convention
        ``"textbook"`` (default) or ``"estudy2"``; see the module notes of
        :mod:`analysis.results` for the three places where they differ.
    min_estimation_obs
        Minimum estimation returns for a pair to be kept; default half the estimation window (at
        least 10). Pairs below it are excluded with the reason in ``result.excluded``.
    confounders
        Events that are not studied but are flagged when they fall inside a pair's event window
        (e.g. NVIDIA's results on 2024-02-21 after the close).
    portfolios
        Also estimate equal- and cap-weighted portfolios per event and asset class (robustness).
    tests
        Cross-sectional tests to compute (codes of :data:`analysis.cstests.TESTS`); all by
        default. They are computed and reported in the registry's order.
    interval
        The clock: ``"1d"`` (default; sessions are UTC days for crypto, exchange sessions for
        equities) or ``"1h"`` (24/7 assets on every UTC hour, :data:`analysis.calendars.HOURLY`).
        On the hourly clock every window counts hours, the price frame's ``date`` (or ``ts``)
        is the hour's UTC close time, and hour 0 of an event at instant ``t`` is the return over
        ``[floor_hour(t), floor_hour(t) + 1h)``; each studied event needs its time of day.
        Models, variances and tests are the daily ones, unchanged (MacKinlay 1997 counts
        periods, not days). Equities have no hourly calendar: they stay daily.
    """

    def __init__(
        self,
        events: Iterable[Any],
        *,
        model: str = "market",
        estimation_window: Sequence[int] = DEFAULT_ESTIMATION_WINDOW,
        event_window: Sequence[int] = DEFAULT_EVENT_WINDOW,
        car_windows: Iterable[Sequence[int]] = DEFAULT_CAR_WINDOWS,
        benchmarks: Mapping[str, str] | None = None,
        calendars: Mapping[str, str] | None = None,
        assets: Sequence[str] | None = None,
        return_kind: str = "simple",
        convention: str = "textbook",
        min_estimation_obs: int | None = None,
        confounders: Iterable[Any] = (),
        portfolios: bool = True,
        tests: Iterable[str] | None = None,
        interval: str = "1d",
        factors: Sequence[str] = (),
    ) -> None:
        if interval not in INTERVALS:
            raise EventStudyInputError(
                f"Interval {interval!r} is unknown; use one of {', '.join(INTERVALS)}."
            )
        self.interval = interval
        if isinstance(events, Event | str):
            events = [events]
        self.events: tuple[Event, ...] = tuple(as_event(e) for e in events)
        if not self.events:
            raise EventStudyInputError("An event study needs at least one event.")
        if interval == "1h":
            dated = [e.name for e in self.events if is_date_only(e.when)]
            if dated:
                raise EventStudyInputError(
                    f"An hourly study needs the time of day of each event; {', '.join(dated)} "
                    "only has a date. Give a timezone-aware timestamp such as "
                    "'2024-02-15T18:00Z'."
                )
        names = [e.name for e in self.events]
        if len(set(names)) != len(names):
            raise EventStudyInputError(f"Event names must be unique; got {names}.")
        if model not in MODELS:
            raise EventStudyInputError(
                f"Model {model!r} is unknown; use one of {', '.join(MODELS)}."
            )
        if return_kind not in RETURN_KINDS:
            raise EventStudyInputError(
                f"Return kind {return_kind!r} is unknown; use simple or log."
            )
        if convention not in ("textbook", "estudy2"):
            raise EventStudyInputError(
                f"Convention {convention!r} is unknown; use 'textbook' or 'estudy2'."
            )
        self.model = model
        self.factors = check_factors(model, factors)
        self.estimation_window = _window(estimation_window, "estimation window")
        self.event_window = _window(event_window, "event window")
        if self.estimation_window[1] >= self.event_window[0]:
            raise EventStudyInputError(
                f"The estimation window {list(self.estimation_window)} must end before the event "
                f"window {list(self.event_window)} starts, so that event days do not bias the "
                "model."
            )
        self.car_windows = tuple(_window(w, "CAR window") for w in car_windows)
        for lo, hi in self.car_windows:
            if lo < self.event_window[0] or hi > self.event_window[1]:
                raise EventStudyInputError(
                    f"CAR window [{lo}, {hi}] lies outside the event window "
                    f"{list(self.event_window)}; widen the event window or drop the CAR window."
                )
        l1 = self.estimation_window[1] - self.estimation_window[0] + 1
        self.min_estimation_obs = (
            max(10, math.ceil(l1 / 2)) if min_estimation_obs is None else int(min_estimation_obs)
        )
        if self.min_estimation_obs > l1:
            raise EventStudyInputError(
                f"min_estimation_obs={self.min_estimation_obs} exceeds the {l1} days of the "
                "estimation window."
            )
        if self.min_estimation_obs < 5:
            raise EventStudyInputError(
                "min_estimation_obs must be at least 5: Patell's variance needs L1 - 2 > 2."
            )
        self.benchmarks = dict(
            DEFAULT_BENCHMARKS if benchmarks is None else {**DEFAULT_BENCHMARKS, **benchmarks}
        )
        self.calendars = dict(calendars or {})
        if interval == "1h":
            daily = {k: v for k, v in self.calendars.items() if v != HOURLY}
            if daily:
                raise EventStudyInputError(
                    f"An hourly study runs every asset on the {HOURLY!r} calendar; "
                    f"{', '.join(f'{k}={v}' for k, v in daily.items())} is a daily calendar."
                )
        self.assets = None if assets is None else [str(a) for a in assets]
        self.return_kind = return_kind
        self.convention = convention
        self.confounders: tuple[Event, ...] = tuple(as_event(e) for e in confounders)
        self.portfolios = bool(portfolios)
        self.tests = tuple(cstests.TESTS) if tests is None else tuple(tests)
        unknown = [t for t in self.tests if t not in cstests.TESTS]
        if unknown:
            raise EventStudyInputError(
                f"Unknown test(s) {', '.join(unknown)}; choose from {', '.join(cstests.TESTS)}."
            )

    # ------------------------------------------------------------------ specification
    @property
    def spec(self) -> dict[str, Any]:
        """The full specification as a JSON-serialisable dict (see :meth:`from_spec`)."""
        policy, policy_text = event_policy(self.interval)
        return {
            "spec_version": SPEC_VERSION,
            "model": self.model,
            "estimation_window": list(self.estimation_window),
            "event_window": list(self.event_window),
            "car_windows": [list(w) for w in self.car_windows],
            "benchmarks": dict(self.benchmarks),
            "calendars": dict(self.calendars),
            "assets": None if self.assets is None else list(self.assets),
            "return_kind": self.return_kind,
            "convention": self.convention,
            "min_estimation_obs": self.min_estimation_obs,
            "events": [e.to_dict() for e in self.events],
            "confounders": [e.to_dict() for e in self.confounders],
            "portfolios": self.portfolios,
            "tests": list(self.tests),
            "interval": self.interval,
            **({"factors": list(self.factors)} if self.factors else {}),
            "event_policy": policy,
            "event_policy_text": policy_text,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> EventStudy:
        """Rebuild a study from :attr:`spec` (or the ``spec`` stored by ``to_json``)."""
        if spec.get("spec_version", SPEC_VERSION) != SPEC_VERSION:
            raise EventStudyInputError(
                f"Spec version {spec.get('spec_version')} is not supported "
                f"(expected {SPEC_VERSION})."
            )
        return cls(
            spec["events"],
            model=spec["model"],
            estimation_window=spec["estimation_window"],
            event_window=spec["event_window"],
            car_windows=spec["car_windows"],
            benchmarks=spec.get("benchmarks"),
            calendars=spec.get("calendars"),
            assets=spec.get("assets"),
            return_kind=spec.get("return_kind", "simple"),
            convention=spec.get("convention", "textbook"),
            min_estimation_obs=spec.get("min_estimation_obs"),
            confounders=spec.get("confounders", ()),
            portfolios=spec.get("portfolios", True),
            tests=spec.get("tests"),
            interval=spec.get("interval", "1d"),
            factors=spec.get("factors", ()),
        )

    def __repr__(self) -> str:
        names = ", ".join(e.name for e in self.events)
        return (
            f"EventStudy(events=[{names}], model={self.model!r}, "
            f"estimation_window={self.estimation_window}, event_window={self.event_window}"
            + (", interval='1h')" if self.interval == "1h" else ")")
        )

    # ------------------------------------------------------------------ resolution helpers
    def _resolve(
        self, sym: str, classes: Mapping[str, str], table: Mapping[str, str]
    ) -> str | None:
        if sym in table:
            return table[sym]
        return table.get(classes[sym])

    def _calendar_of(self, sym: str, classes: Mapping[str, str]) -> str:
        cal = self._resolve(sym, classes, self.calendars)
        return cal if cal is not None else calendar_for(classes[sym], self.interval)

    def read_inputs(
        self,
        prices: pd.DataFrame | None,
        meta: Mapping[str, str] | pd.DataFrame | pd.Series | None,
        *,
        returns: pd.DataFrame | None,
        caller: str,
    ) -> tuple[Any, dict[str, str], list[str]]:
        """The panel, each symbol's asset class and the studied assets, from ``prices`` or
        ``returns`` as :meth:`fit` takes them: one reading shared by every consumer of the
        same inputs (the fit, the placebo distribution), so they cannot disagree on the data."""
        if (prices is None) == (returns is None):
            raise EventStudyInputError(
                f"Give either prices or returns to {caller}, not both or none."
            )
        hourly = self.interval == "1h"
        if prices is not None:
            if hourly and "date" not in prices.columns and "ts" in prices.columns:
                prices = prices.rename(columns={"ts": "date"})
            data = read_prices(prices, hourly=hourly)
            if meta is None and "asset_class" in prices.columns:
                meta = prices.groupby("symbol")["asset_class"].first()
        else:
            data = read_returns(returns, hourly=hourly)
        classes = _read_meta(meta)
        return data, classes, self._select_assets(list(data.symbols), classes)

    # ------------------------------------------------------------------ estimation
    def fit(
        self,
        prices: pd.DataFrame | None = None,
        meta: Mapping[str, str] | pd.DataFrame | pd.Series | None = None,
        *,
        returns: pd.DataFrame | None = None,
    ) -> EventStudyResult:
        """Estimate the study on a price or return panel.

        Parameters
        ----------
        prices
            Long closes: ``date`` (naive = UTC day; on the hourly clock the hour's UTC close
            time, also accepted as ``ts``), ``symbol``, ``close``, optional ``market_cap`` (for
            cap weights) and ``asset_class``.
        meta
            Asset class per symbol (mapping, Series, or frame with ``symbol`` and ``asset_class``);
            taken from ``prices["asset_class"]`` when omitted.
        returns
            Instead of ``prices``: precomputed returns, wide (dates x symbols) or long
            (``date``, ``symbol``, ``ret``), already on each asset's calendar.

        Returns
        -------
        EventStudyResult

        Raises
        ------
        EventStudyInputError
            (or a subclass) when columns, symbols, benchmarks or windows do not fit the data.
        """
        data, classes, assets = self.read_inputs(prices, meta, returns=returns, caller="fit()")
        pairs = gather(resolve(self, data, classes, assets))
        sample = exclude(pairs)
        cols = columns(self)
        est = estimate(pairs, sample, cols)
        degenerate = exclude_degenerate(pairs, sample, est)
        if degenerate is not sample:  # refit without them: one pair set for every test
            sample = degenerate
            est = estimate(pairs, sample, cols)
        warn_excluded(sample)  # stacklevel 3: the caller of fit
        outputs = StudyOutputs(
            pairs,
            sample,
            cols,
            est,
            cross_sectional_tests(pairs, sample, cols, est),
            find_flags(pairs, sample),
            fit_portfolios(pairs, sample, cols),
        )
        return EventStudyResult(outputs)

    def _select_assets(self, symbols: list[str], classes: Mapping[str, str]) -> list[str]:
        if self.assets is None:
            assets = [s for s in sorted(symbols) if classes.get(s) not in BENCHMARK_CLASSES]
        else:
            assets = list(self.assets)
        known = set(symbols)
        if known.issuperset(assets) and classes.keys() >= set(assets):
            unchecked: list[str] = []  # every asset is in the data and has a class
        else:
            unchecked = assets
        for a in unchecked:
            if a not in known:
                raise UnknownAssetError(
                    f"Asset {a!r} is not in the data; available symbols: "
                    f"{', '.join(sorted(known))}."
                )
            if a not in classes:
                raise UnknownAssetError(
                    f"Asset {a!r} has no asset class; add it to meta (symbol -> asset_class)."
                )
        if not assets:
            raise EventStudyInputError(
                "No asset to study: every symbol is a benchmark. Pass assets=[...] or meta."
            )
        return assets


def _read_meta(meta: Any) -> dict[str, str]:
    if meta is None:
        raise EventStudyInputError(
            "Asset classes are missing: pass meta={symbol: asset_class} or an asset_class column."
        )
    if isinstance(meta, pd.DataFrame):
        if not {"symbol", "asset_class"} <= set(meta.columns):
            raise EventStudyInputError("The meta frame needs columns symbol and asset_class.")
        meta = dict(zip(meta["symbol"], meta["asset_class"], strict=True))
    out = dict(meta)
    if set(map(type, out)) <= {str} and set(map(type, out.values())) <= {str}:
        return out  # already text: no per-item conversion
    return {str(k): str(v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Estimation in phases: each is a function of the frozen outputs of the phases before it and
# returns its own frozen output, so no phase can run before its inputs exist (resolve raises on
# unknown benchmarks; exclude warns about, or raises on, pairs without data).
#
#   resolve -> gather -> exclude -> estimate -> cross_sectional_tests / find_flags / fit_portfolios
#   (columns comes from the specification alone)
#
# Pair arrays have one row per asset-event pair (ordered by event, then asset) and one column per
# day from the first estimation day to the last event day. Dates are not stored per pair: a pair
# is its calendar and the panel row ``r0`` of its first estimation day, so any date is
# ``sessions[r0 + column]``, computed when an output asks for it. The phases compute every
# number; the labelled frames of the result are built when first read (:class:`StudyOutputs`).


@dataclass(frozen=True, eq=False)
class Setup:
    """Phase 1 (:func:`resolve`): calendar and benchmark of every asset, one return panel per
    calendar, and day 0 of every event on every calendar."""

    study: EventStudy
    data: WideData
    classes: dict[str, str]
    assets: list[str]
    cal: dict[str, str]
    bench: dict[str, str | None]
    panels: dict[str, CalendarPanel]
    mappings: dict[tuple[str, str], EventMapping]


def resolve(study: EventStudy, data: WideData, classes: dict[str, str], assets: list[str]) -> Setup:
    """Resolve calendars and benchmarks (symbol keys win over class keys) and build the panels.

    Raises
    ------
    UnknownAssetError
        When an asset has no benchmark or its benchmark is not in the data.
    """
    s = study
    known = data.position
    cls_of = [classes[a] for a in assets]

    def per_asset(
        table: Mapping[str, Any], by_class: Callable[[str], Any], own: Callable[[str, str], Any]
    ) -> list[Any]:
        """Symbol keys win; otherwise one lookup per asset class (in order of appearance), not
        per asset."""
        over = table.keys() & set(assets) if table else set()
        need = (
            dict.fromkeys(c for a, c in zip(assets, cls_of, strict=True) if a not in over)
            if over
            else dict.fromkeys(cls_of)
        )
        per = {c: by_class(c) for c in need}
        if not over:
            return list(map(per.__getitem__, cls_of))
        return [own(a, c) if a in over else per[c] for a, c in zip(assets, cls_of, strict=True)]

    def cal_by_class(c: str) -> str:
        v = s.calendars.get(c)
        return v if v is not None else calendar_for(c, s.interval)

    def cal_own(a: str, c: str) -> str:
        v = s.calendars[a]
        return v if v is not None else calendar_for(c, s.interval)

    cal: dict[str, str] = dict(
        zip(assets, per_asset(s.calendars, cal_by_class, cal_own), strict=True)
    )
    if s.model == "constant_mean":
        benches: list[str | None] = [None] * len(assets)
    elif s.factors:  # factor model: the first factor stands in the benchmark's place
        benches = [s.factors[0]] * len(assets)
        missing = [f for f in s.factors if f not in known]
        if missing:
            raise UnknownAssetError(
                f"Factor {missing[0]!r} is not in the data; add its closes or choose other factors."
            )
    else:
        benches = per_asset(s.benchmarks, s.benchmarks.get, lambda a, c: s.benchmarks[a])
        bad = {b for b in set(benches) if b is None or b not in known}
        for a, b in zip(assets, benches, strict=True):
            if b not in bad:
                continue
            if b is None:
                raise UnknownAssetError(
                    f"Asset {a!r} (class {classes[a]!r}) has no benchmark; pass "
                    f"benchmarks={{'{classes[a]}': 'SYMBOL'}}."
                )
            raise UnknownAssetError(
                f"Benchmark {b!r} of {a!r} is not in the data; add its closes or choose "
                "another benchmark with benchmarks={...}."
            )
    bench: dict[str, str | None] = dict(zip(assets, benches, strict=True))
    native = dict(cal)
    for a in assets:
        for b in [bench[a], *s.factors[1:]]:
            if b and b not in native:
                native[b] = s._calendar_of(b, classes) if b in classes else cal[a]
    panels: dict[str, CalendarPanel] = {}
    for c in sorted(set(cal.values())):
        members = [a for a in assets if cal[a] == c]
        benchmarks = [b for a in members if (b := bench[a])] + list(s.factors[1:])
        syms = list(dict.fromkeys(members + benchmarks))
        carry = [f for f in s.factors if native[f] != c]  # a shut market's factor: flat
        panels[c] = build_panel(c, syms, data, native, kind=s.return_kind, carry=carry)
    mappings = {(e.name, c): e.map(c) for e in s.events for c in panels}
    return Setup(s, data, classes, assets, cal, bench, panels, mappings)


@dataclass(frozen=True, eq=False)
class Pairs:
    """Phase 2 (:func:`gather`): the returns of every asset-event pair on its own calendar.

    ``Y`` and ``X`` (asset and benchmark returns) are ``(P, L1 + E)``; the other arrays are per
    pair: event, asset and calendar positions, the panel row ``r0`` of the first estimation day,
    day 0 and whether day 0 lies outside the data.
    """

    setup: Setup
    l1: int
    ev_cols: np.ndarray
    ev_of: np.ndarray
    asset_idx: np.ndarray
    cal_idx: np.ndarray
    r0: np.ndarray
    day0: np.ndarray
    outside: np.ndarray
    outside_text: dict[tuple[int, int], str]
    Y: np.ndarray
    X: np.ndarray
    n_sessions: np.ndarray
    sess_nat: list[np.ndarray]
    y_has_nan: bool
    x_has_nan: bool
    F: np.ndarray | None = None  # (P, L1 + E, K) factor returns, factor model only

    def asset_names(self, pairs: np.ndarray) -> np.ndarray:
        return np.asarray(self.setup.assets, dtype=object)[self.asset_idx[pairs]]

    def event_names(self, pairs: np.ndarray) -> np.ndarray:
        names = [e.name for e in self.setup.study.events]
        return np.asarray(names, dtype=object)[self.ev_of[pairs]]

    def dates(self, pairs: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Session dates of ``pairs`` at gathered columns ``cols`` (NaT outside the data)."""
        out = np.empty((len(pairs), len(cols)), dtype=self.sess_nat[0].dtype)
        cal = self.cal_idx[pairs]
        for ci in np.unique(cal):
            sel = cal == ci
            n_s = self.n_sessions[ci]
            rows = self.r0[pairs[sel]][:, None] + np.asarray(cols)[None, :]
            rows = np.where((rows >= 0) & (rows < n_s), rows, n_s)
            out[sel] = self.sess_nat[ci][rows]
        return out

    def row_bounds(self, pairs: np.ndarray, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """First and last panel row of columns ``c0..c1`` inside the data (empty: lo > hi)."""
        r0 = self.r0[pairs]
        n_s = self.n_sessions[self.cal_idx[pairs]]
        lo = np.maximum(r0 + c0, 0)
        hi = np.minimum(r0 + c1, n_s - 1)
        empty = lo > hi
        return np.where(empty, n_s + 1, lo), np.where(empty, -1, hi)


def gather(setup: Setup) -> Pairs:
    """Cut every pair's estimation and event windows out of its calendar's panel."""
    s = setup.study
    est0, est1 = s.estimation_window
    ev0, ev1 = s.event_window
    width = ev1 - est0 + 1
    cal_arr = np.asarray([setup.cal[a] for a in setup.assets], dtype=object)
    ys: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    fs: list[np.ndarray] = []
    keys = []
    ev_of, asset_of, cal_of, r0_of, day0_of, out_of = [], [], [], [], [], []
    outside_text: dict[tuple[int, int], str] = {}
    for ci, (c, panel) in enumerate(setup.panels.items()):
        mpos = np.flatnonzero(cal_arr == c)
        members = [setup.assets[k] for k in mpos]
        # a panel lists its members first, then their benchmarks (see resolve)
        if panel.symbols[: len(members)] == members:
            acol = np.arange(len(members))
        else:
            acol = panel.columns(members)
        n_s = len(panel.sessions)
        sess = panel.sessions.to_numpy()
        day0 = np.array([setup.mappings[(ev.name, c)].session.to_datetime64() for ev in s.events])
        pos = np.searchsorted(sess, day0.astype(sess.dtype))
        inside = (pos < n_s) & (sess[np.minimum(pos, n_s - 1)] == day0)
        r0 = pos + est0  # panel row of each event's first estimation day
        # one (members x W) slice per event -> pairs ordered by event, then asset
        ys.append(_gather_rows(panel.values, acol, r0, width, n_s))
        if s.model != "constant_mean":
            bcol = panel.columns([b for a in members if (b := setup.bench[a])])
            xs.append(_gather_rows(panel.values, bcol, r0, width, n_s))
        n_e, n_m = len(s.events), len(members)
        if s.factors:
            fs.append(gather_factors(panel, s.factors, r0, width, n_m, _gather_rows))
        ev_of.append(np.repeat(np.arange(n_e), n_m))
        asset_of.append(np.tile(mpos, n_e))
        cal_of.append(np.full(n_e * n_m, ci))
        r0_of.append(np.repeat(r0, n_m))
        day0_of.append(np.repeat(day0, n_m))
        out_of.append(np.repeat(~inside, n_m))
        for ei in np.flatnonzero(~inside):
            outside_text[(int(ei), ci)] = (
                f"{'hour' if c == HOURLY else 'day'} 0 ({session_label(c, day0[ei])}) is "
                f"outside the data of {c} ({session_label(c, panel.sessions[0])} to "
                f"{session_label(c, panel.sessions[-1])})"
            )
        keys.append(np.repeat(np.arange(n_e), n_m) * len(setup.assets) + np.tile(mpos, n_e))
    per_pair = [np.concatenate(v) for v in (ev_of, asset_of, cal_of, r0_of, day0_of, out_of)]
    order = None if len(ys) == 1 else np.argsort(np.concatenate(keys), kind="stable")
    y = ys[0] if order is None else np.vstack(ys)[order]
    if s.model == "constant_mean":
        # the model has no market return: a read-only all-NaN view, no memory
        x = np.broadcast_to(np.float64(np.nan), y.shape)
    else:
        x = xs[0] if order is None else np.vstack(xs)[order]
    f = None
    if fs:
        f = fs[0] if order is None else np.concatenate(fs)[order]
        x = first_factor(f)  # a day counts only when every factor is present
    if order is not None:
        per_pair = [v[order] for v in per_pair]
    ev_of_a, asset_idx, cal_idx, r0_a, day0_a, outside = per_pair
    return Pairs(
        setup=setup,
        l1=est1 - est0 + 1,
        ev_cols=np.arange(ev0 - est0, ev1 - est0 + 1),
        ev_of=ev_of_a,
        asset_idx=asset_idx,
        cal_idx=cal_idx,
        r0=r0_a,
        day0=day0_a,
        outside=outside,
        outside_text=outside_text,
        Y=y,
        X=x,
        n_sessions=np.array([len(p.sessions) for p in setup.panels.values()]),
        sess_nat=[
            np.append(p.sessions.to_numpy(), np.datetime64("NaT")) for p in setup.panels.values()
        ],
        y_has_nan=bool(np.isnan(y).any()),
        x_has_nan=s.model != "constant_mean" and bool(np.isnan(x).any()),
        F=f,
    )


@dataclass(frozen=True, eq=False)
class Sample:
    """Phase 3 (:func:`exclude`): the pairs kept, and the reason of every pair left out."""

    reasons: dict[int, str]
    keep: np.ndarray  # (P,) bool
    kept: np.ndarray  # positions of the kept pairs

    def rows(self, a: np.ndarray) -> np.ndarray:
        """The kept rows of a per-pair array (the array itself when every pair is kept)."""
        return a if self.keep.all() else a[self.keep]


def exclude(pairs: Pairs) -> Sample:
    """Leave out pairs without day 0 in the data, without a return on day 0, or with fewer
    estimation returns than ``min_estimation_obs``; raise when all are (``fit`` warns once,
    after :func:`exclude_degenerate`)."""
    s = pairs.setup.study
    assets = pairs.setup.assets
    need_x = s.model != "constant_mean"
    n_pairs = len(pairs.Y)
    if pairs.y_has_nan or pairs.x_has_nan:
        ok_est = ~np.isnan(pairs.Y[:, : pairs.l1])
        if need_x:
            ok_est &= ~np.isnan(pairs.X[:, : pairs.l1])
        n_est = ok_est.sum(axis=1)
    else:  # nothing missing: every estimation day counts
        n_est = np.full(n_pairs, pairs.l1)
    est0 = s.estimation_window[0]
    # column of day 0 in the gathered window (None when the event window excludes day 0)
    d0 = -est0 if s.event_window[0] <= 0 <= s.event_window[1] else None
    no_y = np.isnan(pairs.Y[:, d0]) if d0 is not None else np.zeros(n_pairs, bool)
    no_x = np.isnan(pairs.X[:, d0]) if d0 is not None and need_x else np.zeros(n_pairs, bool)
    short = n_est < s.min_estimation_obs
    reasons: dict[int, str] = {}
    for p in np.flatnonzero(no_y | no_x | short | pairs.outside).tolist():
        a = assets[pairs.asset_idx[p]]
        cal = list(pairs.setup.panels)[int(pairs.cal_idx[p])]
        day0 = session_label(cal, pairs.day0[p])
        zero = "hour 0" if cal == HOURLY else "day 0"
        if pairs.outside[p]:
            reasons[p] = pairs.outside_text[(int(pairs.ev_of[p]), int(pairs.cal_idx[p]))]
        elif no_y[p]:
            reasons[p] = f"no return of {a} on {zero} ({day0})"
        elif no_x[p]:
            reasons[p] = f"no return of benchmark {pairs.setup.bench[a]} on {zero} ({day0})"
        else:
            est_dates = pairs.dates(np.array([p]), np.arange(pairs.l1))[0]
            known = est_dates[~np.isnat(est_dates)]
            span = (
                f"[{session_label(cal, known[0])}, {session_label(cal, known[-1])}]"
                if known.size
                else "(no sessions)"
            )
            reasons[p] = (
                f"only {int(n_est[p])} estimation returns in {span}; "
                f"{s.min_estimation_obs} required"
            )
    keep = np.ones(n_pairs, dtype=bool)
    keep[list(reasons)] = False
    if not keep.any():
        names = pairs.event_names(np.arange(n_pairs))
        detail = "; ".join(
            f"{assets[pairs.asset_idx[p]]}/{names[p]}: {reasons[p]}" for p in range(n_pairs)
        )
        err = WindowOutsideDataError if pairs.outside.all() else InsufficientHistoryError
        raise err(
            "No asset-event pair has the data the study needs, so nothing can be estimated. "
            f"Reasons: {detail}."
        )
    return Sample(reasons, keep, np.flatnonzero(keep))


DEGENERATE_RATIO = 1e-10
"""A pair whose estimation residual variance is at most this fraction of its mean squared return
is degenerate (see :func:`exclude_degenerate`)."""


def exclude_degenerate(pairs: Pairs, sample: Sample, est: Estimates) -> Sample:
    """Leave out pairs whose estimation residuals have zero, non-finite or degenerate variance.

    Such a pair (a price that never moves, an asset that is its benchmark or a fixed multiple of
    it) has no standardized abnormal return: Patell, BMP and KP would drop it (division by
    zero) while the cross-sectional t, the sign and the rank tests kept it, so the tests of one
    window would use different pairs. Degenerate: :math:`\\hat\\sigma^2 \\le 10^{-10}` times
    the pair's mean squared estimation return (rounding noise of a perfect fit), or not finite.
    Returns ``sample`` itself when no pair is degenerate, else the smaller sample with the
    reasons; raises when no pair is left.
    """
    sigma2 = est.fit.sigma2
    y = sample.rows(pairs.Y)[:, : pairs.l1]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanmean(y * y, axis=1)
    bad = ~np.isfinite(sigma2) | (sigma2 <= DEGENERATE_RATIO * np.nan_to_num(scale))
    if not bad.any():
        return sample
    reasons = dict(sample.reasons)
    for k in np.flatnonzero(bad).tolist():
        p = int(sample.kept[k])
        sd = float(np.sqrt(sigma2[k])) if np.isfinite(sigma2[k]) else float("nan")
        reasons[p] = (
            f"zero or degenerate residual variance in the estimation window (sigma = {sd:.3g}): "
            "its standardized abnormal returns are undefined"
        )
    keep = sample.keep.copy()
    keep[sample.kept[bad]] = False
    if not keep.any():
        assets, names = pairs.setup.assets, pairs.event_names(np.arange(len(keep)))
        detail = "; ".join(
            f"{assets[pairs.asset_idx[p]]}/{names[p]}: {r}" for p, r in sorted(reasons.items())
        )
        raise InsufficientHistoryError(
            f"No asset-event pair has a usable normal-return model. Reasons: {detail}."
        )
    return Sample(reasons, keep, np.flatnonzero(keep))


def warn_excluded(sample: Sample) -> None:
    """One warning when some pairs were left out (the reasons are in ``result.excluded``)."""
    keep = sample.keep
    if not keep.all():
        warnings.warn(
            f"{int((~keep).sum())} of {len(keep)} asset-event pairs were excluded; "
            "see result.excluded for the reasons.",
            AssetsExcludedWarning,
            stacklevel=3,  # the caller of EventStudy.fit
        )


@dataclass(frozen=True, eq=False)
class Columns:
    """The output columns: each event day ``[t, t]``, then each CAR window."""

    bounds: list[tuple[int, int]]
    kinds: list[str]  # "day" | "car"
    labels: list[str]  # "-1", "0", "+1", ..., "[0,1]", ...
    wm: np.ndarray  # (E, C) 0/1 day membership of each column

    @property
    def n_car(self) -> int:
        return self.kinds.count("car")


def columns(study: EventStudy) -> Columns:
    """The columns of a study (from its specification alone)."""
    ev0, ev1 = study.event_window
    days = list(range(ev0, ev1 + 1))
    bounds = [(d, d) for d in days] + list(study.car_windows)
    wm = np.zeros((len(days), len(bounds)))
    for c, (lo, hi) in enumerate(bounds):
        wm[lo - ev0 : hi - ev0 + 1, c] = 1.0
    kinds = ["day"] * len(days) + ["car"] * len(study.car_windows)
    labels = [f"{d:+d}" if d else "0" for d in days] + [_label(*w) for w in study.car_windows]
    return Columns(bounds, kinds, labels, wm)


@dataclass(frozen=True, eq=False)
class Estimates:
    """Phase 4 (:func:`estimate`): the model fit and the (cumulative) abnormal returns of the kept
    pairs with their forecast-error-corrected variances."""

    fit: ModelFit
    ar: np.ndarray  # (P_kept, E)
    ar_var: np.ndarray  # (P_kept, E)
    car: np.ndarray  # (P_kept, C)
    car_var: np.ndarray  # (P_kept, C)
    lamb_q: np.ndarray | None  # (P_kept, E) (R_m - mu_m)^2 / S_mm, market model only


def estimate(pairs: Pairs, sample: Sample, cols: Columns) -> Estimates:
    """Fit the normal-return model of every kept pair at once; ARs, CARs and their variances."""
    s = pairs.setup.study
    y, x = sample.rows(pairs.Y), sample.rows(pairs.X if pairs.F is None else pairs.F)
    fit: ModelFit = fit_model(
        s.model, y[:, : pairs.l1], x[:, : pairs.l1], convention=_convention(s)
    )
    e0, e1 = int(pairs.ev_cols[0]), int(pairs.ev_cols[-1]) + 1
    y_ev, x_ev = y[:, e0:e1], x[:, e0:e1]
    ar = y_ev - fit.predict(x_ev)
    ar_nan = np.isnan(ar)
    any_nan = bool(ar_nan.any())
    ar_var = fit.ar_variance(x_ev)
    ar_var = np.where(ar_nan, np.nan, ar_var) if any_nan else ar_var
    car = window_sums(np.nan_to_num(ar) if any_nan else ar, cols.wm)
    car_var = fit.car_variance(x_ev, cols.wm)
    if any_nan:
        missing = window_sums(ar_nan.astype(float), cols.wm) > 0
        car = np.where(missing, np.nan, car)
        car_var = np.where(missing, np.nan, car_var)
    lamb_q = (
        (x_ev - fit.fe_mean[:, None]) ** 2 / fit.fe_sxx[:, None] if s.model == "market" else None
    )
    if isinstance(fit, FactorFit):
        lamb_q = fit.lamb_q(x_ev)
    return Estimates(fit, ar, ar_var, car, car_var, lamb_q)


def _convention(study: EventStudy) -> Literal["textbook", "estudy2"]:
    return "estudy2" if study.convention == "estudy2" else "textbook"


def cross_sectional_tests(
    pairs: Pairs, sample: Sample, cols: Columns, est: Estimates
) -> crosssection.TestTable:
    """Phase 5: the study's tests over all pairs, each event and each asset class."""
    s = pairs.setup.study
    kept = sample.kept
    ev_idx = pairs.ev_of[kept]

    def aligned(idx: np.ndarray) -> bool:
        """Whether kept pairs ``idx`` share every estimation date."""
        sel = kept[idx]
        cal, r0 = pairs.cal_idx[sel], pairs.r0[sel]
        if not ((cal == cal[0]).all() and (r0 == r0[0]).all()):
            return False
        return bool(r0[0] >= 0 and r0[0] + pairs.l1 <= pairs.n_sessions[cal[0]])

    blocks = (
        crosssection.residual_correlation_blocks(
            est.fit.resid,
            lambda idx: pairs.dates(kept[idx], np.arange(pairs.l1)),
            ev_idx,
            aligned=aligned,
        )
        if "kp_bmp" in s.tests
        else []
    )
    inp = crosssection.CrossSectionInput(
        car=est.car,
        car_var=est.car_var,
        dof=est.fit.df,
        nobs=est.fit.nobs,
        resid_est=est.fit.resid,
        ar_event=est.ar,
        windows=cols.wm,
        corr_blocks=blocks,
        lamb_q=est.lamb_q,
        convention=s.convention,
    )
    parts = [crosssection.Partition.single("all", kept.size)]
    if len(s.events) > 1:
        present, codes = np.unique(ev_idx, return_inverse=True)
        parts.append(crosssection.Partition([f"event={s.events[e].name}" for e in present], codes))
    classes = pairs.setup.classes
    class_of_asset = np.asarray([classes[a] for a in pairs.setup.assets], dtype=object)
    names, codes = np.unique(class_of_asset[pairs.asset_idx[kept]], return_inverse=True)
    if len(names) > 1:
        parts.append(crosssection.Partition([f"class={c}" for c in names], codes))
    return cstests.run_tests(
        inp,
        cstests.select(s.tests),
        parts,
        cols.labels,
        cols.kinds,
        cols.bounds,
        _overlapping_pools(pairs, sample, parts),
    )


def _overlapping_pools(
    pairs: Pairs, sample: Sample, parts: Sequence[crosssection.Partition]
) -> list[tuple[np.ndarray, str] | None] | None:
    """Groups that would pool events whose event windows overlap in calendar time.

    The pooled tests treat pairs of different events as independent (KP's correlation of two
    events' pairs is 0), but when the windows overlap (Sora on 2024-02-15 and NVIDIA's results
    on 2024-02-21) the same market days enter both, the abnormal returns are cross-correlated,
    and the pooled p-value is smaller than either event's alone. Such groups are refused with
    the reason; each event's own group (``event=...``) is computed as usual.
    """
    s = pairs.setup.study
    if len(s.events) < 2:
        return None
    kept = sample.kept
    ev = pairs.ev_of[kept]
    lo, hi = _nat_bounds(pairs.dates(kept, pairs.ev_cols))
    names = [e.name for e in s.events]
    n_ev = len(s.events)
    first = np.full(n_ev, np.datetime64("2262-01-01"), dtype=lo.dtype)
    last = np.full(n_ev, np.datetime64("1678-01-01"), dtype=hi.dtype)
    np.minimum.at(first, ev, lo)
    np.maximum.at(last, ev, hi)
    meets = (first[:, None] <= last[None, :]) & (first[None, :] <= last[:, None])
    a_idx, b_idx = np.nonzero(np.triu(meets, k=1))
    if not a_idx.size:
        return None
    linked = list(zip(a_idx.tolist(), b_idx.tolist(), strict=True))
    out: list[tuple[np.ndarray, str] | None] = []
    for part in parts:
        groups = np.zeros(len(part.names), dtype=bool)
        text = ""
        for a, b in linked:
            has_a = np.bincount(part.codes[ev == a], minlength=len(part.names)) > 0
            has_b = np.bincount(part.codes[ev == b], minlength=len(part.names)) > 0
            both = has_a & has_b
            if both.any() and not text:
                text = (
                    f"pools events {names[a]} and {names[b]} whose event windows overlap in "
                    "calendar time (their abnormal returns share market days, which the pooled "
                    "tests would treat as independent): see each event's own group"
                )
            groups |= both
        out.append((groups, text) if groups.any() else None)
    return out


@dataclass(frozen=True, eq=False)
class _Overlaps:
    """Assets with several kept pairs whose windows overlap, as ``(A, M, M)`` interval tests."""

    order: np.ndarray  # assets in order of their first pair
    assets: np.ndarray  # asset positions, sorted (the rows of the arrays)
    event_windows: np.ndarray  # (A, M, M) event window of slot i overlaps that of slot j
    estimation_only: np.ndarray  # (A, M, M) estimation window of i holds day 0 of j (only)
    flagged: np.ndarray  # (A, M)
    slot_pair: np.ndarray  # (A, M) kept position of each slot (NaN: none)


@dataclass(frozen=True, eq=False)
class Flags:
    """Phase 5 (:func:`find_flags`): confounders inside event windows and overlapping windows of
    one asset; the text is written by :meth:`frame`."""

    pairs: Pairs
    sample: Sample
    confounder_hits: list[tuple[Event, np.ndarray, np.ndarray]]  # (event, kept hits, day)
    overlaps: _Overlaps | None

    def frame(self) -> pd.DataFrame:
        """``event, asset, flag, detail`` per flagged kept pair."""
        pairs, kept = self.pairs, self.sample.kept
        ev0 = pairs.setup.study.event_window[0]
        cal_names = list(pairs.setup.panels)
        rows = []
        ev_names = pairs.event_names(kept)
        as_names = pairs.asset_names(kept)
        for conf, hits, hit_day in self.confounder_hits:
            sessions_by_cal = {c: conf.map(c).session for c in pairs.setup.panels}
            for k in hits:
                cal = cal_names[pairs.cal_idx[kept[k]]]
                sess = sessions_by_cal[cal]
                rows.append(
                    {
                        "event": ev_names[k],
                        "asset": as_names[k],
                        "flag": "confounder",
                        "detail": f"{conf.name} falls on "
                        f"{'hour' if cal == HOURLY else 'day'} {ev0 + int(hit_day[k]):+d} "
                        f"({session_label(cal, sess)})",
                    }
                )
        ov = self.overlaps
        if ov is not None:
            g_of = {int(a): g for g, a in enumerate(ov.assets)}
            for a in ov.order:
                g = g_of[int(a)]
                slots = ov.slot_pair[g]
                names = [ev_names[int(k)] if k == k else "" for k in slots]
                for i in np.flatnonzero(ov.flagged[g]):
                    parts = []
                    if ov.event_windows[g, i].any():
                        both = ", ".join(names[j] for j in np.flatnonzero(ov.event_windows[g, i]))
                        parts.append(f"event window overlaps the event window of {both}")
                    if ov.estimation_only[g, i].any():
                        est = ", ".join(names[j] for j in np.flatnonzero(ov.estimation_only[g, i]))
                        parts.append(f"estimation window contains day 0 of {est}")
                    rows.append(
                        {
                            "event": names[i],
                            "asset": pairs.setup.assets[int(a)],
                            "flag": "overlap",
                            "detail": "; ".join(parts),
                        }
                    )
        return pd.DataFrame(rows, columns=["event", "asset", "flag", "detail"])


def find_flags(pairs: Pairs, sample: Sample) -> Flags:
    """Confounders inside event windows and overlapping windows of one asset, found on integer
    session positions (all pairs of an asset share its calendar)."""
    s = pairs.setup.study
    kept = sample.kept
    e0, n_ev = int(pairs.ev_cols[0]), len(pairs.ev_cols)
    conf_hits = []
    for conf in s.confounders:
        first = pairs.r0[kept] + e0
        hit_day = np.full(kept.size, -1)
        for ci, (c, panel) in enumerate(pairs.setup.panels.items()):
            sess = conf.map(c).session
            q = int(panel.sessions.searchsorted(sess))
            if q >= len(panel.sessions) or panel.sessions[q] != sess:
                continue
            sel = pairs.cal_idx[kept] == ci
            off = q - first
            hit_day = np.where(sel & (off >= 0) & (off < n_ev), off, hit_day)
        names = pairs.event_names(kept)
        hit_day[names == conf.name] = -1
        conf_hits.append((conf, np.flatnonzero(hit_day >= 0), hit_day))

    # overlapping windows of one asset across events: (assets, M, M) interval tests
    a_of = pairs.asset_idx[kept]
    counts = np.bincount(a_of, minlength=len(pairs.setup.assets))
    overlap = None
    if (counts > 1).any():
        multi = np.flatnonzero(counts[a_of] > 1)  # kept positions of assets with >1 pair
        assets_m, first_pos, codes = np.unique(a_of[multi], return_index=True, return_inverse=True)
        part = crosssection.Partition([str(a) for a in assets_m], codes)
        sel = kept[multi]
        lo, hi = pairs.row_bounds(sel, e0, e0 + n_ev - 1)
        elo, ehi = pairs.row_bounds(sel, 0, pairs.l1 - 1)
        day0 = pairs.r0[sel] - s.estimation_window[0]
        lo, hi, elo, ehi, day0 = (part.pad(v.astype(float)) for v in (lo, hi, elo, ehi, day0))
        with np.errstate(invalid="ignore"):  # NaN slots (assets with fewer pairs) never hit
            ev_ov = (lo[:, :, None] <= hi[:, None, :]) & (lo[:, None, :] <= hi[:, :, None])
            est_hit = (elo[:, :, None] <= day0[:, None, :]) & (day0[:, None, :] <= ehi[:, :, None])
        m = ev_ov.shape[1]
        eye = np.eye(m, dtype=bool)[None]
        ev_ov &= ~eye
        est_hit &= ~eye
        overlap = _Overlaps(
            order=assets_m[np.argsort(first_pos, kind="stable")],
            assets=assets_m,
            event_windows=ev_ov,
            estimation_only=est_hit & ~ev_ov,
            flagged=np.asarray((ev_ov | est_hit).any(axis=2)),
            slot_pair=part.pad(multi.astype(float)),
        )
    return Flags(pairs, sample, conf_hits, overlap)


_PORTFOLIO_COLUMNS = [
    "event",
    "group",
    "weighting",
    "members",
    "window",
    "car",
    "std",
    "tstat",
    "pvalue",
    "reason",
    "left_out",
]


@dataclass(frozen=True, eq=False)
class Portfolios:
    """Phase 5 (:func:`fit_portfolios`): CARs of the equal- and cap-weighted portfolio of each
    event and (asset class, calendar, benchmark), each with its own model fit."""

    meta: list[tuple[str, str, str, int]]  # (event, group, weighting, members) per portfolio
    reasons: list[str]  # "" when computed
    windows: list[str]
    car: np.ndarray  # (portfolios, CAR windows)
    std: np.ndarray
    tstat: np.ndarray
    pvalue: np.ndarray
    # members a computed portfolio left out, with why ("" when none): the cap-weighted one
    # weights the members with a market cap before the window and names the others
    left_out: list[str] | None = None

    def frame(self) -> pd.DataFrame:
        left = self.left_out or [""] * len(self.meta)
        rows = [
            [*m, lab, self.car[g, c], self.std[g, c], self.tstat[g, c], self.pvalue[g, c]]
            + [self.reasons[g], left[g]]
            for g, m in enumerate(self.meta)
            for c, lab in enumerate(self.windows)
        ]
        out = pd.DataFrame(rows, columns=_PORTFOLIO_COLUMNS)
        out.loc[out["reason"] != "", ["car", "std", "tstat", "pvalue"]] = np.nan
        return out


def fit_portfolios(pairs: Pairs, sample: Sample, cols: Columns) -> Portfolios | None:
    """Portfolios of at least two kept pairs (``None`` when there are none or the study asks for
    none)."""
    s = pairs.setup.study
    if not s.portfolios or not s.car_windows:
        return None
    setup = pairs.setup
    kept = sample.kept
    # one key per (event, asset class, calendar, benchmark), in order of first appearance
    akey_tuple = [(setup.classes[a], setup.cal[a], setup.bench[a]) for a in setup.assets]
    uniq = {t: k for k, t in enumerate(dict.fromkeys(akey_tuple))}
    akey = np.array([uniq[t] for t in akey_tuple], dtype=np.int64)
    pair_key = pairs.ev_of[kept].astype(np.int64) * len(uniq) + akey[pairs.asset_idx[kept]]
    _, first, codes = np.unique(pair_key, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.intp)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    codes = rank[codes]  # groups numbered in order of first appearance
    sizes = np.bincount(codes)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    groups = [g for g in range(sizes.size) if sizes[g] >= 2]
    if not groups:
        return None
    key_tuples = {v: t for t, v in uniq.items()}
    rows = kept[order]
    y_full, x_full = pairs.Y, pairs.X if pairs.F is None else pairs.F
    in_place = rows.size == len(y_full) and bool((np.diff(rows) == 1).all())
    y_all = y_full if in_place else y_full[rows]
    # equal weights: the mean of the members present on each day
    if pairs.y_has_nan:
        present = ~np.isnan(y_all)
        wy = np.add.reduceat(np.where(present, y_all, 0.0), starts, axis=0)
        ws = np.add.reduceat(present.astype(float), starts, axis=0)
    elif in_place and bool((sizes == sizes[0]).all()):  # equal groups in order: a reshape
        wy = y_all.reshape(sizes.size, int(sizes[0]), -1).sum(axis=1)
        ws = sizes.astype(float)[:, None]
    else:
        wy = np.add.reduceat(y_all, starts, axis=0)
        ws = sizes.astype(float)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        y_eq = np.where(ws > 0, wy / ws, np.nan)
    meta: list[tuple[str, str, str, int]] = []
    yps, xps, reasons, left_out = [], [], [], []
    for g in groups:
        ps = kept[order[starts[g] : starts[g] + sizes[g]]]
        p0 = int(ps[0])
        cl, _, b = key_tuples[int(akey[pairs.asset_idx[p0]])]
        group = f"{cl} vs {b}" if b else cl
        ev_name = s.events[int(pairs.ev_of[p0])].name
        meta.append((ev_name, group, "equal", len(ps)))
        reasons.append("")
        left_out.append("")
        yps.append(y_eq[g])
        xps.append(x_full[p0])
        cap_w, why, missing = _cap_weights(pairs, ps)
        meta.append((ev_name, group, "cap", len(ps) - len(missing)))
        reasons.append(why)
        left_out.append("; ".join(missing))
        xps.append(x_full[p0])
        if cap_w is None:
            yps.append(np.full(y_full.shape[1], np.nan))
            continue
        y = y_full[ps]
        pr = ~np.isnan(y)
        wy_c = np.where(pr, y * cap_w[:, None], 0.0).sum(axis=0)
        ws_c = np.where(pr, cap_w[:, None], 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            yps.append(np.where(ws_c > 0, wy_c / ws_c, np.nan))
    yp, xp = np.vstack(yps), np.stack(xps)
    wm_car = cols.wm[:, -len(s.car_windows) :]
    l1 = pairs.l1
    # one batched fit: every portfolio is a pseudo-asset with its own market model
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = fit_model(s.model, yp[:, :l1], xp[:, :l1], convention=_convention(s))
        y_ev, x_ev = yp[:, pairs.ev_cols], xp[:, pairs.ev_cols]
        ar = y_ev - fit.predict(x_ev)
        miss = np.isnan(ar).astype(float) @ wm_car > 0
        car = np.where(miss, np.nan, np.nan_to_num(ar) @ wm_car)
        sd = np.sqrt(fit.car_variance(x_ev, wm_car))
        t = car / sd
    pv = pvalue_t(t, fit.df[:, None])
    windows = [_label(*w) for w in s.car_windows]
    return Portfolios(meta, reasons, windows, car, sd, t, pv, left_out)


def _cap_weights(pairs: Pairs, ps: np.ndarray) -> tuple[np.ndarray | None, str, list[str]]:
    """Market caps on the day before the event window (last value on or before it), the reason
    when no member has one, and the members without one (weight 0, named in ``left_out``).

    A member without a cap (a token no cap source covers, e.g. AGIX in Coin Metrics' community
    data) is left out of the cap-weighted portfolio rather than voiding it; the portfolio is
    then the cap-weighted mean of the members that have one, and says which it left out.
    """
    assets = pairs.setup.assets
    caps = pairs.setup.data.caps
    if caps is None:
        return None, f"no market_cap for {assets[pairs.asset_idx[ps[0]]]}", []
    before = int(pairs.ev_cols[0]) - 1
    days = (
        pairs.dates(ps, np.array([before]))[:, 0]
        if before >= 0
        else np.full(len(ps), np.datetime64("NaT"))
    )
    w, missing, reasons = [], [], []
    for p, d in zip(ps, days, strict=True):
        a = assets[pairs.asset_idx[p]]
        val = (
            caps[a].loc[: pd.Timestamp(d)].dropna()
            if a in caps.columns and not np.isnat(d)
            else None
        )
        if val is None or val.empty:
            why = f"no market_cap for {a}" + ("" if val is None else " before the event window")
            missing.append(f"{a} ({why.replace(f' for {a}', '')})")
            reasons.append(why)
            w.append(0.0)
        else:
            w.append(float(val.iloc[-1]))
    if len(missing) == len(ps):
        return None, reasons[0], []
    return np.asarray(w), "", missing


@dataclass(frozen=True, eq=False)
class StudyOutputs:
    """Every phase of one fit; builds each labelled output of
    :class:`~analysis.results.EventStudyResult` when the result first reads it."""

    pairs: Pairs
    sample: Sample
    cols: Columns
    est: Estimates
    test_table: crosssection.TestTable
    flag_hits: Flags
    portfolio_fits: Portfolios | None

    @cached_property
    def _pair_index(self) -> pd.MultiIndex:
        kept = self.sample.kept
        return pd.MultiIndex.from_arrays(
            [self.pairs.event_names(kept), self.pairs.asset_names(kept)], names=["event", "asset"]
        )

    @property
    def _days(self) -> pd.Index:
        study = self.pairs.setup.study
        ev0, ev1 = study.event_window
        return pd.Index(range(ev0, ev1 + 1), name="hour" if study.interval == "1h" else "day")

    @property
    def _car_slice(self) -> slice:
        return slice(len(self.cols.labels) - self.cols.n_car, None)

    @property
    def _car_cols(self) -> pd.Index:
        return pd.Index(self.cols.labels[self._car_slice], name="window")

    def spec(self) -> dict[str, Any]:
        setup = self.pairs.setup
        out = setup.study.spec
        out["resolved"] = {
            "assets": list(setup.assets),
            "asset_classes": {a: setup.classes[a] for a in setup.assets},
            "calendars": dict(setup.cal),
            "benchmarks": dict(setup.bench),
            "input": "returns" if setup.data.is_returns else "prices",
            "data_sha256": fingerprint(setup.data),
        }
        return out

    def params(self) -> pd.DataFrame:
        pairs, kept, fit = self.pairs, self.sample.kept, self.est.fit
        setup = pairs.setup
        est_first, est_last = _nat_bounds(pairs.dates(kept, np.arange(pairs.l1)))
        asset_names = pairs.asset_names(kept)
        return pd.DataFrame(
            {
                "asset_class": [setup.classes[a] for a in asset_names],
                "calendar": [setup.cal[a] for a in asset_names],
                "benchmark": [setup.bench[a] for a in asset_names],
                "day0": pd.DatetimeIndex(pairs.day0[kept]),
                "est_start": pd.DatetimeIndex(est_first),
                "est_end": pd.DatetimeIndex(est_last),
                "nobs": fit.nobs.astype(int),
                "df": fit.df.astype(int),
                "alpha": fit.alpha,
                "beta": fit.beta,
                "se_alpha": fit.se_alpha,
                "se_beta": fit.se_beta,
                "sigma": np.sqrt(fit.sigma2),
            },
            index=self._pair_index,
        )

    def abnormal_returns(self) -> pd.DataFrame:
        return pd.DataFrame(self.est.ar.T, index=self._days, columns=self._pair_index)

    def ar_std(self) -> pd.DataFrame:
        return pd.DataFrame(np.sqrt(self.est.ar_var).T, index=self._days, columns=self._pair_index)

    def ar_dates(self) -> pd.DataFrame:
        dates = self.pairs.dates(self.sample.kept, self.pairs.ev_cols)
        return pd.DataFrame(dates.T, index=self._days, columns=self._pair_index)

    def car(self) -> pd.DataFrame:
        car = self.est.car[:, self._car_slice]
        return pd.DataFrame(car, index=self._pair_index, columns=self._car_cols)

    def car_std(self) -> pd.DataFrame:
        sd = np.sqrt(self.est.car_var[:, self._car_slice])
        return pd.DataFrame(sd, index=self._pair_index, columns=self._car_cols)

    def car_df(self) -> pd.Series:
        return pd.Series(self.est.fit.df, index=self._pair_index, name="df")

    def tests(self) -> pd.DataFrame:
        return self.test_table.frame()

    def excluded(self) -> pd.DataFrame:
        pairs = self.pairs
        names = pairs.event_names(np.arange(len(pairs.Y)))
        assets = pairs.setup.assets
        return pd.DataFrame(
            [
                {"event": names[p], "asset": assets[pairs.asset_idx[p]], "reason": r}
                for p, r in sorted(self.sample.reasons.items())
            ],
            columns=["event", "asset", "reason"],
        )

    def flags(self) -> pd.DataFrame:
        return self.flag_hits.frame()

    def portfolios(self) -> pd.DataFrame:
        if self.portfolio_fits is None:
            return pd.DataFrame(columns=_PORTFOLIO_COLUMNS)
        return self.portfolio_fits.frame()

    def mappings(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"event": name, **m.to_dict()} for (name, _), m in self.pairs.setup.mappings.items()]
        )
