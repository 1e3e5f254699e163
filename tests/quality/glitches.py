"""A glitch generator: the bad prints vendors publish, injected into a copy of a real panel.

Each injection returns the points a correct gate must quarantine and the check it must name.
The panel frame is long (``symbol``, ``date`` or ``ts``, ``close``); nothing is written to the
repository: tests write the glitched copy under ``tmp_path``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Injected:
    symbol: str
    time: object  # the frame's date string or ts string
    check: str


def _rows(frame: pd.DataFrame, symbol: str, tcol: str) -> pd.Index:
    return frame.index[frame["symbol"] == symbol].sort_values(key=lambda i: frame.loc[i, tcol])


def inject(
    frame: pd.DataFrame, plan: list[tuple[str, str]], *, seed: int = 0
) -> tuple[pd.DataFrame, list[Injected]]:
    """Apply ``plan`` (a list of (symbol, kind)) to a copy of ``frame``; kinds:
    ``spike`` (x e^{+-3} one period, reverting), ``pow10`` (x10^k one period, k in +-1..3),
    ``shift`` (x10^k from a point to the end: a unit change that never reverts), ``zero``,
    ``negative``, ``nan``, ``stale`` (10 equal closes). One glitch per symbol, placed at a
    seeded position in the middle of its history."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["close"] = out["close"].astype(float)
    tcol = "ts" if "ts" in out.columns else "date"
    injected: list[Injected] = []
    for symbol, kind in plan:
        idx = list(_rows(out, symbol, tcol))
        pos = int(rng.integers(len(idx) // 3, 2 * len(idx) // 3))
        at = idx[pos]
        when = out.loc[at, tcol]
        if kind == "spike":
            out.loc[at, "close"] *= math.exp(3.0 * rng.choice([-1, 1]))
            injected.append(Injected(symbol, when, "spike"))
        elif kind == "pow10":
            out.loc[at, "close"] *= 10.0 ** int(rng.choice([-3, -2, -1, 1, 2, 3]))
            injected.append(Injected(symbol, when, "spike"))
        elif kind == "shift":
            out.loc[idx[pos:], "close"] *= 10.0 ** int(rng.choice([-2, -1, 1, 2]))
            injected.append(Injected(symbol, when, "level_shift"))
        elif kind in ("zero", "negative", "nan"):
            value = {"zero": 0.0, "negative": -abs(out.loc[at, "close"]), "nan": math.nan}[kind]
            out.loc[at, "close"] = value
            check = "non_finite" if kind == "nan" else "non_positive"
            injected.append(Injected(symbol, when, check))
        elif kind == "stale":
            run = idx[pos : pos + 10]
            out.loc[run, "close"] = out.loc[run[0], "close"]
            injected += [Injected(symbol, out.loc[i, tcol], "stale") for i in run[1:]]
        else:
            raise ValueError(kind)
    return out, injected
