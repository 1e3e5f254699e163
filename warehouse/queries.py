"""Read-side helpers: the analyst SQL entry point, status tables and the panels analysis needs.

Analysis never opens a connection; these functions take one and hand back pandas objects.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

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


def restrict_external_access(con: duckdb.DuckDBPyConnection, *, allow_files: bool = False) -> None:
    """Close DuckDB's doors to the outside before analyst SQL runs on ``con``.

    ``enable_external_access = false`` stops every file, URL and extension-directory access
    (``read_text('/proc/self/environ')``, ``ATTACH 'x.sqlite'``, ``read_csv('http://...')``);
    extensions are neither installed nor loaded on demand (a SQLite file or an http URL would
    otherwise make DuckDB download one); the configuration is then locked, so the query cannot
    undo it. ``allow_files`` opens every local path to reads (``allowed_directories = ['/']``)
    while URLs stay refused. Settings are per database instance: call it only on a connection
    opened for one query.
    """
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    if allow_files:
        con.execute("SET allowed_directories = ['/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


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
        result = con.execute(statements[-1])
        kinds = [str(column[1]) for column in result.description or []]
        frame = result.df()
        # DuckDB hands DATE columns to pandas as midnight timestamps; name them so renderers
        # print dates (JSON "2024-02-15", not "2024-02-15T00:00:00.000").
        frame.attrs["date_columns"] = [
            name for name, kind in zip(frame.columns, kinds, strict=False) if kind == "DATE"
        ]
        return frame
    except duckdb.InvalidInputException as exc:
        if "read-only" in str(exc):
            raise ReadOnlyViolationError(
                f"`aitokens sql` is read-only: {_first_line(exc)}"
            ) from None
        raise InputError(f"query failed: {_first_line(exc)}") from None
    except (duckdb.InternalException, duckdb.FatalException):
        raise  # a DuckDB bug, not the query's fault: the CLI reports an unexpected failure
    except duckdb.PermissionException as exc:
        text = _first_line(exc)
        fix = "URLs are never read" if "://" in text else "pass --allow-files to read local files"
        raise InputError(
            f"query refused: {text}. `aitokens sql` reads the warehouse only (no file, "
            f"environment or network access, no extensions); {fix}"
        ) from None
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
    """The error's first line, plus DuckDB's hint when it gives one ("Did you mean
    "daily_prices"?" comes on a later line), so the user sees the fix it suggests."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    hints = [line for line in lines[1:] if line.startswith(("Did you mean", "Candidate"))]
    return " ".join([lines[0], *hints])


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


def hourly_closes(
    con: duckdb.DuckDBPyConnection,
    symbols: Sequence[str],
    start: str | dt.datetime | pd.Timestamp,
    end: str | dt.datetime | pd.Timestamp,
    *,
    sources: Sequence[str] = (),
) -> pd.DataFrame:
    """Hourly closes of one series per symbol, long: ``symbol, asset_id, source, ts, close``.

    ``ts`` is the UTC close time of the hour (dtype ``datetime64[us, UTC]``): the close at
    ``ts`` ends the hour ``[ts - 1h, ts)``. ``start`` and ``end`` bound ``ts`` inclusively; a
    naive time is read as UTC. One series per symbol, as the daily study chooses
    (``warehouse.studies.choose_series``): ``sources`` (``NAME`` everywhere or ``SYMBOL=NAME``)
    first, else the most hourly closes within ``[start, end]``, ties broken by source name.
    ``frame.attrs["series"]`` maps each symbol to ``{asset_id, source, n_obs, reason}``.
    Rows are sorted by symbol and ts; closes are USD. Unknown symbols raise
    ``UnknownSymbolError`` naming close matches.
    """
    from warehouse.studies import HOURLY_CALENDAR, choose_series, resolve_symbols

    lo, hi = _utc_bound(start, "start"), _utc_bound(end, "end")
    if lo > hi:
        raise InputError(f"hourly_closes: start {lo} is after end {hi}")
    held = con.execute("SELECT DISTINCT symbol FROM hourly_prices").df()
    wanted = resolve_symbols(held, symbols, what="hourly closes")
    # the studies' one rule (warehouse.studies.choose_series) on the hourly clock
    picks = choose_series(
        con, wanted, spans={HOURLY_CALENDAR: (lo, hi)}, sources=sources, clock="1h"
    )
    chosen: dict[str, dict] = {
        sym: {
            "asset_id": c.asset_id,
            "source": c.source,
            "n_obs": c.in_span,
            "reason": c.reason.removeprefix("--"),
        }
        for sym, c in picks.items()
    }
    frame = con.execute(
        "SELECT p.symbol, p.asset_id, p.source, p.ts, p.close FROM hourly_prices AS p "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) AS k "
        "USING (asset_id, source) WHERE p.ts BETWEEN ? AND ? ORDER BY p.symbol, p.ts",
        [[c["asset_id"] for c in chosen.values()], [c["source"] for c in chosen.values()], lo, hi],
    ).df()
    frame = frame[frame["symbol"].isin(list(chosen))].reset_index(drop=True)
    frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[us]").dt.tz_localize("UTC")
    frame["close"] = frame["close"].astype("float64")
    frame.attrs["series"] = chosen
    return frame


def _utc_bound(value: str | dt.datetime | pd.Timestamp, what: str) -> dt.datetime:
    """A naive UTC datetime from a time bound; a naive input is taken as UTC."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputError(f"hourly_closes: {what} {value!r} is not a time") from None
    if pd.isna(ts):
        raise InputError(f"hourly_closes: {what} is empty")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()
