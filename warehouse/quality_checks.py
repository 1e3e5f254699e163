"""Data-quality detectors: pure, vectorised functions over one long price frame.

Why here and pure: every load (CSV import, a vendor's ingest) runs the same checks on the
series it touched, inside its own transaction (:mod:`warehouse.quality`); keeping the detectors
free of any connection lets Hypothesis drive them directly.

Input: a frame with ``symbol``, ``source``, a time column (``date`` or ``ts``) and ``close``,
one row per series and period. Output: one row per suspect point with ``check`` and ``reason``
(a point caught by several checks keeps the first in :data:`CHECK_ORDER`).

Defaults (:class:`QualitySettings`) were chosen on both real panels
(``../shared/data/sora2024`` and ``../shared/data/ai_events``, daily and hourly): none of their
points is caught, while WLD's real +40 % day after Sora (log return 0.34) stays far below the
spike threshold. See docs/quality.md for the measured margins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHECK_ORDER = ("non_positive", "non_finite", "spike", "level_shift", "stale")
OUT_COLUMNS = ["symbol", "source", "time", "value", "check", "reason"]


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the checks (documented defaults; see the module docstring).

    - ``spike_log_return``: a one-period |log return| beyond this (1.5: a x4.5 or /4.5 move)
      followed by one of opposite sign ...
    - ``spike_reversion``: ... that undoes at least this share of it (0.7) is a spike.
    - ``shift_tolerance``: a point whose ratio to the median of the previous
      ``shift_window`` points is within this (log) distance of 10^k, |k| >= 1, is a
      power-of-ten level shift (0.25: within about x1.28 of a power of ten).
    - ``stale_periods``: this many equal consecutive closes (the run after the first
      repeat) is a stale run (8 periods: a 24/7 series counts days or hours, a session series
      its trading days, as the rows of a series are its periods).
    """

    spike_log_return: float = 1.5
    spike_reversion: float = 0.7
    shift_window: int = 10
    shift_tolerance: float = 0.25
    stale_periods: int = 8


DEFAULT_SETTINGS = QualitySettings()


def _time_column(frame: pd.DataFrame) -> str:
    return "ts" if "ts" in frame.columns else "date"


def detect(frame: pd.DataFrame, settings: QualitySettings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Every suspect point of ``frame`` (columns of :data:`OUT_COLUMNS`; ``time`` holds the
    frame's ``date`` or ``ts``)."""
    tcol = _time_column(frame)
    if frame.empty:
        return pd.DataFrame(columns=OUT_COLUMNS)
    df = frame[["symbol", "source", tcol, "close"]].rename(columns={tcol: "time"})
    df = df.sort_values(["symbol", "source", "time"], kind="stable").reset_index(drop=True)
    close = pd.to_numeric(df["close"], errors="coerce").astype(float)
    values = close.to_numpy()
    finite = np.isfinite(values)
    nonpos = finite & (values <= 0)
    nonfin = ~finite
    good = finite & ~nonpos
    # Checks on prices use the good points only (a NaN must not hide or create a spike). The
    # frame is sorted by series then time, so each series is one contiguous block: plain numpy
    # over the good rows, one integer code per series (pandas group-bys over three keys cost
    # more than all the checks together on the 11 M-row benchmark).
    code = df.groupby(["symbol", "source"], sort=False).ngroup().to_numpy()
    g = np.flatnonzero(good)
    gcode, glogp = code[g], np.log(values[g])
    first = np.r_[True, gcode[1:] != gcode[:-1]]
    r_g = np.r_[np.nan, np.diff(glogp)]
    r_g[first] = np.nan
    r_next_g = np.r_[r_g[1:], np.nan]
    with np.errstate(invalid="ignore"):
        spike_g = (
            (np.abs(r_g) > settings.spike_log_return)
            & (np.sign(r_g) == -np.sign(r_next_g))
            & (np.abs(r_g + r_next_g) <= (1 - settings.spike_reversion) * np.abs(r_g))
        )
    prev = pd.Series(np.r_[np.nan, glogp[:-1]])
    prev[first] = np.nan
    med_g = (
        prev.groupby(gcode, sort=False)
        .rolling(settings.shift_window, min_periods=3)
        .median()
        .to_numpy()
    )
    dev_g = glogp - med_g
    with np.errstate(invalid="ignore"):
        k_g = np.round(dev_g / math.log(10))
        shift_g = (np.abs(k_g) >= 1) & (
            np.abs(dev_g - k_g * math.log(10)) <= settings.shift_tolerance
        )
    same_g = r_g == 0
    run_g = np.cumsum(~same_g)
    run_len_g = np.bincount(run_g, weights=same_g)[run_g]
    stale_g = same_g & (run_len_g + 1 >= settings.stale_periods)

    def full(part: np.ndarray, fill: float | bool) -> np.ndarray:
        arr = np.full(len(df), fill, dtype=part.dtype)
        arr[g] = part
        return arr

    r, dev, k = full(r_g, np.nan), full(dev_g, np.nan), full(k_g, np.nan)
    run_len = full(run_len_g, 0.0)
    spike, shift, stale = full(spike_g, False), full(shift_g, False), full(stale_g, False)

    out = []
    ln10 = math.log(10)
    for name, mask, why in (
        ("non_positive", nonpos, lambda i: f"close {values[i]:g} is not positive"),
        ("non_finite", nonfin, lambda i: f"close {values[i]!r} is not finite"),
        (
            "spike",
            spike,
            lambda i: (
                f"one-period move x{math.exp(r[i]):.4g} reverted next period "
                f"(|log return| {abs(r[i]):.2f} > {settings.spike_log_return:g})"
            ),
        ),
        (
            "level_shift",
            shift,
            lambda i: (
                f"close is 10^{int(k[i]):d} times its median of the previous "
                f"{settings.shift_window} periods (x{math.exp(dev[i]):.4g}; "
                f"|log distance| {abs(dev[i] - k[i] * ln10):.2f} <= {settings.shift_tolerance:g})"
            ),
        ),
        (
            "stale",
            stale,
            lambda i: (
                f"close {values[i]:g} unchanged for {int(run_len[i]) + 1} consecutive periods "
                f"(>= {settings.stale_periods})"
            ),
        ),
    ):
        idx = np.flatnonzero(mask)
        if len(idx):
            part = df.loc[idx, ["symbol", "source", "time"]].copy()
            part["value"] = values[idx]
            part["check"] = name
            part["reason"] = [why(i) for i in idx]
            out.append(part)
    if not out:
        return pd.DataFrame(columns=OUT_COLUMNS)
    result = pd.concat(out, ignore_index=True)
    result["_rank"] = result["check"].map({c: n for n, c in enumerate(CHECK_ORDER)})
    result = result.sort_values(["symbol", "source", "time", "_rank"], kind="stable")
    result = result.drop_duplicates(["symbol", "source", "time"]).drop(columns="_rank")
    return result.reset_index(drop=True)[OUT_COLUMNS]
