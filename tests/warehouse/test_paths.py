"""One warehouse found from anywhere: the resolution order of warehouse.paths / resolve_db_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from flows.services.report import warehouse_path
from warehouse.db import resolve_db_path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root (an ``aitokens.toml``) with a nested folder; no AITOKENS_* set."""
    for name in ("AITOKENS_DB", "AITOKENS_HOME", "AITOKENS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "proj"
    (root / "notebooks" / "deep").mkdir(parents=True)
    (root / "aitokens.toml").write_text("# marks the root\n", encoding="utf-8")
    return root


def test_the_same_warehouse_from_every_folder_of_a_project(project, monkeypatch, capsys):
    expected = project / "data" / "aitokens.duckdb"
    for folder in (project, project / "notebooks", project / "notebooks" / "deep"):
        monkeypatch.chdir(folder)
        assert resolve_db_path() == expected
        assert warehouse_path() == expected  # what a notebook under Jupyter opens
        assert main(["paths"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"warehouse {expected}",
            f"snapshot {project / 'data' / 'aitokens.snapshot.duckdb'}",
        ]


def test_precedence_db_then_env_then_file_then_root_then_home(project, tmp_path, monkeypatch):
    monkeypatch.chdir(project / "notebooks")
    home = tmp_path / "home"
    monkeypatch.setenv("AITOKENS_HOME", str(home))
    assert resolve_db_path() == project / "data" / "aitokens.duckdb"  # the root beats the home
    (project / "aitokens.toml").write_text('[warehouse]\npath = "w/x.duckdb"\n', encoding="utf-8")
    assert warehouse_path() == project / "w" / "x.duckdb"  # the file's path, from its folder
    monkeypatch.setenv("AITOKENS_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path() == tmp_path / "env.duckdb"
    assert resolve_db_path(tmp_path / "arg.duckdb") == tmp_path / "arg.duckdb"
    monkeypatch.delenv("AITOKENS_DB")
    monkeypatch.chdir(tmp_path)  # outside the project: the configured home
    assert resolve_db_path() == home / "data" / "aitokens.duckdb"
    monkeypatch.delenv("AITOKENS_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_db_path() == tmp_path / "xdg" / "aitokens" / "aitokens.duckdb"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "aitokens.duckdb").touch()  # an existing checkout's warehouse
    monkeypatch.chdir(home.parent)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert resolve_db_path() == tmp_path / "data" / "aitokens.duckdb"
