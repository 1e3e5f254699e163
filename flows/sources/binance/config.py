"""Settings of the Binance source: host, symbols, rate, retries (no key: market data is
public)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from flows.errors import ConfigError
from flows.sources.binance import constants as C
from flows.sources.http_client import HttpEnv, HttpSourceConfig, setting

_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")


@dataclass(frozen=True)
class BinanceConfig(HttpSourceConfig):
    """Settings of the Binance source; :meth:`from_env` reads ``AITOKENS_BINANCE_*`` over the
    settings file's ``[binance]`` section. ``symbols`` are spot pairs such as ``BTCUSDT``."""

    env: ClassVar[HttpEnv] = HttpEnv.prefixed("AITOKENS_BINANCE_")
    section: ClassVar[str] = "binance"
    official_base_urls: ClassVar[tuple[str, ...]] = C.BINANCE_OFFICIAL_URLS

    # timeouts and retries: HttpSourceConfig
    base_url: str = C.BINANCE_URL
    calls_per_minute: float = C.BINANCE_CALLS_PER_MINUTE
    symbols: tuple[str, ...] = setting(C.DEFAULT_SYMBOLS, "names", "AITOKENS_BINANCE_SYMBOLS")

    def __post_init__(self) -> None:
        symbols = tuple(s.strip().upper() for s in self.symbols if s.strip())
        for symbol in symbols:
            if not _SYMBOL.fullmatch(symbol):
                raise ConfigError(
                    f"{self.env_var('symbols')}: {symbol!r} is not a Binance pair (letters and "
                    "digits, e.g. BTCUSDT)."
                )
        object.__setattr__(self, "symbols", symbols)
        self.check_http_settings()
