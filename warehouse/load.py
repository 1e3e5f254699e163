"""Idempotent batch upserts into warehouse tables.

Pattern (DESIGN.md section 3): stage the batch, de-duplicate it, classify each row against the
table as new / changed / unchanged, then write new and changed rows with one set-based
``INSERT OR REPLACE``. Never row by row. The caller owns the transaction, so a batch that
spans several tables is still all-or-nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from warehouse.errors import ConflictingDuplicatesError, InputError

# Columns that record when/how a row was loaded; they never make a row "changed".
BOOKKEEPING_COLUMNS = frozenset({"ingested_at", "updated_at"})


@dataclass(frozen=True)
class UpsertResult:
    """What one upsert did, row by row."""

    table: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_dropped: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            table=self.table if self.table == other.table else f"{self.table}+{other.table}",
            inserted=self.inserted + other.inserted,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            duplicates_dropped=self.duplicates_dropped + other.duplicates_dropped,
        )

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def _quote(identifier: str) -> str:
    """Quote an identifier for DuckDB; identifiers cannot be bound as parameters."""
    return '"' + identifier.replace('"', '""') + '"'


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise InputError(f"unknown warehouse table {table!r}")
    return [r[0] for r in rows]


def deduplicate(
    frame: pd.DataFrame, key: Sequence[str], *, on_conflict: str = "error"
) -> pd.DataFrame:
    """Drop exact duplicate rows; rows sharing a key with different values are a conflict.

    ``on_conflict="error"`` raises ``ConflictingDuplicatesError`` (both rows are suspect);
    ``"last"`` keeps the last row of each key (for sources whose later answer supersedes).
    """
    if not frame.duplicated(subset=list(key)).any():
        return frame  # the common case: unique keys, no full-row comparison needed
    exact = frame.drop_duplicates()
    dup_mask = exact.duplicated(subset=list(key), keep=False)
    if not dup_mask.any():
        return exact
    if on_conflict == "last":
        return exact.drop_duplicates(subset=list(key), keep="last")
    sample = exact.loc[dup_mask, list(key)].drop_duplicates().head(5)
    keys = "; ".join(", ".join(f"{k}={row[k]}" for k in key) for _, row in sample.iterrows())
    raise ConflictingDuplicatesError(
        f"the batch holds {int(dup_mask.sum())} rows that share a key "
        f"with different values ({keys})"
    )


def upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    key: Sequence[str],
    *,
    on_conflict: str = "error",
    ingested_at: datetime | None = None,
) -> UpsertResult:
    """Insert new rows, replace changed ones, leave identical ones untouched.

    Must run inside the caller's transaction (see ``warehouse.db.transaction``). Columns the
    frame lacks take the table default (or NULL); ``ingested_at`` is stamped when the table has it.
    """
    columns = table_columns(con, table)
    unknown = [c for c in frame.columns if c not in columns]
    if unknown:
        raise InputError(f"columns {unknown} are not in table {table!r}")
    missing_key = [k for k in key if k not in frame.columns]
    if missing_key:
        raise InputError(f"the batch for {table!r} lacks key columns {missing_key}")
    batch = deduplicate(frame, key, on_conflict=on_conflict)
    dropped = len(frame) - len(batch)
    if batch.empty:
        return UpsertResult(table=table, duplicates_dropped=dropped)
    batch = batch.copy()
    if "ingested_at" in columns:
        stamp = ingested_at or datetime.now(UTC).replace(tzinfo=None)
        batch["ingested_at"] = stamp

    stage = f"_stage_{table}"
    con.register(stage, batch)
    try:
        value_cols = [c for c in batch.columns if c not in key and c not in BOOKKEEPING_COLUMNS]
        on = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in key)
        differs = " OR ".join(f"t.{_quote(c)} IS DISTINCT FROM s.{_quote(c)}" for c in value_cols)
        first_key = _quote(key[0])
        counts = con.execute(
            f"""
            SELECT count(*) FILTER (WHERE t.{first_key} IS NULL),
                   count(*) FILTER (WHERE t.{first_key} IS NOT NULL AND ({differs or "false"})),
                   count(*) FILTER (WHERE t.{first_key} IS NOT NULL AND NOT ({differs or "false"}))
            FROM {_quote(stage)} AS s LEFT JOIN {_quote(table)} AS t ON {on}
            """
        ).fetchall()[0]
        inserted, updated, unchanged = (int(x) for x in counts)
        if inserted or updated:
            target_cols = ", ".join(_quote(c) for c in batch.columns)
            # Only new or changed rows are written, so unchanged rows keep their ingested_at.
            con.execute(
                f"""
                INSERT OR REPLACE INTO {_quote(table)} ({target_cols})
                SELECT {", ".join("s." + _quote(c) for c in batch.columns)}
                FROM {_quote(stage)} AS s LEFT JOIN {_quote(table)} AS t ON {on}
                WHERE t.{first_key} IS NULL OR ({differs or "false"})
                """
            ).fetchall()
    finally:
        # After a failed statement the transaction is aborted and unregister() raises too;
        # that second error must not hide the first.
        with contextlib.suppress(duckdb.Error):
            con.unregister(stage)
    return UpsertResult(table, inserted, updated, unchanged, dropped)
