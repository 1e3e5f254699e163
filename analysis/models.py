"""Normal-return models, estimated for many asset-event pairs at once.

Every array has one row per asset-event pair and one column per day of the window; NaN marks a
missing return. The estimators use only the days on which the pair has data, so unbalanced
histories need no loop. Notation follows MacKinlay (1997): estimation window of :math:`L_1` days,
market model :math:`R_{it} = \\alpha_i + \\beta_i R_{mt} + \\varepsilon_{it}`.

References
----------
MacKinlay, A. C. (1997). Event studies in economics and finance. *Journal of Economic Literature*
35(1), 13-39.
Brown, S. J. and Warner, J. B. (1985). Using daily stock returns: the case of event studies.
*Journal of Financial Economics* 14(1), 3-31.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from analysis.errors import EventStudyInputError

ModelName = Literal["market", "market_adjusted", "constant_mean", "factor"]
MODELS: dict[str, str] = {
    "market": "market model (OLS)",
    "market_adjusted": "market-adjusted returns",
    "constant_mean": "constant-mean returns",
    "factor": "factor model (OLS)",
}
Convention = Literal["textbook", "estudy2"]


@dataclass(frozen=True)
class ModelFit:
    """Estimates of a normal-return model for P pairs (every attribute has shape ``(P,)``).

    Attributes
    ----------
    model
        ``"market"``, ``"market_adjusted"`` or ``"constant_mean"``.
    alpha, beta
        Intercept and slope (constant mean: ``beta = 0``; market-adjusted: 0 and 1).
    sigma2
        Residual variance :math:`\\hat\\sigma^2_\\varepsilon`.
    nobs
        Estimation observations :math:`L_1` actually used.
    df
        Degrees of freedom of :math:`\\hat\\sigma^2_\\varepsilon` (``nobs - 2``, ``nobs - 1``).
    x_mean, sxx
        Market mean :math:`\\hat\\mu_m` and :math:`\\sum_t (R_{mt}-\\hat\\mu_m)^2` of the
        regression days (NaN for models without a market slope).
    fe_mean, fe_sxx
        The same moments as they enter the forecast-error term; equal to ``x_mean`` and ``sxx``
        except under the estudy2 convention.
    resid
        Estimation-window residuals, shape ``(P, L1)``, NaN where unused.
    """

    model: str
    alpha: np.ndarray
    beta: np.ndarray
    sigma2: np.ndarray
    nobs: np.ndarray
    df: np.ndarray
    x_mean: np.ndarray
    sxx: np.ndarray
    fe_mean: np.ndarray
    fe_sxx: np.ndarray
    resid: np.ndarray

    @property
    def se_alpha(self) -> np.ndarray:
        """OLS standard error of alpha,
        :math:`\\sqrt{\\hat\\sigma^2 (1/L_1 + \\bar x^2/S_{xx})}`."""
        if self.model != "market":
            return np.sqrt(self.sigma2 / self.nobs)
        return np.sqrt(self.sigma2 * (1.0 / self.nobs + self.x_mean**2 / self.sxx))

    @property
    def se_beta(self) -> np.ndarray:
        """OLS standard error of beta, :math:`\\sqrt{\\hat\\sigma^2 / S_{xx}}`."""
        if self.model != "market":
            return np.full_like(self.sigma2, np.nan)
        return np.sqrt(self.sigma2 / self.sxx)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Normal returns for market returns ``x`` of shape ``(P, T)``."""
        if self.model == "constant_mean":
            return np.broadcast_to(self.alpha[:, None], x.shape).copy()
        return self.alpha[:, None] + self.beta[:, None] * x

    def ar_variance(self, x: np.ndarray) -> np.ndarray:
        """Variance of each out-of-sample abnormal return, with the forecast-error term.

        .. math::
            \\sigma^2(AR_{i\\tau}) = \\hat\\sigma^2_{\\varepsilon_i}\\Big[1 + \\frac{1}{L_1}
            + \\frac{(R_{m\\tau}-\\hat\\mu_m)^2}{\\sum_t (R_{mt}-\\hat\\mu_m)^2}\\Big]

        for the market model (MacKinlay 1997, eq. 8); :math:`\\hat\\sigma^2(1 + 1/L_1)` for the
        constant-mean model and :math:`\\hat\\sigma^2` for market-adjusted returns, which have no
        estimated parameters.
        """
        s2 = self.sigma2[:, None]
        if self.model == "market":
            dx = x - self.fe_mean[:, None]
            return s2 * (1.0 + 1.0 / self.nobs[:, None] + dx * dx / self.fe_sxx[:, None])
        if self.model == "constant_mean":
            return np.broadcast_to(s2 * (1.0 + 1.0 / self.nobs[:, None]), x.shape).copy()
        return np.broadcast_to(s2, x.shape).copy()

    def car_variance(self, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Variance of CARs over windows, not the sum of the daily variances.

        ``x`` has shape ``(P, E)`` (market returns of the event window) and ``windows`` is an
        ``(E, C)`` 0/1 matrix marking the days of each of C windows. For the market model
        :math:`\\mathrm{Var}(CAR_i) = \\gamma' V_i \\gamma` with
        :math:`V_i = \\hat\\sigma^2 (I + X^*_i (X_i'X_i)^{-1} X^{*\\prime}_i)` (MacKinlay 1997,
        matrix form of the market model), which for one regressor is

        .. math::
            \\sigma^2(CAR_i) = \\hat\\sigma^2_{\\varepsilon_i}\\Big[L + \\frac{L^2}{L_1} +
            \\frac{\\big(\\sum_{\\tau \\in w}(R_{m\\tau}-\\hat\\mu_m)\\big)^2}
                  {\\sum_t (R_{mt}-\\hat\\mu_m)^2}\\Big];

        :math:`\\hat\\sigma^2 (L + L^2/L_1)` for the constant-mean model and
        :math:`\\hat\\sigma^2 L` for market-adjusted returns.
        """
        length = windows.sum(axis=0)[None, :]
        s2 = self.sigma2[:, None]
        n = self.nobs[:, None]
        if self.model == "market":
            dx = window_sums(np.nan_to_num(x - self.fe_mean[:, None]), windows)
            return s2 * (length + length**2 / n + dx * dx / self.fe_sxx[:, None])
        if self.model == "constant_mean":
            return s2 * (length + length**2 / n)
        return s2 * length


def window_sums(a: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """``a @ windows`` for a 0/1 ``(E, C)`` matrix whose columns are runs of consecutive days:
    each column a slice sum of ``a`` (shape ``(..., E)``), no BLAS call (whose worker threads
    compete with the caller on a busy machine); any other matrix is multiplied."""
    n_days, n_cols = windows.shape
    # single days first (the engine's layout): one copy for all of them
    n_single = 0
    while n_single < min(n_days, n_cols) and windows[n_single, n_single] == 1.0:
        n_single += 1
    if n_single and not np.array_equal(windows[:, :n_single], np.eye(n_days, n_single)):
        n_single = 0
    runs = []
    for c in range(n_single, n_cols):
        days = np.flatnonzero(windows[:, c])
        if days.size and (
            days[-1] - days[0] != days.size - 1 or not (windows[days, c] == 1.0).all()
        ):
            return a @ windows
        runs.append((int(days[0]), int(days[-1]) + 1) if days.size else (0, 0))
    out = np.empty(a.shape[:-1] + (n_cols,))
    out[..., :n_single] = a[..., :n_single]
    for c, (lo, hi) in enumerate(runs, start=n_single):
        if hi - lo == 1:
            out[..., c] = a[..., lo]
        else:
            out[..., c] = a[..., lo:hi].sum(axis=-1)
    return out


def _row_blocks(a: np.ndarray, values: int = 32_768) -> list[slice]:
    """Slices of rows holding about ``values`` numbers each (row-wise steps then run on blocks
    that stay in cache instead of full-size temporaries; each row's result is unchanged)."""
    step = max(1, values // max(a.shape[1], 1))
    return [slice(lo, lo + step) for lo in range(0, a.shape[0], step)]


def _masked_mean(v: np.ndarray, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mask, v, 0.0).sum(axis=1) / n


def fit_model(
    model: str,
    y: np.ndarray,
    x: np.ndarray | None = None,
    *,
    convention: Convention = "textbook",
) -> ModelFit:
    """Estimate a normal-return model for every row of ``y`` (pairs x estimation days).

    Parameters
    ----------
    model
        ``"market"`` (OLS of y on x), ``"market_adjusted"`` (AR = y - x) or ``"constant_mean"``.
    y, x
        Asset and market returns of the estimation window, shape ``(P, L1)``; NaN = missing.
    convention
        ``"textbook"``: :math:`\\hat\\sigma^2 = SSR/(L_1-2)` (MacKinlay 1997) and the market
        moments of the forecast-error term over the days used in the regression. ``"estudy2"``:
        :math:`SSR/(L_1-1)` (R's ``sd`` of the residuals) and the market moments over every
        estimation day with a market return, including days on which the asset has none, which is
        what the R package estudy2 does.

    Notes
    -----
    OLS estimators of the market model (MacKinlay 1997, sec. 5):

    .. math::
        \\hat\\beta_i = \\frac{\\sum_t (R_{it}-\\hat\\mu_i)(R_{mt}-\\hat\\mu_m)}
                              {\\sum_t (R_{mt}-\\hat\\mu_m)^2},\\quad
        \\hat\\alpha_i = \\hat\\mu_i - \\hat\\beta_i \\hat\\mu_m,\\quad
        \\hat\\sigma^2_{\\varepsilon_i} = \\frac{1}{L_1-2}\\sum_t \\hat\\varepsilon_{it}^2 .
    """
    if model not in MODELS:
        raise EventStudyInputError(f"Model {model!r} is unknown; use one of {', '.join(MODELS)}.")
    if model == "factor":
        from analysis.factor_model import fit_factor  # it builds on this module

        if x is None:
            raise EventStudyInputError("The factor model needs factor returns.")
        return fit_factor(y, x)
    if convention not in ("textbook", "estudy2"):
        raise EventStudyInputError(
            f"Convention {convention!r} is unknown; use 'textbook' or 'estudy2'."
        )
    y = np.asarray(y, dtype="float64")
    nan = np.full(y.shape[0], np.nan)
    if model == "constant_mean":
        if y.shape[1] and not np.isnan(y).any():  # balanced: no masks (same sums, fewer passes)
            n = np.full(y.shape[0], float(y.shape[1]))
            mu, ssr = np.empty(y.shape[0]), np.empty(y.shape[0])
            resid = np.empty(y.shape)
            for rows in _row_blocks(y):
                mu[rows] = y[rows].sum(axis=1) / n[rows]
                r = np.subtract(y[rows], mu[rows, None], out=resid[rows])
                ssr[rows] = np.einsum("ij,ij->i", r, r)
            with np.errstate(invalid="ignore", divide="ignore"):
                s2 = ssr / (n - 1)
            return ModelFit(model, mu, np.zeros_like(mu), s2, n, n - 1, nan, nan, nan, nan, resid)
        mask = ~np.isnan(y)
        n = mask.sum(axis=1).astype("float64")
        mu = _masked_mean(y, mask, n)
        resid = np.where(mask, y - mu[:, None], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = np.nansum(resid**2, axis=1) / (n - 1)
        return ModelFit(model, mu, np.zeros_like(mu), s2, n, n - 1, nan, nan, nan, nan, resid)
    if x is None:
        raise EventStudyInputError(f"The {MODELS[model]} needs market returns.")
    x = np.asarray(x, dtype="float64")
    complete = y.shape[1] > 0 and not (np.isnan(y).any() or np.isnan(x).any())
    if complete:  # balanced: every day counts, no masks
        mask = None
        n = np.full(y.shape[0], float(y.shape[1]))
    else:
        mask = ~np.isnan(y) & ~np.isnan(x)
        n = mask.sum(axis=1).astype("float64")
    if model == "market_adjusted":
        d = y - x
        if mask is None:
            mask = np.ones(y.shape, dtype=bool)
        mu = _masked_mean(d, mask, n)
        resid = np.where(mask, d, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = np.nansum((resid - mu[:, None]) ** 2, axis=1) / (n - 1)
        return ModelFit(
            model, np.zeros_like(mu), np.ones_like(mu), s2, n, n - 1, nan, nan, nan, nan, resid
        )
    if complete:  # balanced: the steps below without masks, in row blocks that stay in cache
        p = y.shape[0]
        mx, my, sxx, beta, ssr = (np.empty(p) for _ in range(5))
        resid = np.empty(y.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            for rows in _row_blocks(y):
                mx[rows], my[rows] = x[rows].sum(axis=1) / n[rows], y[rows].sum(axis=1) / n[rows]
                dx = x[rows] - mx[rows, None]
                dy = np.subtract(y[rows], my[rows, None], out=resid[rows])
                sxx[rows] = np.einsum("ij,ij->i", dx, dx)
                beta[rows] = np.einsum("ij,ij->i", dx, dy) / sxx[rows]
                dx *= beta[rows, None]
                dy -= dx  # y - alpha - beta x = (y - my) - beta (x - mx)
                ssr[rows] = np.einsum("ij,ij->i", dy, dy)
        alpha = my - beta * mx
    else:
        mx = _masked_mean(x, mask, n)
        my = _masked_mean(y, mask, n)
        dx = np.where(mask, x - mx[:, None], 0.0)
        dy = np.where(mask, y - my[:, None], 0.0)
        sxx = np.einsum("ij,ij->i", dx, dx)
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = np.einsum("ij,ij->i", dx, dy) / sxx
        alpha = my - beta * mx
        # y - alpha - beta x = (y - my) - beta (x - mx): one pass, NaN on unused days
        dy -= beta[:, None] * dx
        ssr = np.einsum("ij,ij->i", dy, dy)
        resid = np.where(mask, dy, np.nan)
    df = n - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = ssr / (df if convention == "textbook" else n - 1)
    if convention == "estudy2":
        # estudy2 takes the market mean and sum of squares over ALL estimation days with a market
        # return, also those before the asset listed (expected.json note 1).
        xmask = ~np.isnan(x)
        nx = xmask.sum(axis=1)
        mx_fe = _masked_mean(x, xmask, nx)
        dxa = np.where(xmask, x - mx_fe[:, None], 0.0)
        sxx_fe = (dxa * dxa).sum(axis=1)
    else:
        mx_fe, sxx_fe = mx, sxx
    return ModelFit(model, alpha, beta, s2, n, df, mx, sxx, mx_fe, sxx_fe, resid)
