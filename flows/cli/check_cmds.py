"""`aitokens check`: list the quarantined points, release one, reconcile vendors (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flows.cli.options import db_option
from flows.cli.render import render_frame


@click.group("check", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the points as a JSON list.")
@click.option(
    "--reconcile",
    is_flag=True,
    help="Print the daily disagreement between sources of one symbol (bp) instead.",
)
@click.option(
    "--tolerance-bp",
    type=float,
    default=200.0,
    show_default=True,
    help="With --reconcile: days above this disagreement are counted.",
)
@db_option
@click.pass_context
def check_group(
    ctx: click.Context, as_json: bool, reconcile: bool, tolerance_bp: float, db: Path | None
) -> None:
    """List the points every load's checks quarantined (kept out of studies).

    Each point has its symbol, source, date (or ts for hourly), value, check and reason.

    Example: aitokens check --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from flows.services.quality import list_suspects, reconcile_sources

    if reconcile:
        frame = reconcile_sources(db, tolerance_bp)
        if frame.empty:
            click.echo("No symbol is held by two sources on the same days.")
        else:
            render_frame(frame, "json" if as_json else "table", title="Cross-vendor disagreement")
        return
    points = list_suspects(db)
    if as_json:
        click.echo(json.dumps([p.as_json() for p in points], indent=2))
        return
    if not points:
        click.echo("No quarantined point.")
        return
    click.echo(f"{len(points)} quarantined point(s):")
    for p in points:
        click.echo(f"  {p.one_line()}")
    click.echo("Release one with: aitokens check accept SYMBOL DATE [--source SOURCE]")


@check_group.command("accept")
@click.argument("symbol")
@click.argument("when", metavar="DATE")
@click.option("--source", default=None, help="Only the point of this source.")
@db_option
def accept_command(symbol: str, when: str, source: str | None, db: Path | None) -> None:
    """Release a quarantined point: studies use it again.

    Example: aitokens check accept FET 2024-02-17 --source binance_spot
    """
    from flows.services.quality import accept_point

    n = accept_point(db, symbol, when, source)
    click.echo(f"Released {n} point(s) of {symbol.upper()} at {when}.")


def register(cli: click.Group) -> None:
    cli.add_command(check_group)
