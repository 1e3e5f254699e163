"""`aitokens study --interval 1h` on the real hourly Sora panel (Binance perpetuals, hour closes).

The issue's command, exactly: hour 0 = the 18:00 -> 19:00 UTC return (labelled 19:00), estimation
hours -720..-25, event window -24..72. Its market model agrees with statsmodels OLS, the pre-event
window shows no drift, and the per-token and cross-sectional figures are pinned.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from flows.cli import main

TOKENS = ["AGIX", "ARKM", "FET", "INJ", "NMR", "RNDR", "WLD"]
COMMAND = [
    "study",
    "--interval",
    "1h",
    "--event",
    "sora",
    "--event-time",
    "2024-02-15T18:00Z",
    "--estimation",
    "-720:-25",
    "--window",
    "-24:72",
    "--car",
    "0:0",
    "--car",
    "0:5",
    "--car",
    "0:23",
    "--car",
    "0:71",
    "--car",
    "-24:-1",
    "--assets",
    ",".join(TOKENS),
    "--benchmark",
    "BTC",
    "--no-equities",
]
# CAR (fraction) and its t per token: [0,5] then [0,23] (engine output of 2024-12, 5-6 digits)
CARS = {
    "AGIX": ((0.01183, 0.86304), (0.225357, 8.1168)),
    "ARKM": ((-0.0101302, -0.5376), (0.212015, 5.5549)),
    "FET": ((-0.000612615, -0.037439), (0.0954936, 2.8812)),
    "INJ": ((0.0156329, 0.74843), (0.0149185, 0.35262)),
    "NMR": ((0.00538222, 0.16069), (0.0706855, 1.0419)),
    "RNDR": ((0.087331, 3.7249), (0.0927513, 1.9531)),
    "WLD": ((0.112243, 4.9881), (0.366664, 8.0447)),
}
# (KP-adjusted BMP stat, p), (Corrado rank stat, p) per CAR window, group "all"
TESTS = {
    "[0,0]": ((1.0742, 0.324), (1.3181, 0.1875)),
    "[0,5]": ((0.89614, 0.4047), (1.0865, 0.2773)),
    "[0,23]": ((1.6313, 0.1539), (2.1855, 0.02885)),
    "[0,71]": ((2.0406, 0.08738), (3.2914, 0.000997)),
    "[-24,-1]": ((0.43081, 0.6817), (0.17006, 0.865)),
}


@pytest.fixture(scope="session")
def hourly_template(sora_hourly_csv, sora_prices_csv, tmp_path_factory) -> Path:
    """A warehouse with the hourly and the daily Sora files imported through the CLI."""
    path = tmp_path_factory.mktemp("hourly") / "template.duckdb"
    for csv in (sora_hourly_csv, sora_prices_csv):
        assert main(["import", str(csv), "--db", str(path)]) == 0
    return path


@pytest.fixture
def hourly_db(hourly_template: Path, db_path: Path) -> Path:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(hourly_template, db_path)
    return db_path


@pytest.fixture
def hourly_run(hourly_db, capsys, tmp_path):
    out_json = tmp_path / "out.json"
    code = main([*COMMAND, "--json", str(out_json)])
    out = capsys.readouterr()
    assert (code, out.err) == (0, ""), out.err
    payload = json.loads(out_json.read_text())
    return out.out, payload


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_output_states_the_hour_0_mapping_and_the_source_of_the_time(hourly_run):
    out, payload = hourly_run
    lines = out.splitlines()
    assert lines[0] == (
        "Hour-0 policy hour_0_floor: hour 0 is the return over [floor_hour(t), floor_hour(t) + "
        "1h) of the event time t, labelled by its UTC close; windows count hours. Confounders "
        "flagged: none in the event windows."
    )
    assert lines[1] == (
        "Event sora = 2024-02-15T18:00:00+00:00 (OpenAI Sora announcement); time from "
        "--event-time 2024-02-15T18:00Z; hour 0: crypto_1h 2024-02-15T19:00:00Z (hour 0 = the "
        "return over [18:00, 19:00) UTC holding 2024-02-15 18:00 UTC, labelled by its close "
        "19:00)."
    )
    assert lines[2] == (
        "AI tokens vs BTC (hourly): 7 assets; sources binance_perp_usdc: BTC; binance_perp_usdt: "
        "AGIX, ARKM, FET, INJ, NMR, RNDR, WLD."
    )
    assert "equities" not in out.lower().replace("equities stay daily", "")
    # cell padding depends on the other cells (issue 19 item 8): match the cells, not the spaces
    assert re.search(r"Estimation window: +\[-720, -25\] hours", out), out
    assert re.search(r"sora/WLD +1\.318 +0\.0320 \(3\.49\) +0\.1122 \(4\.99\)", out), out
    # JSON: the daily shape plus the interval
    assert payload["interval"] == "1h" and list(payload["legs"]) == ["tokens"]
    leg = payload["legs"]["tokens"]
    assert set(leg) == {
        "spec",
        "event_mappings",
        "params",
        "results",
        "tests",
        "excluded",
        "flags",
        "portfolios",
        "placebo",
    }
    assert leg["spec"]["interval"] == "1h" and leg["spec"]["event_policy"] == "hour_0_floor"
    assert payload["command"].startswith("aitokens study --interval 1h --event sora --event-time")
    params = _frame(leg["params"]).set_index("asset")
    assert (params["day0"] == "2024-02-15T19:00:00Z").all()
    assert (params["est_start"] == "2024-01-16T19:00:00Z").all()
    assert (params["est_end"] == "2024-02-14T18:00:00Z").all()
    assert (params["nobs"] == 696).all()


def test_per_token_cars_and_tests_are_pinned(hourly_run):
    _, payload = hourly_run
    leg = payload["legs"]["tokens"]
    res = _frame(leg["results"])
    cars = res[res["kind"] == "car"].set_index(["asset", "window"])
    for asset, ((c5, t5), (c23, t23)) in CARS.items():
        got = cars.loc[(asset, "[0,5]")]
        assert (got["value"], got["tstat"]) == (
            pytest.approx(c5, rel=1e-4),
            pytest.approx(t5, rel=1e-4),
        ), asset
        got = cars.loc[(asset, "[0,23]")]
        assert (got["value"], got["tstat"]) == (
            pytest.approx(c23, rel=1e-4),
            pytest.approx(t23, rel=1e-4),
        ), asset
    tests = _frame(leg["tests"])
    sel = tests[(tests["group"] == "all") & (tests["kind"] == "car")].set_index(["test", "window"])
    for window, ((kp, kp_p), (co, co_p)) in TESTS.items():
        r = sel.loc[("kp_bmp", window)]
        assert (r["stat"], r["pvalue"], r["n"]) == (
            pytest.approx(kp, rel=1e-4),
            pytest.approx(kp_p, rel=1e-3),
            7,
        ), window
        assert r["dist"] == "t(6), r=0.298"
        r = sel.loc[("corrado_rank", window)]
        assert (r["stat"], r["pvalue"]) == (
            pytest.approx(co, rel=1e-4),
            pytest.approx(co_p, rel=1e-3),
        ), window


def test_pre_event_window_shows_no_drift(hourly_run):
    """[-24, -1]: no token and no cross-sectional test rejects at 10%."""
    _, payload = hourly_run
    leg = payload["legs"]["tokens"]
    res = _frame(leg["results"])
    pre = res[(res["kind"] == "car") & (res["window"] == "[-24,-1]")]
    assert len(pre) == 7 and (pre["pvalue"] > 0.10).all()
    tests = _frame(leg["tests"])
    pre_t = tests[(tests["group"] == "all") & (tests["window"] == "[-24,-1]")]
    assert len(pre_t) >= 9 and (pre_t["pvalue"] > 0.10).all()


def _hourly_returns(csv: Path) -> pd.DataFrame:
    raw = pd.read_csv(csv)
    raw["ts"] = pd.to_datetime(raw["ts"]).dt.tz_localize(None)
    wide = raw.pivot(index="ts", columns="symbol", values="close").sort_index()
    assert wide.index.to_series().diff().dropna().eq(pd.Timedelta(hours=1)).all()
    return wide / wide.shift(1) - 1.0


def test_market_model_agrees_with_statsmodels_ols(hourly_run, sora_hourly_csv):
    """Re-derive alpha, beta, their standard errors and sigma from the CSV with statsmodels on
    the returns labelled 2024-01-16 19:00 .. 2024-02-14 18:00 (hours -720..-25)."""
    _, payload = hourly_run
    params = _frame(payload["legs"]["tokens"]["params"]).set_index("asset")
    rets = _hourly_returns(sora_hourly_csv)
    est = rets.loc[pd.Timestamp("2024-01-16 19:00") : pd.Timestamp("2024-02-14 18:00")]
    assert len(est) == 696
    hour0 = rets.loc[pd.Timestamp("2024-02-15 19:00")]
    for asset in TOKENS:
        ols = sm.OLS(est[asset], sm.add_constant(est["BTC"])).fit()
        p = params.loc[asset]
        np.testing.assert_allclose(
            [p["alpha"], p["beta"], p["se_alpha"], p["se_beta"], p["sigma"]],
            [*ols.params, *ols.bse, np.sqrt(ols.scale)],
            rtol=1e-9,
        )
        # hour 0 = the 18:00 -> 19:00 return, labelled 19:00
        res = _frame(payload["legs"]["tokens"]["results"])
        ar0 = res[(res["asset"] == asset) & (res["window"] == "0")]["value"].iloc[0]
        expected = hour0[asset] - (ols.params.iloc[0] + ols.params.iloc[1] * hour0["BTC"])
        assert ar0 == pytest.approx(expected, rel=1e-9)


def test_rerun_reproduces_the_hourly_run(hourly_run, hourly_db, capsys):
    _, payload = hourly_run
    group = payload["group_id"]
    assert main(["study", "--rerun", group]) == 0
    out = capsys.readouterr().out
    assert "same input data (SHA-256 matches)" in out and out.rstrip().endswith("reproduced.")
    con = duckdb.connect(str(hourly_db), read_only=True)
    try:
        spec, fp = con.execute("SELECT spec, fingerprint FROM study_runs").fetchone()
    finally:
        con.close()
    assert json.loads(spec)["interval"] == "1h"
    fp = json.loads(fp)
    assert fp["interval"] == "1h"
    assert fp["date_range"] == ["2024-01-16T18:00:00Z", "2024-02-18T19:00:00Z"]
    assert main(["studies", "list", "--format", "csv"]) == 0
    assert ",tokens,1h," in capsys.readouterr().out


def test_equities_asked_for_are_left_out_with_a_note(hourly_db, capsys):
    args = [a for a in COMMAND if a != "--no-equities"]
    i = args.index("--assets")
    args[i + 1] = "FET,WLD,NVDA"
    assert main([*args, "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "Note: equities stay daily in hourly studies: left out (NVDA)." in out
    assert "=== AI tokens vs BTC (hourly)" in out and "Equities vs" not in out
    # the default equities (NVDA, AMD) are left out the same way
    args[i + 1] = "FET,WLD"
    assert main([*args, "--no-save"]) == 0
    assert "Note: equities stay daily in hourly studies: left out (NVDA, AMD)." in (
        capsys.readouterr().out
    )


def test_catalog_time_is_used_and_cited_and_a_date_only_event_is_refused(hourly_db, capsys):
    args = COMMAND[:5] + COMMAND[7:]  # without --event-time: the catalog's 18:00Z
    assert main([*args, "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "time from the catalog: OpenAI announcement post (openai.com/sora)" in out
    assert re.search(r"sora/WLD +1\.318 +0\.0320 \(3\.49\) +0\.1122 \(4\.99\)", out), out
    args[4] = "gpt4o"
    assert main([*args, "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --interval 1h needs the time of day of event gpt4o")
