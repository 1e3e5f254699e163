"""Read-side helpers: the analyst SQL entry point, status tables and the panels analysis needs.

Analysis never opens a connection; these functions take one and hand back pandas objects.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from warehouse.errors import InputError, ReadOnlyViolationError

# Statement types an analyst may send through `aitokens sql` (SHOW/DESCRIBE parse as SELECT).
READ_STATEMENT_TYPES = frozenset({"SELECT", "EXPLAIN", "PRAGMA"})
# PRAGMAs that only describe: others can import a database, write profiling files, ...
READ_PRAGMAS = frozenset(
    {
        "table_info",
        "show",
        "show_tables",
        "show_tables_expanded",
        "database_list",
        "database_size",
        "storage_info",
        "version",
        "platform",
        "functions",
        "collations",
        "metadata_info",
        "user_agent",
        "show_databases",
    }
)
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN\s+(ANALY[SZ]E\s+)?(\([^)]*\)\s*)?", re.IGNORECASE)
_PRAGMA_NAME = re.compile(r"^\s*PRAGMA\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def run_read_query(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run analyst SQL; refuse anything but reads before executing, and return the last result.

    The connection is read-only too, so this check is the friendly message, not the only guard.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.ParserException as exc:
        raise InputError(f"SQL does not parse: {_first_line(exc)}") from None
    if not statements:
        raise InputError("no SQL statement given")
    for statement in statements:
        _check_read_only(con, statement)
    try:
        for statement in statements[:-1]:
            con.execute(statement).fetchall()
        return con.execute(statements[-1]).df()
    except duckdb.InvalidInputException as exc:
        if "read-only" in str(exc):
            raise ReadOnlyViolationError(
                f"`aitokens sql` is read-only: {_first_line(exc)}"
            ) from None
        raise InputError(f"query failed: {_first_line(exc)}") from None
    except (duckdb.InternalException, duckdb.FatalException):
        raise  # a DuckDB bug, not the query's fault: the CLI reports an unexpected failure
    except duckdb.Error as exc:  # catalog, binder, conversion, out of range, a missing file...
        raise InputError(f"query failed: {_first_line(exc)}") from None


def _refuse(kind: str) -> ReadOnlyViolationError:
    return ReadOnlyViolationError(
        f"`aitokens sql` is read-only: a {kind} statement is refused "
        "(write through `aitokens import` / `aitokens ingest`)"
    )


def _check_read_only(con: duckdb.DuckDBPyConnection, statement) -> None:
    """Refuse anything but reads. EXPLAIN [ANALYZE] runs its statement (``EXPLAIN ANALYZE COPY
    ... TO 'file'`` writes the file), so the statement explained must be a read too; PRAGMAs
    are limited to the descriptive ones in :data:`READ_PRAGMAS`."""
    kind = statement.type.name
    if kind not in READ_STATEMENT_TYPES:
        raise _refuse(kind)
    if kind == "PRAGMA":
        match = _PRAGMA_NAME.match(statement.query)
        name = match.group(1).lower() if match else "?"
        if name not in READ_PRAGMAS:
            raise _refuse(f"PRAGMA {name}")
    if kind == "EXPLAIN":
        inner_sql = _EXPLAIN_PREFIX.sub("", statement.query, count=1)
        try:
            inner = con.extract_statements(inner_sql)
        except duckdb.Error:
            raise _refuse("EXPLAIN of an unreadable") from None
        if len(inner) != 1 or inner[0].type.name != "SELECT":
            raise _refuse(f"EXPLAIN {inner[0].type.name if inner else '?'}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def series_status(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each series with its date range, observation count, gaps and staleness."""
    return con.execute(
        "SELECT symbol, source, asset_class, first_date, last_date, n_obs, gaps, "
        "missing_sessions, stale_sessions FROM freshness ORDER BY asset_class, symbol, source"
    ).df()


def price_panel(
    con: duckdb.DuckDBPyConnection,
    symbols: list[str] | None = None,
    *,
    sources: list[str] | None = None,
) -> pd.DataFrame:
    """Long panel (date, symbol, asset_class, calendar, source, close, volume_usd, market_cap).

    Values are bound as parameters, never pasted into SQL.
    """
    where, params = [], []
    if symbols:
        where.append("symbol IN (SELECT unnest(?::VARCHAR[]))")
        params.append([s.upper() for s in symbols])
    if sources:
        where.append("source IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(sources))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return con.execute(
        "SELECT date, symbol, asset_id, asset_class, calendar, source, close, volume_usd, "
        f"market_cap FROM daily_prices {clause} ORDER BY symbol, source, date",
        params,
    ).df()
