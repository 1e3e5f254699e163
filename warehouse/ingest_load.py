"""Warehouse side of ingestion: what is already held (incremental state) and the loaders.

The sources hand tidy frames over; these functions upsert them, each batch in one
transaction together with the raw answers that produced it, so a crash between two batches
leaves whole batches only, and the next run starts from what is really there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from warehouse.db import transaction
from warehouse.load import UpsertResult, upsert
from warehouse.runs import utcnow

BENCHMARK_COINS = {"bitcoin": "crypto_benchmark", "ethereum": "crypto_benchmark"}


@dataclass(frozen=True)
class RawExchange:
    """One HTTP answer for ``raw_responses``: params carry no secret, body is scrubbed."""

    endpoint: str
    params: Mapping[str, Any]
    status: int | None
    body: str
    fetched_at: datetime


def save_raw_responses(
    con: duckdb.DuckDBPyConnection, run_id: str, exchanges: Iterable[RawExchange]
) -> int:
    """Append the answers (inside the caller's transaction); returns how many."""
    rows = [
        (
            run_id,
            x.endpoint,
            json.dumps(dict(x.params), default=str),
            x.fetched_at,
            x.status,
            x.body,
        )
        for x in exchanges
    ]
    if not rows:
        return 0
    frame = pd.DataFrame(
        rows, columns=["run_id", "endpoint", "params", "fetched_at", "status", "body"]
    )
    con.register("_raw_stage", frame)
    try:
        con.execute(
            "INSERT INTO raw_responses (run_id, endpoint, params, fetched_at, status, body) "
            "SELECT run_id, endpoint, params::JSON, fetched_at, status, body FROM _raw_stage"
        ).fetchall()
    finally:
        con.unregister("_raw_stage")
    return len(rows)


def load_snapshot(
    con: duckdb.DuckDBPyConnection,
    categories: pd.DataFrame,
    members: pd.DataFrame,
    *,
    run_id: str,
    raw: Iterable[RawExchange] = (),
) -> dict[str, UpsertResult]:
    """Category figures, members of the day and the coins they name: one transaction."""
    coins = members[["coin_id", "symbol", "name"]].drop_duplicates("coin_id").copy()
    ai = set(members.loc[members["category_id"] == "artificial-intelligence", "coin_id"])
    coins["asset_class"] = [
        BENCHMARK_COINS.get(c, "ai_token" if c in ai else "crypto") for c in coins["coin_id"]
    ]
    coins["updated_at"] = utcnow()
    snap_cols = [
        "category_id",
        "snapshot_date",
        "snapshot_ts",
        "name",
        "market_cap",
        "market_cap_change_24h",
        "volume_24h",
        "updated_at",
    ]
    snaps = categories[snap_cols].copy()
    for col in ("snapshot_ts", "updated_at"):
        snaps[col] = _naive_utc(snaps[col])
    snaps["n_coins"] = [int((members["category_id"] == c).sum()) for c in snaps["category_id"]]
    member_cols = [
        "category_id",
        "coin_id",
        "snapshot_date",
        "rank",
        "market_cap",
        "market_cap_rank",
    ]
    with transaction(con):
        results = {
            # A coin already known keeps an earlier, more specific class (ai_token stays).
            "coins": upsert_coins(con, coins),
            "category_snapshots": upsert(
                con,
                "category_snapshots",
                snaps,
                ["category_id", "snapshot_date"],
                on_conflict="last",
            ),
            "category_members": upsert(
                con,
                "category_members",
                members[member_cols],
                ["category_id", "coin_id", "snapshot_date"],
                on_conflict="last",
            ),
        }
        save_raw_responses(con, run_id, raw)
    return results


def upsert_coins(con: duckdb.DuckDBPyConnection, coins: pd.DataFrame) -> UpsertResult:
    """Upsert coin metadata; ``ai_token`` is sticky so a coin that left the category keeps it."""
    known = dict(con.execute("SELECT coin_id, asset_class FROM coins").fetchall())
    coins = coins.copy()
    coins["asset_class"] = [
        "ai_token" if known.get(c) == "ai_token" and a == "crypto" else a
        for c, a in zip(coins["coin_id"], coins["asset_class"], strict=True)
    ]
    return upsert(con, "coins", coins, ["coin_id"], on_conflict="last")


def ensure_coins(con: duckdb.DuckDBPyConnection, coin_ids: Iterable[str]) -> None:
    """Benchmarks (BTC, ETH) may not be category members: give them a coins row anyway."""
    rows = [
        {
            "coin_id": c,
            "symbol": {"bitcoin": "btc", "ethereum": "eth"}.get(c, c),
            "name": c.title(),
            "asset_class": BENCHMARK_COINS.get(c, "crypto"),
            "updated_at": utcnow(),
        }
        for c in coin_ids
    ]
    if not rows:
        return
    frame = pd.DataFrame(rows)
    known = {r[0] for r in con.execute("SELECT coin_id FROM coins").fetchall()}
    frame = frame[~frame["coin_id"].isin(known)]
    if len(frame):
        upsert(con, "coins", frame, ["coin_id"])


def upsert_series_rows(
    con: duckdb.DuckDBPyConnection, table: str, key: Sequence[str], frame: pd.DataFrame
) -> UpsertResult:
    """A source's tidy rows into its declared table on its key, inside the caller's
    transaction (which also holds the raw answers and the coverage); a later answer for the
    same key replaces an earlier one (vendors revise)."""
    return upsert(con, table, frame, list(key), on_conflict="last")


def save_coverage(
    con: duckdb.DuckDBPyConnection,
    source: str,
    series_id: str,
    covered_from: date,
    covered_to: date | None,
) -> None:
    """Record a series' coverage (inside the caller's transaction)."""
    frame = pd.DataFrame(
        [
            {
                "source": source,
                "series_id": series_id,
                "covered_from": covered_from,
                "covered_to": covered_to,
                "updated_at": utcnow(),
            }
        ]
    )
    upsert(con, "fetch_coverage", frame, ["source", "series_id"], on_conflict="last")


def load_global(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    run_id: str,
    raw: Iterable[RawExchange] = (),
) -> UpsertResult:
    """Today's /global row; a later answer on the same UTC day replaces an earlier one."""
    batch = frame.copy()
    batch["updated_at"] = _naive_utc(batch["updated_at"])
    with transaction(con):
        result = upsert(con, "global_daily", batch, ["date"], on_conflict="last")
        save_raw_responses(con, run_id, raw)
    return result


def record_skipped(con: duckdb.DuckDBPyConnection, run_id: str, skipped: Mapping[str, str]) -> None:
    if not skipped:
        return
    frame = pd.DataFrame(
        {
            "coin_id": list(skipped),
            "run_id": run_id,
            "reason": list(skipped.values()),
            "skipped_at": utcnow(),
        }
    )
    with transaction(con):
        upsert(con, "skipped_coins", frame, ["coin_id", "run_id"], on_conflict="last")


def _naive_utc(series: pd.Series) -> pd.Series:
    """UTC-aware timestamps to naive UTC: the warehouse stores TIMESTAMP in UTC."""
    converted = pd.to_datetime(series, utc=True, errors="coerce")
    return converted.dt.tz_convert("UTC").dt.tz_localize(None)
