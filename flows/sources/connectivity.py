"""Can we reach each source at all? A DNS lookup and a TCP connect per host, a few seconds.

Without this, a machine with no network spent each call's whole retry budget (minutes) before
failing. The check runs before an ingest: a source whose host cannot be reached is left out of
the run with the reason (the others still run: a CoinGecko outage does not stop Yahoo), and
when none can be reached the run stops at once with
``no network: cannot reach the CoinGecko API at api.coingecko.com (DNS failed)``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flows.errors import SourceError

DEFAULT_TIMEOUT_S = 3.0


def vendor_label(source: str) -> str:
    """How the messages name a source's API: its registered ``label`` (the name otherwise)."""
    from flows.sources.registry import source_classes

    cls = source_classes().get(source)
    return getattr(cls, "label", source) if cls is not None else source


class NoNetworkError(SourceError):
    """No source of the run can be reached (DNS or TCP failed for every host)."""


@dataclass(frozen=True)
class Unreachable:
    """One source that failed the check: who, where, and why in two or three words."""

    source: str
    host: str
    reason: str

    def describe(self) -> str:
        label = vendor_label(self.source)
        return f"cannot reach {label} at {self.host} ({self.reason})"


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


def _probe(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout``; else the reason."""
    deadline = time.monotonic() + timeout
    # getaddrinfo has no timeout of its own: ask in a daemon thread and stop waiting for it.
    answer: list[Any] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            answer.append(exc)

    thread = threading.Thread(target=lookup, name=f"dns-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        return f"DNS timed out after {timeout:g} s"
    if isinstance(answer[0], socket.gaierror):
        return "DNS failed"
    if isinstance(answer[0], OSError):
        return f"DNS failed: {answer[0].strerror or answer[0]}"
    addresses = answer[0]
    reason = "no address"
    for family, kind, proto, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"TCP connect timed out after {timeout:g} s"
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(remaining)
                sock.connect(address)
            return None
        except TimeoutError:
            reason = f"TCP connect timed out after {timeout:g} s"
        except ConnectionRefusedError:
            reason = "connection refused"
        except OSError as exc:
            reason = exc.strerror.lower() if exc.strerror else type(exc).__name__
    return reason


def unreachable_sources(
    base_urls: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT_S
) -> list[Unreachable]:
    """The sources (name -> base URL) whose host fails the check; each host is probed once,
    all hosts at the same time, so the whole check takes at most ``timeout`` seconds."""
    hosts = {name: _host_port(url) for name, url in base_urls.items()}
    distinct = sorted(set(hosts.values()))
    with ThreadPoolExecutor(max_workers=max(len(distinct), 1)) as pool:
        found = pool.map(lambda hp: _probe(hp[0], hp[1], timeout), distinct)
        reasons = dict(zip(distinct, found, strict=True))
    failures = []
    for name, hp in hosts.items():
        reason = reasons[hp]
        if reason is not None:
            failures.append(Unreachable(name, hp[0], reason))
    return failures


def no_network_message(failures: list[Unreachable]) -> str:
    """``no network: cannot reach ... (DNS failed); cannot reach ...`` (one per host)."""
    seen: dict[str, str] = {}
    for failure in failures:
        seen.setdefault(vendor_label(failure.source), failure.describe())
    return "no network: " + "; ".join(seen.values()) + "; check the connection and retry"
