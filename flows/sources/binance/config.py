"""Settings of the Binance source: host, symbols, rate, retries (no key: market data is
public)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flows.errors import ConfigError
from flows.sources.binance import constants as C
from flows.sources.http_client import HttpEnv, HttpSourceConfig

_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")


@dataclass(frozen=True)
class BinanceConfig(HttpSourceConfig):
    """Settings of the Binance source; :meth:`from_env` reads ``AITOKENS_BINANCE_*`` over the
    settings file's ``[binance]`` section. ``symbols`` are spot pairs such as ``BTCUSDT``."""

    env: ClassVar[HttpEnv] = HttpEnv(
        C.ENV_BINANCE_URL, C.ENV_BINANCE_CPM, C.ENV_BINANCE_TIMEOUT, C.ENV_BINANCE_MAX_RETRY
    )
    official_base_urls: ClassVar[tuple[str, ...]] = C.BINANCE_OFFICIAL_URLS

    # timeouts and retries: HttpSourceConfig
    base_url: str = C.BINANCE_URL
    calls_per_minute: float = C.BINANCE_CALLS_PER_MINUTE
    symbols: tuple[str, ...] = C.DEFAULT_SYMBOLS

    def __post_init__(self) -> None:
        symbols = tuple(s.strip().upper() for s in self.symbols if s.strip())
        for symbol in symbols:
            if not _SYMBOL.fullmatch(symbol):
                raise ConfigError(
                    f"{C.ENV_BINANCE_SYMBOLS}: {symbol!r} is not a Binance pair (letters and "
                    "digits, e.g. BTCUSDT)."
                )
        object.__setattr__(self, "symbols", symbols)
        self.check_http_settings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BinanceConfig:
        """Build from ``AITOKENS_BINANCE_*`` over the settings file's ``[binance]`` section;
        ``overrides`` win."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = cls.file_settings("binance", environ)
        kwargs.update(cls.http_settings_from_env(env))
        if env.get(C.ENV_BINANCE_SYMBOLS, "").strip():
            kwargs["symbols"] = tuple(env[C.ENV_BINANCE_SYMBOLS].split(","))
        kwargs.update(overrides)
        return cls(**kwargs)
