"""Statistic helpers against scipy and hand formulas; agreement with the eventstudy package."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as sps

from analysis import statistics as st


@pytest.mark.parametrize("n", [2, 5, 7, 12, 30, 50, 51, 120])
def test_wilcoxon_matches_scipy(n):
    rng = np.random.default_rng(n)
    x = rng.normal(0.2, 1.0, (25, n))
    v, p, nn = st.wilcoxon_signed_rank(x)
    for row, vk, pk in zip(x, v, p, strict=True):
        ref = sps.wilcoxon(row)
        assert pk == pytest.approx(ref.pvalue, rel=1e-9)
        assert vk == (sps.rankdata(np.abs(row)) * (row > 0)).sum()
    assert (nn == n).all()


def test_wilcoxon_with_ties_uses_the_corrected_normal_approximation():
    x = np.array([[0.1, -0.1, 0.2, 0.2, 0.3, -0.4, 0.5, 0.0]])
    v, p, n = st.wilcoxon_signed_rank(x)
    ref = sps.wilcoxon(x[0], method="asymptotic")
    assert n[0] == 7 and p[0] == pytest.approx(ref.pvalue, rel=1e-12)


def test_kp_adjustment_reduces_to_bmp_without_correlation():
    t = np.array([2.0, -1.5])
    np.testing.assert_allclose(st.kp_adjust(t, np.array([10, 10]), np.zeros(2)), t)
    np.testing.assert_allclose(
        st.kp_adjust(t, np.array([10, 10]), np.full(2, 0.5)), t * np.sqrt(0.5 / 5.5)
    )


def test_patell_and_bmp_by_hand():
    sar = np.array([[1.0, 2.0, np.nan, -0.5]])
    dof = np.array([100.0, 50.0, 80.0, 200.0])
    z, n = st.patell_z(sar, dof)
    assert n[0] == 3
    assert z[0] == pytest.approx(2.5 / np.sqrt(100 / 98 + 50 / 48 + 200 / 198))
    t, _ = st.bmp_t(sar)
    vals = np.array([1.0, 2.0, -0.5])
    assert t[0] == pytest.approx(vals.mean() / vals.std(ddof=1) * np.sqrt(3))


def test_generalized_sign_by_hand():
    z, n = st.generalized_sign_z(np.array([[0.1, 0.2, -0.3, 0.4, np.nan]]), 0.45)
    assert z[0] == pytest.approx((3 - 4 * 0.45) / np.sqrt(4 * 0.45 * 0.55))


def rank_day_aggregates(
    d: np.ndarray, *, root: bool, scale_to: int | np.ndarray | None = None
) -> tuple[np.ndarray, float | np.ndarray]:
    """Reference: daily cross-sectional aggregates of rank (or sign) deviations ``d`` of shape
    ``(T, N)`` (or a NaN-padded batch ``(..., T, N)``) and their time-series s.d.

    ``root=False``: :math:`\\bar d_t = \\frac{1}{N_t}\\sum_i d_{it}` (Corrado 1989);
    ``root=True``: :math:`\\bar d_t = \\frac{1}{\\sqrt{N_t}}\\sum_i d_{it}` (Corrado & Zivney
    1992). ``scale_to=N`` reproduces estudy2's :math:`\\frac{N}{N_t}\\sum_i`. Returns
    :math:`\\bar d_t` and :math:`S = \\sqrt{\\frac{1}{T}\\sum_t \\bar d_t^2}` with :math:`T` the
    mean number of non-missing days per pair. The engine computes the same numbers from group-day
    sums (``analysis.crosssection._rank_aggregates``); this direct form checks it.
    """
    complete = not np.isnan(d).any()
    nt = np.full(d.shape[:-1], d.shape[-1]) if complete else st.count(d)
    total = d.sum(axis=-1) if complete else np.nansum(d, axis=-1)
    if scale_to is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / nt * np.asarray(scale_to, dtype=float)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        dbar = total / (np.sqrt(nt) if root else nt)
    if not complete:
        dbar = np.where(nt > 0, dbar, np.nan)
    if complete:
        t_eff = np.full(d.shape[:-2], float(d.shape[-2]))
    else:
        m_i = (~np.isnan(d)).sum(axis=-2)
        with np.errstate(invalid="ignore", divide="ignore"):
            t_eff = np.where(m_i > 0, m_i, 0).sum(axis=-1) / (m_i > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt(np.nansum(dbar**2, axis=-1) / t_eff)
    return dbar, (float(s) if d.ndim == 2 else s)


def test_rank_aggregates_scaling():
    d = np.array([[1.0, -1.0, 2.0], [0.5, np.nan, 1.5]])
    dbar, s = rank_day_aggregates(d, root=False)
    np.testing.assert_allclose(dbar, [2 / 3, 1.0])
    dbar2, _ = rank_day_aggregates(d, root=False, scale_to=3)
    np.testing.assert_allclose(dbar2, [2 / 3, 3 * 1.0 / 2])  # estudy2: (N / N_t) * sum / N_t
    assert s == pytest.approx(np.sqrt(((2 / 3) ** 2 + 1.0) / np.mean([2, 1, 2])))


@pytest.mark.parametrize("root", [False, True])
@pytest.mark.parametrize("scale", [False, True])
def test_engine_rank_aggregates_match_reference(root, scale):
    """The engine's group-day-sum form equals the direct form on a NaN-padded batch of groups."""
    from analysis.crosssection import _rank_aggregates

    rng = np.random.default_rng(11)
    d = rng.normal(size=(3, 40, 6))  # groups x days x pairs
    d[rng.random(d.shape) < 0.1] = np.nan
    d[1, :, 4:] = np.nan  # a group with fewer pairs
    sizes = np.array([6, 4, 6])
    ref_dbar, ref_s = rank_day_aggregates(d, root=root, scale_to=sizes if scale else None)
    nt = (~np.isnan(d)).sum(axis=-1).astype(float)
    m_i = (~np.isnan(d)).sum(axis=-2)
    t_eff = np.where(m_i > 0, m_i, 0).sum(axis=-1) / (m_i > 0).sum(axis=-1)
    dbar, s = _rank_aggregates(
        np.nansum(d, axis=-1), nt, t_eff, root=root, scale_to=sizes if scale else None
    )
    np.testing.assert_allclose(dbar, ref_dbar, rtol=1e-13)
    np.testing.assert_allclose(s, ref_s, rtol=1e-13)


def test_test_statistic_class():
    ok = st.TestStatistic("bmp", 2.1, 0.04, "mean SAR = 0", "t(9)", n=10)
    bad = st.TestStatistic(
        "bmp",
        float("nan"),
        float("nan"),
        "mean SAR = 0",
        "t(0)",
        n=1,
        reason="needs at least 2 pairs, has 1",
    )
    assert ok.valid and "p = 0.04" in str(ok) and ok.to_dict()["n"] == 10
    assert not bad.valid and "not computed" in str(bad)


@pytest.mark.parametrize("model", ["market", "constant_mean"])
def test_abnormal_returns_equal_eventstudy_package(model):
    pytest.importorskip("eventstudy")
    from benchmarks.eventstudy_speed import compare

    result = compare("tiny", 6, 3, model)
    assert result.pairs == 18
    assert result.max_abs_ar_diff < 1e-10
