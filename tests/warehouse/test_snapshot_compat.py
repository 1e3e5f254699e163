"""Compatible storage, the analysts' snapshot, `aitokens paths` and `warehouse compat`.

Real files throughout: the warehouse written by `aitokens import`, a real DuckDB 1.5 CLI
(tests/warehouse/duckdb_cli.py) reading it, a separate process holding the snapshot open while
the writer runs with no lock wait allowed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from tests.conftest import REPO_ROOT
from tests.warehouse.duckdb_cli import duckdb15, run_sql
from tests.warehouse.helpers import write_csv
from warehouse.paths import snapshot_path
from warehouse.snapshot import STORAGE_VERSION, storage_version

DOC = REPO_ROOT / "docs" / "warehouse.md"


def documented_relations() -> list[str]:
    """Every view (a ``### `name` `` heading) and table (a ``| `name` |`` row) of the doc."""
    text = DOC.read_text(encoding="utf-8")
    views = text.split("## Views", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"`(\w+)`", "\n".join(re.findall(r"^### .*$", views, re.M)))
    tables = text.split("## Tables", 1)[1].split("\n## ", 1)[0]
    names += re.findall(r"^\| `(\w+)` \|", tables, re.M)
    return list(dict.fromkeys(names))


def _tag(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return storage_version(con)
    finally:
        con.close()


def test_import_writes_a_compatible_warehouse_and_publishes_its_snapshot(db_path, sora_prices_csv):
    assert main(["import", str(sora_prices_csv)]) == 0
    snap = snapshot_path(db_path)
    assert snap.exists() and not snap.with_name(snap.name + ".wal").exists()
    assert _tag(db_path) == _tag(snap) == STORAGE_VERSION + "+"
    assert not list(db_path.parent.glob("*.tmp-*"))  # the temporary copy was renamed
    con = duckdb.connect(str(snap), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM daily_prices").fetchone() == (5463,)
    finally:
        con.close()


def test_paths_prints_the_warehouse_and_its_snapshot(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    assert main(["paths", "--db", str(db)]) == 0
    assert capsys.readouterr().out == f"warehouse {db}\nsnapshot {tmp_path / 'w.snapshot.duckdb'}\n"


def test_compat_rewrites_a_duckdb2_file_atomically(tmp_path, sora_prices_csv, capsys):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))  # DuckDB 2's own format, as files made before this release
    con.execute("CREATE TABLE keep AS SELECT 42 AS answer")
    con.close()
    assert _tag(db).startswith("v2.")
    assert main(["import", str(sora_prices_csv), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["warehouse", "compat", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"storage format {STORAGE_VERSION}+ (was v2." in out
    assert _tag(db) == STORAGE_VERSION + "+"
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT answer FROM keep").fetchone() == (42,)
        assert con.execute("SELECT count(*) FROM imported_daily").fetchone() == (5463,)
        pk = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'imported_daily' "
            "AND constraint_type = 'PRIMARY KEY'"
        ).fetchone()
        assert pk == (1,)  # constraints survive: later upserts still work
    finally:
        con.close()
    assert main(["import", str(sora_prices_csv), "--db", str(db)]) == 0
    assert "5,463 unchanged" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "old.duckdb",
        "old.duckdb.ingest.lock",
        "old.snapshot.duckdb",
    ]


@pytest.mark.slow  # installs the DuckDB 1.5 CLI on first use (cached afterwards)
def test_duckdb_15_cli_reads_every_documented_relation(db_path, sora_prices_csv):
    binary = duckdb15()
    assert main(["import", str(sora_prices_csv)]) == 0
    names = documented_relations()
    assert {"daily_prices", "ai_sector_daily", "hourly_returns", "study_results"} <= set(names)
    sql = " UNION ALL ".join(f"SELECT '{n}' AS name, count(*) AS n FROM {n}" for n in names)
    for target in (db_path, snapshot_path(db_path)):
        done = run_sql(binary, target, sql + ";")
        assert done.returncode == 0, done.stderr
        counts = dict(line.split(",") for line in done.stdout.splitlines()[1:])
        assert list(counts) == names
        assert counts["daily_prices"] == "5463"


READER = textwrap.dedent(
    """
    import sys, duckdb
    def count():
        con = duckdb.connect(sys.argv[1], read_only=True)
        n = con.execute("SELECT count(*) FROM daily_prices").fetchone()[0]
        return con, n
    con, n = count()
    print(n, flush=True)
    for line in sys.stdin:  # hold the snapshot open until told to reconnect
        print(con.execute("SELECT count(*) FROM daily_prices").fetchone()[0], flush=True)
        con.close()
        con, n = count()
        print(n, flush=True)
    """
)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=600,
    )


@pytest.mark.slow  # the pipeline executes both report notebooks (~30 s each)
def test_a_reader_holding_the_snapshot_never_blocks_import_or_pipeline(tmp_path, sora_prices_csv):
    db = tmp_path / "w.duckdb"
    env = {**os.environ, "AITOKENS_DB": str(db), "AITOKENS_LOCK_TIMEOUT": "0"}
    first = write_csv(tmp_path / "first.csv", "date,symbol,close\n2020-01-01,TESTCOIN,1.5\n")
    assert _cli("import", str(first), env=env).returncode == 0
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(snapshot_path(db))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin and reader.stdout
    try:
        assert reader.stdout.readline().strip() == "1"
        imported = _cli("import", str(sora_prices_csv), env=env)
        assert imported.returncode == 0, imported.stderr
        out = tmp_path / "reports"
        piped = _cli("pipeline", "--offline", "--no-prefect", "--out", str(out), env=env)
        assert piped.returncode == 0, piped.stderr
        for done in (imported, piped):
            assert "locked" not in done.stderr  # no lock wait (a zero timeout would fail)
        assert (out / "sora_event_study.html").exists()
        reader.stdin.write("reconnect\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1"  # the old snapshot, held all along
        assert reader.stdout.readline().strip() == "5464"  # the new one, after reconnecting
    finally:
        reader.kill()
        reader.wait()
