"""`aitokens import`, `aitokens sql` and `aitokens status`: the warehouse's own commands."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.options import db_option
from flows.cli.render import FORMATS, render_frame


@click.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@click.option(
    "--asset-class",
    default="crypto",
    show_default=True,
    help="Asset class for rows whose asset_class column is empty or absent.",
)
@db_option
def import_command(csv_file: Path, asset_class: str, db: Path | None) -> None:
    """Import a long-format price CSV into the warehouse.

    Columns: date,symbol,close plus optional volume_usd,market_cap,asset_class,venue.
    The whole file is validated first; a bad file is rejected with its bad lines listed
    and nothing is written. Re-importing the same file changes nothing.

    Example: aitokens import ../shared/data/sora2024/prices.csv
    """
    from flows.services.csv_import import import_csv

    done = import_csv(db, csv_file, default_asset_class=asset_class)
    report, r = done.report, done.report.result
    click.echo(
        f"Imported {csv_file.name} into {done.db_file}: {report.rows_read:,} rows read, "
        f"{report.series} series; {r.inserted:,} inserted, {r.updated:,} updated, "
        f"{r.unchanged:,} unchanged."
    )
    if report.exact_duplicates:
        click.echo(f"{report.exact_duplicates:,} exact duplicate line(s) collapsed.")
    if done.parsed.ignored_columns:
        click.echo(f"Ignored unknown column(s): {', '.join(done.parsed.ignored_columns)}.")
    if report.changed_nothing:
        click.echo("Nothing changed: the warehouse already held these rows.")


@click.command("sql")
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--allow-files",
    is_flag=True,
    help="Let the query read local files (read_csv, read_parquet, ...). Off by default; the "
    "network and extension installs stay off either way.",
)
@db_option
def sql_command(query: str, fmt: str, allow_files: bool, db: Path | None) -> None:
    """Run a read-only SQL query against the warehouse and print the result.

    Write statements are refused. Views: daily_prices, daily_returns, freshness,
    ai_sector_daily (see docs/warehouse.md). The query sees the warehouse only: no file,
    environment or network reads, and no DuckDB extension is installed or loaded (see
    docs/SECURITY.md); --allow-files opens local files to it.

    Example: aitokens sql "select symbol, count(*) from daily_prices group by 1" --format csv
    """
    from warehouse.db import open_warehouse
    from warehouse.queries import restrict_external_access, run_read_query

    with open_warehouse(db, read_only=True) as con:
        restrict_external_access(con, allow_files=allow_files)
        frame = run_read_query(con, query)
    render_frame(frame, fmt)


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@db_option
def status_command(fmt: str, db: Path | None) -> None:
    """Show every series with its date range, gaps and staleness, and the last ingest run.

    Example: aitokens status --db data/aitokens.duckdb
    """
    from warehouse.db import open_warehouse, resolve_db_path, schema_version
    from warehouse.queries import series_status
    from warehouse.runs import last_run

    with open_warehouse(db, read_only=True) as con:
        frame = series_status(con)
        run = last_run(con)
        version = schema_version(con)
    if fmt != "table":
        render_frame(frame, fmt)
        return
    click.echo(f"Warehouse {resolve_db_path(db)} (schema version {version})")
    if frame.empty:
        click.echo("No series yet: run `aitokens import FILE.csv` or `aitokens ingest`.")
    else:
        render_frame(frame, "table", title=f"{len(frame)} series")
    if run is None:
        click.echo("Last ingest run: none")
    else:
        click.echo(
            f"Last ingest run: {run.flow} {run.run_id} {run.status}, started "
            f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC; {run.rows_inserted:,} inserted, "
            f"{run.rows_updated:,} updated, {run.rows_unchanged:,} unchanged, "
            f"{run.calls:,} API calls"
        )


def register(cli: click.Group) -> None:
    for command in (import_command, sql_command, status_command):
        cli.add_command(command)
