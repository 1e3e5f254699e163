"""End to end: the pipeline and `aitokens report` write self-contained HTML with real figures."""

from __future__ import annotations

import base64
import io
import re

import nbformat
import pytest

from flows.services.report import NOTEBOOK_DIR
from tests.reports.conftest import (
    EVENT_FIGURES,
    SECTOR_FIGURES_FULL,
    SECTOR_FIGURES_PRICES_ONLY,
    run_cli,
)

IMG_RE = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in IMG_RE.findall(html)]


# ------------------------------------------------------------------ the README's main job
def test_main_job_runs_import_skips_ingest_and_reports(real_run):
    r = real_run.result
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"Pipeline on {real_run.db} (event sora):"
    assert (
        lines[1]
        == "  import  ok       prices.csv: 5,463 rows, 5,463 inserted, 0 updated, 0 unchanged"
    )
    assert lines[2] == "  ingest  skipped  --offline"
    assert lines[3].startswith("  study   ok       saved as st-")
    assert lines[4] == "  report  ok       11 figures"  # 9 event + 2 sector figures
    assert lines[5] == f"  report  {real_run.out / 'sora_event_study.html'}"
    assert lines[6] == f"  report  {real_run.out / 'ai_sector.html'}"
    assert lines[7].startswith("  caveat  ingest skipped (--offline)")
    assert (real_run.out / "sora_study.json").is_file()
    assert (real_run.out / "sora_study.txt").read_text().startswith("Day-0 policy")


def test_ingest_failure_still_reports_with_caveat_and_exits_1(fake_run):
    r = fake_run.result
    assert r.code == 1
    assert r.err.startswith(
        "Error: ingest failed: ConfigError: COINGECKO_PLAN='enterprise' is not a plan"
    )
    assert "the study and report were built on the data already held" in r.err
    assert "  ingest  failed   ConfigError: COINGECKO_PLAN='enterprise' is not a plan" in r.out
    for stem in ("sora_event_study", "ai_sector"):
        html = fake_run.html(stem)
        assert 'class="aitokens-caveat">data may be stale: ingest failed: ConfigError' in html


# ------------------------------------------------------------------ HTML and figures
@pytest.mark.parametrize("stem", ["sora_event_study", "ai_sector"])
def test_html_is_self_contained_with_non_empty_figures(any_run, stem):
    from PIL import Image

    html = any_run.html(stem)
    assert "<script src=" not in html  # nothing fetched: no require.js, MathJax or mermaid CDN
    assert not re.search(r'(src|href)="https?://', html)
    images = _images(html)
    expected = (
        EVENT_FIGURES
        if stem == "sora_event_study"
        else SECTOR_FIGURES_FULL
        if any_run.name == "fakes"
        else SECTOR_FIGURES_PRICES_ONLY
    )
    assert len(images) == len(expected)
    for data in images:
        im = Image.open(io.BytesIO(data)).convert("L")
        assert im.width >= 1000 and im.height >= 400
        lo, hi = im.getextrema()
        assert hi - lo > 100  # drawn on, not a blank canvas
    assert 'alt="figure"' not in html  # every figure carries its title as alternative text
    assert "Traceback" not in html
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html  # nothing printed
    assert 'data-mime-type="application/vnd.jupyter.stdout"' not in html


@pytest.mark.parametrize("stem", ["sora_event_study", "ai_sector"])
def test_png_figures_written_beside_the_html(any_run, stem):
    names = sorted(p.stem for p in (any_run.out / "figures" / stem).glob("*.png"))
    expected = (
        EVENT_FIGURES
        if stem == "sora_event_study"
        else SECTOR_FIGURES_FULL
        if any_run.name == "fakes"
        else SECTOR_FIGURES_PRICES_ONLY
    )
    assert names == sorted(expected)
    assert (any_run.out / f"{stem}.ipynb").is_file()


def test_event_report_holds_tests_headline_first_and_caveats(real_run):
    html = real_run.html("sora_event_study")
    header = html[html.index("AI tokens (against BTC, UTC days)") :]
    header = header[: header.index("</tr>")]
    cols = re.findall(r">([^<>]+)</th>", header)
    assert cols[:4] == ["CAAR", "N", "KP-adj. BMP", "BMP"]
    for text in (
        "Headline",
        "KP-adjusted BMP t =",
        "placebo p = 0.016 among 123 placebo dates",  # CAR[0,3] of the tokens
        "too few assets for the parametric tests",  # the two equities: the placebo decides
        "placebo p [B]",  # the group panel: each group's own placebo p-value
        "Group compute holds one asset (RNDR): a group of one gives no cross-sectional test; "
        "it does have a placebo p-value",
        "specifications agree with the baseline",
        "The equal-weight portfolio's t for CAR[0,3] (4.71)",
        "Equities (against SPY, NYSE sessions)",
        "Excluded assets:",
        "nvda_q4fy24 falls on day +6 (2024-02-21)",
        "nvda_q4fy24 falls on day +4 (2024-02-22)",
        "binance_perp",
        "Survivorship.",
        "ingest skipped (--offline)",
        "No hourly closes cover this event",  # no "first hours" figure without hourly data
    ):
        assert text in html, text


def test_sector_report_degrades_without_market_caps(real_run):
    html = real_run.html("ai_sector")
    assert (
        "the market-cap, coverage, top-member and concentration panels need "
        "<code>aitokens ingest</code>" in html
    )
    assert "AI tokens (equal weight, 8)" in html


def test_sector_report_with_coingecko_data(fake_run):
    html = fake_run.html("ai_sector")
    assert "Coverage on snapshot days" in html
    assert "top-5 share" in html and "HHI" in html
    assert "AI sector (cap-weighted)" in html
    assert "market-cap, coverage, top-member and concentration panels need" not in html


# ------------------------------------------------------------------ notebooks as committed
@pytest.mark.parametrize("name", ["sora_event_study", "ai_sector"])
def test_notebooks_are_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "figures_dir = None" in tagged[0].source and "caveats = []" in tagged[0].source


# ------------------------------------------------------------------ a warehouse that lacks data
def test_report_on_missing_warehouse_exits_2(tmp_path):
    db = tmp_path / "none.duckdb"
    r = run_cli(["report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert r.code == 2
    assert r.err == (
        f"Error: no warehouse at {db}: run `aitokens import FILE.csv` or `aitokens ingest` first\n"
    )


def test_report_on_empty_warehouse_names_the_commands(tmp_path):
    from warehouse.db import open_warehouse

    db = tmp_path / "empty.duckdb"
    with open_warehouse(db):
        pass
    r = run_cli(["report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert r.code == 2
    assert r.err == (
        f"Error: the warehouse {db} holds no price data: run `aitokens import FILE.csv` or "
        "`aitokens ingest` first\n"
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("plan", ["keyless", "pro"])
def test_report_without_data_around_the_event_advises_what_the_plan_can_do(
    tmp_path, monkeypatch, plan
):
    """A keyless plan serves the past 365 days only: advising `backfill --since 2023-08-01`
    there sends the user to a command that cannot succeed; a pro plan can."""
    for name in ("AITOKENS_CONFIG", "COINGECKO_API_KEY", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COINGECKO_PLAN", plan)
    if plan == "pro":
        monkeypatch.setenv("COINGECKO_API_KEY", "CG-test-key")
    csv = tmp_path / "p.csv"
    rows = ["date,symbol,asset_class,close"]
    for d in range(1, 29):
        rows += [
            f"2025-02-{d:02d},FET,ai_token,{1 + d / 100}",
            f"2025-02-{d:02d},BTC,crypto_benchmark,{90000 + d}",
        ]
    csv.write_text("\n".join(rows) + "\n")
    db = tmp_path / "wh.duckdb"
    assert run_cli(["import", str(csv), "--db", str(db)]).code == 0
    r = run_cli(["report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert r.code == 2
    head = (
        f"Error: the warehouse {db} holds no AI-token prices around sora (2024-02-15; the study "
        "needs closes from about 2023-08-19 to 2024-02-25): "
    )
    assert r.err.startswith(head)
    advice = r.err[len(head) :]
    if plan == "pro":
        assert advice == (
            "run `aitokens backfill --since 2023-08-01` or import a CSV covering them first\n"
        )
    else:
        assert advice.startswith(
            "import a CSV covering them with `aitokens import FILE.csv` (CoinGecko's keyless "
            "plan serves closes from "
        )
        assert "a backfill cannot reach 2023-08-19" in advice
        assert not advice.startswith("run `aitokens backfill")


def test_unknown_event_exits_2(real_run, tmp_path):
    r = run_cli(["report", "--db", str(real_run.db), "--event", "nope", "--out", str(tmp_path)])
    assert r.code == 2
    assert r.err.startswith("Error: no event 'nope' in the catalog (give a date such as 2024-02-15")


@pytest.mark.parametrize("command", ["report", "pipeline"])
def test_help_has_an_example(command):
    r = run_cli([command, "--help"])
    assert r.code == 0
    assert f"Example: aitokens {command}" in r.out
