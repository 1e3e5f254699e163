"""Read and validate a market-cap file (caps without closes) before anything touches the warehouse.

Format (that of ../shared/data/ai_events/market_caps.csv): ``date,symbol,market_cap`` plus the
optional ``volume_usd,source``. A file whose header has ``market_cap`` but no ``close`` is a cap
file (:func:`is_cap_file`); ``aitokens import`` sends it here and a price file to
:mod:`flows.sources.csv_import`. The checks are the price file's (encoding, layout, numbers,
dates, tickers; every bad line named with its number, the file refused whole), with the cap's
own rules:

- ``market_cap`` is required and must be positive (a cap of zero is a missing value, not a cap);
- ``volume_usd`` may be empty, never negative; ``source`` (the vendor label, e.g.
  ``coinmetrics_community``) may be empty (``csv``) and must be a plain label;
- caps are daily: a ``ts`` column or a ``date`` with a time of day is refused;
- one (symbol, date, source) with two different values is refused with both lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from flows.sources.csv_import import (
    _HAS_TIME,
    CsvValidationError,
    _check_header_layout,
    _check_label,
    _check_symbol,
    _field_count_problem,
    _parse_date,
    _parse_number,
    _records,
    decode_csv_bytes,
)
from warehouse.errors import InputError

CAP_REQUIRED = ("date", "symbol", "market_cap")
CAP_OPTIONAL = ("volume_usd", "source")
DEFAULT_CAP_SOURCE = "csv"
CAP_COLUMNS = ["symbol", "date", "source", "market_cap", "volume_usd"]


@dataclass(frozen=True)
class ParsedCaps:
    """A validated batch of caps (``CAP_COLUMNS``), and what was set aside and why."""

    frame: pd.DataFrame
    rows_read: int
    exact_duplicates: int
    ignored_columns: list[str] = field(default_factory=list)
    interval: str = "1d"


def header_columns(path: Path) -> list[str]:
    """The lower-cased column names of the file's first non-blank line, read from its first
    64 KB only ([] when unreadable: the price reader then says what is wrong)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return []
    text = None
    for chunk in (head, head[: head.rfind(b"\n") + 1], head[: len(head) // 4 * 4]):
        try:
            text = decode_csv_bytes(chunk, path.name)  # a cut multi-byte character: try less
            break
        except InputError:
            continue
    for line in (text or "").splitlines():
        if line.strip():
            return [c.strip().strip('"').lower() for c in line.split(",")]
    return []


def is_cap_file(path: str | Path) -> bool:
    """Whether ``path`` is a cap file: a ``market_cap`` column and no ``close`` column."""
    columns = header_columns(Path(path))
    return "market_cap" in columns and "close" not in columns


def _check_cap_header(fields: list[str], name: str) -> list[str]:
    columns = _check_header_layout(fields, name, example=",".join(CAP_REQUIRED))
    if "ts" in columns:
        raise InputError(
            f"{name}: market caps are daily (a date column, YYYY-MM-DD), not hourly: drop the "
            "ts column"
        )
    missing = [c for c in CAP_REQUIRED if c not in columns]
    if missing:
        raise InputError(
            f"{name} lacks the column(s) {', '.join(missing)}; a cap file's header holds "
            f"{','.join(CAP_REQUIRED)} (optional: {','.join(CAP_OPTIONAL)}), found "
            f"{','.join(columns) or 'nothing'}"
        )
    return columns


def read_cap_csv(path: str | Path) -> ParsedCaps:
    """Parse and validate the whole cap file; raise ``CsvValidationError`` listing bad lines."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    records = _records(decode_csv_bytes(data, path.name), path.name)
    if not records:
        raise InputError(f"{path.name} is empty: expected a header line `{','.join(CAP_REQUIRED)}`")
    columns = _check_cap_header(records[0][1], path.name)
    index = {c: i for i, c in enumerate(columns)}
    ignored = [c for c in columns if c not in CAP_REQUIRED + CAP_OPTIONAL]
    latest = datetime.now(UTC).date() + timedelta(days=1)  # a zone ahead of UTC

    def cell(fields: list[str], column: str) -> str:
        i = index.get(column)
        return fields[i].strip() if i is not None and i < len(fields) else ""

    problems: list[tuple[int, str]] = []
    rows = []
    for line, fields in records[1:]:
        if len(fields) > len(columns):
            problems.append((line, _field_count_problem(fields, len(columns))))
            continue
        reasons = []
        raw_date = cell(fields, "date")
        if _HAS_TIME.match(raw_date):
            reasons.append(
                f"date {raw_date[:40]!r} carries a time of day: a cap file holds one cap per "
                "UTC day (YYYY-MM-DD)"
            )
            day = None
        else:
            day, why = _parse_date(raw_date, latest)
            if why:
                reasons.append(why)
        symbol, why = _check_symbol(cell(fields, "symbol"))
        if why:
            reasons.append(why)
        cap, why = _parse_number(
            cell(fields, "market_cap"), name="market_cap", required=True, positive=True
        )
        if why:
            reasons.append(why)
        volume, why = _parse_number(
            cell(fields, "volume_usd"), name="volume_usd", required=False, positive=False
        )
        if why:
            reasons.append(why)
        source = cell(fields, "source")
        why = _check_label("source", source)
        if why:
            reasons.append(why)
        if reasons:
            problems.append((line, "; ".join(reasons)))
            continue
        rows.append(
            {
                "line": line,
                "symbol": symbol,
                "date": day,
                "source": source or DEFAULT_CAP_SOURCE,
                "market_cap": cap,
                "volume_usd": volume,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=["line", *CAP_COLUMNS])
    exact = frame.duplicated(subset=CAP_COLUMNS, keep="first")
    deduped = frame.loc[~exact]
    clash = deduped.duplicated(subset=["symbol", "date", "source"], keep=False)
    for (symbol, day, source), group in deduped.loc[clash].groupby(
        ["symbol", "date", "source"], sort=False
    ):
        lines = group["line"].tolist()
        problems.append(
            (
                lines[0],
                f"{symbol} on {day} ({source}) appears again with different values on line(s) "
                f"{', '.join(map(str, lines[1:]))}",
            )
        )
    if problems:
        raise CsvValidationError(path, sorted(problems))
    return ParsedCaps(
        frame=deduped.drop(columns="line").reset_index(drop=True),
        rows_read=len(records) - 1,
        exact_duplicates=int(exact.sum()),
        ignored_columns=ignored,
    )


__all__ = ["CAP_COLUMNS", "ParsedCaps", "is_cap_file", "read_cap_csv"]
