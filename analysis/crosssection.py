"""Cross-sectional tests over asset-event pairs, per event day and per CAR window.

A "column" is a window of event days: each single day ``[t, t]`` and each CAR window. Single days
are windows of length one, so one code path serves both and the statistics agree by construction.
Tests are computed for groups of pairs (all pairs, each event, each asset class).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from analysis import statistics as st


@dataclass(frozen=True)
class CrossSectionInput:
    """Arrays for the included pairs (P), event days (E), estimation days (L1), columns (C)."""

    car: np.ndarray  # (P, C) cumulative abnormal returns (AR for one-day columns)
    car_var: np.ndarray  # (P, C) forecast-error-corrected variances
    dof: np.ndarray  # (P,) degrees of freedom of sigma
    nobs: np.ndarray  # (P,) estimation observations
    resid_est: np.ndarray  # (P, L1) estimation-window residuals
    ar_event: np.ndarray  # (P, E) event-window abnormal returns
    windows: np.ndarray  # (E, C) 0/1 day membership of each column
    corr_blocks: Sequence[CorrBlock]  # residual correlations per event
    lamb_q: np.ndarray | None  # (P, E) (R_m - mu_m)^2 / S_mm, market model only
    convention: str


_COLUMNS = [
    "group",
    "kind",
    "window",
    "start",
    "end",
    "test",
    "mean",
    "stat",
    "pvalue",
    "pvalue_holm",
    "n",
    "too_few_assets",
    "dist",
    "null",
    "reason",
]

MIN_ASSETS = 5
"""Below this many pairs a parametric cross-sectional test is flagged ``too_few_assets``: its
t(N-1) or N(0,1) reference rests on N residuals or on a cross-sectional variance from N values,
and with 8 tokens sharing a date KP-BMP already has 10-17% power; such cells are shown without
stars, and a headline falls back to placebo (calendar-time) inference."""

TOO_FEW_ASSETS = f"too few assets (N < {MIN_ASSETS})"


def holm_adjust(frame: pd.DataFrame) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values across the CAR windows of each group and test,
    NaN for single days and for invalid cells. Holm controls the family-wise error rate over
    the windows a reader scans for "any significant window" without assuming independence (the
    windows overlap). The numbers are ``statsmodels.stats.multitest.multipletests(p,
    method="holm")[1]`` (checked in ``tests/analysis/test_multiple_testing.py``), computed here
    because ``multipletests`` runs ``gc.collect()`` on every call: seconds per thousand groups.
    """
    out = np.full(len(frame), np.nan)
    ok = (frame["kind"].to_numpy() == "car") & np.isfinite(frame["pvalue"].to_numpy(float))
    if not ok.any():
        return out
    sub = frame.loc[ok, ["group", "test", "pvalue"]]
    rows = np.flatnonzero(ok)
    pvalue = sub["pvalue"].to_numpy()  # once: a column lookup per group took seconds
    for idx in sub.groupby(["group", "test"], sort=False).indices.values():
        out[rows[idx]] = _holm(pvalue[idx])
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979): with :math:`p_{(1)} \\le \\dots \\le p_{(m)}`, the adjusted
    :math:`\\tilde p_{(k)} = \\min(1, \\max_{j \\le k} (m - j + 1) p_{(j)})`."""
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


class Partition:
    """Groups of pairs that do not overlap (all pairs; each event; each asset class).

    Every statistic of every group of a partition is computed in one batched pass: the pairs are
    laid out as ``(G, N_max, ...)`` arrays padded with NaN (a free reshape when the groups are
    contiguous and of equal size, as events are), and the array functions of
    :mod:`analysis.statistics` take the cross-section on the last axis and ignore NaN.

    Parameters
    ----------
    names
        Group names in output order.
    codes
        Group of each pair, shape ``(P,)``, values ``0 .. len(names) - 1``.
    """

    def __init__(self, names: Sequence[str], codes: np.ndarray) -> None:
        self.names = list(names)
        self.codes = np.asarray(codes, dtype=np.intp)
        g = len(self.names)
        self.sizes = np.bincount(self.codes, minlength=g)
        self.n_max = int(self.sizes.max()) if g else 0
        p = self.codes.size
        self._reshape = (
            g == 1
            or (bool((self.sizes == self.n_max).all()) and bool(np.all(np.diff(self.codes) >= 0)))
        ) and g * self.n_max == p
        if not self._reshape:
            order = np.argsort(self.codes, kind="stable")
            starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
            slot = np.empty(p, dtype=np.intp)
            slot[order] = np.arange(p) - np.repeat(starts, self.sizes)
            self._slot = slot
            self._order, self._starts = order, starts

    @classmethod
    def single(cls, name: str, n_pairs: int) -> Partition:
        return cls([name], np.zeros(n_pairs, dtype=np.intp))

    def pad(self, a: np.ndarray) -> np.ndarray:
        """``a`` of shape ``(P, ...)`` as ``(G, N_max, ...)``, NaN where a group has fewer pairs."""
        g = len(self.names)
        if self._reshape:
            return a.reshape((g, self.n_max) + a.shape[1:])
        out = np.full((g, self.n_max) + a.shape[1:], np.nan)
        out[self.codes, self._slot] = a
        return out

    def last(self, a: np.ndarray) -> np.ndarray:
        """``a`` of shape ``(P, K)`` as ``(G, K, N_max)``: the cross-section on the last axis."""
        return np.swapaxes(self.pad(a), 1, 2)

    def sums(self, a: np.ndarray) -> np.ndarray:
        """Column sums of ``a`` (shape ``(P, K)``, no NaN) within each group: ``(G, K)``."""
        g = len(self.names)
        if g == 1:
            return a.sum(axis=0)[None]
        if self._reshape:
            return a.reshape(g, self.n_max, -1).sum(axis=1)
        out = np.zeros((g,) + a.shape[1:])
        nonempty = self.sizes > 0
        out[nonempty] = np.add.reduceat(a[self._order], self._starts[nonempty], axis=0)
        return out

    def total(self, v: np.ndarray) -> np.ndarray:
        """Sum of a per-pair vector within each group."""
        return np.bincount(self.codes, weights=v, minlength=len(self.names))


@dataclass
class _Block:
    """One test for every group of one partition: arrays of shape ``(G, C)``."""

    part: Partition
    test: str
    null: str
    parametric: bool
    stat: np.ndarray
    pvalue: np.ndarray
    n: np.ndarray
    dist: Callable[[], np.ndarray] | str
    reason: Callable[[], np.ndarray]


def _reasons(
    n: np.ndarray,
    stat: np.ndarray,
    min_n: int,
    override: np.ndarray | None = None,
    override_text: str = "",
) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """Invalid cells of a ``(G, C)`` block and a function giving their reasons as text."""
    few = n < min_n
    nonfinite = ~few & ~np.isfinite(stat)
    over = np.zeros(n.shape, dtype=bool) if override is None else np.broadcast_to(override, n.shape)
    bad = few | nonfinite | over

    def text() -> np.ndarray:
        out = np.full(n.shape, "", dtype=object)
        if bad.any():
            out[nonfinite] = "not finite (zero or undefined variance)"
            for k in np.unique(n[few]):
                out[few & (n == k)] = f"needs at least {min_n} pairs, has {int(k)}"
            out[over] = override_text
        return out

    return bad, text


def cell_text(fmt: Callable[..., str], *arrays: np.ndarray) -> Callable[[], np.ndarray]:
    """Per-cell text built when the table is laid out (``fmt`` of the cells' values of
    ``arrays``, broadcast together), formatted once per distinct value."""

    def build() -> np.ndarray:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        cols = [np.broadcast_to(a, shape).ravel() for a in arrays]
        cache: dict[tuple, str] = {}
        out = np.empty(len(cols[0]), dtype=object)
        for k, key in enumerate(zip(*(c.tolist() for c in cols), strict=True)):
            s = cache.get(key)
            if s is None:
                s = cache[key] = fmt(*key)
            out[k] = s
        return out.reshape(shape)

    return build


def _group_major(values: list[np.ndarray], dtype: Any) -> np.ndarray:
    """Per-test ``(G, C)`` arrays as one column of rows ordered group, test, column."""
    return np.stack(values).astype(dtype, copy=False).transpose(1, 0, 2).ravel()


class TestTable:
    """The cross-sectional tests as arrays; :meth:`frame` lays them out as a tidy frame."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        blocks: Sequence[_Block],
        labels: Sequence[str],
        kinds: Sequence[str],
        bounds: Sequence[tuple[int, int]],
        means: dict[int, np.ndarray] | None = None,
    ) -> None:
        self.blocks = list(blocks)
        self.labels, self.kinds, self.bounds = list(labels), list(kinds), list(bounds)
        self.means = means or {}  # id(partition) -> (G, C) mean (C)AR of the group's pairs

    def frame(self) -> pd.DataFrame:
        """``group, kind, window, start, end, test, mean, stat, pvalue, pvalue_holm, n,
        too_few_assets, dist, null, reason``.

        ``mean`` is the group's mean abnormal return of the day (AAR) or mean CAR of the window
        (CAAR) over the pairs present, at full precision; ``pvalue_holm`` the Holm-adjusted
        p-value across the CAR windows (:func:`holm_adjust`); ``too_few_assets`` marks
        parametric tests with fewer than :data:`MIN_ASSETS` pairs."""
        if not self.blocks:
            return pd.DataFrame(columns=_COLUMNS)
        n_cols = len(self.labels)
        cols: dict[str, list[np.ndarray]] = {k: [] for k in _COLUMNS}
        # blocks are stored per partition, test-major; rows are group-major within a partition
        parts: list[list[_Block]] = []
        for b in self.blocks:
            if parts and parts[-1][0].part is b.part:
                parts[-1].append(b)
            else:
                parts.append([b])
        kinds = np.asarray(self.kinds, dtype=object)
        labels = np.asarray(self.labels, dtype=object)
        starts = np.asarray([b[0] for b in self.bounds], dtype=np.int64)
        ends = np.asarray([b[1] for b in self.bounds], dtype=np.int64)
        for blocks in parts:
            part = blocks[0].part
            g, t = len(part.names), len(blocks)
            shape = (g, n_cols)
            names = np.asarray([b.test for b in blocks], dtype=object)
            nulls = np.asarray([b.null for b in blocks], dtype=object)
            dists = [
                np.full(shape, b.dist, dtype=object)
                if isinstance(b.dist, str)
                else np.broadcast_to(b.dist(), shape)
                for b in blocks
            ]
            cols["group"].append(np.repeat(np.asarray(part.names, dtype=object), t * n_cols))
            cols["kind"].append(np.tile(kinds, g * t))
            cols["window"].append(np.tile(labels, g * t))
            cols["start"].append(np.tile(starts, g * t))
            cols["end"].append(np.tile(ends, g * t))
            cols["test"].append(np.tile(np.repeat(names, n_cols), g))
            mean = self.means.get(id(part), np.full(shape, np.nan))
            cols["mean"].append(_group_major([mean] * t, float))
            cols["stat"].append(_group_major([b.stat for b in blocks], float))
            cols["pvalue"].append(_group_major([b.pvalue for b in blocks], float))
            cols["pvalue_holm"].append(np.full(g * t * n_cols, np.nan))
            cols["n"].append(_group_major([b.n for b in blocks], np.int64))
            few = [b.parametric & (b.n > 0) & (b.n < MIN_ASSETS) for b in blocks]
            cols["too_few_assets"].append(_group_major(few, bool))
            cols["dist"].append(_group_major(dists, object))
            cols["null"].append(np.tile(np.repeat(nulls, n_cols), g))
            cols["reason"].append(_group_major([b.reason() for b in blocks], object))
        out = pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})
        out["pvalue_holm"] = holm_adjust(out)
        return out


@dataclass(frozen=True)
class Cells:
    """What a test's compute function returns: one statistic per group and column, ``(G, C)``
    (or anything that broadcasts to it).

    Cells with fewer pairs than the test's ``min_pairs`` or a non-finite statistic become invalid
    (NaN statistic and p-value, with the reason); ``invalid`` marks further cells that are invalid
    for the reason ``invalid_reason``.
    """

    stat: np.ndarray | float
    pvalue: np.ndarray | float
    n: np.ndarray
    dist: str | Callable[[], np.ndarray]
    invalid: np.ndarray | None = None
    invalid_reason: str = ""


class PairData:
    """Per-pair pieces that several tests or partitions share, each computed on first use."""

    def __init__(self, inp: CrossSectionInput, partitions: Sequence[Partition]) -> None:
        self.inp = inp
        self.gsum = _GroupSums(partitions)
        self.kp_cache: dict[int, np.ndarray] = {}  # correlation sums of whole blocks (events)
        self.lengths = inp.windows.sum(axis=0)  # days per column
        self.n_est = inp.resid_est.shape[1]
        self.estudy2 = inp.convention == "estudy2"
        self._shares: dict[str, np.ndarray] = {}

    @cached_property
    def sar(self) -> np.ndarray:
        """Standardized (C)ARs ``(P, C)``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.inp.car / np.sqrt(self.inp.car_var)

    @cached_property
    def ranks(self) -> _RankInput:
        return _RankInput([self.inp.resid_est, self.inp.ar_event])

    @cached_property
    def positive(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pair: estimation residuals present, how many are positive, and their share."""
        n_ok = count(self.inp.resid_est)
        n_pos = (self.inp.resid_est > 0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return n_ok, n_pos, n_pos / n_ok

    @cached_property
    def complete(self) -> np.ndarray:
        """Pairs with the (C)AR of each column, ``(P, C)``."""
        return ~np.isnan(self.inp.car)

    @cached_property
    def present_event(self) -> np.ndarray:
        """1.0 where a pair has the abnormal return of an event day, ``(P, E)``."""
        return (~np.isnan(self.inp.ar_event)).astype(float)

    @cached_property
    def partial_columns(self) -> np.ndarray:
        """Textbook: columns in which some pair has abnormal returns on some of the days but no
        (C)AR; their rank and sign tests use the pairs with the (C)AR only (one pair set for
        every test of a window). None under estudy2, which tests single days."""
        if self.estudy2 or self.complete.all():
            return np.zeros(0, dtype=np.intp)
        some = (self.present_event @ self.inp.windows) > 0
        return np.flatnonzero((some & ~self.complete).any(axis=0))

    def positive_window_share(self, length: int) -> np.ndarray:
        """Per pair, the share of positive sums among the runs of ``length`` consecutive
        estimation residuals without a gap (Cowan 1992's :math:`\\hat p` for windows); the
        share of positive residuals for ``length`` 1. NaN for a pair without such a run."""
        if length <= 1:
            return self.positive[2]
        key = f"share{length}"
        if key not in self._shares:
            r = self.inp.resid_est
            zero = np.zeros((r.shape[0], 1))
            if self.resid_complete:  # every run is whole: one cumulative sum, no masks
                cs = np.hstack([zero, np.cumsum(r, axis=1)])
                positive = (cs[:, length:] - cs[:, :-length]) > 0
                whole_runs = np.full(r.shape[0], float(positive.shape[1]))
            else:
                miss = np.isnan(r)
                cs = np.hstack([zero, np.cumsum(np.where(miss, 0.0, r), axis=1)])
                cm = np.hstack([zero, np.cumsum(miss, axis=1)])
                whole = (cm[:, length:] - cm[:, :-length]) == 0
                positive = ((cs[:, length:] - cs[:, :-length]) > 0) & whole
                whole_runs = whole.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                self._shares[key] = positive.sum(axis=1) / whole_runs
        return self._shares[key]

    @cached_property
    def resid_complete(self) -> bool:
        return not np.isnan(self.inp.resid_est).any()

    @cached_property
    def est_var(self) -> np.ndarray:
        """Variance of each pair's estimation residuals."""
        return _row_var(self.inp.resid_est)


class GroupData:
    """The inputs of the tests for every group of one partition, each computed on first use and
    shared by the tests that need it. Arrays are ``(G, C, N_max)`` with the cross-section on the
    last axis (NaN-padded), or ``(G, ...)`` group aggregates."""

    def __init__(self, pairs: PairData, part: Partition) -> None:
        self.pairs = pairs
        self.inp = pairs.inp
        self.part = part
        self.sizes = part.sizes
        self.shape = (len(part.names), self.inp.car.shape[1])

    @property
    def estudy2(self) -> bool:
        return self.pairs.estudy2

    @property
    def lengths(self) -> np.ndarray:
        return self.pairs.lengths

    @cached_property
    def car(self) -> np.ndarray:
        return self.part.last(self.inp.car)

    @cached_property
    def sar(self) -> np.ndarray:
        return self.part.last(self.pairs.sar)

    @cached_property
    def dof(self) -> np.ndarray:
        """Degrees of freedom of each pair's sigma, ``(G, 1, N_max)``."""
        return self.part.pad(self.inp.dof)[:, None, :]

    @cached_property
    def any_short_dof(self) -> np.ndarray:
        """Groups with a pair whose estimation has at most 2 degrees of freedom, ``(G,)``."""
        return self.part.total((self.inp.dof <= 2).astype(float)) > 0

    @cached_property
    def bmp(self) -> tuple[np.ndarray, np.ndarray]:
        """Boehmer-Musumeci-Poulsen t and the pairs it uses."""
        return st.bmp_t(self.sar)

    def residual_correlation(self, n: np.ndarray) -> np.ndarray:
        """Mean off-diagonal estimation-residual correlation of the pairs present, ``(G, C)``."""
        return _kp_rbar(self.inp, self.pairs.sar, self.part, n, self.pairs.kp_cache)

    @cached_property
    def positive_share(self) -> np.ndarray:
        """:math:`\\hat p` of the generalized sign test per group and column, ``(G, C)``.

        Textbook (Cowan 1992): the mean over pairs of each pair's share of positive
        estimation-period CARs of the column's length -- for one day the share of positive
        residuals (Cowan 1992, eq. for :math:`\\hat p`), for an L-day window the share of the
        (overlapping) runs of L consecutive estimation residuals whose sum is positive, so the
        null share matches the statistic that is counted (a daily share misstates it for
        skewed returns: size 9% for [-5,10]). estudy2: the pooled share of positive daily
        residuals for every column (it tests single days only).
        """
        total = self.part.total
        lengths = self.lengths.astype(int)
        out = np.empty(self.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.estudy2:
                n_ok, n_pos, _ = self.pairs.positive
                out[:] = (total(n_pos.astype(float)) / total(n_ok.astype(float)))[:, None]
                return out
            for length in np.unique(lengths):
                share = self.pairs.positive_window_share(int(length))
                ok = ~np.isnan(share)
                out[:, lengths == length] = (total(np.where(ok, share, 0.0)) / total(ok * 1.0))[
                    :, None
                ]
        return out

    # ---------------------------------------------------------------- rank and sign deviations
    @cached_property
    def rank_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs present per group and day ``N_t`` (estimation and event days) and the mean
        number of days of the pairs, ``(G,)``."""
        return self.pairs.ranks.counts(self.part, self.pairs.gsum)

    @cached_property
    def rank_n(self) -> np.ndarray:
        """Pairs with an abnormal return, averaged over the days of each column, ``(G, C)``;
        for a column restricted to the pairs with its (C)AR (:attr:`PairData.partial_columns`)
        the number of those pairs."""
        nt = self.rank_counts[0][:, self.pairs.n_est :]
        n = np.round((nt @ self.inp.windows) / np.maximum(self.lengths, 1)).astype(int)
        for c in self.pairs.partial_columns:
            n[:, c] = self.part.total(self.pairs.complete[:, c].astype(float)).astype(int)
        return n

    @cached_property
    def centered_rank_sums(self) -> np.ndarray:
        """:math:`\\sum_i K_{it} - (M_i + 1)/2` per group and day (Corrado 1989)."""
        return self.pairs.ranks.centered_sums(self.part, self.pairs.gsum)

    @cached_property
    def scaled_rank_sums(self) -> np.ndarray:
        """:math:`\\sum_i K_{it}/(M_i + 1) - 1/2` per group and day (Corrado & Zivney 1992)."""
        return self.pairs.ranks.scaled_sums(self.part, self.pairs.gsum, self.rank_counts[0])

    @cached_property
    def median_sign_sums(self) -> np.ndarray:
        """:math:`\\sum_i \\mathrm{sign}(A_{it} - \\mathrm{median}_i)` per group and day."""
        return self.pairs.gsum(self.part, "sign", self.pairs.ranks.sign)

    @cached_property
    def rank_days(self) -> np.ndarray:
        """The number of days ``T`` in :math:`S = \\sqrt{\\sum_t \\bar d_t^2 / T}`, ``(G,)``.

        Textbook (Corrado 1989, eq. 3; Corrado & Zivney 1992, eq. 5; Cowan 1992): the days of the
        combined estimation and event window on which the group has data, the same days the sum
        runs over, so that :math:`S^2` is the mean of the squared daily aggregates. estudy2
        divides by the mean number of days of the pairs, :math:`\\bar M`, which is smaller than
        ``T`` on an unbalanced panel (tokens listing at different dates) and inflates ``S`` -- a
        Corrado-Zivney test of size 2% instead of 5% (``tests/analysis/test_audit.py``).
        """
        nt, t_eff = self.rank_counts
        if self.estudy2:
            return t_eff
        return (np.asarray(nt) > 0).sum(axis=-1).astype(float)

    @cached_property
    def empty_day_windows(self) -> np.ndarray:
        """Columns holding an event day on which no pair of the group has an abnormal return
        (e.g. the benchmark close is missing), ``(G, C)``: their window statistics are NaN,
        never silently computed over the shorter window."""
        nt = np.asarray(self.rank_counts[0])[..., self.pairs.n_est :]
        return (nt == 0).astype(float) @ self.inp.windows > 0

    def rank_z(self, sums: np.ndarray, *, root: bool, kind: str) -> np.ndarray:
        """Window statistic of rank or sign deviations from their group-day ``sums``: daily means
        over ``N_t`` (``root=False``) or ``sqrt(N_t)`` pairs, scaled by their time-series s.d.

        A window in which some pair has abnormal returns on some days but no (C)AR (a missing
        day inside the window) is summed over the pairs that have the (C)AR only, so that every
        test of the window uses one pair set (textbook; estudy2 tests single days). ``kind``
        names the deviations (``"centered"``, ``"scaled"`` or ``"sign"``)."""
        nt, _ = self.rank_counts
        dbar, s = _rank_aggregates(
            sums, nt, self.rank_days, root=root, scale_to=self.sizes if self.estudy2 else None
        )
        n_est = self.pairs.n_est
        z = st.window_rank_z(dbar[..., n_est:], s[..., None], self.inp.windows)
        partial = self.pairs.partial_columns
        if partial.size:
            dev = self.pairs.ranks.event_deviations(kind, n_est)
            present = self.pairs.present_event
            for c in partial:
                mask = self.pairs.complete[:, c].astype(float)[:, None]
                nt_c = self.part.sums(present * mask)
                with np.errstate(invalid="ignore", divide="ignore"):
                    dbar_c = self.part.sums(dev * mask) / (np.sqrt(nt_c) if root else nt_c)
                dbar_c = np.where(nt_c > 0, dbar_c, np.nan)
                z[:, c] = st.window_rank_z(dbar_c, s[..., None], self.inp.windows[:, [c]])[:, 0]
        return z

    # ---------------------------------------------------------------- time-series s.d. family
    @cached_property
    def mean_car(self) -> tuple[np.ndarray, np.ndarray]:
        """Cross-sectional mean (C)AR and the pairs it uses, ``(G, C)``."""
        mean, _, n = st.mean_sd(self.car)
        return mean, n

    @cached_property
    def mean_nobs(self) -> np.ndarray:
        """Mean estimation observations of the pairs, ``(G,)``."""
        return self.part.total(self.inp.nobs.astype(float)) / self.sizes

    @cached_property
    def sd_mean_residual(self) -> np.ndarray:
        """Time-series s.d. of the group's daily mean estimation residual, ``(G,)`` (Brown &
        Warner 1985)."""
        resid = self.inp.resid_est
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # days on which no pair has data
            if self.pairs.resid_complete:  # the daily mean residual of each group from its sums
                cm = self.pairs.gsum(self.part, "resid", resid) / self.sizes[:, None]  # (G, L1)
            else:
                cm = np.nanmean(self.part.pad(resid), axis=1)
            return np.nanstd(cm, ddof=1, axis=1)


def count(x: np.ndarray) -> np.ndarray:
    """Non-missing entries of each row (the row length when nothing is missing)."""
    if not np.isnan(x).any():
        return np.full(x.shape[0], x.shape[1])
    return (~np.isnan(x)).sum(axis=1)


def _row_var(x: np.ndarray) -> np.ndarray:
    """``np.nanvar(x, axis=1, ddof=1)`` (rows without two values: NaN), one pass fewer when
    nothing is missing."""
    if np.isnan(x).any() or x.shape[1] < 2:
        return np.nanvar(x, axis=1, ddof=1)
    out = np.empty(x.shape[0])
    step = max(1, 65_536 // x.shape[1])  # blocks of rows: the deviations stay in cache
    for lo in range(0, x.shape[0], step):
        d = x[lo : lo + step] - x[lo : lo + step].mean(axis=1, keepdims=True)
        out[lo : lo + step] = np.einsum("ij,ij->i", d, d)
    return out / (x.shape[1] - 1)


class _GroupSums:
    """Group sums of per-pair rows, once per partition and array; the single-group partition
    ("all pairs") is the total of a finer partition's sums when there is one."""

    def __init__(self, partitions: Sequence[Partition]) -> None:
        self.fine = next((p for p in partitions if len(p.names) > 1), None)
        self.cache: dict[tuple[int, str], np.ndarray] = {}

    def __call__(
        self, part: Partition, key: str, a: np.ndarray | Callable[[], np.ndarray]
    ) -> np.ndarray:
        if len(part.names) == 1 and self.fine is not None:
            return self(self.fine, key, a).sum(axis=0, keepdims=True)
        k = (id(part), key)
        if k not in self.cache:
            self.cache[k] = part.sums(a() if callable(a) else a)
        return self.cache[k]


class _RankInput:
    """Ranks of each pair's estimation and event abnormal returns (Corrado 1989), and the rank
    and sign deviations of the rank tests, kept as per-pair pieces whose group-and-day sums are
    all the tests need (no ``(P, T)`` deviation array per test and partition)."""

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        """``parts``: the estimation residuals and the event abnormal returns, ``(P, L1)`` and
        ``(P, E)``, ranked together as one row of ``L1 + E`` days per pair."""
        self.parts = parts
        ranks, srt, m_i = _ranks_sorted(parts, nan_rank=0.0)
        n_days = sum(x.shape[1] for x in parts)
        self.nan = np.hstack([np.isnan(x) for x in parts]) if (m_i < n_days).any() else None
        self.present = None if self.nan is None else (~self.nan).astype(float)
        self.m_i = m_i
        self.ranks = ranks  # 0 where the pair has no value
        self.n_days = n_days
        self.median = _sorted_median(srt, m_i)

    @cached_property
    def sign(self) -> np.ndarray:
        """:math:`G_{it} = \\mathrm{sign}(A_{it} - \\mathrm{median}_i)`, 0 where missing."""
        med = self.median[:, None]
        sign = np.empty(self.ranks.shape)
        c = 0
        for x in self.parts:
            out = sign[:, c : c + x.shape[1]]
            np.subtract(x, med, out=out)
            np.sign(out, out=out)
            c += x.shape[1]
        return sign if self.nan is None else np.where(self.nan, 0.0, sign)

    def event_deviations(self, kind: str, n_est: int) -> np.ndarray:
        """Per pair and event day the deviation of one rank test, 0 where missing, ``(P, E)``:
        ``"centered"`` :math:`K_{it} - (M_i+1)/2` (Corrado 1989), ``"scaled"``
        :math:`K_{it}/(M_i+1) - 1/2` (Corrado & Zivney 1992) or ``"sign"``
        :math:`\\mathrm{sign}(A_{it} - \\mathrm{median}_i)`."""
        if kind == "sign":
            return self.sign[:, n_est:]
        ranks = self.ranks[:, n_est:]
        present = np.ones(ranks.shape) if self.present is None else self.present[:, n_est:]
        if kind == "centered":
            return ranks - present * ((self.m_i + 1.0) / 2.0)[:, None]
        return ranks / (self.m_i[:, None] + 1.0) - 0.5 * present

    def counts(self, part: Partition, gsum: _GroupSums) -> tuple[np.ndarray, np.ndarray]:
        """Per group and day the pairs present ``N_t``, and per group the mean number of days of
        the pairs that have any (``T`` when complete)."""
        g = len(part.names)
        m_i = self.m_i
        if self.present is None:
            nt = np.broadcast_to(part.sizes.astype(float)[:, None], (g, self.n_days))
            t_eff = np.full(g, float(self.n_days))
        else:
            nt = gsum(part, "present", self.present)
            has = m_i > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                t_eff = part.total(np.where(has, m_i, 0.0)) / part.total(has * 1.0)
        return nt, t_eff

    def centered_sums(self, part: Partition, gsum: _GroupSums) -> np.ndarray:
        """Per group and day: :math:`\\sum_i K_{it} - (M_i + 1)/2`."""
        k_sum = gsum(part, "ranks", self.ranks)
        half = (self.m_i + 1.0) / 2.0
        present = self.present
        if present is None:
            return k_sum - part.total(half)[:, None]
        return k_sum - gsum(part, "half", lambda: present * half[:, None])

    def scaled_sums(self, part: Partition, gsum: _GroupSums, nt: np.ndarray) -> np.ndarray:
        """Per group and day: :math:`\\sum_i K_{it} / (M_i + 1) - 1/2` (``nt``: pairs present)."""
        if self.present is None:
            return gsum(part, "ranks", self.ranks) / (self.n_days + 1.0) - 0.5 * nt
        scaled = gsum(part, "scaled", lambda: self.ranks / (self.m_i[:, None] + 1.0))
        return scaled - 0.5 * nt


def _rank_aggregates(
    total: np.ndarray,
    nt: np.ndarray,
    t_eff: np.ndarray,
    *,
    root: bool,
    scale_to: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily aggregates of rank (or sign) deviations and their time-series s.d., per group.

    From group-day sums: ``total`` and ``nt`` of shape ``(G, T)`` (sum of the deviations and
    pairs present), ``t_eff`` of shape ``(G,)`` (mean number of days of the pairs).
    :math:`\\bar d_t = \\sum_i d_{it} / N_t` (Corrado 1989; ``root=False``) or
    :math:`/\\sqrt{N_t}` (Corrado & Zivney 1992); :math:`S = \\sqrt{\\sum_t \\bar d_t^2 / T}`.
    ``scale_to=N`` rescales the sums by :math:`N/N_t` as estudy2 does. The direct form from the
    ``(T, N)`` deviations is the reference in ``tests/analysis/test_statistics_and_benchmark.py``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        if scale_to is not None:
            total = total / nt * np.asarray(scale_to, dtype=float)[:, None]
        dbar = total / (np.sqrt(nt) if root else nt)
        dbar = np.where(nt > 0, dbar, np.nan)
        s = np.sqrt(np.nansum(dbar**2, axis=-1) / t_eff)
    return dbar, s


def _ranks_sorted(
    full: np.ndarray | Sequence[np.ndarray], nan_rank: float = np.nan
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks within each row (average ranks for ties; ``nan_rank`` where a value is missing),
    the sorted rows and the number of non-missing values per row. ``full`` may be given as
    column blocks with the same rows (ranked as if joined)."""
    parts = [full] if isinstance(full, np.ndarray) else list(full)
    ranks, srt, tied = st.sorted_ranks(*parts)
    p, t = ranks.shape

    def rows(sel: np.ndarray) -> np.ndarray:
        return np.hstack([x[sel] for x in parts])

    if tied.any():
        ranks[tied] = pd.DataFrame(rows(tied)).rank(axis=1, method="average").to_numpy()
    m_valid = (~np.isnan(srt[:, -1])) if t else np.ones(p, dtype=bool)
    if t and not m_valid.all():  # NaN sort last: a row is complete iff its last value is not
        nan = np.hstack([np.isnan(x) for x in parts])
        ranks[nan] = nan_rank
        m_i = (~nan).sum(axis=1).astype(float)
    else:
        m_i = np.full(p, float(t))
    return ranks, srt, m_i


def _sorted_median(srt: np.ndarray, m_i: np.ndarray) -> np.ndarray:
    """Median of each row from its ascending values (NaN last) and its count of values; the same
    number ``np.nanmedian`` gives (mean of the two middle values for an even count)."""
    m = m_i.astype(np.intp)
    rows = np.arange(srt.shape[0])
    lo = srt[rows, np.maximum((m - 1) // 2, 0)]
    hi = srt[rows, np.maximum(m // 2, 0)]
    med = np.where(m % 2 == 1, lo, (lo + hi) / 2.0)
    return np.where(m > 0, med, np.nan)


def _kp_rbar(
    inp: CrossSectionInput,
    sar: np.ndarray,
    part: Partition,
    n: np.ndarray,
    cache: dict[int, np.ndarray],
) -> np.ndarray:
    """Mean off-diagonal residual correlation among the pairs present in each group and column.

    Correlation blocks are events; a block that lies inside one group contributes the same sum
    to every partition, so it is computed once (``cache``).
    """
    present = (~np.isnan(sar)).astype(float)  # (P, C)
    off = np.zeros(n.shape)
    for b_id, block in enumerate(inp.corr_blocks):
        codes = part.codes[block.idx]
        whole = bool((codes == codes[0]).all()) if codes.size else True
        for gk in codes[:1] if whole else np.unique(codes):
            sel = slice(None) if whole else np.flatnonzero(codes == gk)
            pos = np.arange(block.idx.size)[sel]
            if pos.size < 2:
                continue
            if whole and b_id in cache:
                off[gk] += cache[b_id]
                continue
            mb = present[block.idx[pos]]
            if block.z is not None and whole and mb.all():
                # every pair present in every column: ||sum_i z_i||^2 - N for all columns
                sz = block.z.sum(axis=0)
                contrib = np.full(mb.shape[1], sz @ sz - pos.size)
            elif block.z is not None:
                # sum of r_ij over a set S = ||sum_{i in S} z_i||^2 for unit-norm standardized rows
                sz = mb.T @ block.z[pos]  # (C, L)
                contrib = (sz * sz).sum(axis=1) - mb.sum(axis=0)
            else:
                assert block.corr is not None  # a block holds z or corr
                sub = block.corr[np.ix_(pos, pos)]
                contrib = ((sub @ mb) * mb).sum(axis=0) - mb.sum(axis=0)
            if whole:
                cache[b_id] = contrib
            off[gk] += contrib
    with np.errstate(invalid="ignore", divide="ignore"):
        return off / (n * (n - 1.0))


@dataclass(frozen=True)
class CorrBlock:
    """Residual correlations of the pairs of one event.

    Either ``z`` (rows standardized to unit norm, when all pairs share dates and have no gaps:
    then :math:`r_{ij} = z_i \\cdot z_j` and sums over pair sets need no N x N matrix) or
    ``corr`` (pairwise-complete correlations).
    """

    idx: np.ndarray
    z: np.ndarray | None
    corr: np.ndarray | None


def residual_correlation_blocks(
    resid: np.ndarray,
    dates: np.ndarray | Callable[[np.ndarray], np.ndarray],
    event_of_pair: np.ndarray,
    min_overlap: int = 20,
    *,
    aligned: Callable[[np.ndarray], bool] | None = None,
) -> list[CorrBlock]:
    """Correlations of estimation residuals within each event, aligned by date.

    Pairs of different events get correlation 0 (their event days differ); pairs of one event are
    aligned on calendar dates, so a token (every day) and an equity (sessions) are compared on the
    dates both have. Correlations from fewer than ``min_overlap`` common days are set to 0.

    ``dates`` is the ``(P, L1)`` array of estimation dates or a function of the pair positions
    giving their rows; ``aligned(idx)``, when given, says without dates whether pairs ``idx``
    share every estimation date (the dates are then only built for blocks that do not).
    """
    blocks: list[CorrBlock] = []
    # one pass over the residuals in row blocks: rows with a gap, and every row standardized
    # (used by the blocks of pairs that share their dates and have no gap)
    nan_rows = np.empty(resid.shape[0], dtype=bool)
    z_all = np.empty(resid.shape)
    step = max(1, 32_768 // max(resid.shape[1], 1))
    for lo in range(0, resid.shape[0], step):
        r = resid[lo : lo + step]
        nan_rows[lo : lo + step] = np.isnan(r).any(axis=1)
        z = np.subtract(r, r.mean(axis=1, keepdims=True), out=z_all[lo : lo + step])
        norm = np.sqrt(np.einsum("ij,ij->i", z, z))[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(z, norm, out=z, where=norm > 0)
        z[~(norm[:, 0] > 0)] = 0.0
    # pairs of each event (ascending positions), from one stable sort
    order = np.argsort(event_of_pair, kind="stable")
    _, starts, sizes = np.unique(event_of_pair[order], return_index=True, return_counts=True)
    for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):
        idx = order[start : start + size]
        run = size > 0 and int(idx[-1]) - int(idx[0]) == size - 1
        rows = slice(int(idx[0]), int(idx[0]) + size) if run else idx
        if aligned is not None and aligned(idx):
            same, d = True, None
        else:
            d = dates(idx) if callable(dates) else dates[idx]
            same = bool((d[:, [0, -1]] == d[0, [0, -1]]).all()) and bool(np.all(d == d[0]))
        if same and not nan_rows[rows].any():
            blocks.append(CorrBlock(idx, z_all[rows], None))
            continue
        r = resid[rows]
        if same:
            frame = pd.DataFrame(r.T)
        else:
            assert d is not None  # dates are built for every block that is not aligned
            frame = pd.concat(
                [pd.Series(r[k], index=pd.DatetimeIndex(d[k])).dropna() for k in range(idx.size)],
                axis=1,
                keys=range(idx.size),
                sort=True,
            )
            frame = frame.loc[frame.index.notna()]
        corr = frame.corr(min_periods=min_overlap).to_numpy() if idx.size > 1 else np.ones((1, 1))
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        blocks.append(CorrBlock(idx, None, corr))
    return blocks
