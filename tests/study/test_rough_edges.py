"""The rough edges of issue 13: data printed verbatim, DuckDB's hints, dates in JSON, event names
taken the same way by add and remove, date errors whose suggestion works."""

from __future__ import annotations

import json
import re

from flows.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_sql_table_prints_rich_markup_in_data_verbatim(sora_db, capsys):
    code, out, _ = run(capsys, "sql", "select '[bold]x[/bold] :x: [red]' as \"[i]col\"")
    assert code == 0
    assert "[bold]x[/bold] :x: [red]" in out and "[i]col" in out
    assert "❌" not in out


def test_duckdb_hint_reaches_the_user(sora_db, capsys):
    code, _, err = run(capsys, "sql", "select * from daily_price")
    assert code == 2
    assert 'Did you mean "daily_prices"?' in err and err.count("\n") == 1


def test_json_keeps_dates_as_dates(sora_db, capsys):
    sql = (
        "select date '2024-02-15' as d, timestamp '2024-02-15 18:00' as t, "
        "cast(null as date) as missing"
    )
    code, out, _ = run(capsys, "sql", sql, "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"d": "2024-02-15", "t": "2024-02-15T18:00:00.000", "missing": None}]
    code, out, _ = run(
        capsys, "sql", "select max(date) as last from daily_prices", "--format", "json"
    )
    assert code == 0 and json.loads(out) == [{"last": "2024-04-25"}]


def test_events_add_and_remove_take_the_name_the_same_ways(sora_db, capsys):
    assert main(["events", "add", "gemini", "--when", "2023-12-06"]) == 0
    assert main(["events", "remove", "--name", "gemini"]) == 0
    assert main(["events", "add", "--name", "gemini", "--when", "2023-12-06"]) == 0
    assert main(["events", "remove", "gemini"]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "events", "add", "a", "--name", "b", "--when", "2023-12-06")
    assert code == 2 and "two names given" in err
    code, _, err = run(capsys, "events", "remove")
    assert code == 2 and "no event name" in err


def test_the_date_error_suggests_a_value_that_works(sora_db, capsys):
    for typed in ("2023/12/06", "Dec 6 2023", "2023-12-06 10:00"):
        code, _, err = run(capsys, "events", "add", "x", "--when", typed)
        assert code == 2
        suggestion = err.split("use ")[-1].split("e.g. ")[-1].split(" ")[0].strip()
        assert main(["events", "add", "x", "--when", suggestion]) == 0, (typed, suggestion)
        assert main(["events", "remove", "x"]) == 0
        capsys.readouterr()


def test_tables_fit_80_columns_and_never_cut_a_value(monkeypatch, capsys):
    import io
    import sys

    import pandas as pd

    from flows.cli.render import render_frame

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "80")
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    study_id = "g20240215T180000-7f3a9c2e5b1d4e6f8a0b-tokens"
    frame = pd.DataFrame(
        {
            "study_id": [study_id],
            "event": ["nvda_results_2024_q4_long_name"],
            "command": ["aitokens study --event sora --window -5:10 --car 0:1 --car 0:5"],
            "n": [8],
        }
    )
    render_frame(frame, "table")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())  # the terminal's colours
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in plain
    cells = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert study_id in cells  # folded over lines, every character kept
