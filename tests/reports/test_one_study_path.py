"""One study path (issue 19, item 1): the CLI's study, the pipeline's study and the event report
choose the same series and print the same CAAR and KP-adjusted BMP t.

The warehouse holds the real Sora panel plus a second FET series (a CSV archive) with more days
overall than Binance's but none after 2024-01-31. A rule counting all-time observations would
pick the archive, which misses the event, and study 7 tokens instead of 8; the one rule
(``warehouse.studies.choose_series``: most observations in the study's span) keeps Binance's.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli import main
from flows.services.pipeline import run_pipeline
from flows.services.report_study import report_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory, sora_prices_csv: Path):
    root = tmp_path_factory.mktemp("one_path")
    rng = np.random.default_rng(19)
    days = pd.date_range("2021-01-01", "2024-01-31", freq="D")
    archive = pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            "symbol": "FET",
            "asset_class": "ai_token",
            "venue": "csv_archive",
            "close": 0.1 * np.exp(np.cumsum(rng.normal(0, 0.04, len(days)))),
        }
    )
    extra = root / "fet_archive.csv"
    archive.to_csv(extra, index=False)
    db = root / "w.duckdb"
    out = root / "reports"
    summary = run_pipeline(db, import_csv=[sora_prices_csv, extra], offline=True, out=out)
    cli_json = root / "cli.json"
    args = ["study", "--event", "sora", "--no-save", "--json", str(cli_json), "--db", str(db)]
    assert main(args) == 0
    return db, out, summary, json.loads(cli_json.read_text())


def _tokens(payload: dict) -> dict[str, dict]:
    return {r["window"]: r for r in payload["headline_tests"]["tokens"]}


def test_the_archive_has_more_days_but_the_study_reads_binance(two_sources):
    _, _, _, cli = two_sources
    assert _tokens(cli)["[0,3]"]["n"] == 8  # FET kept: its Binance series covers the event


def test_cli_pipeline_and_report_print_the_same_caar_and_kp_bmp(two_sources):
    db, out, summary, cli = two_sources
    piped = json.loads((out / "sora_study.json").read_text())
    study_id = piped["group_id"]
    cli_rows, pipe_rows = _tokens(cli), _tokens(piped)
    assert set(cli_rows) == set(pipe_rows)
    for w, r in cli_rows.items():
        assert pipe_rows[w]["caar"] == r["caar"] and pipe_rows[w]["stat"] == r["stat"]
    # the report renders the pipeline's stored study, replayed: the same numbers to the bit
    shown = report_study(db, study_id=study_id)
    assert shown.outcome.group_id == study_id
    assert {c.source for c in shown.tokens.leg.choices.values() if c.symbol == "FET"} == {
        "binance_spot"
    }
    car = shown.tokens.result.car
    kp = shown.tokens.result.tests
    kp = kp[(kp["group"] == "all") & (kp["kind"] == "car") & (kp["test"] == "kp_bmp")]
    kp = kp.set_index("window")["stat"]
    for w, r in cli_rows.items():
        assert float(car[w].mean()) == r["caar"]
        assert float(kp[w]) == r["stat"]
    # and the HTML the pipeline wrote prints them: CAR [0,3] across 8 tokens, the same KP t
    page = html.unescape((out / "sora_event_study.html").read_text())
    r = cli_rows["[0,3]"]
    head = f"CAR [0,3]: mean {100 * r['caar']:+.1f}% across 8 AI tokens"
    assert head in page
    assert re.search(
        re.escape(head) + r"[^<]*KP-adjusted BMP t = " + re.escape(f"{r['stat']:.2f}"), page
    )
    assert f"(stored study {study_id}, replayed" in page
    assert any(s.name == "report" and s.status == "ok" for s in summary.steps)
