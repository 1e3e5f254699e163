"""A bounded HTTP transport: every request ends within a deadline and a body size, and a key
never follows a redirect to another host.

``requests`` alone bounds each socket read (its ``timeout``), not the request: a server that
trickles one byte a second never times out, and a gzip body of 1 MB can inflate to gigabytes
in memory. :class:`BoundedSession` is a ``requests.Session`` (so a vendor library such as
pycoingecko can be handed it as its session) whose every request:

- has a total **deadline** (connect, headers and every read of the body): the body is read
  with one ``recv`` at a time and the socket's timeout is cut to what remains before each.
  The status line and headers are read by ``http.client``, a ``recv`` at a time, so a
  watchdog shuts the socket down when the deadline passes while they are awaited (a server
  trickling its *headers* byte by byte fails at the deadline too);
- has a **maximum body size**, counted after decompression: the body is read raw and
  inflated here (gzip / deflate only) with ``max_length``, so a decompression bomb stops at
  the cap, never in memory;
- follows **redirects only on the same origin** (scheme, host and port); a redirect to
  another host is refused, so the key in the session's headers is never sent there.

Limits come from the environment (``AITOKENS_HTTP_DEADLINE``, ``AITOKENS_HTTP_MAX_BYTES``) or
are passed in. The errors are ``requests`` exceptions, so callers map them like any other:
:class:`DeadlineExceeded` is a ``requests.Timeout``; :class:`BodyTooLarge` and
:class:`RedirectRefused` are plain ``requests.RequestException``.

Base URLs: :func:`check_base_url` refuses a non-https URL except for the local host (test
fakes, a local mirror).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import socket
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from flows.errors import ConfigError

ENV_HTTP_DEADLINE = "AITOKENS_HTTP_DEADLINE"
ENV_HTTP_MAX_BYTES = "AITOKENS_HTTP_MAX_BYTES"
DEFAULT_DEADLINE_SECONDS = 120.0  # a whole request: connect, headers, body
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # decoded body; /coins/list is about 2 MB
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class DeadlineExceeded(requests.Timeout):
    """The request did not complete within its total deadline."""


class BodyTooLarge(requests.RequestException):
    """The (decoded) body is larger than the transport's maximum."""


class RedirectRefused(requests.RequestException):
    """A redirect to another origin (or too many redirects): not followed."""


@dataclass(frozen=True)
class TransportLimits:
    """Per-request bounds: total ``deadline_seconds`` and ``max_bytes`` of decoded body."""

    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = MAX_REDIRECTS

    def __post_init__(self) -> None:
        if not (self.deadline_seconds > 0 and math.isfinite(self.deadline_seconds)):
            raise ConfigError(
                f"{ENV_HTTP_DEADLINE} must be a positive number of seconds, "
                f"got {self.deadline_seconds!r}."
            )
        if self.max_bytes < 1:
            raise ConfigError(f"{ENV_HTTP_MAX_BYTES} must be positive, got {self.max_bytes!r}.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TransportLimits:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        raw = env.get(ENV_HTTP_DEADLINE, "").strip()
        if raw:
            try:
                values["deadline_seconds"] = float(raw)
            except ValueError:
                raise ConfigError(f"{ENV_HTTP_DEADLINE}={raw!r} is not a number.") from None
        raw = env.get(ENV_HTTP_MAX_BYTES, "").strip()
        if raw:
            try:
                values["max_bytes"] = int(raw)
            except ValueError:
                raise ConfigError(
                    f"{ENV_HTTP_MAX_BYTES}={raw!r} is not a whole number of bytes."
                ) from None
        return cls(**values)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def is_local_host(host: str) -> bool:
    host = host.lower().strip("[]")
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, setting: str) -> None:
    """Refuse a base URL that is not ``https://`` (the local host excepted), naming
    ``setting``: a key sent over plain http can be read by anyone on the path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{setting}={url!r} is not an http(s) URL with a host.")
    if parts.username or parts.password:
        raise ConfigError(f"{setting}: a base URL must not carry a user name or password.")
    if scheme == "http" and not is_local_host(parts.hostname):
        raise ConfigError(
            f"{setting}={url!r} uses plain http: use https (plain http is allowed only for "
            "127.0.0.1 / localhost)."
        )


# ------------------------------------------------------------------------------ watchdog
_deadline = threading.local()  # .at: the monotonic deadline of this thread's request


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread


class _Watched:
    """A connection whose wait for the status line and headers ends at the request's
    deadline: a timer shuts the socket down then (the body has its own bounded loop)."""

    sock: socket.socket | None

    def getresponse(self) -> Any:
        at = getattr(_deadline, "at", None)
        sock = self.sock
        if at is None or sock is None:
            return super().getresponse()  # type: ignore[misc]
        timer = threading.Timer(max(0.0, at - time.monotonic()), _shutdown, args=(sock,))
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            timer.cancel()


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class BoundedAdapter(HTTPAdapter):
    """``requests``' adapter on connections watched by the deadline; no hidden retries."""

    def __init__(self, pool_maxsize: int = 10) -> None:
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class BoundedSession(requests.Session):
    """A ``requests.Session`` whose requests obey :class:`TransportLimits` (see module doc)."""

    def __init__(self, limits: TransportLimits | None = None) -> None:
        super().__init__()
        self.limits = limits or TransportLimits.from_env()
        self.mount("https://", BoundedAdapter())
        self.mount("http://", BoundedAdapter())
        # Only what we can inflate with a bound here (no brotli/zstd decoders underneath).
        self.headers["Accept-Encoding"] = "gzip, deflate"

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        limits = self.limits
        deadline = time.monotonic() + limits.deadline_seconds
        kwargs["stream"] = True
        kwargs["allow_redirects"] = False
        timeout = kwargs.get("timeout")
        url = url.decode() if isinstance(url, bytes) else url
        start = origin(url)
        for _ in range(limits.max_redirects + 1):
            kwargs["timeout"] = _cut_timeout(timeout, _remaining(deadline, url))
            _deadline.at = deadline
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.ConnectionError:
                if time.monotonic() >= deadline - 0.01:
                    raise DeadlineExceeded(
                        f"request deadline passed while {_where(url)} sent its headers"
                    ) from None
                raise
            finally:
                _deadline.at = None
            if not response.is_redirect:
                _read_body(response, deadline, limits.max_bytes)
                return response
            target = urljoin(response.url, response.headers.get("location", ""))
            response.close()
            if origin(target) != start:
                raise RedirectRefused(
                    f"redirect to another host ({_where(target)}) refused: the request's key "
                    "is never sent to another host",
                    response=response,
                )
            url = target
            kwargs.pop("params", None)  # the Location carries its own query
        raise RedirectRefused(f"more than {limits.max_redirects} redirects")


def _where(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _remaining(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"request deadline passed before {_where(url)} answered")
    return left


def _cut_timeout(timeout: Any, remaining: float) -> Any:
    """The caller's (connect, read) timeout, each cut to what remains of the deadline."""
    if timeout is None:
        return (remaining, remaining)
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (
            remaining if connect is None else min(connect, remaining),
            remaining if read is None else min(read, remaining),
        )
    return (min(float(timeout), remaining), min(float(timeout), remaining))


def _socket(response: requests.Response) -> Any:
    """The socket under a streamed response, when urllib3 exposes it (else None)."""
    connection = getattr(response.raw, "_connection", None)
    return getattr(connection, "sock", None)


class _Inflater:
    """gzip / deflate decoding that never produces more than it is allowed to: each call
    inflates at most ``room`` bytes (zlib's ``max_length``), keeping the rest of the input
    for later; concatenated gzip members (RFC 1952 allows them) are decoded one after another.
    """

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        self._pending = b""

    def feed(self, data: bytes, room: int) -> bytes:
        """Inflate ``data`` (plus what was kept) into at most ``room`` bytes (and one more,
        so the caller sees the cap passed)."""
        self._pending += data
        out = bytearray()
        while self._pending and len(out) <= room:
            chunk = self._z.decompress(self._pending, room + 1 - len(out))
            out += chunk
            if self._z.eof:
                rest = self._z.unused_data
                self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)
                self._pending = rest
            else:
                self._pending = self._z.unconsumed_tail
                if not chunk:
                    break  # needs more input
        return bytes(out)

    def finish(self, room: int) -> bytes:
        return self._z.flush(max(1, room + 1))


def _decoder(response: requests.Response) -> _Inflater | None:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater()
    raise BodyTooLarge(f"unsupported Content-Encoding {encoding!r} (asked for gzip or deflate)")


def _read_body(response: requests.Response, deadline: float, max_bytes: int) -> None:
    """Read and decode the body into ``response._content`` within the deadline and size."""
    raw = response.raw
    decoder = _decoder(response)
    sock = _socket(response)
    read_timeout = sock.gettimeout() if sock is not None else None
    body = bytearray()
    too_large = f"body larger than {max_bytes:,} bytes (raise {ENV_HTTP_MAX_BYTES} if expected)"
    try:
        while True:
            left = _remaining(deadline, response.url)
            if sock is not None:
                sock.settimeout(left if read_timeout is None else min(read_timeout, left))
            try:
                chunk = raw.read1(READ_CHUNK, decode_content=False)
            except Exception as exc:  # urllib3's ReadTimeoutError and the like
                if time.monotonic() >= deadline - 0.01:
                    raise DeadlineExceeded(
                        f"request deadline passed while reading {_where(response.url)}"
                    ) from None
                if "timed out" in str(exc).lower():
                    raise requests.ReadTimeout(str(exc)) from None
                raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from None
            if not chunk:
                break
            if decoder is None:
                body += chunk
            else:
                try:
                    body += decoder.feed(chunk, max_bytes - len(body))
                except zlib.error as exc:
                    raise requests.exceptions.ContentDecodingError(
                        f"compressed body is damaged ({exc})"
                    ) from None
            if len(body) > max_bytes:
                raise BodyTooLarge(too_large)
        if decoder is not None:
            body += decoder.finish(max_bytes - len(body))
            if len(body) > max_bytes:
                raise BodyTooLarge(too_large)
    except BaseException:
        response.close()
        raise
    if sock is not None:
        sock.settimeout(read_timeout)
    response._content = bytes(body)
    response._content_consumed = True
    raw.release_conn()  # the whole body is in memory: the connection can serve the next call


__all__ = [
    "BodyTooLarge",
    "BoundedAdapter",
    "BoundedSession",
    "DeadlineExceeded",
    "ENV_HTTP_DEADLINE",
    "ENV_HTTP_MAX_BYTES",
    "RedirectRefused",
    "TransportLimits",
    "check_base_url",
    "is_local_host",
    "origin",
]
