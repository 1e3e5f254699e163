"""The event-study model: specification and estimation (``EventStudy(...).fit(data)``).

The model checks its specification when built and is reusable; :meth:`EventStudy.fit` turns a
price (or return) panel into a read-only :class:`~analysis.results.EventStudyResult`. All
asset-event pairs are estimated at once on ``(pairs x days)`` arrays, each pair on its own
calendar with its own estimation window, counted in its own sessions relative to its own day 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import crosssection
from analysis.calendars import EVENT_POLICY, EVENT_POLICY_TEXT, calendar_for
from analysis.errors import (
    AssetsExcludedWarning,
    EventStudyInputError,
    InsufficientHistoryError,
    UnknownAssetError,
    WindowOutsideDataError,
)
from analysis.events import Event, as_event
from analysis.models import MODELS, ModelFit, fit_model
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
        Cross-sectional tests to compute (codes of :data:`analysis.crosssection.TESTS`); all by
        default.
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
    ) -> None:
        if isinstance(events, Event | str):
            events = [events]
        self.events: tuple[Event, ...] = tuple(as_event(e) for e in events)
        if not self.events:
            raise EventStudyInputError("An event study needs at least one event.")
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
        self.assets = None if assets is None else [str(a) for a in assets]
        self.return_kind = return_kind
        self.convention = convention
        self.confounders: tuple[Event, ...] = tuple(as_event(e) for e in confounders)
        self.portfolios = bool(portfolios)
        self.tests = tuple(crosssection.TESTS) if tests is None else tuple(tests)
        unknown = [t for t in self.tests if t not in crosssection.TESTS]
        if unknown:
            raise EventStudyInputError(
                f"Unknown test(s) {', '.join(unknown)}; choose from "
                f"{', '.join(crosssection.TESTS)}."
            )

    # ------------------------------------------------------------------ specification
    @property
    def spec(self) -> dict[str, Any]:
        """The full specification as a JSON-serialisable dict (see :meth:`from_spec`)."""
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
            "event_policy": EVENT_POLICY,
            "event_policy_text": EVENT_POLICY_TEXT,
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
        )

    def __repr__(self) -> str:
        names = ", ".join(e.name for e in self.events)
        return (
            f"EventStudy(events=[{names}], model={self.model!r}, "
            f"estimation_window={self.estimation_window}, event_window={self.event_window})"
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
        return cal if cal is not None else calendar_for(classes[sym])

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
            Long closes: ``date`` (naive = UTC day), ``symbol``, ``close``, optional
            ``market_cap`` (for cap weights) and ``asset_class``.
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
        if (prices is None) == (returns is None):
            raise EventStudyInputError("Give either prices or returns to fit(), not both or none.")
        if prices is not None:
            data = read_prices(prices)
            if meta is None and "asset_class" in prices.columns:
                meta = prices.groupby("symbol")["asset_class"].first()
        else:
            data = read_returns(returns)  # type: ignore[arg-type]
        classes = _read_meta(meta)
        symbols = list(data.values.columns)
        assets = self._select_assets(symbols, classes)
        return _Estimator(self, data, classes, assets).run()

    def _select_assets(self, symbols: list[str], classes: Mapping[str, str]) -> list[str]:
        if self.assets is None:
            assets = [s for s in sorted(symbols) if classes.get(s) not in BENCHMARK_CLASSES]
        else:
            assets = list(self.assets)
        known = set(symbols)
        for a in assets:
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
    return {str(k): str(v) for k, v in dict(meta).items()}


class _Estimator:
    """One run of :meth:`EventStudy.fit`: builds the pair arrays and every output table.

    Pair arrays have one row per asset-event pair (ordered by event, then asset) and one column
    per day from the first estimation day to the last event day.
    """

    def __init__(
        self, study: EventStudy, data: WideData, classes: dict[str, str], assets: list[str]
    ) -> None:
        self.s = study
        self.data = data
        self.classes = classes
        self.assets = assets

    # -------------------------------------------------------------- setup
    def _resolve_assets(self) -> None:
        s = self.s
        known = set(self.data.values.columns)
        self.cal = {a: s._calendar_of(a, self.classes) for a in self.assets}
        self.bench: dict[str, str | None] = {}
        for a in self.assets:
            b = None if s.model == "constant_mean" else s._resolve(a, self.classes, s.benchmarks)
            if s.model != "constant_mean":
                if b is None:
                    raise UnknownAssetError(
                        f"Asset {a!r} (class {self.classes[a]!r}) has no benchmark; pass "
                        f"benchmarks={{'{self.classes[a]}': 'SYMBOL'}}."
                    )
                if b not in known:
                    raise UnknownAssetError(
                        f"Benchmark {b!r} of {a!r} is not in the data; add its closes or choose "
                        "another benchmark with benchmarks={...}."
                    )
            self.bench[a] = b
        native = dict(self.cal)
        for a in self.assets:
            b = self.bench[a]
            if b and b not in native:
                native[b] = s._calendar_of(b, self.classes) if b in self.classes else self.cal[a]
        self.panels: dict[str, CalendarPanel] = {}
        for c in sorted(set(self.cal.values())):
            members = [a for a in self.assets if self.cal[a] == c]
            syms = list(dict.fromkeys(members + [self.bench[a] for a in members if self.bench[a]]))
            self.panels[c] = build_panel(c, syms, self.data, native, kind=s.return_kind)
        self.mappings = {(e.name, c): e.map(c) for e in s.events for c in self.panels}

    def _gather(self) -> None:
        s = self.s
        est0, est1 = s.estimation_window
        ev0, ev1 = s.event_window
        offs = np.arange(est0, ev1 + 1)
        self.l1 = est1 - est0 + 1
        self.ev_cols = np.arange(ev0 - est0, ev1 - est0 + 1)
        asset_pos = {a: k for k, a in enumerate(self.assets)}
        ys, xs, ds, keys = [], [], [], []
        ev_of, asset_of, day0_of, outside = [], [], [], []
        per_cal = {}
        for c, panel in self.panels.items():
            members = [a for a in self.assets if self.cal[a] == c]
            bcols = (
                None
                if s.model == "constant_mean"
                else panel.columns([self.bench[a] for a in members])
            )
            per_cal[c] = (
                members,
                panel.columns(members),
                bcols,
                np.append(panel.sessions.to_numpy(), np.datetime64("NaT")),
            )
        for ei, ev in enumerate(s.events):
            for c, panel in self.panels.items():
                members, acol, bcols, sess_nat = per_cal[c]
                day0 = self.mappings[(ev.name, c)].session
                n_s = len(panel.sessions)
                pos = int(panel.sessions.searchsorted(day0))
                inside = pos < n_s and panel.sessions[pos] == day0
                rows = pos + offs
                rows = np.where((rows >= 0) & (rows < n_s), rows, n_s)
                block = panel.values[rows]  # (W, k)
                ys.append(block[:, acol].T)
                if bcols is None:
                    xs.append(np.full((len(members), len(offs)), np.nan))
                else:
                    xs.append(block[:, bcols].T)
                dates = sess_nat[rows]
                ds.append(np.broadcast_to(dates, (len(members), len(offs))))
                keys.extend((ei, asset_pos[a]) for a in members)
                ev_of.extend([ei] * len(members))
                asset_of.extend(members)
                day0_of.extend([day0] * len(members))
                why = None
                if not inside:
                    why = (
                        f"day 0 ({day0.date()}) is outside the data of {c} "
                        f"({panel.sessions[0].date()} to {panel.sessions[-1].date()})"
                    )
                outside.extend([why] * len(members))
        order = np.lexsort(np.array(keys).T[::-1])
        ordered = bool(np.all(order == np.arange(order.size)))
        self.Y = np.vstack(ys) if ordered else np.vstack(ys)[order]
        self.X = np.vstack(xs) if ordered else np.vstack(xs)[order]
        self.D = np.vstack(ds) if ordered else np.vstack(ds)[order]
        self.ev_of = np.asarray(ev_of)[order]
        self.asset_of = [asset_of[k] for k in order]
        self.day0_of = [day0_of[k] for k in order]
        self.outside = [outside[k] for k in order]
        self.cal_of = [self.cal[a] for a in self.asset_of]
        self.bench_of = [self.bench[a] for a in self.asset_of]
        self.event_names = [s.events[k].name for k in self.ev_of]

    def _exclusions(self) -> None:
        s = self.s
        need_x = s.model != "constant_mean"
        y_est, x_est = self.Y[:, : self.l1], self.X[:, : self.l1]
        ok_est = ~np.isnan(y_est)
        if need_x:
            ok_est &= ~np.isnan(x_est)
        n_est = ok_est.sum(axis=1)
        est0 = s.estimation_window[0]
        # column of day 0 in the gathered window (None when the event window excludes day 0)
        d0 = -est0 if s.event_window[0] <= 0 <= s.event_window[1] else None
        no_y = np.isnan(self.Y[:, d0]) if d0 is not None else np.zeros(len(self.Y), bool)
        no_x = np.isnan(self.X[:, d0]) if d0 is not None and need_x else np.zeros(len(self.Y), bool)
        short = n_est < s.min_estimation_obs
        reasons: list[str | None] = [None] * len(self.Y)
        for p in np.flatnonzero(
            no_y | no_x | short | np.array([o is not None for o in self.outside])
        ):
            a, day0 = self.asset_of[p], self.day0_of[p]
            if self.outside[p]:
                reasons[p] = self.outside[p]
            elif no_y[p]:
                reasons[p] = f"no return of {a} on day 0 ({day0.date()})"
            elif no_x[p]:
                reasons[p] = f"no return of benchmark {self.bench_of[p]} on day 0 ({day0.date()})"
            else:
                est_dates = self.D[p, : self.l1]
                known = est_dates[~np.isnat(est_dates)]
                span = (
                    f"[{pd.Timestamp(known[0]).date()}, {pd.Timestamp(known[-1]).date()}]"
                    if known.size
                    else "(no sessions)"
                )
                reasons[p] = (
                    f"only {int(n_est[p])} estimation returns in {span}; "
                    f"{s.min_estimation_obs} required"
                )
        self.reasons = reasons
        self.keep = np.array([r is None for r in reasons])
        if not self.keep.any():
            detail = "; ".join(
                f"{a}/{e}: {r}"
                for a, e, r in zip(self.asset_of, self.event_names, reasons, strict=True)
            )
            err = (
                WindowOutsideDataError
                if all(o is not None for o in self.outside)
                else InsufficientHistoryError
            )
            raise err(
                "No asset-event pair has the data the study needs, so nothing can be estimated. "
                f"Reasons: {detail}."
            )
        if not self.keep.all():
            warnings.warn(
                f"{int((~self.keep).sum())} of {len(self.keep)} asset-event pairs were excluded; "
                "see result.excluded for the reasons.",
                AssetsExcludedWarning,
                stacklevel=4,
            )

    # -------------------------------------------------------------- estimation
    def _columns(self) -> None:
        ev0, ev1 = self.s.event_window
        days = list(range(ev0, ev1 + 1))
        bounds = [(d, d) for d in days] + list(self.s.car_windows)
        wm = np.zeros((len(days), len(bounds)))
        for c, (lo, hi) in enumerate(bounds):
            wm[lo - ev0 : hi - ev0 + 1, c] = 1.0
        self.bounds = bounds
        self.kinds = ["day"] * len(days) + ["car"] * len(self.s.car_windows)
        self.labels = [f"{d:+d}" if d else "0" for d in days] + [
            _label(*w) for w in self.s.car_windows
        ]
        self.wm = wm

    def _estimate(self) -> None:
        k = self.keep
        y, x = self.Y[k], self.X[k]
        fit: ModelFit = fit_model(
            self.s.model, y[:, : self.l1], x[:, : self.l1], convention=self.s.convention
        )
        y_ev, x_ev = y[:, self.ev_cols], x[:, self.ev_cols]
        self.fit = fit
        self.ar = y_ev - fit.predict(x_ev)
        self.ar_var = np.where(np.isnan(self.ar), np.nan, fit.ar_variance(x_ev))
        missing = np.isnan(self.ar).astype(float) @ self.wm > 0
        self.car = np.where(missing, np.nan, np.nan_to_num(self.ar) @ self.wm)
        self.car_var = np.where(missing, np.nan, fit.car_variance(x_ev, self.wm))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.car_t = self.car / np.sqrt(self.car_var)
        if self.s.model == "market":
            self.lamb_q = (x_ev - fit.fe_mean[:, None]) ** 2 / fit.fe_sxx[:, None]
        else:
            self.lamb_q = None

    def _tests(self) -> pd.DataFrame:
        k = self.keep
        ev_idx = self.ev_of[k]
        classes = np.array([self.classes[a] for a, kk in zip(self.asset_of, k, strict=True) if kk])
        blocks = (
            crosssection.residual_correlation_blocks(self.fit.resid, self.D[k, : self.l1], ev_idx)
            if "kp_bmp" in self.s.tests
            else []
        )
        inp = crosssection.CrossSectionInput(
            car=self.car,
            car_var=self.car_var,
            dof=self.fit.df,
            nobs=self.fit.nobs,
            resid_est=self.fit.resid,
            ar_event=self.ar,
            windows=self.wm,
            corr_blocks=blocks,
            lamb_q=self.lamb_q,
            convention=self.s.convention,
            tests=self.s.tests,
        )
        groups: dict[str, np.ndarray] = {"all": np.ones(int(k.sum()), dtype=bool)}
        if len(self.s.events) > 1:
            for ei, ev in enumerate(self.s.events):
                if (ev_idx == ei).any():
                    groups[f"event={ev.name}"] = ev_idx == ei
        if len(set(classes)) > 1:
            for cl in sorted(set(classes)):
                groups[f"class={cl}"] = classes == cl
        return crosssection.run_tests(inp, groups, self.labels, self.kinds, self.bounds)

    # -------------------------------------------------------------- flags and portfolios
    def _flags(self) -> pd.DataFrame:
        rows = []
        kept = np.flatnonzero(self.keep)
        ev_dates = self.D[:, self.ev_cols]
        ev0 = self.s.event_window[0]
        for conf in self.s.confounders:
            sessions_by_cal = {c: conf.map(c).session.to_datetime64() for c in self.panels}
            for p in kept:
                if conf.name == self.event_names[p]:
                    continue
                sess = sessions_by_cal[self.cal_of[p]]
                hit = np.flatnonzero(ev_dates[p] == sess)
                if hit.size:
                    rows.append(
                        {
                            "event": self.event_names[p],
                            "asset": self.asset_of[p],
                            "flag": "confounder",
                            "detail": f"{conf.name} falls on day {ev0 + int(hit[0]):+d} "
                            f"({pd.Timestamp(sess).date()})",
                        }
                    )
        # overlapping windows of one asset across events, as interval tests on date bounds
        by_asset: dict[str, list[int]] = {}
        for p in kept:
            by_asset.setdefault(self.asset_of[p], []).append(int(p))
        if any(len(ps) > 1 for ps in by_asset.values()):
            lo_all, hi_all = _nat_bounds(ev_dates)
            elo_all, ehi_all = _nat_bounds(self.D[:, : self.l1])
            day0_all = pd.DatetimeIndex(self.day0_of).to_numpy()
        for a, ps in by_asset.items():
            if len(ps) < 2:
                continue
            lo, hi, elo, ehi, day0 = (v[ps] for v in (lo_all, hi_all, elo_all, ehi_all, day0_all))
            ev_overlap = (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])
            est_hit = (elo[:, None] <= day0[None, :]) & (day0[None, :] <= ehi[:, None])
            np.fill_diagonal(ev_overlap, False)
            np.fill_diagonal(est_hit, False)
            names = [self.event_names[p] for p in ps]
            est_only = est_hit & ~ev_overlap
            for i in np.flatnonzero((ev_overlap | est_hit).any(axis=1)):
                parts = []
                if ev_overlap[i].any():
                    both = ", ".join(names[j] for j in ev_overlap[i].nonzero()[0])
                    parts.append(f"event window overlaps the event window of {both}")
                if est_only[i].any():
                    est = ", ".join(names[j] for j in est_only[i].nonzero()[0])
                    parts.append(f"estimation window contains day 0 of {est}")
                rows.append(
                    {"event": names[i], "asset": a, "flag": "overlap", "detail": "; ".join(parts)}
                )
        return pd.DataFrame(rows, columns=["event", "asset", "flag", "detail"])

    def _portfolios(self) -> pd.DataFrame:
        cols = [
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
        ]
        if not self.s.portfolios or not self.s.car_windows:
            return pd.DataFrame(columns=cols)
        keys: dict[tuple, list[int]] = {}
        for p in np.flatnonzero(self.keep):
            key = (
                int(self.ev_of[p]),
                self.classes[self.asset_of[p]],
                self.cal_of[p],
                self.bench_of[p],
            )
            keys.setdefault(key, []).append(int(p))
        car_labels = [_label(*w) for w in self.s.car_windows]
        wm_car = self.wm[:, -len(self.s.car_windows) :]
        meta, yps, xps, reasons = [], [], [], []
        for (ei, cl, _, b), ps in keys.items():
            if len(ps) < 2:
                continue
            group = f"{cl} vs {b}" if b else cl
            cap_w, why = self._cap_weights(ps)
            for scheme, w, reason in (("equal", np.ones(len(ps)), ""), ("cap", cap_w, why)):
                meta.append((self.s.events[ei].name, group, scheme, len(ps)))
                reasons.append(reason)
                if w is None:
                    yps.append(np.full(self.Y.shape[1], np.nan))
                    xps.append(self.X[ps[0]])
                    continue
                y = self.Y[ps]
                present = ~np.isnan(y)
                wy = np.where(present, y * w[:, None], 0.0).sum(axis=0)
                ws = np.where(present, w[:, None], 0.0).sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    yps.append(np.where(ws > 0, wy / ws, np.nan))
                xps.append(self.X[ps[0]])
        if not meta:
            return pd.DataFrame(columns=cols)
        yp, xp = np.vstack(yps), np.vstack(xps)
        # one batched fit: every portfolio is a pseudo-asset with its own market model
        with np.errstate(invalid="ignore", divide="ignore"):
            fit = fit_model(
                self.s.model, yp[:, : self.l1], xp[:, : self.l1], convention=self.s.convention
            )
            y_ev, x_ev = yp[:, self.ev_cols], xp[:, self.ev_cols]
            ar = y_ev - fit.predict(x_ev)
            miss = np.isnan(ar).astype(float) @ wm_car > 0
            car = np.where(miss, np.nan, np.nan_to_num(ar) @ wm_car)
            sd = np.sqrt(fit.car_variance(x_ev, wm_car))
            t = car / sd
        pv = pvalue_t(t, fit.df[:, None])
        rows = [
            [*m, lab, car[g, c], sd[g, c], t[g, c], pv[g, c], reasons[g]]
            for g, m in enumerate(meta)
            for c, lab in enumerate(car_labels)
        ]
        out = pd.DataFrame(rows, columns=cols)
        out.loc[out["reason"] != "", ["car", "std", "tstat", "pvalue"]] = np.nan
        return out

    def _cap_weights(self, ps: list[int]) -> tuple[np.ndarray | None, str]:
        """Market caps on the day before the event window (last value on or before it)."""
        caps = self.data.caps
        w = []
        for p in ps:
            a = self.asset_of[p]
            d = self.D[p, self.ev_cols[0] - 1] if self.ev_cols[0] > 0 else np.datetime64("NaT")
            if caps is None or a not in caps.columns or np.isnat(d):
                return None, f"no market_cap for {a}"
            val = caps[a].loc[: pd.Timestamp(d)].dropna()
            if val.empty:
                return None, f"no market_cap for {a} before the event window"
            w.append(float(val.iloc[-1]))
        return np.asarray(w), ""

    # -------------------------------------------------------------- run
    def run(self) -> EventStudyResult:
        self._resolve_assets()
        self._gather()
        self._exclusions()
        self._columns()
        self._estimate()
        tests = self._tests()
        flags = self._flags()
        ports = self._portfolios()
        k = self.keep
        kept = np.flatnonzero(k)
        pair_index = pd.MultiIndex.from_arrays(
            [[self.event_names[p] for p in kept], [self.asset_of[p] for p in kept]],
            names=["event", "asset"],
        )
        fit = self.fit
        est_first, est_last = _nat_bounds(self.D[k, : self.l1])
        params = pd.DataFrame(
            {
                "asset_class": [self.classes[self.asset_of[p]] for p in kept],
                "calendar": [self.cal_of[p] for p in kept],
                "benchmark": [self.bench_of[p] for p in kept],
                "day0": pd.DatetimeIndex([self.day0_of[p] for p in kept]),
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
            index=pair_index,
        )
        days = pd.Index(range(self.s.event_window[0], self.s.event_window[1] + 1), name="day")
        ar = pd.DataFrame(self.ar.T, index=days, columns=pair_index)
        ar_std = pd.DataFrame(np.sqrt(self.ar_var).T, index=days, columns=pair_index)
        dates = pd.DataFrame(self.D[k][:, self.ev_cols].T, index=days, columns=pair_index)
        cw = len(self.s.car_windows)
        car_cols = pd.Index(self.labels[len(self.labels) - cw :], name="window")
        sl = slice(len(self.labels) - cw, None)
        car = pd.DataFrame(self.car[:, sl], index=pair_index, columns=car_cols)
        car_std = pd.DataFrame(np.sqrt(self.car_var[:, sl]), index=pair_index, columns=car_cols)
        excluded = pd.DataFrame(
            [
                {"event": self.event_names[p], "asset": self.asset_of[p], "reason": r}
                for p, r in enumerate(self.reasons)
                if r is not None
            ],
            columns=["event", "asset", "reason"],
        )
        mappings = pd.DataFrame(
            [{"event": name, **m.to_dict()} for (name, _), m in self.mappings.items()]
        )
        spec = self.s.spec
        spec["resolved"] = {
            "assets": list(self.assets),
            "asset_classes": {a: self.classes[a] for a in self.assets},
            "calendars": dict(self.cal),
            "benchmarks": dict(self.bench),
            "input": "returns" if self.data.is_returns else "prices",
            "data_sha256": fingerprint(self.data),
        }
        return EventStudyResult(
            spec=spec,
            params=params,
            abnormal_returns=ar,
            ar_std=ar_std,
            ar_dates=dates,
            car=car,
            car_std=car_std,
            car_df=pd.Series(fit.df, index=pair_index, name="df"),
            tests=tests,
            excluded=excluded,
            flags=flags,
            portfolios=ports,
            mappings=mappings,
        )
