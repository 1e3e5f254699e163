"""`aitokens export` through ``flows.cli.main``: exact summary, exit codes 0/2/1, help."""

from __future__ import annotations

import pytest

import warehouse.export as export_mod
from flows.cli import main
from warehouse.export import read_manifest


def expected_summary(db, out) -> str:
    """The summary rebuilt from the manifest and the files on disk, line for line."""
    manifest = read_manifest(out)
    tables = manifest["tables"]
    width = max(len(n) for n in tables)
    lines = [f"Exported {db} to {out} as Parquet (Hive-partitioned by month=YYYY-MM where dated):"]
    for name, t in tables.items():
        layout = (
            f"{len(t['months'])} months by {t['month_of']}"
            if t["partitioned_by"]
            else "unpartitioned"
        )
        size = sum((out / f["path"]).stat().st_size for f in t["files"])
        lines.append(
            f"  {name:<{width}}  {t['kind']:<5}  {t['rows']:>12,} rows  {len(t['files']):>5,} files  "
            f"{size:>14,} bytes  {layout}"
        )
    total = manifest["totals"]
    lines.append(
        f"Total: {len(tables)} tables and views, {total['rows']:,} rows, {total['files']:,} files, "
        f"{total['bytes']:,} bytes ({total['bytes'] / 1000:.1f} KB); manifest {out / 'manifest.json'}"
    )
    return "\n".join(lines) + "\n"


def test_export_prints_what_was_written(export_db, tmp_path, capsys):
    out = tmp_path / "exp"
    code = main(["export", "--format", "parquet", "--out", str(out), "--db", str(export_db)])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    assert captured.out == expected_summary(export_db, out)
    assert "  coin_daily          table           208 rows      3 files" in captured.out
    assert "3 months by date" in captured.out


def test_selected_tables_exact_output(export_db, tmp_path, capsys):
    out = tmp_path / "exp"
    code = main(
        [
            "export",
            "--out",
            str(out),
            "--db",
            str(export_db),
            "--table",
            "coins",
            "--table",
            "coin_daily",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    manifest = read_manifest(out)
    coins, daily = manifest["tables"]["coins"], manifest["tables"]["coin_daily"]
    assert lines[1:3] == [
        f"  coins       table             4 rows      1 files  {coins['bytes']:>14,} bytes  unpartitioned",
        f"  coin_daily  table           208 rows      3 files  {daily['bytes']:>14,} bytes  3 months by date",
    ]
    assert lines[3].startswith("Total: 2 tables and views, 212 rows, 4 files, ")


def test_db_from_environment_and_no_views(export_db, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AITOKENS_DB", str(export_db))
    assert main(["export", "--out", str(tmp_path / "exp"), "--no-views"]) == 0
    out = capsys.readouterr().out
    assert f"Exported {export_db} to {tmp_path / 'exp'}" in out
    assert "daily_returns" not in out and "imported_daily" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv"], "Error: unknown export format 'csv': choose parquet\n"),
        (
            ["--table", "nope"],
            "Error: cannot export 'nope': not a table or exported view; choose from ",
        ),
    ],
)
def test_bad_input_exits_2(export_db, tmp_path, capsys, args, message):
    out = tmp_path / "exp"
    code = main(["export", "--out", str(out), "--db", str(export_db), *args])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.startswith(message)
    assert not out.exists()


def test_missing_warehouse_exits_2(tmp_path, capsys):
    missing = tmp_path / "none.duckdb"
    code = main(["export", "--out", str(tmp_path / "exp"), "--db", str(missing)])
    assert code == 2
    assert capsys.readouterr().err == (
        f"Error: no warehouse at {missing}: run `aitokens import FILE.csv` or `aitokens ingest` first\n"
    )


def test_overwrite_refusal_then_overwrite(export_db, tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["export", "--out", str(out), "--db", str(export_db), "--table", "coins"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"Error: {out} is not empty: pass --overwrite to replace an earlier export, "
        "or choose another --out folder\n"
    )
    assert main([*args, "--overwrite"]) == 0
    assert capsys.readouterr().out.startswith(f"Exported {export_db} to {out} as Parquet")


def test_out_is_required(capsys):
    assert main(["export"]) == 2
    assert "Missing option '--out'" in capsys.readouterr().err


def test_unexpected_failure_exits_1_and_leaves_no_folder(export_db, tmp_path, capsys, monkeypatch):
    def broken(con, source, staging):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(export_mod, "_copy_source", broken)
    out = tmp_path / "exp"
    assert main(["export", "--out", str(out), "--db", str(export_db)]) == 1
    assert capsys.readouterr().err == (
        "Error: unexpected failure (OSError: disk full (simulated)); "
        "rerun with AITOKENS_DEBUG=1 for the traceback\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_help_has_an_example(capsys):
    assert main(["export", "--help"]) == 0
    text = capsys.readouterr().out
    assert "Example: aitokens export --format parquet --out" in text
    assert "--overwrite" in text and "--table NAME" in text
