"""Second stage: groups, cross-sectional regression (HC3) and abnormal volume.

Seeded simulations and hand-built frames checked against statsmodels and scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats

from analysis import EventStudy
from analysis.groups import GROUP_OF_ONE, fit_groups, group_differences
from analysis.placebo import placebo
from analysis.regression import (
    RegressionInputError,
    characteristics,
    fit_cross_section,
    parse_regressors,
    regress_result,
)
from analysis.volume import abnormal_volume

DAY0 = pd.Timestamp("2024-02-15")
GROUPS = {"compute": ["C1", "C2", "C3", "C4", "C5"], "agents": ["A1", "A2", "A3", "A4", "A5"]}
GROUPS_ONE = {**GROUPS, "identity": ["I1"]}
SHOCK = 0.25


def _panel(seed: int = 7) -> pd.DataFrame:
    """Market-model returns on UTC days; the compute group alone gets +25% on day 0. A year of
    history before day 0 leaves some 250 placebo dates."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(DAY0 - pd.Timedelta(days=400), DAY0 + pd.Timedelta(days=12))
    n = len(dates)
    rm = rng.normal(0.0005, 0.02, n)
    frames = [pd.DataFrame({"date": dates, "symbol": "BTC", "ret": rm, "cls": "crypto_benchmark"})]
    day0 = int(np.flatnonzero(dates == DAY0)[0])
    for g, syms in GROUPS_ONE.items():
        for s in syms:
            beta = rng.uniform(0.6, 1.6)
            r = 0.0002 + beta * rm + rng.normal(0, 0.01, n)
            if g == "compute":
                r[day0] += SHOCK
            frames.append(pd.DataFrame({"date": dates, "symbol": s, "ret": r, "cls": "ai_token"}))
    out = []
    for f in frames:
        close = 10 * np.cumprod(1 + f["ret"].to_numpy())
        out.append(
            pd.DataFrame(
                {
                    "date": f["date"],
                    "symbol": f["symbol"],
                    "close": close,
                    "market_cap": close * 1e8,
                    "asset_class": f["cls"],
                    "volume_usd": np.exp(rng.normal(15, 0.3, n)),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


@pytest.fixture(scope="module")
def sim():
    panel = _panel()
    study = EventStudy(["2024-02-15"], car_windows=[(0, 0), (0, 5)], estimation_window=(-120, -11))
    full = study.fit(panel[["date", "symbol", "close", "market_cap", "asset_class"]])
    return study, panel, full


def test_shock_to_one_group_shows_in_its_caar_only(sim):
    study, panel, full = sim
    prices = panel[["date", "symbol", "close", "market_cap", "asset_class"]]
    gr = fit_groups(study, prices, GROUPS_ONE, full)
    c = gr.caar.set_index(["group", "window"])
    assert c.loc[("compute", "[0,0]"), "caar"] == pytest.approx(SHOCK, abs=0.03)
    assert abs(c.loc[("agents", "[0,0]"), "caar"]) < 0.03
    assert c.loc[("compute", "[0,0]"), "kp_pvalue"] < 0.01
    assert c.loc[("agents", "[0,0]"), "kp_pvalue"] > 0.01
    # a group's CARs are the full study's CARs of its members (market models are per asset)
    assert_allclose(
        gr.results["compute"].car["[0,0]"].to_numpy(),
        full.car.loc[(slice(None), GROUPS["compute"]), "[0,0]"].to_numpy(),
    )
    # the calendar-time placebo of each group: the shocked group's CAAR is the most extreme of
    # its ~250 dates; the others' are not (analysis.placebo on the group's own study)
    pl = gr.placebo["compute"]
    assert pl.n_placebo > 200 and pl.assets == GROUPS["compute"]
    assert c.loc[("compute", "[0,0]"), "placebo_p"] == pytest.approx(2 / (pl.n_placebo + 1))
    assert c.loc[("compute", "[0,0]"), "n_placebo"] == pl.n_placebo
    assert c.loc[("agents", "[0,0]"), "placebo_p"] > 0.1
    assert gr.placebo["identity"].assets == ["I1"]  # its own CARs on the placebo dates
    ref = placebo(EventStudy.from_spec({**study.spec, "assets": GROUPS["agents"]}), prices)
    assert gr.placebo["agents"].records() == ref.records()
    # a group of one: a CAR, no cross-sectional test, but a placebo p-value, and the output says
    one = c.loc[("identity", "[0,0]")]
    assert one["n"] == 1 and np.isnan(one["kp_stat"]) and one["reason"] == GROUP_OF_ONE
    said = (
        "Group identity holds one asset (I1): a group of one gives no cross-sectional test; it "
        "does have a placebo p-value, its CAR ranked among its own CARs on "
        f"{gr.placebo['identity'].n_placebo} placebo dates ([0,0] p = {one['placebo_p']:.3f}"
    )
    assert said in " ".join(gr.summary().as_text().split())
    # below five members the group's verdict is its placebo p-value, as the study headline's
    verdict = [v for v in gr.verdicts() if v.startswith("Group identity: CAR [0,0]")]
    assert "the verdict since N = 1 < 5" in verdict[0]
    assert [v for v in gr.verdicts() if v.startswith("Group compute: CAR [0,0]")][0].endswith(
        f"placebo p = {2 / (pl.n_placebo + 1):.3f} among {pl.n_placebo} placebo dates."
    )
    d = gr.differences.set_index(["group_a", "group_b", "window"])
    row = d.loc[("compute", "agents", "[0,0]")]
    x = full.car.loc[(slice(None), GROUPS["compute"]), "[0,0]"].to_numpy()
    y = full.car.loc[(slice(None), GROUPS["agents"]), "[0,0]"].to_numpy()
    assert row["welch_t"] == pytest.approx(stats.ttest_ind(x, y, equal_var=False).statistic)
    assert row["ranksum_p"] == pytest.approx(stats.ranksums(x, y).pvalue)
    assert row["mwu_p"] == pytest.approx(stats.mannwhitneyu(x, y).pvalue)
    assert row["welch_p"] < 0.01
    assert "at least two" in d.loc[("compute", "identity", "[0,0]"), "reason"]


def test_shared_members_are_left_out_of_differences():
    car = pd.DataFrame(
        {"[0,0]": [0.1, 0.2, 0.3, 0.0, -0.1, 0.05]},
        index=pd.MultiIndex.from_product([["e"], list("ABCDEF")], names=["event", "asset"]),
    )
    d = group_differences(car, {"g1": ["A", "B", "C"], "g2": ["C", "D", "E", "F"]}).iloc[0]
    assert (d["n_a"], d["n_b"], d["shared"]) == (2, 3, "C")
    assert d["welch_t"] == pytest.approx(
        stats.ttest_ind([0.1, 0.2], [0.0, -0.1, 0.05], equal_var=False).statistic
    )


def test_regression_group_coefficient_finds_the_shock(sim):
    _, panel, full = sim
    reg = regress_result(full, panel, ["group:compute", "beta"], "[0,0]", groups=GROUPS_ONE)
    assert reg.params["group:compute"] == pytest.approx(SHOCK, abs=0.03)
    assert reg.pvalues["group:compute"] < 0.001
    assert reg.pvalues["beta"] > 0.01
    agents = regress_result(full, panel, ["group:agents"], "[0,0]", groups=GROUPS_ONE)
    # agents vs everyone else (compute shocked, identity not): negative, never +SHOCK
    assert agents.params["group:agents"] < 0
    assert "HC3" in reg.summary().as_text()


def test_characteristics_are_the_defined_quantities(sim):
    _, panel, full = sim
    chars = characteristics(full.params, panel, {"compute": GROUPS["compute"]})
    px = panel[panel["symbol"] == "C1"].set_index("date")
    d6, d31 = DAY0 - pd.Timedelta(days=6), DAY0 - pd.Timedelta(days=31)
    row = chars.loc[("2024-02-15", "C1")]
    assert row["log_cap"] == pytest.approx(np.log(px.loc[d6, "market_cap"]))
    assert row["pre_return"] == pytest.approx(px.loc[d6, "close"] / px.loc[d31, "close"] - 1)
    vol = px.loc[DAY0 - pd.Timedelta(days=30) : d6, "volume_usd"]
    assert len(vol) == 25
    assert row["log_volume"] == pytest.approx(np.log(vol.mean()))
    assert row["beta"] == full.params.loc[("2024-02-15", "C1"), "beta"]
    assert row["group:compute"] == 1.0 and chars.loc[("2024-02-15", "A1"), "group:compute"] == 0


@pytest.mark.parametrize("wls", [False, True])
def test_coefficients_and_hc3_equal_statsmodels_on_a_hand_built_frame(wls):
    idx = pd.MultiIndex.from_product([["e"], [f"X{i}" for i in range(9)]], names=["event", "asset"])
    x = pd.DataFrame(
        {
            "beta": [0.8, 1.1, 1.4, 0.9, 1.7, 1.2, 0.5, 1.0, 1.3],
            "pre_return": [0.1, -0.05, 0.2, 0.0, 0.15, -0.1, 0.05, 0.3, -0.2],
        },
        index=idx,
    )
    car = pd.Series([0.02, 0.05, 0.11, -0.01, 0.09, 0.0, -0.03, 0.12, -0.02], index=idx)
    var = pd.Series([1, 2, 1, 3, 1, 2, 4, 1, 2], index=idx, dtype=float) * 1e-3
    res = fit_cross_section(car, x, window="[0,5]", car_var=var, wls=wls)
    xc = sm.add_constant(x)
    ref = (sm.WLS(car, xc, weights=1 / var) if wls else sm.OLS(car, xc)).fit(
        cov_type="HC3", use_t=True
    )
    assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-12)
    assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-12)
    assert_allclose(res.pvalues.to_numpy(), ref.pvalues.to_numpy(), rtol=1e-12)
    t = ref.params / ref.bse
    assert_allclose(res.pvalues.to_numpy(), 2 * stats.t.sf(np.abs(t), len(car) - 3), rtol=1e-10)
    # HC3 by hand: (X'WX)^-1 X'W diag(e^2/(1-h)^2) W X (X'WX)^-1
    w = (1 / var).to_numpy() if wls else np.ones(len(car))
    xm, e = xc.to_numpy(), (car - xc @ ref.params).to_numpy()
    xw = xm * np.sqrt(w)[:, None]
    bread = np.linalg.inv(xw.T @ xw)
    h = np.einsum("ij,jk,ik->i", xw, bread, xw)
    meat = xw.T @ np.diag(w * e**2 / (1 - h) ** 2) @ xw
    assert_allclose(np.sqrt(np.diag(bread @ meat @ bread)), res.bse.to_numpy(), rtol=1e-10)
    assert res.to_dict()["coefficients"]["beta"]["se_hc3"] == pytest.approx(ref.bse["beta"])


def test_too_few_assets_is_a_clear_error():
    idx = pd.MultiIndex.from_product([["e"], list("ABCD")], names=["event", "asset"])
    x = pd.DataFrame({"beta": [1, 2, 3, 4.0], "pre_return": [0.1, 0.3, 0.2, np.nan]}, index=idx)
    car = pd.Series([0.1, 0.2, 0.3, 0.4], index=idx)
    with pytest.raises(RegressionInputError, match=r"needs at least 4 assets; 3 have every value"):
        fit_cross_section(car, x, window="[0,5]")
    with pytest.raises(RegressionInputError, match="not a characteristic"):
        parse_regressors("beta,size")


def test_volume_spike_is_detected_on_that_day(sim):
    _, panel, full = sim
    vol = panel[["date", "symbol", "volume_usd"]].copy()
    spike = (vol["date"] == DAY0 + pd.Timedelta(days=2)) & (vol["symbol"] != "BTC")
    vol.loc[spike, "volume_usd"] *= 5.0  # +ln 5 = +1.61 in log volume
    vr = abnormal_volume(
        full.params, vol, estimation_window=(-120, -11), event_window=(-5, 10), windows=[(0, 5)]
    )
    t = vr.tests.set_index(["model", "window"])
    ma = vr.abnormal["mean_adjusted"]
    assert t.loc[("mean_adjusted", "+2"), "mean"] == pytest.approx(np.log(5.0), abs=0.3)
    for model in ("mean_adjusted", "market_adjusted"):
        # market-adjusted also nets BTC's own (unspiked) log-volume noise of that day
        assert t.loc[(model, "+2"), "mean"] > 0.8
        assert t.loc[(model, "+2"), "p_ts"] < 1e-3
        quiet = [w for w in ("-1", "0", "+1", "+3") if t.loc[(model, w), "p_ts"] < 0.01]
        assert not quiet
    assert set(vr.tests["window"]) >= {"[0,5]", "0", "+2"}
    row = t.loc[("mean_adjusted", "+2")]
    x = ma.loc[2].dropna().to_numpy()
    assert row["t_cs"] == pytest.approx(stats.ttest_1samp(x, 0).statistic)
    assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(x).pvalue)
