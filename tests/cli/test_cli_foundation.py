"""`aitokens import / sql / status`: exact output, exit codes, no tracebacks for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from flows.cli import cli, main
from tests.warehouse.helpers import write_csv

GOOD = """
date,symbol,close,asset_class,venue
2024-02-14,FET,0.60,ai_token,binance_spot
2024-02-15,FET,0.66,ai_token,binance_spot
2024-02-16,FET,0.70,ai_token,binance_spot
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real console script, as a user runs it (installed in the project venv)."""
    exe = shutil.which("aitokens", path=str(Path(sys.executable).parent)) or "aitokens"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_import_then_reimport_exact_output(db_path, tmp_path, capsys):
    csv = write_csv(tmp_path / "p.csv", GOOD)
    assert main(["import", str(csv)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"Imported p.csv into {db_path}: 3 rows read, 1 series; 3 inserted, 0 updated, 0 unchanged.\n"
    )
    assert main(["import", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "0 inserted, 0 updated, 3 unchanged." in out
    assert "Nothing changed: the warehouse already held these rows." in out


def test_folder_is_created_and_env_var_overridden_by_db(tmp_path, db_path, capsys):
    target = tmp_path / "deep" / "er" / "w.duckdb"
    csv = write_csv(tmp_path / "p.csv", GOOD)
    assert main(["import", str(csv), "--db", str(target)]) == 0
    assert target.exists() and not db_path.exists()


def test_sql_formats(db_path, tmp_path, capsys):
    main(["import", str(write_csv(tmp_path / "p.csv", GOOD))])
    capsys.readouterr()
    query = "select symbol, count(*) as n from daily_prices group by 1"
    assert main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out == "symbol,n\nFET,3\n"
    assert main(["sql", query, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"symbol": "FET", "n": 3}]
    assert main(["sql", query]) == 0
    table = capsys.readouterr().out
    assert "FET" in table and "symbol" in table


@pytest.mark.parametrize(
    "statement",
    [
        "insert into equities values ('X', 'x', 'equity')",
        "delete from imported_daily",
        "drop table coins",
        "copy imported_daily to '/tmp/leak.csv'",
        "select 1; update imported_daily set close = 0",
        "attach '/tmp/other.duckdb' as o",
        "create table t as select 1",
    ],
)
def test_sql_refuses_writes(db_path, tmp_path, capsys, statement):
    main(["import", str(write_csv(tmp_path / "p.csv", GOOD))])
    capsys.readouterr()
    assert main(["sql", statement]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("Error: `aitokens sql` is read-only: a ") and "statement is refused" in err
    )
    assert main(["sql", "select count(*) as n from imported_daily", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "n\n3\n"


def test_sql_errors_are_one_line(db_path, tmp_path, capsys):
    main(["import", str(write_csv(tmp_path / "p.csv", GOOD))])
    capsys.readouterr()
    assert main(["sql", "select * from no_such_table"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: query failed: Catalog Error") and err.count("\n") == 1
    assert main(["sql", "selec 1"]) == 2
    assert "SQL does not parse" in capsys.readouterr().err


def test_read_commands_on_missing_warehouse_say_what_to_run(db_path, capsys):
    for args in (["status"], ["sql", "select 1"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert (
            err
            == f"Error: no warehouse at {db_path}: run `aitokens import FILE.csv` or `aitokens ingest` first\n"
        )
    assert not db_path.exists()


def test_status_lists_series_and_last_run(db_path, tmp_path, capsys):
    main(["import", str(write_csv(tmp_path / "p.csv", GOOD))])
    capsys.readouterr()
    assert main(["status", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "symbol,source,asset_class,first_date,last_date,n_obs,gaps,missing_sessions,stale_sessions"
    )
    assert lines[1].startswith("FET,binance_spot,ai_token,2024-02-14,2024-02-16,3,0,0,")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    from warehouse.db import migration_files

    assert f"(schema version {migration_files()[-1][0]})" in out
    assert (
        "Last ingest run: csv_import csv_import-" in out
        and "3 inserted, 0 updated, 0 unchanged" in out
    )


def test_exit_codes_through_the_real_console_script(tmp_path):
    db = tmp_path / "w.duckdb"
    good = write_csv(tmp_path / "good.csv", GOOD)
    bad = write_csv(tmp_path / "bad.csv", GOOD + "2024-02-17,FET,-3,ai_token,binance_spot\n")
    ok = run_cli("import", str(good), "--db", str(db))
    assert ok.returncode == 0, ok.stderr
    bad_run = run_cli("import", str(bad), "--db", str(db))
    assert bad_run.returncode == 2
    assert bad_run.stderr.startswith(
        "Error: bad.csv has 1 bad line, nothing imported:\n  line 5: close '-3'"
    )
    assert "Traceback" not in bad_run.stderr + bad_run.stdout
    usage = run_cli("import")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a duckdb file" * 100)
    broken = run_cli("status", "--db", str(corrupt))
    assert broken.returncode == 2  # the user's to fix: point --db at a warehouse
    assert broken.stderr == (
        f"Error: {corrupt} is not a DuckDB warehouse (another kind of file): point --db (or "
        "$AITOKENS_DB) at the .duckdb file `aitokens import` or `aitokens ingest` wrote\n"
    )
    # our bug (here: a service that divides by zero) is exit 1, traceback on request only
    bug = (
        "import sys, flows.services.csv_import as m; from flows.cli import main\n"
        "m.import_csv = lambda *a, **k: 1 / 0\n"
        f"sys.exit(main(['import', {str(good)!r}, '--db', {str(db)!r}]))"
    )
    for env, traceback in (({}, False), ({"AITOKENS_DEBUG": "1"}, True)):
        crashed = subprocess.run(
            [sys.executable, "-c", bug],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,
        )
        assert crashed.returncode == 1
        assert "Error: unexpected failure (ZeroDivisionError: division by zero)" in crashed.stderr
        assert ("Traceback" in crashed.stderr) == traceback


def test_every_command_has_help_with_an_example():
    def walk(group: click.Group, prefix: str = ""):
        for name, command in group.commands.items():
            yield prefix + name, command
            if isinstance(command, click.Group):
                yield from walk(command, prefix + name + " ")

    commands = list(walk(cli))
    assert {"import", "sql", "status"} <= {name for name, _ in commands}
    for name, command in commands:
        assert command.help and "Example:" in command.help, (
            f"`aitokens {name}` lacks help with an example"
        )
