"""A real HTTP server on 127.0.0.1 (free port) with a request log, faults and a rate limit.

Subclasses (:class:`~tests.fakes.coingecko.FakeCoinGecko`, :class:`~tests.fakes.yahoo.FakeYahoo`)
route requests to payloads in the vendor's exact shapes. This base adds what tests need around
them: every request is recorded (so calls can be counted), faults are injected on demand, and an
optional sliding-window limit answers 429 past ``R`` calls per window.

Fault kinds (``inject(path, kind, ...)``; ``path`` is an fnmatch pattern below the API root):

==============  ===========================================================================
``status``      answer ``status`` (429, 500, 502, 503, 404, ...) with the vendor's error body;
                ``retry_after`` adds a ``Retry-After`` header (429 without it: ``None``)
``slow``        wait ``delay`` seconds, then answer normally
``timeout``     wait ``delay`` seconds (default 5, longer than the client's timeout), then answer
``truncated``   the normal JSON body cut in half (Content-Length matches the cut body)
``disconnect``  announce the full length, send half the body, close the connection
``html``        an HTML block page with ``status`` (default 200)
``empty``       the normal answer with empty arrays
``nulls``       the normal answer with some values set to null
``duplicates``  the normal answer with repeated timestamps
``out_of_order`` the normal answer with its points reversed
``body``        ``body`` verbatim with ``status`` (default 200) and ``content_type``
==============  ===========================================================================
Subclasses add their own (e.g. ``plan_limit``, ``not_found`` for CoinGecko).
"""

from __future__ import annotations

import fnmatch
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Attention Required! | Cloudflare</title></head>"
    "<body><h1>Sorry, you have been blocked</h1><p>This website is using a security service to "
    "protect itself from online attacks.</p></body></html>\n"
)
# glitch_*: a vendor's bad print in the middle of an answer (issue 22)
TRANSFORM_KINDS = frozenset(
    {"empty", "nulls", "duplicates", "out_of_order", "glitch_x100", "glitch_zero"}
)


@dataclass
class Fault:
    """One injected misbehaviour; ``times`` is how many more requests it hits (None: all)."""

    path: str
    kind: str = "status"
    status: int | None = None
    retry_after: float | str | None = None
    times: int | None = 1
    delay: float = 0.0
    body: str | None = None
    content_type: str = "application/json"
    hits: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str  # below the API root, e.g. "/coins/fetch-ai/market_chart/range"
    params: dict[str, str]
    headers: dict[str, str]
    query: str  # the raw query string, to check that no secret travels in it
    at: float  # time.monotonic() on arrival
    status: int  # 0 while the answer is still pending (slow answers, timeouts)
    fault: str | None = None


@dataclass
class Reply:
    """What a route answers: status, a JSON-able payload or a text body, extra headers."""

    status: int = 200
    payload: Any = None
    text: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # A body written by a function (trickles, endless bodies): ``stream(write, stopping)``;
    # ``length`` is the Content-Length announced (None: none, the connection closes at the end).
    stream: Any = None
    length: int | None = None
    raw: bool = False  # the stream writes the status line and headers itself

    def body(self) -> bytes:
        if self.text is not None:
            return self.text.encode()
        return json.dumps(self.payload, separators=(",", ":")).encode()


class FakeServer:
    """Base of the fakes: start/stop, request log, fault injection, rate limit.

    Parameters
    ----------
    rate_limit
        ``(calls, window_seconds)``: at most ``calls`` answered requests in any trailing
        window; beyond that a 429 (rate-limited requests do not count).
    rate_limit_retry_after
        Whether those 429s carry ``Retry-After`` (whole seconds, as HTTP says).
    """

    root = ""  # path prefix of the API, e.g. "/api/v3"

    def __init__(
        self, *, rate_limit: tuple[int, float] | None = None, rate_limit_retry_after: bool = True
    ) -> None:
        self.rate_limit = rate_limit
        self.rate_limit_retry_after = rate_limit_retry_after
        self._faults: list[Fault] = []
        self._log: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._served: deque[float] = deque()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=type(self).__name__,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL with a trailing slash, as clients want it."""
        return f"{self.origin}{self.root}/"

    # -- faults and log --------------------------------------------------------------
    def inject(
        self,
        path: str,
        kind: str = "status",
        *,
        status: int | None = None,
        retry_after: float | str | None = None,
        times: int | None = 1,
        delay: float | None = None,
        body: str | None = None,
        content_type: str = "application/json",
    ) -> Fault:
        """Make the next ``times`` requests matching ``path`` misbehave (see module doc)."""
        if kind == "status" and status is None:
            raise ValueError("a 'status' fault needs status=...")
        if delay is None:
            delay = 5.0 if kind == "timeout" else 0.0
        fault = Fault(path, kind, status, retry_after, times, delay, body, content_type)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def calls(self, pattern: str = "*", *, status: int | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path matches ``pattern`` (and ``status``, if given)."""
        return [
            r
            for r in self.requests
            if fnmatch.fnmatchcase(r.path, pattern) and (status is None or r.status == status)
        ]

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- to override -----------------------------------------------------------------
    def route(
        self, path: str, params: dict[str, str], headers: dict[str, str], transform: str | None
    ) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int, path: str) -> Reply:
        """The vendor's body for an injected error status."""
        return Reply(status, {"error": f"HTTP {status}"})

    def rate_limited_reply(self) -> Reply:
        return Reply(429, {"error": "Too Many Requests"})

    def fault_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        """Subclasses answer their own fault kinds here; None when the kind is not theirs."""
        return None

    # -- internals -------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times is not None and fault.times <= 0:
                    continue
                if fnmatch.fnmatchcase(path, fault.path):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def _admit(self, now: float) -> float | None:
        """None if the request may be served, else the seconds until it could be."""
        if self.rate_limit is None:
            return None
        calls, window = self.rate_limit
        with self._lock:
            while self._served and self._served[0] <= now - window:
                self._served.popleft()
            if len(self._served) >= calls:
                return self._served[0] + window - now
            self._served.append(now)
            return None

    def _record(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        query: str,
        at: float,
        status: int,
        fault: str | None,
    ) -> int:
        """Log a request on arrival (so a timed-out one counts at once); returns its index."""
        with self._lock:
            self._log.append(
                RecordedRequest(method, path, params, headers, query, at, status, fault)
            )
            return len(self._log) - 1

    def _finish(self, index: int, status: int) -> None:
        with self._lock:
            self._log[index] = replace(self._log[index], status=status)

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the server
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.fake
        arrived = time.monotonic()
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = split.path
        if not path.startswith(fake.root):
            self._send(Reply(404, {"error": "not found"}))
            fake._record("GET", path, params, headers, split.query, arrived, 404, None)
            return
        path = path[len(fake.root) :].rstrip("/") or "/"
        fault = fake._take_fault(path)
        kind = fault.kind if fault else None
        wait = fake._admit(arrived)
        if wait is not None:
            reply = fake.rate_limited_reply()
            if fake.rate_limit_retry_after:
                reply.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            self._send(reply)
            fake._record("GET", path, params, headers, split.query, arrived, 429, "rate_limit")
            return
        index = fake._record("GET", path, params, headers, split.query, arrived, 0, kind)
        try:
            reply, cut = self._answer(fault, path, params, headers)
        except Exception as exc:  # a bug in the fake: answer 500 with the reason, visibly
            reply, cut = Reply(500, {"error": f"fake crashed: {type(exc).__name__}: {exc}"}), None
        fake._finish(index, reply.status)
        self._send(reply, cut=cut)

    def _answer(
        self, fault: Fault | None, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[Reply, str | None]:
        fake = self.fake
        if fault is None:
            return fake.route(path, params, headers, None), None
        kind = fault.kind
        if kind in ("slow", "timeout"):
            fake._wait(fault.delay)
            return fake.route(path, params, headers, None), None
        if kind == "status":
            reply = fake.error_reply(fault.status, path)
            if fault.body is not None:
                reply = Reply(fault.status, text=fault.body, content_type=fault.content_type)
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = str(fault.retry_after)
            return reply, None
        if kind == "html":
            reply = Reply(
                fault.status or 200,
                text=fault.body or HTML_PAGE,
                content_type="text/html; charset=UTF-8",
            )
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = str(fault.retry_after)
            return reply, None
        if kind == "body":
            return Reply(
                fault.status or 200, text=fault.body or "", content_type=fault.content_type
            ), None
        if kind in ("truncated", "disconnect"):
            return fake.route(path, params, headers, None), kind
        if kind in TRANSFORM_KINDS:
            return fake.route(path, params, headers, kind), None
        own = fake.fault_reply(fault, path, params, headers)
        if own is None:
            raise ValueError(f"unknown fault kind {kind!r}")
        return own, None

    def _send(self, reply: Reply, cut: str | None = None) -> None:
        if reply.stream is not None:
            self._send_stream(reply)
            return
        body = reply.body()
        try:
            if cut == "truncated":
                body = body[: max(1, len(body) // 2)]
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if cut == "disconnect":
                self.send_header("Connection", "close")
            self.end_headers()
            if cut == "disconnect":
                self.wfile.write(body[: max(1, len(body) // 2)])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            self.close_connection = True

    def _send_stream(self, reply: Reply) -> None:
        try:
            if reply.raw:

                def write_raw(data: bytes) -> None:
                    self.wfile.write(data)
                    self.wfile.flush()

                reply.stream(write_raw, self.fake._stopping)
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            if reply.length is not None:
                self.send_header("Content-Length", str(reply.length))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()

            def write(data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

            reply.stream(write, self.fake._stopping)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            pass  # the client gave up: what a bounded client does
        self.close_connection = True
