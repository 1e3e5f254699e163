"""Rate limiter, retry loop, Retry-After parsing, scrubbing and pagination, without a server."""

from __future__ import annotations

import random
import re
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from flows.errors import BadApiKeyError, RateLimitedError, UpstreamError
from flows.sources.http import (
    RATE_HEADROOM,
    RateLimiter,
    RetryPolicy,
    Scrubber,
    call_with_retries,
    looks_like_html,
    paginate,
    parse_retry_after,
    shared_limiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_limiter_spaces_calls_evenly():
    clock = FakeClock()
    limiter = RateLimiter(30, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(10):
        limiter.acquire()
        starts.append(clock.now)
    assert starts == pytest.approx([2.0 * i for i in range(10)])


def test_limiter_does_not_bank_idle_time():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now = 100.0  # long idle spell: the next call goes at once, the one after waits 1 s
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(1.0)


def test_limiter_pause_holds_every_later_call():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.pause_for(5.0)
    limiter.acquire()
    assert clock.now == pytest.approx(5.0)


def test_limiter_late_wakeup_never_overfills_a_window():
    clock = FakeClock()
    late = {"n": 0}

    def oversleep(seconds: float) -> None:  # the 3rd call's thread wakes 5 s late
        late["n"] += 1
        clock.sleep(seconds + (5.0 if late["n"] == 3 else 0.0))

    limiter = RateLimiter(60, window_seconds=10, clock=clock, sleep=oversleep)  # 10 per 10 s
    starts = []
    for _ in range(40):
        limiter.acquire()
        starts.append(clock.now)
    starts.sort()
    for i in range(len(starts) - 10):
        assert starts[i + 10] - starts[i] >= 10 - 1e-9  # never 11 starts within 10 s


def test_limiter_is_thread_safe_and_accurate():
    """Eight threads reserve 120 slots: each gets its own, exactly 1/rate apart. Measured on
    the limiter's own clock (frozen at 0, sleeps return at once), not on the wall clock, whose
    pace on a busy 2-core machine says nothing about the limiter."""
    limiter = RateLimiter(60 * 200, clock=lambda: 0.0, sleep=lambda _s: None)  # 5 ms apart
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            waited = limiter.acquire()  # the slot is now (0) + the wait
            with lock:
                starts.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert len(starts) == 120 and limiter.calls == 120
    assert starts == pytest.approx([i * 0.005 for i in range(120)])  # no slot shared or skipped


def test_shared_limiter_is_one_per_host_and_follows_rate():
    a = shared_limiter("http://127.0.0.1:1/api/v3/", 30)
    b = shared_limiter("http://127.0.0.1:1/other/", 60)
    assert a is b
    assert a.calls_per_minute == pytest.approx(60 * RATE_HEADROOM)
    assert shared_limiter("http://127.0.0.1:2/", 30) is not a


def test_backoff_is_exponential_with_jitter_and_capped():
    policy = RetryPolicy(max_retry_seconds=100, base_seconds=1.0, max_seconds=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        waits = [policy.backoff(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


def _flaky(errors: list[Exception]):
    calls = {"n": 0}

    def attempt() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return "ok"

    return attempt, calls


def test_retry_loop_retries_retryable_then_succeeds():
    clock = FakeClock()
    limiter = RateLimiter(6000, clock=clock, sleep=clock.sleep)
    attempt, calls = _flaky(
        [UpstreamError("503", retryable=True), RateLimitedError("429", retry_after=2.0)]
    )
    out = call_with_retries(
        attempt,
        policy=RetryPolicy(10, 0.1, 1),
        limiter=limiter,
        what="t",
        clock=clock,
        sleep=clock.sleep,
    )
    assert out == "ok" and calls["n"] == 3
    assert clock.now >= 2.0  # Retry-After honoured through the limiter


def test_retry_loop_never_retries_non_retryable():
    limiter = RateLimiter(6000)
    attempt, calls = _flaky([BadApiKeyError("bad key")])
    with pytest.raises(BadApiKeyError):
        call_with_retries(attempt, policy=RetryPolicy(10, 0.01, 0.01), limiter=limiter, what="t")
    assert calls["n"] == 1


def test_retry_loop_is_bounded_in_total_time():
    clock = FakeClock()
    limiter = RateLimiter(6000, clock=clock, sleep=clock.sleep)
    attempt, calls = _flaky([UpstreamError("503", retryable=True) for _ in range(1000)])
    with pytest.raises(UpstreamError, match=r"gave up after \d+ attempts"):
        call_with_retries(
            attempt,
            policy=RetryPolicy(30, 1, 8),
            limiter=limiter,
            what="t",
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.now <= 30 + 1
    assert 4 <= calls["n"] < 20


def test_retry_after_longer_than_budget_gives_up_at_once():
    clock = FakeClock()
    limiter = RateLimiter(6000, clock=clock, sleep=clock.sleep)
    attempt, calls = _flaky([RateLimitedError("429", retry_after=120)])
    with pytest.raises(RateLimitedError, match="gave up after 1 attempts"):
        call_with_retries(
            attempt,
            policy=RetryPolicy(60, 1, 8),
            limiter=limiter,
            what="t",
            clock=clock,
            sleep=clock.sleep,
        )
    assert calls["n"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 0.5 ", 0.5), ("", None), (None, None), ("soon", None), ("-4", 0.0)],
)
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 31


def test_html_detection():
    assert looks_like_html("text/html; charset=utf-8", "{}")
    assert looks_like_html("application/json", "  <!DOCTYPE html><html>")
    assert not looks_like_html("application/json", '{"a": 1}')


def test_scrubber_removes_secrets_and_key_params():
    scrub = Scrubber(["s3cr3t", None, ""])
    assert scrub("url?x_cg_demo_api_key=s3cr3t&a=1") == "url?x_cg_demo_api_key=***&a=1"
    assert scrub.params({"x_cg_pro_api_key": "s3cr3t", "from": 1, "q": "s3cr3t"}) == {
        "from": 1,
        "q": "***",
    }


KEY_FORMS = ["CG-k\r3y", "Zq9", "CG-a.*+?[x](y)|^$\\z", "CG-key with space/and&amp"]


@pytest.mark.parametrize("key", KEY_FORMS, ids=["cr", "short", "regex", "url-html"])
def test_scrubber_removes_every_encoding_of_a_key(key):
    import html
    import json
    from urllib.parse import quote, quote_plus

    scrub = Scrubber([key])
    forms = {
        "raw": key,
        "repr": repr(key),
        "json": json.dumps({"error": key}),
        "json of repr": json.dumps(repr(key)),
        "repr of json": repr(json.dumps({"error": key})),
        "url": "?k=" + quote(key, safe=""),
        "url lower": "?k=" + re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(key)),
        "url plus": "?k=" + quote_plus(key),
        "html": html.escape(key),
        "exception text": str(ValueError({"error": {"message": key}})),
    }
    for name, text in forms.items():
        cleaned = scrub(f"before {text} after")
        assert key not in cleaned and "***" in cleaned, (name, cleaned)
        assert cleaned.startswith("before ") and cleaned.endswith(" after"), name
    error = RuntimeError(f"boom {key!r}")
    error.__context__ = ValueError(key)
    scrub.exception(error)
    assert key not in repr(error) and key not in str(error.__context__)


@pytest.mark.parametrize(
    ("total", "per_page", "calls"), [(0, 5, 1), (4, 5, 1), (5, 5, 2), (12, 5, 3), (15, 5, 4)]
)
def test_paginate_stops_at_short_page(total, per_page, calls):
    rows = list(range(total))
    asked = []

    def fetch(page: int) -> list[int]:
        asked.append(page)
        return rows[(page - 1) * per_page : page * per_page]

    pages = list(paginate(fetch, per_page))
    assert [x for p in pages for x in p] == rows
    assert asked == list(range(1, calls + 1))


def test_paginate_stops_on_a_repeated_page_and_at_the_cap():
    asked: list[int] = []

    def same(page: int) -> list[int]:
        asked.append(page)
        return [1, 2, 3]  # a server that ignores the page number

    with pytest.raises(UpstreamError, match="page 2 repeats page 1"):
        list(paginate(same, 3, what="X /items"))
    assert asked == [1, 2]

    asked.clear()

    def endless(page: int) -> list[int]:
        asked.append(page)
        return [page, page + 1]  # new rows forever

    with pytest.raises(UpstreamError, match="X /items: more than 5 full pages"):
        list(paginate(endless, 2, max_pages=5, what="X /items"))
    assert asked == [1, 2, 3, 4, 5]
