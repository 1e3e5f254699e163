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
    keys = [df["symbol"], df["source"]]
    # Checks on prices use the good points only (a NaN must not hide or create a spike).
    logp = pd.Series(np.where(good, np.log(np.where(good, values, 1.0)), np.nan))
    gdf = pd.DataFrame({"symbol": df["symbol"], "source": df["source"], "logp": logp})
    gdf = gdf[good]
    grp = gdf.groupby(["symbol", "source"], sort=False)["logp"]
    r = gdf["logp"] - grp.shift(1)
    r_next = grp.shift(-1) - gdf["logp"]
    spike = (
        (r.abs() > settings.spike_log_return)
        & (np.sign(r) == -np.sign(r_next))
        & ((r + r_next).abs() <= (1 - settings.spike_reversion) * r.abs())
    )
    med = grp.transform(lambda s: s.shift(1).rolling(settings.shift_window, min_periods=3).median())
    dev = gdf["logp"] - med
    k = np.round(dev / math.log(10))
    shift = (k.abs() >= 1) & ((dev - k * math.log(10)).abs() <= settings.shift_tolerance)
    same = grp.diff() == 0
    run_id = (~same).groupby([gdf["symbol"], gdf["source"]], sort=False).cumsum()
    run_len = same.groupby([gdf["symbol"], gdf["source"], run_id]).transform("sum")
    stale = same & (run_len + 1 >= settings.stale_periods)
    del keys

    out = []
    ln10 = math.log(10)
    for name, mask, why in (
        ("non_positive", pd.Series(nonpos), lambda i: f"close {values[i]:g} is not positive"),
        ("non_finite", pd.Series(nonfin), lambda i: f"close {values[i]!r} is not finite"),
        (
            "spike",
            spike.reindex(df.index, fill_value=False),
            lambda i: (
                f"one-period move x{math.exp(r[i]):.4g} reverted next period "
                f"(|log return| {abs(r[i]):.2f} > {settings.spike_log_return:g})"
            ),
        ),
        (
            "level_shift",
            shift.reindex(df.index, fill_value=False),
            lambda i: (
                f"close is 10^{int(k[i]):d} times its median of the previous "
                f"{settings.shift_window} periods (x{math.exp(dev[i]):.4g}; "
                f"|log distance| {abs(dev[i] - k[i] * ln10):.2f} <= {settings.shift_tolerance:g})"
            ),
        ),
        (
            "stale",
            stale.reindex(df.index, fill_value=False),
            lambda i: (
                f"close {values[i]:g} unchanged for {int(run_len[i]) + 1} consecutive periods "
                f"(>= {settings.stale_periods})"
            ),
        ),
    ):
        idx = np.flatnonzero(mask.to_numpy(dtype=bool))
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
