"""`aitokens study` on the real Sora panel: output, exit codes, persistence, reruns, JSON."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from analysis import EventStudy, get_event
from flows.cli import main
from warehouse.db import open_warehouse
from warehouse.queries import price_panel
from warehouse.snapshot import publish_snapshot

TOKENS = ["AGIX", "ARKM", "FET", "GRT", "INJ", "NMR", "RNDR", "WLD"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def query(db, sql: str, params: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


@pytest.fixture
def sora_run(sora_db, capsys, tmp_path):
    """The default Sora study, saved, with its JSON file."""
    out_json = tmp_path / "out" / "sora.json"
    code, out, err = run(capsys, "study", "--event", "sora", "--json", str(out_json))
    assert (code, err) == (0, "")
    group = query(sora_db, "SELECT DISTINCT group_id FROM study_runs")["group_id"].tolist()
    assert len(group) == 1
    return out, group[0], out_json


def test_sora_output_states_policy_confounders_and_sources(sora_run):
    out, group, _ = sora_run
    lines = out.splitlines()
    assert lines[0] == (
        "Day-0 policy next_session: a non-session date, or a time at or after the close, moves to "
        "the next session. Confounders flagged: nvda_q4fy24 falls on day +6 (2024-02-21) for "
        f"{', '.join(TOKENS)}; nvda_q4fy24 falls on day +4 (2024-02-22) for AMD, NVDA."
    )
    assert lines[1] == (
        "Event sora = 2024-02-15T18:00:00+00:00 (OpenAI Sora announcement); day 0: crypto "
        "2024-02-15 (timestamp inside this UTC day); XNYS 2024-02-15 (before the session close)."
    )
    assert lines[2] == (
        "Confounder nvda_q4fy24 = 2024-02-21T21:20:00+00:00: NVIDIA Q4 FY2024 results (after the "
        "US close) (from the catalog)."
    )
    assert lines[3] == (
        "AI tokens vs BTC: 8 assets; sources binance_perp: AGIX, ARKM, NMR, RNDR; binance_spot: "
        "FET, GRT, INJ, WLD, BTC."
    )
    assert lines[4] == (
        "Equities vs SPY: 2 assets; sources nasdaq_adjusted: NVDA, AMD; nyse_arca_adjusted: SPY."
    )
    assert f"=== AI tokens vs BTC ({group}-tokens): 8 pairs kept, 0 excluded ===" in lines
    assert f"=== Equities vs SPY ({group}-equities): 2 pairs kept, 0 excluded ===" in lines
    assert "Flag NVDA / sora (confounder): nvda_q4fy24 falls on day +4 (2024-02-22)." in lines
    assert lines[-1] == (f"Wrote {sora_run[2]}.")
    assert lines[-2].startswith(f"Saved as {group} ({group}-tokens, {group}-equities) in ")
    assert lines[-2].endswith(f"; reproduce with: aitokens study --rerun {group}")


def test_cars_match_the_engine_on_the_same_panel(sora_run, sora_db):
    """The CLI's stored CARs equal an EventStudy fitted directly on price_panel."""
    _, group, _ = sora_run
    with open_warehouse(sora_db, read_only=True) as con:
        panel = price_panel(con, [*TOKENS, "BTC"])
    direct = EventStudy(
        [get_event("sora")],
        assets=TOKENS,
        benchmarks={"ai_token": "BTC"},
        confounders=[get_event("nvda_q4fy24")],
    ).fit(panel)
    stored = query(
        sora_db,
        "SELECT asset, label, value, std, tstat, pvalue FROM study_results "
        "WHERE study_id = ? AND kind = 'car'",
        [f"{group}-tokens"],
    ).set_index(["asset", "label"])
    for window in ("[0,1]", "[0,5]", "[-5,10]"):
        for asset in TOKENS:
            row = stored.loc[(asset, window)]
            np.testing.assert_allclose(
                row["value"], direct.car.loc[("sora", asset), window], rtol=1e-12
            )
            np.testing.assert_allclose(
                row["tstat"], direct.car_tstat.loc[("sora", asset), window], rtol=1e-12
            )
    kp = query(
        sora_db,
        "SELECT label, value, pvalue, n FROM study_results WHERE study_id = ? AND kind = 'test' "
        "AND test = 'kp_bmp' AND grp = 'all' AND label = '[0,5]'",
        [f"{group}-tokens"],
    ).iloc[0]
    ref = direct.test("kp_bmp", "[0,5]")
    np.testing.assert_allclose([kp["value"], kp["pvalue"]], [ref.stat, ref.pvalue], rtol=1e-12)
    assert kp["n"] == 8


def test_run_is_persisted_in_full(sora_run, sora_db):
    _, group, _ = sora_run
    runs = query(sora_db, "SELECT * FROM study_runs ORDER BY study_id")
    assert runs["study_id"].tolist() == [f"{group}-equities", f"{group}-tokens"]
    assert runs["leg"].tolist() == ["equities", "tokens"]
    tokens = runs.iloc[1]
    spec = json.loads(tokens["spec"])
    assert spec["resolved"]["assets"] == TOKENS
    assert spec["events"] == [
        {
            "name": "sora",
            "when": "2024-02-15T18:00:00+00:00",
            "description": "OpenAI Sora announcement",
            "kind": "ai",
        }
    ]
    assert [c["name"] for c in spec["confounders"]] == ["nvda_q4fy24"]
    assert (spec["estimation_window"], spec["event_window"]) == ([-120, -11], [-5, 10])
    fp = json.loads(tokens["fingerprint"])
    assert fp["data_sha256"] == tokens["data_sha256"] == spec["resolved"]["data_sha256"]
    assert fp["date_range"] == ["2023-01-01", "2024-04-25"]
    assert {(s["symbol"], s["source"], s["role"]) for s in fp["series"]} >= {
        ("BTC", "binance_spot", "benchmark"),
        ("AGIX", "binance_perp", "asset"),
    }
    assert tokens["command"] == (
        "aitokens study --event sora --benchmark BTC --equity-benchmark SPY --estimation -120:-11 "
        "--window -5:10 --model market"
    )
    assert tokens["summary"].startswith("Day-0 policy next_session")
    assert tokens["package_version"]
    kinds = query(
        sora_db,
        "SELECT study_id, kind, count(*) AS n FROM study_results GROUP BY ALL ORDER BY ALL",
    )
    got = {(r.study_id.rsplit("-", 1)[1], r.kind): r.n for r in kinds.itertuples()}
    # 16 event days and 7 CAR windows per pair, 5 parameters per pair, 2 flags (confounder)
    assert got[("tokens", "ar")] == 8 * 16 and got[("tokens", "car")] == 8 * 7
    assert got[("tokens", "param")] == 8 * 5 and got[("tokens", "flag")] == 8
    assert got[("equities", "flag")] == 2 and ("tokens", "excluded") not in got
    flag = query(
        sora_db,
        "SELECT asset, label, details->>'detail' AS detail FROM study_results "
        "WHERE kind = 'flag' AND study_id = ? ORDER BY asset",
        [f"{group}-equities"],
    )
    assert flag.values.tolist() == [
        ["AMD", "confounder", "nvda_q4fy24 falls on day +4 (2024-02-22)"],
        ["NVDA", "confounder", "nvda_q4fy24 falls on day +4 (2024-02-22)"],
    ]
    tests = query(
        sora_db,
        "SELECT count(*) AS n FROM study_results WHERE kind = 'test' AND test = 'kp_bmp' "
        "AND grp = 'all' AND pvalue IS NOT NULL AND study_id = ?",
        [f"{group}-tokens"],
    )
    assert tests["n"].item() == 16 + 7


def test_json_headline_holds_the_results(sora_run):
    _, _, path = sora_run
    payload = json.loads(path.read_text())
    rows = {r["window"]: r for r in payload["headline_tests"]["tokens"]}
    kp = [
        t
        for t in payload["legs"]["tokens"]["tests"]
        if t["group"] == "all" and t["test"] == "kp_bmp" and t["kind"] == "car"
    ]
    assert {t["window"] for t in kp} == set(rows)
    first = next(t for t in kp if t["window"] == "[0,1]")
    assert rows["[0,1]"]["stat"] == pytest.approx(first["stat"])
    assert rows["[0,1]"]["pvalue"] == pytest.approx(first["pvalue"])
    assert (
        f"CAR [0,1] {100 * rows['[0,1]']['caar']:+.2f}% (N {rows['[0,1]']['n']},"
        in (payload["headline"])
    )
    assert payload["policy"].startswith("Day-0 policy")


def test_json_file_holds_each_legs_to_json(sora_run):
    _, group, path = sora_run
    payload = json.loads(path.read_text())
    assert payload["group_id"] == group and payload["saved"] is True
    assert payload["study_ids"] == {"tokens": f"{group}-tokens", "equities": f"{group}-equities"}
    assert set(payload["legs"]) == {"tokens", "equities"}
    tokens = payload["legs"]["tokens"]
    assert set(tokens) == {
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
    car = {(r["asset"], r["window"]): r["value"] for r in tokens["results"] if r["kind"] == "car"}
    assert set(car) == {
        (a, w)
        for a in TOKENS
        for w in ("[0,0]", "[0,1]", "[-1,1]", "[0,3]", "[0,5]", "[0,10]", "[-5,10]")
    }
    assert (
        payload["legs"]["equities"]["flags"][0]["detail"]
        == "nvda_q4fy24 falls on day +4 (2024-02-22)"
    )


def test_rerun_reproduces_to_1e12_and_detects_tampering(sora_run, sora_db, capsys):
    _, group, _ = sora_run
    code, out, err = run(capsys, "study", "--rerun", group)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 2
    for line, leg in zip(lines, ("equities", "tokens"), strict=True):
        assert line.startswith(f"Rerun of {group}-{leg}: same input data (SHA-256 matches); ")
        assert line.endswith("largest difference 0.0e+00 (tolerance 1e-12): reproduced.")
    con = duckdb.connect(str(sora_db))
    try:
        con.execute(
            "UPDATE study_results SET value = value + 1e-9 WHERE study_id = ? AND kind = 'car' "
            "AND asset = 'FET' AND label = '[0,5]'",
            [f"{group}-tokens"],
        )
    finally:
        con.close()
    publish_snapshot(sora_db)  # a rerun reads the snapshot, as every reading command does
    code, out, err = run(capsys, "study", "--rerun", f"{group}-tokens")
    assert code == 1
    assert "NOT reproduced" in out and "value of ('car', '', 'sora', 'FET', '[0,5]', '')" in out
    assert err == f"Error: rerun of {group}-tokens did not reproduce the stored numbers\n"


def test_rerun_reads_the_stored_date_range_only(sora_run, sora_db, capsys, tmp_path):
    """Prices added after the run do not change its rerun: the fingerprint's dates are reused."""
    _, group, _ = sora_run
    later = tmp_path / "later.csv"
    later.write_text(
        "date,symbol,close,asset_class,venue\n2024-04-26,FET,2.5,ai_token,binance_spot\n"
    )
    assert main(["import", str(later)]) == 0
    code, out, _ = run(capsys, "study", "--rerun", f"{group}-tokens")
    assert (
        code == 0 and "same input data (SHA-256 matches)" in out and out.endswith("reproduced.\n")
    )


def test_no_save_and_studies_show(sora_db, sora_run, capsys):
    code, out, _ = run(capsys, "study", "--event", "sora", "--no-save", "--no-equities")
    assert code == 0 and out.endswith("Not saved (--no-save).\n")
    assert len(query(sora_db, "SELECT * FROM study_runs")) == 2
    _, group, _ = sora_run
    code, out, _ = run(capsys, "studies", "show", f"{group}-tokens")
    assert code == 0
    assert out.splitlines()[1].startswith("Command: aitokens study --event sora")
    assert "Confounders flagged: nvda_q4fy24" in out
    code, out, _ = run(capsys, "studies", "list", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == (
        "study_id,group_id,leg,interval,created_at,events,n_assets,package_version,data_sha256"
    )


def test_multi_event_study(sora_db, capsys):
    code, out, err = run(
        capsys,
        "study",
        "--event",
        "sora",
        "--event",
        "2023-11-06",
        "--assets",
        "fet,agix,wld",
        "--no-equities",
        "--window",
        "-2:5",
    )
    assert (code, err) == (0, "")
    assert "Event 2023-11-06 = 2023-11-06; day 0: crypto 2023-11-06 (date is a session)." in out
    runs = query(sora_db, "SELECT study_id, spec FROM study_runs")
    spec = json.loads(runs["spec"].item())
    assert [e["name"] for e in spec["events"]] == ["sora", "2023-11-06"]
    assert spec["car_windows"] == [[0, 0], [0, 1], [-1, 1], [0, 3], [0, 5], [-2, 5]]
    cars = query(sora_db, "SELECT DISTINCT event, asset FROM study_results WHERE kind = 'car'")
    assert len(cars) == 6  # WLD listed 2023-07-24: enough history for both events
    groups = set(
        query(sora_db, "SELECT DISTINCT grp FROM study_results WHERE kind = 'test'")["grp"]
    )
    assert groups == {"all", "event=sora", "event=2023-11-06"}


def test_event_time_moves_equities_to_next_session(sora_db, capsys):
    code, out, _ = run(
        capsys,
        "study",
        "--event",
        "sora",
        "--event-time",
        "2024-02-15T22:00Z",
        "--assets",
        "FET",
        "--no-save",
    )
    assert code == 0
    assert out.splitlines()[1] == (
        "Event sora = 2024-02-15T22:00:00+00:00 (OpenAI Sora announcement); day 0: crypto "
        "2024-02-15 (timestamp inside this UTC day); XNYS 2024-02-16 (at or after the 2024-02-15 "
        "close: next session)."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--assets", "FET,FOO,agx"],
            "Error: --assets: not in the warehouse: FOO; AGX (close matches: AGIX). Symbols held: AGIX, AMD, ARKM, BTC, ETH, FET, GRT, INJ, NMR, NVDA, QQQ, RNDR, SPY, WLD",
        ),
        (
            ["--equities", "NVDA,AMDD"],
            "Error: --equities: not in the warehouse: AMDD (close matches: AMD, ARKM). Symbols held: AGIX, AMD, ARKM, BTC, ETH, FET, GRT, INJ, NMR, NVDA, QQQ, RNDR, SPY, WLD",
        ),
        (
            ["--window", "10:-5"],
            "Error: --window 10:-5 starts after it ends (first day 10 > last day -5)",
        ),
        (
            ["--window", "-5"],
            "Error: --window '-5' is not FIRST:LAST in days relative to day 0 (e.g. -5:10)",
        ),
        (
            ["--estimation", "-120:-3"],
            "Error: --estimation -120:-3 must end before --window -5:10 starts (estimation ends on day -3, the event window starts on day -5)",
        ),
        (["--car", "0:20"], "Error: --car 0:20 lies outside the event window --window -5:10"),
        (
            ["--min-obs", "2"],
            "Error: --min-obs 2 must lie between 5 and the 110 days of --estimation -120:-11",
        ),
        (
            ["--event-time", "2024-02-15T18:00"],
            "Error: --event-time '2024-02-15T18:00' has a time of day but no time zone: add one, e.g. 2024-02-15T18:00Z (UTC) or 2024-02-15T18:00-05:00 (New York, winter)",
        ),
        (
            ["--event-time", "2024-02-16T18:00Z"],
            "Error: --event-time 2024-02-16T18:00Z is on 2024-02-16, not on the day of event sora (2024-02-15)",
        ),
        (
            ["--source", "FET=coingecko"],
            "Error: --source FET=coingecko: FET has no series from coingecko (its sources: binance_spot)",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(sora_db, capsys, args, message):
    code, out, err = run(capsys, "study", "--event", "sora", *args)
    assert (code, out, err) == (2, "", message + "\n")
    assert query(sora_db, "SELECT count(*) AS n FROM study_runs")["n"].item() == 0


def test_unknown_event_name(sora_db, capsys):
    code, _, err = run(capsys, "study", "--event", "Sorra")
    assert code == 2
    assert err == (
        "Error: no event 'Sorra' in the catalog; did you mean sora? (give a date such as "
        "2024-02-15, or add it: aitokens events add --name ... --when ...)\n"
    )
    code, out, _ = run(capsys, "study", "--event", "SORA", "--no-save", "--no-equities")
    assert code == 0 and out.splitlines()[1].startswith("Event sora = 2024-02-15")


def test_window_outside_the_data(sora_db, capsys):
    code, _, err = run(capsys, "study", "--event", "gpt4o")
    assert code == 2
    assert err == (
        "Error: AI tokens vs BTC: the event window -5:10 of gpt4o (2024-05-08 to 2024-05-23) lies "
        "outside the prices of benchmark BTC (binance_spot: 2023-01-01 to 2024-04-25); choose "
        "another --event or --window, or load the missing dates\n"
    )
    code, _, err = run(
        capsys, "study", "--event", "2024-04-20", "--no-equities", "--window", "-5:3"
    )
    assert (code, err) == (0, "")  # day +3 is 2024-04-23: inside BTC's prices (to 2024-04-25)
    code, _, err = run(
        capsys, "study", "--event", "2024-04-20", "--equities", "NVDA", "--assets", "NVDA"
    )
    assert code == 2
    assert err.startswith(
        "Error: Equities vs SPY: the event window -5:10 of 2024-04-20 (2024-04-15 to 2024-05-06) "
        "lies outside the prices of benchmark SPY"
    )


def test_too_little_history(sora_db, capsys):
    code, _, err = run(
        capsys, "study", "--event", "sora", "--estimation", "-1000:-11", "--no-equities"
    )
    assert code == 2
    assert err.startswith(
        "Error: AI tokens vs BTC: No asset-event pair has the data the study needs, so nothing can "
        "be estimated. Reasons: AGIX/sora: only 352 estimation returns in [2023-01-01, "
        "2024-02-04]; 495 required;"
    )
    assert "\n" not in err.rstrip("\n")


def test_unbalanced_history_reports_exclusions(sora_db, capsys):
    code, out, _ = run(capsys, "study", "--event", "2023-09-01", "--no-equities", "--no-save")
    assert code == 0
    assert "): 6 pairs kept, 2 excluded ===" in out
    assert (
        "Excluded: ARKM/2023-09-01: only 23 estimation returns in [2023-05-04, 2023-08-21]; 55 "
        "required; WLD/2023-09-01: only 28 estimation returns in [2023-05-04, 2023-08-21]; 55 "
        "required."
    ) in out.splitlines()


def test_every_command_has_help(capsys):
    for cmd in (
        ["study"],
        ["events"],
        ["events", "add"],
        ["events", "list"],
        ["events", "remove"],
        ["events", "seed"],
        ["studies"],
        ["studies", "list"],
        ["studies", "show"],
    ):
        assert main([*cmd, "--help"]) == 0
        assert "Example: aitokens" in capsys.readouterr().out, cmd
