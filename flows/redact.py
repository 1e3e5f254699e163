"""Secrets out of every text that leaves the process: one scrubber, every encoding of a key.

A key can come back from a server in many forms: verbatim in an error body, JSON-escaped
(``"\\r"`` for a carriage return), ``repr``-escaped inside an exception text that quotes a
dict, URL-encoded in an echoed query string (``%0D``, ``+`` for a space), HTML-escaped in a
block page, and escaped twice when one of these quotes another. :class:`Scrubber` replaces
every such form with ``***``; it works on plain substrings (never a regular expression built
from the key), so a key holding regex metacharacters is matched literally.

The process keeps one registry of the secrets it holds (:func:`register_secret`; the source
configs and clients register their keys). :func:`scrub` applies it, and is what
:class:`flows.errors.SourceError` calls on every message it is built with: the one boundary
through which a text from outside reaches a log, an exception, the warehouse, Prefect, an
export or a report. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _encodings(text: str) -> set[str]:
    """The forms ``text`` takes once escaped one time: JSON, repr, URL, HTML."""
    forms = {
        json.dumps(text)[1:-1],  # \r -> \\r, non-ASCII -> \\uXXXX
        json.dumps(text, ensure_ascii=False)[1:-1],
        text.encode("unicode_escape").decode("ascii"),
        repr(text)[1:-1],
        quote(text, safe=""),
        quote(text),  # '/' kept, as in a path
        quote_plus(text),
        html.escape(text),
        html.escape(text, quote=False),
    }
    # percent-escapes in lower case (%0d): some servers and libraries write them so
    forms |= {_lower_percent(f) for f in forms if "%" in f}
    return forms


def _lower_percent(text: str) -> str:
    return _PERCENT.sub(lambda m: m.group().lower(), text)


def secret_variants(secret: str) -> tuple[str, ...]:
    """``secret`` and its forms escaped once or twice, longest first (so a longer form is
    replaced before a shorter one inside it could leave a remnant)."""
    once = _encodings(secret)
    twice = set().union(*(_encodings(form) for form in once))
    forms = {secret} | once | twice
    return tuple(sorted((f for f in forms if f), key=lambda f: (-len(f), f)))


class Scrubber:
    """Replaces secrets, in every encoding of :func:`secret_variants`, with ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = tuple(dict.fromkeys(s for s in secrets if s))
        self._forms = tuple(
            sorted(
                {form for s in self._secrets for form in secret_variants(s)},
                key=lambda f: (-len(f), f),
            )
        )

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Params without any key-like entry and with secrets scrubbed from values."""
        clean: dict[str, Any] = {}
        for name, value in params.items():
            if "key" in name.lower():
                continue
            clean[name] = self(value) if isinstance(value, str) else value
        return clean

    def exception(self, exc: BaseException) -> BaseException:
        """Scrub ``exc`` in place (its args, its ``message``, and the exceptions chained to
        it) and return it, for ``raise scrubber.exception(exc)``."""
        seen: set[int] = set()
        stack: list[BaseException] = [exc]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            try:
                node.args = tuple(self(a) if isinstance(a, str) else a for a in node.args)
                message = getattr(node, "message", None)
                if isinstance(message, str):
                    node.message = self(message)  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # an exception type with read-only fields
                pass
            stack.extend(x for x in (node.__cause__, node.__context__) if x is not None)
        return exc


_lock = threading.Lock()
_registered: tuple[str, ...] = ()
_process = Scrubber()


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` for this process's :func:`scrub` (idempotent; None/'' ignored)."""
    global _registered, _process
    if not secret:
        return
    with _lock:
        if secret in _registered:
            return
        _registered = (*_registered, secret)
        _process = Scrubber(_registered)


def forget_secrets() -> None:
    """Empty the registry (test isolation: one test's key must not mask another's texts)."""
    global _registered, _process
    with _lock:
        _registered, _process = (), Scrubber()


def scrub(text: str) -> str:
    """``text`` without any secret registered in this process, in any of its encodings."""
    return _process(text)


def process_scrubber() -> Scrubber:
    """The scrubber of every secret registered so far."""
    return _process


__all__ = [
    "MASK",
    "Scrubber",
    "forget_secrets",
    "process_scrubber",
    "register_secret",
    "scrub",
    "secret_variants",
]
