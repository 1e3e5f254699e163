"""Click options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Warehouse file (default: $AITOKENS_DB or ./data/aitokens.duckdb).",
)
