"""Settings of the Yahoo source: host, tickers, rate, retries, User-Agent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from flows.sources.http_client import HttpEnv, HttpSourceConfig, setting
from flows.sources.yahoo import constants as C

log = logging.getLogger("aitokens.sources.yahoo")


@dataclass(frozen=True)
class YahooConfig(HttpSourceConfig):
    """Settings of the Yahoo source; :meth:`from_env` reads ``AITOKENS_YAHOO_*`` over the
    settings file's ``[yahoo]`` section."""

    env: ClassVar[HttpEnv] = HttpEnv.prefixed("AITOKENS_YAHOO_")
    section: ClassVar[str] = "yahoo"
    official_base_urls: ClassVar[tuple[str, ...]] = C.YAHOO_OFFICIAL_URLS

    # timeouts and retries: HttpSourceConfig
    base_url: str = C.YAHOO_URL
    calls_per_minute: float = C.YAHOO_CALLS_PER_MINUTE
    tickers: tuple[str, ...] = setting(C.DEFAULT_TICKERS, "names", "AITOKENS_YAHOO_TICKERS")
    user_agent: str = C.BROWSER_USER_AGENT

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "tickers", tuple(t.strip().upper() for t in self.tickers if t.strip())
        )
        self.check_http_settings()
