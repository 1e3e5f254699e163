"""Where the CoinGecko API key comes from: the environment, else a Prefect Secret block.

1. ``COINGECKO_API_KEY`` in the environment (a shell, a systemd unit, a CI secret);
2. else the Prefect ``Secret`` block named by ``AITOKENS_COINGECKO_SECRET_BLOCK`` (default
   ``coingecko-api-key``), when a Prefect API is configured (``PREFECT_API_URL``): the way a
   deployment served by ``aitokens serve`` gets its key without a variable on the worker.
   Create it once with ``prefect block create secret`` or
   ``Secret(value="...").save("coingecko-api-key")``.

Never from the settings file (see :mod:`flows.config`), never from a flow parameter. The key
is returned to the caller and nowhere else: nothing here logs it, and a lookup failure is
reported without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, cast

from flows.errors import ConfigError
from flows.redact import register_secret
from flows.sources.coingecko import constants as C

log = logging.getLogger("aitokens.secrets")

ENV_SECRET_BLOCK = "AITOKENS_COINGECKO_SECRET_BLOCK"
DEFAULT_SECRET_BLOCK = "coingecko-api-key"


def secret_block_name(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(ENV_SECRET_BLOCK, "").strip() or DEFAULT_SECRET_BLOCK


def prefect_api_configured() -> bool:
    """True when a Prefect API URL is set (env or a Prefect profile/test harness).

    Without one, Prefect would start a temporary server just to look a block up (~15 s), and
    that server holds no blocks anyway: skip.
    """
    try:
        from prefect.settings import get_current_settings
    except ImportError:  # pragma: no cover - prefect is a dependency
        return False
    return bool(get_current_settings().api.url)


def key_from_secret_block(name: str) -> str | None:
    """The value of the Prefect Secret block ``name``, None when it does not exist.

    An unreachable API or a block of another type is a :class:`ConfigError` naming the block
    (never its value).
    """
    from prefect.blocks.system import Secret

    try:
        # Prefect's sync-compatible loader: ``_sync=True`` returns the block, not a coroutine.
        block: Any = cast(Any, Secret).load(name, _sync=True)
    except ValueError as exc:
        if "Unable to find block document" in str(exc) or "not found" in str(exc).lower():
            return None
        raise ConfigError(f"Prefect block {name!r} is not a Secret block: {exc}") from None
    except Exception as exc:  # httpx errors, server down: say which block, not the key
        raise ConfigError(
            f"cannot read the Prefect Secret block {name!r} ({type(exc).__name__}); check "
            f"PREFECT_API_URL or set {C.ENV_COINGECKO_KEY} instead"
        ) from None
    value = block.get()
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"Prefect Secret block {name!r} holds no text key")
    return value.strip()


def resolve_coingecko_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The CoinGecko key: ``COINGECKO_API_KEY``, else the Secret block, else None."""
    env = os.environ if environ is None else environ
    register_secret(env.get(C.ENV_COINGECKO_KEY))  # as given, and stripped below
    key = env.get(C.ENV_COINGECKO_KEY, "").strip()
    if key:
        register_secret(key)
        return key
    if not prefect_api_configured():
        return None
    name = secret_block_name(env)
    found = key_from_secret_block(name)
    register_secret(found)
    if found:
        log.info("CoinGecko API key read from the Prefect Secret block %r", name)
    return found


__all__ = [
    "DEFAULT_SECRET_BLOCK",
    "ENV_SECRET_BLOCK",
    "key_from_secret_block",
    "prefect_api_configured",
    "resolve_coingecko_key",
    "secret_block_name",
]
