"""Settings: the optional aitokens.toml under the environment, keys only from the environment
or a Prefect Secret block; every bad setting is one ``Error:`` line with exit code 2."""

from __future__ import annotations

import uuid

import pytest

from flows.cli import main
from flows.config import Settings, load_config, parse_config
from flows.errors import BadApiKeyError, ConfigError
from flows.sources.coingecko import CoinGeckoConfig
from flows.sources.yahoo import YahooConfig

ENV_NAMES = (
    "AITOKENS_CONFIG",
    "COINGECKO_API_KEY",
    "COINGECKO_PLAN",
    "AITOKENS_DB",
    "AITOKENS_LOCK_TIMEOUT",
    "AITOKENS_COINGECKO_CALLS_PER_MINUTE",
    "AITOKENS_COINGECKO_CATEGORIES",
    "AITOKENS_YAHOO_TICKERS",
    "AITOKENS_COINGECKO_URL",
    "AITOKENS_COINGECKO_SECRET_BLOCK",
)


@pytest.fixture
def settings_file(tmp_path, monkeypatch):
    """Write ``aitokens.toml`` in a fresh working folder; the environment holds no settings."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_NAMES:
        monkeypatch.setenv(name, "")  # recorded, so monkeypatch restores the real value
        monkeypatch.delenv(name)

    def write(text: str):
        path = tmp_path / "aitokens.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_file_values_are_used_and_the_environment_wins(settings_file, monkeypatch):
    settings_file(
        '[coingecko]\nplan = "keyless"\ncalls_per_minute = 12\n'
        'categories = ["artificial-intelligence", "layer-1"]\ntimeout_seconds = 7\n'
        '[yahoo]\ntickers = ["nvda", "tsm"]\n'
        '[warehouse]\npath = "wh/x.duckdb"\nlock_timeout = 4\n'
    )
    cg = CoinGeckoConfig.from_env()
    assert (cg.plan, cg.calls_per_minute, cg.timeout_seconds) == ("keyless", 12.0, 7.0)
    assert cg.categories == ("artificial-intelligence", "layer-1")
    assert YahooConfig.from_env().tickers == ("NVDA", "TSM")
    monkeypatch.setenv("AITOKENS_COINGECKO_CALLS_PER_MINUTE", "20")
    monkeypatch.setenv("AITOKENS_YAHOO_TICKERS", "AMD")
    assert CoinGeckoConfig.from_env().calls_per_minute == 20.0
    assert YahooConfig.from_env().tickers == ("AMD",)
    env: dict[str, str] = {}
    warehouse = Settings.resolve(env).warehouse
    assert str(warehouse.path).endswith("wh/x.duckdb") and warehouse.lock_timeout == 4
    assert env == {}  # resolved, not exported
    env = {"AITOKENS_DB": "/elsewhere.duckdb"}
    assert str(Settings.resolve(env).warehouse.path) == "/elsewhere.duckdb"


def test_no_file_means_defaults(settings_file):
    assert load_config().path is None
    assert CoinGeckoConfig.from_env().plan == "keyless"


# (file text, phrase): every one is exit 2 with one line, whatever the command
BAD_FILES = {
    "syntax": ('[coingecko]\nplan = "pro\n', "aitokens.toml line 2:"),
    "syntax-no-equals": ("[coingecko]\nplan\n", "aitokens.toml line 2:"),
    "unknown-plan": ('[coingecko]\nplan = "gold"\n', "'gold' is not a plan"),
    "key-in-file": ('[coingecko]\napi_key = "CG-abc"\n', "never read from the settings file"),
    "key-other-name": ('[coingecko]\nkey = "CG-abc"\n', "never read from the settings file"),
    "secret-section": ('[secrets]\ncoingecko = "CG-abc"\n', "never read from the settings file"),
    "unknown-section": ("[no-such-source]\nx = 1\n", "unknown section [no-such-source]"),
    "unknown-key": ("[yahoo]\nticker = 'NVDA'\n", "unknown key 'ticker'"),
    "negative-rate": ("[coingecko]\ncalls_per_minute = -5\n", "must be a finite number"),
    "nan-rate": ("[coingecko]\ncalls_per_minute = nan\n", "is not a number"),
    "inf-timeout": ("[yahoo]\ntimeout_seconds = inf\n", "must be a finite number"),
    "string-rate": ('[coingecko]\ncalls_per_minute = "fast"\n', "is not a number"),
    "bool-lock": ("[warehouse]\nlock_timeout = true\n", "is not a number"),
    "tickers-not-list": ("[yahoo]\ntickers = 5\n", "must be a list of names"),
    "empty-categories": ("[coingecko]\ncategories = []\n", "is empty"),
    "section-as-value": ('coingecko = "pro"\n', "must be a section"),
    "pro-without-key": ('[coingecko]\nplan = "pro"\n', "needs an API key"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_settings_file_is_one_clear_error_with_exit_2(case, settings_file, capsys, tmp_path):
    text, needle = BAD_FILES[case]
    settings_file(text)
    # `status` reads the file first; ingestion settings are read by the ingest commands
    argv = (
        ["ingest", "--no-prefect", "--db", str(tmp_path / "wh.duckdb")]
        if case == "pro-without-key"
        else ["status", "--db", str(tmp_path / "none.duckdb")]
    )
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert "CG-abc" not in err  # a key put in the file is never echoed
    assert not (tmp_path / "wh.duckdb").exists()


def test_settings_file_named_by_the_environment_must_exist(settings_file, monkeypatch, capsys):
    monkeypatch.setenv("AITOKENS_CONFIG", "/nonexistent/aitokens.toml")
    assert main(["status"]) == 2
    assert "AITOKENS_CONFIG=/nonexistent/aitokens.toml: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "error", "needle"),
    [
        ({"COINGECKO_PLAN": "gold"}, ConfigError, "is not a plan"),
        ({"COINGECKO_PLAN": "pro"}, BadApiKeyError, "needs an API key"),
        ({"COINGECKO_PLAN": "demo"}, BadApiKeyError, "needs an API key"),
        ({"AITOKENS_COINGECKO_CALLS_PER_MINUTE": "nan"}, ConfigError, "finite"),
        ({"AITOKENS_COINGECKO_CALLS_PER_MINUTE": "0"}, ConfigError, "must be positive"),
        ({"AITOKENS_COINGECKO_TIMEOUT": "-1"}, ConfigError, "finite number, zero or more"),
        ({"AITOKENS_COINGECKO_TIMEOUT": "0"}, ConfigError, "positive number of seconds"),
        ({"AITOKENS_YAHOO_CALLS_PER_MINUTE": "lots"}, ConfigError, "is not a number"),
    ],
)
def test_bad_environment_settings(env, error, needle, settings_file):
    with pytest.raises(error, match=needle):
        CoinGeckoConfig.from_env(env)
        YahooConfig.from_env(env)


def test_parse_config_reports_the_line_of_a_syntax_error():
    with pytest.raises(ConfigError, match=r"^aitokens.toml line 3: .*column"):
        parse_config("[yahoo]\ntickers = ['A']\ncalls_per_minute = = 3\n")


# ---------------------------------------------------------------- Prefect Secret block
def test_key_from_a_prefect_secret_block(prefect_harness, settings_file, monkeypatch):
    from prefect.blocks.system import Secret

    name = f"cg-key-{uuid.uuid4().hex[:8]}"
    value = f"CG-block-{uuid.uuid4().hex}"
    monkeypatch.setenv("AITOKENS_COINGECKO_SECRET_BLOCK", name)
    monkeypatch.setenv("COINGECKO_PLAN", "pro")
    with pytest.raises(BadApiKeyError, match="needs an API key"):
        CoinGeckoConfig.from_env()  # no block yet
    Secret(value=value).save(name)
    try:
        config = CoinGeckoConfig.from_env()
        assert config.api_key == value and value not in repr(config)
        monkeypatch.setenv("COINGECKO_API_KEY", "CG-from-env")
        assert CoinGeckoConfig.from_env().api_key == "CG-from-env"  # the environment wins
    finally:
        Secret.delete(name) if hasattr(Secret, "delete") else None
