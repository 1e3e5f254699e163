"""Click options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click


def _checked_db(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a FIFO, device, folder, foreign or truncated file as ``--db`` before any work
    starts (e.g. a temporary Prefect server); the warehouse checks again when it opens."""
    from warehouse.files import check_warehouse_file

    if value is not None:
        check_warehouse_file(value.expanduser())
    return value


db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_checked_db,
    help="Warehouse file (default: $AITOKENS_DB or ./data/aitokens.duckdb).",
)
