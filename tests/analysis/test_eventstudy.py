"""EventStudy on the real Sora panel: outputs, flags, exclusions, errors, JSON reproduction."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis import (
    AssetsExcludedWarning,
    EventStudy,
    EventStudyInputError,
    EventStudyResult,
    InsufficientHistoryError,
    UnknownAssetError,
    WindowOutsideDataError,
    get_event,
)
from analysis.cstests import REPORT_TESTS, SUMMARY_TESTS, TESTS

TOKENS = ["AGIX", "ARKM", "FET", "GRT", "INJ", "NMR", "RNDR", "WLD"]


def test_every_asset_is_kept_with_its_benchmark_and_calendar(sora_result):
    p = sora_result.params
    assert sorted(a for _, a in p.index) == sorted(TOKENS + ["AMD", "NVDA"])
    assert (p.loc[("sora", "NVDA"), ["benchmark", "calendar"]] == ["SPY", "XNYS"]).all()
    assert (p.loc[("sora", "FET"), ["benchmark", "calendar"]] == ["BTC", "crypto"]).all()
    assert (p["nobs"] == 110).all()  # [-120, -11] complete for every pair
    assert sora_result.excluded.empty


def test_event_days_follow_each_calendar(sora_result):
    d = sora_result.event_dates
    assert d.loc[2, ("sora", "NVDA")] == pd.Timestamp("2024-02-20")  # 02-19 is a NYSE holiday
    assert d.loc[2, ("sora", "FET")] == pd.Timestamp("2024-02-17")
    assert d.loc[0, ("sora", "FET")] == pd.Timestamp("2024-02-15")


def test_nvidia_results_are_flagged_as_a_confounder(sora_result):
    f = sora_result.flags.set_index("asset")
    assert f.loc["NVDA", "detail"] == "nvda_q4fy24 falls on day +4 (2024-02-22)"
    assert f.loc["FET", "detail"] == "nvda_q4fy24 falls on day +6 (2024-02-21)"
    assert (f["flag"] == "confounder").all() and len(f) == 10


def test_car_is_the_sum_of_abnormal_returns(sora_result):
    ar = sora_result.abnormal_returns
    car = sora_result.car
    for lo, hi in [(0, 0), (0, 1), (-1, 1), (0, 10), (-5, 10)]:
        np.testing.assert_allclose(car[f"[{lo},{hi}]"], ar.loc[lo:hi].sum(), rtol=1e-12)


def test_car_std_is_not_the_root_of_summed_daily_variances(sora_result):
    summed = np.sqrt((sora_result.ar_std.loc[0:10] ** 2).sum())
    assert (sora_result.car_std["[0,10]"] > summed).all()


def test_tests_frame_is_tidy_and_complete(sora_result):
    t = sora_result.tests
    assert set(t["test"]) == set(TESTS)
    assert set(t["group"]) == {"all", "class=ai_token", "class=equity"}
    assert list(t.columns) == [
        "group",
        "kind",
        "window",
        "start",
        "end",
        "test",
        "mean",
        "stat",
        "pvalue",
        "pvalue_holm",
        "n",
        "too_few_assets",
        "dist",
        "null",
        "reason",
    ]
    all_car = t[(t["group"] == "all") & (t["kind"] == "car")]
    assert len(all_car) == 7 * len(TESTS)
    assert all_car["pvalue"].between(0, 1).all()
    # two equities are enough for a cross-sectional test of their own
    eq = t[(t["group"] == "class=equity") & (t["test"] == "t_cs")]
    assert (eq["n"] == 2).all() and eq["stat"].notna().all()


def test_the_registry_orders_and_labels_every_output(sora_result):
    """One registry: test order and null text of the frame, summary and report headers."""
    from analysis import plots

    t = sora_result.tests
    assert list(dict.fromkeys(t["test"])) == list(TESTS)
    nulls = t.drop_duplicates("test").set_index("test")["null"].to_dict()
    assert nulls == {code: test.null for code, test in TESTS.items()}
    text = sora_result.summary().as_text()
    assert all(TESTS[code].short_label in text for code in SUMMARY_TESTS)
    table = plots.test_table(sora_result)
    assert list(table.columns) == ["CAAR", "N"] + [TESTS[c].report_label for c in REPORT_TESTS]


def test_tests_run_in_registry_order_whatever_order_they_are_asked_in(sora_prices):
    res = EventStudy([get_event("sora")], tests=["wilcoxon", "kp_bmp", "t_cs"]).fit(sora_prices)
    assert list(dict.fromkeys(res.tests["test"])) == ["t_cs", "kp_bmp", "wilcoxon"]
    assert res.spec["tests"] == ["wilcoxon", "kp_bmp", "t_cs"]


def test_invalid_statistic_has_a_reason(sora_prices):
    res = EventStudy(["2024-02-15"], assets=["NVDA"], portfolios=False).fit(sora_prices)
    ts = res.test("t_cs", "[0,1]")
    assert not ts.valid and np.isnan(ts.pvalue) and "at least 2 pairs" in ts.reason
    assert "not computed" in str(ts)


def test_headline_is_kp_bmp(sora_result):
    h = sora_result.headline
    assert list(h["window"]) == ["[0,0]", "[0,1]", "[-1,1]", "[0,3]", "[0,5]", "[0,10]", "[-5,10]"]
    ts = sora_result.test("kp_bmp", "[0,10]")
    bmp = sora_result.test("bmp", "[0,10]")
    assert ts.dist_name.startswith("t(9), r=")
    assert abs(ts.stat) < abs(bmp.stat)  # positive residual correlation shrinks the BMP t


def test_equal_weight_portfolio_ar_is_the_mean_ar_when_histories_match(sora_result):
    """OLS is linear: with a shared benchmark and complete windows, the EW portfolio's CAR is the
    mean CAR of its members (NVDA and AMD)."""
    p = sora_result.portfolios
    ew = p[(p["group"] == "equity vs SPY") & (p["weighting"] == "equal")].set_index("window")
    mean_car = sora_result.car.loc[[("sora", "AMD"), ("sora", "NVDA")]].mean()
    np.testing.assert_allclose(ew["car"], mean_car[ew.index], rtol=1e-10)
    cap = p[p["weighting"] == "cap"]
    assert cap["car"].isna().all() and cap["reason"].str.startswith("no market_cap").all()


def test_cap_weights_use_market_caps(sora_prices):
    prices = sora_prices.copy()
    prices["market_cap"] = np.where(prices["symbol"] == "NVDA", 3.0, 1.0)
    res = EventStudy(["2024-02-15"], assets=["NVDA", "AMD"]).fit(prices)
    p = res.portfolios.set_index(["weighting", "window"])
    cars = res.car.droplevel(0)
    np.testing.assert_allclose(
        p.loc[("cap", "[0,5]"), "car"],
        0.75 * cars.loc["NVDA", "[0,5]"] + 0.25 * cars.loc["AMD", "[0,5]"],
        rtol=1e-10,
    )


def test_summary_text_html_and_repr(sora_result):
    text = str(sora_result)
    for needle in (
        "Event Study Results",
        "market model (OLS)",
        "KP-BMP",
        "[-120, -11]",
        "sora/NVDA",
        "nvda_q4fy24 falls on day +4",
        "next_session",
    ):
        assert needle in text
    assert "<table" in sora_result._repr_html_()
    assert repr(sora_result).startswith("<EventStudyResult events=[sora] pairs=10")


def test_to_frame_long_results(sora_result):
    f = sora_result.to_frame()
    assert len(f) == 10 * (16 + 7)
    row = f[(f["asset"] == "WLD") & (f["window"] == "[0,1]")].iloc[0]
    assert row["value"] == pytest.approx(sora_result.car.loc[("sora", "WLD"), "[0,1]"])
    assert row["tstat"] == pytest.approx(sora_result.car_tstat.loc[("sora", "WLD"), "[0,1]"])
    assert row["pvalue"] == pytest.approx(sora_result.car_pvalue.loc[("sora", "WLD"), "[0,1]"])


def test_json_round_trip_reproduces_the_run(sora_result, sora_prices):
    payload = json.loads(sora_result.to_json())
    assert set(payload) == {
        "spec",
        "event_mappings",
        "params",
        "results",
        "tests",
        "excluded",
        "flags",
        "portfolios",
    }
    spec = payload["spec"]
    assert spec["resolved"]["benchmarks"]["NVDA"] == "SPY"
    assert len(spec["resolved"]["data_sha256"]) == 64
    again = EventStudy.from_spec(spec).fit(sora_prices)
    assert again.spec == sora_result.spec
    pd.testing.assert_frame_equal(again.tests, sora_result.tests)
    pd.testing.assert_frame_equal(again.car, sora_result.car)


def test_options_change_the_result(sora_prices):
    base = EventStudy(["2024-02-15"], assets=["FET", "NVDA"], portfolios=False)
    log = EventStudy(["2024-02-15"], assets=["FET", "NVDA"], portfolios=False, return_kind="log")
    madj = EventStudy(
        ["2024-02-15"], assets=["FET", "NVDA"], portfolios=False, model="market_adjusted"
    )
    qqq = EventStudy(["2024-02-15"], assets=["NVDA"], benchmarks={"NVDA": "QQQ"})
    r = {
        k: s.fit(sora_prices)
        for k, s in {"base": base, "log": log, "madj": madj, "qqq": qqq}.items()
    }
    assert not np.allclose(r["base"].car, r["log"].car)
    assert (r["madj"].params["beta"] == 1).all()
    assert r["qqq"].params["benchmark"].iloc[0] == "QQQ"
    assert (r["madj"].tests.query("test == 'lamb'")["reason"] != "").all()


def test_several_events_with_own_windows_and_exclusions(sora_prices):
    study = EventStudy(
        [get_event("sora"), get_event("gpt4"), get_event("gpt4o"), get_event("nvda_q4fy24")]
    )
    with pytest.warns(AssetsExcludedWarning, match="excluded"):
        res = study.fit(sora_prices)
    ex = res.excluded.set_index(["event", "asset"])["reason"]
    assert ex[("gpt4o", "FET")].startswith("day 0 (2024-05-13) is outside the data of crypto")
    assert ex[("gpt4", "WLD")] == "no return of WLD on day 0 (2023-03-14)"
    assert ex[("gpt4", "NVDA")].startswith("only 37 estimation returns in [2023-01-03")
    kept = res.params
    assert ("gpt4", "FET") in kept.index  # full history since 2023-01-01
    # each pair has its own estimation window
    assert kept.loc[("gpt4", "FET"), "est_end"] < kept.loc[("sora", "FET"), "est_start"]
    overlap = res.flags[res.flags["flag"] == "overlap"].set_index(["event", "asset"])
    assert "event window of nvda_q4fy24" in overlap.loc[("sora", "NVDA"), "detail"]
    assert {"all", "event=sora", "event=gpt4", "event=nvda_q4fy24"} <= set(res.tests["group"])


@pytest.mark.parametrize(
    ("kwargs", "fit_kwargs", "error", "match"),
    [
        ({"assets": ["DOGE"]}, {}, UnknownAssetError, "Asset 'DOGE' is not in the data"),
        ({"benchmarks": {"ai_token": "SOL"}}, {}, UnknownAssetError, "Benchmark 'SOL' of"),
        ({}, {"drop": "asset_class"}, EventStudyInputError, "Asset classes are missing"),
        ({}, {"drop": "close"}, EventStudyInputError, "lacks column"),
        ({"estimation_window": (-120, -3)}, None, EventStudyInputError, "must end before"),
        ({"car_windows": [(0, 20)]}, None, EventStudyInputError, "outside the event window"),
        ({"model": "capm"}, None, EventStudyInputError, "Model 'capm' is unknown"),
        ({"tests": ["magic"]}, None, EventStudyInputError, "Unknown test"),
        ({"min_estimation_obs": 500}, None, EventStudyInputError, "exceeds"),
    ],
)
def test_bad_inputs_raise_full_sentences(sora_prices, kwargs, fit_kwargs, error, match):
    def run():
        study = EventStudy(["2024-02-15"], **kwargs)
        prices = (
            sora_prices.drop(columns=fit_kwargs["drop"])
            if fit_kwargs and fit_kwargs.get("drop")
            else sora_prices
        )
        return study.fit(prices)

    with pytest.raises(error, match=match) as info:
        run()
    assert str(info.value).endswith(".") and isinstance(info.value, ValueError)


def test_event_outside_the_data(sora_prices):
    with pytest.raises(WindowOutsideDataError, match="outside the data"):
        EventStudy(["2024-12-09"]).fit(sora_prices)


def test_too_little_history(sora_prices):
    with pytest.raises(InsufficientHistoryError, match="estimation returns"):
        EventStudy(["2023-02-01"], assets=["FET"]).fit(sora_prices)


def test_long_returns_input_and_no_warnings(sora_prices):
    wide = sora_prices.pivot(index="date", columns="symbol", values="close")
    rets = wide[["FET", "BTC"]].pct_change(fill_method=None)
    long = rets.stack().rename("ret").reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = EventStudy(["2024-02-15"], assets=["FET"]).fit(
            returns=long, meta={"FET": "ai_token", "BTC": "crypto_benchmark"}
        )
    assert isinstance(res, EventStudyResult)
    assert res.spec["resolved"]["input"] == "returns"
