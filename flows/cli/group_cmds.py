"""`aitokens groups list|add|remove|seed|refresh`: the analyst-editable asset groups
(sub-sectors) behind `aitokens study --by-group` and the `group:<name>` regressors."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.options import db_option
from flows.services.study import ensure_reader_schema
from warehouse.studyspec import split_list


@click.group("groups")
def groups_group() -> None:
    """Asset groups (sub-sectors such as GPU-compute tokens); a coin may be in several, and
    membership is dated (valid_from .. valid_to).

    Also editable with SQL (tables asset_groups, group_members); see docs/warehouse.md.

    Example: aitokens groups add --name compute --members RNDR,AKT,TAO --since 2023-01-01
    """


@groups_group.command("list")
@click.option("--as-of", "as_of", default=None, metavar="DATE", help="Members on this day.")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table")
@db_option
def groups_list(as_of: str | None, fmt: str, db: Path | None) -> None:
    """List the groups with their current members (or their members on --as-of).

    Example: aitokens groups list --as-of 2024-02-15
    """
    from flows.cli.render import render_frame
    from warehouse.db import open_reader
    from warehouse.groups import list_groups, parse_date

    day = parse_date(as_of, "--as-of")
    ensure_reader_schema(db)
    with open_reader(db) as con:
        frame = list_groups(con, as_of=day)
    render_frame(frame, fmt, title=f"{len(frame)} groups" if fmt == "table" else None)


@groups_group.command("add")
@click.option("--name", required=True, help="Group name, lower-case (compute).")
@click.option("--members", multiple=True, help="Symbols, comma-separated (RNDR,AKT).")
@click.option("--since", default=None, metavar="DATE", help="Membership starts (default today).")
@click.option("--description", default=None, help="One line for reports.")
@click.option(
    "--coingecko-category",
    "categories",
    multiple=True,
    metavar="ID",
    help="CoinGecko category id(s) `aitokens groups refresh` reads members from (replaces "
    "the group's list).",
)
@click.option("--sources", default=None, help="Where the membership comes from.")
@db_option
def groups_add(
    name: str,
    members: tuple[str, ...],
    since: str | None,
    description: str | None,
    categories: tuple[str, ...],
    sources: str | None,
    db: Path | None,
) -> None:
    """Create a group, or add members to it (values bound as SQL parameters).

    Example: aitokens groups add --name gpu --members NVDA,AMD --since 2020-01-01
    --description "GPU makers"
    """
    from warehouse.db import open_warehouse
    from warehouse.groups import add_group

    with open_warehouse(db) as con:
        res = add_group(
            con,
            name=name,
            members=split_list(members),
            description=description,
            coingecko_categories=split_list(categories) if categories else None,
            since=since,
            sources=sources,
        )
    _publish(db)
    what = "Created group" if res["created"] else "Updated group"
    added = ", ".join(res["added"]) or "no new member"
    click.echo(f"{what} {res['name']!r}: added {added} from {res['since']}.")


@groups_group.command("remove")
@click.argument("name")
@click.option("--members", multiple=True, help="Only these members (comma-separated).")
@click.option(
    "--until", default=None, metavar="DATE", help="End the members' membership on DATE instead."
)
@db_option
def groups_remove(name: str, members: tuple[str, ...], until: str | None, db: Path | None) -> None:
    """Remove a group, or some of its members (deleted, or ended on --until).

    Example: aitokens groups remove compute --members GLM --until 2024-06-30
    """
    from warehouse.db import open_warehouse
    from warehouse.groups import remove_group

    with open_warehouse(db) as con:
        res = remove_group(con, name, members=split_list(members), until=until)
    _publish(db)
    if res["group_removed"]:
        click.echo(f"Removed group {res['name']!r} and its {res['members']} membership row(s).")
    elif res.get("until"):
        click.echo(f"Ended {res['members']} member(s) of {res['name']!r} on {res['until']}.")
    else:
        click.echo(f"Removed {res['members']} member(s) from {res['name']!r}.")


@groups_group.command("seed")
@db_option
def groups_seed(db: Path | None) -> None:
    """Re-add default groups missing from the table; existing groups are never changed.

    Defaults: compute (RNDR, AKT, TAO, GLM), agents (FET, AGIX, INJ), data (GRT, OCEAN, ARKM,
    NMR), identity (WLD), from the projects' own documentation (see docs/warehouse.md).

    Example: aitokens groups seed
    """
    from warehouse.db import open_warehouse
    from warehouse.groups import seed_groups

    with open_warehouse(db) as con:
        added = seed_groups(con)
    _publish(db)
    click.echo(f"Added {len(added)} default group(s){': ' + ', '.join(added) if added else ''}.")


@groups_group.command("refresh")
@click.argument("names", nargs=-1)
@click.option(
    "--since",
    default=None,
    metavar="DATE",
    help="Start new memberships on DATE (default: the snapshot day, today UTC).",
)
@db_option
def groups_refresh(names: tuple[str, ...], since: str | None, db: Path | None) -> None:
    """Refresh groups from their CoinGecko categories (default: every group that has one).

    Coins that left a category end their membership the day before the snapshot; new ones
    start on the snapshot day (or --since). Seeded and analyst rows are never changed.

    Example: aitokens groups refresh agents
    """
    from flows.services.groups import refresh_groups
    from warehouse.groups import parse_date

    start = parse_date(since, "--since")
    results = list(refresh_groups(db, names, since=start))
    _publish(db)
    for r in results:
        click.echo(
            f"Group {r.group} from CoinGecko {', '.join(r.categories)}: {r.n_members} coins; "
            f"added {', '.join(r.added) or 'none'}; ended {', '.join(r.ended) or 'none'}."
        )


def _publish(db: Path | None) -> None:
    """The groups changed: republish the snapshot `groups list`, reports and analysts read."""
    from warehouse.db import publish_snapshot_of

    publish_snapshot_of(db)


def register(cli: click.Group) -> None:
    """Add ``aitokens groups`` to the CLI."""
    cli.add_command(groups_group)
