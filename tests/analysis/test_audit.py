"""The audit findings of issue 12, each pinned by a test that failed before its fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis import EventStudy, get_event
from analysis.cstests import EMPTY_DAY_REASON
from tests.analysis.conftest import estudy2_study


def _independent_corrado(returns: pd.DataFrame) -> np.ndarray:
    """Corrado (1989) daily Z re-derived firm by firm with np.linalg.lstsq (market model OLS
    over 2019-04-01..2020-03-13): ranks of each firm's M_i estimation residuals and event ARs,
    :math:`\\bar d_t` over the firms present, :math:`S^2 = \\frac1T\\sum_t \\bar d_t^2` with T the
    days on which any firm has data (Corrado 1989, eq. 3)."""
    m = returns["^GSPC"].to_numpy()
    est = (returns.index >= "2019-04-01") & (returns.index <= "2020-03-13")
    ev = (returns.index >= "2020-03-16") & (returns.index <= "2020-03-20")
    days = est | ev
    d = []
    for col in returns.columns.drop("^GSPC"):
        y = returns[col].to_numpy()
        ok = est & ~np.isnan(y)
        design = np.column_stack([np.ones(ok.sum()), m[ok]])
        (a, b), *_ = np.linalg.lstsq(design, y[ok], rcond=None)
        ar = np.where(days, y - a - b * m, np.nan)[days]
        ranks = pd.Series(ar).rank().to_numpy()
        d.append(ranks - (np.count_nonzero(~np.isnan(ar)) + 1) / 2)
    dev = np.array(d).T  # (T, N)
    present = ~np.isnan(dev)
    dbar = np.nansum(dev, axis=1) / present.sum(axis=1)
    t_days = present.any(axis=1).sum()
    s = np.sqrt(np.nansum(dbar**2) / t_days)
    return dbar[-5:] / s


def _daily(result, test: str) -> np.ndarray:
    t = result.tests
    sel = t[(t["group"] == "all") & (t["kind"] == "day") & (t["test"] == test)]
    return sel.sort_values("start")["stat"].to_numpy()


def test_textbook_rank_test_divides_by_the_days_with_data(estudy2_returns, estudy2_expected):
    """Audit: the textbook rank tests used estudy2's mean M_i as the number of days. ZM and UBER
    listed inside the estimation window, so mean M_i < T and S was too large (Corrado-Zivney
    size about 2% instead of 5% on unbalanced panels). estudy2's figure stays under its
    convention."""
    returns, meta = estudy2_returns
    textbook = estudy2_study("textbook").fit(returns=returns, meta=meta)
    np.testing.assert_allclose(_daily(textbook, "corrado_rank"), _independent_corrado(returns))
    e2 = estudy2_study("estudy2").fit(returns=returns, meta=meta)
    expected = np.array(estudy2_expected["corrado_rank_estudy2"], float)
    np.testing.assert_allclose(_daily(e2, "corrado_rank"), expected, atol=5e-8)


def test_window_with_a_day_without_pairs_is_nan_with_its_reason(sora_prices):
    """Audit: with BTC's close missing inside the event window, every token lacks the abnormal
    return of that day; the rank and Lamb tests summed the remaining days and reported the
    shorter window under the longer window's label."""
    sora_day = pd.Timestamp(get_event("sora").map("crypto").session)
    gap = sora_day + pd.Timedelta(days=2)
    prices = sora_prices[~((sora_prices["symbol"] == "BTC") & (sora_prices["date"] == gap))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = EventStudy([get_event("sora")], assets=["AGIX", "FET", "RNDR", "WLD"]).fit(prices)
    assert result.abnormal_returns.loc[2].isna().all()
    tests = result.tests
    tests = tests[tests["group"] == "all"].set_index(["test", "window"])
    for code in ("corrado_rank", "modified_rank", "cz_sign", "lamb"):
        for window in ("[0,3]", "[0,10]", "[-5,10]", "+2"):
            row = tests.loc[(code, window)]
            assert np.isnan(row["stat"]) and np.isnan(row["pvalue"]), (code, window)
            assert row["reason"] == EMPTY_DAY_REASON, (code, window)
        assert np.isfinite(tests.loc[(code, "[0,1]"), "stat"]), code  # days 0 and 1 have data


def _sign_table(resid: np.ndarray, ar: np.ndarray, convention: str = "textbook") -> pd.DataFrame:
    """The sign tests of synthetic pairs: each day, then the window of all event days."""
    from analysis import crosssection, cstests

    p, e = ar.shape
    wm = np.hstack([np.eye(e), np.ones((e, 1))])
    car = ar @ wm
    inp = crosssection.CrossSectionInput(
        car=car,
        car_var=np.ones_like(car),
        dof=np.full(p, resid.shape[1] - 2.0),
        nobs=np.full(p, resid.shape[1]),
        resid_est=resid,
        ar_event=ar,
        windows=wm,
        corr_blocks=[],
        lamb_q=None,
        convention=convention,
    )
    labels = [str(d) for d in range(e)] + [f"[0,{e - 1}]"]
    table = cstests.run_tests(
        inp,
        cstests.select(["sign", "generalized_sign"]),
        [crosssection.Partition.single("all", p)],
        labels,
        ["day"] * e + ["car"],
        [(d, d) for d in range(e)] + [(0, e - 1)],
    )
    return table.frame().set_index(["test", "window"])


def test_sign_tests_have_exact_binomial_pvalues_and_cowan_window_p_hat():
    """Audit: at N = 8 the sign tests used the normal approximation (size 6-7%), and the
    generalized sign test compared multi-day CARs with the daily share of positive residuals
    (Cowan 1992 uses estimation-period CARs of the window's length)."""
    from scipy.stats import binomtest

    rng = np.random.default_rng(7)
    resid = rng.lognormal(0.0, 1.0, (8, 60)) - 1.2  # skewed: daily and 4-day shares differ
    resid[2, :7] = np.nan  # a pair listed late
    ar = rng.normal(0.5, 1.0, (8, 4))
    table = _sign_table(resid, ar)
    car = ar.sum(axis=1)
    w = int((car > 0).sum())
    # Cowan's p-hat for the 4-day window: per pair, the share of positive sums of 4 consecutive
    # estimation residuals, averaged over pairs
    shares = []
    for row in resid:
        sums = pd.Series(row).rolling(4).sum().dropna()
        shares.append((sums > 0).mean())
    p_hat = float(np.mean(shares))
    daily = float(np.mean([(r[~np.isnan(r)] > 0).mean() for r in resid]))
    assert abs(p_hat - daily) > 0.02
    gs = table.loc[("generalized_sign", "[0,3]")]
    assert gs["stat"] == pytest.approx((w - 8 * p_hat) / np.sqrt(8 * p_hat * (1 - p_hat)))
    assert gs["pvalue"] == pytest.approx(binomtest(w, 8, p_hat).pvalue, rel=1e-12)
    one = table.loc[("generalized_sign", "0")]
    w0 = int((ar[:, 0] > 0).sum())
    assert one["pvalue"] == pytest.approx(binomtest(w0, 8, daily).pvalue, rel=1e-12)
    sign = table.loc[("sign", "[0,3]")]
    assert sign["stat"] == pytest.approx((w - 4) / np.sqrt(2))
    assert sign["pvalue"] == pytest.approx(binomtest(w, 8, 0.5).pvalue, rel=1e-12)
    # estudy2's convention keeps the package's normal p-value
    e2 = _sign_table(resid, ar, "estudy2").loc[("sign", "[0,3]")]
    assert e2["pvalue"] == pytest.approx(2 * norm_sf(abs((w - 4) / np.sqrt(2))), rel=1e-12)


def norm_sf(z: float) -> float:
    from scipy.stats import norm

    return float(norm.sf(z))


def test_pairs_with_degenerate_residual_variance_are_excluded_with_their_reason(sora_prices):
    """Audit: a pair with zero residual variance was kept silently; Patell, BMP and KP dropped
    it (its SAR divides by zero) while the t, sign and rank tests kept it, so the tests of one
    window used different pairs."""
    btc = sora_prices[sora_prices["symbol"] == "BTC"]
    pegged = btc.assign(symbol="PEG", asset_class="ai_token", close=2.0 * btc["close"])
    flat = btc.assign(symbol="FLAT", asset_class="ai_token", close=1.0)
    prices = pd.concat([sora_prices, pegged, flat], ignore_index=True)
    assets = ["AGIX", "FET", "RNDR", "WLD", "INJ", "PEG", "FLAT"]
    with pytest.warns(UserWarning, match="2 of 7 asset-event pairs were excluded"):
        result = EventStudy([get_event("sora")], assets=assets).fit(prices)
    excluded = result.excluded.set_index("asset")["reason"]
    assert sorted(excluded.index) == ["FLAT", "PEG"]
    assert excluded.str.startswith("zero or degenerate residual variance").all()
    assert "Excluded PEG / sora: zero or degenerate residual variance" in str(result)
    assert sorted(a for _, a in result.car.index) == ["AGIX", "FET", "INJ", "RNDR", "WLD"]
    tests = result.tests
    car = tests[(tests["group"] == "all") & (tests["kind"] == "car")]
    assert (car.groupby("window")["n"].nunique() == 1).all()  # one pair set per window
    assert set(car["n"]) == {5}


def test_pooling_events_whose_windows_overlap_is_refused_with_the_reason(sora_prices):
    """Audit: pooling Sora (2024-02-15) with NVIDIA's results (2024-02-21), whose event windows
    share market days, set their cross-correlation to 0 and gave a smaller KP p-value than
    either event alone. The pooled group is now refused with the reason; each event's group is
    computed."""
    assets = ["AGIX", "FET", "RNDR", "WLD", "INJ", "GRT"]
    result = EventStudy([get_event("sora"), get_event("nvda_q4fy24")], assets=assets).fit(
        sora_prices
    )
    t = result.tests
    pooled = t[t["group"] == "all"]
    assert pooled["stat"].isna().all()
    assert pooled["reason"].str.startswith("pools events sora and nvda_q4fy24 whose event").all()
    own = t[t["group"].isin(["event=sora", "event=nvda_q4fy24"]) & (t["test"] == "kp_bmp")]
    assert own["stat"].notna().all()
    # events far apart still pool
    far = EventStudy([get_event("sora"), "2023-11-06"], assets=assets).fit(sora_prices)
    assert far.tests.query("group == 'all' and test == 'kp_bmp'")["stat"].notna().all()


def test_every_test_of_a_window_uses_one_pair_set(sora_prices):
    """Audit: a pair missing one close inside the window has no CAR, so the t, BMP, KP, sign
    and Wilcoxon tests left it out while the rank tests kept its other days. The rank tests of
    such a window now use the pairs with the CAR only."""
    sora_day = pd.Timestamp(get_event("sora").map("crypto").session)
    gap = sora_day + pd.Timedelta(days=2)
    prices = sora_prices[~((sora_prices["symbol"] == "AGIX") & (sora_prices["date"] == gap))]
    assets = ["AGIX", "FET", "RNDR", "WLD", "INJ", "GRT"]
    result = EventStudy([get_event("sora")], assets=assets).fit(prices)
    assert np.isnan(result.car.loc[("sora", "AGIX"), "[0,3]"])
    t = result.tests
    car = t[(t["group"] == "all") & (t["kind"] == "car") & (t["reason"] == "")]
    sizes = car.groupby("window")["n"].agg(set)
    assert sizes["[0,3]"] == {5} and sizes["[0,1]"] == {6}
    ranked = t[(t["group"] == "all") & (t["test"] == "corrado_rank")].set_index("window")
    assert np.isfinite(ranked.loc["[0,3]", "stat"])
    assert ranked.loc["[0,3]", "n"] == 5
