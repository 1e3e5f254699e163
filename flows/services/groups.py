"""Asset groups: refresh a group's members from its CoinGecko categories.

The members are fetched first (through the CoinGecko source's client: rate limit, retries, key
scrubbing), then written in one short transaction, so the warehouse lock is held for
milliseconds. Only rows that a refresh itself wrote (origin ``coingecko``) are ever ended; seeded
and analyst rows stand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warehouse.errors import InputError


@dataclass(frozen=True)
class GroupRefresh:
    group: str
    categories: tuple[str, ...]
    n_members: int
    added: tuple[str, ...]
    ended: tuple[str, ...]


def refresh_groups(
    db: Path | str | None,
    names: Sequence[str] = (),
    *,
    config: Any = None,
    since: dt.date | None = None,
) -> list[GroupRefresh]:
    """Refresh ``names`` (default: every group with CoinGecko categories) from CoinGecko.

    ``config`` is a :class:`flows.sources.coingecko.CoinGeckoConfig` (default: from the
    environment and ``aitokens.toml``); ``since`` backdates the start of new memberships
    (default: the snapshot day, today in UTC)."""
    import pandas as pd

    from flows.sources.coingecko import CoinGeckoConfig
    from flows.sources.coingecko.client import CoinGeckoClient
    from flows.sources.coingecko.history import utc_today
    from flows.sources.coingecko.sector import fetch_category_members
    from warehouse.db import open_warehouse
    from warehouse.groups import find_group, group_categories, group_names, refresh_group

    with open_warehouse(db) as con:  # writable: migrates an older file to 007
        wanted = [find_group(con, n) for n in names] if names else group_names(con)
        cats = {g: group_categories(con, g) for g in wanted}
    if names:
        empty = [g for g in wanted if not cats[g]]
        if empty:
            raise InputError(
                f"group {', '.join(empty)} has no CoinGecko category to refresh from: set one "
                "with aitokens groups add --name NAME --coingecko-category ID"
            )
    cats = {g: c for g, c in cats.items() if c}
    if not cats:
        raise InputError(
            "no group has a CoinGecko category to refresh from: set one with aitokens groups add "
            "--name NAME --coingecko-category ID"
        )
    client = CoinGeckoClient(config or CoinGeckoConfig.from_env())
    snapshot = utc_today()
    fetched = {}
    for g, ids in cats.items():
        frames = [fetch_category_members(client, c, snapshot_date=snapshot) for c in ids]
        fetched[g] = pd.concat(frames, ignore_index=True)[["coin_id", "symbol"]].dropna()
    out = []
    with open_warehouse(db) as con:
        for g, members in fetched.items():
            res = refresh_group(con, g, members, snapshot_date=snapshot, since=since)
            out.append(
                GroupRefresh(
                    g,
                    tuple(cats[g]),
                    members["coin_id"].nunique(),
                    tuple(res["added"]),
                    tuple(res["ended"]),
                )
            )
    return out
