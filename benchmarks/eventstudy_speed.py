"""Speed of the aitokens event-study engine against the PyPI package ``eventstudy`` (0.1a12).

Both run in this process, on the same synthetic panel of daily returns (a market factor plus
idiosyncratic noise), with the same design: estimation window of L = 250 days ending the day before
the event window, event window -10..+10, market model by OLS (and the constant-mean model, the
other model both packages have). For each configuration it prints both timings, the speed ratio
and the largest absolute difference between the two packages' abnormal returns.

``eventstudy`` keeps its data in a class attribute and fits one statsmodels OLS per asset-event;
aitokens estimates every pair at once with numpy. Two aitokens timings are printed:

* ``same work``: ``fit`` with the outputs ``eventstudy`` produces (ARs, CARs with their
  variances and t statistics, and cross-sectional tests of the mean CAR: ``t_cs`` and ``patell``),
  no portfolios; the speed ratio is taken on this line;
* ``full fit``: the default ``fit`` (all 13 tests per day and window, for all pairs, per event
  and per asset class, the KP correlation, confounder and overlap flags, equal/cap-weighted
  portfolios with their own fits). ``fit`` computes every number; the labelled frames of the
  result are built when first read, so a third line,
* ``+ frames``, times the full fit plus reading every labelled output once (abnormal returns,
  their standard deviations and dates, CARs, params, tests, flags, portfolios, exclusions).

The ``eventstudy`` timing covers ``Multiple.from_list`` (per pair: a statsmodels OLS or a mean,
ARs, their variance, CARs; then the CAAR and its t test). Every timing is the best of
``--repeat`` runs (each side measured in this process, interleaved on the same panel); the
median is printed beside it so that a busy machine shows, and the ratio of each interleaved round
(both sides timed back to back) is summarised as its min .. max spread.

Run: ``uv run --all-extras python benchmarks/eventstudy_speed.py [--quick] [--repeat N]``
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
from dataclasses import dataclass

import numpy as np
import pandas as pd

L_EST = 250
WINDOW = (-10, 10)


@dataclass(frozen=True)
class Comparison:
    """Outcome of one side-by-side run (seconds: best of the repeats; ``*_median``: median)."""

    label: str
    model: str
    pairs: int
    seconds_eventstudy: float
    seconds_same_work: float
    seconds_full_fit: float
    max_abs_ar_diff: float
    seconds_frames: float = float("nan")
    median_eventstudy: float = float("nan")
    median_same_work: float = float("nan")
    median_full_fit: float = float("nan")
    median_frames: float = float("nan")
    round_ratios: tuple[float, ...] = ()  # eventstudy / same work, per interleaved round
    round_ratios_full: tuple[float, ...] = ()  # eventstudy / full fit, per interleaved round

    @property
    def ratio(self) -> float:
        return self.seconds_eventstudy / self.seconds_same_work

    @property
    def ratio_full(self) -> float:
        return self.seconds_eventstudy / self.seconds_full_fit

    @property
    def ratio_frames(self) -> float:
        return self.seconds_eventstudy / self.seconds_frames


def synthetic_panel(
    n_assets: int, n_events: int, *, seed: int = 7
) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """Daily returns (dates x symbols, plus ``MKT``) and ``n_events`` distinct event dates."""
    rng = np.random.default_rng(seed)
    lead = L_EST - WINDOW[0] + 5
    n_days = lead + max(n_events * 25, 40) + WINDOW[1] + 5
    dates = pd.date_range("2015-01-01", periods=n_days, freq="D")
    mkt = rng.normal(0.0003, 0.01, n_days)
    beta = rng.uniform(0.5, 1.5, n_assets)
    alpha = rng.normal(0.0, 0.0005, n_assets)
    noise = rng.normal(0.0, 0.02, (n_days, n_assets))
    rets = alpha + mkt[:, None] * beta + noise
    cols = [f"A{i:04d}" for i in range(n_assets)]
    wide = pd.DataFrame(rets, index=dates, columns=cols)
    wide["MKT"] = mkt
    # events 25 days apart: event windows never overlap (estimation windows do, as in practice)
    picks = lead + 25 * np.arange(n_events)
    return wide, [dates[i] for i in picks]


def run_eventstudy(wide: pd.DataFrame, events: list[pd.Timestamp], model: str):
    import eventstudy as es

    data = {"date": wide.index.to_numpy().astype("datetime64[ns]")}
    for c in wide.columns:
        data[c] = wide[c].to_numpy()
    es.Single._save_parameter("returns", data)
    func = es.Single.market_model if model == "market" else es.Single.constant_mean
    event_list = [
        {"event_date": np.datetime64(d, "ns"), "security_ticker": s, "market_ticker": "MKT"}
        for d in events
        for s in wide.columns
        if s != "MKT"
    ]
    t0 = time.perf_counter()
    agg = es.Multiple.from_list(
        event_list, func, event_window=WINDOW, estimation_size=L_EST, buffer_size=0
    )
    return time.perf_counter() - t0, agg


def run_aitokens(wide: pd.DataFrame, events: list[pd.Timestamp], model: str, *, full: bool = True):
    from analysis import EventStudy

    meta = {c: "crypto" for c in wide.columns}
    meta["MKT"] = "crypto_benchmark"
    study = EventStudy(
        [d.date().isoformat() for d in events],
        model=model,
        estimation_window=(WINDOW[0] - L_EST, WINDOW[0] - 1),
        event_window=WINDOW,
        benchmarks={"crypto": "MKT"},
        **({} if full else {"tests": ("t_cs", "patell"), "portfolios": False}),
    )
    t0 = time.perf_counter()
    res = study.fit(returns=wide, meta=meta)
    return time.perf_counter() - t0, res


def read_all_frames(res) -> None:
    """Build every labelled output of a result once (what a report or ``to_json`` reads)."""
    for name in (
        "abnormal_returns",
        "ar_std",
        "event_dates",
        "car",
        "car_std",
        "params",
        "tests",
        "flags",
        "portfolios",
        "excluded",
        "event_mappings",
    ):
        getattr(res, name)


def compare(
    label: str, n_assets: int, n_events: int, model: str = "market", repeat: int = 1
) -> Comparison:
    """Run both packages on one panel ``repeat`` times and compare their abnormal returns."""
    wide, events = synthetic_panel(n_assets, n_events)
    logging.getLogger().setLevel(logging.ERROR)  # eventstudy logs through the root logger
    t_es, t_same, t_full, t_frames = [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            t, agg = run_eventstudy(wide, events, model)
            t_es.append(t)
            t, res = run_aitokens(wide, events, model, full=False)
            t_same.append(t)
            t, full = run_aitokens(wide, events, model, full=True)
            t_full.append(t)
            t0 = time.perf_counter()
            read_all_frames(full)
            t_frames.append(t + time.perf_counter() - t0)
    ours = res.abnormal_returns
    names = [d.date().isoformat() for d in events]
    assets = [c for c in wide.columns if c != "MKT"]
    theirs = np.column_stack([np.asarray(single.AR, dtype=float) for single in agg.sample])
    mine = np.column_stack([ours[(e, a)].to_numpy() for e in names for a in assets])
    mine_full = full.abnormal_returns.to_numpy()
    assert np.array_equal(mine_full, ours.to_numpy(), equal_nan=True)
    med = statistics.median
    return Comparison(
        label,
        model,
        len(agg.sample),
        min(t_es),
        min(t_same),
        min(t_full),
        float(np.max(np.abs(theirs - mine))),
        min(t_frames),
        med(t_es),
        med(t_same),
        med(t_full),
        med(t_frames),
        tuple(a / b for a, b in zip(t_es, t_same, strict=True)),
        tuple(a / b for a, b in zip(t_es, t_full, strict=True)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small panels (smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (best is shown)")
    args = parser.parse_args()
    configs = (
        [("100 assets x 1 event", 100, 1), ("20 assets x 10 events", 20, 10)]
        if args.quick
        else [("1,000 assets x 1 event", 1000, 1), ("100 assets x 100 events", 100, 100)]
    )
    # warm both libraries up (imports, calendar caches) outside the timings
    compare("warm-up", 5, 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"eventstudy {__import__('eventstudy').__version__} vs aitokens analysis; L = {L_EST}, "
        f"window {WINDOW[0]}..+{WINDOW[1]}; best of {args.repeat} (median in brackets); "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'panel':24s} {'model':13s} {'pairs':>6s} {'eventstudy':>17s} {'same work':>17s} "
        f"{'ratio':>6s} {'full fit':>17s} {'ratio':>6s} {'+ frames':>17s} {'ratio':>6s} "
        f"{'max|AR diff|':>12s}"
    )

    def cell(best: float, median: float) -> str:
        return f"{best:7.3f}s ({median:6.3f})"

    results = []
    for label, n_assets, n_events in configs:
        for model in ("market", "constant_mean"):
            c = compare(label, n_assets, n_events, model, repeat=args.repeat)
            results.append(c)
            print(
                f"{c.label:24s} {c.model:13s} {c.pairs:6d} "
                f"{cell(c.seconds_eventstudy, c.median_eventstudy)} "
                f"{cell(c.seconds_same_work, c.median_same_work)} {c.ratio:5.1f}x "
                f"{cell(c.seconds_full_fit, c.median_full_fit)} {c.ratio_full:5.1f}x "
                f"{cell(c.seconds_frames, c.median_frames)} {c.ratio_frames:5.1f}x "
                f"{c.max_abs_ar_diff:12.2e}"
            )
    print("ratio per interleaved round (eventstudy / aitokens of the same round), min .. max:")
    for c in results:
        print(
            f"  {c.label:24s} {c.model:13s} same work {min(c.round_ratios):5.1f}x .. "
            f"{max(c.round_ratios):5.1f}x   full fit {min(c.round_ratios_full):5.1f}x .. "
            f"{max(c.round_ratios_full):5.1f}x"
        )
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end {load_end:.1f}")
    print(
        "same work = ARs, CARs with variances and t, t_cs and Patell tests, no portfolios "
        "(what eventstudy computes); full fit = default fit (13 tests per day/window for all "
        "pairs, each event and each class, KP correlation, flags, portfolios); + frames = full "
        "fit and every labelled output built once."
    )


if __name__ == "__main__":
    main()
