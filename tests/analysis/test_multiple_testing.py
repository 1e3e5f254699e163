"""Holm-adjusted p-values across CAR windows, the small-sample flag, and full-precision means."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from analysis import EventStudy, get_event
from analysis.plots import test_table as report_table


@pytest.fixture(scope="module")
def three(sora_prices):
    """Three tokens: the parametric tests rest on N = 3."""
    return EventStudy([get_event("sora")], assets=["AGIX", "FET", "RNDR"]).fit(sora_prices)


def test_holm_adjusts_across_the_car_windows_of_each_test(sora_result, monkeypatch):
    # statsmodels' Holm runs gc.collect() on every call: 20 s in a test worker's large heap.
    monkeypatch.setattr("gc.collect", lambda *args, **kwargs: 0)
    t = sora_result.tests
    for (_group, test), sub in t[t["kind"] == "car"].groupby(["group", "test"]):
        ok = sub["pvalue"].notna()
        if not ok.any():
            continue
        ref = multipletests(sub.loc[ok, "pvalue"], method="holm")[1]
        np.testing.assert_allclose(sub.loc[ok, "pvalue_holm"], ref, rtol=1e-15, err_msg=test)
    assert t.loc[t["kind"] == "day", "pvalue_holm"].isna().all()
    head = sora_result.headline
    assert (head["pvalue_holm"] >= head["pvalue"]).all()
    assert "KP-BMP p-values Holm-adjusted across the CAR windows: [0,0] " in str(sora_result)


def test_too_few_assets_are_flagged_and_shown_without_stars(three, sora_result):
    t = three.tests
    car = t[(t["group"] == "all") & (t["kind"] == "car")].set_index(["test", "window"])
    for code in ("t_cs", "patell", "bmp", "kp_bmp", "bw1980", "bw1985", "lamb"):
        assert car.loc[code, "too_few_assets"].all(), code
    for code in ("corrado_rank", "sign", "generalized_sign", "wilcoxon"):
        assert not car.loc[code, "too_few_assets"].any(), code
    assert three.too_few_assets and not sora_result.too_few_assets
    assert three.headline["too_few_assets"].all()
    text = str(three)
    assert "too few assets (N < 5)" in text
    table = report_table(three)
    cells = table.filter(like="KP").iloc[:, 0]
    assert cells.str.contains("too few assets").all() and not cells.str.contains(r"\*").any()
    rows = [r for r in json.loads(three.to_json())["tests"] if r["test"] == "kp_bmp"]
    assert all(r["too_few_assets"] is True for r in rows)


def test_mean_ar_and_car_at_full_precision_beside_each_statistic(three):
    payload = json.loads(three.to_json())
    means = {r["window"]: r["mean"] for r in payload["tests"] if r["test"] == "kp_bmp"}
    assert means["0"] == float(np.mean(three.abnormal_returns.loc[0].to_numpy()))
    assert means["[0,3]"] == float(np.mean(three.car["[0,3]"].to_numpy()))
    frame = three.to_frame()
    sel = frame[(frame["kind"] == "car") & (frame["window"] == "[0,3]")]
    np.testing.assert_allclose(sel["mean"], three.car["[0,3]"].mean(), rtol=1e-15)
    results = [r for r in payload["results"] if r["window"] == "[0,3]"]
    assert {r["mean"] for r in results} == {float(sel["mean"].iloc[0])}
    # no rounding in the JSON: every double survives the round trip
    value = three.car.loc[("sora", "AGIX"), "[0,3]"]
    assert any(r["value"] == value for r in results)
