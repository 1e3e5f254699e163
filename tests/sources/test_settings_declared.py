"""Each vendor setting is declared once, as a field of its config dataclass
(flows.sources.http_client.setting); the aitokens.toml schema, the environment reading and the
registry's labels derive from the declarations, and every documented name keeps working."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from flows.config import parse_config, schema
from flows.sources.connectivity import vendor_label
from flows.sources.http_client import HttpEnv, HttpSourceConfig, setting
from flows.sources.registry import source_classes

# The names the README, docs/ and scripts use (main before the declarations): every one stays.
DOCUMENTED = {
    "binance": {
        "symbols": ("names", "AITOKENS_BINANCE_SYMBOLS"),
        "calls_per_minute": ("positive", "AITOKENS_BINANCE_CALLS_PER_MINUTE"),
        "timeout_seconds": ("positive", "AITOKENS_BINANCE_TIMEOUT"),
        "max_retry_seconds": ("non_negative", "AITOKENS_BINANCE_MAX_RETRY_SECONDS"),
        "base_url": ("url", "AITOKENS_BINANCE_URL"),
    },
    "coingecko": {
        "plan": (("keyless", "demo", "pro"), "COINGECKO_PLAN"),
        "categories": ("names", "AITOKENS_COINGECKO_CATEGORIES"),
        "calls_per_minute": ("positive", "AITOKENS_COINGECKO_CALLS_PER_MINUTE"),
        "timeout_seconds": ("positive", "AITOKENS_COINGECKO_TIMEOUT"),
        "max_retry_seconds": ("non_negative", "AITOKENS_COINGECKO_MAX_RETRY_SECONDS"),
        "base_url": ("url", "AITOKENS_COINGECKO_URL"),
    },
    "coinmetrics": {  # issue 25: Coin Metrics' community API (no key)
        "assets": ("names", "AITOKENS_COINMETRICS_ASSETS"),
        "calls_per_minute": ("positive", "AITOKENS_COINMETRICS_CALLS_PER_MINUTE"),
        "timeout_seconds": ("positive", "AITOKENS_COINMETRICS_TIMEOUT"),
        "max_retry_seconds": ("non_negative", "AITOKENS_COINMETRICS_MAX_RETRY_SECONDS"),
        "base_url": ("url", "AITOKENS_COINMETRICS_URL"),
    },
    "coingecko_hourly": {"rolling_days": ("non_negative", "AITOKENS_HOURLY_DAYS")},
    "yahoo": {
        "tickers": ("names", "AITOKENS_YAHOO_TICKERS"),
        "calls_per_minute": ("positive", "AITOKENS_YAHOO_CALLS_PER_MINUTE"),
        "timeout_seconds": ("positive", "AITOKENS_YAHOO_TIMEOUT"),
        "max_retry_seconds": ("non_negative", "AITOKENS_YAHOO_MAX_RETRY_SECONDS"),
        "base_url": ("url", "AITOKENS_YAHOO_URL"),
    },
    "warehouse": {
        "path": ("path", "AITOKENS_DB"),
        "lock_timeout": ("non_negative", "AITOKENS_LOCK_TIMEOUT"),
    },
}

# (environment value, the config attribute it must give) for each kind of setting
ENV_VALUES = {
    "names": ("ab1usdt, CD2USDT", ("AB1USDT", "CD2USDT")),
    "positive": ("12.5", 12.5),
    "non_negative": ("7", 7.0),
    "url": ("http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/"),
}


def test_the_derived_schema_keeps_every_documented_key_and_variable():
    assert {section: dict(keys) for section, keys in schema().items()} == DOCUMENTED


VENDOR_SETTINGS = [
    (name, key, kind, var)
    for name, cls in sorted(source_classes().items())
    if name != "coingecko_hourly"
    for key, (kind, var) in cls.settings_schema.items()
    if not isinstance(kind, tuple)
]


@pytest.mark.parametrize(("source", "key", "kind", "var"), VENDOR_SETTINGS)
def test_each_variable_sets_its_field(source, key, kind, var):
    raw, expected = ENV_VALUES[kind]
    if source == "yahoo" and kind == "names":
        raw, expected = "nvda, tsm", ("NVDA", "TSM")
    if source == "coingecko" and kind == "names":
        raw, expected = "layer-1, ai", ("layer-1", "ai")
    if source == "coinmetrics" and kind == "names":
        raw, expected = "FET, wld", ("fet", "wld")  # Coin Metrics' asset ids are lower case
    config = source_classes()[source].from_env({var: raw}).config
    assert getattr(config, key) == expected


def test_the_plan_and_the_rolling_window_are_read_from_the_environment_too():
    hourly = source_classes()["coingecko_hourly"].from_env(
        {"COINGECKO_PLAN": "Keyless", "AITOKENS_HOURLY_DAYS": "30"}
    )
    assert (hourly.config.plan, hourly.config.rolling_days) == ("keyless", 30)


def test_the_file_is_read_under_the_environment(tmp_path: Path):
    path = tmp_path / "aitokens.toml"
    path.write_text('[binance]\nsymbols = ["ethusdt"]\ntimeout_seconds = 9\n', encoding="utf-8")
    binance = source_classes()["binance"]
    config = binance.from_env({"AITOKENS_CONFIG": str(path)}).config
    assert (config.symbols, config.timeout_seconds) == (("ETHUSDT",), 9.0)
    env = {"AITOKENS_CONFIG": str(path), "AITOKENS_BINANCE_SYMBOLS": "FETUSDT"}
    config = binance.from_env(env).config
    assert (config.symbols, config.timeout_seconds) == (("FETUSDT",), 9.0)


@dataclass(frozen=True)
class EchoConfig(HttpSourceConfig):
    """A vendor that adds one setting: one field, nothing else."""

    env: ClassVar[HttpEnv] = HttpEnv.prefixed("ECHO_")
    section: ClassVar[str] = "echo"
    base_url: str = "http://127.0.0.1:9/"
    calls_per_minute: float = 10.0
    channels: tuple[str, ...] = setting(("a",), "names", "ECHO_CHANNELS")

    def __post_init__(self) -> None:
        self.check_http_settings()


def test_one_field_declares_a_new_setting_everywhere():
    assert EchoConfig.settings_schema() == {
        "channels": ("names", "ECHO_CHANNELS"),
        "calls_per_minute": ("positive", "ECHO_CALLS_PER_MINUTE"),
        "timeout_seconds": ("positive", "ECHO_TIMEOUT"),
        "max_retry_seconds": ("non_negative", "ECHO_MAX_RETRY_SECONDS"),
        "base_url": ("url", "ECHO_URL"),
    }
    assert EchoConfig.env_var("channels") == "ECHO_CHANNELS"
    assert EchoConfig.settings_from_env({"ECHO_CHANNELS": "x, y,", "ECHO_TIMEOUT": "3"}) == {
        "channels": ("x", "y"),
        "timeout_seconds": 3.0,
    }
    assert EchoConfig().channels == ("a",)


def test_labels_come_from_the_registry():
    labels = {name: cls.label for name, cls in source_classes().items()}
    assert labels == {
        "binance": "the Binance API",
        "coingecko": "the CoinGecko API",
        "coingecko_hourly": "the CoinGecko API",
        "coinmetrics": "the Coin Metrics API",
        "yahoo": "Yahoo Finance",
    }
    assert vendor_label("yahoo") == "Yahoo Finance" and vendor_label("okx") == "okx"


def test_an_unknown_key_names_the_declared_ones():
    from flows.errors import ConfigError

    with pytest.raises(ConfigError, match=r"known: symbols, calls_per_minute, timeout_seconds"):
        parse_config("[binance]\nsymbol = 'x'\n")
