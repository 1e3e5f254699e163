"""The AI sector's snapshots: category figures, members (every page), the coin list, ``/global``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from flows.errors import (
    NotFoundError,
)
from flows.sources.coingecko import constants as C
from flows.sources.coingecko.client import CoinGeckoClient, coin_id_problem
from flows.sources.coingecko.history import utc_today
from flows.sources.http import (
    paginate,
)

log = logging.getLogger("aitokens.sources.coingecko")


def fetch_categories(
    client: CoinGeckoClient,
    category_ids: Iterable[str] | None = None,
    *,
    fetched_at: datetime | None = None,
) -> pd.DataFrame:
    """Snapshot of the configured categories from ``/coins/categories`` (one call).

    Columns: category_id, name, market_cap, market_cap_change_24h, volume_24h, updated_at
    (UTC, CoinGecko's), snapshot_ts (UTC, when fetched), snapshot_date. Raises
    :class:`NotFoundError` naming any category id CoinGecko does not list.
    """
    wanted = list(category_ids or client.config.categories)
    fetched_at = fetched_at or datetime.now(UTC)
    rows = {row.get("id"): row for row in client.categories() if isinstance(row, dict)}
    missing = [c for c in wanted if c not in rows]
    if missing:
        raise NotFoundError(
            f"CoinGecko lists no category {', '.join(map(repr, missing))}; check "
            f"{client.config.env_var('categories')}",
            endpoint="/coins/categories",
        )
    frame = pd.DataFrame(
        [
            {
                "category_id": c,
                "name": rows[c].get("name"),
                "market_cap": rows[c].get("market_cap"),
                "market_cap_change_24h": rows[c].get("market_cap_change_24h"),
                "volume_24h": rows[c].get("volume_24h"),
                "updated_at": rows[c].get("updated_at"),
            }
            for c in wanted
        ]
    )
    for col in ("market_cap", "market_cap_change_24h", "volume_24h"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True, errors="coerce")
    frame["snapshot_ts"] = pd.Timestamp(fetched_at)
    frame["snapshot_date"] = fetched_at.astimezone(UTC).date()
    return frame


def iter_markets_pages(
    client: CoinGeckoClient, category: str, per_page: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Yield every ``/coins/markets`` page of a category until a short page."""
    size = per_page or client.config.per_page
    yield from paginate(
        lambda page: client.markets_page(category, page, size),
        size,
        what=f"CoinGecko /coins/markets (category {category})",
    )


def fetch_category_members(
    client: CoinGeckoClient,
    category: str,
    *,
    snapshot_date: date | None = None,
    per_page: int | None = None,
) -> pd.DataFrame:
    """Every member of a category today, one row per coin, by market cap (all pages).

    Columns: category_id, snapshot_date, coin_id, symbol, name, rank (1 = largest, by position
    across pages), market_cap_rank (CoinGecko's global rank), price, market_cap, volume_24h,
    last_updated. A coin seen twice (ranks move during pagination) is kept at its first place.
    """
    snapshot_date = snapshot_date or utc_today()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    refused: dict[str, str] = {}
    for page in iter_markets_pages(client, category, per_page):
        for item in page:
            coin_id = item.get("id") if isinstance(item, dict) else None
            if not coin_id or coin_id in seen:
                continue
            problem = coin_id_problem(coin_id)
            if problem is not None:
                refused[str(coin_id)] = problem
                continue
            seen.add(coin_id)
            rows.append(
                {
                    "category_id": category,
                    "snapshot_date": snapshot_date,
                    "coin_id": coin_id,
                    "symbol": item.get("symbol"),
                    "name": item.get("name"),
                    "rank": len(rows) + 1,
                    "market_cap_rank": item.get("market_cap_rank"),
                    "price": item.get("current_price"),
                    "market_cap": item.get("market_cap"),
                    "volume_24h": item.get("total_volume"),
                    "last_updated": item.get("last_updated"),
                }
            )
    columns = [
        "category_id",
        "snapshot_date",
        "coin_id",
        "symbol",
        "name",
        "rank",
        "market_cap_rank",
        "price",
        "market_cap",
        "volume_24h",
        "last_updated",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("price", "market_cap", "volume_24h"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["market_cap_rank"] = pd.to_numeric(frame["market_cap_rank"], errors="coerce").astype(
        "Int64"
    )
    frame["rank"] = frame["rank"].astype("int64")
    frame["last_updated"] = pd.to_datetime(frame["last_updated"], utc=True, errors="coerce")
    frame.attrs["refused_ids"] = refused
    return frame


def refused_ids_note(endpoint: str, refused: dict[str, str]) -> str | None:
    """One line naming the ids an answer held that may not enter a URL path, and why."""
    if not refused:
        return None
    shown = "; ".join(f"{i[:60]!r}: {why}" for i, why in list(refused.items())[:5])
    more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
    return (
        f"CoinGecko {endpoint}: {len(refused)} coin id(s) refused, skipped ({shown}{more}); "
        "an id goes into a URL path"
    )


def fetch_coin_list(client: CoinGeckoClient) -> pd.DataFrame:
    """Every coin CoinGecko lists (whole-universe mode): coin_id, symbol, name; one call.

    Rows without an id are dropped; a coin listed twice keeps its first row.
    """
    items = [i for i in client.coins_list() if isinstance(i, dict) and i.get("id")]
    refused = {str(i["id"]): why for i in items if (why := coin_id_problem(i["id"])) is not None}
    rows = [
        {"coin_id": item.get("id"), "symbol": item.get("symbol") or "", "name": item.get("name")}
        for item in items
        if str(item["id"]) not in refused
    ]
    frame = pd.DataFrame(rows, columns=["coin_id", "symbol", "name"])
    frame = frame.drop_duplicates("coin_id").reset_index(drop=True)
    frame.attrs["refused_ids"] = refused
    return frame


def coin_universe(members: pd.DataFrame | Iterable[str]) -> list[str]:
    """Member ids in order, then :data:`ALWAYS_COINS` (BTC, ETH) if not already there."""
    ids = list(members["coin_id"]) if isinstance(members, pd.DataFrame) else list(members)
    return list(dict.fromkeys([*ids, *C.ALWAYS_COINS]))


def fetch_global(client: CoinGeckoClient) -> pd.DataFrame:
    """Today's ``/global`` figures, one row; a daily run builds the daily total-cap series.

    Columns: date (UTC day of ``updated_at``), updated_at, total_market_cap_usd,
    total_volume_usd, market_cap_change_pct_24h, btc_dominance_pct, eth_dominance_pct,
    active_cryptocurrencies. (The history endpoint ``/global/market_cap_chart`` is pro-only.)
    A figure that is not a number (null, text) becomes NaN rather than failing the run.
    """
    data = client.global_()["data"]

    def number(value: Any) -> float:
        """A figure as a float; NaN for null, text or anything else a server may send."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return float("nan")
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return float("nan")

    updated = number(data.get("updated_at"))
    updated_at = (
        pd.Timestamp(int(updated), unit="s", tz="UTC")
        if updated == updated and 0 < updated < 4_102_444_800
        else pd.Timestamp(time.time(), unit="s", tz="UTC")
    )

    def pick(node: str, key: str) -> float:
        parent = data.get(node)
        return number(parent.get(key)) if isinstance(parent, dict) else float("nan")

    active = number(data.get("active_cryptocurrencies"))
    row = {
        "date": updated_at.date(),
        "updated_at": updated_at,
        "total_market_cap_usd": pick("total_market_cap", "usd"),
        "total_volume_usd": pick("total_volume", "usd"),
        "market_cap_change_pct_24h": number(data.get("market_cap_change_percentage_24h_usd")),
        "btc_dominance_pct": pick("market_cap_percentage", "btc"),
        "eth_dominance_pct": pick("market_cap_percentage", "eth"),
        "active_cryptocurrencies": (
            int(active) if active == active and abs(active) < 2**62 else None
        ),
    }
    return pd.DataFrame([row])
