"""`aitokens sector reference list|add|remove`: the cited sector figures (a category's market cap
on a day, with its source) that the sector report compares the tracked members' summed cap with."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.options import db_option

AI_CATEGORY = "artificial-intelligence"


@click.group("sector")
def sector_group() -> None:
    """The AI sector's reference figures (see `aitokens sector reference --help`).

    Example: aitokens sector reference list
    """


@sector_group.group("reference")
def reference_group() -> None:
    """Cited sector figures: a category's market cap on a day and where it was published. The
    sector report shows the tracked members' summed cap on that day, its share of the figure
    and the large members without a cap. Also editable with SQL (table sector_references).

    Example: aitokens sector reference add --date 2024-02-15 --market-cap 25e9
    --source "CoinGecko AI category, https://www.coingecko.com/en/categories/artificial-intelligence"
    """


def _market_cap(text: str) -> float:
    """A USD figure as a number (``25e9``, ``25000000000``, ``25_000_000_000``, ``25B``)."""
    from warehouse.errors import InputError

    raw = text.strip().replace("_", "").replace(",", "").lstrip("$")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9, "t": 1e12}
    for suffix in ("bn", "b", "m", "k", "t"):
        if raw.lower().endswith(suffix):
            raw, factor = raw[: -len(suffix)], scale[suffix]
            break
    else:
        factor = 1.0
    try:
        return float(raw) * factor
    except ValueError:
        raise InputError(
            f"--market-cap {text!r} is not a USD figure (e.g. 25e9, 25000000000 or 25B)"
        ) from None


@reference_group.command("add")
@click.option("--category", default=AI_CATEGORY, show_default=True, help="Category id.")
@click.option("--date", "day", required=True, metavar="DATE", help="The day the figure describes.")
@click.option("--market-cap", "market_cap", required=True, help="USD (25e9, 25B, 25000000000).")
@click.option("--source", required=True, help="Where it was published: a citation or a URL.")
@db_option
def reference_add(category: str, day: str, market_cap: str, source: str, db: Path | None) -> None:
    """Record a cited sector figure (replaces the same category, day and source).

    Example: aitokens sector reference add --date 2024-02-15 --market-cap 25B --source
    "the project brief: the ~$25B AI-token sector"
    """
    from warehouse.caps import SectorReference, add_reference
    from warehouse.db import open_warehouse, publish_snapshot_of
    from warehouse.groups import parse_date

    when = parse_date(day, "--date")
    assert when is not None
    ref = SectorReference(category.strip(), when, _market_cap(market_cap), source.strip())
    with open_warehouse(db) as con:
        new = add_reference(con, ref)
    publish_snapshot_of(db)
    verb = "Recorded" if new else "Replaced"
    click.echo(
        f"{verb} {ref.category_id} on {ref.date}: ${ref.market_cap_usd:,.0f} ({ref.source})."
    )


@reference_group.command("list")
@click.option("--category", default=None, help="Only this category.")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table")
@db_option
def reference_list(category: str | None, fmt: str, db: Path | None) -> None:
    """List the cited sector figures.

    Example: aitokens sector reference list --format csv
    """
    from flows.cli.render import render_frame
    from flows.services.study import ensure_reader_schema
    from warehouse.caps import sector_references
    from warehouse.db import open_reader

    ensure_reader_schema(db)
    with open_reader(db) as con:
        frame = sector_references(con, category)
    frame["date"] = frame["date"].dt.date
    render_frame(frame, fmt, title=f"{len(frame)} sector references" if fmt == "table" else None)


@reference_group.command("remove")
@click.option("--category", default=AI_CATEGORY, show_default=True, help="Category id.")
@click.option("--date", "day", required=True, metavar="DATE", help="The figure's day.")
@db_option
def reference_remove(category: str, day: str, db: Path | None) -> None:
    """Delete every cited figure of the category on that day.

    Example: aitokens sector reference remove --date 2024-02-15
    """
    from warehouse.caps import remove_references
    from warehouse.db import open_warehouse, publish_snapshot_of
    from warehouse.groups import parse_date

    when = parse_date(day, "--date")
    assert when is not None
    with open_warehouse(db) as con:
        n = remove_references(con, category, when)
    publish_snapshot_of(db)
    click.echo(f"Removed {n} reference(s) of {category} on {when}.")


def register(cli: click.Group) -> None:
    """Add ``aitokens sector`` to the CLI."""
    cli.add_command(sector_group)
