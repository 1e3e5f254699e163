"""Settings of the Coin Metrics source: host, assets, rate (10 calls per 6 s), retries; no key
(the community API is open)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from flows.errors import ConfigError
from flows.sources.coinmetrics import constants as C
from flows.sources.http_client import HttpEnv, HttpSourceConfig, setting

_ASSET = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class CoinMetricsConfig(HttpSourceConfig):
    """Settings of the Coin Metrics source; :meth:`from_env` reads ``AITOKENS_COINMETRICS_*``
    over the settings file's ``[coinmetrics]`` section. ``assets`` are Coin Metrics' asset ids
    (lower case, e.g. ``fet``); the warehouse stores them upper-cased as symbols."""

    env: ClassVar[HttpEnv] = HttpEnv.prefixed("AITOKENS_COINMETRICS_")
    section: ClassVar[str] = "coinmetrics"
    official_base_urls: ClassVar[tuple[str, ...]] = C.COINMETRICS_OFFICIAL_URLS

    # timeouts and retries: HttpSourceConfig
    base_url: str = C.COINMETRICS_URL
    calls_per_minute: float = C.COINMETRICS_CALLS_PER_MINUTE
    rate_window_seconds: float = C.RATE_WINDOW_SECONDS  # the server's sliding window
    assets: tuple[str, ...] = setting(C.DEFAULT_ASSETS, "names", C.ENV_COINMETRICS_ASSETS)
    page_size: int = C.PAGE_SIZE

    def __post_init__(self) -> None:
        assets = tuple(a.strip().lower() for a in self.assets if a.strip())
        for asset in assets:
            if not _ASSET.fullmatch(asset):
                raise ConfigError(
                    f"{C.ENV_COINMETRICS_ASSETS}: {asset!r} is not a Coin Metrics asset id "
                    "(letters, digits, '-' and '_', e.g. fet)."
                )
        object.__setattr__(self, "assets", assets)
        if not 1 <= int(self.page_size) <= C.PAGE_SIZE:
            raise ConfigError(f"page_size must be 1..{C.PAGE_SIZE}, got {self.page_size}.")
        self.check_http_settings()
