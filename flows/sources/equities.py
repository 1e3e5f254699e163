"""Equity source: daily bars from Yahoo's chart JSON over ``requests``.

``GET {base}/v8/finance/chart/{ticker}?period1=S&period2=S&interval=1d&events=div,splits``
answers ``chart.result[0]`` with ``timestamp`` (session opens, unix seconds), ``indicators.
quote[0]`` (open/high/low/close/volume) and ``indicators.adjclose[0].adjclose``. Yahoo's
``close`` is split-adjusted; ``adj_close`` is split- and dividend-adjusted: both are kept.

Dates. A bar's timestamp is the session's open in exchange time; ``date`` is that instant in
the exchange's time zone (``meta.exchangeTimezoneName``), i.e. the session date. A bar for
today's session while the market is still open is partial and dropped.

Nulls. Yahoo returns nulls (whole null rows on some holidays, a missing volume). Bars without a
``close`` are dropped and counted; other nulls stay NaN.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from flows.errors import (
    ConfigError,
    HtmlResponseError,
    RateLimitedError,
    TickerNotFoundError,
    UpstreamError,
)
from flows.sources import constants as C
from flows.sources.http import (
    ExchangeCallback,
    RateLimiter,
    RetryPolicy,
    call_with_retries,
    env_float,
    looks_like_html,
    one_line,
    parse_retry_after,
    shared_limiter,
)

log = logging.getLogger("aitokens.sources.equities")

EQUITY_COLUMNS = ["ticker", "date", "ts", "open", "high", "low", "close", "adj_close", "volume"]


@dataclass(frozen=True)
class YahooConfig:
    """Settings of the Yahoo source; :meth:`from_env` reads ``AITOKENS_YAHOO_*``."""

    base_url: str = C.YAHOO_URL
    tickers: tuple[str, ...] = C.DEFAULT_TICKERS
    calls_per_minute: float = C.YAHOO_CALLS_PER_MINUTE
    max_retry_seconds: float = C.DEFAULT_MAX_RETRY_SECONDS
    timeout_seconds: float = C.DEFAULT_TIMEOUT_SECONDS
    backoff_base_seconds: float = C.DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = C.DEFAULT_BACKOFF_MAX_SECONDS
    rate_window_seconds: float = 60.0  # the server counts calls per minute
    user_agent: str = C.BROWSER_USER_AGENT

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/"):
            object.__setattr__(self, "base_url", self.base_url + "/")
        object.__setattr__(
            self, "tickers", tuple(t.strip().upper() for t in self.tickers if t.strip())
        )
        if not self.calls_per_minute > 0:
            raise ConfigError(f"{C.ENV_YAHOO_CPM} must be positive, got {self.calls_per_minute}.")
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ConfigError(
                f"{C.ENV_YAHOO_TIMEOUT} must be a positive number of seconds, "
                f"got {self.timeout_seconds}."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> YahooConfig:
        """Build from ``AITOKENS_YAHOO_*`` over the settings file's ``[yahoo]`` section."""
        from flows.config import merged_settings

        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = merged_settings("yahoo", environ)
        if env.get(C.ENV_YAHOO_URL, "").strip():
            kwargs["base_url"] = env[C.ENV_YAHOO_URL].strip()
        if env.get(C.ENV_YAHOO_TICKERS, "").strip():
            kwargs["tickers"] = tuple(env[C.ENV_YAHOO_TICKERS].split(","))
        for name, attr in (
            (C.ENV_YAHOO_CPM, "calls_per_minute"),
            (C.ENV_YAHOO_MAX_RETRY, "max_retry_seconds"),
            (C.ENV_YAHOO_TIMEOUT, "timeout_seconds"),
        ):
            value = env_float(env, name)
            if value is not None:
                kwargs[attr] = value
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_retry_seconds, self.backoff_base_seconds, self.backoff_max_seconds
        )


class YahooClient:
    """Yahoo chart API over a ``requests`` session with a browser User-Agent.

    Shares the process-wide limiter of its host; every answer goes to ``on_exchange``.
    """

    def __init__(
        self,
        config: YahooConfig | None = None,
        *,
        on_exchange: ExchangeCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config or YahooConfig.from_env()
        self.on_exchange = on_exchange
        self.limiter = limiter or shared_limiter(
            self.config.base_url, self.config.calls_per_minute, self.config.rate_window_seconds
        )
        self.session = requests.Session()
        self.session.mount("https://", HTTPAdapter(max_retries=0))
        self.session.mount("http://", HTTPAdapter(max_retries=0))
        self.session.headers.update(
            {"User-Agent": self.config.user_agent, "Accept": "application/json"}
        )
        self._count_lock = threading.Lock()
        self.calls = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> YahooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chart(self, ticker: str, period1: int, period2: int) -> dict[str, Any]:
        """The chart body for ``ticker`` between two unix times (seconds), daily bars."""
        endpoint = "/" + C.YAHOO_CHART_PATH.format(ticker=ticker)
        params = {
            "period1": int(period1),
            "period2": int(period2),
            "interval": "1d",
            "events": "div,splits",
            "includeAdjustedClose": "true",
        }
        url = self.config.base_url + endpoint.lstrip("/")
        what = f"Yahoo {endpoint}"

        def attempt() -> dict[str, Any]:
            with self._count_lock:
                self.calls += 1
            try:
                response = self.session.get(url, params=params, timeout=self.config.timeout_seconds)
            except requests.Timeout:
                raise UpstreamError(
                    f"{what} timed out after {self.config.timeout_seconds:g} s",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise UpstreamError(
                    f"{what}: connection failed ({type(exc).__name__}: {one_line(str(exc), 160)})",
                    endpoint=endpoint,
                    retryable=True,
                ) from None
            return self._interpret(endpoint, params, response, ticker)

        return call_with_retries(
            attempt, policy=self.config.retry_policy, limiter=self.limiter, what=what
        )

    def _interpret(
        self, endpoint: str, params: Mapping[str, Any], response: requests.Response, ticker: str
    ) -> dict[str, Any]:
        status, body = response.status_code, response.text
        if self.on_exchange is not None:
            self.on_exchange(endpoint, dict(params), status, body)
        what = f"Yahoo {endpoint}"
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 429:
            # Yahoo answers 429 (text or HTML) both when throttling and to non-browser agents
            raise RateLimitedError(
                f"{what}: rate limited (HTTP 429); lower {C.ENV_YAHOO_CPM}",
                endpoint=endpoint,
                status=status,
                retry_after=retry_after,
            )
        if looks_like_html(response.headers.get("content-type"), body):
            raise HtmlResponseError(
                f"{what}: received HTML, likely a proxy or block page (HTTP {status}) instead of "
                f"JSON; check {C.ENV_YAHOO_URL} and any HTTP proxy",
                endpoint=endpoint,
                status=status,
                retryable=status >= 500,
            )
        try:
            payload = json.loads(body)
        except ValueError:
            raise UpstreamError(
                f"{what}: invalid or truncated JSON (HTTP {status}, {len(body)} "
                f"characters: {one_line(body, 80)!r})",
                endpoint=endpoint,
                status=status,
                retryable=status < 400 or status >= 500,
            ) from None
        error = (payload.get("chart") or {}).get("error") if isinstance(payload, dict) else None
        detail = f"HTTP {status}" + (
            f": {error.get('code')}: {error.get('description')}" if isinstance(error, dict) else ""
        )
        if status == 404 or (isinstance(error, dict) and error.get("code") == "Not Found"):
            raise TickerNotFoundError(
                f"Yahoo has no chart for {ticker!r} ({detail}); delisted or misspelt, skipped",
                ticker=ticker,
                endpoint=endpoint,
                status=status,
            )
        if status >= 500:
            raise UpstreamError(
                f"{what}: server error ({detail})", endpoint=endpoint, status=status, retryable=True
            )
        if (
            status == 400
            and isinstance(error, dict)
            and "doesn't exist" in str(error.get("description", ""))
        ):
            # Quirk: a range without sessions (before listing) is a 400 "Data doesn't exist"
            return {
                "chart": {"result": [{"meta": {}, "indicators": {"quote": [{}]}}], "error": None}
            }
        if status >= 400:
            raise UpstreamError(
                f"{what}: request refused ({detail}); if 401/403, Yahoo may want "
                f"a browser User-Agent or blocks this network",
                endpoint=endpoint,
                status=status,
            )
        result = (payload.get("chart") or {}).get("result") if isinstance(payload, dict) else None
        if error or not isinstance(result, list) or not result:
            raise UpstreamError(
                f"{what}: no chart result ({detail})", endpoint=endpoint, status=status
            )
        return payload


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
    meta = result.get("meta") if isinstance(result.get("meta"), dict) else {}
    tz_name = meta.get("exchangeTimezoneName") or "America/New_York"
    try:
        tz: Any = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    offset, _ = _number(meta.get("gmtoffset"))
    if tz is None and not math.isfinite(offset):
        tz, offset = UTC, 0.0
    raw_stamps = result.get("timestamp") if isinstance(result.get("timestamp"), list) else []
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


__all__ = [
    "EQUITY_COLUMNS",
    "EquityHistory",
    "EquityParse",
    "YahooClient",
    "YahooConfig",
    "fetch_equity_daily",
    "iter_equity_daily",
    "parse_chart",
]
