"""Asset groups (sub-sectors such as GPU-compute tokens): the analyst-editable ``asset_groups``
and ``group_members`` tables of migration 007, and the volumes a second-stage study reads.

Membership is dated (``valid_from`` .. ``valid_to``, inclusive; NULL = current) so a study of a
past event takes the members as of its day 0. A coin may sit in several groups. Every write is
one transaction; every value is bound as a parameter. The warehouse never imports the engine:
:func:`members_as_of` hands the analysis a plain ``{group: [symbols]}`` mapping.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from warehouse.db import scalar, transaction
from warehouse.errors import InputError
from warehouse.runs import utcnow

GROUP_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,29}")
CATEGORY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
SEED_FROM = dt.date(2015, 1, 1)
"""Seeded membership starts before any seeded token listed: a project's line of business."""


class UnknownGroupError(InputError):
    """A group named on the command line is not in ``asset_groups``."""


@dataclass(frozen=True)
class GroupSpec:
    """One default group: name, description, members (symbol, CoinGecko id), where from."""

    name: str
    description: str
    members: tuple[tuple[str, str], ...]
    sources: str
    coingecko_categories: tuple[str, ...] = field(default_factory=tuple)


DEFAULT_GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec(
        "compute",
        "GPU and decentralised compute: rendering, training, inference markets",
        (
            ("RNDR", "render-token"),
            ("AKT", "akash-network"),
            ("TAO", "bittensor"),
            ("GLM", "golem"),
        ),
        "project documentation (render.x, akash.network, bittensor.com, golem.network)",
    ),
    GroupSpec(
        "agents",
        "AI agents and platforms: agent frameworks, AI service marketplaces",
        (("FET", "fetch-ai"), ("AGIX", "singularitynet"), ("INJ", "injective-protocol")),
        'project documentation (fetch.ai, singularitynet.io, injective.com); CoinGecko "AI Agents"',
        ("ai-agents",),
    ),
    GroupSpec(
        "data",
        "Data and indexing: query indexing, data markets, on-chain intelligence",
        (
            ("GRT", "the-graph"),
            ("OCEAN", "ocean-protocol"),
            ("ARKM", "arkham"),
            ("NMR", "numeraire"),
        ),
        "project documentation (thegraph.com, oceanprotocol.com, arkhamintelligence.com, numer.ai)",
    ),
    GroupSpec(
        "identity",
        "Identity: proof of personhood",
        (("WLD", "worldcoin-wld"),),
        "project documentation (worldcoin.org)",
    ),
)
"""The seeded sub-sectors of the AI category (migration 007 inserts the same rows)."""


def validate_group_name(name: str) -> str:
    """A group name is lower-case letters, digits, ``_`` or ``-`` (it becomes ``group:<name>``)."""
    text = (name or "").strip()
    if not GROUP_NAME_RE.fullmatch(text):
        raise InputError(
            f"group name {name!r} must be 1-32 lower-case letters, digits, '_' or '-', starting "
            "with a letter (e.g. compute)"
        )
    return text


def _symbols(values: Iterable[str]) -> list[str]:
    out = []
    for raw in values:
        sym = raw.strip().upper()
        if not sym:
            continue
        if not SYMBOL_RE.fullmatch(sym):
            raise InputError(f"member {raw!r} is not a ticker symbol (e.g. RNDR)")
        out.append(sym)
    return list(dict.fromkeys(out))


def _categories(values: Iterable[str]) -> list[str]:
    out = []
    for raw in values:
        cid = raw.strip()
        if not cid:
            continue
        if not CATEGORY_RE.fullmatch(cid):
            raise InputError(
                f"CoinGecko category {raw!r} is not a category id (lower-case, digits and '-', "
                "e.g. ai-agents)"
            )
        out.append(cid)
    return list(dict.fromkeys(out))


def parse_date(value: str | dt.date | None, what: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


# ---------------------------------------------------------------------------------- reading
def list_groups(con: duckdb.DuckDBPyConnection, *, as_of: dt.date | None = None) -> pd.DataFrame:
    """One row per group: name, description, members (as of ``as_of``, or current when None),
    n_members, coingecko_categories, sources, origin."""
    day = as_of
    rows = con.execute(
        "SELECT g.name, g.description, "
        "coalesce(string_agg(m.symbol, ',' ORDER BY m.symbol), '') AS members, "
        "count(m.symbol) AS n_members, array_to_string(g.coingecko_categories, ',') "
        "AS coingecko_categories, g.sources, g.origin "
        "FROM asset_groups g LEFT JOIN group_members m ON m.group_name = g.name AND "
        "(CASE WHEN ?::DATE IS NULL THEN m.valid_to IS NULL "
        "ELSE m.valid_from <= ?::DATE AND (m.valid_to IS NULL OR m.valid_to >= ?::DATE) END) "
        "GROUP BY ALL ORDER BY g.name",
        [day, day, day],
    ).df()
    rows["n_members"] = rows["n_members"].astype("int64")
    return rows


def group_memberships(con: duckdb.DuckDBPyConnection, name: str | None = None) -> pd.DataFrame:
    """Every dated membership row (group_name, symbol, coin_id, valid_from, valid_to, origin)."""
    where, params = ("WHERE group_name = ?", [name]) if name else ("", [])
    return con.execute(
        "SELECT group_name, symbol, coin_id, valid_from, valid_to, origin FROM group_members "
        f"{where} ORDER BY group_name, symbol, valid_from",
        params,
    ).df()


def group_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM asset_groups ORDER BY name").fetchall()]


def find_group(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The group called exactly ``name``; close matches are named when it is missing."""
    names = group_names(con)
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownGroupError(
        f"no group {name!r}{hint} (groups held: {', '.join(names) or 'none'}; add one with "
        "aitokens groups add --name NAME --members A,B)"
    )


def members_as_of(con: duckdb.DuckDBPyConnection, day: dt.date) -> dict[str, list[str]]:
    """``{group: [symbols]}`` of every group as of ``day`` (groups without members included;
    empty for a file older than migration 007, which a read-only open does not migrate)."""
    held = scalar(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'group_members'"
    )
    if not held:
        return {}
    out: dict[str, list[str]] = {n: [] for n in group_names(con)}
    for group, sym in con.execute(
        "SELECT group_name, symbol FROM group_members WHERE valid_from <= ? AND "
        "(valid_to IS NULL OR valid_to >= ?) ORDER BY group_name, symbol",
        [day, day],
    ).fetchall():
        out.setdefault(group, []).append(sym)
    return out


# ---------------------------------------------------------------------------------- writing
def add_group(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    members: Sequence[str] = (),
    description: str | None = None,
    coingecko_categories: Sequence[str] | None = None,
    since: str | dt.date | None = None,
    sources: str | None = None,
) -> dict[str, Any]:
    """Create group ``name`` or add to it: members from ``since`` (default today, UTC), and,
    when given, a new description, CoinGecko categories and sources. A symbol already a current
    member keeps its row. Returns ``{"name", "created", "added"}``."""
    name = validate_group_name(name)
    syms = _symbols(members)
    cats = None if coingecko_categories is None else _categories(coingecko_categories)
    start = parse_date(since, "--since") or utcnow().date()
    now = utcnow()
    with transaction(con):
        exists = bool(scalar(con, "SELECT count(*) FROM asset_groups WHERE name = ?", [name]))
        if not exists:
            con.execute(
                "INSERT INTO asset_groups (name, description, coingecko_categories, sources, "
                "origin, updated_at) VALUES (?, ?, ?, ?, 'analyst', ?)",
                [name, description or "", cats or [], sources or "analyst", now],
            )
        else:
            sets, params = [], []
            for col, val in (
                ("description", description),
                ("coingecko_categories", cats),
                ("sources", sources),
            ):
                if val is not None:
                    sets.append(f"{col} = ?")
                    params.append(val)
            if sets:
                con.execute(
                    f"UPDATE asset_groups SET {', '.join(sets)}, updated_at = ? WHERE name = ?",
                    [*params, now, name],
                )
        current = {
            r[0]
            for r in con.execute(
                "SELECT symbol FROM group_members WHERE group_name = ? AND valid_from <= ? AND "
                "(valid_to IS NULL OR valid_to >= ?)",
                [name, start, start],
            ).fetchall()
        }
        added = [s for s in syms if s not in current]
        if added:
            con.execute(
                "INSERT OR REPLACE INTO group_members (group_name, symbol, coin_id, valid_from, "
                "valid_to, origin, updated_at) SELECT ?, s, NULL, ?, NULL, 'analyst', ? "
                "FROM unnest(?::VARCHAR[]) AS t(s)",
                [name, start, now, added],
            )
    return {"name": name, "created": not exists, "added": added, "since": start}


def remove_group(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    members: Sequence[str] = (),
    until: str | dt.date | None = None,
) -> dict[str, Any]:
    """Remove group ``name`` (with its memberships), or only ``members`` of it: their rows are
    deleted, or with ``until`` their membership ends on that day (history kept)."""
    name = find_group(con, name)
    syms = _symbols(members)
    end = parse_date(until, "--until")
    if end is not None and not syms:
        raise InputError("--until ends the membership of --members: name the members to end")
    with transaction(con):
        if not syms:
            n = scalar(con, "SELECT count(*) FROM group_members WHERE group_name = ?", [name])
            con.execute("DELETE FROM group_members WHERE group_name = ?", [name])
            con.execute("DELETE FROM asset_groups WHERE name = ?", [name])
            return {"name": name, "group_removed": True, "members": int(n)}
        held = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT symbol FROM group_members WHERE group_name = ?", [name]
            ).fetchall()
        }
        missing = [s for s in syms if s not in held]
        if missing:
            raise InputError(
                f"group {name!r} has no member {', '.join(missing)} (members: "
                f"{', '.join(sorted(held)) or 'none'})"
            )
        if end is None:
            con.execute(
                "DELETE FROM group_members WHERE group_name = ? AND symbol IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [name, syms],
            )
        else:
            con.execute(
                "UPDATE group_members SET valid_to = ?, updated_at = ? WHERE group_name = ? AND "
                "symbol IN (SELECT unnest(?::VARCHAR[])) AND valid_from <= ? AND "
                "(valid_to IS NULL OR valid_to > ?)",
                [end, utcnow(), name, syms, end, end],
            )
    return {"name": name, "group_removed": False, "members": len(syms), "until": end}


def seed_groups(
    con: duckdb.DuckDBPyConnection, groups: Iterable[GroupSpec] = DEFAULT_GROUPS
) -> list[str]:
    """Insert the default groups whose names are missing, with their members; never touch an
    existing group. Returns the names inserted."""
    have = set(group_names(con))
    added = []
    now = utcnow()
    with transaction(con):
        for g in groups:
            if g.name in have:
                continue
            con.execute(
                "INSERT INTO asset_groups (name, description, coingecko_categories, sources, "
                "origin, updated_at) VALUES (?, ?, ?, ?, 'seed', ?)",
                [g.name, g.description, list(g.coingecko_categories), g.sources, now],
            )
            con.execute(
                "INSERT OR REPLACE INTO group_members (group_name, symbol, coin_id, valid_from, "
                "valid_to, origin, updated_at) SELECT ?, s, c, ?, NULL, 'seed', ? "
                "FROM (SELECT unnest(?::VARCHAR[]) AS s, unnest(?::VARCHAR[]) AS c)",
                [
                    g.name,
                    SEED_FROM,
                    now,
                    [s for s, _ in g.members],
                    [c for _, c in g.members],
                ],
            )
            added.append(g.name)
    return added


def group_categories(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    name = find_group(con, name)
    row = con.execute(
        "SELECT coingecko_categories FROM asset_groups WHERE name = ?", [name]
    ).fetchone()
    return list(row[0] or []) if row else []


def refresh_group(
    con: duckdb.DuckDBPyConnection,
    name: str,
    members: pd.DataFrame,
    *,
    snapshot_date: dt.date,
    since: dt.date | None = None,
) -> dict[str, list[str]]:
    """Apply a CoinGecko snapshot of the group's categories (``members``: coin_id, symbol) to
    the rows of origin ``coingecko``: coins that left end on the day before ``snapshot_date``;
    new coins start on ``since`` (default ``snapshot_date``). Seeded and analyst rows are never
    changed. Returns ``{"added": [...], "ended": [...]}`` (symbols)."""
    name = find_group(con, name)
    start = since or snapshot_date
    fresh = (
        members.assign(symbol=members["symbol"].astype(str).str.upper())
        .drop_duplicates("coin_id")
        .loc[:, ["coin_id", "symbol"]]
    )
    now = utcnow()
    with transaction(con):
        current = con.execute(
            "SELECT symbol, coin_id, origin FROM group_members WHERE group_name = ? AND "
            "valid_to IS NULL",
            [name],
        ).df()
        held = set(current["symbol"])
        gecko = current[current["origin"] == "coingecko"]
        gone = sorted(set(gecko["symbol"]) - set(fresh["symbol"]))
        new = fresh[~fresh["symbol"].isin(held)]
        if gone:
            con.execute(
                "UPDATE group_members SET valid_to = ?, updated_at = ? WHERE group_name = ? AND "
                "origin = 'coingecko' AND valid_to IS NULL AND symbol IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [snapshot_date - dt.timedelta(days=1), now, name, gone],
            )
        if not new.empty:
            con.execute(
                "INSERT OR REPLACE INTO group_members (group_name, symbol, coin_id, valid_from, "
                "valid_to, origin, updated_at) SELECT ?, s, c, ?, NULL, 'coingecko', ? "
                "FROM (SELECT unnest(?::VARCHAR[]) AS s, unnest(?::VARCHAR[]) AS c)",
                [name, start, now, list(new["symbol"]), list(new["coin_id"])],
            )
        con.execute("UPDATE asset_groups SET updated_at = ? WHERE name = ?", [now, name])
    return {"added": sorted(new["symbol"]), "ended": gone}


# ---------------------------------------------------------------------------------- volumes
def load_volumes(
    con: duckdb.DuckDBPyConnection,
    series: Iterable[tuple[str, str]],
    *,
    hourly: bool = False,
) -> pd.DataFrame:
    """USD volume of exactly the given ``(asset_id, source)`` series: ``date`` (the day, or the
    hour's UTC close), ``symbol``, ``volume_usd`` (NULL where the source has none)."""
    pairs = list(series)
    table, col = ("hourly_prices", "ts") if hourly else ("daily_prices", "date")
    frame = con.execute(
        f"SELECT p.{col} AS date, p.symbol, p.volume_usd FROM {table} AS p "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) AS k "
        "USING (asset_id, source) ORDER BY p.symbol, 1",
        [[a for a, _ in pairs], [s for _, s in pairs]],
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    frame["volume_usd"] = frame["volume_usd"].astype("float64")
    return frame
