"""`warehouse.export`: Hive-partitioned Parquet read back by DuckDB and by pyarrow.dataset (the
Hive layout Spark and Trino read) equals the warehouse row for row, in every column."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import warehouse.export as export_mod
from warehouse.db import open_warehouse
from warehouse.errors import InputError, WarehouseMissingError
from warehouse.export import (
    ExportFormatError,
    ExportTargetError,
    UnknownExportTableError,
    export_warehouse,
    exportable_names,
    read_manifest,
)

DATED = {
    "coin_daily": "date",
    "equity_daily": "date",
    "imported_daily": "date",
    "category_members": "snapshot_date",
    "category_snapshots": "snapshot_date",
    "raw_responses": "fetched_at",
    "daily_prices": "date",
    "daily_returns": "date",
    "sector_daily": "date",
    "price_hourly": "ts",
    "hourly_prices": "ts",
    "hourly_returns": "ts",
}
UNPARTITIONED = (
    "coins",
    "equities",
    "ingest_runs",
    "trading_sessions",
    "study_runs",
    "study_results",
)
COMPARED = (*DATED, *UNPARTITIONED)


def warehouse_table(db: Path, name: str) -> tuple[list[str], list[tuple]]:
    """Columns and sorted rows of a warehouse table or view."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f'SELECT * FROM "{name}"')
        rows = cur.fetchall()
        return [d[0] for d in cur.description], sorted(rows, key=repr)
    finally:
        con.close()


def duckdb_readback(out: Path, name: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect()
    try:
        cur = con.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = true)",
            [str(out / name / "**" / "*.parquet")],
        )
        rows = cur.fetchall()
        return [d[0] for d in cur.description], rows
    finally:
        con.close()


def pyarrow_readback(out: Path, name: str) -> tuple[list[str], list[tuple]]:
    """What a Hive-aware engine sees: partition directories become a column."""
    table = ds.dataset(str(out / name), format="parquet", partitioning="hive").to_table()
    return table.column_names, [tuple(r.values()) for r in table.to_pylist()]


def split_month(columns, rows, month_of):
    """Drop the ``month`` partition column after checking it names each row's own month."""
    assert columns[-1] == "month", columns
    date_at = columns.index(month_of)
    for row in rows:
        assert row[-1] == row[date_at].strftime("%Y-%m"), row
    return columns[:-1], [row[:-1] for row in rows]


@pytest.mark.parametrize("reader", [duckdb_readback, pyarrow_readback], ids=["duckdb", "pyarrow"])
@pytest.mark.parametrize("name", COMPARED)
def test_readback_equals_warehouse(exported, export_db, name, reader):
    out, _ = exported
    want_cols, want = warehouse_table(export_db, name)
    assert want, f"the fixture should put rows in {name}"
    cols, rows = reader(out, name)
    if name in DATED:
        cols, rows = split_month(cols, rows, DATED[name])
    assert cols == want_cols
    assert sorted(rows, key=repr) == want


def test_every_exportable_table_is_exported_and_counted(exported, export_db):
    out, report = exported
    with open_warehouse(export_db, read_only=True) as con:
        names = exportable_names(con)
        counts = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names}
    manifest = read_manifest(out)
    assert list(manifest["tables"]) == names == [t.name for t in report.tables]
    assert {n: t["rows"] for n, t in manifest["tables"].items()} == counts
    assert "schema_migrations" not in names and "daily_prices_numbered" not in names
    for name in names:
        assert (out / name).is_dir(), name  # even an empty table has its folder
        files = sorted(p.relative_to(out).as_posix() for p in (out / name).rglob("*.parquet"))
        assert files == [f["path"] for f in manifest["tables"][name]["files"]]


def test_manifest_row_counts_and_bytes_match_the_files(exported):
    out, report = exported
    manifest = read_manifest(out)
    total_rows = total_bytes = total_files = 0
    for table in manifest["tables"].values():
        for f in table["files"]:
            path = out / f["path"]
            assert pq.ParquetFile(path).metadata.num_rows == f["rows"]
            assert path.stat().st_size == f["bytes"]
        assert sum(f["rows"] for f in table["files"]) == table["rows"]
        total_rows += table["rows"]
        total_bytes += table["bytes"]
        total_files += len(table["files"])
    assert manifest["totals"] == {
        "tables": len(manifest["tables"]),
        "rows": total_rows,
        "files": total_files,
        "bytes": total_bytes,
    }
    assert (report.rows, report.files, report.bytes) == (total_rows, total_files, total_bytes)
    assert manifest["source"]["schema_version"] >= 1 and manifest["format"] == "parquet"


def test_hive_layout_month_folders_and_no_month_inside_files(exported):
    out, _ = exported
    manifest = read_manifest(out)
    months = sorted(p.name for p in (out / "coin_daily").iterdir())
    assert months == ["month=2024-01", "month=2024-02", "month=2024-03"]
    assert manifest["tables"]["coin_daily"]["months"] == ["2024-01", "2024-02", "2024-03"]
    assert manifest["tables"]["coin_daily"]["partitioned_by"] == ["month"]
    assert manifest["tables"]["coins"]["partitioned_by"] == []
    assert manifest["tables"]["price_hourly"]["months"] == ["2024-02", "2024-03"]
    assert manifest["tables"]["hourly_returns"]["key"] == ["asset_id", "source", "ts"]
    assert [p.name for p in (out / "coins").iterdir()] == ["data_0.parquet"]
    for name in DATED:
        for f in manifest["tables"][name]["files"]:
            assert f["path"].startswith(f"{name}/month={f['month']}/"), f
            assert "month" not in pq.read_schema(out / f["path"]).names


def test_readers_see_month_as_a_string_partition_column(exported):
    out, _ = exported
    schema = ds.dataset(str(out / "coin_daily"), format="parquet", partitioning="hive").schema
    assert schema.field("month").type == pa.string()
    assert schema.field("date").type == pa.date32()
    con = duckdb.connect()
    try:
        described = con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = true)",
            [str(out / "coin_daily" / "*" / "*.parquet")],
        ).fetchall()
        pruned = con.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = true) WHERE month = '2024-02'",
            [str(out / "coin_daily" / "*" / "*.parquet")],
        ).fetchall()[0][0]
    finally:
        con.close()
    assert dict((r[0], r[1]) for r in described)["month"] == "VARCHAR"
    assert pruned == 4 * 29  # four coins, every day of February 2024


def test_json_columns_are_written_as_plain_strings(exported):
    out, _ = exported
    manifest = read_manifest(out)
    params = {c["name"]: c for c in manifest["tables"]["raw_responses"]["columns"]}["params"]
    assert (params["warehouse_type"], params["type"]) == ("JSON", "VARCHAR")
    file = out / manifest["tables"]["raw_responses"]["files"][0]["path"]
    assert pq.read_schema(file).field("params").type == pa.string()
    assert "JSON" not in str(pq.ParquetFile(file).schema)  # no JSON logical type for Spark/Trino


def test_selected_tables_and_no_views(export_db, tmp_path):
    report = export_warehouse(export_db, tmp_path / "a", tables=["coins", "daily_returns", "coins"])
    assert [t.name for t in report.tables] == ["coins", "daily_returns"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        ".aitokens-export",
        "coins",
        "daily_returns",
        "manifest.json",
    ]
    report = export_warehouse(export_db, tmp_path / "b", include_views=False)
    assert all(t.kind == "table" for t in report.tables)
    assert "daily_prices" not in {t.name for t in report.tables}


def test_unknown_table_is_refused_with_the_choices(export_db, tmp_path):
    with pytest.raises(
        UnknownExportTableError,
        match=r"cannot export 'nope': not a table or exported view; choose from .*coin_daily",
    ):
        export_warehouse(export_db, tmp_path / "x", tables=["coin_daily", "nope"])
    assert not (tmp_path / "x").exists()


def test_unknown_format_and_missing_warehouse_are_input_errors(export_db, tmp_path):
    with pytest.raises(ExportFormatError, match="unknown export format 'csv': choose parquet"):
        export_warehouse(export_db, tmp_path / "x", fmt="csv")
    with pytest.raises(WarehouseMissingError, match="no warehouse at"):
        export_warehouse(tmp_path / "none.duckdb", tmp_path / "x")
    assert issubclass(ExportFormatError, InputError) and issubclass(ExportTargetError, InputError)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created, not even DIR


def test_non_empty_folder_is_refused_without_overwrite(export_db, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportTargetError, match="is not empty: pass --overwrite"):
        export_warehouse(export_db, out)
    with pytest.raises(
        ExportTargetError, match="holds no .aitokens-export marker, so it is not an export"
    ):
        export_warehouse(export_db, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_folder_is_used_and_overwrite_replaces_an_earlier_export(export_db, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export_warehouse(export_db, out, tables=["coins"])
    (out / "stale.txt").write_text("left from an older export")
    report = export_warehouse(export_db, out, tables=["equities"], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [
        ".aitokens-export",
        "equities",
        "manifest.json",
    ]
    assert list(read_manifest(out)["tables"]) == ["equities"] == [t.name for t in report.tables]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_a_file_or_the_warehouse_folder_is_refused(export_db, tmp_path):
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(ExportTargetError, match="exists and is not a folder"):
        export_warehouse(export_db, file)
    with pytest.raises(ExportTargetError, match="the warehouse .* is inside it"):
        export_warehouse(export_db, export_db.parent, overwrite=True)
    assert export_db.exists()


def _fail_on_third(monkeypatch):
    real = export_mod._copy_source
    calls = []

    def flaky(con, source, staging):
        calls.append(source.name)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real(con, source, staging)

    monkeypatch.setattr(export_mod, "_copy_source", flaky)
    return calls


def test_failure_mid_export_leaves_no_partial_folder(export_db, tmp_path, monkeypatch):
    calls = _fail_on_third(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        export_warehouse(export_db, tmp_path / "out")
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_failure_during_overwrite_keeps_the_earlier_export(export_db, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export_warehouse(export_db, out, tables=["coins"])
    before = (out / "manifest.json").read_text()
    _fail_on_third(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        export_warehouse(export_db, out, overwrite=True)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert json.loads(before)["tables"]["coins"]["rows"] == 4
