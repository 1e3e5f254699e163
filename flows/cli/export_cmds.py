"""`aitokens export`: the warehouse as Hive-partitioned Parquet for other engines."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.options import db_option


@click.command("export")
@click.option(
    "--format",
    "fmt",
    default="parquet",
    show_default=True,
    help="Output format (only parquet so far).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Export folder; must not exist or be empty (see --overwrite).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier export in --out (only a folder `aitokens export` wrote, "
    "recognised by its .aitokens-export marker).",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="NAME",
    help="Export only this table or view (repeatable). Default: every table and view.",
)
@click.option("--no-views", is_flag=True, help="Leave out the analyst views.")
@db_option
def export_command(
    fmt: str,
    out: Path,
    overwrite: bool,
    tables: tuple[str, ...],
    no_views: bool,
    db: Path | None,
) -> None:
    """Export the warehouse as Parquet that DuckDB, Spark or Trino can read.

    Dated tables (coin_daily, equity_daily, imported_daily, category_members,
    category_snapshots, raw_responses) and the views daily_prices, daily_returns and
    sector_daily go to OUT/<table>/month=YYYY-MM/*.parquet; dimension tables (coins,
    equities, ingest_runs, ...) to OUT/<table>/data_0.parquet. OUT/manifest.json lists every
    file with its row count. Reads the analysts' snapshot the last write run published (never
    delaying the daily run); files are written to a hidden sibling folder renamed into place at
    the end, so a failed export leaves no partial OUT.

    Example: aitokens export --format parquet --out exports/2024-06-01
    """
    from warehouse.export import export_warehouse, summary_lines

    report = export_warehouse(
        db,
        out,
        fmt=fmt,
        overwrite=overwrite,
        tables=list(tables) or None,
        include_views=not no_views,
    )
    for line in summary_lines(report):
        click.echo(line)


def register(cli: click.Group) -> None:
    """Add ``aitokens export`` to the CLI."""
    cli.add_command(export_command)
