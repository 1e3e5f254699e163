"""The `aitokens` command line: one entry point for import, SQL, status (and, as they land,
ingestion, studies and reports).

Commands stay thin: they parse arguments, call the library, and print. The library raises
typed errors; ``main`` alone turns them into a one-line ``Error: ...`` and an exit code:
0 success, 2 bad input (or a step the user must run first), 1 unexpected failure.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import click

from flows.options import db_option
from flows.output import FORMATS, render_frame

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="aitokens")
def cli(verbose: int) -> None:
    """aitokens: AI-token market data, warehouse and event studies.

    Example: aitokens import prices.csv && aitokens status
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Before any command imports Prefect (its settings are read once, at import): no telemetry
    # (no network here), and its INFO chatter only with -v. An explicit setting wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.config import apply_warehouse_settings

    apply_warehouse_settings()  # aitokens.toml, if any: a bad file stops here with exit 2


@cli.command("import")
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
    from flows.sources.csv_import import read_price_csv
    from warehouse.db import open_warehouse, resolve_db_path
    from warehouse.imports import import_prices

    parsed = read_price_csv(csv_file, default_asset_class=asset_class)
    with open_warehouse(db) as con:
        report = import_prices(
            con,
            parsed.frame,
            path=csv_file,
            rows_read=parsed.rows_read,
            exact_duplicates=parsed.exact_duplicates,
        )
    r = report.result
    click.echo(
        f"Imported {csv_file.name} into {resolve_db_path(db)}: {report.rows_read:,} rows read, "
        f"{report.series} series; {r.inserted:,} inserted, {r.updated:,} updated, "
        f"{r.unchanged:,} unchanged."
    )
    if report.exact_duplicates:
        click.echo(f"{report.exact_duplicates:,} exact duplicate line(s) collapsed.")
    if parsed.ignored_columns:
        click.echo(f"Ignored unknown column(s): {', '.join(parsed.ignored_columns)}.")
    if report.changed_nothing:
        click.echo("Nothing changed: the warehouse already held these rows.")


@cli.command("sql")
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@db_option
def sql_command(query: str, fmt: str, db: Path | None) -> None:
    """Run a read-only SQL query against the warehouse and print the result.

    Write statements are refused. Views: daily_prices, daily_returns, freshness,
    ai_sector_daily (see docs/warehouse.md).

    Example: aitokens sql "select symbol, count(*) from daily_prices group by 1" --format csv
    """
    from warehouse.db import open_warehouse
    from warehouse.queries import run_read_query

    with open_warehouse(db, read_only=True) as con:
        frame = run_read_query(con, query)
    render_frame(frame, fmt)


@cli.command("status")
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
            f"Last ingest run: {run['flow']} {run['run_id']} {run['status']}, started "
            f"{run['started_at']:%Y-%m-%d %H:%M:%S} UTC; {run['rows_inserted']:,} inserted, "
            f"{run['rows_updated']:,} updated, {run['rows_unchanged']:,} unchanged, "
            f"{run['calls']:,} API calls"
        )


def _register_command_modules(group: click.Group) -> None:
    """Add the commands of every module in ``flows.commands`` (see its docstring)."""
    import importlib
    import pkgutil

    import flows.commands

    for info in sorted(pkgutil.iter_modules(flows.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"flows.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(group)


_register_command_modules(cli)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exception classes that mean 'bad input or a step to run first' (exit 2) or a known
    failure (their own exit_code). Imported lazily so the CLI starts fast."""
    from warehouse.errors import WarehouseError

    types: list[type[BaseException]] = [WarehouseError]
    for module, name in (
        ("flows.errors", "AitokensSourceError"),
        ("analysis.errors", "EventStudyInputError"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
            types.append(getattr(mod, name))
        except (ImportError, AttributeError):
            continue
    return tuple(types)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and map errors to exit codes."""
    try:
        cli.main(args=argv, prog_name="aitokens", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_FAILURE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _user_error_types() as exc:
        click.echo(f"Error: {exc}", err=True)
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # the last resort: say what broke, keep the traceback opt-in
        if os.environ.get("AITOKENS_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"Error: unexpected failure ({type(exc).__name__}: {_first_line(exc)}); "
            "rerun with AITOKENS_DEBUG=1 for the traceback",
            err=True,
        )
        return EXIT_FAILURE
    return EXIT_OK


def run() -> None:
    """Console-script shim: exit with ``main``'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
