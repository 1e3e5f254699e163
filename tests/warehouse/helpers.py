"""Small helpers for warehouse tests: write CSVs, dump tables for exact comparison."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

DATA_TABLES = (
    "coins",
    "category_snapshots",
    "category_members",
    "coin_daily",
    "equity_daily",
    "imported_daily",
    "price_hourly",
    "raw_responses",
    "ingest_runs",
    "study_runs",
    "study_results",
)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def dump_tables(db_file: Path) -> dict[str, list[tuple]]:
    """Every row of every data table, sorted: equal dumps mean equal warehouses."""
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        return {
            t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in DATA_TABLES
        }
    finally:
        con.close()


def read_df(db_file: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()
