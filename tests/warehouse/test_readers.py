"""Reading commands read the analysts' snapshot, never the writer's file.

Real processes throughout, with ``AITOKENS_LOCK_TIMEOUT=0`` so that any lock conflict fails at
once instead of being waited out: a process holding the warehouse open for writing (a write
run in progress) does not stop `export`, `events list`, `studies list/show`, `groups list`;
a process holding the snapshot open (an analyst's notebook) while `aitokens export` runs does
not stop `aitokens import`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flows.cli import main
from tests.conftest import REPO_ROOT
from tests.warehouse.helpers import write_csv
from warehouse.paths import snapshot_path

# Opens FILE (read-only when asked), prints "ready", keeps it open until stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
    con.execute("SELECT count(*) FROM daily_prices").fetchall()
    print("ready", flush=True)
    sys.stdin.read()
    con.close()
    """
)


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _hold(path: Path, mode: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "ready"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    if holder.stdin:
        holder.stdin.close()
    holder.wait(timeout=30)


def test_reading_commands_never_touch_the_writers_file(
    db_path: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("AITOKENS_LOCK_TIMEOUT", "0")
    first = write_csv(tmp_path / "first.csv", "date,symbol,close\n2020-01-01,TESTCOIN,1.5\n")
    assert main(["import", str(first)]) == 0  # publishes the snapshot
    capsys.readouterr()

    writer = _hold(db_path, "write")  # a write run in progress: DuckDB's exclusive file lock
    try:
        done = {}
        for args in (
            ["export", "--out", str(tmp_path / "exp")],
            ["events", "list", "--format", "csv"],
            ["studies", "list", "--format", "csv"],
            ["groups", "list", "--format", "csv"],
        ):
            code = main(args)
            done[args[0]] = (code, *capsys.readouterr())
    finally:
        _release(writer)
    for name, (code, _out, err) in done.items():
        assert (name, code) == (name, 0), err
        assert "locked" not in err
    assert "sora," in done["events"][1]  # the seeded catalog, read from the snapshot
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    assert manifest["source"]["read_from"] == str(snapshot_path(db_path))
    assert manifest["tables"]["imported_daily"]["rows"] == 1


@pytest.mark.slow  # three real CLI processes at once (~10 s on 2 busy cores)
def test_import_never_waits_on_an_analyst_or_an_export(tmp_path: Path, sora_prices_csv) -> None:
    db = tmp_path / "w.duckdb"
    env = {**os.environ, "AITOKENS_DB": str(db), "AITOKENS_LOCK_TIMEOUT": "0"}
    first = write_csv(tmp_path / "first.csv", "date,symbol,close\n2020-01-01,TESTCOIN,1.5\n")
    assert _finish(_start("import", str(first), env=env))[0] == 0

    reader = _hold(snapshot_path(db), "read")  # an analyst's session on the snapshot
    try:
        started = time.monotonic()
        exporting = _start("export", "--out", str(tmp_path / "exp"), env=env)
        importing = _start("import", str(sora_prices_csv), env=env)
        imported = _finish(importing)
        import_s = time.monotonic() - started
        exported = _finish(exporting)
    finally:
        _release(reader)
    assert imported[0] == 0, imported[2]
    assert exported[0] == 0, exported[2]
    for _code, _out, err in (imported, exported):
        assert "locked" not in err  # a zero lock timeout: any wait would have failed the run
    # The export read one consistent snapshot: the one before the import or the one after.
    rows = json.loads((tmp_path / "exp" / "manifest.json").read_text())["tables"]
    assert rows["imported_daily"]["rows"] in (1, 1 + 5463)
    print(f"import beside a held snapshot and a running export: {import_s:.1f} s")


def test_every_catalog_edit_is_in_the_snapshot_the_listings_read(db_path: Path, capsys) -> None:
    """Edits go to the warehouse and republish the snapshot, so the next listing shows them."""
    edits = [
        ["groups", "add", "--name", "gpu", "--members", "NVDA", "--since", "2020-01-01"],
        ["events", "add", "gemini", "--when", "2023-12-06", "--kind", "ai"],
    ]
    for args in edits:
        assert main(args) == 0, capsys.readouterr().err
    assert snapshot_path(db_path).exists()
    assert main(["groups", "list", "--format", "csv"]) == 0
    assert "\ngpu," in capsys.readouterr().out
    assert main(["events", "list", "--format", "csv"]) == 0
    assert "\ngemini," in capsys.readouterr().out
    assert main(["groups", "remove", "gpu"]) == 0
    assert main(["events", "remove", "gemini"]) == 0
    capsys.readouterr()
    assert main(["groups", "list", "--format", "csv"]) == 0
    assert "\ngpu," not in capsys.readouterr().out
    assert main(["events", "list", "--format", "csv"]) == 0
    assert "\ngemini," not in capsys.readouterr().out
