"""Files around the warehouse (issue 15): what may be opened as a warehouse, where outputs may
go, what `export --overwrite` may delete, and which OS errors are the user's to fix.

Each destructive case runs the real command on a real DuckDB file and checks the bytes left on
disk; each failed before the fix (the notes say how).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from flows.services.runlock import lock_path, run_lock
from tests.reliability.helpers import REPO
from warehouse.files import (
    WarehouseFileError,
    atomic_write_text,
    clean_stale_partials,
    safe_file_stem,
    user_fixable_message,
)
from warehouse.paths import warehouse_files


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, sora_prices_csv) -> Path:
    db = tmp_path_factory.mktemp("files") / "wh.duckdb"
    assert main(["import", str(sora_prices_csv), "--db", str(db)]) == 0
    return db


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("AITOKENS_CONFIG", "AITOKENS_DB", "COINGECKO_API_KEY", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


# ------------------------------------------------------------------------------ --db refused
def test_fifo_as_db_is_refused_at_once_without_a_lock_file(tmp_path):
    """Before: DuckDB opened the FIFO for reading and blocked forever (killed by the timeout)."""
    fifo = tmp_path / "pipe.duckdb"
    os.mkfifo(fifo)
    env = {**os.environ, "AITOKENS_COINGECKO_URL": "http://127.0.0.1:9/"}
    for args in (["status"], ["ingest", "--no-prefect"]):
        r = subprocess.run(
            [sys.executable, "-m", "flows.cli", *args, "--db", str(fifo)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2, r.stderr
        assert f"the warehouse path {fifo} is a FIFO (named pipe), not a DuckDB file" in r.stderr
        assert "Traceback" not in r.stderr
    assert not lock_path(fifo).exists()


def test_device_as_db_leaves_no_lock_file_beside_it():
    """Before: `--db /dev/null` created /dev/null.ingest.lock."""
    dev = Path("/dev/null")
    with pytest.raises(WarehouseFileError, match="is a character device"), run_lock(dev, "x"):
        pass
    assert not lock_path(dev).exists()


def test_wrong_kinds_of_db_exit_2_with_what_is_wrong(isolated, tmp_path):
    folder = tmp_path / "folder.duckdb"
    folder.mkdir()
    csv = tmp_path / "prices.csv"
    csv.write_text("date,symbol,close\n2024-01-01,FET,1\n" * 400)
    lite = tmp_path / "other.sqlite"
    sqlite3.connect(lite).execute("CREATE TABLE a (x)").connection.commit()
    cases = {
        folder: "is a directory",  # click's own check of --db (dir_okay=False)
        Path("/dev/null"): "is a character device",
        csv: "is not a DuckDB warehouse (another kind of file)",
        lite: "is not a DuckDB warehouse (a SQLite database)",
    }
    for path, phrase in cases.items():
        for command in (["status"], ["sql", "select 1"], ["import", str(csv)]):
            code, _, err = run([*command, "--db", str(path)])
            assert code == 2, (command, path, err)
            assert phrase in err and "Traceback" not in err
            assert path == folder or err.count("\n") == 1


@pytest.mark.parametrize("cut", ["half", "whole blocks"])
def test_truncated_warehouse_is_refused_and_never_written(
    isolated, warehouse, tmp_path, sora_prices_csv, cut
):
    """Before: `import` into a truncated file could write to it and report success. Half the
    bytes breaks the block layout (header check, every command); a cut after 10 whole blocks
    keeps it (DuckDB itself drops free trailing blocks, so the length alone proves nothing), so
    the writer's first open reads every table before writing."""
    broken = tmp_path / "broken.duckdb"
    data = warehouse.read_bytes()
    broken.write_bytes(data[: len(data) // 2] if cut == "half" else data[: 3 * 4096 + 10 * 2**18])
    before = sha(broken)
    commands = [["import", str(sora_prices_csv)]]
    if cut == "half":
        commands += [["status"], ["sql", "select 1"]]
    for command in commands:
        code, _, err = run([*command, "--db", str(broken)])
        assert code == 2, err
        assert err.startswith("Error: the file is damaged: ") and str(broken) in err
        assert "Restore it from" in err and "rerun `aitokens backfill`" in err
    assert sha(broken) == before
    assert not Path(str(broken) + ".wal").exists()


# ------------------------------------------------------------------------------ output guard
@pytest.mark.parametrize("which", [0, 1, 2])
def test_study_json_never_overwrites_the_warehouse(isolated, warehouse, which):
    """Before: `study --json <warehouse>` overwrote the warehouse with JSON, exit 0."""
    target = warehouse_files(warehouse)[which]  # the file, its WAL, its snapshot
    before = sha(warehouse)
    target_before = sha(target) if target.exists() else None  # `import` published the snapshot
    code, _, err = run(["study", "--event", "sora", "--db", str(warehouse), "--json", str(target)])
    assert code == 2
    assert err == (
        f"Error: refusing to write {target}: it is the warehouse's file {target}; "
        "choose another output path\n"
    )
    assert sha(warehouse) == before
    assert (sha(target) if target.exists() else None) == target_before


def test_study_json_through_a_symlink_to_the_warehouse_is_refused(isolated, warehouse, tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to(warehouse)
    before = sha(warehouse)
    code, _, err = run(["study", "--event", "sora", "--db", str(warehouse), "--json", str(link)])
    assert code == 2 and "it is the warehouse's file" in err
    assert sha(warehouse) == before


@pytest.mark.parametrize("name", ["../../escaped", "*", "a/b", "..", "sora"])
def test_event_names_become_file_names_inside_their_folder(tmp_path, name):
    stem = safe_file_stem(name)
    out = tmp_path / "reports"
    assert (out / f"{stem}_event_study.html").resolve().parent == out.resolve()
    assert "*" not in stem and "/" not in stem and not stem.startswith(".")
    assert (stem == name) == (name == "sora")
    assert safe_file_stem("a/b") != safe_file_stem("a_b")


# ------------------------------------------------------------------------------ export
def test_overwrite_spares_a_folder_that_merely_holds_a_manifest(isolated, warehouse, tmp_path):
    """Before: any folder with a manifest.json was deleted by `export --overwrite`."""
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "my app"}')
    (app / "src" / "app.js").write_text("console.log('mine')")
    code, _, err = run(
        ["export", "--out", str(app), "--overwrite", "--db", str(warehouse), "--table", "coins"]
    )
    assert code == 2
    assert "holds no .aitokens-export marker" in err
    assert (app / "src" / "app.js").read_text() == "console.log('mine')"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".webapp")) == []


def test_overwrite_replaces_our_export_and_stale_partials_go(isolated, warehouse, tmp_path):
    out = tmp_path / "exp"
    args = ["export", "--out", str(out), "--db", str(warehouse), "--table", "coins"]
    assert run(args)[0] == 0
    assert (out / ".aitokens-export").is_file()
    dead = tmp_path / ".exp.partial-999999999-deadbeef"  # a killed export's staging folder
    (dead / "coins").mkdir(parents=True)
    live = tmp_path / f".exp.partial-{os.getpid()}-cafef00d"  # a running export's: kept
    live.mkdir()
    code, _, err = run([*args, "--overwrite"])
    assert code == 0, err
    assert not dead.exists() and live.exists()
    assert (out / ".aitokens-export").is_file()


# ------------------------------------------------------------------------------ atomic writes
def _limited_child(code: str, limit: int) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with a file-size limit of ``limit`` bytes (SIGXFSZ ignored, so a write past
    it fails with EFBIG as on a full disk: a real kernel limit, no mock)."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_files,
    )


def test_a_write_that_runs_out_of_room_keeps_the_previous_file(tmp_path):
    report = tmp_path / "sora_event_study.html"
    report.write_text("<html>previous report</html>")
    child = _limited_child(
        "import sys; from pathlib import Path; from warehouse.files import atomic_write_text\n"
        f"atomic_write_text(Path({str(report)!r}), 'x' * 100_000)",
        limit=4096,
    )
    assert child.returncode != 0 and "File too large" in child.stderr
    assert report.read_text() == "<html>previous report</html>"
    assert [p.name for p in tmp_path.iterdir()] == [report.name]  # no temporary left


def test_cli_out_of_room_exits_2_with_the_fix_and_keeps_the_old_json(warehouse, tmp_path):
    """Before: a full disk was `unexpected failure`, exit 1, and left a truncated file."""
    out = tmp_path / "study.json"
    out.write_text('{"old": true}')
    child = _limited_child(
        "import sys; from flows.cli import main\n"
        f"sys.exit(main(['study', '--event', 'sora', '--no-save', '--db', {str(warehouse)!r}, "
        f"'--json', {str(out)!r}]))",
        limit=8192,
    )
    assert child.returncode == 2, child.stderr
    assert "the file size limit was reached" in child.stderr
    assert "unexpected failure" not in child.stderr
    assert out.read_text() == '{"old": true}'


def test_read_only_and_full_disk_errors_are_the_users_to_fix(tmp_path):
    import errno

    for code, phrase in [
        (errno.ENOSPC, "the disk is full"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
    ]:
        message = user_fixable_message(OSError(code, os.strerror(code), str(tmp_path / "x")))
        assert message is not None and phrase in message and str(tmp_path / "x") in message
    assert user_fixable_message(OSError(errno.EBADF, "bad fd")) is None  # our bug: exit 1
    assert user_fixable_message(ValueError("x")) is None


def test_stale_partials_of_dead_runs_only(tmp_path):
    target = tmp_path / "report.html"
    atomic_write_text(target, "new")
    dead = tmp_path / ".report.html.partial-999999999-0badc0de"
    dead.write_text("half")
    other = tmp_path / ".other.html.partial-999999999-0badc0de"
    other.write_text("not ours")
    assert clean_stale_partials(target) == [dead]
    assert other.exists() and target.read_text() == "new"


# ------------------------------------------------------------------------------ configuration
def test_deeply_nested_settings_file_exits_2(isolated, tmp_path, monkeypatch):
    """Before: RecursionError, `unexpected failure`, exit 1."""
    cfg = tmp_path / "aitokens.toml"
    cfg.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    monkeypatch.setenv("AITOKENS_CONFIG", str(cfg))
    code, _, err = run(["status", "--db", str(tmp_path / "none.duckdb")])
    assert code == 2
    assert err == (
        "Error: aitokens.toml: arrays or tables nested too deeply to read; a settings file "
        "needs at most two levels (see docs: aitokens.toml)\n"
    )


def test_a_failed_report_run_keeps_the_previous_report_and_figures(
    isolated, warehouse, tmp_path, monkeypatch
):
    """Before: the previous HTML and PNGs were deleted before the notebooks ran, so a failed
    or killed run left no report at all. A real kernel runs a notebook that draws a figure,
    then raises."""
    import nbformat

    from flows.services import report

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("db = event = figures_dir = None\ncaveats = []")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "from pathlib import Path\n"
            "Path(figures_dir).mkdir(parents=True, exist_ok=True)\n"
            "(Path(figures_dir) / '01_new.png').write_bytes(b'new')\n"
            "raise RuntimeError('boom')"
        ),
    ]
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nbformat.write(nb, nbdir / "broken.ipynb")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", nbdir)
    out = tmp_path / "out"
    (out / "figures" / "broken").mkdir(parents=True)
    (out / "broken.html").write_text("<html>previous</html>")
    (out / "figures" / "broken" / "01_old.png").write_bytes(b"old")
    with pytest.raises(report.ReportExecutionError, match="RuntimeError: boom .*left in place"):
        report.build_reports(warehouse, out=out, notebooks=("broken",))
    assert (out / "broken.html").read_text() == "<html>previous</html>"
    assert "boom" in (out / "broken.failed.html").read_text()
    assert [p.name for p in (out / "figures" / "broken").iterdir()] == ["01_old.png"]
    assert [p.name for p in (out / "figures").iterdir()] == ["broken"]  # no staging left


@pytest.mark.parametrize(
    "command",
    [
        ["study", "--event", "sora", "--no-save", "--json", "/sys/aitokens-test/study.json"],
        ["export", "--out", "/sys/aitokens-test-export", "--table", "coins"],
    ],
)
def test_a_folder_nobody_may_write_exits_2_with_the_fix(isolated, warehouse, command):
    """Before: `unexpected failure (PermissionError ...)`, exit 1. /sys refuses new files and
    folders even to root (EPERM/EACCES): a real unwritable folder without chmod, which root
    ignores."""
    before = sha(warehouse)
    code, _, err = run([*command, "--db", str(warehouse)])
    assert code == 2, err
    assert err.startswith("Error: cannot write /sys/")
    assert ": choose a folder you may write to, or fix its permissions\n" in err  # EPERM/EACCES
    assert err.count("\n") == 1
    assert sha(warehouse) == before
