"""The rule that turns CoinGecko's hourly observations into hour closes, without look-ahead.

CoinGecko stamps an hourly point at the moment it observed the price, e.g. ``18:00:41.123``
for the hour that closed at 18:00. An hour close ``ts`` (the warehouse's convention: the row
covers ``[ts - 1h, ts)``) is assigned the **first** observation stamped in
``[ts, ts + MAX_LAG_SECONDS]``:

- a point stamped more than ``MAX_LAG_SECONDS`` (5 minutes) after the hour is not assigned to
  any hour (it is counted and dropped): as the close of the hour before it would carry up to an
  hour of later trading into that close (look-ahead); as the close of the next hour it would be
  up to an hour stale;
- a point stamped exactly on the hour belongs to the hour that closes then;
- when several points fall in the window, the earliest wins (the one nearest the close);
- the vendor stamp is kept in ``vendor_ts``, so the lag of every close can be audited.

So a close is never a price observed more than 5 minutes after its hour ended (the tolerance the
design allows: CoinGecko observes a few seconds to minutes late) and never one observed before
its hour ended. The one consequence for event studies: an announcement in the first 5 minutes of
an hour can leak into the close that ends that hour (hour -1's close); ``vendor_ts`` shows by how
much, and such an event is best studied with hour 0 one hour later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_LAG_SECONDS = 300
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class SnapResult:
    """Hour closes (ts, vendor_ts, close, market_cap), and what was left out."""

    frame: pd.DataFrame
    n_late: int  # observed more than MAX_LAG_SECONDS after the hour: dropped
    n_duplicate_hours: int  # later observations of an hour already closed: dropped


def snap_to_hour_closes(
    stamps_ms: np.ndarray, prices: np.ndarray, market_caps: np.ndarray
) -> SnapResult:
    """Assign observations (unix ms) to hour closes by the rule of this module."""
    stamps_ms = np.asarray(stamps_ms, dtype=np.int64)
    hour_ms = (stamps_ms // HOUR_MS) * HOUR_MS
    lag_ms = stamps_ms - hour_ms
    on_time = lag_ms <= MAX_LAG_SECONDS * 1000
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(hour_ms[on_time], unit="ms"),
            "vendor_ts": pd.to_datetime(stamps_ms[on_time], unit="ms"),
            "close": np.asarray(prices, dtype=float)[on_time],
            "market_cap": np.asarray(market_caps, dtype=float)[on_time],
        }
    )
    frame = frame.sort_values(["ts", "vendor_ts"], kind="stable")
    first = ~frame["ts"].duplicated(keep="first")
    n_dup = int((~first).sum())
    frame = frame[first].reset_index(drop=True)
    return SnapResult(frame, int((~on_time).sum()), n_dup)
