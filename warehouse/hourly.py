"""Write hourly closes into ``price_hourly`` (migration 004).

Timing convention: ``ts`` is the UTC **close** time of the hour, on the hour; the row covers
``[ts - 1h, ts)``. A vendor whose stamps are not on the hour (CoinGecko) snaps them to hour
closes before calling :func:`upsert_hourly` and keeps its own stamp in ``vendor_ts``; the
snapping rule belongs to that loader (docs/warehouse.md), this module only checks the result.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from warehouse.errors import InputError
from warehouse.load import UpsertResult, upsert

HOURLY_TABLE = "price_hourly"
HOURLY_KEY = ("asset_id", "ts", "source")
HOURLY_REQUIRED = ("asset_id", "ts", "source", "close")
HOURLY_OPTIONAL = ("asset_class", "volume_usd", "market_cap", "vendor_ts")
_SHOWN = 5


def _utc_naive(values: pd.Series, column: str) -> pd.Series:
    """Timestamps as naive UTC (the warehouse's storage); tz-aware input is converted."""
    try:
        stamps = pd.to_datetime(values, utc=True)  # naive values are taken as UTC
    except (ValueError, TypeError) as exc:
        raise InputError(f"hourly batch: column {column} is not a timestamp ({exc})") from None
    return stamps.dt.tz_localize(None)


def _rows(frame: pd.DataFrame, mask: pd.Series) -> str:
    shown = frame.loc[mask, ["asset_id", "ts", "source"]].head(_SHOWN)
    text = "; ".join(f"{r.asset_id} {r.ts} {r.source}" for r in shown.itertuples())
    more = int(mask.sum()) - len(shown)
    return text + (f"; ... and {more} more" if more > 0 else "")


def prepare_hourly(frame: pd.DataFrame) -> pd.DataFrame:
    """Check an hourly batch and normalise its timestamps; raise ``InputError`` naming rows.

    Columns (see :func:`upsert_hourly`): ``asset_id``, ``ts``, ``source``, ``close`` required;
    ``asset_class``, ``volume_usd``, ``market_cap``, ``vendor_ts`` optional; no others.
    """
    missing = [c for c in HOURLY_REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"hourly batch lacks column(s) {', '.join(missing)}")
    unknown = [c for c in frame.columns if c not in HOURLY_REQUIRED + HOURLY_OPTIONAL]
    if unknown:
        raise InputError(
            f"hourly batch has unknown column(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(HOURLY_REQUIRED + HOURLY_OPTIONAL)}"
        )
    out = frame.copy()
    out["ts"] = _utc_naive(out["ts"], "ts")
    if "vendor_ts" in out.columns:
        out["vendor_ts"] = _utc_naive(out["vendor_ts"], "vendor_ts")
    empty = out[["asset_id", "source"]].isna().any(axis=1) | out["ts"].isna()
    if empty.any():
        raise InputError(f"hourly batch: {int(empty.sum())} row(s) lack asset_id, ts or source")
    off_hour = out["ts"] != out["ts"].dt.floor("h")
    if off_hour.any():
        raise InputError(
            f"hourly batch: {int(off_hour.sum())} row(s) have a ts not on the hour (ts is the "
            f"hour's UTC close; snap vendor stamps first and keep them in vendor_ts): "
            f"{_rows(out, off_hour)}"
        )
    close = pd.to_numeric(out["close"], errors="coerce").astype("float64")
    bad_close = ~np.isfinite(close) | (close <= 0)
    if bad_close.any():
        raise InputError(
            f"hourly batch: {int(bad_close.sum())} row(s) have a close that is not a positive "
            f"finite number: {_rows(out, bad_close)}"
        )
    for column in ("volume_usd", "market_cap"):
        if column in out.columns:
            values = pd.to_numeric(out[column], errors="coerce")
            negative = values < 0
            if negative.any():
                raise InputError(
                    f"hourly batch: {int(negative.sum())} row(s) have a negative {column}: "
                    f"{_rows(out, negative)}"
                )
    return out


def upsert_hourly(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    on_conflict: str = "error",
    ingested_at: datetime | None = None,
) -> UpsertResult:
    """Idempotent upsert of hourly closes into ``price_hourly``; runs in the caller's transaction.

    Frame columns:

    - ``asset_id`` (str): CoinGecko id (``fetch-ai``) for source ``coingecko``, else the
      upper-case ticker, as ``daily_prices.asset_id``;
    - ``ts``: the UTC close time of the hour, on the hour (naive = UTC; tz-aware is converted);
    - ``source`` (str): ``coingecko``, or a venue name such as ``binance_perp_usdt``;
    - ``close`` (float): USD, the last price at or before ``ts``; positive;
    - ``asset_class`` (str, optional): NULL lets ``hourly_prices`` take it from ``coins``;
    - ``volume_usd`` (float, optional): USD traded during ``[ts - 1h, ts)`` (not a rolling
      24-hour figure);
    - ``market_cap`` (float, optional): USD at ``ts``;
    - ``vendor_ts`` (optional): the vendor's own stamp before snapping (naive = UTC).

    The batch is staged and de-duplicated as every load is (``warehouse.load.upsert``):
    identical rows collapse, one key with two different values raises
    ``ConflictingDuplicatesError`` (``on_conflict="last"`` keeps the last), unchanged rows keep
    their ``ingested_at``.
    """
    batch = prepare_hourly(frame)
    return upsert(
        con, HOURLY_TABLE, batch, HOURLY_KEY, on_conflict=on_conflict, ingested_at=ingested_at
    )
