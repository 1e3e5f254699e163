"""The registry of price sources: every package under ``flows/sources/`` with a ``SOURCE``.

Found by walking the package, so adding a vendor edits no list here or anywhere else. Order is
by name; the CoinGecko universe is built before any source plans (see the ingest service).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import flows.sources
from flows.errors import ConfigError
from flows.sources.base import Source


@cache
def source_classes() -> dict[str, type[Source]]:
    """Every source class by its name (``coingecko``, ``yahoo``, ...)."""
    found: dict[str, type[Source]] = {}
    for info in sorted(pkgutil.iter_modules(flows.sources.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"flows.sources.{info.name}")
        source = getattr(module, "SOURCE", None)
        if isinstance(source, type) and issubclass(source, Source):
            if source.name in found:
                raise RuntimeError(f"two source packages are both named {source.name!r}")
            found[source.name] = source
    return found


def source_class(name: str) -> type[Source]:
    """The source class called ``name``; a :class:`ConfigError` listing the known ones."""
    try:
        return source_classes()[name]
    except KeyError:
        known = ", ".join(source_classes())
        raise ConfigError(f"unknown source {name!r}: use one of {known}") from None


def default_sources() -> dict[str, str]:
    """The sources a run may use unless told otherwise, with their interval."""
    return {n: cls.interval for n, cls in source_classes().items() if cls.enabled_by_default}
