"""Issue 19 item 8: the study's summary, per-pair and portfolio tables fit 100 columns.

The real Sora study is rendered through the CLI with 2, 4 and 6 CAR windows; every line of
each leg's text (from its ``===`` header on) is at most 100 columns, and no number is lost in
the wrapping: every window's CAAR (from the JSON) heads its row of the tests table, and every
pair's CAR appears in the per-pair blocks. ``aitokens study --help`` fits too.
"""

from __future__ import annotations

import json
import re

import pytest

from flows.cli import main

WIDTH = 100
WINDOWS = ["0:0", "0:1", "-1:1", "0:3", "0:5", "0:10"]


@pytest.mark.parametrize("n", [2, 4, 6])
def test_study_text_fits_100_columns_without_losing_a_number(n, sora_db, capsys, tmp_path):
    path = tmp_path / "sora.json"
    cars = [a for w in WINDOWS[:n] for a in ("--car", w)]
    code = main(["study", "--event", "sora", "--no-save", "--json", str(path), *cars])
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    text = out.out[out.out.index("=== ") :]
    wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert wide == []
    payload = json.loads(path.read_text())
    labels = [f"[{w.replace(':', ',')}]" for w in WINDOWS[:n]]
    for leg in ("tokens", "equities"):
        leg_text = text[text.index(f"({payload['study_ids'][leg]})") :]
        rows = {r["window"]: r["caar"] for r in payload["headline_tests"][leg]}
        assert set(rows) >= set(labels)
        for w in labels:
            assert re.search(rf"^{re.escape(w)} +{rows[w]:.4f} ", leg_text, re.MULTILINE), w
        for r in payload["legs"][leg]["results"]:
            if r["kind"] == "car":
                assert f"{r['value']:.4f} (" in leg_text, (r["asset"], r["window"])


def test_study_help_fits_100_columns(capsys):
    assert main(["study", "--help"]) == 0
    out = capsys.readouterr().out
    assert "aitokens study --rerun st-20240601T120000-ab12cd" in out
    assert [line for line in out.splitlines() if len(line) > WIDTH] == []
