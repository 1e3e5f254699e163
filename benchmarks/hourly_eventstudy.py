"""Time and peak memory of an hourly event study beside the daily engine on the same pairs.

The issue's size: 500 tokens x 1 event on the hourly clock (``interval="1h"``), estimation
L = 720 hours (-744..-25), event window -24..72, the full default fit (every test of the registry
per hour and CAR window, the Kolari-Pynnonen correlation, flags, equal-weight portfolio), from
long closes (``fit(prices=...)``, the way ``aitokens study`` calls it). Beside it, the daily engine
on the same 500 pairs twice: with the same window lengths in days (the same array shapes, so any
difference is the clock), and with the daily defaults (-120..-11, -5..10).

Each timing is the best (and median) of ``--repeat`` fits in this process; peak memory is the
largest traced allocation (``tracemalloc``: numpy and pandas buffers) during one more fit, above
what the inputs already hold.

Run: ``uv run --all-extras python -m benchmarks.hourly_eventstudy [--tokens 500] [--repeat 3]``
(as a module: run as a script, ``benchmarks/warehouse.py`` would shadow the ``warehouse`` package)
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

from analysis import EventStudy

HOURLY_EST, HOURLY_WIN = (-744, -25), (-24, 72)
HOURLY_CARS = ((0, 0), (0, 5), (0, 23), (0, 71), (-24, -1))


def synthetic_prices(n_tokens: int, periods: int, freq: str, seed: int = 0) -> pd.DataFrame:
    """Long closes of ``n_tokens`` tokens and BTC: market model returns, then cumulated."""
    rng = np.random.default_rng(seed)
    start = "2024-01-01 01:00" if freq == "h" else "2021-01-01"
    idx = pd.date_range(start, periods=periods, freq=freq)
    rm = rng.normal(0, 0.006, periods)
    beta = rng.uniform(0.6, 1.6, n_tokens)
    r = rm[:, None] * beta + rng.normal(0, 0.01, (periods, n_tokens))
    closes = np.exp(np.cumsum(np.column_stack([r, rm]), axis=0))
    names = [f"T{i:04d}" for i in range(n_tokens)] + ["BTC"]
    frame = pd.DataFrame(closes, index=idx, columns=names).stack().rename("close").reset_index()
    frame.columns = ["date", "symbol", "close"]
    frame["asset_class"] = np.where(frame["symbol"] == "BTC", "crypto_benchmark", "ai_token")
    return frame


def wide_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """The same data as simple returns, wide (dates x symbols): the engine without the reading
    of a long frame."""
    wide = prices.pivot(index="date", columns="symbol", values="close")
    return wide / wide.shift(1) - 1.0


def case(
    label: str, prices: pd.DataFrame, study: EventStudy, repeat: int, *, returns: bool = False
) -> dict[str, float | str | int]:
    data = wide_returns(prices) if returns else prices
    meta = prices.groupby("symbol")["asset_class"].first().to_dict()

    def fit():
        return study.fit(returns=data, meta=meta) if returns else study.fit(data)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = fit()
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        res = fit()
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return {
        "case": label,
        "pairs": len(res.params),
        "rows": int(data.size) if returns else len(prices),
        "best_s": min(times),
        "median_s": statistics.median(times),
        "peak_mib": peak / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.tokens
    span = HOURLY_WIN[1] - HOURLY_EST[0] + 1 + 48  # every hour the study reads, and a margin
    hourly = synthetic_prices(n, span, "h")
    hour0 = hourly["date"].iloc[0] + pd.Timedelta(hours=-HOURLY_EST[0] + 24)
    when = (hour0 - pd.Timedelta(minutes=40)).tz_localize("UTC").isoformat()
    daily = synthetic_prices(n, span, "D")
    day0 = (daily["date"].iloc[0] + pd.Timedelta(days=-HOURLY_EST[0] + 24)).date().isoformat()
    hourly_study = EventStudy(
        [when],
        interval="1h",
        estimation_window=HOURLY_EST,
        event_window=HOURLY_WIN,
        car_windows=HOURLY_CARS,
    )
    daily_same = EventStudy(
        [day0], estimation_window=HOURLY_EST, event_window=HOURLY_WIN, car_windows=HOURLY_CARS
    )
    rows = [
        case(
            "hourly, L=720 h, -24..72 h",
            hourly,
            EventStudy(
                [when],
                interval="1h",
                estimation_window=HOURLY_EST,
                event_window=HOURLY_WIN,
                car_windows=HOURLY_CARS,
            ),
            args.repeat,
        ),
        case(
            "daily, same shape (L=720 d, -24..72 d)",
            daily,
            EventStudy(
                [day0],
                estimation_window=HOURLY_EST,
                event_window=HOURLY_WIN,
                car_windows=HOURLY_CARS,
            ),
            args.repeat,
        ),
        case("daily, defaults (L=110 d, -5..10 d)", daily, EventStudy([day0]), args.repeat),
        case("hourly, from wide returns", hourly, hourly_study, args.repeat, returns=True),
        case("daily same shape, from wide returns", daily, daily_same, args.repeat, returns=True),
    ]
    print(f"aitokens hourly event-study benchmark: {n} tokens x 1 event, full default fit")
    print(f"{'case':<40} {'pairs':>6} {'rows':>9} {'best s':>8} {'median s':>9} {'peak MiB':>9}")
    for r in rows:
        print(
            f"{r['case']:<40} {r['pairs']:>6} {r['rows']:>9,} {r['best_s']:>8.3f} "
            f"{r['median_s']:>9.3f} {r['peak_mib']:>9.1f}"
        )


if __name__ == "__main__":
    main()
