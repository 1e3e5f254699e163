"""Export the warehouse as Hive-partitioned Parquet that DuckDB, Spark or Trino can read.

Layout of an export folder ``DIR``::

    DIR/manifest.json                                  tables, row counts, files, column types
    DIR/<dated table>/month=YYYY-MM/data_0.parquet     coin_daily, imported_daily, price_hourly, ...
    DIR/<dimension table>/data_0.parquet               coins, equities, ingest_runs, ...
    DIR/<analyst view>/month=YYYY-MM/data_0.parquet    daily_prices, daily_returns, sector_daily,
                                                       hourly_prices, hourly_returns

``month`` is a Hive partition key (a string such as ``2024-02``) taken from the table's date
column; it is not stored inside the files, so readers see it as a partition column
(``read_parquet('DIR/coin_daily/*/*.parquet', hive_partitioning = true)`` in DuckDB,
``spark.read.parquet('DIR/coin_daily')``, a Trino Hive table partitioned by ``month``).
Every other column keeps its warehouse name and type, except types other engines cannot read
(JSON, UUID, HUGEINT), which are cast as ``PORTABLE_CASTS`` says; the manifest lists both types.

The export reads the analysts' snapshot (:func:`warehouse.db.open_reader`): one consistent
state, the one the last write run published, and never a lock the daily run would wait on
(before any snapshot exists it reads the warehouse itself, read-only). Files are written to
a hidden sibling folder that is renamed into place at the end, so a failed export never leaves
a half-written ``DIR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse.db import open_reader, resolve_db_path, schema_version
from warehouse.errors import InputError
from warehouse.files import clean_stale_partials, staging_name
from warehouse.snapshot import reader_path

FORMATS = ("parquet",)
PARTITION_COLUMN = "month"
MONTH_FORMAT = "%Y-%m"
MANIFEST_NAME = "manifest.json"
# Written into every export: `--overwrite` deletes a folder only when this file is in it, so a
# folder that merely holds a manifest.json (a web app's, a package's) is never taken for one.
MARKER_NAME = ".aitokens-export"
MARKER_TEXT = (
    "This folder was written by `aitokens export`; `aitokens export --overwrite` may replace "
    "it as a whole.\n"
)
MANIFEST_VERSION = 1
COMPRESSION = "zstd"

# Bookkeeping of the schema itself: nothing an analyst or another engine needs.
INTERNAL_TABLES = frozenset({"schema_migrations", "schema_meta"})

# Dated tables and views, and the column whose month names their partition. Any other table is
# written unpartitioned (a dimension or a small log); tables added by later migrations are
# exported too, unpartitioned until they are listed here.
MONTH_OF = {
    "coin_daily": "date",
    "equity_daily": "date",
    "imported_daily": "date",
    "market_caps_daily": "date",
    "category_members": "snapshot_date",
    "category_snapshots": "snapshot_date",
    "raw_responses": "fetched_at",
    "global_daily": "date",
    "price_hourly": "ts",
    "daily_prices": "date",
    "daily_returns": "date",
    "sector_daily": "date",
    "hourly_prices": "ts",
    "hourly_returns": "ts",
}

# Analyst views exported as tables, with the key their rows are sorted on. ``ai_sector_daily`` is
# ``sector_daily`` filtered on one category, ``freshness`` depends on today's date, and
# ``daily_prices_numbered`` is a helper: they are left out.
EXPORTED_VIEWS = {
    "daily_prices": ("asset_id", "source", "date"),
    "daily_returns": ("asset_id", "source", "date"),
    "sector_daily": ("category_id", "date"),
    "hourly_prices": ("asset_id", "source", "ts"),
    "hourly_returns": ("asset_id", "source", "ts"),
}

# DuckDB types that Spark or Trino cannot read from Parquet, and what they are written as.
PORTABLE_CASTS = {
    "JSON": "VARCHAR",
    "UUID": "VARCHAR",
    "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)",
}


class ExportFormatError(InputError):
    """The export format asked for is not one this version writes."""


class ExportTargetError(InputError):
    """The export folder cannot be used: it holds other files, or it would hold the warehouse."""


class UnknownExportTableError(InputError):
    """A table or view named for export is not in the warehouse (or is not exportable)."""


@dataclass(frozen=True)
class ExportedFile:
    """One Parquet file of an export; ``path`` is relative to the export folder."""

    path: str
    rows: int
    bytes: int
    month: str | None


@dataclass(frozen=True)
class ExportedTable:
    """One table or view as exported: its files and columns."""

    name: str
    kind: str  # "table" or "view"
    month_of: str | None  # the date column behind the ``month`` partition, None if unpartitioned
    key: tuple[str, ...]
    columns: tuple[tuple[str, str, str], ...]  # (name, warehouse type, exported type)
    files: tuple[ExportedFile, ...]

    @property
    def partitioned(self) -> bool:
        return self.month_of is not None

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def months(self) -> tuple[str, ...]:
        return tuple(sorted({f.month for f in self.files if f.month is not None}))


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: one entry per table or view, in the order written."""

    out: Path
    format: str
    warehouse: Path
    tables: tuple[ExportedTable, ...]
    read_from: Path | None = None  # the file read: the snapshot, else the warehouse itself

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST_NAME

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def files(self) -> int:
        return sum(len(t.files) for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)


@dataclass(frozen=True)
class _Source:
    name: str
    kind: str
    month_of: str | None
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, warehouse type)


def export_warehouse(
    db: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    fmt: str = "parquet",
    overwrite: bool = False,
    tables: Sequence[str] | None = None,
    include_views: bool = True,
    lock_timeout: float | None = None,
) -> ExportReport:
    """Write the warehouse (or the named tables/views) to ``out`` as Hive-partitioned Parquet.

    Parameters
    ----------
    db
        Warehouse file (None: resolved as :func:`warehouse.db.resolve_db_path`); its snapshot
        is read (the warehouse itself, read-only, before a write run published one).
    out
        Export folder. It must not exist, or be empty; with ``overwrite`` it may hold an
        earlier export (a folder with a ``manifest.json``), which is replaced as a whole.
    fmt
        Only ``"parquet"`` so far.
    tables
        Names of tables or analyst views to export; default every data table and
        ``EXPORTED_VIEWS`` (the latter only when ``include_views``).

    Raises
    ------
    ExportFormatError, ExportTargetError, UnknownExportTableError, WarehouseMissingError
        Bad input; nothing is written.
    """
    if fmt not in FORMATS:
        raise ExportFormatError(f"unknown export format {fmt!r}: choose {', '.join(FORMATS)}")
    db_file = resolve_db_path(db)
    target = Path(out).expanduser()
    _check_target(target, db_file, overwrite=overwrite)
    clean_stale_partials(target)  # a killed export's staging folder, or its moved-aside old one

    staging = staging_name(target)
    read_from, _ = reader_path(db_file)
    with open_reader(db_file, lock_timeout=lock_timeout) as con:
        sources = _choose_sources(con, tables, include_views=include_views)
        version = schema_version(con)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.mkdir()
            written = tuple(_copy_source(con, source, staging) for source in sources)
            report = ExportReport(
                out=target, format=fmt, warehouse=db_file, tables=written, read_from=read_from
            )
            _write_manifest(staging / MANIFEST_NAME, report, version)
            (staging / MARKER_NAME).write_text(MARKER_TEXT, encoding="utf-8")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _move_into_place(staging, target, overwrite=overwrite)
    return report


def _check_target(target: Path, db_file: Path, *, overwrite: bool) -> None:
    """Refuse a folder that holds anything but an earlier export, or that holds the warehouse."""
    resolved = target.resolve()
    if resolved == db_file.resolve() or resolved in db_file.resolve().parents:
        raise ExportTargetError(
            f"cannot export into {target}: the warehouse {db_file} is inside it "
            "(choose another --out folder)"
        )
    _check_contents(target, overwrite=overwrite)


def _check_contents(target: Path, *, overwrite: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise ExportTargetError(f"{target} exists and is not a folder (choose another --out)")
    if not any(target.iterdir()):
        return
    if not overwrite:
        raise ExportTargetError(
            f"{target} is not empty: pass --overwrite to replace an earlier export, "
            "or choose another --out folder"
        )
    if not (target / MARKER_NAME).is_file() or not (target / MANIFEST_NAME).is_file():
        raise ExportTargetError(
            f"{target} is not empty and holds no {MARKER_NAME} marker, so it is not an export "
            "aitokens wrote; refusing to delete it even with --overwrite (choose another --out "
            "folder, or remove it yourself)"
        )


def exportable_names(con: duckdb.DuckDBPyConnection, *, include_views: bool = True) -> list[str]:
    """Data tables (sorted) followed by the analyst views exported as tables."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = 'main' ORDER BY table_name"
    ).fetchall()
    base = [n for n, kind in rows if kind == "BASE TABLE" and n not in INTERNAL_TABLES]
    views = {n for n, kind in rows if kind == "VIEW"}
    return base + [v for v in EXPORTED_VIEWS if include_views and v in views]


def _choose_sources(
    con: duckdb.DuckDBPyConnection, names: Sequence[str] | None, *, include_views: bool
) -> list[_Source]:
    available = exportable_names(con, include_views=True)
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise UnknownExportTableError(
                f"cannot export {', '.join(map(repr, unknown))}: not a table or exported view; "
                f"choose from {', '.join(available)}"
            )
        chosen = list(dict.fromkeys(names))
    else:
        chosen = exportable_names(con, include_views=include_views)
    return [_describe(con, name) for name in chosen]


def _describe(con: duckdb.DuckDBPyConnection, name: str) -> _Source:
    columns = tuple(
        (c, t)
        for c, t in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [name],
        ).fetchall()
    )
    if name in EXPORTED_VIEWS:
        kind, key = "view", EXPORTED_VIEWS[name]
    else:
        kind = "table"
        pk = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE schema_name = 'main' AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [name],
        ).fetchall()
        key = tuple(pk[0][0]) if pk else ()
    month_of = MONTH_OF.get(name)
    names = [c for c, _ in columns]
    if month_of is not None and month_of not in names:
        month_of = None  # a later migration renamed the column: export whole rather than fail
    if month_of is not None and PARTITION_COLUMN in names:
        raise RuntimeError(
            f"{name} has a column named {PARTITION_COLUMN!r}, which the export uses as its "
            "partition key; rename the column or change warehouse.export.PARTITION_COLUMN"
        )
    return _Source(name, kind, month_of, key, columns)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A SQL string literal: COPY's target cannot be a bound parameter."""
    return "'" + text.replace("'", "''") + "'"


def _exported_type(duck_type: str) -> str:
    return PORTABLE_CASTS.get(duck_type.upper(), duck_type)


def _copy_source(con: duckdb.DuckDBPyConnection, source: _Source, staging: Path) -> ExportedTable:
    """COPY one table or view into ``staging/<name>``; one file per month when partitioned."""
    select = []
    for column, duck_type in source.columns:
        exported = _exported_type(duck_type)
        expr = _quote(column)
        if exported != duck_type:
            expr = f"CAST({expr} AS {exported}) AS {expr}"
        select.append(expr)
    order = ", ".join(_quote(k) for k in source.key) if source.key else "ALL"
    folder = staging / source.name
    folder.mkdir()
    if source.month_of is not None:
        select.append(
            f"strftime({_quote(source.month_of)}, '{MONTH_FORMAT}') AS {_quote(PARTITION_COLUMN)}"
        )
        target = folder
        options = f"PARTITION_BY ({_quote(PARTITION_COLUMN)}), "
    else:
        target = folder / "data_0.parquet"
        options = ""
    sql = (
        f"COPY (SELECT {', '.join(select)} FROM {_quote(source.name)} ORDER BY {order}) "
        f"TO {_literal(str(target))} "
        f"(FORMAT parquet, COMPRESSION {COMPRESSION}, {options}RETURN_STATS)"
    )
    cursor = con.execute(sql)
    stats = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    files = []
    for row in stats:
        entry = dict(zip(names, row, strict=True))
        path = Path(entry["filename"])
        keys = entry.get("partition_keys") or {}
        files.append(
            ExportedFile(
                path=path.relative_to(staging).as_posix(),
                rows=int(entry["count"]),
                bytes=path.stat().st_size,
                month=keys.get(PARTITION_COLUMN) if source.month_of is not None else None,
            )
        )
    files.sort(key=lambda f: f.path)
    columns = tuple((c, t, _exported_type(t)) for c, t in source.columns)
    return ExportedTable(
        source.name, source.kind, source.month_of, source.key, columns, tuple(files)
    )


def manifest_dict(report: ExportReport, schema_version_: int) -> dict:
    """The manifest: enough for another engine to find every file and check every row count."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": report.format,
        "layout": "hive",
        "partition_column": PARTITION_COLUMN,
        "partition_format": "YYYY-MM (string)",
        "compression": COMPRESSION,
        "created_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
        "source": {
            "warehouse": str(report.warehouse),
            "read_from": str(report.read_from or report.warehouse),
            "schema_version": schema_version_,
            "duckdb_version": duckdb.__version__,
        },
        "totals": {
            "tables": len(report.tables),
            "rows": report.rows,
            "files": report.files,
            "bytes": report.bytes,
        },
        "tables": {
            t.name: {
                "kind": t.kind,
                "path": t.name,
                "partitioned_by": [PARTITION_COLUMN] if t.partitioned else [],
                "month_of": t.month_of,
                "key": list(t.key),
                "rows": t.rows,
                "bytes": t.bytes,
                "months": list(t.months),
                "columns": [
                    {"name": c, "warehouse_type": wt, "type": et} for c, wt, et in t.columns
                ],
                "files": [
                    {"path": f.path, "rows": f.rows, "bytes": f.bytes, "month": f.month}
                    for f in t.files
                ],
            }
            for t in report.tables
        },
    }


def _write_manifest(path: Path, report: ExportReport, version: int) -> None:
    path.write_text(json.dumps(manifest_dict(report, version), indent=2) + "\n", encoding="utf-8")


def read_manifest(out: str | os.PathLike[str]) -> dict:
    """The manifest of an export folder, as written by ``export_warehouse``."""
    path = Path(out) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} not found: {out} is not an aitokens export") from None


def _move_into_place(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Rename the finished staging folder to ``target``; an earlier export is moved aside first
    and deleted only once the new one is in place (restored if the rename fails)."""
    aside: Path | None = None
    try:
        if target.exists():
            if any(target.iterdir()):
                # Re-checked here: someone may have written into the folder meanwhile.
                _check_contents(target, overwrite=overwrite)
                aside = staging_name(target, "old")
                target.rename(aside)
            else:
                target.rmdir()
        staging.rename(target)
    except BaseException:
        if aside is not None and not target.exists():
            with contextlib.suppress(OSError):
                aside.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def summary_lines(report: ExportReport) -> Iterable[str]:
    """What the CLI prints: one line per table or view, then the totals."""
    yield (
        f"Exported {report.warehouse} to {report.out} as Parquet "
        f"(Hive-partitioned by {PARTITION_COLUMN}=YYYY-MM where dated):"
    )
    width = max([len(t.name) for t in report.tables] + [5])
    for t in report.tables:
        layout = f"{len(t.months)} months by {t.month_of}" if t.partitioned else "unpartitioned"
        yield (
            f"  {t.name:<{width}}  {t.kind:<5}  {t.rows:>12,} rows  {len(t.files):>5,} files  "
            f"{t.bytes:>14,} bytes  {layout}"
        )
    yield (
        f"Total: {len(report.tables)} tables and views, {report.rows:,} rows, "
        f"{report.files:,} files, {report.bytes:,} bytes ({_human(report.bytes)}); "
        f"manifest {report.manifest}"
    )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
