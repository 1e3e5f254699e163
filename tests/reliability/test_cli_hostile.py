"""Hostile and absurd command lines, for every command: a one-line ``Error: ...`` (or click's
usage error), exit code 2, no traceback, and the warehouse exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from tests.reliability.helpers import canonical_dump
from tests.warehouse.helpers import dump_tables

SQLI = "FET'); DROP TABLE coins;--"
SQLI_ID = "x'); DROP TABLE study_runs;--"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, sora_prices_csv) -> Path:
    db = tmp_path_factory.mktemp("hostile") / "wh.duckdb"
    assert main(["import", str(sora_prices_csv), "--db", str(db)]) == 0
    return db


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No network, no settings file, no key: a command that slipped through would fail."""
    monkeypatch.chdir(tmp_path)
    for name in ("AITOKENS_CONFIG", "COINGECKO_API_KEY", "COINGECKO_PLAN", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AITOKENS_COINGECKO_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("AITOKENS_YAHOO_URL", "http://127.0.0.1:9/")
    return tmp_path


def state(db: Path) -> tuple:
    return dump_tables(db), canonical_dump(db)


# (argv after the command name, a phrase the message must hold); every case exits 2
CASES = {
    "import": [
        (["/nonexistent/prices.csv"], "no such file"),
        (["{csv}", "--asset-class", SQLI], "asset class"),
        (["{sqli_csv}"], "is not a ticker"),
    ],
    "sql": [
        (["DROP TABLE coins"], "read-only: a DROP statement"),
        (["SELECT 1; DROP TABLE coin_daily"], "read-only"),
        (["SELECT 1; DELETE FROM imported_daily"], "read-only"),
        (["EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/leak.csv'"], "read-only"),
        (["PRAGMA import_database('{tmp}')"], "read-only"),
        (["ATTACH '{tmp}/other.duckdb' AS o"], "read-only"),
        (["SET threads = 1"], "read-only"),
        ([f"SELECT * FROM imported_daily WHERE symbol = '{SQLI}'"], "does not parse"),
        (['SELECT * FROM "coins; DROP TABLE coins"'], "query failed"),
        (["SELECT 10::TINYINT * 100::TINYINT"], "query failed"),
        ([""], "no SQL statement"),
        (["SELECT 1", "--format", "xml"], "Invalid value for '--format'"),
    ],
    "status": [
        (["--format", "xml"], "Invalid value for '--format'"),
        (["--db", "{tmp}/missing.duckdb"], "no warehouse at"),
    ],
    "ingest": [
        (["--coins", SQLI], "coin id"),
        (["--coins", "FET"], "coin id 'FET' is not valid"),
        (["--tickers", "../../etc/passwd"], "ticker"),
        (["--tickers", "NVDA;DROP TABLE equity_daily"], "ticker"),
    ],
    "backfill": [
        (["--since", "2024-13-45"], "Invalid value for '--since'"),
        (["--since", "99999-01-01"], "Invalid value for '--since'"),
        (["--since", ""], "Invalid value for '--since'"),
        (["--since", "1900-01-01"], "before the first bitcoin block"),
        (["--since", "2999-01-01"], "is not a complete day yet"),
        (["--since", "2024-01-10", "--until", "2024-01-01"], "is before --since"),
        (["--since", "2024-01-01", "--coins", SQLI], "coin id"),
        (["--since", "2024-01-01", "--tickers", SQLI], "ticker"),
    ],
    "export": [
        (["--out", "{tmp}/out", "--table", "coins; DROP TABLE coins"], "cannot export"),
        (["--out", "{tmp}/out", "--table", SQLI], "cannot export"),
    ],
    "study": [
        (["--event", "2024-13-45"], "is not a valid date"),
        (["--event", "sora", "--window", "10:-5"], "starts after it ends"),
        (["--event", "sora", "--window", "a:b"], "--window"),
        (["--event", "sora", "--estimation", "abc"], "--estimation"),
        (["--event", "sora", "--car", "5:1"], "starts after it ends"),
        (["--event", "sora", "--min-obs", "99999999999999999999"], "--min-obs"),
        (["--event", "sora", "--min-obs", "-3"], "--min-obs"),
        (["--event", "sora", "--assets", SQLI], "not in the warehouse"),
        (["--event", "sora", "--benchmark", SQLI], "not in the warehouse"),
        (["--event", "sora", "--equities", SQLI], "not in the warehouse"),
        (["--event", "sora", "--source", SQLI], "no series"),
        (["--event", SQLI], "no event"),
        (["--event", "1900-01-01"], "outside the prices"),
        (["--rerun", SQLI_ID], "no stored study"),
        (["--event", "sora", "--window", "0:99999999999"], "--window"),
        (["--event", "sora", "--estimation", "-99999999999:-11"], "--estimation"),
        (["--event", "sora", "--regress", SQLI], "is not a characteristic"),
        (["--event", "sora", "--regress", f"group:{SQLI}"], "not in the groups table"),
        (["--event", "sora", "--regress", "beta", "--regress-window", "a:b"], "--regress-window"),
        (["--event", "sora", "--measure", "volume; DROP"], "Invalid value for '--measure'"),
    ],
    "groups": [
        (["add", "--name", SQLI, "--members", "FET"], "group name"),
        (["add", "--name", "x", "--members", SQLI], "is not a ticker symbol"),
        (["add", "--name", "x", "--coingecko-category", SQLI], "is not a category id"),
        (["add", "--name", "x", "--since", "2024-13-45"], "is not a date"),
        (["remove", SQLI_ID], "no group"),
        (["remove", "compute", "--members", SQLI], "is not a ticker symbol"),
        (["list", "--as-of", SQLI], "is not a date"),
        (["refresh", SQLI_ID], "no group"),
    ],
    "sector": [
        (
            ["reference", "add", "--date", "2024-13-45", "--market-cap", "1", "--source", SQLI],
            "is not a date",
        ),
        (
            ["reference", "add", "--date", "2024-02-15", "--market-cap", SQLI, "--source", "x"],
            "is not a USD figure",
        ),
        (
            ["reference", "add", "--date", "2024-02-15", "--market-cap", "1", "--source", " "],
            "needs its source",
        ),
        (
            ["reference", "remove", "--date", "2024-02-15", "--category", SQLI],
            "no sector reference",
        ),
    ],
    "events": [
        (["add", "--name", "x", "--when", "2024-13-45"], "is not a valid date"),
        (["remove", SQLI_ID], "no event"),
    ],
    "studies": [
        (["show", SQLI_ID], "no stored study"),
    ],
    "paths": [
        (["--db", "{tmp}"], "Invalid value for '--db'"),
    ],
    "warehouse": [
        (["compat", "--db", "{tmp}/missing.duckdb"], "no warehouse at"),
        (["compat", "--db", "{tmp}"], "Invalid value for '--db'"),
    ],
    "check": [
        (["accept", SQLI, "2024-02-17"], "no quarantined point"),
        (["accept", "FET", "2024-13-45"], "is not a date"),
        (["--tolerance-bp", "abc"], "Invalid value for '--tolerance-bp'"),
    ],
    "report": [
        (["--event", SQLI, "--out", "{tmp}/reports"], "no event"),
        (["--event", "2024-13-45", "--out", "{tmp}/reports"], "is not a valid date"),
    ],
}
PARAMS = [
    pytest.param(command, case, id=f"{command}-{i}")
    if not isinstance(case, type(pytest.param()))
    else pytest.param(command, case.values, id=f"{command}-{i}", marks=case.marks)
    for command, cases in CASES.items()
    for i, case in enumerate(cases)
]
TRIED = len(PARAMS)


@pytest.mark.parametrize(("command", "case"), PARAMS)
def test_hostile_input_is_refused_cleanly(
    command, case, warehouse, isolated, capsys, sora_prices_csv
):
    argv, needle = case
    sqli_csv = isolated / "sqli.csv"
    sqli_csv.write_text(f'date,symbol,close\n2024-02-15,"{SQLI}",1.0\n', encoding="utf-8")
    values = {"csv": str(sora_prices_csv), "sqli_csv": str(sqli_csv), "tmp": str(isolated)}
    argv = [a.format(**values) if "{" in a and "DROP" not in a else a for a in argv]
    if "--db" not in argv:
        argv = [*argv, "--db", str(warehouse)]
    before = state(warehouse)
    code = main([command, *argv])
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-300:], err)
    assert "Traceback" not in err + out
    assert "Error:" in err
    if "Invalid value" not in err:  # our own errors: one line (a CSV's bad lines indented)
        first, *rest = err.rstrip("\n").split("\n")
        assert first.startswith("Error: ") and all(r.startswith("  ") for r in rest), err
    assert needle in err, err
    assert state(warehouse) == before
    assert not list(Path(isolated).glob("leak*")), "a refused statement wrote a file"


def test_sql_in_an_export_path_is_data_not_sql(warehouse, isolated, capsys):
    """A path can hold quotes (COPY's target is a literal, escaped): the export lands there."""
    before = state(warehouse)
    out = isolated / "x'); DROP TABLE coins;--"
    assert main(["export", "--out", str(out), "--table", "coins", "--db", str(warehouse)]) == 0
    assert (out / "manifest.json").is_file()
    assert state(warehouse) == before


def test_every_command_was_tried():
    from flows.cli import cli

    covered = set(CASES)
    skipped = {"serve", "pipeline"}  # serve needs a Prefect server; pipeline = import+ingest+report
    assert set(cli.commands) - skipped <= covered, set(cli.commands) - skipped - covered
