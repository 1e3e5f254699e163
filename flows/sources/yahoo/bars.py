"""Daily bars from a chart body: session dates, closes and adjusted closes, nulls counted."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from flows.errors import (
    PayloadMismatchError,
    TickerNotFoundError,
    UpstreamError,
)
from flows.sources.yahoo import constants as C
from flows.sources.yahoo.client import YahooClient

log = logging.getLogger("aitokens.sources.yahoo")

EQUITY_COLUMNS = ["ticker", "date", "ts", "open", "high", "low", "close", "adj_close", "volume"]


@dataclass
class EquityParse:
    """Tidy bars of one ticker and what was removed: null closes, repeats, partial, outside."""

    ticker: str
    frame: pd.DataFrame
    n_points: int = 0
    n_null_close: int = 0
    n_duplicates: int = 0
    n_partial: int = 0
    n_outside: int = 0
    timezone: str = "America/New_York"
    n_malformed: int = 0  # bars with an unreadable timestamp, or a non-positive close
    n_coerced: int = 0  # numbers sent as strings ("123.4"), read as numbers
    notes: list[str] = field(default_factory=list)  # schema drift seen in this answer


def empty_equity_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in EQUITY_COLUMNS})
    frame["ticker"] = frame["ticker"].astype("object")
    frame["date"] = frame["date"].astype("object")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


# Session opens a daily bar can have: 1900-01-01 .. 2100-01-01 (pandas overflows far beyond).
_MIN_TS_S, _MAX_TS_S = -2_208_988_800, 4_102_444_800


def _number(value: Any) -> tuple[float, bool]:
    """(value, coerced) of a JSON number or numeric string; NaN for anything else."""
    if isinstance(value, bool) or value is None:
        return float("nan"), False
    if isinstance(value, int | float):
        return float(value), False
    if isinstance(value, str):
        try:
            return float(value.strip()), True
        except ValueError:
            return float("nan"), False
    return float("nan"), False


def _column(values: Any, n: int, counter: list[int] | None = None) -> list[float]:
    if not isinstance(values, list):
        return [float("nan")] * n
    out = []
    for v in values[:n]:
        number, coerced = _number(v)
        if counter is not None and coerced:
            counter[0] += 1
        out.append(number if math.isfinite(number) and number >= 0 else float("nan"))
    return out + [float("nan")] * (n - len(out))


def _first(node: Any, key: str) -> dict[str, Any]:
    """``node[key][0]`` when it is an object, else an empty dict (Yahoo nests lists of one)."""
    items = node.get(key) if isinstance(node, dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def _chart_result(ticker: str, payload: Any) -> dict[str, Any]:
    endpoint = "/" + C.YAHOO_CHART_PATH.format(ticker=ticker)
    chart = payload.get("chart") if isinstance(payload, Mapping) else None
    result = chart.get("result") if isinstance(chart, dict) else None
    if not (isinstance(result, list) and result and isinstance(result[0], dict)):
        missing = "'chart'" if not isinstance(chart, dict) else "'chart.result[0]'"
        raise UpstreamError(
            f"Yahoo {endpoint}: unexpected payload shape: missing {missing}", endpoint=endpoint
        )
    return result[0]


# A daily bar's stamp in milliseconds is beyond any second of 1900..2100: 1e11 s is year 5138.
_MS_THRESHOLD = 100_000_000_000


def refuse_mismatch(ticker: str, meta: Mapping[str, Any], stamps: Any) -> None:
    """Refuse a chart for another symbol, in another currency than US dollars, or stamped in
    milliseconds (Yahoo stamps seconds): each would be stored wrong, or as 0 rows of a
    "completed" run."""
    endpoint = "/" + C.YAHOO_CHART_PATH.format(ticker=ticker)
    symbol = meta.get("symbol")
    if isinstance(symbol, str) and symbol.strip().upper() != ticker.upper():
        raise PayloadMismatchError(
            f"Yahoo {endpoint}: the answer is for {symbol[:40]!r}, not {ticker!r}; refused "
            "(nothing stored)",
            endpoint=endpoint,
        )
    currency = meta.get("currency")
    if isinstance(currency, str) and currency.strip().upper() != C.CURRENCY:
        raise PayloadMismatchError(
            f"Yahoo {endpoint}: prices are in {currency[:12]!r}, not {C.CURRENCY}; refused "
            "(the warehouse holds US-dollar prices)",
            endpoint=endpoint,
        )
    numbers = [
        t
        for t in (stamps if isinstance(stamps, list) else [])
        if isinstance(t, int | float) and not isinstance(t, bool)
    ]
    if numbers and all(abs(t) >= _MS_THRESHOLD for t in numbers):
        raise PayloadMismatchError(
            f"Yahoo {endpoint}: the timestamps are in milliseconds, not seconds (first "
            f"{numbers[0]!r}); refused (nothing stored)",
            endpoint=endpoint,
        )


def parse_chart(
    ticker: str,
    payload: Mapping[str, Any],
    *,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> EquityParse:
    """Turn a chart body into one row per session date in ``start..end``.

    Repeated session dates keep the last bar given; bars out of order are sorted; bars without
    a close are dropped (counted in ``n_null_close``); today's bar before the regular close
    (``meta.currentTradingPeriod.regular.end``) is dropped as partial.

    Schema drift: no ``chart.result[0]`` raises :class:`UpstreamError` ("unexpected payload
    shape"); numbers sent as strings are read (``n_coerced``); unreadable timestamps and
    non-positive closes are dropped (``n_malformed``); a missing ``adjclose`` leaves NaN and a
    note; extra fields are ignored.
    """
    result = _chart_result(ticker, payload)
    raw_meta = result.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    refuse_mismatch(ticker, meta, result.get("timestamp"))
    tz_name = meta.get("exchangeTimezoneName") or "America/New_York"
    try:
        tz: Any = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    offset, _ = _number(meta.get("gmtoffset"))
    # A UTC offset is within +/-14 h; anything else (garbage, an overflow) is no offset.
    if tz is None and not (math.isfinite(offset) and abs(offset) <= 14 * 3600):
        tz, offset = UTC, 0.0
    given_stamps = result.get("timestamp")
    raw_stamps: list[Any] = given_stamps if isinstance(given_stamps, list) else []
    out = EquityParse(ticker, empty_equity_frame(), n_points=len(raw_stamps), timezone=str(tz_name))
    if not raw_stamps:
        return out
    n = len(raw_stamps)
    counter = [0]
    stamps = _column(raw_stamps, n, counter)
    indicators = result.get("indicators") if isinstance(result.get("indicators"), dict) else {}
    quote = _first(indicators, "quote")
    adj = _first(indicators, "adjclose")
    if not isinstance(quote.get("close"), list):
        endpoint = "/" + C.YAHOO_CHART_PATH.format(ticker=ticker)
        raise UpstreamError(
            f"Yahoo {endpoint}: unexpected payload shape: {n} timestamps but no "
            "'indicators.quote[0].close' list",
            endpoint=endpoint,
        )
    if not adj.get("adjclose"):
        out.notes.append(f"{ticker}: answer lacks adjclose, left empty")
    frame = pd.DataFrame(
        {
            "ticker": ticker,
            "stamp": stamps,
            "open": _column(quote.get("open"), n, counter),
            "high": _column(quote.get("high"), n, counter),
            "low": _column(quote.get("low"), n, counter),
            "close": _column(quote.get("close"), n, counter),
            "adj_close": _column(adj.get("adjclose"), n, counter),
            "volume": _column(quote.get("volume"), n, counter),
        }
    )
    out.n_coerced = counter[0]
    bad = ~frame["stamp"].between(_MIN_TS_S, _MAX_TS_S) | (frame["close"] == 0)
    out.n_malformed = int(bad.sum())
    frame = frame[~bad]
    null_close = frame["close"].isna()
    out.n_null_close = int(null_close.sum())
    frame = frame[~null_close].copy()
    ts = pd.to_datetime(frame["stamp"].astype("int64"), unit="s", utc=True)
    local = ts.dt.tz_convert(tz) if tz is not None else ts + pd.Timedelta(seconds=int(offset))
    frame.insert(1, "date", local.dt.date.to_numpy(dtype=object) if len(frame) else [])
    frame.insert(2, "ts", ts)
    frame = frame.drop(columns="stamp")
    if out.n_coerced:
        out.notes.append(f"{ticker}: {out.n_coerced} numbers came as strings, read as numbers")
    if out.n_malformed:
        out.notes.append(f"{ticker}: {out.n_malformed} malformed bars dropped")
    frame = frame.sort_values("ts", kind="stable")
    dup = frame["date"].duplicated(keep="last")
    out.n_duplicates = int(dup.sum())
    frame = frame[~dup]
    period = meta.get("currentTradingPeriod")
    regular = period.get("regular") if isinstance(period, dict) else None
    regular = regular if isinstance(regular, dict) else {}
    now = now or datetime.now(UTC)
    reg_start, _ = _number(regular.get("start"))
    reg_end, _ = _number(regular.get("end"))
    if (
        math.isfinite(reg_end)
        and math.isfinite(reg_start)
        and _MIN_TS_S <= reg_start <= _MAX_TS_S
        and now.timestamp() < reg_end
    ):
        session_day = pd.Timestamp(int(reg_start), unit="s", tz="UTC").tz_convert(tz or UTC).date()
        partial = frame["date"] == session_day
        out.n_partial = int(partial.sum())
        frame = frame[~partial]
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame["date"] >= start
    if end is not None:
        keep &= frame["date"] <= end
    out.n_outside = int((~keep).sum())
    out.frame = frame[keep].reset_index(drop=True)[EQUITY_COLUMNS]
    return out


def _utc_midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def fetch_equity_daily(
    client: YahooClient, ticker: str, start: date, end: date, *, now: datetime | None = None
) -> EquityParse:
    """Daily bars of ``ticker`` for session dates ``start..end`` (one call).

    ``period1`` is ``start`` 00:00 UTC minus a day and ``period2`` ``end`` + 2 days, so every
    session of the range is inside whatever the exchange's offset; the parse trims to dates.
    """
    period1 = _utc_midnight(start - timedelta(days=1))
    period2 = _utc_midnight(end + timedelta(days=2))
    body = client.chart(ticker, period1, period2)
    return parse_chart(ticker, body, start=start, end=end, now=now)


@dataclass
class EquityHistory:
    """Bars of one ticker, or why it was skipped."""

    ticker: str
    frame: pd.DataFrame
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def iter_equity_daily(
    client: YahooClient,
    start: date,
    end: date,
    tickers: Iterable[str] | None = None,
    *,
    now: datetime | None = None,
) -> Iterator[EquityHistory]:
    """Yield the bars of each ticker (default: the configured ones); unknown tickers skipped."""
    for ticker in tickers or client.config.tickers:
        try:
            parsed = fetch_equity_daily(client, ticker, start, end, now=now)
        except TickerNotFoundError as exc:
            log.warning("skipping %s: %s", ticker, exc)
            yield EquityHistory(ticker, empty_equity_frame(), skipped=str(exc))
            continue
        notes = []
        if parsed.n_null_close:
            notes.append(f"{parsed.n_null_close} bars without a close were dropped")
        yield EquityHistory(ticker, parsed.frame, notes=notes)
