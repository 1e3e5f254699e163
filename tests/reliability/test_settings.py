"""Settings resolved once into a typed object (flows.config.Settings): the environment, then
aitokens.toml, then the defaults; the CLI hands them to the warehouse without writing a single
variable into ``os.environ``, and the documented names keep working."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.cli import main
from flows.config import Settings
from warehouse.db import lock_timeout_from_env, resolve_db_path
from warehouse.settings import WarehouseSettings, bound, current

ENV_NAMES = ("AITOKENS_CONFIG", "AITOKENS_DB", "AITOKENS_LOCK_TIMEOUT", "AITOKENS_HOME")


def aitokens_environ() -> dict[str, str]:
    """Our variables in ``os.environ`` (Prefect's own PREFECT_* defaults are set by the CLI
    before Prefect is imported, which reads only its environment)."""
    return {k: v for k, v in os.environ.items() if k.startswith("AITOKENS_")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with an ``aitokens.toml`` naming a warehouse; no AITOKENS_* set."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aitokens.toml").write_text(
        '[warehouse]\npath = "wh/x.duckdb"\nlock_timeout = 4\n', encoding="utf-8"
    )
    return tmp_path


def test_precedence_environment_then_file_then_defaults(project):
    from_file = Settings.resolve({}).warehouse
    assert from_file == WarehouseSettings(project / "wh" / "x.duckdb", 4.0)
    env = {"AITOKENS_DB": str(project / "env.duckdb"), "AITOKENS_LOCK_TIMEOUT": "0.5"}
    assert Settings.resolve(env).warehouse == WarehouseSettings(project / "env.duckdb", 0.5)
    (project / "aitokens.toml").write_text("# no [warehouse] section\n", encoding="utf-8")
    assert Settings.resolve({}).warehouse == WarehouseSettings(None, 30.0)
    # the defaults then: data/aitokens.duckdb beside the file
    assert resolve_db_path(None, Settings.resolve({}).warehouse) == project / "data" / (
        "aitokens.duckdb"
    )


def test_a_command_uses_the_file_without_exporting_it(project, capsys):
    before = aitokens_environ()
    assert main(["paths"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"warehouse {project / 'wh' / 'x.duckdb'}"
    assert aitokens_environ() == before  # nothing written: no AITOKENS_DB, no lock timeout
    assert "AITOKENS_DB" not in before and "AITOKENS_LOCK_TIMEOUT" not in before
    # after the command, nothing of it stays bound: library calls see environment and defaults
    assert current() == WarehouseSettings(None, 30.0)


def test_a_command_creates_the_warehouse_the_file_names(project, tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("date,symbol,close\n2024-02-15,FET,0.6\n", encoding="utf-8")
    assert main(["import", str(csv)]) == 0
    assert (project / "wh" / "x.duckdb").is_file()
    assert "AITOKENS_DB" not in os.environ


def test_bound_settings_reach_the_warehouse_only_inside_the_block(project):
    inside = WarehouseSettings(project / "bound.duckdb", 7.0)
    with bound(inside):
        assert resolve_db_path() == project / "bound.duckdb"
        assert lock_timeout_from_env() == 7.0
        assert resolve_db_path(project / "arg.duckdb") == project / "arg.duckdb"  # --db wins
    assert lock_timeout_from_env() == 30.0


def test_a_bad_lock_timeout_in_the_environment_is_one_clear_error(project, monkeypatch, capsys):
    monkeypatch.setenv("AITOKENS_LOCK_TIMEOUT", "soon")
    assert main(["paths"]) != 0
    err = capsys.readouterr().err
    assert err == "Error: AITOKENS_LOCK_TIMEOUT='soon' is not a number of seconds\n"


def test_the_settings_hold_no_key(project):
    env = {"COINGECKO_API_KEY": "CG-settings-secret", "AITOKENS_YAHOO_TICKERS": "NVDA"}
    settings = Settings.resolve(env)
    assert settings.environ == {"AITOKENS_YAHOO_TICKERS": "NVDA"}
    assert "CG-settings-secret" not in repr(settings)


def test_file_values_are_overridden_by_the_variables_the_settings_hold(project):
    (project / "aitokens.toml").write_text(
        '[yahoo]\ntickers = ["AMD"]\ncalls_per_minute = 5\n', encoding="utf-8"
    )
    settings = Settings.resolve({"AITOKENS_YAHOO_TICKERS": "NVDA"})
    assert settings.section("yahoo") == {"calls_per_minute": 5.0}  # tickers: the variable's
