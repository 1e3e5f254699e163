"""Daily history of one coin: chunked ``market_chart/range`` calls, parsed into tidy closes.

A daily point stamped D 00:00 UTC is CoinGecko's close of the UTC day D-1: frames keep the
stamp in ``ts`` and the close's day in ``date``; partial and hourly points are dropped, counted."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from flows.errors import (
    CoinNotFoundError,
    PayloadMismatchError,
    UpstreamError,
)
from flows.sources.coingecko import constants as C
from flows.sources.coingecko.client import CoinGeckoClient
from flows.sources.coingecko.config import CoinGeckoConfig

log = logging.getLogger("aitokens.sources.coingecko")

DAY = timedelta(days=1)
MS_PER_DAY = 86_400_000
CHART_COLUMNS = ["coin_id", "date", "ts", "price", "market_cap", "volume"]


# ------------------------------------------------------------------------------ chunks
@dataclass(frozen=True)
class Chunk:
    """Close dates ``start..end`` (inclusive) fetched with one ``market_chart/range`` call."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def plan_chunks(start: date, end: date, max_days: int = C.MAX_CHUNK_DAYS) -> list[Chunk]:
    """Split close dates ``start..end`` into consecutive chunks of at most ``max_days`` days.

    The chunks cover every date once, in order; an empty list when ``start > end``.
    """
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}.")
    chunks = []
    cursor = start
    while cursor <= end:
        last = min(end, cursor + timedelta(days=max_days - 1))
        chunks.append(Chunk(cursor, last))
        cursor = last + DAY
    return chunks


def utc_today() -> date:
    return datetime.now(UTC).date()


def earliest_close_date(config: CoinGeckoConfig, today: date | None = None) -> date | None:
    """First close date the plan can serve (None: no cap).

    With a cap of N days the first midnight stamp must be within N days of now; one day of
    margin covers clock differences, so the first stamp is ``today - (N - 2)`` and its close
    date the day before.
    """
    if config.history_days is None:
        return None
    today = today or utc_today()
    return today - timedelta(days=config.history_days - 2) - DAY


def _midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def chunk_request_range(
    chunk: Chunk, *, earliest: date | None = None, now: datetime | None = None
) -> tuple[int, int]:
    """Unix ``(from, to)`` for a chunk: the stamps of its close dates (each date + 1 day).

    Quirk: ``market_chart/range`` answers hourly points for spans of 90 days or less, so a
    short chunk is widened to :data:`MIN_DAILY_SPAN_DAYS` (backwards, not before ``earliest``,
    then forwards, not past ``now``); the extra days are trimmed when parsing.
    """
    now = now or datetime.now(UTC)
    first_stamp, last_stamp = chunk.start + DAY, chunk.end + DAY
    from_ts, to_ts = _midnight(first_stamp), _midnight(last_stamp)
    span = timedelta(days=C.MIN_DAILY_SPAN_DAYS)
    if (last_stamp - first_stamp) < span:
        widened = last_stamp - span
        if earliest is not None:
            widened = max(widened, earliest + DAY)
        from_ts = min(from_ts, _midnight(widened))
        if to_ts - from_ts < span.total_seconds():
            to_ts = min(int(now.timestamp()), from_ts + int(span.total_seconds()))
    return from_ts, to_ts


# ------------------------------------------------------------------------------ parsing
@dataclass
class ChartParse:
    """A tidy ``market_chart/range`` answer and what was removed on the way.

    ``frame`` has :data:`CHART_COLUMNS`, one row per close date, sorted. Counters: points not
    at 00:00 UTC (``n_partial``, incl. the "now" point), repeated stamps (``n_duplicates``,
    the last one in the answer wins), rows without a price (``n_null_price``, dropped), rows
    outside the chunk (``n_outside``, from widening) and malformed points (``n_malformed``).
    Null market caps and volumes stay NaN (young coins often lack a market cap).
    """

    coin_id: str
    frame: pd.DataFrame
    n_points: int = 0
    n_partial: int = 0
    n_duplicates: int = 0
    n_null_price: int = 0
    n_bad_price: int = 0
    n_outside: int = 0
    n_malformed: int = 0
    unordered: bool = False
    n_coerced: int = 0  # numbers sent as strings ("123.4"), read as numbers
    notes: list[str] = field(default_factory=list)  # schema drift seen in this answer


# Stamps a daily series can hold: 2000-01-01 .. 2100-01-01 in ms (pandas overflows far beyond).
_MIN_TS_MS, _MAX_TS_MS = 946_684_800_000, 4_102_444_800_000


def _number(value: Any) -> tuple[float | None, bool]:
    """(value, coerced) for a JSON number or a numeric string; (None, False) otherwise."""
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        return float(value), False
    if isinstance(value, str):
        try:
            return float(value.strip()), True
        except ValueError:
            return None, False
    return None, False


def _series(points: Any, name: str) -> tuple[pd.DataFrame, int, int, bool, int]:
    """(frame of ts_ms and value, malformed, duplicates, unordered, coerced) of one list.

    A point is ``[ts_ms, value]``; numbers may come as strings (coerced and counted). Stamps
    outside 2000..2100, non-finite stamps, other shapes are malformed. A null, non-finite or
    negative value becomes NaN: the row is kept, and a price that is NaN drops it later.
    """
    rows, bad, coerced = [], 0, 0
    for item in points if isinstance(points, list) else []:
        if not (isinstance(item, list | tuple) and len(item) == 2):
            bad += 1
            continue
        stamp, c1 = _number(item[0])
        value, c2 = (None, False) if item[1] is None else _number(item[1])
        if (
            stamp is None
            or not math.isfinite(stamp)
            or not _MIN_TS_MS <= stamp <= _MAX_TS_MS
            or (item[1] is not None and value is None)
        ):
            bad += 1
            continue
        coerced += c1 or c2
        if value is not None and (not math.isfinite(value) or value < 0):
            value = None  # NaN/inf/negative: not a price, not a cap or volume
        rows.append((int(stamp), float("nan") if value is None else value))
    frame = pd.DataFrame(rows, columns=["ts_ms", name]).astype({"ts_ms": "int64", name: "float64"})
    unordered = not frame["ts_ms"].is_monotonic_increasing
    # Quirk: duplicated stamps occur; sort stably and keep the last value given for a stamp.
    frame = frame.sort_values("ts_ms", kind="stable")
    dup = int(frame["ts_ms"].duplicated(keep="last").sum())
    frame = frame.drop_duplicates("ts_ms", keep="last")
    return frame, bad, dup, unordered, coerced


def empty_chart_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in CHART_COLUMNS})
    frame["coin_id"] = frame["coin_id"].astype("object")
    frame["date"] = frame["date"].astype("object")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


# Stamps in seconds of 2000..2100: a chart whose stamps all fall here used seconds, not ms.
_MIN_TS_S, _MAX_TS_S = _MIN_TS_MS // 1000, _MAX_TS_MS // 1000


def refuse_mismatch(coin_id: str, endpoint: str, payload: Mapping[str, Any]) -> None:
    """Refuse a chart that says it is about another coin or currency, or whose stamps are in
    seconds: stored under the requested coin it would be wrong data, silently.

    CoinGecko's chart carries no id; a proxy, a cache or a hostile server may add one (``id``,
    ``coin_id``, ``vs_currency``, ``currency``), and when it does it must match the request.
    """
    for field_name in ("id", "coin_id"):
        said = payload.get(field_name)
        if isinstance(said, str) and said != coin_id:
            raise PayloadMismatchError(
                f"CoinGecko {endpoint}: the answer is for coin {said[:80]!r}, not {coin_id!r}; "
                "refused (nothing stored)",
                endpoint=endpoint,
            )
    for field_name in ("vs_currency", "currency"):
        said = payload.get(field_name)
        if isinstance(said, str) and said.lower() != C.VS_CURRENCY:
            raise PayloadMismatchError(
                f"CoinGecko {endpoint}: the answer is in {said[:20]!r}, not "
                f"{C.VS_CURRENCY!r} as asked; refused (nothing stored)",
                endpoint=endpoint,
            )
    stamps = [
        p[0]
        for p in payload.get("prices") or []
        if isinstance(p, list | tuple) and p and isinstance(p[0], int | float)
    ]
    if stamps and all(_MIN_TS_S <= t <= _MAX_TS_S for t in stamps):
        raise PayloadMismatchError(
            f"CoinGecko {endpoint}: the stamps are in seconds, not milliseconds (first "
            f"{stamps[0]!r}); refused (nothing stored)",
            endpoint=endpoint,
        )


def parse_market_chart(
    coin_id: str, payload: Mapping[str, Any], *, start: date | None = None, end: date | None = None
) -> ChartParse:
    """Turn a ``market_chart/range`` body into one row per close date ``start..end``.

    Schema drift: a body that is not an object or has no ``prices`` list raises
    :class:`UpstreamError` ("unexpected payload shape"), so an answer we cannot read is never
    taken for an empty history. Missing ``market_caps``/``total_volumes`` leave NaN and a note;
    numbers sent as strings are read and counted (``n_coerced``); extra fields are ignored.
    """
    endpoint = f"/coins/{coin_id}/market_chart/range"
    if not isinstance(payload, Mapping):
        raise UpstreamError(
            f"CoinGecko {endpoint}: unexpected payload shape: expected an "
            f"object, got {type(payload).__name__}",
            endpoint=endpoint,
        )
    if not isinstance(payload.get("prices"), list):
        keys = ", ".join(sorted(map(str, payload))[:6]) or "none"
        what = "missing 'prices'" if "prices" not in payload else "'prices' is not a list"
        raise UpstreamError(
            f"CoinGecko {endpoint}: unexpected payload shape: {what} (keys: {keys})",
            endpoint=endpoint,
        )
    refuse_mismatch(coin_id, endpoint, payload)
    notes = [
        f"{coin_id}: answer lacks '{k}', left empty"
        for k in ("market_caps", "total_volumes")
        if not isinstance(payload.get(k), list)
    ]
    prices, bad_p, dup, unordered, co_p = _series(payload.get("prices"), "price")
    caps, bad_c, _, _, co_c = _series(payload.get("market_caps"), "market_cap")
    vols, bad_v, _, _, co_v = _series(payload.get("total_volumes"), "volume")
    merged = prices.merge(caps, on="ts_ms", how="left").merge(vols, on="ts_ms", how="left")
    result = ChartParse(
        coin_id,
        empty_chart_frame(),
        n_points=len(merged),
        n_duplicates=dup,
        n_malformed=bad_p + bad_c + bad_v,
        unordered=unordered,
        n_coerced=co_p + co_c + co_v,
        notes=notes,
    )
    if result.n_coerced:
        result.notes.append(
            f"{coin_id}: {result.n_coerced} numbers came as strings, read as numbers"
        )
    if result.n_malformed:
        result.notes.append(f"{coin_id}: {result.n_malformed} malformed points dropped")
    daily = merged["ts_ms"] % MS_PER_DAY == 0
    result.n_partial = int((~daily).sum())
    merged = merged[daily]
    null_price = merged["price"].isna()
    result.n_null_price = int(null_price.sum())
    merged = merged[~null_price]
    if merged.empty:
        return result
    ts = pd.to_datetime(merged["ts_ms"], unit="ms", utc=True)
    dates = (ts - pd.Timedelta(days=1)).dt.date  # stamp D 00:00 UTC is the close of D-1
    keep = pd.Series(True, index=merged.index)
    if start is not None:
        keep &= dates >= start
    if end is not None:
        keep &= dates <= end
    result.n_outside = int((~keep).sum())
    # A price of 0 is never a close (returns through it would be -100% and -inf in log); the
    # parse above already made negative and non-finite prices NaN. Dropped, counted and said.
    zero = keep & ~(merged["price"] > 0)
    result.n_bad_price = int(zero.sum())
    if result.n_bad_price:
        result.notes.append(
            f"{coin_id}: {result.n_bad_price} daily points with a price of 0 dropped"
        )
    keep &= ~zero
    frame = pd.DataFrame(
        {
            "coin_id": coin_id,
            "date": dates[keep].to_numpy(dtype=object),
            "ts": ts[keep].to_numpy(),
            "price": merged.loc[keep, "price"].to_numpy(dtype="float64"),
            "market_cap": merged.loc[keep, "market_cap"].to_numpy(dtype="float64"),
            "volume": merged.loc[keep, "volume"].to_numpy(dtype="float64"),
        }
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    result.frame = frame.reset_index(drop=True)
    return result


# ------------------------------------------------------------------------------ fetchers
def fetch_market_chart(
    client: CoinGeckoClient, coin_id: str, chunk: Chunk, *, now: datetime | None = None
) -> ChartParse:
    """One ``market_chart/range`` call for a chunk of close dates, parsed and trimmed."""
    earliest = earliest_close_date(client.config, (now or datetime.now(UTC)).date())
    from_ts, to_ts = chunk_request_range(chunk, earliest=earliest, now=now)
    body = client.market_chart_range(coin_id, from_ts, to_ts)
    return parse_market_chart(coin_id, body, start=chunk.start, end=chunk.end)


@dataclass
class CoinHistory:
    """Daily history of one coin over a date range, or why it was skipped."""

    coin_id: str
    frame: pd.DataFrame
    chunks: list[Chunk] = field(default_factory=list)
    calls: int = 0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    n_partial: int = 0
    n_duplicates: int = 0
    n_null_price: int = 0


@dataclass(frozen=True)
class HistoryPlan:
    """The chunks to fetch for ``start..end`` under a plan, and a note when the plan clamped."""

    start: date
    end: date
    chunks: tuple[Chunk, ...]
    note: str | None = None


def plan_history(
    config: CoinGeckoConfig, start: date, end: date, *, today: date | None = None
) -> HistoryPlan:
    """Clamp ``start..end`` to completed days and to the plan's history window, then chunk.

    ``end`` stops at yesterday (the last complete UTC day). On keyless/demo plans ``start`` is
    raised to :func:`earliest_close_date` and ``note`` says so (error 10012 otherwise).
    """
    today = today or utc_today()
    end = min(end, today - DAY)
    note = None
    earliest = earliest_close_date(config, today)
    if earliest is not None and start < earliest:
        note = (
            f"the {config.plan} plan serves only the past {config.history_days} days "
            f"(CoinGecko error 10012): history before {earliest} was not fetched; set "
            f"{C.ENV_COINGECKO_PLAN}=pro with a pro key for older data"
        )
        start = earliest
    return HistoryPlan(start, end, tuple(plan_chunks(start, end)), note)


def fetch_coin_history(
    client: CoinGeckoClient,
    coin_id: str,
    start: date,
    end: date,
    *,
    plan: HistoryPlan | None = None,
    now: datetime | None = None,
) -> CoinHistory:
    """Daily closes of one coin for close dates ``start..end``: one call per chunk.

    A coin CoinGecko does not know (404) is returned with ``skipped`` set to the reason and no
    further call is made for it; every other error propagates.
    """
    now = now or datetime.now(UTC)
    plan = plan or plan_history(client.config, start, end, today=now.date())
    history = CoinHistory(coin_id, empty_chart_frame(), chunks=list(plan.chunks))
    if plan.note:
        history.notes.append(plan.note)
    frames = []
    for chunk in plan.chunks:
        history.calls += 1
        try:
            parsed = fetch_market_chart(client, coin_id, chunk, now=now)
        except CoinNotFoundError as exc:
            history.skipped = str(exc)
            log.warning("skipping %s: %s", coin_id, exc)
            return history
        history.notes.extend(n for n in parsed.notes if n not in history.notes)
        history.n_partial += parsed.n_partial
        history.n_duplicates += parsed.n_duplicates
        history.n_null_price += parsed.n_null_price
        if len(parsed.frame):
            frames.append(parsed.frame)
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        history.frame = (
            frame.drop_duplicates(["coin_id", "date"], keep="last")
            .sort_values("date", kind="stable")
            .reset_index(drop=True)
        )
    if history.n_null_price:
        history.notes.append(f"{history.n_null_price} daily points without a price were dropped")
    return history


def iter_coin_histories(
    client: CoinGeckoClient,
    coin_ids: Iterable[str],
    start: date,
    end: date,
    *,
    max_workers: int = 1,
    now: datetime | None = None,
) -> Iterator[CoinHistory]:
    """Yield :func:`fetch_coin_history` for each coin, in input order.

    With ``max_workers > 1`` coins are fetched in threads; the shared limiter still spaces
    every call, so threads only hide latency. The plan-clamp note is logged once.
    """
    now = now or datetime.now(UTC)
    plan = plan_history(client.config, start, end, today=now.date())
    if plan.note:
        log.warning("%s", plan.note)

    def one(coin_id: str) -> CoinHistory:
        return fetch_coin_history(client, coin_id, start, end, plan=plan, now=now)

    ids = list(coin_ids)
    if max_workers <= 1:
        for coin_id in ids:
            yield one(coin_id)
        return
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="coingecko") as pool:
        yield from pool.map(one, ids)
