"""The event catalog: seeded from DEFAULT_EVENTS once, editable by CLI and SQL, values bound."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from analysis import DEFAULT_EVENTS
from flows.cli import main
from warehouse.db import open_warehouse
from warehouse.studies import catalog_events

HOSTILE = "x'); DROP TABLE coins; --"


def catalog(db) -> dict[str, dict]:
    with open_warehouse(db, read_only=True) as con:
        return {e["name"]: e for e in catalog_events(con)}


def test_seed_matches_default_events_instant_for_instant(sora_db):
    events = catalog(sora_db)
    assert set(events) == {e.name for e in DEFAULT_EVENTS}
    for default in DEFAULT_EVENTS:
        row = events[default.name]
        assert pd.Timestamp(row["when"]) == pd.Timestamp(default.when), default.name
        assert (row["description"], row["kind"]) == (default.description, default.kind)
        assert row["is_confounder"] == (default.kind == "earnings")
    assert events["nvda_q4fy24"]["when"] == "2024-02-21T21:20:00+00:00"
    assert events["sora"]["when"] == "2024-02-15T18:00:00+00:00"  # migration 006


def _replay_006(db, edit: str) -> dict:
    """Undo migrations 006 and later on a copy, apply ``edit`` (SQL), re-run them; return
    sora's row."""
    con = duckdb.connect(str(db))
    try:
        con.execute("ALTER TABLE events DROP COLUMN time_source")
        con.execute("DELETE FROM schema_migrations WHERE version >= 6")
        con.execute("UPDATE schema_meta SET value = '4' WHERE key = 'schema_version'")
        con.execute(
            "UPDATE events SET event_ts = NULL, updated_at = TIMESTAMP '2024-01-01' "
            "WHERE name = 'sora'"
        )
        con.execute(edit)
    finally:
        con.close()
    with open_warehouse(db) as con:  # migrates: 006 runs again
        row = con.execute(
            "SELECT strftime(timezone('UTC', event_ts), '%Y-%m-%dT%H:%M') AS ts, origin, "
            "description, time_source FROM events WHERE name = 'sora'"
        ).df()
    return row.iloc[0].to_dict()


def test_migration_006_times_the_seeded_sora_and_cites_its_source(sora_db):
    row = _replay_006(sora_db, "SELECT 1")
    assert (row["ts"], row["origin"]) == ("2024-02-15T18:00", "seed")
    assert "OpenAI" in row["time_source"] and "18:00 UTC" in row["time_source"]


def test_migration_006_leaves_an_analysts_sora_alone(sora_db):
    row = _replay_006(
        sora_db,
        "UPDATE events SET origin = 'analyst', description = 'mine' WHERE name = 'sora'",
    )
    assert pd.isna(row["ts"]) and row["description"] == "mine"
    assert pd.isna(row["time_source"])


def test_add_list_remove(sora_db, capsys):
    args = ["events", "add", "--name", "gemini", "--when", "2023-12-06T10:00-08:00"]
    assert main([*args, "--description", "Google Gemini", "--kind", "AI"]) == 0
    assert capsys.readouterr().out == (
        "Added event 'gemini' at 2023-12-06T18:00:00+00:00 (kind ai, not a confounder).\n"
    )
    assert main(["events", "list", "--kind", "ai", "--format", "csv"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == "name,event_date,event_ts,description,kind,is_confounder,origin,updated_at"
    assert [line.split(",")[0] for line in listed[1:]] == [
        "chatgpt",
        "gpt4",
        "gemini",
        "sora",
        "gpt4o",
        "sora_release",
    ]
    assert listed[3].startswith(
        "gemini,2023-12-06,2023-12-06T18:00:00+00:00,Google Gemini,ai,False,analyst,"
    )
    assert (
        main(
            [
                "events",
                "add",
                "--name",
                "amd_q4",
                "--when",
                "2024-01-30T16:15-05:00",
                "--kind",
                "earnings",
            ]
        )
        == 0
    )
    assert "(kind earnings, confounder)" in capsys.readouterr().out
    assert main(["events", "remove", "gemini"]) == 0
    assert capsys.readouterr().out == "Removed event 'gemini' (2023-12-06T18:00:00+00:00).\n"
    assert "gemini" not in catalog(sora_db) and catalog(sora_db)["amd_q4"]["is_confounder"]


def test_hostile_name_is_stored_verbatim_and_harmless(sora_db, capsys):
    assert (
        main(
            [
                "events",
                "add",
                "--name",
                HOSTILE,
                "--when",
                "2024-03-01",
                "--description",
                "Robert'); DROP TABLE events; --",
            ]
        )
        == 0
    )
    events = catalog(sora_db)
    assert events[HOSTILE]["description"] == "Robert'); DROP TABLE events; --"
    con = duckdb.connect(str(sora_db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM coins").fetchall() == [(0,)]  # table still there
        assert con.execute("SELECT name FROM events WHERE name = ?", [HOSTILE]).fetchall() == [
            (HOSTILE,)
        ]
    finally:
        con.close()
    capsys.readouterr()
    assert main(["study", "--event", HOSTILE, "--no-save", "--no-equities"]) == 0
    assert f"Event {HOSTILE} = 2024-03-01" in capsys.readouterr().out
    assert main(["events", "remove", HOSTILE]) == 0
    assert HOSTILE not in catalog(sora_db)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--name", "sora", "--when", "2024-02-15"],
            "Error: event 'sora' already exists: pass --replace to overwrite it, or remove it first (aitokens events remove)",
        ),
        (
            ["--name", "2024-01-01", "--when", "2024-01-01"],
            "Error: --name '2024-01-01' reads as a date or time, which `--event` would take as a date; choose a word such as 'sora'",
        ),
        (
            ["--name", " ", "--when", "2024-01-01"],
            "Error: --name is empty: give the event a short name such as 'sora'",
        ),
        (
            ["--name", "a\tb", "--when", "2024-01-01"],
            "Error: --name 'a\\tb' holds control characters",
        ),
        (["--name", "x", "--when", "2024-13-01"], "Error: --when '2024-13-01' is not a valid date"),
        (
            ["--name", "x", "--when", "2024-02-21 16:20"],
            "Error: --when '2024-02-21 16:20' has a time of day but no time zone: add one, e.g. 2024-02-21T16:20Z (UTC) or 2024-02-21T16:20-05:00 (New York, winter)",
        ),
        (
            ["--name", "x", "--when", "soon"],
            "Error: --when 'soon' is neither a date (2024-02-15) nor a timestamp with a zone (2024-02-21T16:20-05:00)",
        ),
        (
            ["--name", "x", "--when", "2024-01-01", "--kind", "Big News"],
            "Error: --kind 'Big News' must be a short lower-case word (letters, digits, _ or -), e.g. ai, earnings, macro",
        ),
    ],
)
def test_add_rejects_bad_input(sora_db, capsys, args, message):
    before = catalog(sora_db)
    assert main(["events", "add", *args]) == 2
    assert capsys.readouterr().err == message + "\n"
    assert catalog(sora_db) == before


def test_replace_and_remove_unknown(sora_db, capsys):
    assert (
        main(
            [
                "events",
                "add",
                "--name",
                "sora",
                "--when",
                "2024-02-15T15:00Z",
                "--kind",
                "ai",
                "--description",
                "Sora (OpenAI blog post, 10:00 New York)",
                "--replace",
            ]
        )
        == 0
    )
    assert catalog(sora_db)["sora"]["when"] == "2024-02-15T15:00:00+00:00"
    capsys.readouterr()
    assert main(["events", "remove", "sorra"]) == 2
    assert capsys.readouterr().err == "Error: no event 'sorra' in the catalog; did you mean sora?\n"


def test_seed_never_overwrites_edits_and_readds_only_missing(sora_db, capsys):
    con = duckdb.connect(str(sora_db))
    try:  # an analyst edits a row with SQL and deletes another
        con.execute("UPDATE events SET description = 'edited by hand' WHERE name = 'sora'")
        con.execute("DELETE FROM events WHERE name = 'gpt4'")
    finally:
        con.close()
    assert main(["import", "--help"]) == 0  # any later writable open re-runs no seed
    assert main(["status"]) == 0
    assert catalog(sora_db)["sora"]["description"] == "edited by hand"
    assert "gpt4" not in catalog(sora_db)
    capsys.readouterr()
    assert main(["events", "seed"]) == 0
    assert capsys.readouterr().out == "Added 1 default event(s): gpt4.\n"
    assert catalog(sora_db)["sora"]["description"] == "edited by hand"
    assert main(["events", "seed"]) == 0
    assert capsys.readouterr().out == "Added 0 default event(s).\n"


def test_events_can_be_added_with_plain_sql(sora_db, capsys):
    con = duckdb.connect(str(sora_db))
    try:
        con.execute(
            "INSERT INTO events (name, event_date, event_ts, description, kind, is_confounder) "
            "VALUES ('amd_q4fy23', DATE '2024-01-30', TIMESTAMPTZ '2024-01-30 16:15-05:00', "
            "'AMD Q4 2023 results', 'earnings', true)"
        )
    finally:
        con.close()
    ev = catalog(sora_db)["amd_q4fy23"]
    assert ev["when"] == "2024-01-30T21:15:00+00:00" and ev["is_confounder"]
