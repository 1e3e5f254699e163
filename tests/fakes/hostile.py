"""Hostile fakes: servers that misbehave on purpose, to prove the clients stay bounded and
keep every key to themselves.

:class:`HostileCoinGecko` and :class:`HostileYahoo` are the ordinary fakes plus these fault
kinds (``inject(path, kind, ...)``, as in :mod:`tests.fakes.server`):

==============  ===========================================================================
``echo_key``    an error (``status``, default 400) whose body echoes the key the request
                carried: raw, JSON-escaped, ``repr``-escaped and URL-encoded
``redirect``    a 302 to the same path on ``redirect_to`` (another host)
``same_page``   ``/coins/markets`` answers page 1 whatever page is asked (endless paging)
``trickle``     the normal body, one byte every ``delay`` seconds
``trickle_headers`` the status line and headers, one byte every ``delay`` seconds
``gzip_bomb``   ``Content-Encoding: gzip``, about 1 MB that inflates to 1 GB of zeros
``huge``        a body of 600 MB announced and streamed until the client hangs up
``wrong_coin``  the normal chart saying ``"id": "bitcoin"``
``seconds``     the normal chart with stamps in seconds instead of milliseconds
``bad_ids``     ``/coins/markets`` with extra members whose ids walk a URL path
``ms``          (Yahoo) the normal chart with timestamps in milliseconds
==============  ===========================================================================
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from typing import Any
from urllib.parse import quote, urlencode

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.server import Fault, Reply
from tests.fakes.yahoo import FakeYahoo

HUGE_BYTES = 600 * 1024 * 1024
BAD_IDS = ("evil/../../x", "bitcoin?x=1", "..", "a#b", "ok%2Fno")


@functools.lru_cache(maxsize=1)
def gzip_bomb(megabytes: int = 1024) -> bytes:
    """A valid gzip stream of ``megabytes`` MB of zeros in about 1 KB per MB (1 GB -> ~1 MB):
    one compressed megabyte, byte-aligned by a full flush, repeated, then a final empty block
    and the true CRC and size."""
    zeros = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (megabytes << 20) & 0xFFFFFFFF)
    return head + block * (megabytes - 1) + b"\x03\x00" + trailer


def key_echo_body(key: str) -> str:
    """An error body that quotes ``key`` in every encoding a server could use."""
    return json.dumps(
        {
            "error": f"invalid request for key {key}",
            "debug": repr({"x-cg-pro-api-key": key}),
            "echo_url": "https://api.example/v3/ping?" + urlencode({"x_cg_pro_api_key": key}),
            "path": "/keys/" + quote(key, safe=""),
        }
    )


def _trickle(body: bytes, delay: float):
    def stream(write, stopping) -> None:
        for i in range(len(body)):
            if stopping.wait(delay):
                return
            write(body[i : i + 1])

    return stream


def _endless(total: int):
    def stream(write, stopping) -> None:
        chunk = b"1," * (512 * 1024)
        write(b"[")
        sent = 1
        while sent < total and not stopping.is_set():
            write(chunk)
            sent += len(chunk)

    return stream


class _Hostile:
    """The fault kinds shared by the hostile fakes (mixed into a fake)."""

    def __init__(self, *args: Any, redirect_to: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the fake it is mixed into
        self.redirect_to = redirect_to

    def hostile_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        kind = fault.kind
        if kind == "echo_key":
            key = (
                headers.get("x-cg-pro-api-key")
                or headers.get("x-cg-demo-api-key")
                or headers.get("user-agent", "")
            )
            return Reply(fault.status or 400, text=key_echo_body(key))
        if kind == "redirect":
            assert self.redirect_to, "redirect_to=... for a redirect fault"
            target = self.redirect_to.rstrip("/") + path + "?" + urlencode(params)
            return Reply(302, text="", headers={"Location": target})
        if kind == "trickle":
            body = self.route(path, params, headers, None).body()  # type: ignore[attr-defined]
            return Reply(200, stream=_trickle(body, fault.delay or 1.5), length=len(body))
        if kind == "trickle_headers":
            body = self.route(path, params, headers, None).body()  # type: ignore[attr-defined]
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"X-Padding: {'x' * 200}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            return Reply(200, stream=_trickle(head + body, fault.delay or 1.5), raw=True)
        if kind == "gzip_bomb":
            bomb = gzip_bomb()
            return Reply(
                200,
                stream=lambda write, stopping: write(bomb),
                length=len(bomb),
                headers={"Content-Encoding": "gzip"},
            )
        if kind == "huge":
            return Reply(200, stream=_endless(HUGE_BYTES), length=HUGE_BYTES)
        return None


class HostileCoinGecko(_Hostile, FakeCoinGecko):
    """A :class:`FakeCoinGecko` with the hostile fault kinds (module doc)."""

    def fault_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        reply = self.hostile_reply(fault, path, params, headers)
        if reply is not None:
            return reply
        kind = fault.kind
        if kind == "same_page":
            return self.route(path, {**params, "page": "1"}, headers, None)
        if kind in ("wrong_coin", "seconds"):
            reply = self.route(path, params, headers, None)
            payload = reply.payload
            if kind == "wrong_coin":
                payload["id"] = "bitcoin"
            else:
                for series in payload.values():
                    for point in series:
                        point[0] = point[0] // 1000
            return reply
        if kind == "bad_ids":
            reply = self.route(path, params, headers, None)
            rows = reply.payload
            if rows:
                rows += [{**rows[0], "id": bad, "name": f"evil {bad}"} for bad in BAD_IDS]
            return reply
        return super().fault_reply(fault, path, params, headers)


class HostileYahoo(_Hostile, FakeYahoo):
    """A :class:`FakeYahoo` with the hostile fault kinds (module doc)."""

    def fault_reply(
        self, fault: Fault, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply | None:
        reply = self.hostile_reply(fault, path, params, headers)
        if reply is not None:
            return reply
        if fault.kind == "ms":
            reply = self.route(path, params, headers, None)
            result = reply.payload["chart"]["result"][0]
            result["timestamp"] = [t * 1000 for t in result.get("timestamp", [])]
            return reply
        return super().fault_reply(fault, path, params, headers)


__all__ = ["BAD_IDS", "HostileCoinGecko", "HostileYahoo", "gzip_bomb", "key_echo_body"]
