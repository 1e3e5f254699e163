"""Fixtures of the study tests: one warehouse holding the real Sora panel, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.cli import main


@pytest.fixture(scope="session")
def sora_template(sora_prices_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with the real panel imported through the CLI, built once per session."""
    path = tmp_path_factory.mktemp("sora") / "template.duckdb"
    assert main(["import", str(sora_prices_csv), "--db", str(path)]) == 0
    return path


@pytest.fixture
def sora_db(sora_template: Path, db_path: Path) -> Path:
    """A private copy of the Sora warehouse at ``db_path`` (``AITOKENS_DB`` points at it)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sora_template, db_path)
    return db_path
