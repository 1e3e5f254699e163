"""Cross-sectional tests over asset-event pairs, per event day and per CAR window.

A "column" is a window of event days: each single day ``[t, t]`` and each CAR window. Single days
are windows of length one, so one code path serves both and the statistics agree by construction.
Tests are computed for groups of pairs (all pairs, each event, each asset class).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis import statistics as st

if TYPE_CHECKING:
    from analysis.cstests import CrossSectionTest


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
    "stat",
    "pvalue",
    "n",
    "dist",
    "null",
    "reason",
]


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


def _fmt_cells(fmt: Callable[..., str], *arrays: np.ndarray) -> Callable[[], np.ndarray]:
    """Lazy per-cell text, formatted once per distinct value."""

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
    ) -> None:
        self.blocks = list(blocks)
        self.labels, self.kinds, self.bounds = list(labels), list(kinds), list(bounds)

    def frame(self) -> pd.DataFrame:
        """``group, kind, window, start, end, test, stat, pvalue, n, dist, null, reason``."""
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
            cols["stat"].append(_group_major([b.stat for b in blocks], float))
            cols["pvalue"].append(_group_major([b.pvalue for b in blocks], float))
            cols["n"].append(_group_major([b.n for b in blocks], np.int64))
            cols["dist"].append(_group_major(dists, object))
            cols["null"].append(np.tile(np.repeat(nulls, n_cols), g))
            cols["reason"].append(_group_major([b.reason() for b in blocks], object))
        return pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})


def run_tests(
    inp: CrossSectionInput,
    tests: Sequence[CrossSectionTest],
    partitions: Sequence[Partition],
    column_labels: Sequence[str],
    column_kinds: Sequence[str],
    column_bounds: Sequence[tuple[int, int]],
) -> TestTable:
    """All tests for every group and column.

    The table lays out as a tidy frame (:meth:`TestTable.frame`) with columns ``group, kind,
    window, start, end, test, stat, pvalue, n, dist, null, reason`` (``reason`` is empty for
    valid statistics; invalid ones have NaN stat and p-value). Groups come partition by
    partition; within a group, test by test and column by column.
    """
    p_pairs, n_cols = inp.car.shape
    lengths = inp.windows.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sar = inp.car / np.sqrt(inp.car_var)
    want = {t.code for t in tests}
    null = {t.code: t.null for t in tests}
    n_est = inp.resid_est.shape[1]
    rank_tests = [t for t in ("corrado_rank", "modified_rank", "cz_sign") if t in want]
    rank_in: _RankInput | None = None
    if rank_tests:
        rank_in = _RankInput([inp.resid_est, inp.ar_event], rank_tests)
    if "generalized_sign" in want:  # share of positive estimation residuals per pair
        n_ok = count(inp.resid_est)
        n_pos = (inp.resid_est > 0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            pos_share = n_pos / n_ok
    est_var = _row_var(inp.resid_est) if "bw1980" in want else None
    estudy2 = inp.convention == "estudy2"
    resid_complete = bool(want & {"bw1985", "lamb"}) and not np.isnan(inp.resid_est).any()
    kp_cache: dict[int, np.ndarray] = {}

    blocks: list[_Block] = []
    gsum = _GroupSums(partitions)
    for part in partitions:
        g = len(part.names)
        shape = (g, n_cols)
        n_g = part.sizes

        def emit(test: str, stat, pval, n, dist, checked=None, part=part, shape=shape) -> None:
            stat = np.broadcast_to(np.asarray(stat, dtype=float), shape)
            pval = np.broadcast_to(np.asarray(pval, dtype=float), shape)
            n = np.broadcast_to(np.asarray(n), shape).astype(np.int64)
            bad, reason = _reasons(n, stat, 2) if checked is None else checked(n, stat)
            blocks.append(
                _Block(
                    part,
                    test,
                    null[test],
                    np.where(bad, np.nan, stat),
                    np.where(bad, np.nan, pval),
                    n,
                    dist,
                    reason,
                )
            )

        def min1(n, stat):
            return _reasons(n, stat, 1)

        def t_dist(n: np.ndarray) -> Callable[[], np.ndarray]:
            return _fmt_cells(lambda k: f"t({k - 1})", n)

        car_g = part.last(inp.car)  # (G, C, N)
        sar_g = part.last(sar)

        if "t_cs" in want:
            t, n = st.cross_sectional_t(car_g)
            emit("t_cs", t, st.pvalue_t(t, n - 1), n, t_dist(n))

        if "patell" in want:
            z, n = st.patell_z(sar_g, part.pad(inp.dof)[:, None, :])
            bad_dof = part.total((inp.dof <= 2).astype(float)) > 0
            emit(
                "patell",
                z,
                st.pvalue_normal(z),
                n,
                "N(0,1)",
                lambda n, s, b=bad_dof: (
                    _reasons(n, s, 1, b[:, None], "estimation window too short (d.o.f. <= 2)")
                    if b.any()
                    else _reasons(n, s, 1)
                ),
            )

        if want & {"bmp", "kp_bmp"}:
            tb, n = st.bmp_t(sar_g)
            if "bmp" in want:
                emit("bmp", tb, st.pvalue_t(tb, n - 1), n, t_dist(n))
        if "kp_bmp" in want:
            rbar = _kp_rbar(inp, sar, part, n, kp_cache)
            tk = st.kp_adjust(tb, n, rbar)
            emit(
                "kp_bmp",
                tk,
                st.pvalue_t(tk, n - 1),
                n,
                _fmt_cells(lambda k, r: f"t({k - 1}), r={r:.3f}", n, rbar),
            )

        if rank_in is not None:
            nt, totals, t_eff = rank_in.group_totals(part, gsum)
            # pairs with an abnormal return, averaged over the days of each window
            nn = np.round((nt[:, n_est:] @ inp.windows) / np.maximum(lengths, 1))
            for test in rank_tests:
                dbar, s = _rank_aggregates(
                    totals[test],
                    nt,
                    t_eff,
                    root=test != "corrado_rank",
                    scale_to=n_g if estudy2 else None,
                )
                z = st.window_rank_z(dbar[..., n_est:], s[..., None], inp.windows)
                emit(test, z, st.pvalue_normal(z), nn.astype(int), "N(0,1)", min1)

        if "generalized_sign" in want:
            with np.errstate(invalid="ignore", divide="ignore"):
                if estudy2:
                    p_hat = part.total(n_pos.astype(float)) / part.total(n_ok.astype(float))
                else:  # nanmean of the per-pair shares
                    ok = ~np.isnan(pos_share)
                    p_hat = part.total(np.where(ok, pos_share, 0.0)) / part.total(ok * 1.0)
            z, n = st.generalized_sign_z(car_g, p_hat[:, None])
            emit(
                "generalized_sign",
                z,
                st.pvalue_normal(z),
                n,
                _fmt_cells(lambda p: f"N(0,1), p={p:.3f}", p_hat[:, None]),
                min1,
            )
        if "sign" in want:
            z, n = st.sign_z(car_g)
            emit("sign", z, st.pvalue_normal(z), n, "N(0,1)", min1)
        if "wilcoxon" in want:
            v, pv, n = st.wilcoxon_signed_rank(car_g.reshape(g * n_cols, -1))
            emit(
                "wilcoxon",
                v.reshape(shape),
                pv.reshape(shape),
                n.reshape(shape),
                "signed-rank",
                min1,
            )

        if not want & {"bw1980", "bw1985", "lamb"}:
            continue
        # Brown & Warner (1980, 1985) and Lamb (1995): time-series standard deviations from the
        # estimation window ("crude dependence adjustment"), t(mean L1 - 1) as in estudy2.
        mean_car, _, n = st._mean_sd(car_g)
        df_bw = part.total(inp.nobs.astype(float)) / n_g - 1.0
        bw_dist = _fmt_cells(lambda d: f"t({d:g})", df_bw[:, None])
        if "bw1980" in want:
            sd80 = np.sqrt(part.total(np.nan_to_num(est_var))) / n_g
            with np.errstate(invalid="ignore", divide="ignore"):
                z80 = mean_car / (sd80[:, None] * np.sqrt(lengths))
            emit("bw1980", z80, st.pvalue_t(z80, df_bw[:, None]), n, bw_dist, min1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # days on which no pair has data
            if resid_complete:  # the daily mean residual of each group from its sums
                cm = gsum(part, "resid", inp.resid_est) / n_g[:, None]  # (G, L1)
            else:
                cm = np.nanmean(part.pad(inp.resid_est), axis=1)
            sd85 = np.nanstd(cm, ddof=1, axis=1)
        if "bw1985" in want:
            with np.errstate(invalid="ignore", divide="ignore"):
                z85 = mean_car / (sd85[:, None] * np.sqrt(lengths))
            emit("bw1985", z85, st.pvalue_t(z85, df_bw[:, None]), n, bw_dist, min1)
        if "lamb" not in want:
            continue
        if inp.lamb_q is None:
            emit(
                "lamb",
                np.nan,
                np.nan,
                n,
                "N(0,1)",
                lambda n, s: _reasons(
                    n, s, 1, np.ones(n.shape, bool), "Lamb's test needs the market model"
                ),
            )
            continue
        # Lamb (1995) as in estudy2: BW85 s.d. times the forecast-error factor
        # sqrt(1 + 1/mean(L1) + mean_i (R_mt - mu_m)^2 / S_mm); windows sum daily Z / sqrt(L).
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            daily_mean = np.nanmean(part.pad(inp.ar_event), axis=1)  # (G, E)
            factor = np.sqrt(
                1.0
                + 1.0 / (part.total(inp.nobs.astype(float)) / n_g)[:, None]
                + np.nanmean(part.pad(inp.lamb_q), axis=1)
            )
            daily = daily_mean / (sd85[:, None] * factor)
        ok = np.isfinite(daily)
        with np.errstate(invalid="ignore", divide="ignore"):
            zl = (np.where(ok, daily, 0.0) @ inp.windows) / np.sqrt(ok.astype(float) @ inp.windows)
        emit("lamb", zl, st.pvalue_normal(zl), n, "N(0,1)", min1)

    return TestTable(blocks, column_labels, column_kinds, column_bounds)


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
    and sign deviations of the three rank tests, kept as per-pair pieces whose group-and-day sums
    are all the tests need (no ``(P, T)`` deviation array per test and partition)."""

    def __init__(self, parts: Sequence[np.ndarray], tests: list[str]) -> None:
        """``parts``: the estimation residuals and the event abnormal returns, ``(P, L1)`` and
        ``(P, E)``, ranked together as one row of ``L1 + E`` days per pair."""
        self.tests = tests
        ranks, srt, m_i = _ranks_sorted(parts, nan_rank=0.0)
        n_days = sum(x.shape[1] for x in parts)
        self.nan = np.hstack([np.isnan(x) for x in parts]) if (m_i < n_days).any() else None
        self.present = None if self.nan is None else (~self.nan).astype(float)
        self.m_i = m_i
        self.ranks = ranks  # 0 where the pair has no value
        self.n_days = n_days
        self.sign = None
        if "cz_sign" in tests:  # G_it = sign(A_it - median_i), 0 where missing
            med = _sorted_median(srt, m_i)[:, None]
            sign = np.empty(ranks.shape)
            c = 0
            for x in parts:
                out = sign[:, c : c + x.shape[1]]
                np.subtract(x, med, out=out)
                np.sign(out, out=out)
                c += x.shape[1]
            self.sign = sign if self.nan is None else np.where(self.nan, 0.0, sign)

    def group_totals(
        self, part: Partition, gsum: _GroupSums
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Per group and day: pairs present ``N_t``, the sum of each test's deviations, and per
        group the mean number of days of the pairs that have any (``T`` when complete)."""
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
        totals: dict[str, np.ndarray] = {}
        if "corrado_rank" in self.tests or "modified_rank" in self.tests:
            k_sum = gsum(part, "ranks", self.ranks)
        if "corrado_rank" in self.tests:  # sum_i K_it - (M_i + 1)/2
            half = (m_i + 1.0) / 2.0
            if self.present is None:
                totals["corrado_rank"] = k_sum - part.total(half)[:, None]
            else:
                totals["corrado_rank"] = k_sum - gsum(
                    part, "half", lambda: self.present * half[:, None]
                )
        if "modified_rank" in self.tests:  # sum_i K_it / (M_i + 1) - 1/2
            if self.present is None:
                totals["modified_rank"] = k_sum / (self.n_days + 1.0) - 0.5 * nt
            else:
                scaled = gsum(part, "scaled", lambda: self.ranks / (m_i[:, None] + 1.0))
                totals["modified_rank"] = scaled - 0.5 * nt
        if self.sign is not None:
            totals["cz_sign"] = gsum(part, "sign", self.sign)
        return nt, totals, t_eff


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
