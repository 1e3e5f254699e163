"""Render DataFrames for people (a rich table) or machines (CSV, JSON)."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")


def render_frame(frame: pd.DataFrame, fmt: str = "table", *, title: str | None = None) -> None:
    """Write ``frame`` to stdout in ``fmt``; the table form right-aligns numbers."""
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
        return
    if fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=None) + "\n")
        return
    table = Table(title=title, show_lines=False)
    for name in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[name].dtype)
        table.add_column(str(name), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*("" if _is_missing(v) else _fmt(v) for v in row))
    # Piped output gets the table's natural width instead of being cut at 80 columns.
    width = None if sys.stdout.isatty() else 10_000
    Console(width=width).print(table)


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
