"""`aitokens groups ...` and the second stage of `aitokens study` on the real Sora panel."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from tests.study.test_hourly_study import hourly_db, hourly_template  # noqa: F401 (fixtures)

GROUP_OF_ONE = "Group compute holds one asset (RNDR): a group of one gives no cross-sectional test"
ONE_PLACEBO = f"{GROUP_OF_ONE}; it does have a placebo p-value, its CAR ranked among its own CARs"


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_migration_seed_equals_default_groups(db_path: Path):
    from warehouse.db import open_warehouse
    from warehouse.groups import DEFAULT_GROUPS, group_memberships, list_groups

    with open_warehouse(db_path) as con:
        groups = list_groups(con).set_index("name")
        rows = group_memberships(con)
    assert sorted(groups.index) == sorted(g.name for g in DEFAULT_GROUPS)
    for g in DEFAULT_GROUPS:
        assert groups.loc[g.name, "description"] == g.description
        assert groups.loc[g.name, "sources"] == g.sources
        assert groups.loc[g.name, "coingecko_categories"] == ",".join(g.coingecko_categories)
        mine = rows[rows["group_name"] == g.name]
        assert sorted(zip(mine["symbol"], mine["coin_id"], strict=True)) == sorted(g.members)
    assert set(rows["origin"]) == {"seed"} and rows["valid_to"].isna().all()


def test_groups_commands(db_path: Path, capsys):
    assert main(["groups", "remove", "identity"]) == 0
    assert "Removed group 'identity' and its 1 membership row(s)." in capsys.readouterr().out
    assert main(["groups", "seed"]) == 0
    assert capsys.readouterr().out.strip() == "Added 1 default group(s): identity."
    assert main(["groups", "seed"]) == 0
    assert capsys.readouterr().out.strip() == "Added 0 default group(s)."
    args = ["groups", "add", "--name", "gpu", "--members", "nvda,AMD", "--since", "2020-01-01"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == (
        "Created group 'gpu': added NVDA, AMD from 2020-01-01."
    )
    args = ["groups", "remove", "gpu", "--members", "AMD", "--until", "2023-12-31"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "Ended 1 member(s) of 'gpu' on 2023-12-31."
    # a coin may be in several groups: RNDR in compute and gpu
    assert (
        main(["groups", "add", "--name", "gpu", "--members", "RNDR", "--since", "2024-01-01"]) == 0
    )
    capsys.readouterr()
    for day, members in (("2023-06-01", "AMD,NVDA"), ("2024-02-15", "NVDA,RNDR")):
        assert main(["groups", "list", "--as-of", day, "--format", "json"]) == 0
        rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows["gpu"]["members"] == members
        assert rows["compute"]["members"] == "AKT,GLM,RNDR,TAO"
    # bad input: one line, exit 2, nothing written
    for args, message in (
        (["groups", "add", "--name", "GPU!", "--members", "X"], "group name 'GPU!' must be"),
        (["groups", "remove", "gpus"], "no group 'gpus'; did you mean gpu?"),
        (["groups", "add", "--name", "x", "--since", "yesterday"], "--since 'yesterday' is not"),
        (["groups", "add", "--name", "x", "--coingecko-category", "AI Agents"], "not a category"),
    ):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("Error: ") and message in err and "\n" not in err
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM asset_groups WHERE name = 'x'").fetchone() == (0,)


@pytest.fixture(scope="module")
def by_group_run(sora_template: Path, tmp_path_factory) -> tuple[str, dict]:
    import contextlib
    import io
    import shutil

    tmp = tmp_path_factory.mktemp("bygroup")
    db = tmp / "wh.duckdb"
    shutil.copy(sora_template, db)
    out_json = tmp / "out.json"
    args = ["study", "--event", "sora", "--by-group", "--regress", "beta,pre_return,log_volume"]
    args += ["--regress-window", "0:5", "--no-save", "--json", str(out_json), "--db", str(db)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(args) == 0
    return buf.getvalue(), json.loads(out_json.read_text())


def test_sora_by_group_says_a_group_of_one_has_no_test(by_group_run):
    text, payload = by_group_run
    assert GROUP_OF_ONE in _flat(text)
    tokens = payload["groups"]["tokens"]
    assert tokens["as_of"] == "2024-02-15"
    assert tokens["members"]["compute"] == ["RNDR"]  # AKT, TAO: no closes before 2024-04
    assert any(n.startswith(GROUP_OF_ONE) for n in tokens["notes"])
    caar = {(r["group"], r["window"]): r for r in tokens["caar"]}
    one = caar[("compute", "[0,5]")]
    assert one["n"] == 1 and one["kp_stat"] is None and "group of one" in one["reason"]
    data = caar[("data", "[0,5]")]
    assert data["n"] == 3 and data["kp_pvalue"] is not None
    # the group's CAAR is the mean of its members' CARs in the full study
    rows = payload["legs"]["tokens"]["results"]
    cars = {r["asset"]: r["value"] for r in rows if r["kind"] == "car" and r["window"] == "[0,5]"}
    members = tokens["members"]["data"]
    assert data["caar"] == pytest.approx(sum(cars[m] for m in members) / len(members))
    diffs = {(r["group_a"], r["group_b"], r["window"]): r for r in tokens["differences"]}
    assert diffs[("agents", "data", "[0,5]")]["welch_p"] is not None
    assert "at least two" in diffs[("agents", "compute", "[0,5]")]["reason"]
    # the equities leg holds no group member: no group section for it
    assert list(payload["groups"]) == ["tokens"]


def test_sora_by_group_has_a_placebo_p_per_group(by_group_run):
    text, payload = by_group_run
    tokens = payload["groups"]["tokens"]
    leg = {r["window"]: r for r in payload["legs"]["tokens"]["placebo"]}
    caar = {(r["group"], r["window"]): r for r in tokens["caar"]}
    for g, members in tokens["members"].items():
        recs = {r["window"]: r for r in tokens["placebo"][g]}
        assert list(recs) == list(leg)  # the leg's CAR windows, e.g. "[0,3]"
        for w, r in recs.items():
            assert set(leg[w]) <= set(r)  # the leg's record fields
            assert r["n_assets"] == len(members) and r["n_placebo"] >= 39
            assert 0 < r["p_value"] <= 1 and r["caar"] == pytest.approx(caar[(g, w)]["caar"])
            assert caar[(g, w)]["placebo_p"] == pytest.approx(r["p_value"], rel=1e-12)
    # a group of one: its single CAR against its own placebo CARs, said in the output
    assert ONE_PLACEBO in _flat(text)
    one = {r["window"]: r for r in tokens["placebo"]["compute"]}["[0,5]"]
    # RNDR's CAR[0,5] (+22%) is the most extreme of its own 216 placebo dates
    assert one["p_value"] == pytest.approx(2 / (one["n_placebo"] + 1))
    assert "Group compute: CAR [0,5]: mean +22.0% across 1 asset; placebo p = 0.009" in _flat(text)
    # below five members the group's verdict is the placebo p, as the study headline
    assert any(
        v.startswith("Group data: CAR [0,5]") and "the verdict since N = 3 < 5" in v
        for v in tokens["verdicts"]
    )


def test_regression_in_json_matches_statsmodels(by_group_run):
    import numpy as np
    import statsmodels.api as sm

    text, payload = by_group_run
    reg = payload["regression"]
    assert reg["leg"] == "tokens" and reg["window"] == "[0,5]" and reg["method"] == "OLS"
    assert reg["cov_type"] == "HC3" and reg["nobs"] == 8
    assert list(reg["coefficients"]) == ["const", "beta", "pre_return", "log_volume"]
    for term in reg["coefficients"].values():
        assert set(term) == {"coef", "se_hc3", "t", "pvalue"} and term["se_hc3"] > 0
    assert "cross-sectional OLS of CAR[0,5] (N = 8, HC3 errors" in text
    # refit from the JSON's own data rows with statsmodels: same coefficients and HC3 errors
    import pandas as pd

    data = pd.DataFrame(reg["data"])
    assert [f"{e}/{a}" for e, a in zip(data["event"], data["asset"], strict=True)] == reg["assets"]
    x = sm.add_constant(data[["beta", "pre_return", "log_volume"]])
    ref = sm.OLS(data["car"], x).fit(cov_type="HC3", use_t=True)
    got = pd.DataFrame(reg["coefficients"]).T
    np.testing.assert_allclose(got["coef"], ref.params, rtol=1e-9)
    np.testing.assert_allclose(got["se_hc3"], ref.bse, rtol=1e-9)
    cars = {
        r["asset"]: r["value"]
        for r in payload["legs"]["tokens"]["results"]
        if r["kind"] == "car" and r["window"] == "[0,5]"
    }
    np.testing.assert_allclose(data["car"], [cars[a] for a in data["asset"]], rtol=1e-12)


def test_regressors_without_data_exit_2(sora_db: Path, capsys):
    args = ["study", "--event", "sora", "--no-equities", "--regress", "log_cap,beta", "--no-save"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("Error: The regression of CAR[0,5] on log_cap, beta has 3 parameters")
    assert "needs at least 4 assets; 0 have every value" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--regress", "beta,size"], "--regress size is not a characteristic"),
        (["--wls"], "--wls and --regress-window go with --regress NAMES"),
        (["--regress", "group:nosuch"], "group nosuch, which is not in the groups table"),
        (["--regress", "beta", "--regress-window", "0:30"], "lies outside the event window"),
        (["--regress", "beta", "--interval", "1h"], "run it with --interval 1d"),
    ],
)
def test_bad_second_stage_options_exit_2(sora_db: Path, capsys, args, message):
    assert main(["study", "--event", "sora", "--no-equities", "--no-save", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err and "\n" not in err


def test_measure_volume(sora_db: Path, capsys, tmp_path: Path):
    out = tmp_path / "v.json"
    args = ["study", "--event", "sora", "--measure", "volume", "--no-equities", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Abnormal log volume (Campbell & Wasley 1996), days" in text
    assert "mean-adjusted" in text and "market-adjusted" in text
    assert "Not saved (abnormal volume runs are not stored)." in text
    payload = json.loads(out.read_text())
    tests = {(r["model"], r["window"]): r for r in payload["volume"]["tokens"]["tests"]}
    assert tests[("mean_adjusted", "[0,5]")]["n"] == 8
    assert payload["saved"] is False
    with duckdb.connect(str(sora_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM study_runs").fetchone() == (0,)


@pytest.mark.usefixtures("hourly_db")  # the real hourly panel at $AITOKENS_DB
def test_measure_volume_on_the_hourly_clock(capsys, tmp_path: Path, sora_hourly_csv):
    import numpy as np
    import pandas as pd

    out = tmp_path / "h.json"
    args = ["study", "--interval", "1h", "--event", "sora", "--estimation", "-720:-25"]
    args += ["--window", "-24:72", "--car", "0:23", "--no-equities", "--measure", "volume"]
    assert main([*args, "--json", str(out)]) == 0
    assert "Abnormal log volume (Campbell & Wasley 1996), hours" in capsys.readouterr().out
    vol = json.loads(out.read_text())["volume"]["tokens"]
    assert vol["interval"] == "1h"
    # hour 0 of Sora (18:00 UTC) is the hour closing 19:00; AV from the CSV by hand
    csv = pd.read_csv(sora_hourly_csv, parse_dates=["ts"])
    fet = csv[csv["symbol"] == "FET"].set_index("ts")["volume_usd"]
    h0 = pd.Timestamp("2024-02-15T19:00Z")
    est = np.log1p(fet.loc[h0 - pd.Timedelta(hours=720) : h0 - pd.Timedelta(hours=25)])
    assert len(est) == 696
    want = np.log1p(fet.loc[h0]) - est.mean()
    assert vol["abnormal"]["mean_adjusted"]["0"]["sora/FET"] == pytest.approx(want, rel=1e-12)
    tests = {(r["model"], r["window"]): r for r in vol["tests"]}
    assert tests[("mean_adjusted", "[0,23]")]["n"] == 7


def test_measure_volume_without_any_volume_exits_2(sora_db: Path, capsys):
    with duckdb.connect(str(sora_db)) as con:
        con.execute("UPDATE imported_daily SET volume_usd = NULL")
    args = ["study", "--event", "sora", "--assets", "FET,AGIX", "--no-equities"]
    assert main([*args, "--measure", "volume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: --measure volume: no asset has USD volume over the estimation")
    assert "AGIX: 0 estimation periods with volume, fewer than 55" in err and "\n" not in err
