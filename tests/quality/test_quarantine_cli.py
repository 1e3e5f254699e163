"""The gate end to end through the CLI: the FET x100 file of issue 22, the quarantine's
listing and release, a corrected re-import, and the Sora study excluding the glitched pair."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from flows.cli import main
from flows.services.study import StudyRequest, execute_study

FET_DAY = "2024-02-17"


def _fet_x100(src: Path, dst: Path, factor: float = 100.0) -> float:
    rows = list(csv.reader(src.open(newline="", encoding="utf-8")))
    close = rows[0].index("close")
    original = None
    for row in rows[1:]:
        if row[0] == FET_DAY and row[1] == "FET":
            original = float(row[close])
            row[close] = repr(original * factor)
    assert original is not None
    with dst.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return original


@pytest.fixture
def glitched(sora_prices_csv, tmp_path, db_path, capsys):
    path = tmp_path / "prices_fet_x100.csv"
    original = _fet_x100(sora_prices_csv, path)
    assert main(["import", str(path)]) == 0
    return path, original, capsys.readouterr()


def test_fet_x100_imports_with_one_quarantined_point_and_a_warning(glitched, capsys):
    _, original, out = glitched
    warnings = [line for line in out.err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1
    assert re.match(
        rf"Warning: quarantined FET binance_spot {FET_DAY} close [0-9.]+: spike ", warnings[0]
    )
    assert main(["check", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)
    assert len(points) == 1
    (p,) = points
    assert list(p) == ["symbol", "source", "date", "value", "check", "reason"]
    assert (p["symbol"], p["source"], p["date"], p["check"]) == (
        "FET",
        "binance_spot",
        FET_DAY,
        "spike",
    )
    assert p["value"] == pytest.approx(original * 100)
    assert main(["check"]) == 0
    listing = capsys.readouterr().out
    assert f"FET binance_spot {FET_DAY}" in listing and listing.startswith("1 quarantined point")
    assert main(["status"]) == 0
    assert "Quarantined points: 1 " in capsys.readouterr().out


def test_the_clean_panel_quarantines_nothing(sora_prices_csv, db_path, capsys):
    assert main(["import", str(sora_prices_csv)]) == 0
    assert "Warning" not in capsys.readouterr().err
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_corrected_reimport_clears_the_point(glitched, sora_prices_csv, capsys):
    assert main(["import", str(sora_prices_csv)]) == 0
    capsys.readouterr()
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_accept_releases_the_point_and_it_stays_released(glitched, capsys):
    path, _, _ = glitched
    assert main(["check", "accept", "FET", "2024-02-18"]) == 2  # no such point: exit 2
    assert "no quarantined point of FET at 2024-02-18" in capsys.readouterr().err
    assert main(["check", "accept", "fet", FET_DAY, "--source", "binance_spot"]) == 0
    assert "Released 1 point(s) of FET" in capsys.readouterr().out
    assert main(["import", str(path)]) == 0  # the same value again: the analyst's word holds
    assert "Warning" not in capsys.readouterr().err
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_non_positive_csv_row_is_still_refused(sora_prices_csv, tmp_path, db_path, capsys):
    path = tmp_path / "zero.csv"
    _fet_x100(sora_prices_csv, path, factor=0.0)
    assert main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nothing imported" in err and re.search(r"line \d+: close '0.0' must be positive", err)


def _texts(outcome) -> dict[str, str]:
    """Leg texts without their headline (it holds the run's id, a timestamp)."""
    return {k: re.sub(r"^=== .*===\n", "", v) for k, v in outcome.leg_texts.items()}


def test_sora_study_on_a_glitched_panel_equals_the_clean_study_without_that_pair(
    glitched, sora_prices_csv, tmp_path
):
    bad = execute_study(None, StudyRequest(events=["sora"]), save=False)
    notes = "\n".join(bad.lines)
    assert re.search(
        rf"FET: excluded, its estimation or event window touches quarantined {FET_DAY} spike", notes
    )
    tokens = bad.plan.legs[0]
    assert tokens.name == "tokens" and "FET" not in tokens.assets

    clean_db = tmp_path / "clean.duckdb"
    assert main(["import", str(sora_prices_csv), "--db", str(clean_db)]) == 0
    others = ",".join(tokens.assets)
    clean = execute_study(
        clean_db, StudyRequest(events=["sora"], assets=others.split(",")), save=False
    )
    assert _texts(bad) == _texts(clean)
    for a, b in zip(bad.results, clean.results, strict=True):
        pd.testing.assert_frame_equal(a.result.car, b.result.car, check_exact=True)
        pd.testing.assert_frame_equal(a.result.tests, b.result.tests, check_exact=True)

    kept = execute_study(None, StudyRequest(events=["sora"], allow_suspect=True), save=False)
    assert "FET" in kept.plan.legs[0].assets
    assert any("FET: kept with --allow-suspect despite quarantined" in n for n in kept.lines)


def test_report_caveats_name_the_quarantined_point(glitched, db_path):
    from flows.services.quality import quarantine_caveats

    (caveat,) = quarantine_caveats(db_path)
    assert caveat.startswith(f"quarantined and kept out of studies: FET binance_spot {FET_DAY}")


def test_reconcile_prints_the_disagreement_in_bp_and_the_share_above_tolerance(
    sora_prices_csv, tmp_path, db_path, capsys
):
    rows = list(csv.reader(sora_prices_csv.open(newline="", encoding="utf-8")))
    close, venue = rows[0].index("close"), rows[0].index("venue")
    other = [rows[0]]
    for row in rows[1:]:
        if row[1] == "FET":
            factor = 1.05 if row[0] == "2024-03-01" else 1.001  # one day 5 % off, else 10 bp
            other.append([*row[:venue], "othervenue", *row[venue + 1 :]])
            other[-1][close] = repr(float(row[close]) * factor)
    path = tmp_path / "fet_other.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(other)
    assert main(["import", str(sora_prices_csv)]) == 0
    assert main(["import", str(path)]) == 0
    capsys.readouterr()
    assert main(["check", "--reconcile", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    days = len(other) - 1
    assert (row["symbol"], row["source_a"], row["source_b"], row["days"]) == (
        "FET",
        "binance_spot",
        "othervenue",
        days,
    )
    assert row["median_bp"] == pytest.approx(10.0, abs=0.1)
    assert row["max_bp"] == pytest.approx(1e4 * 0.04879, abs=0.1)
    assert row["share_above"] == pytest.approx(round(1 / days, 4))


def test_an_hourly_glitch_is_listed_with_its_ts(sora_hourly_csv, tmp_path, db_path, capsys):
    rows = list(csv.reader(sora_hourly_csv.open(newline="", encoding="utf-8")))
    close = rows[0].index("close")
    hour = "2024-02-20T05:00:00Z"
    for row in rows[1:]:
        if row[0] == hour and row[1] == "WLD":
            row[close] = repr(float(row[close]) * 10)
    path = tmp_path / "hourly_x10.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    assert main(["import", str(path)]) == 0
    capsys.readouterr()
    assert main(["check", "--json"]) == 0
    (p,) = json.loads(capsys.readouterr().out)
    assert list(p) == ["symbol", "source", "ts", "value", "check", "reason"]
    assert (p["symbol"], p["ts"], p["check"]) == ("WLD", hour, "spike")
