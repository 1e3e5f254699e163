"""Render DataFrames for people (a rich table) or machines (CSV, JSON).

Every cell may hold text from outside (a coin name from an API, an event description from the
catalog), so each form is made safe for where it lands:

- table: cells are plain :class:`rich.text.Text`, so ``[bold]`` or ``[link=...]`` in a name is
  shown as typed, never as markup; control characters (an ANSI escape ``\\x1b[...``, a carriage
  return that would overprint the line) are shown escaped, as ``\\x1b``.
- csv: text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or
  carriage return first; OWASP "CSV Injection") get a leading ``'``; numbers, and text that is
  just a number such as ``-5``, are left as they are.
- json: JSON strings are data to every reader; nothing to neutralise.
"""

from __future__ import annotations

import re
import sys
from typing import IO

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "csv", "json")

# OWASP CSV Injection: the characters that make Excel, LibreOffice or Sheets read a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def render_frame(frame: pd.DataFrame, fmt: str = "table", *, title: str | None = None) -> None:
    """Write ``frame`` to stdout in ``fmt``; the table form right-aligns numbers."""
    frame = _dates_as_dates(frame)
    if fmt == "csv":
        write_csv(frame, sys.stdout)
        return
    if fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=None) + "\n")
        return
    table = Table(title=None if title is None else Text(terminal_text(title)), show_lines=False)
    for name in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[name].dtype)
        # Text, not str: data is printed as typed, never read as rich markup ("[bold]", ":x:").
        # fold, never ellipsis: on an 80-column terminal a long value (a study id, an event
        # name the user must type next) wraps onto the next line instead of being cut.
        table.add_column(
            Text(terminal_text(str(name))),
            justify="right" if numeric else "left",
            overflow="fold",
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(Text("" if _is_missing(v) else terminal_text(_fmt(v))) for v in row))
    # Piped output gets the table's natural width instead of being cut at 80 columns.
    width = None if sys.stdout.isatty() else 10_000
    Console(width=width).print(table)


def terminal_text(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), so a name cannot move
    the cursor, recolour the terminal or overprint the line."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def neutralise_formula(value: object) -> object:
    """A text cell that a spreadsheet would evaluate, prefixed with ``'`` (OWASP); anything
    else (numbers, dates, text that is a plain number such as ``-5`` or ``+1.5e3``) as is."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell passed through :func:`neutralise_formula` (and text
    column names too); numeric columns are untouched."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            out[name] = column.map(neutralise_formula)
    out.columns = [neutralise_formula(c) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, handle: IO[str]) -> None:
    """The one way a frame becomes CSV: formula cells neutralised, no index."""
    csv_safe(frame).to_csv(handle, index=False)


def _dates_as_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """DATE columns (named in ``frame.attrs["date_columns"]``) as ``YYYY-MM-DD`` strings."""
    columns = [c for c in frame.attrs.get("date_columns", []) if c in frame.columns]
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        values = pd.to_datetime(frame[column])
        frame[column] = values.dt.strftime("%Y-%m-%d").where(values.notna(), None)
    return frame


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value)
