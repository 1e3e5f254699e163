"""Asset-metric rows into tidy daily rows of ``market_caps_daily``; paging a range into calls.

Dates. A daily (``1d``) row of Coin Metrics is stamped ``D T00:00:00.000000000Z`` and holds the
values of the UTC day D (``CapMrktEstUSD`` at its end), stored under ``date`` = D, as in the
community files (``../shared/data/ai_events/market_caps.csv``). Today's row, while the day is
not over, is dropped and asked for again by a later run.

Strictness. Values come as decimal strings; a metric missing from a row is a missing value (the
API leaves it out), but a value that is not a non-negative number, a time that is not a day, a
row of another asset or a repeated day means the answer is not what we think it is: it is
refused whole with an :class:`~flows.errors.UpstreamError` naming the row, never half loaded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from flows.errors import UpstreamError
from flows.sources.coinmetrics import constants as C
from flows.sources.coinmetrics.client import CoinMetricsClient

ROW_COLUMNS = ["symbol", "date", "source", "market_cap", "volume_usd", "price_usd"]
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})T00:00:00(\.0+)?Z")


@dataclass
class MetricsParse:
    """Tidy daily rows of one asset, and what was left out."""

    asset: str
    frame: pd.DataFrame
    n_rows: int = 0
    n_open: int = 0  # today's row, the day not over
    n_empty: int = 0  # rows without any of the metrics
    notes: list[str] = field(default_factory=list)


def empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in ROW_COLUMNS})
    for c in ("symbol", "date", "source"):
        frame[c] = frame[c].astype("object")
    return frame


def _refuse(asset: str, index: int, what: str) -> UpstreamError:
    return UpstreamError(
        f"Coin Metrics {C.ASSET_METRICS_PATH} {asset}: malformed row {index}: {what}; the answer "
        "is refused (nothing of it loaded)",
        endpoint=C.ASSET_METRICS_PATH,
    )


def _value(asset: str, index: int, day: date, name: str, raw: Any) -> float:
    if raw is None:
        return math.nan
    if isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    else:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise _refuse(asset, index, f"{day} {name} is {raw!r}, expected a non-negative number")
    return value


def parse_rows(asset: str, rows: list[Any], *, now: datetime | None = None) -> MetricsParse:
    """Turn the ``data`` rows of one or more pages into one row per UTC day, oldest first."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    out = []
    seen: dict[date, int] = {}
    parsed = MetricsParse(asset, empty_frame(), n_rows=len(rows))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _refuse(asset, i, f"expected an object, got {type(row).__name__}")
        if str(row.get("asset", "")).lower() != asset:
            raise _refuse(asset, i, f"asset is {row.get('asset')!r}, not {asset!r}")
        match = _DAY.fullmatch(str(row.get("time", "")))
        if not match:
            raise _refuse(asset, i, f"time {row.get('time')!r} is not the start of a UTC day")
        day = date.fromisoformat(match.group(1))
        if day in seen:
            raise _refuse(asset, i, f"{day} repeats row {seen[day]}")
        seen[day] = i
        if day >= today:
            parsed.n_open += 1
            continue
        values = {
            col: _value(asset, i, day, metric, row.get(metric))
            for metric, col in C.COLUMN_OF.items()
        }
        if all(math.isnan(v) for v in values.values()):
            parsed.n_empty += 1
            continue
        out.append({"symbol": asset.upper(), "date": day, "source": C.SOURCE_NAME, **values})
    if out:
        frame = pd.DataFrame.from_records(out, columns=ROW_COLUMNS)
        parsed.frame = frame.sort_values("date").reset_index(drop=True)
    if parsed.n_open:
        parsed.notes.append(f"{asset}: today's row left out (the UTC day is not over)")
    return parsed


def fetch_metrics(
    client: CoinMetricsClient, asset: str, start: date, end: date, *, now: datetime | None = None
) -> MetricsParse:
    """Every page of ``asset`` from ``start`` to ``end``, parsed."""
    rows: list[Any] = []
    for page in client.asset_metrics_pages(asset, start, end):
        rows.extend(page)
    parsed = parse_rows(asset, rows, now=now)
    frame = parsed.frame
    inside = (frame["date"] >= start) & (frame["date"] <= end) if len(frame) else None
    if inside is not None and not bool(inside.all()):
        parsed.notes.append(f"{asset}: {int((~inside).sum())} row(s) outside the range left out")
        parsed.frame = frame[inside].reset_index(drop=True)
    return parsed
