"""Read and validate a long-format price CSV before anything touches the warehouse.

Format (exactly that of ../shared/data/sora2024/prices.csv): ``date,symbol,close`` plus the
optional ``volume_usd,market_cap,asset_class,venue``. Every line is checked first; a file with
any bad line is rejected whole, with up to ``MAX_REPORTED`` offending lines named by number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from warehouse.errors import InputError

REQUIRED_COLUMNS = ("date", "symbol", "close")
OPTIONAL_COLUMNS = ("volume_usd", "market_cap", "asset_class", "venue")
MAX_REPORTED = 10
DEFAULT_ASSET_CLASS = "crypto"
DEFAULT_SOURCE = "csv"


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
    try:
        value = float(text)
    except ValueError:
        return math.nan, f"{name} {raw!r} is not a number"
    if not math.isfinite(value):
        return math.nan, f"{name} {raw!r} is not a finite number"
    if positive and value <= 0:
        return math.nan, f"{name} {raw!r} must be positive"
    if not positive and value < 0:
        return math.nan, f"{name} {raw!r} must not be negative"
    return value, None


def read_price_csv(
    path: str | Path, *, default_asset_class: str = DEFAULT_ASSET_CLASS
) -> ParsedCsv:
    """Parse and validate the whole file; raise ``CsvValidationError`` listing bad lines."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True
        )
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path.name} is empty: expected a header line `date,symbol,close`"
        ) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path.name} is not a well-formed CSV: {str(exc).strip()}") from None

    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(
            f"{path.name} lacks the column(s) {', '.join(missing)}; the header must hold "
            f"{','.join(REQUIRED_COLUMNS)} (optional: {','.join(OPTIONAL_COLUMNS)}), found "
            f"{','.join(raw.columns) or 'nothing'}"
        )
    ignored = [c for c in raw.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    for col in OPTIONAL_COLUMNS:
        if col not in raw.columns:
            raw[col] = ""

    problems: list[tuple[int, str]] = []
    line_no = pd.RangeIndex(2, 2 + len(raw))  # header is line 1
    dates = pd.to_datetime(raw["date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    records = []
    for i, row in enumerate(raw.itertuples(index=False)):
        line = int(line_no[i])
        reasons = []
        if pd.isna(dates.iloc[i]):
            reasons.append(f"date {row.date!r} is not a YYYY-MM-DD date")
        symbol = row.symbol.strip().upper()
        if not symbol:
            reasons.append("symbol is empty")
        close, why = _parse_number(row.close, name="close", required=True, positive=True)
        if why:
            reasons.append(why)
        volume, why = _parse_number(
            row.volume_usd, name="volume_usd", required=False, positive=False
        )
        if why:
            reasons.append(why)
        mcap, why = _parse_number(row.market_cap, name="market_cap", required=False, positive=False)
        if why:
            reasons.append(why)
        if reasons:
            problems.append((line, "; ".join(reasons)))
            continue
        records.append(
            {
                "line": line,
                "symbol": symbol,
                "date": dates.iloc[i].date(),
                "source": row.venue.strip() or DEFAULT_SOURCE,
                "asset_class": row.asset_class.strip() or default_asset_class,
                "close": close,
                "volume_usd": volume,
                "market_cap": mcap,
            }
        )

    frame = pd.DataFrame.from_records(
        records,
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
        for (symbol, date), group in deduped.loc[clash].groupby(["symbol", "date"], sort=False):
            lines = group["line"].tolist()
            problems.append(
                (
                    lines[0],
                    f"{symbol} on {date} appears again with different values on line(s) "
                    f"{', '.join(map(str, lines[1:]))}",
                )
            )
    if problems:
        raise CsvValidationError(path, sorted(problems))
    return ParsedCsv(
        frame=deduped.drop(columns="line").reset_index(drop=True),
        rows_read=len(raw),
        exact_duplicates=int(exact_dup.sum()),
        ignored_columns=ignored,
    )
