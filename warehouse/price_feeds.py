"""``daily_prices`` generated from its feeds: every view of ``price_feeds.sql``, unioned.

Studies, freshness and returns read ``daily_prices``; a table of daily closes reaches them by one
declaration, its feed view in ``price_feeds.sql`` (in the columns below), so no hand-written
union has to remember a vendor. Each branch of the union names its columns, so a feed whose
columns come in another order cannot shift values between columns, and a feed that lacks one is
refused when the views are applied (:func:`check_feeds`).
"""

from __future__ import annotations

import re
from importlib import resources

import duckdb

from warehouse.errors import WarehouseError

DAILY_PRICE_COLUMNS = (
    "symbol",
    "asset_id",
    "asset_class",
    "calendar",
    "source",
    "date",
    "close",
    "volume_usd",
    "market_cap",
)
_FEED_VIEW = re.compile(r"^CREATE OR REPLACE VIEW (\w+) AS", re.MULTILINE | re.IGNORECASE)


def feeds_sql() -> str:
    """The feed views (``warehouse/price_feeds.sql``)."""
    return (resources.files("warehouse") / "price_feeds.sql").read_text(encoding="utf-8")


def feed_views(sql: str) -> list[str]:
    """The views ``sql`` creates, in file order: each one feeds ``daily_prices``."""
    names = _FEED_VIEW.findall(sql)
    if len(names) != len(set(names)):
        raise WarehouseError(f"price_feeds.sql creates a view twice: {names}")
    return names


def daily_prices_sql(views: list[str]) -> str:
    """``CREATE OR REPLACE VIEW daily_prices`` as the UNION ALL of ``views``, columns by name."""
    if not views:
        raise WarehouseError("price_feeds.sql declares no feed view: daily_prices would be empty")
    columns = ", ".join(DAILY_PRICE_COLUMNS)
    branches = "\nUNION ALL\n".join(f"SELECT {columns} FROM {view}" for view in views)
    return f"CREATE OR REPLACE VIEW daily_prices AS\n{branches};\n"


def script() -> str:
    """The feeds, then ``daily_prices`` over them: what runs before ``views.sql``."""
    sql = feeds_sql()
    return f"{sql}\n{daily_prices_sql(feed_views(sql))}"


def check_feeds(con: duckdb.DuckDBPyConnection, views: list[str]) -> None:
    """Refuse a feed that lacks a column of ``daily_prices`` (named, with what it has)."""
    for view in views:
        have = [row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()]
        missing = [c for c in DAILY_PRICE_COLUMNS if c not in have]
        if missing:
            raise WarehouseError(
                f"price feed {view} lacks {', '.join(missing)} (it has {', '.join(have)}): "
                f"a feed of daily_prices needs {', '.join(DAILY_PRICE_COLUMNS)}"
            )


__all__ = [
    "DAILY_PRICE_COLUMNS",
    "check_feeds",
    "daily_prices_sql",
    "feed_views",
    "feeds_sql",
    "script",
]
