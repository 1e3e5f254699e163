"""Daily klines: paging a date range into calls, and parsing klines into closes of UTC days.

Dates. A daily kline opens at D 00:00 UTC and closes at D 23:59:59.999 UTC: its close is the
close of the UTC day D, stored under ``date`` = D (unlike CoinGecko, whose point stamped D
00:00 is the close of D-1). The kline of the current day is still open (its close time is in
the future): it is dropped and asked for again by a later run.

Strictness. Binance never sends nulls or gaps inside a kline, so an answer with a null, a
non-number, a kline opening off midnight or a repeated day means the answer is not what we
think it is: it is refused whole with an :class:`~flows.errors.UpstreamError` naming the kline
and the field, never half loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from flows.errors import UpstreamError
from flows.sources.binance import constants as C
from flows.sources.binance.client import BinanceClient

KLINE_COLUMNS = [
    "symbol",
    "date",
    "open",
    "high",
    "low",
    "close",
    "volume_base",
    "volume_quote",
    "trades",
]
_NUMBERS = (
    ("open", C.OPEN),
    ("high", C.HIGH),
    ("low", C.LOW),
    ("close", C.CLOSE),
    ("volume_base", C.VOLUME),
    ("volume_quote", C.QUOTE_VOLUME),
)
_PRICES = ("open", "high", "low", "close")
_EPOCH = date(1970, 1, 1)


@dataclass
class KlineParse:
    """Tidy daily rows of one symbol, and what was left out: the open kline, days outside."""

    symbol: str
    frame: pd.DataFrame
    n_klines: int = 0
    n_open: int = 0  # the current day's kline, still open
    n_outside: int = 0  # closes outside the asked range
    notes: list[str] = field(default_factory=list)


def empty_kline_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in KLINE_COLUMNS})
    frame["symbol"] = frame["symbol"].astype("object")
    frame["date"] = frame["date"].astype("object")
    frame["trades"] = frame["trades"].astype("int64")
    return frame


def day_start_ms(d: date) -> int:
    """``d`` 00:00 UTC in unix milliseconds: the open time of its daily kline."""
    return (d - _EPOCH).days * C.DAY_MS


def day_end_ms(d: date) -> int:
    """``d`` 23:59:59.999 UTC in unix milliseconds: the close time of its daily kline."""
    return day_start_ms(d) + C.DAY_MS - 1


def kline_windows(start: date, end: date, limit: int = C.KLINES_LIMIT) -> list[tuple[date, date]]:
    """``start..end`` split into windows of at most ``limit`` days: one call each (a call
    returns at most ``limit`` daily klines)."""
    windows = []
    lo = start
    while lo <= end:
        hi = min(end, lo + timedelta(days=limit - 1))
        windows.append((lo, hi))
        lo = hi + timedelta(days=1)
    return windows


def iter_kline_pages(
    client: BinanceClient, symbol: str, start: date, end: date
) -> Iterator[tuple[tuple[date, date], list[Any]]]:
    """Each window of ``start..end`` with the klines Binance answered for it (one call)."""
    for lo, hi in kline_windows(start, end):
        yield (lo, hi), client.klines(symbol, day_start_ms(lo), day_end_ms(hi))


def _refuse(symbol: str, index: int, what: str) -> UpstreamError:
    return UpstreamError(
        f"Binance {C.KLINES_PATH} {symbol}: malformed kline {index}: {what}; the answer is "
        "refused (nothing of it loaded)",
        endpoint=C.KLINES_PATH,
    )


def _integer(symbol: str, index: int, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(symbol, index, f"{name} is {value!r}, expected a whole number")
    return value


def _number(symbol: str, index: int, day: date, name: str, value: Any) -> float:
    """A price or volume: Binance sends decimal strings ("42283.58000000"); numbers pass too."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        number = math.nan
    if not math.isfinite(number) or number < 0 or (name in _PRICES and number == 0):
        raise _refuse(symbol, index, f"{day} {name} is {value!r}, expected a positive number")
    return number


def parse_klines(
    symbol: str,
    payload: Any,
    *,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> KlineParse:
    """Turn a klines answer into one row per UTC day in ``start..end``, oldest first.

    The kline still open at ``now`` (default: the current time) is dropped (``n_open``).
    Anything but well-formed daily klines raises :class:`UpstreamError` (see the module doc).
    """
    if not isinstance(payload, list):
        raise UpstreamError(
            f"Binance {C.KLINES_PATH} {symbol}: unexpected payload shape: expected a list of "
            f"klines, got {type(payload).__name__}",
            endpoint=C.KLINES_PATH,
        )
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    out = KlineParse(symbol, empty_kline_frame(), n_klines=len(payload))
    rows: list[dict[str, Any]] = []
    seen: set[date] = set()
    for index, kline in enumerate(payload):
        if not isinstance(kline, list) or len(kline) <= C.TRADES:
            size = f"{len(kline)} fields" if isinstance(kline, list) else type(kline).__name__
            raise _refuse(symbol, index, f"{size}, expected at least {C.TRADES + 1} fields")
        opened = _integer(symbol, index, "openTime", kline[C.OPEN_TIME])
        closes = _integer(symbol, index, "closeTime", kline[C.CLOSE_TIME])
        if opened % C.DAY_MS:
            raise _refuse(symbol, index, f"openTime {opened} is not 00:00 UTC: not a daily kline")
        day = _EPOCH + timedelta(days=opened // C.DAY_MS)
        if closes != opened + C.DAY_MS - 1:
            raise _refuse(symbol, index, f"{day} closeTime {closes} is not 23:59:59.999 UTC")
        if day in seen:
            raise _refuse(symbol, index, f"{day} comes twice")
        seen.add(day)
        row: dict[str, Any] = {"symbol": symbol, "date": day}
        for name, position in _NUMBERS:
            row[name] = _number(symbol, index, day, name, kline[position])
        trades = _integer(symbol, index, "trades", kline[C.TRADES])
        if trades < 0:
            raise _refuse(symbol, index, f"{day} trades is {trades}, expected zero or more")
        row["trades"] = trades
        if closes >= now_ms:
            out.n_open += 1  # today's kline: its close is not final yet
            continue
        if (start is not None and day < start) or (end is not None and day > end):
            out.n_outside += 1
            continue
        rows.append(row)
    if rows:
        frame = pd.DataFrame(rows, columns=KLINE_COLUMNS).sort_values("date", kind="stable")
        out.frame = frame.reset_index(drop=True).astype({"trades": "int64"})
    return out


def fetch_klines(
    client: BinanceClient, symbol: str, start: date, end: date, *, now: datetime | None = None
) -> KlineParse:
    """Daily closes of ``symbol`` for the UTC days ``start..end``, one call per window of
    :data:`~flows.sources.binance.constants.KLINES_LIMIT` days."""
    parts = [
        parse_klines(symbol, body, start=lo, end=hi, now=now)
        for (lo, hi), body in iter_kline_pages(client, symbol, start, end)
    ]
    out = KlineParse(symbol, empty_kline_frame())
    frames = [p.frame for p in parts if len(p.frame)]
    if frames:
        out.frame = pd.concat(frames, ignore_index=True)
    out.n_klines = sum(p.n_klines for p in parts)
    out.n_open = sum(p.n_open for p in parts)
    out.n_outside = sum(p.n_outside for p in parts)
    return out
