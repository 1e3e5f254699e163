"""Read and validate a long-format price CSV before anything touches the warehouse.

Format (exactly that of ../shared/data/sora2024/prices.csv): ``date,symbol,close`` plus the
optional ``volume_usd,market_cap,asset_class,venue``. Every line is checked first; a file with
any bad line is rejected whole, with up to ``MAX_REPORTED`` offending lines named by number.

What a file from a spreadsheet or another vendor gets wrong, and the answer it gets:

- encoding: UTF-8 (with or without BOM) and UTF-16 with a BOM are read; anything else (Windows
  -1252/Latin-1, UTF-16 without BOM) is refused with the encoding named and how to convert;
- layout: ``;`` or tab separators, a missing header line, a repeated column, a line with more
  fields than the header (an unquoted decimal comma, ``0,66``) are refused with the line;
- values: decimal commas, ``NaN``/``inf``, zero or negative prices, negative volumes, dates not
  ``YYYY-MM-DD`` or outside 1900..today, symbols with characters a ticker never has, and one
  key with two different values: each line is named with its reason.

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
    """A validated batch ready for ``imported_daily``, with what was set aside and why."""

    frame: pd.DataFrame
    rows_read: int
    exact_duplicates: int
    ignored_columns: list[str] = field(default_factory=list)


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


def _parse_date(raw: str, latest: date) -> tuple[date | None, str | None]:
    text = raw.strip()
    if not _DATE.fullmatch(text):
        return None, f"date {raw!r} is not a YYYY-MM-DD date"
    try:
        value = date.fromisoformat(text)
    except ValueError:
        return None, f"date {raw!r} is not a YYYY-MM-DD date"
    if value < EARLIEST_DATE:
        return None, f"date {raw!r} is before {EARLIEST_DATE}: not a plausible price date"
    if value > latest:
        return None, f"date {raw!r} is in the future"
    return value, None


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
    columns = [f.strip().lower() for f in fields]
    joined = ",".join(fields)
    for sep, label in ((";", "semicolons (;)"), ("\t", "tabs")):
        if len(fields) == 1 and sep in fields[0]:
            raise InputError(
                f"{name} separates its columns with {label}: save it comma-separated, with '.' "
                f"as the decimal mark (header found: {joined[:80]!r})"
            )
    if fields and _LOOKS_LIKE_DATE.fullmatch(fields[0].strip()):
        raise InputError(
            f"{name} has no header line: line 1 is data ({joined[:60]!r}); add the line "
            f"`{','.join(REQUIRED_COLUMNS)}` (optional: {','.join(OPTIONAL_COLUMNS)}) first"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(
            f"{name} lacks the column(s) {', '.join(missing)}; the header must hold "
            f"{','.join(REQUIRED_COLUMNS)} (optional: {','.join(OPTIONAL_COLUMNS)}), found "
            f"{','.join(columns) or 'nothing'}"
        )
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise InputError(f"{name}: column(s) {', '.join(repeated)} appear twice in the header")
    return columns


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
        raise InputError(f"{path.name} is empty: expected a header line `date,symbol,close`")
    header_line, header = records[0]
    columns = _check_header(header, path.name)
    index = {c: i for i, c in enumerate(columns)}
    ignored = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    latest = datetime.now(UTC).date() + timedelta(days=1)  # a zone ahead of UTC

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
        day, why = _parse_date(cell(fields, "date"), latest)
        if why:
            reasons.append(why)
        symbol = cell(fields, "symbol").upper()
        if not symbol:
            reasons.append("symbol is empty")
        elif not _SYMBOL.fullmatch(symbol):
            reasons.append(
                f"symbol {cell(fields, 'symbol')[:40]!r} is not a ticker (letters, digits and "
                ". _ ^ = / - only, at most 32)"
            )
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
            if value and not _LABEL.fullmatch(value):
                reasons.append(
                    f"{column} {value[:40]!r} is not valid (letters, digits, '_', '.', '-')"
                )
            labels[column] = value or default
        if reasons:
            problems.append((line, "; ".join(reasons)))
            continue
        records_out.append(
            {
                "line": line,
                "symbol": symbol,
                "date": day,
                "source": labels["venue"],
                "asset_class": labels["asset_class"],
                "close": close,
                "volume_usd": volume,
                "market_cap": mcap,
            }
        )

    frame = pd.DataFrame.from_records(
        records_out,
        columns=[
            "line",
            "symbol",
            "date",
            "source",
            "asset_class",
            "close",
            "volume_usd",
            "market_cap",
        ],
    )
    value_cols = ["symbol", "date", "source", "asset_class", "close", "volume_usd", "market_cap"]
    exact_dup = frame.duplicated(subset=value_cols, keep="first")
    deduped = frame.loc[~exact_dup]
    clash = deduped.duplicated(subset=["symbol", "date"], keep=False)
    if clash.any():
        for (symbol, day), group in deduped.loc[clash].groupby(["symbol", "date"], sort=False):
            lines = group["line"].tolist()
            problems.append(
                (
                    lines[0],
                    f"{symbol} on {day} appears again with different values on line(s) "
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
    )
