"""The optional settings file ``aitokens.toml``; environment variables override it.

Where: ``$AITOKENS_CONFIG`` (must exist), else the nearest ``aitokens.toml`` in the current
folder or a parent (its folder is the project root, whose ``data/aitokens.duckdb`` is the default
warehouse), else ``$AITOKENS_HOME/aitokens.toml``, else no file.

```toml
[coingecko]
plan = "demo"                 # keyless | demo | pro  (COINGECKO_PLAN wins)
calls_per_minute = 30         # AITOKENS_COINGECKO_CALLS_PER_MINUTE wins
categories = ["artificial-intelligence"]
timeout_seconds = 30          # per read (AITOKENS_HTTP_DEADLINE bounds a whole request)
max_retry_seconds = 300       # total retrying of one request
# base_url = "https://mirror.example/api/v3/"  # not CoinGecko's own: needs
#                               AITOKENS_ALLOW_CONFIG_BASE_URL=1 in the environment; https only

[yahoo]
tickers = ["NVDA", "AMD", "SPY", "QQQ"]
calls_per_minute = 60
timeout_seconds = 30
max_retry_seconds = 300

[warehouse]
path = "data/aitokens.duckdb" # AITOKENS_DB / --db win
lock_timeout = 30             # AITOKENS_LOCK_TIMEOUT wins
```

:meth:`Settings.resolve` reads the file once and, with the environment over it and the defaults
under it, gives the typed :class:`Settings` of a command (the CLI keeps it on its click context;
nothing is exported into ``os.environ``). Vendor settings are declared once, as fields of each
source's config dataclass (:func:`flows.sources.http_client.setting`), from which
:func:`schema` is derived.

API keys are never read from the file (it gets copied, committed and shared): a key there is
an error that says to use ``COINGECKO_API_KEY`` or a Prefect Secret block instead
(:mod:`flows.secrets`). Every problem is a :class:`~flows.errors.ConfigError` naming the file
(and the line, for TOML syntax), which the CLI prints as one ``Error:`` line with exit code 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.errors import ConfigError
from warehouse.paths import ENV_HOME, find_config_file
from warehouse.settings import ENV_DB, ENV_LOCK_TIMEOUT, WarehouseSettings

ENV_CONFIG = "AITOKENS_CONFIG"
ENV_COINGECKO_KEY = "COINGECKO_API_KEY"  # named in the message that refuses a key in the file
DEFAULT_CONFIG_NAME = "aitokens.toml"

Kind = str | tuple[str, ...]  # "positive", "non_negative", "names", "url", "path", or choices

# The warehouse's own section; each source declares its own (Source.settings_schema).
WAREHOUSE_SCHEMA: dict[str, tuple[Kind, str | None]] = {
    "path": ("path", ENV_DB),
    "lock_timeout": ("non_negative", ENV_LOCK_TIMEOUT),
}


def schema() -> dict[str, Mapping[str, tuple[Kind, str | None]]]:
    """section -> key -> (kind, environment variable that overrides it): every registered
    source's section, then ``[warehouse]``."""
    from flows.sources.registry import source_classes

    sections: dict[str, Mapping[str, tuple[Kind, str | None]]] = {
        cls.settings_section: cls.settings_schema for cls in source_classes().values()
    }
    sections["warehouse"] = WAREHOUSE_SCHEMA
    return sections


_SECRET_KEY = re.compile(r"(api[_-]?)?key|secret|token|password", re.IGNORECASE)
_TOML_POSITION = re.compile(r"\(at line (?P<line>\d+), column (?P<col>\d+)\)")


@dataclass(frozen=True)
class FileConfig:
    """The validated contents of the settings file (empty sections when there is none)."""

    path: Path | None = None
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    @property
    def warehouse(self) -> dict[str, Any]:
        return self.section("warehouse")

    @property
    def label(self) -> str:
        return self.path.name if self.path else "settings"


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$AITOKENS_CONFIG`` (which must exist), else the nearest ``aitokens.toml`` in the
    current folder or a parent (the project root), else ``$AITOKENS_HOME/aitokens.toml``."""
    env = os.environ if environ is None else environ
    named = env.get(ENV_CONFIG, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_CONFIG}={named}: no such file")
        return path
    found = find_config_file()
    if found is not None:
        return found
    home = env.get(ENV_HOME, "").strip()
    in_home = Path(home).expanduser() / DEFAULT_CONFIG_NAME if home else None
    return in_home if in_home is not None and in_home.is_file() else None


def load_config(environ: Mapping[str, str] | None = None) -> FileConfig:
    """Read and validate the settings file; an empty :class:`FileConfig` when there is none."""
    path = config_path(environ)
    if path is None:
        return FileConfig()
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None = None) -> FileConfig:
    """Validate TOML text against :func:`schema`; raise ``ConfigError`` on the first problem."""
    known = schema()
    label = path.name if path else DEFAULT_CONFIG_NAME
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(label, str(exc))) from None
    except RecursionError:  # tomllib recurses per nesting level: `a = [[[[...]]]]` 5,000 deep
        raise ConfigError(
            f"{label}: arrays or tables nested too deeply to read; a settings file needs at "
            "most two levels (see docs: aitokens.toml)"
        ) from None
    sections: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        where = f"{label} [{name}]"
        if _SECRET_KEY.search(name):
            raise ConfigError(_no_secrets(f"{label}: {name}"))
        if name not in known:
            raise ConfigError(
                f"{label}: unknown section [{name}]; known: {', '.join(f'[{s}]' for s in known)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: {name} must be a section ([{name}]), not a value")
        values = {}
        for key, value in table.items():
            if _SECRET_KEY.search(key):
                raise ConfigError(_no_secrets(f"{where} {key}"))
            if key not in known[name]:
                raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(known[name])}")
            kind, _ = known[name][key]
            values[key] = _check(f"{where} {key}", kind, value, key)
        sections[name] = values
    return FileConfig(path, sections)


def _toml_error(label: str, message: str) -> str:
    match = _TOML_POSITION.search(message)
    reason = _TOML_POSITION.sub("", message).strip().rstrip(".")
    if match:
        return (
            f"{label} line {match['line']}: {reason} (column {match['col']}); "
            "fix the TOML syntax (https://toml.io)"
        )
    return f"{label}: {reason}; fix the TOML syntax (https://toml.io)"


def _no_secrets(where: str) -> str:
    return (
        f"{where}: API keys are never read from the settings file; remove it and set "
        f"{ENV_COINGECKO_KEY} in the environment or store it in a Prefect Secret block "
        "(see flows/secrets.py)"
    )


def _check(where: str, kind: Kind, value: Any, key: str) -> Any:
    if isinstance(kind, tuple):
        choice = value.strip().lower() if isinstance(value, str) else value
        if choice not in kind:
            raise ConfigError(f"{where} = {value!r} is not a {key}; use one of {', '.join(kind)}")
        return choice
    if kind in ("positive", "non_negative"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ConfigError(f"{where} = {value!r} is not a number")
        if value == float("inf") or (value <= 0 if kind == "positive" else value < 0):
            rule = "positive" if kind == "positive" else "zero or more"
            raise ConfigError(f"{where} = {value!r} must be a finite number, {rule}")
        return float(value)
    if kind == "names":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ConfigError(f'{where} must be a list of names, e.g. ["a", "b"]')
        names = tuple(v.strip() for v in items if v.strip())
        if not names:
            raise ConfigError(f"{where} is empty")
        return names
    if kind in ("url", "path"):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where} must be a non-empty string")
        return value.strip()
    raise AssertionError(kind)


def merged_settings(section: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file's values of ``section`` for keys whose environment variable is unset.

    Sources call this from ``from_env``; the environment (read there) then wins.
    """
    env = os.environ if environ is None else environ
    return _not_overridden(load_config(environ), section, env)


def _not_overridden(config: FileConfig, section: str, env: Mapping[str, str]) -> dict[str, Any]:
    known = schema()[section]
    return {
        k: v
        for k, v in config.section(section).items()
        if not (known[k][1] and env.get(str(known[k][1]), "").strip())
    }


def warehouse_settings(config: FileConfig, environ: Mapping[str, str]) -> WarehouseSettings:
    """``AITOKENS_DB`` / ``AITOKENS_LOCK_TIMEOUT``, else ``[warehouse] path`` / ``lock_timeout``
    of ``config`` (a relative path is taken from the file's folder), else the defaults."""
    values = config.warehouse
    file_path = None
    if "path" in values:
        file_path = Path(values["path"]).expanduser()
        if not file_path.is_absolute() and config.path is not None:
            file_path = config.path.parent / file_path
    return WarehouseSettings.from_environ(
        environ, file_path=file_path, file_lock_timeout=values.get("lock_timeout")
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of one command or run, resolved once: the environment, then
    ``aitokens.toml``, then the defaults. Passed explicitly (the CLI keeps it on its click
    context and binds :attr:`warehouse` for the command); nothing is written to ``os.environ``.

    ``environ`` holds the variables of :func:`schema` as they were when resolved (never a key
    or any other variable): :meth:`section` weighs the file's values against them, so every
    part of the run sees the same precedence.
    """

    file: FileConfig = field(default_factory=FileConfig)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings file once (a bad file is a ``ConfigError``)."""
        env = os.environ if environ is None else environ
        config = load_config(env)
        names = {var for keys in schema().values() for _, var in keys.values() if var}
        return cls(
            file=config,
            environ={name: env[name] for name in sorted(names) if name in env},
            warehouse=warehouse_settings(config, env),
        )

    def section(self, name: str) -> dict[str, Any]:
        """The file's values of ``[name]`` for keys whose environment variable is unset."""
        return _not_overridden(self.file, name, self.environ)


__all__ = [
    "ENV_CONFIG",
    "FileConfig",
    "Settings",
    "schema",
    "warehouse_settings",
    "config_path",
    "load_config",
    "merged_settings",
    "parse_config",
]
