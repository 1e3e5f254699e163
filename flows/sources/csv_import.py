"""Read and validate a long-format price CSV before anything touches the warehouse.

Format (exactly that of ../shared/data/sora2024/prices.csv): ``date,symbol,close`` plus the
optional ``volume_usd,market_cap,asset_class,venue``. Every line is checked first; a file with
any bad line is rejected whole, with up to ``MAX_REPORTED`` offending lines named by number.

Hourly closes (../shared/data/sora2024/hourly.csv) take a ``ts`` column instead of ``date``:
the UTC close time of the hour, ISO-8601 with ``Z`` or ``+00:00`` (``2024-01-05T01:00:00Z``).
A ``ts`` column holding times makes the file hourly (``ParsedCsv.interval == "1h"``, a frame
with a ``ts`` column); a file is daily or hourly, never both: a ``date`` value carrying a time,
or a ``ts`` column mixing dates and times, is refused.

What a file from a spreadsheet or another vendor gets wrong, and the answer it gets:

- encoding: UTF-8 (with or without BOM) and UTF-16 with a BOM are read; anything else (Windows
  -1252/Latin-1, UTF-16 without BOM) is refused with the encoding named and how to convert;
- layout: ``;`` or tab separators, a missing header line, a repeated column, a line with more
  fields than the header (an unquoted decimal comma, ``0,66``) are refused with the line;
- values: decimal commas, ``NaN``/``inf``, zero or negative prices, negative volumes, dates not
  ``YYYY-MM-DD`` or outside 1900..today, symbols with characters a ticker never has, and one
  key with two different values: each line is named with its reason;
- hourly times: no UTC offset, a non-UTC offset, a time not on the hour (``ts`` is the hour's
  close), a time in the future, a date-only value among times: each line is named.

Line numbers are those of the file as an editor shows them (blank lines count).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from warehouse.errors import InputError

REQUIRED_COLUMNS = ("date", "symbol", "close")
TIME_COLUMNS = ("date", "ts")  # exactly one of them: ts is the hourly file's
OPTIONAL_COLUMNS = ("volume_usd", "market_cap", "asset_class", "venue")
MAX_REPORTED = 10
DEFAULT_ASSET_CLASS = "crypto"
DEFAULT_SOURCE = "csv"
EARLIEST_DATE = date(1900, 1, 1)

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NON_FINITE = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<h>\d{2}):(?P<m>\d{2})"
    r"(?::(?P<s>\d{2})(?P<frac>[.,]\d+)?)?\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_HAS_TIME = re.compile(r"\s*\d{4}-\d{1,2}-\d{1,2}[Tt ]+\d")
_LOOKS_LIKE_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")
_SYMBOL = re.compile(r"[A-Z0-9^][A-Z0-9._^=/-]{0,31}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class CsvValidationError(InputError):
    """The CSV has bad lines; it was rejected whole and nothing was written."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]):
        self.path = path
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  line {line}: {reason}" for line, reason in shown)
        tail = f"\n  ... and {more} more" if more else ""
        noun = "bad line" if len(problems) == 1 else "bad lines"
        super().__init__(
            f"{path.name} has {len(problems)} {noun}, nothing imported:\n{lines}{tail}"
        )


@dataclass(frozen=True)
class ParsedCsv:
    """A validated batch, with what was set aside and why.

    ``interval`` is ``"1d"`` (a ``date`` column: rows for ``imported_daily``) or ``"1h"`` (a
    ``ts`` column of UTC hour-close times, naive UTC in the frame: rows for ``price_hourly``).
    """

    frame: pd.DataFrame
    rows_read: int
    exact_duplicates: int
    ignored_columns: list[str] = field(default_factory=list)
    interval: str = "1d"


def _parse_number(
    raw: str, *, name: str, required: bool, positive: bool
) -> tuple[float, str | None]:
    text = raw.strip()
    if not text:
        return (math.nan, f"{name} is empty") if required else (math.nan, None)
    if text.lower() in _NON_FINITE:
        return math.nan, f"{name} {raw!r} is not a finite number"
    if not _NUMBER.fullmatch(text):
        if _DECIMAL_COMMA.fullmatch(text):
            return math.nan, (
                f"{name} {raw!r} is not a number (decimal comma? write {text.replace(',', '.')})"
            )
        return math.nan, f"{name} {raw!r} is not a number"
    value = float(text)
    if not math.isfinite(value):
        return math.nan, f"{name} {raw!r} is not a finite number"
    if positive and value <= 0:
        return math.nan, f"{name} {raw!r} must be positive"
    if not positive and value < 0:
        return math.nan, f"{name} {raw!r} must not be negative"
    return value, None


def _parse_date(raw: str, latest: date, name: str = "date") -> tuple[date | None, str | None]:
    text = raw.strip()
    if not _DATE.fullmatch(text):
        return None, f"{name} {raw!r} is not a YYYY-MM-DD date"
    try:
        value = date.fromisoformat(text)
    except ValueError:
        return None, f"{name} {raw!r} is not a YYYY-MM-DD date"
    if value < EARLIEST_DATE:
        return None, f"{name} {raw!r} is before {EARLIEST_DATE}: not a plausible price date"
    if value > latest:
        return None, f"{name} {raw!r} is in the future"
    return value, None


def _fmt_ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_hour(raw: str, latest: datetime) -> tuple[datetime | None, str | None]:
    """An hour-close time: ISO-8601 in UTC (``Z``, ``+00:00``), on the hour, 1900..now."""
    text = raw.strip()
    example = "such as 2024-01-05T01:00:00Z"
    match = _TIME.fullmatch(text)
    if not match:
        return None, f"ts {raw!r} is not an ISO-8601 UTC time {example}"
    try:
        day = date.fromisoformat(match["date"])
        hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
        frac = float("0" + match["frac"].replace(",", ".")) if match["frac"] else 0.0
        local = datetime(day.year, day.month, day.day, hour, minute, second)
    except ValueError:
        return None, f"ts {raw!r} is not a valid time {example}"
    zone = match["tz"]
    if zone is None:
        return None, (
            f"ts {raw!r} has no UTC offset: write times in UTC with a Z, e.g. {_fmt_ts(local)}"
        )
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if zone[0] == "-":
            offset = -offset
    if offset:
        return None, (
            f"ts {raw!r} has the UTC offset {zone}, not UTC: write UTC times with Z or +00:00 "
            f"(that instant is {_fmt_ts(local - offset)})"
        )
    if minute or second or frac:
        return None, (
            f"ts {raw!r} is not on the hour: ts is the UTC close time of the hour (HH:00:00Z); "
            "snap vendor stamps to hour closes before importing"
        )
    if local.date() < EARLIEST_DATE:
        return None, f"ts {raw!r} is before {EARLIEST_DATE}: not a plausible price time"
    if local > latest:
        return None, f"ts {raw!r} is in the future: that hour has not closed yet"
    return local, None


def _parse_when(
    raw: str,
    *,
    column: str,
    interval: str,
    first_timed: tuple[int, str] | None,
    latest: tuple[date, datetime],
) -> tuple[date | datetime | None, str | None]:
    """The line's day (``interval == "1d"``) or hour close (``"1h"``); a value of the other
    kind is a mixing error."""
    mixing = "a file mixing daily and hourly rows is refused"
    if interval == "1h":
        if _DATE.fullmatch(raw) and first_timed is not None:
            return None, (
                f"{mixing}: ts {raw!r} is a date without a time, line {first_timed[0]} holds "
                f"the hourly time {first_timed[1][:40]!r} (import daily and hourly closes as "
                "two files)"
            )
        return _parse_hour(raw, latest[1])
    if _HAS_TIME.match(raw):
        return None, (
            f"{mixing}: {column} {raw[:40]!r} carries a time of day (write YYYY-MM-DD for a "
            "daily close; hourly closes go in a ts column, in a file of their own)"
        )
    day, why = _parse_date(raw, latest[0], column)
    if why and column == "ts" and not _DATE.fullmatch(raw):
        why = (
            f"ts {raw!r} is neither a YYYY-MM-DD date nor an ISO-8601 UTC time such as "
            "2024-01-05T01:00:00Z"
        )
    return day, why


def _interval_of(
    records: list[tuple[int, list[str]]], position: int | None, time_column: str
) -> tuple[str, tuple[int, str] | None]:
    """``"1h"`` when a ``ts`` column holds a time, else ``"1d"``; and the first timed value's
    (line, text), to name in a mixing error."""
    if position is None:
        return "1d", None
    first = None
    for line, fields in records:
        if position < len(fields) and _HAS_TIME.match(fields[position]):
            first = (line, fields[position].strip())
            break
    return ("1h" if time_column == "ts" and first else "1d"), first


def decode_csv_bytes(data: bytes, name: str) -> str:
    """The file's text: UTF-8 (BOM or not) or UTF-16/32 with a BOM; anything else is refused
    with the encoding it looks like and how to convert it."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{name} starts with a {encoding.upper()} byte-order mark but is not valid "
                    f"{encoding.upper()} (byte {exc.start}): save it as UTF-8"
                ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if data[:4096].count(b"\x00") > len(data[:4096]) // 4:
            guess = "UTF-16 without a byte-order mark"
            how = "save it as UTF-8"
        else:
            guess = "Windows-1252 / Latin-1 (a spreadsheet export)"
            how = f"save it as UTF-8, e.g. iconv -f cp1252 -t utf-8 {name} > utf8.csv"
        raise InputError(
            f"{name} is not UTF-8 text (line {line}, byte {exc.start}: "
            f"{data[exc.start : exc.start + 1]!r}); it looks like {guess}: {how}"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(
            f"{name} holds NUL characters (line {line}): not a text CSV, or UTF-16 without a "
            "byte-order mark; save it as UTF-8"
        )
    return text


def _records(text: str, name: str) -> list[tuple[int, list[str]]]:
    """(first line number, fields) of every non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    out: list[tuple[int, list[str]]] = []
    last = 0
    try:
        for fields in reader:
            start, last = last + 1, reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            out.append((start, fields))
    except csv.Error as exc:
        raise InputError(
            f"{name} is not a well-formed CSV (line {reader.line_num}: {exc}); check its quotes"
        ) from None
    return out


def _check_header(fields: list[str], name: str) -> list[str]:
    columns = _check_header_start(
        fields,
        name,
        add_line=f"`{','.join(REQUIRED_COLUMNS)}` (hourly: `ts,symbol,close`; optional: "
        f"{','.join(OPTIONAL_COLUMNS)})",
    )
    if all(c in columns for c in TIME_COLUMNS):
        raise InputError(
            f"{name} has both a date and a ts column: a file is daily (date) or hourly (ts, "
            "the UTC close time of the hour), never both; keep one"
        )
    wanted = [c for c in REQUIRED_COLUMNS if c != "date"]
    wanted.insert(0, "ts" if "ts" in columns else "date")
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InputError(
            f"{name} lacks the column(s) {', '.join(missing)}; the header must hold "
            f"{','.join(REQUIRED_COLUMNS)} (hourly closes: ts,symbol,close; optional: "
            f"{','.join(OPTIONAL_COLUMNS)}), found {','.join(columns) or 'nothing'}"
        )
    _refuse_repeated_columns(columns, name)
    return columns


def _check_header_start(fields: list[str], name: str, *, add_line: str) -> list[str]:
    """The first checks every CSV header gets (separators, a missing header line); ``add_line``
    is the header the message tells the user to add. Returns the lower-cased columns."""
    joined = ",".join(fields)
    for sep, label in ((";", "semicolons (;)"), ("\t", "tabs")):
        if len(fields) == 1 and sep in fields[0]:
            raise InputError(
                f"{name} separates its columns with {label}: save it comma-separated, with '.' "
                f"as the decimal mark (header found: {joined[:80]!r})"
            )
    first = fields[0].strip() if fields else ""
    if _LOOKS_LIKE_DATE.fullmatch(first) or _HAS_TIME.match(first):
        raise InputError(
            f"{name} has no header line: line 1 is data ({joined[:60]!r}); add the line "
            f"{add_line} first"
        )
    return [f.strip().lower() for f in fields]


def _refuse_repeated_columns(columns: list[str], name: str) -> None:
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise InputError(f"{name}: column(s) {', '.join(repeated)} appear twice in the header")


def _check_header_layout(fields: list[str], name: str, *, example: str) -> list[str]:
    """The layout checks every CSV header gets (separators, a missing header line, a repeated
    column), for readers with their own required columns (the cap file's); ``example`` is the
    header line the message suggests."""
    columns = _check_header_start(fields, name, add_line=f"`{example}`")
    _refuse_repeated_columns(columns, name)
    return columns


def _check_symbol(raw: str) -> tuple[str, str | None]:
    """``(upper-cased symbol, why it is refused or None)``: the one ticker rule of every file."""
    symbol = raw.upper()
    if not symbol:
        return symbol, "symbol is empty"
    if not _SYMBOL.fullmatch(symbol):
        return symbol, (
            f"symbol {raw[:40]!r} is not a ticker (letters, digits and . _ ^ = / - only, at "
            "most 32)"
        )
    return symbol, None


def _check_label(column: str, value: str) -> str | None:
    """Why ``value`` is refused as a label column (venue, asset_class, source), or None."""
    if value and not _LABEL.fullmatch(value):
        return f"{column} {value[:40]!r} is not valid (letters, digits, '_', '.', '-')"
    return None


def _field_count_problem(fields: list[str], width: int) -> str:
    why = f"has {len(fields)} fields, the header has {width}"
    pairs = zip(fields, fields[1:], strict=False)
    if any(a.strip().lstrip("+-").isdigit() and b.strip().isdigit() for a, b in pairs):
        why += "; a decimal comma (0,66)? write 0.66, or quote the field"
    return why


def read_price_csv(
    path: str | Path, *, default_asset_class: str = DEFAULT_ASSET_CLASS
) -> ParsedCsv:
    """Parse and validate the whole file; raise ``CsvValidationError`` listing bad lines."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if not _LABEL.fullmatch(default_asset_class or ""):
        raise InputError(
            f"asset class {default_asset_class!r} is not valid: letters, digits, '_', '.', '-'"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    text = decode_csv_bytes(data, path.name)
    records = _records(text, path.name)
    if not records:
        raise InputError(
            f"{path.name} is empty: expected a header line `date,symbol,close` "
            "(hourly closes: `ts,symbol,close`)"
        )
    header_line, header = records[0]
    columns = _check_header(header, path.name)
    index = {c: i for i, c in enumerate(columns)}
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + TIME_COLUMNS
    ignored = [c for c in columns if c not in known]
    latest = datetime.now(UTC).date() + timedelta(days=1)  # a zone ahead of UTC
    latest_hour = datetime.now(UTC).replace(tzinfo=None)  # a close after now: hour not over
    time_column = "ts" if "ts" in index else "date"
    interval, first_timed = _interval_of(records[1:], index.get(time_column), time_column)
    key_column = "ts" if interval == "1h" else "date"

    def cell(fields: list[str], column: str) -> str:
        i = index.get(column)
        return fields[i].strip() if i is not None and i < len(fields) else ""

    problems: list[tuple[int, str]] = []
    records_out = []
    for line, fields in records[1:]:
        if len(fields) > len(columns):
            problems.append((line, _field_count_problem(fields, len(columns))))
            continue
        reasons = []
        when, why = _parse_when(
            cell(fields, time_column),
            column=time_column,
            interval=interval,
            first_timed=first_timed,
            latest=(latest, latest_hour),
        )
        if why:
            reasons.append(why)
        symbol, why = _check_symbol(cell(fields, "symbol"))
        if why:
            reasons.append(why)
        close, why = _parse_number(
            cell(fields, "close"), name="close", required=True, positive=True
        )
        if why:
            reasons.append(why)
        volume, why = _parse_number(
            cell(fields, "volume_usd"), name="volume_usd", required=False, positive=False
        )
        if why:
            reasons.append(why)
        mcap, why = _parse_number(
            cell(fields, "market_cap"), name="market_cap", required=False, positive=False
        )
        if why:
            reasons.append(why)
        labels = {}
        for column, default in (("venue", DEFAULT_SOURCE), ("asset_class", default_asset_class)):
            value = cell(fields, column)
            why = _check_label(column, value)
            if why:
                reasons.append(why)
            labels[column] = value or default
        if reasons:
            problems.append((line, "; ".join(reasons)))
            continue
        records_out.append(
            {
                "line": line,
                "symbol": symbol,
                key_column: when,
                "source": labels["venue"],
                "asset_class": labels["asset_class"],
                "close": close,
                "volume_usd": volume,
                "market_cap": mcap,
            }
        )

    value_cols = [
        "symbol",
        key_column,  # date (a daily file) or ts (an hourly one)
        "source",
        "asset_class",
        "close",
        "volume_usd",
        "market_cap",
    ]
    frame = pd.DataFrame.from_records(records_out, columns=["line", *value_cols])
    if interval == "1h":
        frame[key_column] = pd.to_datetime(frame[key_column]).astype("datetime64[us]")
    exact_dup = frame.duplicated(subset=value_cols, keep="first")
    deduped = frame.loc[~exact_dup]
    clash = deduped.duplicated(subset=["symbol", key_column], keep=False)
    if clash.any():
        for (symbol, when), group in deduped.loc[clash].groupby(["symbol", key_column], sort=False):
            lines = group["line"].tolist()
            at = f"at {_fmt_ts(when)}" if interval == "1h" else f"on {when}"
            problems.append(
                (
                    lines[0],
                    f"{symbol} {at} appears again with different values on line(s) "
                    f"{', '.join(map(str, lines[1:]))}",
                )
            )
    if problems:
        raise CsvValidationError(path, sorted(problems))
    return ParsedCsv(
        frame=deduped.drop(columns="line").reset_index(drop=True),
        rows_read=len(records) - 1,
        exact_duplicates=int(exact_dup.sum()),
        ignored_columns=ignored,
        interval=interval,
    )
