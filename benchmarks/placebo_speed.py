"""Speed of the calendar-time placebo (``analysis.placebo``) beside the PyPI package
``eventstudy`` (0.1a12).

Two studies, each with the design of the Sora study (market model, estimation -120..-11,
event window -5..+10, the seven default CAR windows):

* **Sora**: the 8 AI tokens of ``../shared/data/sora2024/prices.csv`` against BTC, on every
  eligible date of 2023-2024 in the file (every token with its day-0 return and 55 estimation
  returns; no overlap with the event windows of the default catalog);
* **category**: a simulated panel of 500 tokens (a market factor, a sector factor with residual
  correlation 0.3, fat-tailed noise) over two years, every date eligible.

For each it prints the whole placebo run (reading the closes included), the number of placebo
dates, the time per placebo date, and beside it one ``eventstudy`` fit of the same pairs at one
date (``Multiple.from_list``: one statsmodels OLS per pair, ARs, CARs, the CAAR test) and one
``EventStudy.fit`` of aitokens at that date (all 13 tests, portfolios). Ratios, not absolute
claims: the machine is shared. Each timing is the best of ``--repeat`` runs (median beside it).

Run: ``uv run --all-extras python benchmarks/placebo_speed.py [--quick] [--repeat N]``
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file's folder comes first on sys.path and benchmarks/warehouse.py
    # would shadow the `warehouse` package: put the repository root there instead.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SORA_CSV = REPO.parent / "shared" / "data" / "sora2024" / "prices.csv"
EST = (-120, -11)
WINDOW = (-5, 10)


@dataclass(frozen=True)
class Row:
    label: str
    pairs: int
    placebo_dates: int
    placebo_s: float
    placebo_median: float
    eventstudy_s: float
    engine_s: float

    @property
    def per_date(self) -> float:
        return self.placebo_s / max(self.placebo_dates, 1)


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def eventstudy_fit(wide: pd.DataFrame, day0: pd.Timestamp, assets: list[str], market: str):
    """One ``eventstudy`` market-model fit of ``assets`` at ``day0`` (returns ``wide``)."""
    import eventstudy as es

    data = {"date": wide.index.to_numpy().astype("datetime64[ns]")}
    for c in [*assets, market]:
        data[c] = wide[c].to_numpy()
    es.Single._save_parameter("returns", data)
    events = [
        {"event_date": np.datetime64(day0, "ns"), "security_ticker": a, "market_ticker": market}
        for a in assets
    ]
    return es.Multiple.from_list(
        events,
        es.Single.market_model,
        event_window=WINDOW,
        estimation_size=EST[1] - EST[0] + 1,
        buffer_size=WINDOW[0] - EST[1] - 1,
    )


def sora(repeat: int) -> Row:
    from analysis import DEFAULT_EVENTS, EventStudy, get_event
    from analysis.placebo import placebo

    prices = pd.read_csv(SORA_CSV, parse_dates=["date"])
    tokens = sorted(prices.loc[prices["asset_class"] == "ai_token", "symbol"].unique())
    study = EventStudy([get_event("sora")], confounders=[get_event("nvda_q4fy24")], assets=tokens)
    best, med, pl = best_of(lambda: placebo(study, prices, catalog=DEFAULT_EVENTS), repeat)
    closes = prices.pivot(index="date", columns="symbol", values="close").asfreq("D")
    wide = closes.pct_change(fill_method=None)
    t_es, _, _ = best_of(lambda: eventstudy_fit(wide, pl.day0, tokens, "BTC"), repeat)
    t_en, _, _ = best_of(lambda: study.fit(prices), repeat)
    return Row("Sora: 8 tokens vs BTC", len(tokens), pl.n_placebo, best, med, t_es, t_en)


def category(n_tokens: int, repeat: int, seed: int = 5) -> Row:
    from analysis import EventStudy
    from analysis.placebo import placebo

    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-01", "2024-12-31", freq="D")
    t = len(dates)

    def fat(shape: tuple[int, ...]) -> np.ndarray:
        z = rng.standard_normal(shape)
        return z * np.where(rng.random(shape) < 0.1, 3.0, 1.0) / np.sqrt(1.8)

    mkt = 0.03 * fat((t, 1))
    eps = 0.04 * (np.sqrt(0.3) * fat((t, 1)) + np.sqrt(0.7) * fat((t, n_tokens)))
    rets = 0.001 + rng.uniform(0.6, 1.6, n_tokens) * mkt + eps
    cols = [f"T{i:03d}" for i in range(n_tokens)]
    wide = pd.DataFrame(rets, index=dates, columns=cols)
    wide["MKT"] = mkt[:, 0]
    meta = dict.fromkeys(cols, "ai_token") | {"MKT": "crypto_benchmark"}
    day0 = pd.Timestamp("2024-02-15")
    study = EventStudy([day0.date().isoformat()], benchmarks={"ai_token": "MKT"}, assets=cols)
    best, med, pl = best_of(lambda: placebo(study, returns=wide, meta=meta), repeat)
    t_es, _, _ = best_of(lambda: eventstudy_fit(wide, day0, cols, "MKT"), max(1, repeat // 2))
    t_en, _, _ = best_of(lambda: study.fit(returns=wide, meta=meta), repeat)
    return Row(
        f"category: {n_tokens} tokens (simulated)", n_tokens, pl.n_placebo, best, med, t_es, t_en
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 simulated tokens (smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (best is shown)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # eventstudy logs through the root logger
    warnings.simplefilter("ignore")
    sora(1)  # warm-up: imports, calendar caches
    rows = [sora(args.repeat), category(100 if args.quick else 500, args.repeat)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"placebo (analysis.placebo) vs eventstudy {__import__('eventstudy').__version__}; "
        f"estimation {EST}, window {WINDOW}; best of {args.repeat}; load average {load:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'study':32s} {'pairs':>5s} {'dates':>6s} {'placebo run':>19s} {'per date':>10s} "
        f"{'1 eventstudy fit':>17s} {'ratio':>8s} {'1 aitokens fit':>15s} {'ratio':>8s}"
    )
    for r in rows:
        print(
            f"{r.label:32s} {r.pairs:5d} {r.placebo_dates:6d} "
            f"{r.placebo_s:8.3f}s ({r.placebo_median:6.3f}) {1e3 * r.per_date:8.3f}ms "
            f"{r.eventstudy_s:16.3f}s {r.eventstudy_s / r.per_date:7.0f}x "
            f"{r.engine_s:14.3f}s {r.engine_s / r.per_date:7.0f}x"
        )
    print(
        "ratio = one fit of the same pairs at one date / placebo time per date (each placebo "
        "date is a full re-run of the study: model, CARs, CAAR, BMP and KP-BMP t)."
    )


if __name__ == "__main__":
    main()
