"""The warehouse's settings as one typed object: which file, how long to wait for its lock.

Resolved once by an entry point (:class:`flows.config.Settings`: the environment, then
``aitokens.toml``'s ``[warehouse]`` section, then the defaults) and handed to the warehouse, never
exported into ``os.environ``. The CLI binds the object for the command it runs
(:func:`bound`), so the warehouse's functions that are called without a path or a timeout, deep in
a service, use the values the command resolved; called from a library or a notebook with nothing
bound, they read the environment and the defaults (:meth:`WarehouseSettings.from_environ`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from warehouse.errors import WarehouseLockedError

ENV_DB = "AITOKENS_DB"
ENV_LOCK_TIMEOUT = "AITOKENS_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WarehouseSettings:
    """``path``: the warehouse file named by ``AITOKENS_DB`` or ``[warehouse] path`` (None: the
    default rules of :data:`warehouse.paths.RESOLUTION_ORDER`); ``lock_timeout``: seconds a
    locked file is retried (``AITOKENS_LOCK_TIMEOUT``, ``[warehouse] lock_timeout``, 30)."""

    path: Path | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        file_path: Path | None = None,
        file_lock_timeout: float | None = None,
    ) -> WarehouseSettings:
        """The environment's values, else the settings file's (already validated and, for the
        path, taken from the file's folder by the caller), else the defaults."""
        env = os.environ if environ is None else environ
        named = env.get(ENV_DB, "").strip()
        path = Path(named).expanduser() if named else file_path
        raw = env.get(ENV_LOCK_TIMEOUT)
        if raw is None or not raw.strip():
            timeout = DEFAULT_LOCK_TIMEOUT_S if file_lock_timeout is None else file_lock_timeout
        else:
            try:
                timeout = float(raw)
            except ValueError:
                raise WarehouseLockedError(
                    f"{ENV_LOCK_TIMEOUT}={raw!r} is not a number of seconds"
                ) from None
        return cls(path, max(timeout, 0.0))


_BOUND: ContextVar[WarehouseSettings | None] = ContextVar("warehouse_settings", default=None)


@contextlib.contextmanager
def bound(settings: WarehouseSettings) -> Iterator[WarehouseSettings]:
    """Use ``settings`` wherever the warehouse is opened without a path or timeout, for the
    duration of the block (one CLI command); the previous binding is restored afterwards."""
    token = _BOUND.set(settings)
    try:
        yield settings
    finally:
        _BOUND.reset(token)


def current() -> WarehouseSettings:
    """The bound settings, else the environment's and the defaults."""
    settings = _BOUND.get()
    return settings if settings is not None else WarehouseSettings.from_environ()


__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "ENV_DB",
    "ENV_LOCK_TIMEOUT",
    "WarehouseSettings",
    "bound",
    "current",
]
