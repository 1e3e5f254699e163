"""Settings of the CoinGecko source: plan, key (never shown), host, rate, retries, categories."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flows.errors import (
    BadApiKeyError,
    ConfigError,
)
from flows.redact import register_secret
from flows.sources.coingecko import constants as C
from flows.sources.http_client import HttpEnv, HttpSourceConfig, setting

log = logging.getLogger("aitokens.sources.coingecko")


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class CoinGeckoConfig(HttpSourceConfig):
    """Settings of the CoinGecko source; :meth:`from_env` reads them from the environment.

    ``plan`` is ``keyless``, ``demo`` or ``pro`` (``COINGECKO_PLAN``; default ``demo`` when a
    key is set, else ``keyless``); ``api_key`` comes from ``COINGECKO_API_KEY`` and is never
    shown by ``repr``. ``base_url`` (``AITOKENS_COINGECKO_URL``) overrides the plan's host, e.g.
    for a mirror or a test fake. ``calls_per_minute`` defaults to the plan's figure in
    :mod:`flows.sources.coingecko.constants`; ``history_days`` to the plan's history cap
    (None: no cap).
    """

    env: ClassVar[HttpEnv] = HttpEnv.prefixed("AITOKENS_COINGECKO_")
    section: ClassVar[str] = "coingecko"
    official_base_urls: ClassVar[tuple[str, ...]] = (C.COINGECKO_PUBLIC_URL, C.COINGECKO_PRO_URL)

    # base_url, calls_per_minute, timeouts and retries: HttpSourceConfig (None: the plan's)
    plan: str = setting("keyless", C.PLANS, C.ENV_COINGECKO_PLAN)
    api_key: str | None = field(default=None, repr=False)  # never a setting of the file
    categories: tuple[str, ...] = setting(
        C.DEFAULT_CATEGORIES, "names", "AITOKENS_COINGECKO_CATEGORIES"
    )
    history_days: int | None = -1  # -1: the plan's cap
    per_page: int = C.MARKETS_PER_PAGE

    def __post_init__(self) -> None:
        if self.plan not in C.PLANS:
            raise ConfigError(
                f"{C.ENV_COINGECKO_PLAN}={self.plan!r} is not a plan; use one of "
                f"{', '.join(C.PLANS)}."
            )
        register_secret(self.api_key)  # scrubbed from every source error from now on
        key = (self.api_key or "").strip() or None
        register_secret(key)
        if self.plan != "keyless" and key is None:
            raise BadApiKeyError(
                f"{C.ENV_COINGECKO_PLAN}={self.plan} needs an API key: set {C.ENV_COINGECKO_KEY} "
                f"or a Prefect Secret block (see flows/secrets.py), or {C.ENV_COINGECKO_PLAN}="
                "keyless."
            )
        if self.plan == "keyless":
            key = None  # a keyless plan sends no key even if one is set
        object.__setattr__(self, "api_key", key)
        # the trailing slash (check_http_settings): pycoingecko concatenates paths onto it
        object.__setattr__(self, "base_url", self.base_url or C.PLAN_BASE_URL[self.plan])
        if self.calls_per_minute is None:
            object.__setattr__(self, "calls_per_minute", C.PLAN_CALLS_PER_MINUTE[self.plan])
        if self.history_days == -1:
            object.__setattr__(self, "history_days", C.PLAN_HISTORY_DAYS[self.plan])
        self.check_http_settings()
        object.__setattr__(self, "categories", tuple(self.categories))

    def __repr__(self) -> str:
        key = "***" if self.api_key else None
        return (
            f"CoinGeckoConfig(plan={self.plan!r}, api_key={key!r}, base_url={self.base_url!r}, "
            f"calls_per_minute={self.calls_per_minute}, history_days={self.history_days}, "
            f"categories={self.categories!r})"
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> CoinGeckoConfig:
        """Build from ``COINGECKO_*`` / ``AITOKENS_COINGECKO_*`` variables over the settings
        file's ``[coingecko]`` section (:mod:`flows.config`); ``overrides`` win.

        The key comes from ``COINGECKO_API_KEY`` or a Prefect Secret block
        (:mod:`flows.secrets`), never from the file.
        """
        from flows.config import load_config
        from flows.secrets import resolve_coingecko_key, secret_block_name

        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = cls.file_settings(cls.section, environ)
        key = resolve_coingecko_key(environ)
        from_env = cls.settings_from_env(env)
        env_plan = from_env.pop("plan", "")
        file_plan = kwargs.pop("plan", None)
        plan = env_plan or file_plan or ("demo" if key else "keyless")
        if not env_plan and file_plan and file_plan != "keyless" and not key:
            label = load_config(environ).label
            raise BadApiKeyError(
                f"{label} [coingecko] plan = {file_plan!r} needs an API key: set "
                f"{C.ENV_COINGECKO_KEY} or store it in the Prefect Secret block "
                f'{secret_block_name(environ)!r} (or set plan = "keyless").'
            )
        kwargs.update({"plan": plan, "api_key": key})
        kwargs.update(from_env)
        kwargs.update(overrides)
        return cls(**kwargs)
