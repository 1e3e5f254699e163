"""The k-factor normal-return model, estimated for many asset-event pairs at once.

:math:`R_{it} = \\alpha_i + \\sum_j \\beta_{ij} F_{jt} + \\varepsilon_{it}` by OLS on any set of
factor return series (BTC, NVDA, an alt-market index, ...). The forecast-error-corrected
variances are those of the market model generalised to k regressors: with
:math:`x_{0\\tau} = (1, F_{1\\tau}, \\dots, F_{k\\tau})'` and the estimation design :math:`X_i`,

.. math::
    \\sigma^2(AR_{i\\tau}) = \\hat\\sigma^2_{\\varepsilon_i}
        \\big(1 + x_{0\\tau}'(X_i'X_i)^{-1}x_{0\\tau}\\big),

the diagonal of :math:`V_i = \\hat\\sigma^2 (I + X^*_i (X_i'X_i)^{-1} X^{*\\prime}_i)`
(MacKinlay 1997, eq. 11 and the matrix form of sec. 5 around eqs. 8-13, written there for the
market model; Campbell, Lo & MacKinlay 1997, ch. 4, eq. 4.4.7 for the general linear model). For
one factor it reduces to MacKinlay's eq. 8, :math:`1 + 1/L_1 + (R_{m\\tau}-\\hat\\mu_m)^2/S_{mm}`,
so ``factors=[BTC]`` reproduces the market model to rounding.

Arrays: ``y`` is ``(P, L1)``, factors ``f`` are ``(P, L1, K)``; NaN marks a missing day, and a
day counts for a pair only when its return and every factor are present.

References
----------
MacKinlay, A. C. (1997). Event studies in economics and finance. *Journal of Economic Literature*
35(1), 13-39.
Campbell, J. Y., Lo, A. W. and MacKinlay, A. C. (1997). *The Econometrics of Financial Markets*.
Princeton University Press, ch. 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.errors import EventStudyInputError
from analysis.models import ModelFit, window_sums


def _design(f: np.ndarray) -> np.ndarray:
    """``(P, T, K)`` factors -> ``(P, T, K + 1)`` with the constant first."""
    return np.concatenate([np.ones(f.shape[:-1] + (1,)), f], axis=-1)


@dataclass(frozen=True)
class FactorFit(ModelFit):
    """A :class:`~analysis.models.ModelFit` of the k-factor model.

    ``alpha`` is the intercept and ``beta`` the loading on the first factor (the "benchmark" of
    the study's tables); ``coef`` holds every coefficient, shape ``(P, K + 1)`` (intercept
    first), and ``xtx_inv`` the ``(P, K + 1, K + 1)`` matrices :math:`(X_i'X_i)^{-1}` of the
    forecast-error term. The one-regressor moments of :class:`ModelFit` (``x_mean``, ``sxx``)
    are NaN."""

    coef: np.ndarray
    xtx_inv: np.ndarray

    @property
    def se_coef(self) -> np.ndarray:
        """OLS standard errors, :math:`\\sqrt{\\hat\\sigma^2 \\operatorname{diag}(X'X)^{-1}}`."""
        diag = np.diagonal(self.xtx_inv, axis1=1, axis2=2)
        return np.sqrt(self.sigma2[:, None] * diag)

    @property
    def se_alpha(self) -> np.ndarray:
        return self.se_coef[:, 0]

    @property
    def se_beta(self) -> np.ndarray:
        return self.se_coef[:, 1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Normal returns for factor returns ``x`` of shape ``(P, T, K)``."""
        return np.einsum("ptk,pk->pt", _design(x), self.coef)

    def forecast_term(self, x: np.ndarray) -> np.ndarray:
        """:math:`x_{0\\tau}'(X'X)^{-1}x_{0\\tau}` per event day, factors ``x`` ``(P, T, K)``."""
        x0 = _design(x)
        return np.einsum("ptk,pkj,ptj->pt", x0, self.xtx_inv, x0)

    def lamb_q(self, x: np.ndarray) -> np.ndarray:
        """The forecast-error term less :math:`1/L_1`: Lamb's (1995) :math:`(R_{m\\tau} -
        \\hat\\mu_m)^2/S_{mm}` of the market model, generalised to k factors (for one factor
        the two are equal), so Lamb's test applies unchanged."""
        return self.forecast_term(x) - 1.0 / self.nobs[:, None]

    def ar_variance(self, x: np.ndarray) -> np.ndarray:
        """:math:`\\hat\\sigma^2 (1 + x_0'(X'X)^{-1}x_0)` per event day (module docstring)."""
        return self.sigma2[:, None] * (1.0 + self.forecast_term(x))

    def car_variance(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """:math:`\\gamma' V_i \\gamma = \\hat\\sigma^2 (L + g'(X'X)^{-1} g)` with
        :math:`g = X^{*\\prime}\\gamma`, the sum of :math:`x_{0\\tau}` over the window."""
        x0 = np.nan_to_num(_design(x))
        g = np.moveaxis(window_sums(np.moveaxis(x0, 1, 2), windows), 2, 1)  # (P, C, K+1)
        q = np.einsum("pck,pkj,pcj->pc", g, self.xtx_inv, g)
        length = windows.sum(axis=0)[None, :]
        return self.sigma2[:, None] * (length + q)


def fit_factor(y: np.ndarray, f: np.ndarray) -> FactorFit:
    """OLS of every row of ``y`` ``(P, L1)`` on a constant and factors ``f`` ``(P, L1, K)``.

    :math:`\\hat\\sigma^2 = SSR/(L_1 - K - 1)` (the unbiased OLS variance; MacKinlay's
    :math:`L_1 - 2` for one factor). A pair with fewer than ``K + 2`` usable days or a singular
    design gets NaN estimates (the engine then excludes it as degenerate)."""
    y = np.asarray(y, dtype="float64")
    f = np.asarray(f, dtype="float64")
    if f.ndim != 3 or f.shape[:2] != y.shape:
        raise EventStudyInputError(
            f"Factor returns must have shape (pairs, days, factors) = {y.shape + ('K',)}; "
            f"got {f.shape}."
        )
    k = f.shape[2]
    mask = ~np.isnan(y) & ~np.isnan(f).any(axis=2)
    n = mask.sum(axis=1).astype("float64")
    x = np.where(mask[:, :, None], _design(np.nan_to_num(f)), 0.0)
    yz = np.where(mask, y, 0.0)
    xtx = np.einsum("ptk,ptj->pkj", x, x)
    xty = np.einsum("ptk,pt->pk", x, yz)
    p = y.shape[0]
    inv = np.full((p, k + 1, k + 1), np.nan)
    ok = n >= k + 2
    if ok.any():
        cond = np.linalg.cond(xtx[ok])
        good = np.flatnonzero(ok)[np.isfinite(cond) & (cond < 1e12)]
        inv[good] = np.linalg.inv(xtx[good])
    coef = np.einsum("pkj,pj->pk", inv, xty)
    fitted = np.einsum("ptk,pk->pt", x, coef)
    resid = np.where(mask, yz - fitted, np.nan)
    df = n - k - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = np.nansum(resid**2, axis=1) / df
    s2 = np.where(np.isnan(coef).any(axis=1), np.nan, s2)
    nan = np.full(p, np.nan)
    return FactorFit(
        "factor", coef[:, 0], coef[:, 1], s2, n, df, nan, nan, nan, nan, resid, coef, inv
    )


def check_factors(model: str, factors: Sequence[str]) -> tuple[str, ...]:
    """The factors of a study: required by the factor model, refused by every other."""
    out = tuple(str(f) for f in factors)
    if model == "factor" and not out:
        raise EventStudyInputError(
            "The factor model needs factors; pass factors=['BTC', 'NVDA'] (--factors BTC,NVDA)."
        )
    if model != "factor" and out:
        raise EventStudyInputError(
            f"Factors ({', '.join(out)}) need the factor model; the {model!r} model has none."
        )
    if len(set(out)) != len(out):
        raise EventStudyInputError(f"Factors must be distinct; got {', '.join(out)}.")
    return out


def gather_factors(
    panel: Any,
    factors: Sequence[str],
    r0: np.ndarray,
    width: int,
    n_members: int,
    gather_rows: Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray],
) -> np.ndarray:
    """Every factor's window for every event, repeated for the panel's ``n_members`` assets:
    ``(events * members, width, K)``, in the engine's pair order (event, then asset)."""
    n_s = len(panel.sessions)
    rows = gather_rows(panel.values, panel.columns(list(factors)), r0, width, n_s)
    per_event = rows.reshape(len(r0), len(factors), width).transpose(0, 2, 1)
    return np.repeat(per_event, n_members, axis=0)


def first_factor(f: np.ndarray) -> np.ndarray:
    """The first factor's returns, NaN on days when any factor is missing: the engine's
    benchmark column, so its exclusions (day 0, too few estimation days) see every factor."""
    return np.where(np.isnan(f).any(axis=2), np.nan, f[:, :, 0])


__all__ = ["FactorFit", "check_factors", "first_factor", "fit_factor", "gather_factors"]
