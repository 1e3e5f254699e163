"""Placebo (calendar-time) inference for a study whose assets share one event date.

The identical study -- same assets, model, benchmark, estimation length, event and CAR windows,
same exclusion rules -- is re-run with day 0 moved to every *pseudo-event date* (or hour, on the
hourly clock) that

* lies inside the data with the whole estimation and event window,
* keeps every asset of the real study (each has its day-0 return and at least
  ``min_estimation_obs`` estimation returns there: "enough history"), and
* whose event window overlaps the event window of no catalog event (the studied event
  included), so no known news is counted as "normal".

The real CAAR (and the real KP-BMP t) is then ranked in the distribution of these placebo
values; the two-sided empirical p-value is

.. math:: p = \\min\\Big(1,\\; 2\\,\\frac{1 + \\min(\\#\\{b: x_b \\ge x\\},
          \\ \\#\\{b: x_b \\le x\\})}{B + 1}\\Big)

over the ``B`` placebo dates (the ``+1`` counts the real date itself, so ``p`` is never 0 and
the test has exact size under exchangeability; doubling the smaller tail does not assume a
symmetric distribution).

Why: the placebo distribution is made of the same assets on other dates, so it carries their
actual cross-correlation, fat tails, volatility clustering and the small number of assets;
nothing is assumed about any of them, unlike the t and normal approximations of the parametric
tests. Its assumption is that, absent the event, the event date is exchangeable with the placebo
dates (stationarity over the sample). References: Brown & Warner (1980, 1985) (simulation of
test statistics over randomly drawn pseudo-event dates); Kolari & Pynnonen (2010) (why
clustered event dates need a cross-correlation-robust test); the "calendar-time placebo" or
"randomization inference" of Abadie, Diamond & Hainmueller (2010, sec. 3.2) and the empirical
p-values of Davison & Hinkley (1997, eq. 4.11).

Speed: the returns panel is built once and the model of every pseudo-date is fitted in one
batched call of :func:`analysis.models.fit_model` (the engine's own estimator) on the
``(dates x assets, days)`` windows of a strided view, in chunks; the cross-sectional statistics
are vectorised over dates. :func:`placebo` agrees with ``EventStudy.fit`` at every date it
covers (``tests/analysis/test_placebo.py``).

References
----------
Brown, S. J. and Warner, J. B. (1980). Measuring security price performance. *Journal of
Financial Economics* 8(3), 205-258.
Brown, S. J. and Warner, J. B. (1985). Using daily stock returns: the case of event studies.
*Journal of Financial Economics* 14(1), 3-31.
Kolari, J. W. and Pynnonen, S. (2010). Event study testing with cross-sectional correlation of
abnormal returns. *Review of Financial Studies* 23(11), 3996-4025.
Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods for comparative
case studies. *Journal of the American Statistical Association* 105(490), 493-505.
Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*. CUP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from analysis import statistics as st
from analysis.calendars import HOURLY, is_date_only
from analysis.events import Event, as_event
from analysis.eventstudy import EventStudy, _convention, _label, resolve
from analysis.models import fit_model, window_sums

MIN_OVERLAP = 20  # as analysis.crosssection.residual_correlation_blocks
MIN_PLACEBO = 39  # below it a two-sided 5% test cannot reject: (1 + 0) * 2 / (B + 1) > 0.05
CHUNK_VALUES = 2_000_000  # values per gathered (pairs x days) block


@dataclass(frozen=True)
class PlaceboResult:
    """Where the real CAAR and KP-BMP t fall among the placebo dates, per CAR window.

    ``caar`` and ``kp`` are ``(B, C)`` arrays (placebo dates x CAR windows); ``real_*`` are
    ``(C,)``. ``reason`` is set (and the arrays empty) when the placebo was not computed.
    """

    windows: list[str]
    assets: list[str]
    calendar: str
    day0: pd.Timestamp | None
    dates: pd.DatetimeIndex
    real_caar: np.ndarray
    real_kp: np.ndarray
    caar: np.ndarray
    kp: np.ndarray
    candidates: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def skipped(
        cls, windows: list[str], reason: str, calendar: str = "", assets: list[str] | None = None
    ) -> PlaceboResult:
        """A result without a distribution, saying why."""
        nan = np.full(len(windows), np.nan)
        empty = np.zeros((0, len(windows)))
        return cls(
            windows,
            assets or [],
            calendar,
            None,
            pd.DatetimeIndex([]),
            nan,
            nan,
            empty,
            empty,
            reason=reason,
        )

    @property
    def n_placebo(self) -> int:
        return len(self.dates)

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided empirical p-value of the real CAAR per CAR window."""
        return empirical_p(self.real_caar, self.caar)

    @property
    def p_value_kp(self) -> np.ndarray:
        """Two-sided empirical p-value of the real KP-BMP t per CAR window."""
        return empirical_p(self.real_kp, self.kp)

    @property
    def enough(self) -> bool:
        """Whether a two-sided 5% test can reject at all (``B >= 39``)."""
        return not self.reason and self.n_placebo >= MIN_PLACEBO

    def records(self) -> list[dict[str, Any]]:
        """One JSON record per CAR window: ``window, caar, n_placebo, p_value`` (the fields the
        ``--json`` output promises), then the KP-BMP t with its placebo p-value and the 2.5% and
        97.5% placebo quantiles of the CAAR."""
        if self.reason:
            return []
        p, pk = self.p_value, self.p_value_kp
        out = []
        for c, w in enumerate(self.windows):
            col = self.caar[:, c]
            col = col[np.isfinite(col)]
            lo, hi = np.quantile(col, [0.025, 0.975]) if col.size else (np.nan, np.nan)
            out.append(
                {
                    "window": w,
                    "caar": _num(self.real_caar[c]),
                    "n_placebo": int(np.isfinite(self.caar[:, c]).sum()),
                    "p_value": _num(p[c]),
                    "kp_t": _num(self.real_kp[c]),
                    "p_value_kp": _num(pk[c]),
                    "placebo_caar_q025": _num(lo),
                    "placebo_caar_q975": _num(hi),
                    "n_assets": self.n_assets,
                }
            )
        return out

    def frame(self) -> pd.DataFrame:
        """:meth:`records` as a frame indexed by window."""
        recs = self.records()
        return pd.DataFrame(recs).set_index("window") if recs else pd.DataFrame()

    def distribution(self) -> pd.DataFrame:
        """The placebo CAARs, one row per placebo date, one column per CAR window."""
        return pd.DataFrame(self.caar, index=self.dates, columns=pd.Index(self.windows))

    def sentence(self, window: str) -> str:
        """One line for the headline: the real CAAR's rank among the placebo dates."""
        if self.reason:
            return f"Placebo: not computed ({self.reason})."
        c = self.windows.index(window)
        unit = "hours" if self.calendar == HOURLY else "dates"
        few = "" if self.enough else f" (fewer than {MIN_PLACEBO} {unit}: cannot reach 5%)"
        return (
            f"Placebo CAR{window}: CAAR {self.real_caar[c]:+.4f}, empirical p = "
            f"{self.p_value[c]:.3f} among {int(np.isfinite(self.caar[:, c]).sum())} placebo "
            f"{unit} of the same {self.n_assets} assets{few}."
        )


def _num(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def empirical_p(real: np.ndarray, placebo: np.ndarray) -> np.ndarray:
    """Two-sided empirical p-value of ``real`` (``(C,)``) among the finite rows of ``placebo``
    (``(B, C)``): twice the smaller tail, each tail counting the real value (Davison & Hinkley
    1997, eq. 4.11), capped at 1; NaN without a finite placebo value."""
    real = np.asarray(real, dtype=float)
    placebo = np.asarray(placebo, dtype=float).reshape(-1, real.size)
    ok = np.isfinite(placebo)
    b = ok.sum(axis=0)
    ge = (ok & (placebo >= real)).sum(axis=0)
    le = (ok & (placebo <= real)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(1.0, 2.0 * (1.0 + np.minimum(ge, le)) / (b + 1.0))
    return np.where((b > 0) & np.isfinite(real), p, np.nan)


# --------------------------------------------------------------------------------- computation
@dataclass(frozen=True)
class DateStats:
    """Statistics of the study at day-0 positions ``pos`` (each a full re-run of the study)."""

    pos: np.ndarray  # (D,) panel positions of day 0
    caar: np.ndarray  # (D, C)
    kp: np.ndarray  # (D, C)
    bmp: np.ndarray  # (D, C)
    n: np.ndarray  # (D, C) pairs with a CAR
    car: np.ndarray  # (D, N, C)


def _windows(values: np.ndarray, rows: np.ndarray, r0: np.ndarray, width: int) -> np.ndarray:
    """``values[rows, r0[d] : r0[d] + width]`` for each date ``d`` as ``(D, len(rows), width)``."""
    view = sliding_window_view(values[rows], width, axis=1)  # (K, S - width + 1, width)
    return np.ascontiguousarray(np.moveaxis(view[:, r0], 1, 0))


def kept_mask(study: EventStudy, y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """The engine's exclusion rules (:func:`analysis.eventstudy.exclude`) on gathered windows
    ``(D, K, W)``: a day-0 return of the asset (and of its benchmark) and at least
    ``min_estimation_obs`` estimation returns. Returns ``(D, K)``."""
    est0, est1 = study.estimation_window
    l1 = est1 - est0 + 1
    ok_est = ~np.isnan(y[..., :l1])
    ok = np.ones(y.shape[:2], dtype=bool)
    if study.event_window[0] <= 0 <= study.event_window[1]:
        ok &= ~np.isnan(y[..., -est0])
        if x is not None:
            ok &= ~np.isnan(x[..., -est0])
    if x is not None:
        ok_est &= ~np.isnan(x[..., :l1])
    return ok & (ok_est.sum(axis=-1) >= study.min_estimation_obs)


def date_stats(study: EventStudy, y: np.ndarray, x: np.ndarray | None) -> DateStats:
    """CAAR, BMP and KP-BMP t of every CAR window for gathered windows ``y``/``x`` of shape
    ``(D, N, W)`` (dates x assets x days from the first estimation day to the last event day),
    every pair kept. The same numbers as ``EventStudy.fit`` at each date: the model is the
    engine's :func:`~analysis.models.fit_model`, the CAR variance its ``car_variance``, and
    :math:`\\bar r` the mean off-diagonal pairwise-complete residual correlation among the pairs
    with a CAR (0 below 20 common days), as :mod:`analysis.crosssection` computes it."""
    d, n, w = y.shape
    est0, est1 = study.estimation_window
    ev0, ev1 = study.event_window
    l1 = est1 - est0 + 1
    wm = np.zeros((ev1 - ev0 + 1, len(study.car_windows)))
    for c, (lo, hi) in enumerate(study.car_windows):
        wm[lo - ev0 : hi - ev0 + 1, c] = 1.0
    yy = y.reshape(d * n, w)
    xx = None if x is None else x.reshape(d * n, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = fit_model(
            study.model,
            yy[:, :l1],
            None if xx is None else xx[:, :l1],
            convention=_convention(study),
        )
        e0 = ev0 - est0
        y_ev = yy[:, e0:]
        x_ev = np.full_like(y_ev, np.nan) if xx is None else xx[:, e0:]
        ar = y_ev - fit.predict(x_ev)
        ar_nan = np.isnan(ar)
        car = window_sums(np.nan_to_num(ar), wm)
        car_var = fit.car_variance(x_ev, wm)
        if ar_nan.any():
            missing = window_sums(ar_nan.astype(float), wm) > 0
            car = np.where(missing, np.nan, car)
            car_var = np.where(missing, np.nan, car_var)
        sar = car / np.sqrt(car_var)
    car3 = car.reshape(d, n, -1)
    sar_c = np.swapaxes(sar.reshape(d, n, -1), 1, 2)  # (D, C, N)
    tb, nb = st.bmp_t(sar_c)
    with np.errstate(invalid="ignore"):
        caar = np.nanmean(np.swapaxes(car3, 1, 2), axis=-1) if n else np.full(tb.shape, np.nan)
    rbar = _rbar(fit.resid.reshape(d, n, l1), ~np.isnan(sar_c), nb)
    kp = st.kp_adjust(tb, nb, rbar)
    bad = (nb < 2) | ~np.isfinite(kp)
    return DateStats(
        np.arange(d),
        caar,
        np.where(bad, np.nan, kp),
        np.where(bad, np.nan, tb),
        nb,
        car3,
    )


def _rbar(resid: np.ndarray, present: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean off-diagonal residual correlation among the pairs ``present`` in each column:
    ``resid`` ``(D, N, L1)``, ``present`` ``(D, C, N)``; ``(D, C)``."""
    d, n_a, _ = resid.shape
    pm = present.astype(float)
    off = np.zeros(pm.shape[:2])
    gaps = np.isnan(resid).any(axis=(1, 2))
    full = np.flatnonzero(~gaps)
    if full.size:  # unit-norm rows: sum of r_ij over a set = ||sum z_i||^2
        z = resid[full] - resid[full].mean(axis=-1, keepdims=True)
        norm = np.sqrt(np.einsum("dnl,dnl->dn", z, z))[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(z, norm, out=z, where=norm > 0)
        z[~(norm[..., 0] > 0)] = 0.0
        if present[full].all():  # every pair in every column: one sum for all columns
            sz1 = z.sum(axis=1)  # (D, L1)
            off[full] = (np.einsum("dl,dl->d", sz1, sz1) - n_a)[:, None]
        else:
            sz = np.matmul(pm[full], z)  # (D, C, L1)
            off[full] = np.einsum("dcl,dcl->dc", sz, sz) - pm[full].sum(axis=-1)
    part = np.flatnonzero(gaps)
    if part.size:  # pairwise-complete correlations, as pandas' DataFrame.corr(min_periods=20)
        r = resid[part]
        m = (~np.isnan(r)).astype(float)
        r0 = np.nan_to_num(r)
        nij = np.einsum("dil,djl->dij", m, m)
        sx = np.einsum("dil,djl->dij", r0, m)  # sum of x_i over the days both have
        sxx = np.einsum("dil,djl->dij", r0 * r0, m)
        sxy = np.einsum("dil,djl->dij", r0, r0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy - sx * np.swapaxes(sx, 1, 2) / nij
            vi = sxx - sx * sx / nij
            corr = cov / np.sqrt(vi * np.swapaxes(vi, 1, 2))
        corr = np.where(np.isfinite(corr) & (nij >= MIN_OVERLAP), corr, 0.0)
        corr[:, np.arange(n_a), np.arange(n_a)] = 1.0
        p = pm[part]
        off[part] = np.einsum("dci,dij,dcj->dc", p, corr, p) - p.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return off / (n * (n - 1.0))


def _event_spans(
    events: Iterable[Event], calendar: str, sessions: pd.DatetimeIndex
) -> list[tuple[int, int]]:
    """Panel positions ``(first, last)`` of each event's day 0 on ``calendar`` (a date-only event
    on the hourly clock spans its whole UTC day). Positions may lie outside the panel."""
    out = []
    s_i8 = sessions.as_unit("ns").asi8
    for ev in events:
        if calendar == HOURLY and is_date_only(ev.when):
            day = pd.Timestamp(ev.when[:10])
            lo = int(np.searchsorted(s_i8, day.as_unit("ns").value))
            hi = int(np.searchsorted(s_i8, (day + pd.Timedelta(days=1)).as_unit("ns").value)) - 1
            out.append((lo, max(lo, hi)))
            continue
        sess = ev.map(calendar).session
        q = int(np.searchsorted(s_i8, pd.Timestamp(sess).as_unit("ns").value))
        out.append((q, q))
    return out


def placebo(
    study: EventStudy,
    prices: pd.DataFrame | None = None,
    meta: Mapping[str, str] | pd.DataFrame | pd.Series | None = None,
    *,
    returns: pd.DataFrame | None = None,
    catalog: Iterable[Any] = (),
) -> PlaceboResult:
    """The placebo distribution of ``study`` (one event, every asset on one calendar) on the
    data it would be fitted on (``prices`` or ``returns``, as :meth:`EventStudy.fit` takes them;
    give the whole history, not just the event's span).

    ``catalog`` lists the events whose event windows the placebo dates must avoid (the studied
    event and ``study.confounders`` always count). A study with several events or calendars has
    no single shared date: the result then carries a ``reason`` and no distribution.
    """
    windows = [_label(*w) for w in study.car_windows]
    empty = np.zeros((0, len(windows)))

    def skip(why: str, cal: str = "") -> PlaceboResult:
        return PlaceboResult.skipped(windows, why, cal)

    if len(study.events) != 1:
        return skip(f"{len(study.events)} events: the placebo needs one shared date")
    if not study.car_windows:
        return skip("no CAR window")
    if study.model == "factor":
        return skip("the factor model has no calendar-time placebo yet")
    data, classes, assets = study.read_inputs(prices, meta, returns=returns, caller="placebo()")
    setup = resolve(study, data, classes, assets)
    if len(setup.panels) != 1:
        return skip(f"assets on {len(setup.panels)} calendars: no single shared date")
    cal, panel = next(iter(setup.panels.items()))
    n_s = len(panel.sessions)
    acol = panel.columns(assets)
    need_x = study.model != "constant_mean"
    bcol = panel.columns([setup.bench[a] or "" for a in assets]) if need_x else None
    est0, est1 = study.estimation_window
    ev0, ev1 = study.event_window
    width = ev1 - est0 + 1
    # day-0 positions whose estimation and event windows lie inside the data
    cand = np.arange(max(0, -est0), n_s - max(ev1, 0))
    cand = cand[(cand + est0 >= 0) & (cand + ev1 < n_s)]
    (real_lo, _real_hi) = _event_spans(study.events, cal, panel.sessions)[0]
    sess = panel.sessions
    real_pos = (
        real_lo
        if real_lo < n_s and sess[real_lo] == setup.mappings[(study.events[0].name, cal)].session
        else -1
    )
    if real_pos < 0 or real_pos + est0 < 0 or real_pos + ev1 >= n_s:
        return skip("the real event's windows are not inside the data", cal)
    values = panel.values[:, :n_s]

    def gather(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        y = _windows(values, acol, pos + est0, width)
        x = None if bcol is None else _windows(values, bcol, pos + est0, width)
        return y, x

    y_r, x_r = gather(np.array([real_pos]))
    keep_r = kept_mask(study, y_r, x_r)[0]
    if not keep_r.any():
        return skip("no asset has the data the study needs on the real date", cal)
    assets_kept = [a for a, k in zip(assets, keep_r, strict=True) if k]
    acol, bcol = acol[keep_r], None if bcol is None else bcol[keep_r]
    real = date_stats(study, y_r[:, keep_r], None if x_r is None else x_r[:, keep_r])

    # catalog windows: the placebo event window must not overlap any of them
    avoid = [*study.events, *study.confounders, *(as_event(e) for e in catalog)]
    bad = np.zeros(cand.size, dtype=bool)
    for lo, hi in _event_spans(avoid, cal, sess):
        bad |= (cand + ev0 <= hi + ev1) & (lo + ev0 <= cand + ev1)
    dropped = {"event window overlaps a catalog event window": int(bad.sum())}
    cand_ok = cand[~bad]
    n_a = len(assets_kept)
    chunk = max(1, CHUNK_VALUES // max(1, n_a * width))
    caars, kps, kept_pos = [], [], []
    short = 0
    rows = np.concatenate([acol, bcol]) if bcol is not None else acol
    complete = not np.isnan(values[rows]).any()  # then every asset is kept on every date
    for lo in range(0, cand_ok.size, chunk):
        pos = cand_ok[lo : lo + chunk]
        y, x = gather(pos)
        ok = np.ones(pos.size, dtype=bool) if complete else kept_mask(study, y, x).all(axis=1)
        short += int((~ok).sum())
        if not ok.any():
            continue
        if not ok.all():
            y, x = y[ok], None if x is None else x[ok]
        stats = date_stats(study, y, x)
        caars.append(stats.caar)
        kps.append(stats.kp)
        kept_pos.append(pos[ok])
    dropped["an asset lacks its day-0 return or estimation history"] = short
    pos_all = np.concatenate(kept_pos) if kept_pos else np.zeros(0, dtype=int)
    return PlaceboResult(
        windows,
        assets_kept,
        cal,
        pd.Timestamp(sess[real_pos]),
        pd.DatetimeIndex(sess[pos_all]),
        real.caar[0],
        real.kp[0],
        np.vstack(caars) if caars else empty,
        np.vstack(kps) if kps else empty,
        candidates=int(cand.size),
        dropped=dropped,
    )


# --------------------------------------------------------------------------------- verdict
SMALL_N = 5
"""Below this many assets the headline is the placebo result, not the parametric KP-BMP t:
with N = 2-4 the cross-sectional s.d. of the standardized CARs has 1-3 degrees of freedom and
the t(N-1) reference is not to be trusted with fat-tailed, correlated returns."""


def verdict_lines(
    result: Any,
    pl: PlaceboResult | None,
    windows: Iterable[str] | None = None,
    *,
    what: str = "assets",
) -> list[str]:
    """The headline per CAR window: the mean CAR, the KP-BMP t with its p-value, and the placebo
    p-value; with fewer than :data:`SMALL_N` assets (counted here from ``result.car``) the
    placebo p-value is the headline and the KP-BMP t is shown without a verdict.

    ``result`` is an :class:`~analysis.results.EventStudyResult` (one event).
    """
    car = result.car
    t = result.tests
    kp = t[(t["group"] == "all") & (t["kind"] == "car") & (t["test"] == "kp_bmp")].set_index(
        "window"
    )
    recs = {r["window"]: r for r in (pl.records() if pl is not None else [])}
    out = []
    for w in list(car.columns) if windows is None else list(windows):
        if w not in car.columns:
            continue
        n = int(car[w].notna().sum())
        mean = float(car[w].mean())
        noun = what[:-1] if n == 1 and what.endswith("s") else what  # "1 asset", "8 assets"
        head = f"CAR {w}: mean {100 * mean:+.1f}% across {n} {noun}"
        kp_txt = "KP-adjusted BMP t n/a"
        if w in kp.index and np.isfinite(kp.loc[w, "stat"]):
            kp_txt = f"KP-adjusted BMP t = {kp.loc[w, 'stat']:.2f} (p = {kp.loc[w, 'pvalue']:.3f})"
        r = recs.get(w)
        unit = "hours" if pl is not None and pl.calendar == HOURLY else "dates"
        pl_txt = (
            f"placebo p = {r['p_value']:.3f} among {r['n_placebo']} placebo {unit}"
            if r is not None and r["p_value"] is not None
            else "no placebo distribution"
            + (f" ({pl.reason})" if pl is not None and pl.reason else "")
        )
        if n >= SMALL_N:
            out.append(f"{head}; {kp_txt}; {pl_txt}")
        else:
            out.append(
                f"{head}; {pl_txt}, the verdict since N = {n} < {SMALL_N} is too few assets "
                f"for the parametric tests ({kp_txt}, for reference only)"
            )
    return out


__all__ = [
    "MIN_PLACEBO",
    "SMALL_N",
    "PlaceboResult",
    "date_stats",
    "empirical_p",
    "placebo",
    "verdict_lines",
]
