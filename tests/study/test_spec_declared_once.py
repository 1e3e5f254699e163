"""Issue 19 item 2: a study option is one declaration in ``warehouse/studyspec.py``.

``--return-kind log`` is the option the issue names: declared once there, it is accepted by
``aitokens study``, kept in the stored spec, echoed in the stored command line, honoured by
``--rerun``, and changes the numbers (a log CAR is the sum of log abnormal returns, checked by
hand against the panel). Every study option given beside ``--rerun`` is refused by name.
All runs are real CLI runs on a real DuckDB warehouse holding the Sora panel.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from flows.cli import main
from warehouse.db import open_warehouse
from warehouse.queries import price_panel
from warehouse.studyspec import RETURN_KINDS, StudySpec, study_fields, study_option_names


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def query(db, sql: str, params: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def _groups(db) -> set[str]:
    return set(query(db, "SELECT DISTINCT group_id FROM study_runs")["group_id"])


def _study(db, capsys, *extra: str) -> str:
    """Run the token-only Sora study and return its (new) group id."""
    before = _groups(db)
    code, _, err = run(capsys, "study", "--event", "sora", "--no-equities", "--no-placebo", *extra)
    assert (code, err) == (0, "")
    (group,) = _groups(db) - before
    return group


@pytest.fixture
def log_and_simple(sora_db, capsys):
    """The same study with simple and with log returns, both saved."""
    simple = _study(sora_db, capsys)
    log = _study(sora_db, capsys, "--return-kind", "log")
    assert simple != log
    return sora_db, simple, log


def test_return_kind_is_one_declaration():
    """The option is a field of the spec with a Literal type; the click option, the refusal
    list and the engine's arguments derive from it."""
    (opt,) = [o for f, o in study_fields() if f.name == "return_kind"]
    assert (
        (opt.flag, opt.choices)
        == ("--return-kind", RETURN_KINDS)
        == (
            "--return-kind",
            ("simple", "log"),
        )
    )
    assert study_option_names()["return_kind"] == "--return-kind"
    assert StudySpec(return_kind="log").engine_kwargs()["return_kind"] == "log"
    assert "--return-kind log" in StudySpec(events=["sora"], return_kind="log").command()
    assert "--return-kind" not in StudySpec(events=["sora"]).command()
    from flows.cli.app import cli

    params = {p.name: p for p in cli.commands["study"].params}
    assert list(params["return_kind"].type.choices) == ["simple", "log"]


def test_log_returns_are_stored_and_echoed(log_and_simple):
    db, simple, log = log_and_simple
    runs = query(db, "SELECT group_id, spec, command FROM study_runs").set_index("group_id")
    assert json.loads(runs.loc[log, "spec"])["return_kind"] == "log"
    assert json.loads(runs.loc[simple, "spec"])["return_kind"] == "simple"
    assert runs.loc[log, "command"] == (
        "aitokens study --event sora --benchmark BTC --no-equities --estimation -120:-11 "
        "--window -5:10 --model market --no-placebo --return-kind log"
    )
    assert "--return-kind" not in runs.loc[simple, "command"]


def test_rerun_of_a_log_study_reproduces_it(log_and_simple, capsys):
    db, _, log = log_and_simple
    code, out, err = run(capsys, "study", "--rerun", log)
    assert (code, err) == (0, "")
    assert out.startswith(f"Rerun of {log}-tokens: same input data (SHA-256 matches); ")
    assert out.rstrip().endswith("largest difference 0.0e+00 (tolerance 1e-12): reproduced.")


def _results(db, group: str, kind: str) -> pd.Series:
    return query(
        db,
        "SELECT asset, label, value FROM study_results WHERE study_id = ? AND kind = ?",
        [f"{group}-tokens", kind],
    ).set_index(["asset", "label"])["value"]


def test_log_car_is_the_sum_of_log_abnormal_returns(log_and_simple):
    """Market model on log returns (MacKinlay 1997, eq. 8-10 with r = ln P_t - ln P_t-1):
    OLS over days -120..-11, AR = r - a - b r_m, CAR[0,5] = sum of AR over days 0..5.
    Computed here from the panel with numpy, independently of the engine."""
    db, simple, log = log_and_simple
    with open_warehouse(db, read_only=True) as con:
        panel = price_panel(con, ["FET", "BTC"])
    closes = panel.pivot_table(index="date", columns="symbol", values="close")
    closes.index = pd.to_datetime(closes.index)
    rets = np.log(closes).diff()
    day0 = rets.index.get_loc(pd.Timestamp("2024-02-15"))
    est = rets.iloc[day0 - 120 : day0 - 10]
    assert len(est) == 110 and est.notna().all().all()
    b, a = np.polyfit(est["BTC"], est["FET"], 1)
    ev = rets.iloc[day0 : day0 + 6]
    hand = float((ev["FET"] - a - b * ev["BTC"]).sum())

    car_log = _results(db, log, "car")
    np.testing.assert_allclose(car_log.loc[("FET", "[0,5]")], hand, rtol=1e-9)
    ar_log = _results(db, log, "ar")
    days = [lab for lab in ar_log.loc["FET"].index if 0 <= int(lab) <= 5]
    assert len(days) == 6
    np.testing.assert_allclose(ar_log.loc["FET"].loc[days].sum(), hand, rtol=1e-9)
    # and the kind matters: the simple-return study's CAR differs by more than rounding
    car_simple = _results(db, simple, "car")
    assert abs(car_simple.loc[("FET", "[0,5]")] - hand) > 1e-4


def _arguments(opt) -> list[str]:
    """A value click accepts for the option (the refusal comes before any lookup)."""
    if opt.is_flag:
        return [opt.flag]
    if opt.choices:
        return [opt.flag, opt.choices[-1]]
    if opt.type is int:
        return [opt.flag, "30"]
    return [opt.flag, "X"]


def test_rerun_refuses_model_by_name(log_and_simple, capsys):
    _, simple, _ = log_and_simple
    code, out, err = run(capsys, "study", "--rerun", simple, "--model", "constant_mean")
    assert code == 2 and out == ""
    assert err == (
        "Error: --rerun reuses the stored spec, so it would ignore --model: give --rerun alone\n"
    )


@pytest.mark.parametrize(
    "opt", [o for _, o in study_fields()], ids=[o.flag for _, o in study_fields()]
)
def test_rerun_refuses_every_study_option(opt, sora_db, capsys):
    code, out, err = run(capsys, "study", "--rerun", "st-none", *_arguments(opt))
    assert code == 2 and out == ""
    assert err == (
        f"Error: --rerun reuses the stored spec, so it would ignore {opt.flag}: "
        "give --rerun alone\n"
    )


def test_every_option_is_parametrised():
    """The refusal table above covers study_option_names() exactly."""
    assert sorted(o.flag for _, o in study_fields()) == sorted(study_option_names().values())


def test_pipeline_study_step_uses_the_return_kind(sora_db, capsys, tmp_path):
    """The pipeline's study (its ``run_study`` step) takes ``--return-kind`` and gives the same
    numbers as ``aitokens study --event sora --return-kind log``."""
    from flows.services.pipeline import study_step

    detail = study_step(str(sora_db), "sora", tmp_path, "log")
    group = detail.split()[2]
    runs = query(sora_db, "SELECT group_id, spec, command FROM study_runs")
    assert set(runs["group_id"]) == {group}
    assert {json.loads(s)["return_kind"] for s in runs["spec"]} == {"log"}
    assert all(c.endswith(" --return-kind log") for c in runs["command"])
    cli_group = _study(sora_db, capsys, "--return-kind", "log")
    pipe, cli = _results(sora_db, group, "car"), _results(sora_db, cli_group, "car")
    pd.testing.assert_series_equal(pipe.sort_index(), cli.sort_index(), rtol=0, atol=0)
    simple = _results(sora_db, _study(sora_db, capsys), "car")
    assert not np.allclose(simple.sort_index(), pipe.sort_index(), rtol=1e-6)


def test_pipeline_accepts_return_kind_from_the_spec(capsys):
    assert main(["pipeline", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--return-kind [simple|log]" in out
    code, out, err = run(capsys, "pipeline", "--offline", "--no-prefect", "--return-kind", "ln")
    assert code == 2 and out == ""
    assert "'ln' is not one of 'simple', 'log'" in err
