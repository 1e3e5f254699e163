"""Normal-return models: OLS against statsmodels on real data, variances against matrix algebra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.models import fit_model


@pytest.fixture(scope="module")
def sora_estimation_data(sora_result, sora_prices):
    """For every Sora pair: asset and benchmark returns on the pair's estimation sessions."""
    wide = sora_prices.pivot(index="date", columns="symbol", values="close")
    rows = []
    for (event, asset), p in sora_result.params.iterrows():
        sessions = pd.date_range(p["est_start"], p["est_end"], freq="D")
        cal_closes = wide[[asset, p["benchmark"]]]
        if p["calendar"] != "crypto":
            cal_closes = cal_closes.dropna()  # NYSE sessions: both equities trade every session
        rets = cal_closes.pct_change(fill_method=None).loc[sessions.intersection(cal_closes.index)]
        rows.append(((event, asset), rets.dropna()))
    return rows


@pytest.mark.parametrize("quantity", ["alpha", "beta", "se_alpha", "se_beta", "sigma", "nobs"])
def test_market_model_matches_statsmodels_ols(sora_result, sora_estimation_data, quantity):
    params = sora_result.params
    for key, rets in sora_estimation_data:
        asset, bench = rets.columns
        ols = sm.OLS(rets[asset], sm.add_constant(rets[bench])).fit()
        expected = {
            "alpha": ols.params["const"],
            "beta": ols.params[bench],
            "se_alpha": ols.bse["const"],
            "se_beta": ols.bse[bench],
            "sigma": np.sqrt(ols.scale),
            "nobs": ols.nobs,
        }[quantity]
        np.testing.assert_allclose(
            params.loc[key, quantity], expected, rtol=1e-9, err_msg=f"{key} {quantity}"
        )


def test_lstsq_rederivation_with_missing_days():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, (4, 120))
    y = 0.001 + 1.3 * x + rng.normal(0, 0.02, (4, 120))
    y[1, :30] = np.nan  # a late listing
    x[2, 50:55] = np.nan  # benchmark gaps
    fit = fit_model("market", y, x)
    for i in range(4):
        ok = ~np.isnan(y[i]) & ~np.isnan(x[i])
        (a, b), ssr, *_ = np.linalg.lstsq(
            np.column_stack([np.ones(ok.sum()), x[i, ok]]), y[i, ok], rcond=None
        )
        np.testing.assert_allclose([fit.alpha[i], fit.beta[i]], [a, b], rtol=1e-10)
        np.testing.assert_allclose(fit.sigma2[i], ssr[0] / (ok.sum() - 2), rtol=1e-10)
        assert fit.nobs[i] == ok.sum()


def test_car_variance_is_gamma_v_gamma():
    """MacKinlay (1997): Var(CAR) = gamma' V gamma, V = s2 (I + X* (X'X)^-1 X*'); not sum of
    daily variances."""
    rng = np.random.default_rng(2)
    x_est = rng.normal(0, 0.01, (1, 100))
    y_est = 0.5 * x_est + rng.normal(0, 0.02, (1, 100))
    x_ev = rng.normal(0.004, 0.01, (1, 6))
    fit = fit_model("market", y_est, x_est)
    design = np.column_stack([np.ones(100), x_est[0]])
    star = np.column_stack([np.ones(6), x_ev[0]])
    v = fit.sigma2[0] * (np.eye(6) + star @ np.linalg.inv(design.T @ design) @ star.T)
    windows = np.zeros((6, 3))
    windows[:, 0] = 1  # all six days
    windows[2:4, 1] = 1  # two days
    windows[0, 2] = 1  # one day
    got = fit.car_variance(x_ev, windows)[0]
    expected = [windows[:, c] @ v @ windows[:, c] for c in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(fit.ar_variance(x_ev)[0], np.diag(v), rtol=1e-12)
    assert got[0] > fit.ar_variance(x_ev)[0].sum()  # the estimation error is correlated


@pytest.mark.parametrize("model", ["constant_mean", "market_adjusted"])
def test_other_models(model):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.01, (2, 80))
    y = x + rng.normal(0.001, 0.02, (2, 80))
    fit = fit_model(model, y, x)
    base = y if model == "constant_mean" else y - x
    np.testing.assert_allclose(fit.sigma2, base.var(axis=1, ddof=1), rtol=1e-12)
    ev = np.zeros((2, 3))
    if model == "constant_mean":
        np.testing.assert_allclose(fit.predict(ev), np.repeat(y.mean(axis=1)[:, None], 3, 1))
        expected = fit.sigma2 * (3 + 9 / 80)
    else:
        np.testing.assert_allclose(fit.predict(ev + 0.01), np.full((2, 3), 0.01))
        expected = fit.sigma2 * 3
    np.testing.assert_allclose(fit.car_variance(ev, np.ones((3, 1)))[:, 0], expected)
