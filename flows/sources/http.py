"""HTTP plumbing shared by the sources: rate limiter, retry loop, secret scrubbing.

Nothing here knows a vendor's payloads. :class:`flows.sources.http_client.HttpClient` builds
the one client base on these pieces; each vendor's package turns answers into typed errors and
tidy frames.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from flows.errors import SourceError
from flows.redact import Scrubber  # noqa: F401  (re-exported: the sources' one scrubber)

log = logging.getLogger("aitokens.sources")

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRY_SECONDS = 300.0  # total time one request may spend retrying
DEFAULT_BACKOFF_BASE_SECONDS = 1.0
DEFAULT_BACKOFF_MAX_SECONDS = 60.0
# The limiter spaces calls for this share of the configured rate, so that request jitter
# never pushes a sliding one-minute window over the server's limit (>= 90% busy is the goal).
RATE_HEADROOM = 0.95

T = TypeVar("T")


class ExchangeCallback(Protocol):
    """Receives every HTTP answer, e.g. to write ``raw_responses``.

    ``params`` never holds a secret and ``body`` has any key scrubbed. Only answers are
    reported: a timeout or refused connection has no status and no body.
    """

    def __call__(
        self, endpoint: str, params: Mapping[str, Any], status: int, body: str
    ) -> None: ...


class RateLimiter:
    """Evenly spaced calls, never more than the quota in any window; thread-safe.

    Each :meth:`acquire` reserves the next free slot under a lock and sleeps outside it, so N
    threads together start one call every ``60 / calls_per_minute`` seconds; after an idle
    spell the next call goes at once (a token bucket of capacity one).

    Spacing alone fails a server's sliding window when a thread wakes late (a loaded machine)
    and the calls after it keep their slots. So the limiter also remembers when the last
    ``cap = ceil(calls_per_minute * window / 60)`` calls actually started and never starts a
    call less than ``window`` seconds after the one ``cap`` calls earlier. :meth:`pause_until`
    pushes every later slot back: how one thread's ``Retry-After`` holds all threads.
    """

    def __init__(
        self,
        calls_per_minute: float,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._ticket = 0
        self._starts: dict[int, float] = {}
        self.calls = 0
        self.waited = 0.0
        self.set_rate(calls_per_minute, window_seconds)

    @property
    def calls_per_minute(self) -> float:
        return self._cpm

    @property
    def window_seconds(self) -> float:
        return self._window

    @property
    def interval(self) -> float:
        return self._interval

    def set_rate(self, calls_per_minute: float, window_seconds: float | None = None) -> None:
        """Change the rate (and window); later reservations follow it."""
        if not calls_per_minute > 0:
            raise ValueError(f"calls_per_minute must be positive, got {calls_per_minute!r}.")
        with self._lock:
            self._cpm = float(calls_per_minute)
            self._interval = 60.0 / self._cpm
            if window_seconds is not None:
                if not window_seconds > 0:
                    raise ValueError(f"window_seconds must be positive, got {window_seconds!r}.")
                self._window = float(window_seconds)
            self._cap = max(1, math.ceil(self._cpm * self._window / 60.0 - 1e-9))

    def acquire(self) -> float:
        """Wait for the next slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            ticket = self._ticket
            self._ticket += 1
            slot = max(now, self._next)
            earlier = self._starts.pop(ticket - self._cap, None)
            if earlier is not None:
                slot = max(slot, earlier + self._window)
            self._next = slot + self._interval
            self._starts[ticket] = slot
            self.calls += 1
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
            woke = self._clock()
            with self._lock:
                self.waited += wait
                if ticket in self._starts:
                    self._starts[ticket] = max(slot, woke)
        return max(wait, 0.0)

    def pause_until(self, when: float) -> None:
        """Let no call start before ``when`` (a ``clock()`` time)."""
        with self._lock:
            self._next = max(self._next, when)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self._clock() + seconds)


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(
    base_url: str, calls_per_minute: float, window_seconds: float = 60.0
) -> RateLimiter:
    """The one limiter of this process for a host (scheme + host + port of ``base_url``).

    Every client of the same host shares it, whatever thread it runs in, so the process as a
    whole keeps to the host's quota. The effective rate is ``calls_per_minute * RATE_HEADROOM``
    and follows the latest value asked for.
    """
    parts = urlsplit(base_url)
    key = f"{parts.scheme}://{parts.netloc}"
    rate = calls_per_minute * RATE_HEADROOM
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(rate, window_seconds=window_seconds)
    if limiter.calls_per_minute != rate or limiter.window_seconds != window_seconds:
        limiter.set_rate(rate, window_seconds)
    return limiter


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how to retry: exponential backoff with jitter, bounded in total time.

    Attempt ``n`` (1-based) that fails with a retryable error and no ``Retry-After`` waits
    ``min(max_seconds, base * 2**(n-1))`` scaled by a uniform factor in [0.5, 1]. A request gives
    up as soon as the next wait would end past ``max_retry_seconds`` after its first attempt.
    """

    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    base_seconds: float = DEFAULT_BACKOFF_BASE_SECONDS
    max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * (rng or random).random())


def call_with_retries(
    attempt: Callable[[], T],
    *,
    policy: RetryPolicy,
    limiter: RateLimiter,
    what: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt`` until it returns, retrying :class:`SourceError` s marked retryable.

    Every attempt first takes a slot from ``limiter``. A ``Retry-After`` pauses the whole
    limiter (all threads of the process); other retryable errors back off in this thread only.
    Non-retryable errors propagate at once; a retryable one propagates, with the number of
    attempts in its message, once the next wait would overrun ``policy.max_retry_seconds``.
    """
    started = clock()
    n = 0
    while True:
        limiter.acquire()
        n += 1
        try:
            return attempt()
        except SourceError as exc:
            if not exc.retryable:
                raise
            delay = exc.retry_after if exc.retry_after is not None else policy.backoff(n)
            elapsed = clock() - started
            if elapsed + delay > policy.max_retry_seconds:
                raise exc.gave_up(n, elapsed) from exc.__cause__
            log.warning("%s: %s; retry %d in %.2f s", what, exc, n, delay)
            if exc.retry_after is not None:
                limiter.pause_for(delay)
            else:
                sleep(delay)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def looks_like_html(content_type: str | None, body: str) -> bool:
    """True for an HTML page (by Content-Type or by its first characters)."""
    if content_type and "html" in content_type.lower():
        return True
    return body.lstrip()[:1] == "<"  # JSON never starts with '<'


def one_line(text: str, limit: int = 200) -> str:
    """The first ``limit`` characters of ``text`` on one line (for error messages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


MAX_PAGES = 400  # 100,000 rows at 250 a page: far beyond any category CoinGecko lists


def paginate(
    fetch_page: Callable[[int], list[T]],
    per_page: int,
    first_page: int = 1,
    *,
    max_pages: int = MAX_PAGES,
    what: str = "pages",
) -> Iterator[list[T]]:
    """Yield pages ``first_page, first_page + 1, ...`` until a short (or empty) page.

    A full last page costs one extra call that returns ``[]``: the API gives no total count.
    A server that ignores the page number would answer full pages forever, so a page equal to
    the one before stops with :class:`UpstreamError` (a loop), and so does a page past
    ``max_pages`` (``what`` names the endpoint in those messages).
    """
    from flows.errors import UpstreamError

    page = first_page
    previous: list[T] | None = None
    while True:
        if page - first_page >= max_pages:
            raise UpstreamError(
                f"{what}: more than {max_pages} full pages of {per_page}; stopped (the server "
                "keeps answering full pages)",
                endpoint=what,
            )
        rows = fetch_page(page)
        if rows and rows == previous:
            raise UpstreamError(
                f"{what}: page {page} repeats page {page - 1}; stopped (the server ignores "
                "the page number, so paging would never end)",
                endpoint=what,
            )
        if rows:
            yield rows
        if len(rows) < per_page:
            return
        previous = rows
        page += 1


def env_float(env: Mapping[str, str], name: str) -> float | None:
    """A setting from the environment as a finite number >= 0, None when unset; a clear
    :class:`ConfigError` naming the variable otherwise."""
    from flows.errors import ConfigError

    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={raw!r} must be a finite number, zero or more.")
    return value
