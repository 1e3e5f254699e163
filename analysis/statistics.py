"""Test statistics of event studies, as array functions plus one small result class.

Every function takes the cross-section on the **last** axis (pairs), any leading axes being
batches (days, windows, simulation replications), and ignores NaN entries, so unbalanced
cross-sections need no special casing. Each formula cites the paper and equation it implements.

References
----------
Boehmer, E., Musumeci, J. and Poulsen, A. B. (1991). Event-study methodology under conditions of
event-induced variance. *Journal of Financial Economics* 30(2), 253-272.
Brown, S. J. and Warner, J. B. (1980). Measuring security price performance. *JFE* 8(3), 205-258.
Brown, S. J. and Warner, J. B. (1985). Using daily stock returns. *JFE* 14(1), 3-31.
Campbell, C. J. and Wasley, C. E. (1993). Measuring security price performance using daily NASDAQ
returns. *JFE* 33(1), 73-92.
Corrado, C. J. (1989). A nonparametric test for abnormal security-price performance in event
studies. *JFE* 23(2), 385-395.
Corrado, C. J. and Zivney, T. L. (1992). The specification and power of the sign test in event
study hypothesis tests using daily stock returns. *JFQA* 27(3), 465-478.
Cowan, A. R. (1992). Nonparametric event study tests. *Review of Quantitative Finance and
Accounting* 2(4), 343-358.
Kolari, J. W. and Pynnonen, S. (2010). Event study testing with cross-sectional correlation of
abnormal returns. *Review of Financial Studies* 23(11), 3996-4025.
Lamb, R. P. (1995). An exposure-based analysis of property-liability insurer stock values around
Hurricane Andrew. *Journal of Risk and Insurance* 62(1), 111-123.
Patell, J. M. (1976). Corporate forecasts of earnings per share and stock price behavior.
*Journal of Accounting Research* 14(2), 246-276.
Wilcoxon, F. (1945). Individual comparisons by ranking methods. *Biometrics Bulletin* 1(6), 80-83.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special


@dataclass(frozen=True)
class TestStatistic:
    """One test statistic with its p-value (two-sided), or the reason it could not be computed.

    Attributes
    ----------
    name
        Short code (``"kp_bmp"``).
    stat
        Value of the statistic (NaN when invalid).
    pvalue
        Two-sided p-value under ``null`` (NaN when invalid).
    null
        The null hypothesis in words.
    dist_name
        Reference distribution, e.g. ``"t(6)"`` or ``"N(0,1)"``.
    n
        Number of asset-event pairs that entered the statistic.
    reason
        Why the statistic is invalid, or ``None``.
    """

    __test__ = False  # not a pytest test class

    name: str
    stat: float
    pvalue: float
    null: str
    dist_name: str
    n: int = 0
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def __str__(self) -> str:
        if not self.valid:
            return f"{self.name}: not computed ({self.reason})"
        return (
            f"{self.name} = {self.stat:.4f} ~ {self.dist_name}, p = {self.pvalue:.4g}, "
            f"n = {self.n} (H0: {self.null})"
        )


def count(x: np.ndarray) -> np.ndarray:
    """Non-missing entries along the last axis."""
    return (~np.isnan(x)).sum(axis=-1)


def pvalue_normal(z: np.ndarray) -> np.ndarray:
    """Two-sided p-value of a standard normal statistic."""
    return 2.0 * special.ndtr(-np.abs(z))


def pvalue_t(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Two-sided p-value of a Student-t statistic (NaN where ``df <= 0``)."""
    df = np.asarray(df, dtype="float64")
    with np.errstate(invalid="ignore"):
        return 2.0 * special.stdtr(np.where(df > 0, df, np.nan), -np.abs(t))


def mean_sd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample s.d. (ddof 1) and count of the non-missing values on the last axis."""
    n = count(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(x, axis=-1) / n
        dev = np.where(np.isnan(x), 0.0, x - mean[..., None])
        sd = np.sqrt((dev * dev).sum(axis=-1) / (n - 1))
    return mean, sd, n


def cross_sectional_t(ar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-sectional t of mean abnormal returns (BMP 1991, "ordinary cross-sectional" test).

    .. math:: t = \\frac{\\overline{AR}}{s(AR)/\\sqrt{N}} \\sim t(N-1),
       \\quad s^2 = \\frac{1}{N-1}\\sum_i (AR_i - \\overline{AR})^2 .

    Returns the statistic and N.
    """
    mean, sd, n = mean_sd(ar)
    with np.errstate(invalid="ignore", divide="ignore"):
        return mean / sd * np.sqrt(n), n


def patell_z(sar: np.ndarray, dof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patell (1976) standardized-residual test.

    .. math:: Z = \\frac{\\sum_i SAR_i}{\\sqrt{\\sum_i \\frac{d_i}{d_i-2}}} \\sim N(0,1)

    where :math:`SAR_i = AR_i / \\sigma(AR_i)` uses the forecast-error-corrected variance and
    :math:`d_i` is the degrees of freedom of :math:`\\hat\\sigma_i` (:math:`L_i-2` for the market
    model), so that :math:`d_i/(d_i-2)` is the variance of a :math:`t(d_i)` variable (Patell 1976,
    standardized-residual test, in the notation of BMP 1991). Returns Z and N.
    """
    present = ~np.isnan(sar)
    dof = np.broadcast_to(dof, sar.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(present, dof / (dof - 2.0), 0.0).sum(axis=-1)
        return np.nansum(sar, axis=-1) / np.sqrt(var), present.sum(axis=-1)


def bmp_t(sar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boehmer, Musumeci & Poulsen (1991) standardized cross-sectional test.

    .. math:: t_{BMP} = \\frac{\\overline{SAR}\\sqrt{N}}
       {\\sqrt{\\frac{1}{N-1}\\sum_i (SAR_i - \\overline{SAR})^2}} \\sim t(N-1)

    (BMP 1991, standardized cross-sectional test): Patell's standardized residuals with a
    cross-sectional variance, robust to event-induced variance but not to cross-correlation.
    """
    return cross_sectional_t(sar)


def kp_adjust(t_bmp: np.ndarray, n: np.ndarray, rbar: np.ndarray) -> np.ndarray:
    """Kolari & Pynnonen (2010) correction of the BMP t for cross-sectional correlation.

    .. math:: t_{KP} = t_{BMP}\\sqrt{\\frac{1-\\bar r}{1+(N-1)\\bar r}} \\sim t(N-1)

    where :math:`\\bar r` is the mean off-diagonal correlation of the estimation-window residuals
    (Kolari & Pynnonen 2010, the "adjusted BMP" statistic). Under equicorrelation
    :math:`\\rho`, :math:`E[s^2(SAR)] = 1-\\rho` and :math:`Var(\\overline{SAR}) =
    (1+(N-1)\\rho)/N`, which the factor undoes.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return t_bmp * np.sqrt((1.0 - rbar) / (1.0 + (n - 1.0) * rbar))


def mean_offdiag_corr(resid: np.ndarray) -> np.ndarray:
    """Mean off-diagonal Pearson correlation of complete residual series.

    ``resid`` has shape ``(..., N, L)`` without NaN; the result has shape ``(...)``. Used by the
    simulation; the engine handles missing days with pairwise-complete correlations.
    """
    z = resid - resid.mean(axis=-1, keepdims=True)
    z = z / np.sqrt((z * z).sum(axis=-1, keepdims=True))
    c = z @ np.swapaxes(z, -1, -2)
    n = c.shape[-1]
    return (c.sum(axis=(-1, -2)) - np.trace(c, axis1=-2, axis2=-1)) / (n * (n - 1))


def sign_z(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simple sign test: share of positive values against one half (BMP 1991, sec. 3).

    .. math:: Z = \\frac{w - N/2}{\\sqrt{N/4}} \\sim N(0,1),\\quad w = \\#\\{i: x_i > 0\\}.
    """
    n = count(x)
    w = (x > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w - 0.5 * n) / np.sqrt(0.25 * n), n


def generalized_sign_z(x: np.ndarray, p_hat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Cowan (1992) generalized sign test.

    .. math:: Z = \\frac{w - N\\hat p}{\\sqrt{N \\hat p (1-\\hat p)}} \\sim N(0,1)

    where :math:`w` counts positive (cumulative) abnormal returns and :math:`\\hat p` is the share
    of positive abnormal returns in the estimation window. Cowan (1992, eq. for :math:`\\hat p`)
    averages per-security shares, :math:`\\hat p = \\frac1N\\sum_i \\frac{1}{L_i}\\sum_t S_{it}`,
    with :math:`S_{it}=1` when :math:`AR_{it}>0`; for a window of several days Cowan (1992)
    compares the count of positive CARs with the share of positive estimation-period CARs of
    the same length (:meth:`analysis.crosssection.GroupData.positive_share`); estudy2 pools all
    estimation days instead. The caller passes the chosen :math:`\\hat p`; the exact p-value is
    :func:`binomial_pvalue` of :math:`w` in :math:`N` trials of :math:`\\hat p`.
    """
    n = count(x)
    w = (x > 0).sum(axis=-1)
    p = np.asarray(p_hat, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w - n * p) / np.sqrt(n * p * (1.0 - p)), n


def positives(x: np.ndarray) -> np.ndarray:
    """Number of positive values on the last axis (the sign tests' :math:`w`)."""
    return (x > 0).sum(axis=-1)


def binomial_pvalue(k: np.ndarray, n: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """Exact two-sided binomial p-value of ``k`` successes in ``n`` trials of probability ``p``,
    elementwise: the probability of the outcomes no likelier than ``k``,

    .. math:: p = \\sum_{j=0}^{n} P(j)\\,\\mathbb 1\\{P(j) \\le P(k)(1 + 10^{-7})\\},
              \\quad P(j) = \\binom{n}{j} p^j (1-p)^{n-j},

    and 1 when :math:`k = np`, which is the definition and the relative tolerance of
    ``scipy.stats.binomtest(k, n, p).pvalue`` (equal to it within 1e-12, checked in
    ``tests/analysis/test_size.py``), computed for every cell at once: a study with many groups
    (one per event, or the replications of a size simulation) has one :math:`\\hat p` per cell, so
    a cache of ``binomtest`` calls does not help and thousands of calls took seconds.

    The sign test (:math:`p = 1/2`) and Cowan's (1992) generalized sign test (:math:`p = \\hat
    p`) count positive (C)ARs, a binomial variable under H0; the normal approximation
    :math:`Z = (w - Np)/\\sqrt{Np(1-p)}` is 6-7% in size at N = 8, the exact p-value is at most
    the nominal size at every N. NaN where ``n`` is 0 or ``p`` is undefined.
    """
    from scipy.stats import binom

    k, n, p = np.broadcast_arrays(
        np.asarray(k, dtype=float), np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    )
    out = np.full(k.shape, np.nan)
    ok = (n > 0) & np.isfinite(p) & (p >= 0) & (p <= 1) & np.isfinite(k)
    if not ok.any():
        return out
    kk, nn, pp = k[ok], n[ok], p[ok]
    pv = np.empty(kk.size)
    for trials in np.unique(nn):  # few distinct numbers of pairs
        cells = np.flatnonzero(nn == trials)
        j = np.arange(int(trials) + 1, dtype=float)
        step = max(1, 1_000_000 // j.size)  # (cells x outcomes) probabilities per block
        for lo in range(0, cells.size, step):
            c = cells[lo : lo + step]
            pmf = binom.pmf(j, trials, pp[c, None])
            d = binom.pmf(kk[c], trials, pp[c]) * (1.0 + 1e-7)
            pv[c] = np.where(pmf <= d[:, None], pmf, 0.0).sum(axis=1)
    pv = np.where(kk == pp * nn, 1.0, np.minimum(pv, 1.0))
    out[ok] = pv
    return out


_RANK_BLOCK = 65_536  # values ranked per block of rows


def sorted_ranks(a: np.ndarray, *more: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``1..T`` of each value in its sorted row (NaN last), the sorted rows, and which
    rows hold ties (whose positions are not average ranks yet). Rows are ranked in blocks so that
    the index arrays stay in cache; ``more`` arrays (same rows) are appended to the columns of
    ``a`` block by block, without a joined copy of the whole."""
    a = np.ascontiguousarray(a, dtype=float)
    p = a.shape[0]
    t = a.shape[1] + sum(m.shape[1] for m in more)
    srt, ranks = np.empty((p, t)), np.empty((p, t))
    tied = np.zeros(p, dtype=bool)
    pos = np.arange(1, t + 1, dtype=float)
    step = max(1, _RANK_BLOCK // max(t, 1))
    offsets = (np.arange(min(step, p)) * t)[:, None]
    for lo in range(0, p, step):
        hi = min(lo + step, p)
        block = np.hstack([a[lo:hi], *(m[lo:hi] for m in more)]) if more else a[lo:hi]
        order = np.argsort(block, axis=1)
        # flat positions of the sorted entries: one index array for the gather and the scatter
        order += offsets[: hi - lo]
        srt[lo:hi] = block.reshape(-1)[order]
        ranks[lo:hi].reshape(-1)[order] = pos
        if t > 1:
            sb = srt[lo:hi]
            tied[lo:hi] = (sb[:, 1:] == sb[:, :-1]).any(axis=1)
    return ranks, srt, tied


@lru_cache(maxsize=64)
def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(V <= v), v = 0..n(n+1)/2, of the signed-rank statistic under H0 (exact, by counting)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return np.cumsum(counts) / 2.0**n


def wilcoxon_signed_rank(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilcoxon (1945) signed-rank test of each row of ``x`` (2-D: rows x pairs), vectorised.

    The statistic is :math:`V = \\sum_{i: x_i>0} \\mathrm{rank}(|x_i|)` (as R's ``wilcox.test``
    and estudy2 report it). Zeros are dropped. The two-sided p-value is exact,
    :math:`2\\min(P(V\\le v), P(V \\ge v))`, for :math:`N \\le 50` without ties, and otherwise
    the normal approximation with the tie correction
    :math:`\\sigma^2 = N(N+1)(2N+1)/24 - \\sum_g (t_g^3 - t_g)/48` (``scipy.stats.wilcoxon``
    with ``method="asymptotic"``; scipy's ``"auto"`` would run a random permutation test on small
    samples with ties, which is not reproducible). Returns V, p-values and N.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    x = np.where(x == 0, np.nan, x)
    n = count(x)
    a = np.abs(x)
    ranks, srt, tied = sorted_ranks(a)  # NaN sort last
    if tied.any():  # average ranks for the (rare) rows with ties
        ranks[tied] = pd.DataFrame(a[tied]).rank(axis=1, method="average").to_numpy()
    ranks = np.where(np.isnan(a), np.nan, ranks)
    v = np.where(x > 0, ranks, 0.0).sum(axis=1)
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0
    for k in np.flatnonzero(tied):
        _, t = np.unique(ranks[k][~np.isnan(ranks[k])], return_counts=True)
        var[k] -= (t**3 - t).sum() / 48.0
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2.0 * special.ndtr(-np.abs(v - mean) / np.sqrt(var))
    for k in np.flatnonzero((n <= 50) & (n > 0) & ~tied):
        nk = int(n[k])
        lo = min(v[k], nk * (nk + 1) / 2 - v[k])
        p[k] = min(1.0, 2.0 * _signed_rank_cdf(nk)[int(round(lo))])
    v = np.where(n > 0, v, np.nan)
    p = np.where(n > 0, np.where(var > 0, p, 1.0), np.nan)
    return v, p, n


def window_rank_z(dbar_event: np.ndarray, s: float | np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Rank/sign statistic of each window from the daily aggregates of the event window.

    .. math:: Z_w = \\frac{\\sum_{t \\in w} \\bar d_t}{\\sqrt{L_w}\\, S} \\sim N(0,1)

    (Corrado 1989 for one day, :math:`T = \\bar K_0 / S(K)`; the multi-day form of Cowan 1992 and
    Campbell & Wasley 1993). ``windows`` is the ``(E, C)`` 0/1 day-membership matrix. A window
    holding a day without pairs (NaN :math:`\\bar d_t`) is NaN: summing the days that remain
    would report a shorter window under the longer window's label.
    """
    present = ~np.isnan(dbar_event)
    num = np.where(present, dbar_event, 0.0) @ windows
    length = windows.sum(axis=0)
    gap = (~present).astype(float) @ windows > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = num / (np.sqrt(length) * s)
    return np.where(gap | (length == 0), np.nan, z)
