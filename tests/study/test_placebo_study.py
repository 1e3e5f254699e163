"""`aitokens study` carries the calendar-time placebo distribution of each leg (real Sora data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import DEFAULT_EVENTS, EventStudy, get_event
from analysis.placebo import placebo
from flows.cli import main

TOKENS = ["AGIX", "ARKM", "FET", "GRT", "INJ", "NMR", "RNDR", "WLD"]
WINDOWS = ["[0,0]", "[0,1]", "[-1,1]", "[0,3]", "[0,5]", "[0,10]", "[-5,10]"]


@pytest.fixture
def payload(sora_db, capsys, tmp_path) -> tuple[dict, str]:
    path = tmp_path / "sora.json"
    code = main(["study", "--event", "sora", "--no-save", "--json", str(path)])
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    return json.loads(path.read_text()), out.out


def test_each_leg_carries_one_placebo_record_per_car_window(payload, sora_prices_csv) -> None:
    data, text = payload
    sora_prices = pd.read_csv(sora_prices_csv, parse_dates=["date"])
    for leg, n_assets in (("tokens", 8), ("equities", 2)):
        recs = data["legs"][leg]["placebo"]
        assert [r["window"] for r in recs] == WINDOWS
        for r in recs:
            assert {"window", "caar", "n_placebo", "p_value"} <= r.keys()
            assert r["n_assets"] == n_assets and r["n_placebo"] >= 39
            assert 0 < r["p_value"] <= 1
    # the tokens leg is the analysis module's placebo of the same study on the same closes,
    # avoiding the warehouse's catalog (the default events)
    study = EventStudy([get_event("sora")], confounders=[get_event("nvda_q4fy24")], assets=TOKENS)
    ref = placebo(study, sora_prices, catalog=DEFAULT_EVENTS).records()
    got = data["legs"]["tokens"]["placebo"]
    for a, b in zip(got, ref, strict=True):
        assert a["n_placebo"] == b["n_placebo"] and a["p_value"] == b["p_value"]
        assert a["caar"] == pytest.approx(b["caar"], abs=1e-12)
    # the Sora CAR[0,3] of the tokens lies above every placebo CAR
    r03 = got[WINDOWS.index("[0,3]")]
    assert r03["p_value"] == pytest.approx(2 / (r03["n_placebo"] + 1))
    assert "Placebo (calendar-time): the same study on" in text
    # the portfolio line explained (issue 12 item 5): own-model t 4.71 against KP-BMP 2.38
    assert "The equal-weight portfolio's t for CAR[0,3] (4.71) and the KP-BMP t (2.38)" in text
    # two equities: the placebo p-value is the verdict, the parametric t only for reference
    eq = text[text.index("Equities vs SPY") :]
    assert "N = 2 < 5 is too few assets for the parametric tests" in eq
    tok = text[: text.index("Equities vs SPY")]
    assert "too few assets" not in tok.split("Placebo (calendar-time)")[-1]


def test_no_placebo_switch(sora_db, capsys, tmp_path) -> None:
    path = tmp_path / "sora.json"
    code = main(
        [
            "study",
            "--event",
            "sora",
            "--no-equities",
            "--no-placebo",
            "--no-save",
            "--json",
            str(path),
        ]
    )
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    data = json.loads(path.read_text())
    assert data["legs"]["tokens"]["placebo"] == []
    assert data["command"].endswith("--no-placebo")
    assert "Placebo" not in out.out


def test_multi_event_study_has_no_placebo(sora_db, capsys, tmp_path) -> None:
    path = tmp_path / "two.json"
    args = ["study", "--event", "sora", "--event", "2024-03-05", "--no-equities", "--no-save"]
    code = main([*args, "--json", str(path)])
    capsys.readouterr()
    assert code == 0
    assert json.loads(path.read_text())["legs"]["tokens"]["placebo"] == []


def test_hourly_study_places_hours(sora_db, sora_hourly_csv, capsys, tmp_path) -> None:
    assert main(["import", str(sora_hourly_csv)]) == 0
    path = tmp_path / "h.json"
    code = main(
        [
            "study",
            "--interval",
            "1h",
            "--event",
            "sora",
            "--event-time",
            "2024-02-15T18:00Z",
            "--estimation",
            "-240:-25",
            "--window",
            "-24:24",
            "--car",
            "0:5",
            "--assets",
            "AGIX,FET,WLD,RNDR,INJ",
            "--no-equities",
            "--no-save",
            "--json",
            str(path),
        ]
    )
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    recs = json.loads(path.read_text())["legs"]["tokens"]["placebo"]
    assert [r["window"] for r in recs] == ["[0,5]"]
    # about 2,700 hours held: over a thousand placebo hours outside the catalog's event windows
    assert recs[0]["n_placebo"] > 1000
    assert "placebo hours" in out.out
    assert np.isfinite(pd.Series([r["p_value"] for r in recs])).all()
