"""Market caps beside the prices: the cap-file loader and the named questions readers ask.

Caps live in three tables (CoinGecko's in ``coin_daily``, a price CSV's in ``imported_daily``,
cap files' and Coin Metrics' in ``market_caps_daily``, migration 009); every reader goes through
the views of ``views.sql`` (``market_caps``, ``preferred_market_caps``, ``ai_member_caps``,
``ai_tracked_daily``), so the preference order (``market_cap_sources``) and the lineage rule
(``asset_lineage``, migration 010) are stated once, in SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.db import transaction
from warehouse.errors import InputError
from warehouse.imports import ImportReport, record_completed_import
from warehouse.load import upsert
from warehouse.runs import RunRecord, utcnow

CAPS_TABLE = "market_caps_daily"
CAPS_KEY = ("symbol", "date", "source")
AI_CATEGORY = "artificial-intelligence"


def import_caps(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    path: Path,
    rows_read: int,
    exact_duplicates: int,
) -> ImportReport:
    """Upsert a validated cap batch (``flows.sources.cap_import.ParsedCaps.frame``) into
    ``market_caps_daily`` and record the run; both commit together or not at all."""
    run = RunRecord(
        flow="csv_import",
        details={"file": path.name, "rows_read": rows_read, "interval": "1d", "table": CAPS_TABLE},
    )
    with transaction(con):
        result = upsert(con, CAPS_TABLE, frame, CAPS_KEY)
        record_completed_import(con, run, result)
    series = frame[["symbol", "source"]].drop_duplicates().shape[0]
    return ImportReport(path, rows_read, exact_duplicates, series, result, run.run_id)


# ------------------------------------------------------------------------------ readers
def ai_member_caps(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Long ``date, symbol, network, source, market_cap, counted, lineage_ratio`` of the AI
    sector's tracked members (view ``ai_member_caps``): ``counted`` rows make the sector sum."""
    frame = con.execute(
        "SELECT date, symbol, network, source, market_cap, counted, lineage_ratio "
        "FROM ai_member_caps ORDER BY date, symbol"
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def ai_tracked_daily(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The tracked members' summed cap per day: ``date, n_members, market_cap_usd, sources``."""
    frame = con.execute("SELECT * FROM ai_tracked_daily ORDER BY date").df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def cap_licences(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every source behind the sector's caps, with its vendor, licence, rows and span
    (``source, vendor, licence, n_rows, first, last``), most preferred first."""
    return con.execute(
        "SELECT m.source, coalesce(s.vendor, m.source) AS vendor, "
        "coalesce(s.licence, 'as stated by the file''s supplier') AS licence, "
        "count(*) AS n_rows, min(m.date) AS first, max(m.date) AS last "
        "FROM ai_member_caps AS m LEFT JOIN market_cap_sources AS s USING (source) "
        "GROUP BY ALL ORDER BY min(coalesce(s.preference, 1000)), m.source"
    ).df()


def cap_source_notes(con: duckdb.DuckDBPyConnection, panel: pd.DataFrame) -> list[str]:
    """One line per cap source a study panel borrowed caps from (``market_cap_source`` of
    :func:`warehouse.studies.load_series`), naming its vendor and licence: a report that shows
    a cap-weighted portfolio or ``log_cap`` built on Coin Metrics data says CC BY-NC 4.0."""
    if "market_cap_source" not in panel.columns:
        return []
    used = panel.dropna(subset=["market_cap_source"])
    if used.empty:
        return []
    notes = []
    for source, rows in used.groupby("market_cap_source"):
        found = con.execute(
            "SELECT vendor, licence FROM market_cap_sources WHERE source = ?", [source]
        ).fetchall()
        vendor, licence = found[0] if found else (source, "as stated by the file's supplier")
        symbols = ", ".join(sorted(map(str, rows["symbol"].unique())))
        notes.append(f"market caps of {symbols} from {vendor} ({source}), licence {licence}")
    return notes


def lineage(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The identity changes (``asset_lineage``), oldest first."""
    return con.execute(
        "SELECT old_symbol, new_symbol, ratio, effective_at, kind, old_coingecko_id, "
        "new_coingecko_id, source FROM asset_lineage ORDER BY effective_at, old_symbol"
    ).df()


def renamed_coingecko_ids(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """``{old CoinGecko id: new id}`` of the lineage's renames (both ids known)."""
    rows = con.execute(
        "SELECT old_coingecko_id, new_coingecko_id FROM asset_lineage "
        "WHERE kind = 'migration' AND old_coingecko_id IS NOT NULL "
        "AND new_coingecko_id IS NOT NULL AND old_coingecko_id <> new_coingecko_id"
    ).fetchall()
    return {old: new for old, new in rows}


# ------------------------------------------------------------------------------ references
@dataclass(frozen=True)
class SectorReference:
    """A published sector figure: a category's market cap on a day, with its citation."""

    category_id: str
    date: dt.date
    market_cap_usd: float
    source: str
    origin: str = "analyst"


def sector_references(
    con: duckdb.DuckDBPyConnection, category: str | None = AI_CATEGORY
) -> pd.DataFrame:
    """The recorded figures (of ``category``; None: all), by date:
    ``category_id, date, market_cap_usd, source, origin, recorded_at``."""
    where, params = ("WHERE category_id = ?", [category]) if category else ("", [])
    frame = con.execute(
        "SELECT category_id, date, market_cap_usd, source, origin, recorded_at "
        f"FROM sector_references {where} ORDER BY category_id, date, source",
        params,
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def add_reference(con: duckdb.DuckDBPyConnection, ref: SectorReference) -> bool:
    """Record ``ref`` (one transaction); True when new, False when it replaced the figure of
    the same category, day and citation."""
    if not ref.category_id.strip():
        raise InputError("a sector reference needs a category (e.g. artificial-intelligence)")
    if not (ref.market_cap_usd > 0 and ref.market_cap_usd < 1e16):
        raise InputError(
            f"market cap {ref.market_cap_usd!r} is not a plausible USD figure (positive, "
            "below 1e16)"
        )
    if not ref.source.strip():
        raise InputError("a sector reference needs its source: a citation text or a URL")
    key = [ref.category_id, ref.date, ref.source.strip()]
    with transaction(con):
        held = con.execute(
            "SELECT count(*) FROM sector_references WHERE category_id = ? AND date = ? "
            "AND source = ?",
            key,
        ).fetchall()[0][0]
        con.execute(
            "INSERT OR REPLACE INTO sector_references "
            "(category_id, date, market_cap_usd, source, origin, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [*key[:2], float(ref.market_cap_usd), key[2], ref.origin, utcnow()],
        )
    return not held


def remove_references(con: duckdb.DuckDBPyConnection, category: str, day: dt.date) -> int:
    """Delete every figure of ``category`` on ``day`` (one transaction); how many went."""
    with transaction(con):
        n = con.execute(
            "SELECT count(*) FROM sector_references WHERE category_id = ? AND date = ?",
            [category, day],
        ).fetchall()[0][0]
        if not n:
            raise InputError(f"no sector reference for {category} on {day}")
        con.execute(
            "DELETE FROM sector_references WHERE category_id = ? AND date = ?", [category, day]
        )
    return int(n)


__all__ = [
    "AI_CATEGORY",
    "CAPS_KEY",
    "CAPS_TABLE",
    "SectorReference",
    "add_reference",
    "ai_member_caps",
    "ai_tracked_daily",
    "cap_licences",
    "cap_source_notes",
    "import_caps",
    "lineage",
    "remove_references",
    "renamed_coingecko_ids",
    "sector_references",
]
