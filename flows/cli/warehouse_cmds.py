"""`aitokens import`, `sql`, `status`, `paths` and `warehouse compat`: the warehouse's own
commands. Readers (`sql`, `status`) open the analysts' snapshot, never the writer's file."""

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
    """Import a long-format price CSV, or a market-cap file, into the warehouse.

    Prices: date,symbol,close plus optional volume_usd,market_cap,asset_class,venue.
    Market caps (a header with market_cap and no close): date,symbol,market_cap plus
    optional volume_usd,source; stored beside the prices with their source.
    The whole file is validated first; a bad file is rejected with its bad lines listed
    and nothing is written. Re-importing the same file changes nothing.

    Example: aitokens import ../shared/data/sora2024/prices.csv
    Example: aitokens import ../shared/data/ai_events/market_caps.csv
    """
    from flows.services.csv_import import import_csv

    done = import_csv(db, csv_file, default_asset_class=asset_class)
    report, r = done.report, done.report.result
    what = " market caps" if done.kind == "caps" else ""
    click.echo(
        f"Imported{what} {csv_file.name} into {done.db_file}: {report.rows_read:,} rows read, "
        f"{report.series} series; {r.inserted:,} inserted, {r.updated:,} updated, "
        f"{r.unchanged:,} unchanged."
    )
    if report.exact_duplicates:
        click.echo(f"{report.exact_duplicates:,} exact duplicate line(s) collapsed.")
    if done.parsed.ignored_columns:
        click.echo(f"Ignored unknown column(s): {', '.join(done.parsed.ignored_columns)}.")
    if report.changed_nothing:
        click.echo("Nothing changed: the warehouse already held these rows.")
    for point in report.suspects:
        click.echo(f"Warning: quarantined {point.one_line()}; see aitokens check", err=True)


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
    from warehouse.db import open_reader
    from warehouse.queries import restrict_external_access, run_read_query

    with open_reader(db) as con:
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
    from warehouse.db import open_reader, resolve_db_path, schema_version
    from warehouse.quality import quarantined
    from warehouse.queries import series_status
    from warehouse.runs import last_run
    from warehouse.snapshot import reader_path

    with open_reader(db) as con:
        frame = series_status(con)
        run = last_run(con)
        version = schema_version(con)
        suspects = quarantined(con)
    if fmt != "table":
        render_frame(frame, fmt)
        return
    db_file = resolve_db_path(db)
    read, is_snapshot = reader_path(db_file)
    click.echo(f"Warehouse {db_file} (schema version {version})")
    if is_snapshot:
        click.echo(f"Read from its snapshot {read} (published by the last write run)")
    else:
        click.echo(
            "Read from the warehouse itself: no snapshot published yet (the next import, "
            "ingest or pipeline publishes one)"
        )
    if frame.empty:
        click.echo("No series yet: run `aitokens import FILE.csv` or `aitokens ingest`.")
    else:
        render_frame(frame, "table", title=f"{len(frame)} series")
    if suspects:
        click.echo(
            f"Quarantined points: {len(suspects)} (kept out of studies; list them with "
            "`aitokens check`)"
        )
    else:
        click.echo("Quarantined points: none")
    if run is None:
        click.echo("Last ingest run: none")
    else:
        click.echo(
            f"Last ingest run: {run.flow} {run.run_id} {run.status}, started "
            f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC; {run.rows_inserted:,} inserted, "
            f"{run.rows_updated:,} updated, {run.rows_unchanged:,} unchanged, "
            f"{run.calls:,} API calls"
        )


@click.command("paths")
@db_option
def paths_command(db: Path | None) -> None:
    """Print the warehouse file and the analysts' snapshot, one per line.

    Point the DuckDB CLI, a notebook or a BI tool at the snapshot (read-only; it is replaced
    after each import, ingest or pipeline run, and never blocks them). The warehouse file is
    private to write runs. Without --db the path is: $AITOKENS_DB, else data/aitokens.duckdb
    beside the nearest aitokens.toml, else $AITOKENS_HOME/data/aitokens.duckdb, else the nearest
    existing data/aitokens.duckdb, else ~/.local/share/aitokens/aitokens.duckdb.

    Example: duckdb -readonly "$(aitokens paths | sed -n 's/^snapshot //p')"
    """
    from warehouse.db import resolve_db_path
    from warehouse.paths import snapshot_path

    db_file = resolve_db_path(db).absolute()
    click.echo(f"warehouse {db_file}")
    click.echo(f"snapshot {snapshot_path(db_file)}")


@click.group("warehouse")
def warehouse_group() -> None:
    """Maintain the warehouse file itself.

    Example: aitokens warehouse compat
    """


@warehouse_group.command("compat")
@db_option
def compat_command(db: Path | None) -> None:
    """Rewrite the warehouse in the storage format DuckDB 1.4 and later read, atomically.

    Files created by this version already use it; run this once on a warehouse created
    before (DuckDB 2's own format, which DuckDB 1.x clients refuse). Also republishes the
    snapshot.

    Example: aitokens warehouse compat
    """
    from flows.services.warehouse_maintenance import make_compatible

    done = make_compatible(db)
    click.echo(
        f"Rewrote {done.db_file} in storage format {done.after} (was {done.before}); "
        f"snapshot {done.snapshot or 'not published (see the warning above)'}."
    )


def register(cli: click.Group) -> None:
    for command in (import_command, sql_command, status_command, paths_command, warehouse_group):
        cli.add_command(command)
