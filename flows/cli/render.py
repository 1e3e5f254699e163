"""Render DataFrames for people (a rich table) or machines (CSV, JSON)."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "csv", "json")


def render_frame(frame: pd.DataFrame, fmt: str = "table", *, title: str | None = None) -> None:
    """Write ``frame`` to stdout in ``fmt``; the table form right-aligns numbers."""
    frame = _dates_as_dates(frame)
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
        return
    if fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=None) + "\n")
        return
    table = Table(title=title, show_lines=False)
    for name in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[name].dtype)
        # Text, not str: data is printed as typed, never read as rich markup ("[bold]", ":x:").
        # fold, never ellipsis: on an 80-column terminal a long value (a study id, an event
        # name the user must type next) wraps onto the next line instead of being cut.
        table.add_column(Text(str(name)), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text("" if _is_missing(v) else _fmt(v)) for v in row))
    # Piped output gets the table's natural width instead of being cut at 80 columns.
    width = None if sys.stdout.isatty() else 10_000
    Console(width=width).print(table)


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
