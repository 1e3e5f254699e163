"""The registry of cross-sectional tests: one compute function and one entry per test.

Every place that lists tests reads them from here: the engine (which tests exist, how each is
computed and in which order), ``EventStudyResult.summary()`` (:data:`SUMMARY_TESTS`), the report
table :func:`analysis.plots.test_table` (:data:`REPORT_TESTS`) and the ``null`` text of the tidy
``tests`` frame that the warehouse stores.

Adding a test: write ``compute(g: GroupData) -> Cells`` from the shared inputs of
:class:`~analysis.crosssection.GroupData` and the formulas of :mod:`analysis.statistics`, and add
its :class:`CrossSectionTest` to :data:`TESTS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from analysis import statistics as st
from analysis.crosssection import (
    Cells,
    CrossSectionInput,
    GroupData,
    PairData,
    Partition,
    TestTable,
    _Block,
    _reasons,
    cell_text,
)


@dataclass(frozen=True)
class CrossSectionTest:
    """One cross-sectional test of the mean (cumulative) abnormal return.

    Attributes
    ----------
    code
        Key in ``result.tests["test"]``, in ``EventStudy(tests=...)`` and in the warehouse.
    label
        Full name (``"KP-adjusted BMP t"``).
    short_label
        Column header in :meth:`~analysis.results.EventStudyResult.summary`.
    report_label
        Column header in the report table (:func:`analysis.plots.test_table`).
    null
        Null hypothesis, as shown in the ``null`` column of the tests frame.
    compute
        The statistic, p-value, pairs used and distribution for every group and column.
    min_pairs
        Fewer pairs than this make a cell invalid ("needs at least ... pairs").
    stat_format
        Format spec of the statistic in the summary and report tables (``".0f"`` for the integer
        Wilcoxon V).
    parametric
        A t or normal reference resting on the cross-section of N pairs: flagged "too few
        assets" below :data:`analysis.crosssection.MIN_ASSETS` pairs and shown without stars.
    """

    code: str
    label: str
    short_label: str
    report_label: str
    null: str
    compute: Callable[[GroupData], Cells]
    min_pairs: int = 1
    stat_format: str = ".2f"
    parametric: bool = False

    def format_stat(self, stat: float) -> str:
        return format(stat, self.stat_format)


# ---------------------------------------------------------------------- compute functions
def _t_dist(n: np.ndarray) -> Callable[[], np.ndarray]:
    return cell_text(lambda k: f"t({k - 1})", n)


def t_cs(g: GroupData) -> Cells:
    """Cross-sectional t of the mean (C)AR (Brown & Warner 1985)."""
    t, n = st.cross_sectional_t(g.car)
    return Cells(t, st.pvalue_t(t, n - 1), n, _t_dist(n))


def patell(g: GroupData) -> Cells:
    """Patell (1976) Z; a group with a pair of at most 2 degrees of freedom has no variance."""
    z, n = st.patell_z(g.sar, g.dof)
    return Cells(
        z,
        st.pvalue_normal(z),
        n,
        "N(0,1)",
        g.any_short_dof[:, None],
        "estimation window too short (d.o.f. <= 2)",
    )


def bmp(g: GroupData) -> Cells:
    """Boehmer, Musumeci & Poulsen (1991) standardized cross-sectional t."""
    tb, n = g.bmp
    return Cells(tb, st.pvalue_t(tb, n - 1), n, _t_dist(n))


def kp_bmp(g: GroupData) -> Cells:
    """Kolari & Pynnonen (2010): BMP t adjusted for the mean residual correlation."""
    tb, n = g.bmp
    rbar = g.residual_correlation(n)
    tk = st.kp_adjust(tb, n, rbar)
    dist = cell_text(lambda k, r: f"t({k - 1}), r={r:.3f}", n, rbar)
    return Cells(tk, st.pvalue_t(tk, n - 1), n, dist)


EMPTY_DAY_REASON = "a day of the window has no pair with data (e.g. a missing benchmark close)"
"""Reason of a window statistic built from daily aggregates when one of its days has none."""


def _daily_cells(g: GroupData, z: np.ndarray) -> Cells:
    """A window statistic summed from daily aggregates: NaN with :data:`EMPTY_DAY_REASON` for a
    window holding a day without pairs (never the shorter window under the longer label)."""
    return Cells(z, st.pvalue_normal(z), g.rank_n, "N(0,1)", g.empty_day_windows, EMPTY_DAY_REASON)


def corrado_rank(g: GroupData) -> Cells:
    """Corrado (1989) rank test."""
    return _daily_cells(g, g.rank_z(g.centered_rank_sums, root=False, kind="centered"))


def modified_rank(g: GroupData) -> Cells:
    """Corrado & Zivney (1992) standardized-rank test."""
    return _daily_cells(g, g.rank_z(g.scaled_rank_sums, root=True, kind="scaled"))


def cz_sign(g: GroupData) -> Cells:
    """Corrado & Zivney (1992) sign test against each pair's estimation median."""
    return _daily_cells(g, g.rank_z(g.median_sign_sums, root=True, kind="sign"))


def generalized_sign(g: GroupData) -> Cells:
    """Cowan (1992) generalized sign test: Z as published (estudy2 prints it); the p-value is
    the exact binomial one of the positive count in N trials of :math:`\\hat p` (textbook; the
    estudy2 convention keeps the package's normal approximation). :math:`\\hat p` of a
    multi-day window is the share of positive estimation-period CARs of its length."""
    p_hat = g.positive_share
    z, n = st.generalized_sign_z(g.car, p_hat)
    if g.estudy2:
        pv = st.pvalue_normal(z)
        dist = cell_text(lambda p: f"N(0,1), p={p:.3f}", p_hat)
    else:
        pv = st.binomial_pvalue(st.positives(g.car), n, p_hat)
        dist = cell_text(lambda k, p: f"Bin({k}, {p:.3f})", n, p_hat)
    return Cells(z, pv, n, dist)


def sign(g: GroupData) -> Cells:
    """Sign test of the share of positive (C)ARs against 1/2: Z as published, with the exact
    binomial p-value (textbook) or the normal one (estudy2 convention)."""
    z, n = st.sign_z(g.car)
    if g.estudy2:
        return Cells(z, st.pvalue_normal(z), n, "N(0,1)")
    return Cells(z, st.binomial_pvalue(st.positives(g.car), n, 0.5), n, _bin_half(n))


def _bin_half(n: np.ndarray) -> Callable[[], np.ndarray]:
    return cell_text(lambda k: f"Bin({k}, 0.5)", n)


def wilcoxon(g: GroupData) -> Cells:
    """Wilcoxon (1945) signed-rank test."""
    v, pv, n = st.wilcoxon_signed_rank(g.car.reshape(g.shape[0] * g.shape[1], -1))
    return Cells(v.reshape(g.shape), pv.reshape(g.shape), n.reshape(g.shape), "signed-rank")


# Brown & Warner (1980, 1985) and Lamb (1995): time-series standard deviations from the estimation
# window ("crude dependence adjustment"), t(mean L1 - 1) as in estudy2.
def _bw_cells(g: GroupData, sd: np.ndarray) -> Cells:
    mean_car, n = g.mean_car
    with np.errstate(invalid="ignore", divide="ignore"):
        z = mean_car / (sd[:, None] * np.sqrt(g.lengths))
    df = (g.mean_nobs - 1.0)[:, None]
    return Cells(z, st.pvalue_t(z, df), n, cell_text(lambda d: f"t({d:g})", df))


def bw1980(g: GroupData) -> Cells:
    """Brown & Warner (1980): s.d. from each pair's estimation-residual variance."""
    sd = np.sqrt(g.part.total(np.nan_to_num(g.pairs.est_var))) / g.sizes
    return _bw_cells(g, sd)


def bw1985(g: GroupData) -> Cells:
    """Brown & Warner (1985): s.d. of the group's daily mean estimation residual."""
    return _bw_cells(g, g.sd_mean_residual)


def lamb(g: GroupData) -> Cells:
    """Lamb (1995) as in estudy2: the BW 1985 s.d. times the forecast-error factor
    :math:`\\sqrt{1 + 1/\\bar L_1 + \\overline{(R_{mt} - \\mu_m)^2 / S_{mm}}}`; windows sum the
    daily Z over :math:`\\sqrt{L}`."""
    n = g.mean_car[1]
    lamb_q = g.inp.lamb_q
    if lamb_q is None:
        return Cells(
            np.nan,
            np.nan,
            n,
            "N(0,1)",
            np.ones(g.shape, bool),
            "Lamb's test needs the market model",
        )
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        daily_mean = np.nanmean(g.part.pad(g.inp.ar_event), axis=1)  # (G, E)
        factor = np.sqrt(1.0 + 1.0 / g.mean_nobs[:, None] + np.nanmean(g.part.pad(lamb_q), axis=1))
        daily = daily_mean / (g.sd_mean_residual[:, None] * factor)
    ok = np.isfinite(daily)
    w = g.inp.windows
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.where(ok, daily, 0.0) @ w) / np.sqrt(w.sum(axis=0))
    gap = (~ok).astype(float) @ w > 0  # a day without pairs: NaN, not a shorter window
    return Cells(z, st.pvalue_normal(z), n, "N(0,1)", gap, EMPTY_DAY_REASON)


# ---------------------------------------------------------------------- the registry
_T = CrossSectionTest

_ALL = (
    _T(
        "t_cs",
        "Cross-sectional t",
        "t",
        "Cross-sect. t",
        "mean (C)AR = 0",
        t_cs,
        2,
        parametric=True,
    ),
    _T(
        "patell",
        "Patell Z",
        "Patell",
        "Patell",
        "mean standardized (C)AR = 0",
        patell,
        parametric=True,
    ),
    _T("bmp", "BMP t", "BMP", "BMP", "mean standardized (C)AR = 0", bmp, 2, parametric=True),
    _T(
        "kp_bmp",
        "KP-adjusted BMP t",
        "KP-BMP",
        "KP-adj. BMP",
        "mean standardized (C)AR = 0, cross-correlated",
        kp_bmp,
        2,
        parametric=True,
    ),
    _T(
        "corrado_rank",
        "Corrado rank",
        "Rank",
        "Corrado rank",
        "event-day ranks are not unusual",
        corrado_rank,
    ),
    _T(
        "modified_rank",
        "Corrado-Zivney rank",
        "CZ rank",
        "Corrado-Zivney rank",
        "event-day standardized ranks = 1/2",
        modified_rank,
    ),
    _T(
        "cz_sign",
        "Corrado-Zivney sign",
        "CZ sign",
        "CZ sign",
        "(C)AR median = estimation median",
        cz_sign,
    ),
    _T(
        "generalized_sign",
        "Generalized sign",
        "GSign",
        "Gen. sign",
        "share of positive (C)AR = estimation share",
        generalized_sign,
    ),
    _T("sign", "Sign", "Sign", "Sign", "share of positive (C)AR = 1/2", sign),
    _T(
        "wilcoxon",
        "Wilcoxon signed-rank V",
        "Wilcox V",
        "Wilcoxon",
        "(C)AR symmetric about 0",
        wilcoxon,
        stat_format=".0f",
    ),
    _T("bw1980", "Brown-Warner 1980", "BW80", "BW 1980", "mean (C)AR = 0", bw1980, parametric=True),
    _T("bw1985", "Brown-Warner 1985", "BW85", "BW 1985", "mean (C)AR = 0", bw1985, parametric=True),
    _T("lamb", "Lamb 1995", "Lamb", "Lamb 1995", "mean (C)AR = 0", lamb, parametric=True),
)

TESTS: Mapping[str, CrossSectionTest] = MappingProxyType({t.code: t for t in _ALL})
"""Every cross-sectional test by code, in output order."""

HEADLINE_TEST = "kp_bmp"
"""Kolari & Pynnonen (2010): robust to the cross-correlation of pairs that share a date."""

SUMMARY_TESTS: tuple[str, ...] = (
    "t_cs",
    "patell",
    "bmp",
    "kp_bmp",
    "corrado_rank",
    "generalized_sign",
    "wilcoxon",
)
"""Columns of the CAR table of ``summary()``."""

REPORT_TESTS: tuple[str, ...] = (
    HEADLINE_TEST,
    "bmp",
    "t_cs",
    "patell",
    "corrado_rank",
    "generalized_sign",
    "wilcoxon",
)
"""Columns of the report table: the headline first, then the robust ones."""


def select(codes: Iterable[str] | None = None) -> tuple[CrossSectionTest, ...]:
    """The tests with these codes, in registry order (every test for ``None``).

    Raises
    ------
    KeyError
        When a code is not in :data:`TESTS`.
    """
    if codes is None:
        return _ALL
    want = tuple(codes)
    unknown = [c for c in dict.fromkeys(want) if c not in TESTS]
    if unknown:
        raise KeyError(f"Unknown test(s) {', '.join(unknown)}; choose from {', '.join(TESTS)}.")
    return tuple(t for t in _ALL if t.code in want)


# ------------------------------------------------------ running the registry over a cross section
# Here, above analysis.crosssection (the data and the table), so that module never needs the test
# type: the two modules import in one direction only.


def _block(part: Partition, test: CrossSectionTest, cells: Cells, shape: tuple[int, int]) -> _Block:
    stat = np.broadcast_to(np.asarray(cells.stat, dtype=float), shape)
    pval = np.broadcast_to(np.asarray(cells.pvalue, dtype=float), shape)
    n = np.broadcast_to(np.asarray(cells.n), shape).astype(np.int64)
    bad, reason = _reasons(n, stat, test.min_pairs, cells.invalid, cells.invalid_reason)
    return _Block(
        part,
        test.code,
        test.null,
        test.parametric,
        np.where(bad, np.nan, stat),
        np.where(bad, np.nan, pval),
        n,
        cells.dist,
        reason,
    )


def _refuse(b: _Block, groups: np.ndarray, text: str) -> _Block:
    """``b`` with the rows of ``groups`` invalid for the reason ``text``."""
    if not groups.any():
        return b
    inner = b.reason

    def reason() -> np.ndarray:
        out = inner().copy()
        out[groups] = text
        return out

    rows = groups[:, None]
    b.stat = np.where(rows, np.nan, b.stat)
    b.pvalue = np.where(rows, np.nan, b.pvalue)
    b.reason = reason
    return b


def run_tests(
    inp: CrossSectionInput,
    tests: Sequence[CrossSectionTest],
    partitions: Sequence[Partition],
    column_labels: Sequence[str],
    column_kinds: Sequence[str],
    column_bounds: Sequence[tuple[int, int]],
    refused: Sequence[tuple[np.ndarray, str] | None] | None = None,
) -> TestTable:
    """Every test of ``tests`` (entries of :data:`analysis.cstests.TESTS`) for every group and
    column.

    ``refused`` (one entry per partition, or ``None``) marks groups ``(G,)`` whose tests are not
    computed, with the reason (e.g. pooling events whose windows overlap).

    The table lays out as a tidy frame (:meth:`TestTable.frame`) with columns ``group, kind,
    window, start, end, test, stat, pvalue, n, dist, null, reason`` (``reason`` is empty for
    valid statistics; invalid ones have NaN stat and p-value), with ``mean``, ``pvalue_holm``
    and ``too_few_assets`` (see :meth:`TestTable.frame`). Groups come partition by
    partition; within a group, test by test (in the order of ``tests``) and column by column.
    """
    pairs = PairData(inp, partitions)
    blocks: list[_Block] = []
    means: dict[int, np.ndarray] = {}
    for k, part in enumerate(partitions):
        group = GroupData(pairs, part)
        means[id(part)] = group.mean_car[0]
        refuse = refused[k] if refused is not None else None
        for t in tests:
            b = _block(part, t, t.compute(group), group.shape)
            blocks.append(b if refuse is None else _refuse(b, *refuse))
    return TestTable(blocks, column_labels, column_kinds, column_bounds, means)
