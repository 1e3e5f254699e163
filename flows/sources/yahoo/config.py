"""Settings of the Yahoo source: host, tickers, rate, retries, User-Agent."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.errors import (
    ConfigError,
)
from flows.sources.http import (
    RetryPolicy,
    env_float,
)
from flows.sources.yahoo import constants as C

log = logging.getLogger("aitokens.sources.yahoo")


@dataclass(frozen=True)
class YahooConfig:
    """Settings of the Yahoo source; :meth:`from_env` reads ``AITOKENS_YAHOO_*``."""

    base_url: str = C.YAHOO_URL
    tickers: tuple[str, ...] = C.DEFAULT_TICKERS
    calls_per_minute: float = C.YAHOO_CALLS_PER_MINUTE
    max_retry_seconds: float = C.DEFAULT_MAX_RETRY_SECONDS
    timeout_seconds: float = C.DEFAULT_TIMEOUT_SECONDS
    backoff_base_seconds: float = C.DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = C.DEFAULT_BACKOFF_MAX_SECONDS
    rate_window_seconds: float = 60.0  # the server counts calls per minute
    user_agent: str = C.BROWSER_USER_AGENT

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/"):
            object.__setattr__(self, "base_url", self.base_url + "/")
        object.__setattr__(
            self, "tickers", tuple(t.strip().upper() for t in self.tickers if t.strip())
        )
        if not self.calls_per_minute > 0:
            raise ConfigError(f"{C.ENV_YAHOO_CPM} must be positive, got {self.calls_per_minute}.")
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ConfigError(
                f"{C.ENV_YAHOO_TIMEOUT} must be a positive number of seconds, "
                f"got {self.timeout_seconds}."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> YahooConfig:
        """Build from ``AITOKENS_YAHOO_*`` over the settings file's ``[yahoo]`` section."""
        from flows.config import merged_settings

        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = merged_settings("yahoo", environ)
        if env.get(C.ENV_YAHOO_URL, "").strip():
            kwargs["base_url"] = env[C.ENV_YAHOO_URL].strip()
        if env.get(C.ENV_YAHOO_TICKERS, "").strip():
            kwargs["tickers"] = tuple(env[C.ENV_YAHOO_TICKERS].split(","))
        for name, attr in (
            (C.ENV_YAHOO_CPM, "calls_per_minute"),
            (C.ENV_YAHOO_MAX_RETRY, "max_retry_seconds"),
            (C.ENV_YAHOO_TIMEOUT, "timeout_seconds"),
        ):
            value = env_float(env, name)
            if value is not None:
                kwargs[attr] = value
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_retry_seconds, self.backoff_base_seconds, self.backoff_max_seconds
        )
