"""Settings of the Yahoo source: host, tickers, rate, retries, User-Agent."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flows.sources.http_client import HttpEnv, HttpSourceConfig
from flows.sources.yahoo import constants as C

log = logging.getLogger("aitokens.sources.yahoo")


@dataclass(frozen=True)
class YahooConfig(HttpSourceConfig):
    """Settings of the Yahoo source; :meth:`from_env` reads ``AITOKENS_YAHOO_*``."""

    env: ClassVar[HttpEnv] = HttpEnv(
        C.ENV_YAHOO_URL, C.ENV_YAHOO_CPM, C.ENV_YAHOO_TIMEOUT, C.ENV_YAHOO_MAX_RETRY
    )
    official_base_urls: ClassVar[tuple[str, ...]] = C.YAHOO_OFFICIAL_URLS

    # timeouts and retries: HttpSourceConfig
    base_url: str = C.YAHOO_URL
    calls_per_minute: float = C.YAHOO_CALLS_PER_MINUTE
    tickers: tuple[str, ...] = C.DEFAULT_TICKERS
    user_agent: str = C.BROWSER_USER_AGENT

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "tickers", tuple(t.strip().upper() for t in self.tickers if t.strip())
        )
        self.check_http_settings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> YahooConfig:
        """Build from ``AITOKENS_YAHOO_*`` over the settings file's ``[yahoo]`` section."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = cls.file_settings("yahoo", environ)
        kwargs.update(cls.http_settings_from_env(env))
        if env.get(C.ENV_YAHOO_TICKERS, "").strip():
            kwargs["tickers"] = tuple(env[C.ENV_YAHOO_TICKERS].split(","))
        kwargs.update(overrides)
        return cls(**kwargs)
