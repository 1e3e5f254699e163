"""``aitokens study --model factor`` on the real events panel (issue 23)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.cli import main


@pytest.fixture(scope="module")
def events_template(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with ``../shared/data/ai_events/prices.csv`` imported through the CLI."""
    csv = shared_dir / "data" / "ai_events" / "prices.csv"
    if not csv.is_file():
        pytest.skip(f"real events panel {csv} is absent (set AITOKENS_SHARED)")
    path = tmp_path_factory.mktemp("ai_events") / "template.duckdb"
    assert main(["import", str(csv), "--db", str(path)]) == 0
    return path


@pytest.fixture
def events_db(events_template: Path, db_path: Path) -> Path:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(events_template, db_path)
    return db_path


def _study(db: Path, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "study.json"
    argv = ["study", "--db", str(db), "--event", "sora", "--no-equities", *args]
    assert main([*argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _caar(payload: dict, window: str) -> float:
    tests = payload["legs"]["tokens"]["tests"]
    row = next(t for t in tests if t["test"] == "t_cs" and t["window"] == window)
    return float(row["mean"])


def test_factor_model_runs_on_the_events_panel_and_records_its_factors(
    events_db: Path, tmp_path: Path
) -> None:
    btc = _study(events_db, tmp_path, "--no-placebo")
    both = _study(events_db, tmp_path, "--no-placebo", "--model", "factor", "--factors", "btc,NVDA")
    spec = both["legs"]["tokens"]["spec"]
    assert spec["model"] == "factor" and spec["factors"] == ["BTC", "NVDA"]
    assert "--model factor --factors BTC,NVDA" in both["command"]
    assert "factors" not in btc["legs"]["tokens"]["spec"]
    assert set(both["legs"]) == set(btc["legs"])
    assert set(both["legs"]["tokens"]) == set(btc["legs"]["tokens"])  # same JSON shape
    # NVDA moves the estimates: the two models' CAARs differ, both are finite
    a, b = _caar(btc, "[0,3]"), _caar(both, "[0,3]")
    assert a == a and b == b and a != b
    print(f"Sora CAAR[0,3]: BTC {a:.4f}, BTC+NVDA {b:.4f}")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--model", "factor"], "--model factor needs --factors"),
        (["--factors", "NVDA"], "--factors NVDA needs --model factor"),
        (["--model", "factor", "--factors", "BTC,NOPE"], "--factors"),
    ],
)
def test_bad_factor_options_exit_2_with_one_line(
    events_db: Path, args: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["study", "--db", str(events_db), "--event", "sora", "--no-equities", *args])
    err = capsys.readouterr().err
    assert code == 2 and text in err and "Traceback" not in err


def test_alts_benchmark_and_factor_run_on_the_events_panel(events_db: Path, tmp_path: Path) -> None:
    alts = _study(events_db, tmp_path, "--no-placebo", "--benchmark", "ALTS")
    assert alts["legs"]["tokens"]["spec"]["resolved"]["benchmarks"]["FET"] == "ALTS"
    both = _study(events_db, tmp_path, "--no-placebo", "--model", "factor", "--factors", "BTC,ALTS")
    btc = _study(events_db, tmp_path, "--no-placebo")
    a, b, c = _caar(btc, "[0,3]"), _caar(alts, "[0,3]"), _caar(both, "[0,3]")
    assert len({a, b, c}) == 3 and all(v == v for v in (a, b, c))
    print(f"Sora CAAR[0,3]: BTC {a:.4f}, ALTS {b:.4f}, BTC+ALTS {c:.4f}")
