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
from typing import Any

import numpy as np
import pandas as pd

from analysis import crosssection, cstests
from analysis.calendars import EVENT_POLICY, EVENT_POLICY_TEXT, calendar_for
from analysis.errors import (
    AssetsExcludedWarning,
    EventStudyInputError,
    InsufficientHistoryError,
    UnknownAssetError,
    WindowOutsideDataError,
)
from analysis.events import Event, as_event
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
        symbols = list(data.symbols)
        assets = self._select_assets(symbols, classes)
        return _Estimator(self, data, classes, assets).run()

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


class _Estimator:
    """One run of :meth:`EventStudy.fit`: builds the pair arrays and every output table.

    Pair arrays have one row per asset-event pair (ordered by event, then asset) and one column
    per day from the first estimation day to the last event day. Dates are not stored per pair:
    a pair is its calendar and the panel row ``r0`` of its first estimation day, so any date is
    ``sessions[r0 + column]``, computed when an output asks for it. Numbers are computed in
    :meth:`run`; the labelled frames of the result are built when first read.
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
        known = self.data.position
        assets = self.assets
        cls_of = [self.classes[a] for a in assets]

        def per_asset(table: Mapping[str, Any], by_class: Callable[[str], Any], own: Callable):
            """Symbol keys win; otherwise one lookup per asset class (in order of appearance),
            not per asset."""
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
            return v if v is not None else calendar_for(c)

        def cal_own(a: str, c: str) -> str:
            v = s.calendars[a]
            return v if v is not None else calendar_for(c)

        cals = per_asset(s.calendars, cal_by_class, cal_own)
        self.cal = dict(zip(assets, cals, strict=True))
        if s.model == "constant_mean":
            benches: list[str | None] = [None] * len(assets)
        else:
            benches = per_asset(s.benchmarks, s.benchmarks.get, lambda a, c: s.benchmarks[a])
            bad = {b for b in set(benches) if b is None or b not in known}
            for a, b in zip(assets, benches, strict=True):
                if b not in bad:
                    continue
                if b is None:
                    raise UnknownAssetError(
                        f"Asset {a!r} (class {self.classes[a]!r}) has no benchmark; pass "
                        f"benchmarks={{'{self.classes[a]}': 'SYMBOL'}}."
                    )
                raise UnknownAssetError(
                    f"Benchmark {b!r} of {a!r} is not in the data; add its closes or choose "
                    "another benchmark with benchmarks={...}."
                )
        self.bench: dict[str, str | None] = dict(zip(assets, benches, strict=True))
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
        self.cal_names = list(self.panels)
        self.sess_nat = [
            np.append(p.sessions.to_numpy(), np.datetime64("NaT")) for p in self.panels.values()
        ]
        self.mappings = {(e.name, c): e.map(c) for e in s.events for c in self.panels}

    def _gather(self) -> None:
        s = self.s
        est0, est1 = s.estimation_window
        ev0, ev1 = s.event_window
        width = ev1 - est0 + 1
        self.width = width
        self.l1 = est1 - est0 + 1
        self.ev_cols = np.arange(ev0 - est0, ev1 - est0 + 1)
        cal_arr = np.asarray([self.cal[a] for a in self.assets], dtype=object)
        ys, xs, keys = [], [], []
        ev_of, asset_of, cal_of, r0_of, day0_of, out_of = [], [], [], [], [], []
        self.outside_text: dict[tuple[int, int], str] = {}
        for ci, (c, panel) in enumerate(self.panels.items()):
            mpos = np.flatnonzero(cal_arr == c)
            members = [self.assets[k] for k in mpos]
            # a panel lists its members first, then their benchmarks (see _resolve_assets)
            if panel.symbols[: len(members)] == members:
                acol = np.arange(len(members))
            else:
                acol = panel.columns(members)
            bcol = (
                None
                if s.model == "constant_mean"
                else panel.columns([self.bench[a] for a in members])
            )
            n_s = len(panel.sessions)
            sess = panel.sessions.to_numpy()
            day0 = np.array(
                [self.mappings[(ev.name, c)].session.to_datetime64() for ev in s.events]
            )
            pos = np.searchsorted(sess, day0.astype(sess.dtype))
            inside = (pos < n_s) & (sess[np.minimum(pos, n_s - 1)] == day0)
            r0 = pos + est0  # panel row of each event's first estimation day
            # one (members x W) slice per event -> pairs ordered by event, then asset
            ys.append(_gather_rows(panel.values, acol, r0, width, n_s))
            xs.append(None if bcol is None else _gather_rows(panel.values, bcol, r0, width, n_s))
            n_e, n_m = len(s.events), len(members)
            ev_of.append(np.repeat(np.arange(n_e), n_m))
            asset_of.append(np.tile(mpos, n_e))
            cal_of.append(np.full(n_e * n_m, ci))
            r0_of.append(np.repeat(r0, n_m))
            day0_of.append(np.repeat(day0, n_m))
            out_of.append(np.repeat(~inside, n_m))
            for ei in np.flatnonzero(~inside):
                self.outside_text[(int(ei), ci)] = (
                    f"day 0 ({pd.Timestamp(day0[ei]).date()}) is outside the data of {c} "
                    f"({panel.sessions[0].date()} to {panel.sessions[-1].date()})"
                )
            keys.append(np.repeat(np.arange(n_e), n_m) * len(self.assets) + np.tile(mpos, n_e))
        self.ev_of = np.concatenate(ev_of)
        self.asset_idx = np.concatenate(asset_of)
        self.cal_idx = np.concatenate(cal_of)
        self.r0 = np.concatenate(r0_of)
        self.day0 = np.concatenate(day0_of)
        self.outside = np.concatenate(out_of)
        if len(ys) == 1:
            self.Y, order = ys[0], None
        else:
            order = np.argsort(np.concatenate(keys), kind="stable")
            self.Y = np.vstack(ys)[order]
        if s.model == "constant_mean":
            # the model has no market return: a read-only all-NaN view, no memory
            self.X = np.broadcast_to(np.float64(np.nan), self.Y.shape)
        else:
            self.X = xs[0] if order is None else np.vstack(xs)[order]
        if order is not None:
            for name in ("ev_of", "asset_idx", "cal_idx", "r0", "day0", "outside"):
                setattr(self, name, getattr(self, name)[order])
        self.n_sessions = np.array([len(p.sessions) for p in self.panels.values()])
        self.y_has_nan = bool(np.isnan(self.Y).any())
        self.x_has_nan = s.model != "constant_mean" and bool(np.isnan(self.X).any())

    # -------------------------------------------------------------- per-pair labels and dates
    def _asset_names(self, pairs: np.ndarray) -> np.ndarray:
        return np.asarray(self.assets, dtype=object)[self.asset_idx[pairs]]

    def _event_names(self, pairs: np.ndarray) -> np.ndarray:
        return np.asarray([e.name for e in self.s.events], dtype=object)[self.ev_of[pairs]]

    def _dates(self, pairs: np.ndarray, cols: np.ndarray) -> np.ndarray:
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

    def _row_bounds(self, pairs: np.ndarray, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """First and last panel row of columns ``c0..c1`` inside the data (empty: lo > hi)."""
        r0 = self.r0[pairs]
        n_s = self.n_sessions[self.cal_idx[pairs]]
        lo = np.maximum(r0 + c0, 0)
        hi = np.minimum(r0 + c1, n_s - 1)
        empty = lo > hi
        return np.where(empty, n_s + 1, lo), np.where(empty, -1, hi)

    def _exclusions(self) -> None:
        s = self.s
        need_x = s.model != "constant_mean"
        n_pairs = len(self.Y)
        if self.y_has_nan or self.x_has_nan:
            ok_est = ~np.isnan(self.Y[:, : self.l1])
            if need_x:
                ok_est &= ~np.isnan(self.X[:, : self.l1])
            n_est = ok_est.sum(axis=1)
        else:  # nothing missing: every estimation day counts
            n_est = np.full(n_pairs, self.l1)
        est0 = s.estimation_window[0]
        # column of day 0 in the gathered window (None when the event window excludes day 0)
        d0 = -est0 if s.event_window[0] <= 0 <= s.event_window[1] else None
        no_y = np.isnan(self.Y[:, d0]) if d0 is not None else np.zeros(n_pairs, bool)
        no_x = np.isnan(self.X[:, d0]) if d0 is not None and need_x else np.zeros(n_pairs, bool)
        short = n_est < s.min_estimation_obs
        reasons: dict[int, str] = {}
        for p in np.flatnonzero(no_y | no_x | short | self.outside):
            a = self.assets[self.asset_idx[p]]
            day0 = pd.Timestamp(self.day0[p]).date()
            if self.outside[p]:
                reasons[p] = self.outside_text[(int(self.ev_of[p]), int(self.cal_idx[p]))]
            elif no_y[p]:
                reasons[p] = f"no return of {a} on day 0 ({day0})"
            elif no_x[p]:
                reasons[p] = f"no return of benchmark {self.bench[a]} on day 0 ({day0})"
            else:
                est_dates = self._dates(np.array([p]), np.arange(self.l1))[0]
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
        self.keep = np.ones(n_pairs, dtype=bool)
        self.keep[list(reasons)] = False
        self.kept = np.flatnonzero(self.keep)
        if not self.keep.any():
            names = self._event_names(np.arange(n_pairs))
            detail = "; ".join(
                f"{self.assets[self.asset_idx[p]]}/{names[p]}: {reasons[p]}" for p in range(n_pairs)
            )
            err = WindowOutsideDataError if self.outside.all() else InsufficientHistoryError
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

    def _kept_rows(self, a: np.ndarray) -> np.ndarray:
        return a if self.keep.all() else a[self.keep]

    def _estimate(self) -> None:
        y, x = self._kept_rows(self.Y), self._kept_rows(self.X)
        fit: ModelFit = fit_model(
            self.s.model, y[:, : self.l1], x[:, : self.l1], convention=self.s.convention
        )
        e0, e1 = int(self.ev_cols[0]), int(self.ev_cols[-1]) + 1
        y_ev, x_ev = y[:, e0:e1], x[:, e0:e1]
        self.fit = fit
        self.ar = y_ev - fit.predict(x_ev)
        ar_nan = np.isnan(self.ar)
        any_nan = bool(ar_nan.any())
        ar_var = fit.ar_variance(x_ev)
        self.ar_var = np.where(ar_nan, np.nan, ar_var) if any_nan else ar_var
        car = window_sums(np.nan_to_num(self.ar) if any_nan else self.ar, self.wm)
        car_var = fit.car_variance(x_ev, self.wm)
        if any_nan:
            missing = window_sums(ar_nan.astype(float), self.wm) > 0
            car = np.where(missing, np.nan, car)
            car_var = np.where(missing, np.nan, car_var)
        self.car, self.car_var = car, car_var
        if self.s.model == "market":
            self.lamb_q = (x_ev - fit.fe_mean[:, None]) ** 2 / fit.fe_sxx[:, None]
        else:
            self.lamb_q = None

    def _aligned(self, idx: np.ndarray) -> bool:
        """Whether pairs ``idx`` (kept-pair positions) share every estimation date."""
        pairs = self.kept[idx]
        cal, r0 = self.cal_idx[pairs], self.r0[pairs]
        if not ((cal == cal[0]).all() and (r0 == r0[0]).all()):
            return False
        return bool(r0[0] >= 0 and r0[0] + self.l1 <= self.n_sessions[cal[0]])

    def _tests(self) -> crosssection.TestTable:
        kept = self.kept
        ev_idx = self.ev_of[kept]
        blocks = (
            crosssection.residual_correlation_blocks(
                self.fit.resid,
                lambda idx: self._dates(kept[idx], np.arange(self.l1)),
                ev_idx,
                aligned=self._aligned,
            )
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
        )
        parts = [crosssection.Partition.single("all", kept.size)]
        if len(self.s.events) > 1:
            present, codes = np.unique(ev_idx, return_inverse=True)
            parts.append(
                crosssection.Partition([f"event={self.s.events[e].name}" for e in present], codes)
            )
        class_of_asset = np.asarray([self.classes[a] for a in self.assets], dtype=object)
        names, codes = np.unique(class_of_asset[self.asset_idx[kept]], return_inverse=True)
        if len(names) > 1:
            parts.append(crosssection.Partition([f"class={c}" for c in names], codes))
        return crosssection.run_tests(
            inp, cstests.select(self.s.tests), parts, self.labels, self.kinds, self.bounds
        )

    # -------------------------------------------------------------- flags and portfolios
    def _flags(self) -> Callable[[], pd.DataFrame]:
        """Confounders inside event windows and overlapping windows of one asset, found on
        integer session positions (all pairs of an asset share its calendar); the text is
        written when the flags are read."""
        kept = self.kept
        e0, n_ev = int(self.ev_cols[0]), len(self.ev_cols)
        ev0 = self.s.event_window[0]
        conf_hits = []
        for conf in self.s.confounders:
            first = self.r0[kept] + e0
            hit_day = np.full(kept.size, -1)
            for ci, (c, panel) in enumerate(self.panels.items()):
                sess = conf.map(c).session
                q = int(panel.sessions.searchsorted(sess))
                if q >= len(panel.sessions) or panel.sessions[q] != sess:
                    continue
                sel = self.cal_idx[kept] == ci
                off = q - first
                hit_day = np.where(sel & (off >= 0) & (off < n_ev), off, hit_day)
            names = self._event_names(kept)
            hit_day[names == conf.name] = -1
            conf_hits.append((conf, np.flatnonzero(hit_day >= 0), hit_day))

        # overlapping windows of one asset across events: (assets, M, M) interval tests
        a_of = self.asset_idx[kept]
        counts = np.bincount(a_of, minlength=len(self.assets))
        overlap = None
        if (counts > 1).any():
            multi = np.flatnonzero(counts[a_of] > 1)  # kept positions of assets with >1 pair
            assets_m, first_pos, codes = np.unique(
                a_of[multi], return_index=True, return_inverse=True
            )
            part = crosssection.Partition([str(a) for a in assets_m], codes)
            pairs = kept[multi]
            lo, hi = self._row_bounds(pairs, e0, e0 + n_ev - 1)
            elo, ehi = self._row_bounds(pairs, 0, self.l1 - 1)
            day0 = self.r0[pairs] - self.s.estimation_window[0]
            lo, hi, elo, ehi, day0 = (part.pad(v.astype(float)) for v in (lo, hi, elo, ehi, day0))
            with np.errstate(invalid="ignore"):  # NaN slots (assets with fewer pairs) never hit
                ev_ov = (lo[:, :, None] <= hi[:, None, :]) & (lo[:, None, :] <= hi[:, :, None])
                est_hit = (elo[:, :, None] <= day0[:, None, :]) & (
                    day0[:, None, :] <= ehi[:, :, None]
                )
            m = ev_ov.shape[1]
            eye = np.eye(m, dtype=bool)[None]
            ev_ov &= ~eye
            est_hit &= ~eye
            est_only = est_hit & ~ev_ov
            flagged = (ev_ov | est_hit).any(axis=2)  # (A, M)
            slot_pair = part.pad(multi.astype(float))  # kept position of each slot (NaN: none)
            order = assets_m[np.argsort(first_pos, kind="stable")]
            overlap = (order, assets_m, ev_ov, est_only, flagged, slot_pair)

        def build() -> pd.DataFrame:
            rows = []
            ev_names = self._event_names(kept)
            as_names = self._asset_names(kept)
            for conf, hits, hit_day in conf_hits:
                sessions_by_cal = {c: conf.map(c).session for c in self.panels}
                for k in hits:
                    sess = sessions_by_cal[self.cal_names[self.cal_idx[kept[k]]]]
                    rows.append(
                        {
                            "event": ev_names[k],
                            "asset": as_names[k],
                            "flag": "confounder",
                            "detail": f"{conf.name} falls on day {ev0 + int(hit_day[k]):+d} "
                            f"({sess.date()})",
                        }
                    )
            if overlap is not None:
                order, assets_m, ev_ov, est_only, flagged, slot_pair = overlap
                g_of = {int(a): g for g, a in enumerate(assets_m)}
                for a in order:
                    g = g_of[int(a)]
                    slots = slot_pair[g]
                    names = [ev_names[int(k)] if k == k else "" for k in slots]
                    for i in np.flatnonzero(flagged[g]):
                        parts = []
                        if ev_ov[g, i].any():
                            both = ", ".join(names[j] for j in np.flatnonzero(ev_ov[g, i]))
                            parts.append(f"event window overlaps the event window of {both}")
                        if est_only[g, i].any():
                            est = ", ".join(names[j] for j in np.flatnonzero(est_only[g, i]))
                            parts.append(f"estimation window contains day 0 of {est}")
                        rows.append(
                            {
                                "event": names[i],
                                "asset": self.assets[int(a)],
                                "flag": "overlap",
                                "detail": "; ".join(parts),
                            }
                        )
            return pd.DataFrame(rows, columns=["event", "asset", "flag", "detail"])

        return build

    def _portfolios(self) -> Callable[[], pd.DataFrame]:
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
            return lambda: pd.DataFrame(columns=cols)
        kept = self.kept
        # one key per (event, asset class, calendar, benchmark), in order of first appearance
        akey_tuple = [(self.classes[a], self.cal[a], self.bench[a]) for a in self.assets]
        uniq = {t: k for k, t in enumerate(dict.fromkeys(akey_tuple))}
        akey = np.array([uniq[t] for t in akey_tuple], dtype=np.int64)
        pair_key = self.ev_of[kept].astype(np.int64) * len(uniq) + akey[self.asset_idx[kept]]
        _, first, codes = np.unique(pair_key, return_index=True, return_inverse=True)
        rank = np.empty(first.size, dtype=np.intp)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)
        codes = rank[codes]  # groups numbered in order of first appearance
        sizes = np.bincount(codes)
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        groups = [g for g in range(sizes.size) if sizes[g] >= 2]
        if not groups:
            return lambda: pd.DataFrame(columns=cols)
        key_tuples = {v: t for t, v in uniq.items()}
        rows = kept[order]
        in_place = rows.size == len(self.Y) and bool((np.diff(rows) == 1).all())
        y_all = self.Y if in_place else self.Y[rows]
        # equal weights: the mean of the members present on each day
        if self.y_has_nan:
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
        meta, yps, xps, reasons = [], [], [], []
        for g in groups:
            ps = kept[order[starts[g] : starts[g] + sizes[g]]]
            p0 = int(ps[0])
            cl, _, b = key_tuples[int(akey[self.asset_idx[p0]])]
            group = f"{cl} vs {b}" if b else cl
            ev_name = self.s.events[int(self.ev_of[p0])].name
            meta.append((ev_name, group, "equal", len(ps)))
            reasons.append("")
            yps.append(y_eq[g])
            xps.append(self.X[p0])
            cap_w, why = self._cap_weights(ps)
            meta.append((ev_name, group, "cap", len(ps)))
            reasons.append(why)
            xps.append(self.X[p0])
            if cap_w is None:
                yps.append(np.full(self.Y.shape[1], np.nan))
                continue
            y = self.Y[ps]
            pr = ~np.isnan(y)
            wy_c = np.where(pr, y * cap_w[:, None], 0.0).sum(axis=0)
            ws_c = np.where(pr, cap_w[:, None], 0.0).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                yps.append(np.where(ws_c > 0, wy_c / ws_c, np.nan))
        yp, xp = np.vstack(yps), np.vstack(xps)
        wm_car = self.wm[:, -len(self.s.car_windows) :]
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
        car_labels = [_label(*w) for w in self.s.car_windows]

        def build() -> pd.DataFrame:
            rows = [
                [*m, lab, car[g, c], sd[g, c], t[g, c], pv[g, c], reasons[g]]
                for g, m in enumerate(meta)
                for c, lab in enumerate(car_labels)
            ]
            out = pd.DataFrame(rows, columns=cols)
            out.loc[out["reason"] != "", ["car", "std", "tstat", "pvalue"]] = np.nan
            return out

        return build

    def _cap_weights(self, ps: np.ndarray) -> tuple[np.ndarray | None, str]:
        """Market caps on the day before the event window (last value on or before it)."""
        caps = self.data.caps
        if caps is None:
            return None, f"no market_cap for {self.assets[self.asset_idx[ps[0]]]}"
        before = int(self.ev_cols[0]) - 1
        days = (
            self._dates(ps, np.array([before]))[:, 0]
            if before >= 0
            else np.full(len(ps), np.datetime64("NaT"))
        )
        w = []
        for p, d in zip(ps, days, strict=True):
            a = self.assets[self.asset_idx[p]]
            if a not in caps.columns or np.isnat(d):
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
        return self._result(tests, flags, ports)

    def _result(
        self,
        tests: crosssection.TestTable,
        flags: Callable[[], pd.DataFrame],
        ports: Callable[[], pd.DataFrame],
    ) -> EventStudyResult:
        """The result, with every labelled frame built on first use from the arrays."""
        kept = self.kept
        fit = self.fit
        s = self.s
        cache: dict[str, Any] = {}

        def pair_index() -> pd.MultiIndex:
            if "pairs" not in cache:
                cache["pairs"] = pd.MultiIndex.from_arrays(
                    [self._event_names(kept), self._asset_names(kept)], names=["event", "asset"]
                )
            return cache["pairs"]

        days = pd.Index(range(s.event_window[0], s.event_window[1] + 1), name="day")
        cw = len(s.car_windows)
        sl = slice(len(self.labels) - cw, None)

        def car_cols() -> pd.Index:
            return pd.Index(self.labels[sl], name="window")

        def params() -> pd.DataFrame:
            est = self._dates(kept, np.arange(self.l1))
            est_first, est_last = _nat_bounds(est)
            asset_names = self._asset_names(kept)
            return pd.DataFrame(
                {
                    "asset_class": [self.classes[a] for a in asset_names],
                    "calendar": [self.cal[a] for a in asset_names],
                    "benchmark": [self.bench[a] for a in asset_names],
                    "day0": pd.DatetimeIndex(self.day0[kept]),
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
                index=pair_index(),
            )

        def excluded() -> pd.DataFrame:
            names = self._event_names(np.arange(len(self.Y)))
            return pd.DataFrame(
                [
                    {"event": names[p], "asset": self.assets[self.asset_idx[p]], "reason": r}
                    for p, r in sorted(self.reasons.items())
                ],
                columns=["event", "asset", "reason"],
            )

        def mappings() -> pd.DataFrame:
            return pd.DataFrame(
                [{"event": name, **m.to_dict()} for (name, _), m in self.mappings.items()]
            )

        def spec() -> dict[str, Any]:
            out = s.spec
            out["resolved"] = {
                "assets": list(self.assets),
                "asset_classes": {a: self.classes[a] for a in self.assets},
                "calendars": dict(self.cal),
                "benchmarks": dict(self.bench),
                "input": "returns" if self.data.is_returns else "prices",
                "data_sha256": fingerprint(self.data),
            }
            return out

        return EventStudyResult(
            spec=spec,
            params=params,
            abnormal_returns=lambda: pd.DataFrame(self.ar.T, index=days, columns=pair_index()),
            ar_std=lambda: pd.DataFrame(np.sqrt(self.ar_var).T, index=days, columns=pair_index()),
            ar_dates=lambda: pd.DataFrame(
                self._dates(kept, self.ev_cols).T, index=days, columns=pair_index()
            ),
            car=lambda: pd.DataFrame(self.car[:, sl], index=pair_index(), columns=car_cols()),
            car_std=lambda: pd.DataFrame(
                np.sqrt(self.car_var[:, sl]), index=pair_index(), columns=car_cols()
            ),
            car_df=lambda: pd.Series(fit.df, index=pair_index(), name="df"),
            tests=tests.frame,
            excluded=excluded,
            flags=flags,
            portfolios=ports,
            mappings=mappings,
        )
