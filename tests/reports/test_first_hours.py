"""End to end on the real files: CSV import of the hourly (and daily) Sora panel, the hourly study
through the CLI, then `aitokens report` with the event report's "first hours" section.

(The same path from a CoinGecko hourly backfill against the fakes is another test's job.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.reports.conftest import EVENT_FIGURES, run_cli
from tests.reports.test_report_runs import _images
from tests.study.test_hourly_study import COMMAND

HOURLY_STUDY = COMMAND  # the command line, as the study tests run it
SENTENCE = (
    "Tokens whose abnormal return was significant at 5% within 1 hour (CAR[0,0]): AGIX (+1.2%), "
    "WLD (+3.2%); within 6 hours (CAR[0,5]): RNDR (+8.7%), WLD (+11.2%); within 24 hours "
    "(CAR[0,23]): AGIX (+22.5%), ARKM (+21.2%), FET (+9.5%), WLD (+36.7%) (of 7 tokens)."
)


@pytest.fixture(scope="module")
def hourly_report(tmp_path_factory, sora_hourly_csv: Path, sora_prices_csv: Path):
    root = tmp_path_factory.mktemp("first_hours")
    db, out = root / "wh.duckdb", root / "reports"
    for csv in (sora_hourly_csv, sora_prices_csv):
        r = run_cli(["import", str(csv), "--db", str(db)])
        assert r.code == 0, r.err
    study = run_cli([*HOURLY_STUDY, "--db", str(db), "--json", str(root / "study.json")])
    report = run_cli(["report", "--only", "event", "--db", str(db), "--out", str(out)])
    return study, json.loads((root / "study.json").read_text()), report, out


def test_hourly_study_through_the_cli(hourly_report):
    study, payload, _, _ = hourly_report
    assert (study.code, study.err) == (0, "")
    assert study.out.startswith("Hour-0 policy hour_0_floor")
    kp = next(
        t
        for t in payload["legs"]["tokens"]["tests"]
        if (t["group"], t["test"], t["window"]) == ("all", "kp_bmp", "[0,23]")
    )
    assert kp["stat"] == pytest.approx(1.6313, rel=1e-4)


def test_event_report_gains_the_first_hours_section(hourly_report):
    _, _, report, out = hourly_report
    assert report.code == 0, report.err
    assert not (out / "ai_sector.html").exists()  # `report --only event` builds one report
    html = (out / "sora_event_study.html").read_text(encoding="utf-8")
    assert "6. The first hours (hourly closes)" in html
    assert "No hourly closes cover this event" not in html
    assert "the hour closing 2024-02-15T19:00:00Z (hour 0 = the return over [18:00, 19:00)" in html
    assert SENTENCE in html
    assert 'alt="The first hours: hourly CAR paths around OpenAI Sora announcement' in html
    header = html[html.index("AI tokens (against BTC, UTC hours)") :]
    header = header[: header.index("</tr>")]
    assert re.findall(r">([^<>]+)</th>", header)[:4] == ["CAAR", "N", "KP-adj. BMP", "BMP"]
    assert len(_images(html)) == len(EVENT_FIGURES) + 2
    figures = sorted(p.stem for p in (out / "figures" / "sora_event_study").glob("*.png"))
    assert figures == sorted([*EVENT_FIGURES, "07_first_hours_car", "07b_first_hours_placebo"])
    assert "Traceback" not in html
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html


def test_first_hours_section_draws_the_hourly_placebo_of_the_cli_study(hourly_report):
    """The section's placebo distribution is the one `aitokens study --interval 1h` reports for
    the same study: the same placebo hours and empirical p-values, drawn and tabled."""
    _, payload, report, out = hourly_report
    assert report.code == 0, report.err
    html = (out / "sora_event_study.html").read_text(encoding="utf-8")
    assert "No hourly placebo distribution" not in html
    section = html[html.index("Placebo hours (calendar-time inference on the hourly clock)") :]
    cli = {r["window"]: r for r in payload["legs"]["tokens"]["placebo"]}
    n = cli["[0,23]"]["n_placebo"]
    assert n > 1000
    assert (
        'alt="Placebo distribution: the same study of the same 7 assets on '
        f'{n} other hours"' in section
    )
    for w in ("[0,0]", "[0,5]", "[0,23]"):
        assert f"Placebo CAR{w}: CAAR {cli[w]['caar']:+.4f}, empirical p = " in section
        assert f"empirical p = {cli[w]['p_value']:.3f} among" in section
    # the table: one row per CAR window with the CLI's p-value (4 decimals)
    table = section[: section.index("</table>")]
    for w, r in cli.items():
        assert f">{w}</th>" in table
        assert f"{r['p_value']:.4f}" in table
