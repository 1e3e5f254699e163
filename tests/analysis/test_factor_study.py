"""The factor model through ``EventStudy.fit``: one factor is the market model, two factors are
statsmodels' OLS, the KP-BMP test keeps its size, and bad factor options are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis import EventStudy, crosssection, cstests
from analysis.errors import EventStudyInputError, UnknownAssetError
from analysis.factor_model import fit_factor
from analysis.models import window_sums

EST, EVT = (-120, -11), (-5, 10)
L1, E = EST[1] - EST[0] + 1, EVT[1] - EVT[0] + 1
DAY0 = pd.Timestamp("2024-01-01")


def _returns(seed: int, n: int = 6) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(DAY0 + pd.Timedelta(days=EST[0] - 5), DAY0 + pd.Timedelta(days=EVT[1]))
    t = len(dates)
    btc, nvda = rng.normal(0, 0.03, t), rng.normal(0, 0.025, t)
    cols = {"BTC": btc, "NVDA": nvda}
    for i in range(n):
        cols[f"T{i}"] = 0.002 + 1.2 * btc + 0.5 * nvda + rng.normal(0, 0.04, t)
    frame = pd.DataFrame(cols, index=dates)
    frame.iloc[7, 2] = np.nan  # a gap in one token's estimation window
    frame.iloc[30, 1] = np.nan  # a day without NVDA
    meta = {s: "ai_token" for s in cols} | {"BTC": "crypto_benchmark", "NVDA": "equity"}
    return frame, meta


def _study(**kw: object) -> EventStudy:
    assets = [f"T{i}" for i in range(6)]
    return EventStudy(
        [DAY0.date().isoformat()], estimation_window=EST, event_window=EVT, assets=assets, **kw
    )


def test_one_factor_is_the_market_model() -> None:
    returns, meta = _returns(1)
    market = _study(model="market").fit(returns=returns, meta=meta)
    factor = _study(model="factor", factors=["BTC"]).fit(returns=returns, meta=meta)
    for name in ("abnormal_returns", "ar_std", "car", "car_std"):
        pd.testing.assert_frame_equal(
            getattr(factor, name), getattr(market, name), rtol=1e-10, check_exact=False
        )
    cols = ["alpha", "beta", "se_alpha", "se_beta", "sigma", "nobs", "df"]
    pd.testing.assert_frame_equal(factor.params[cols], market.params[cols], rtol=1e-10)
    keep = ["test", "group", "window", "stat", "pvalue"]
    # every registered test, Lamb's with the k-factor forecast term, gives the same numbers
    pd.testing.assert_frame_equal(factor.tests[keep], market.tests[keep], rtol=1e-9)
    pd.testing.assert_frame_equal(factor.portfolios, market.portfolios, rtol=1e-9)
    assert factor.spec["factors"] == ["BTC"] and "factors" not in market.spec


def test_two_factors_equal_statsmodels_inside_the_engine() -> None:
    returns, meta = _returns(2)
    res = _study(model="factor", factors=["BTC", "NVDA"]).fit(returns=returns, meta=meta)
    assert res.spec["model"] == "factor" and res.spec["factors"] == ["BTC", "NVDA"]
    est = returns.loc[: DAY0 + pd.Timedelta(days=EST[1])].iloc[-L1:]
    for sym in ("T0", "T1"):
        ok = est[[sym, "BTC", "NVDA"]].dropna()
        ols = sm.OLS(ok[sym], sm.add_constant(ok[["BTC", "NVDA"]])).fit()
        row = res.params.xs(sym, level=1).iloc[0]
        assert abs(row["alpha"] - ols.params["const"]) < 1e-10
        assert abs(row["beta"] - ols.params["BTC"]) < 1e-10
        assert abs(row["sigma"] - np.sqrt(ols.scale)) < 1e-10
        assert row["df"] == ols.df_resid
        ev = returns.loc[DAY0 : DAY0 + pd.Timedelta(days=3)]
        x0 = sm.add_constant(ev[["BTC", "NVDA"]], has_constant="add")
        car = float((ev[sym] - ols.predict(x0)).sum())
        g = x0.sum().to_numpy()
        var = ols.scale * (len(ev) + g @ np.linalg.inv(ols.model.exog.T @ ols.model.exog) @ g)
        assert abs(res.car["[0,3]"].xs(sym, level=1).iloc[0] - car) < 1e-10
        got_sd = res.car_std["[0,3]"].xs(sym, level=1).iloc[0]
        assert abs(got_sd - np.sqrt(var)) < 1e-10


@pytest.mark.parametrize(
    ("kw", "error", "text"),
    [
        ({"model": "factor"}, EventStudyInputError, "needs factors"),
        ({"model": "market", "factors": ["BTC"]}, EventStudyInputError, "need the factor model"),
        ({"model": "factor", "factors": ["BTC", "BTC"]}, EventStudyInputError, "distinct"),
    ],
)
def test_bad_factor_options_are_refused(kw: dict, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        _study(**kw)


def test_a_factor_not_in_the_data_is_refused() -> None:
    returns, meta = _returns(3)
    with pytest.raises(UnknownAssetError, match="Factor 'QQQ' is not in the data"):
        _study(model="factor", factors=["BTC", "QQQ"]).fit(returns=returns, meta=meta)


def test_kp_bmp_of_the_factor_model_has_its_nominal_size() -> None:
    """2000 seeded replications of 8 assets sharing an event date, two factors, no abnormal
    return: KP-BMP (Kolari & Pynnonen 2010) of CAR[0,0] and CAR[-5,10] rejects 5% +/- 1.5."""
    reps, n, k = 2000, 8, 2
    rng = np.random.default_rng(20240215)
    f = rng.normal(0.0, 0.02, (reps, 1, L1 + E, k))
    beta = rng.uniform(0.3, 1.5, (reps, n, 1, k))
    sigma = rng.uniform(0.02, 0.06, (reps, n, 1))
    y = 0.001 + (beta * f).sum(axis=3) + sigma * rng.standard_normal((reps, n, L1 + E))
    f = np.broadcast_to(f, (reps, n, L1 + E, k)).reshape(reps * n, L1 + E, k)
    y = y.reshape(reps * n, L1 + E)
    fit = fit_factor(y[:, :L1], f[:, :L1])
    ar = y[:, L1:] - fit.predict(f[:, L1:])
    windows = [(0, 0), (-5, 10)]
    wm = np.zeros((E, 2))
    for c, (lo, hi) in enumerate(windows):
        wm[lo - EVT[0] : hi - EVT[0] + 1, c] = 1.0
    ev = np.repeat(np.arange(reps), n)
    blocks = crosssection.residual_correlation_blocks(
        fit.resid, np.zeros((reps * n, L1)), ev, aligned=lambda idx: True
    )
    inp = crosssection.CrossSectionInput(
        car=window_sums(ar, wm),
        car_var=fit.car_variance(f[:, L1:], wm),
        dof=fit.df,
        nobs=fit.nobs,
        resid_est=fit.resid,
        ar_event=ar,
        windows=wm,
        corr_blocks=blocks,
        lamb_q=None,
        convention="textbook",
    )
    part = crosssection.Partition([f"r{i:05d}" for i in range(reps)], ev)
    labels = ["[0,0]", "[-5,10]"]
    table = cstests.run_tests(
        inp, cstests.select(["kp_bmp"]), [part], labels, ["car", "car"], windows
    ).frame()
    size = (table.pivot(index="group", columns="window", values="pvalue") <= 0.05).mean()
    assert (abs(size - 0.05) <= 0.015).all(), size
