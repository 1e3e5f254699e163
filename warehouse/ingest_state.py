"""What an ingestion run reads back from the warehouse: its incremental state.

Every question the ingest service asks before it fetches (what is covered, what was already
snapshotted today, which coins answered 404 today) is a named function here that returns plain
typed values, so no SQL lives outside ``warehouse/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

import duckdb

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def read_coverage(
    con: duckdb.DuckDBPyConnection,
    source: str,
    *,
    table: str,
    series_column: str,
    time_column: str,
) -> dict[str, tuple[date, date | None]]:
    """Requested-and-received range per series of ``source`` (``fetch_coverage``); series
    loaded before coverage was recorded fall back to their first and last dates in ``table``.

    ``table`` and the columns come from a source's declared table (code, never user input);
    they are still checked to be plain identifiers before they reach the SQL text.
    """
    for name in (table, series_column, time_column):
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain table or column name")
    rows = con.execute(
        "SELECT series_id, covered_from, covered_to FROM fetch_coverage WHERE source = ?", [source]
    ).fetchall()
    coverage: dict[str, tuple[date, date | None]] = {sid: (lo, hi) for sid, lo, hi in rows}
    bounds = con.execute(
        f"SELECT {series_column}, min({time_column})::DATE, max({time_column})::DATE FROM {table} "
        f"WHERE source = ? GROUP BY 1",
        [source],
    ).fetchall()
    for sid, first, last in bounds:
        coverage.setdefault(sid, (first, last))
    return coverage


def snapshotted_categories(con: duckdb.DuckDBPyConnection, day: date) -> set[str]:
    """Categories whose figures were already taken on ``day`` (UTC)."""
    rows = con.execute(
        "SELECT DISTINCT category_id FROM category_snapshots WHERE snapshot_date = ?", [day]
    ).fetchall()
    return {r[0] for r in rows}


def latest_category_members(con: duckdb.DuckDBPyConnection, categories: Sequence[str]) -> list[str]:
    """Coin ids of each category's latest member snapshot, by rank."""
    rows = con.execute(
        "SELECT m.coin_id FROM category_members m JOIN ("
        "  SELECT category_id, max(snapshot_date) AS d FROM category_members"
        "  WHERE category_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1"
        ") l ON m.category_id = l.category_id AND m.snapshot_date = l.d "
        "ORDER BY m.rank, m.coin_id",
        [list(categories)],
    ).fetchall()
    return [r[0] for r in rows]


def coin_list_fetched_since(con: duckdb.DuckDBPyConnection, since: datetime) -> bool:
    """Whether ``/coins/list`` answered 200 since ``since`` (it is fetched once a day)."""
    rows = con.execute(
        "SELECT count(*) FROM raw_responses WHERE endpoint = '/coins/list' "
        "AND status = 200 AND fetched_at >= ?",
        [since],
    ).fetchall()
    return bool(rows[0][0])


def known_coin_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every coin id in ``coins``."""
    return [r[0] for r in con.execute("SELECT coin_id FROM coins").fetchall()]


def global_snapshot_held(con: duckdb.DuckDBPyConnection, day: date) -> bool:
    """Whether ``/global`` was already recorded for ``day`` (UTC)."""
    rows = con.execute("SELECT count(*) FROM global_daily WHERE date = ?", [day]).fetchall()
    return bool(rows[0][0])


def not_found_since(con: duckdb.DuckDBPyConnection, since: datetime) -> set[str]:
    """Series skipped as not served (404, not a failure) since ``since``: not asked again
    until the next day (a delisted coin would otherwise cost a call on every run)."""
    rows = con.execute(
        "SELECT DISTINCT coin_id FROM skipped_coins WHERE skipped_at >= ? "
        "AND reason NOT LIKE 'failed%'",
        [since],
    ).fetchall()
    return {r[0] for r in rows}
