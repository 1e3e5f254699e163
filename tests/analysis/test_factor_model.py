"""The k-factor model against statsmodels OLS and a hand-computed forecast-error term."""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm

from analysis.factor_model import fit_factor
from analysis.models import fit_model


def _panel(seed: int, p: int, l1: int, e: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0, 0.03, size=(p, l1 + e, k))
    betas = rng.normal(1.0, 0.5, size=(p, k))
    y = 0.001 + np.einsum("ptk,pk->pt", f, betas) + rng.normal(0.0, 0.02, size=(p, l1 + e))
    return y, f


def test_coefficients_sigma_and_ar_variance_equal_statsmodels_with_missing_days() -> None:
    l1, e, k = 90, 6, 2
    y, f = _panel(7, 4, l1, e, k)
    y[1, [3, 40]] = np.nan
    f[2, [5, 17], 1] = np.nan  # a missing factor drops the day for that pair
    fit = fit_factor(y[:, :l1], f[:, :l1])
    ar_var = fit.ar_variance(f[:, l1:])
    windows = np.zeros((e, 2))
    windows[:, 0] = 1.0
    windows[1:4, 1] = 1.0
    car_var = fit.car_variance(f[:, l1:], windows)
    normal = fit.predict(f[:, l1:])
    for i in range(4):
        yi, fi = y[i, :l1], f[i, :l1]
        ok = ~np.isnan(yi) & ~np.isnan(fi).any(axis=1)
        x = sm.add_constant(fi[ok])
        res = sm.OLS(yi[ok], x).fit()
        np.testing.assert_allclose(fit.coef[i], res.params, rtol=0, atol=1e-10)
        np.testing.assert_allclose(fit.se_coef[i], res.bse, rtol=1e-10)
        assert abs(np.sqrt(fit.sigma2[i]) - np.sqrt(res.scale)) < 1e-10
        assert fit.df[i] == res.df_resid == ok.sum() - k - 1
        # by hand: sigma^2 (1 + x0'(X'X)^-1 x0), and for a window sigma^2 (L + g'(X'X)^-1 g)
        inv = np.linalg.inv(x.T @ x)
        x0 = np.column_stack([np.ones(e), f[i, l1:]])
        hand = res.scale * (1.0 + np.einsum("tk,kj,tj->t", x0, inv, x0))
        np.testing.assert_allclose(ar_var[i], hand, rtol=1e-10)
        for c in range(2):
            g = windows[:, c] @ x0
            full = res.scale * (np.diag(windows[:, c]).sum() + g @ inv @ g)
            assert abs(car_var[i, c] - full) < 1e-10 * full
        ar = y[i, l1:] - normal[i]
        np.testing.assert_allclose(ar, y[i, l1:] - res.predict(x0), atol=1e-12)


def test_one_factor_reproduces_the_market_model() -> None:
    l1, e = 110, 16
    y, f = _panel(11, 5, l1, e, 1)
    mk = fit_model("market", y[:, :l1], f[:, :l1, 0])
    fk = fit_factor(y[:, :l1], f[:, :l1])
    for name in ("alpha", "beta", "sigma2", "df", "se_alpha", "se_beta"):
        np.testing.assert_allclose(getattr(fk, name), getattr(mk, name), rtol=1e-10)
    np.testing.assert_allclose(fk.ar_variance(f[:, l1:]), mk.ar_variance(f[:, l1:, 0]), rtol=1e-10)
    w = np.tril(np.ones((e, e)))[:, ::-1][::-1]  # cumulative windows [0, t]
    np.testing.assert_allclose(
        fk.car_variance(f[:, l1:], w), mk.car_variance(f[:, l1:, 0], w), rtol=1e-10
    )


def test_a_singular_design_gives_nan_not_numbers() -> None:
    y, f = _panel(3, 2, 60, 0, 2)
    f[0, :, 1] = 2.0 * f[0, :, 0]  # collinear factors
    fit = fit_factor(y, f)
    assert np.isnan(fit.sigma2[0]) and np.isnan(fit.coef[0]).all()
    assert np.isfinite(fit.sigma2[1])
