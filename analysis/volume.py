"""Abnormal trading volume around an event (Campbell & Wasley 1996), with cross-sectional tests.

Volume is taken in logs, which makes its skewed distribution close to normal (Ajinkya & Jain
1989; Campbell & Wasley 1996, section 3):

.. math::

    v_{it} = \\ln(1 + V_{it})

with :math:`V_{it}` the USD volume of asset *i* in period *t* (a day, or an hour on the hourly
clock); the 1 keeps a zero-volume period finite (Campbell & Wasley add a small constant to
turnover for the same reason). Two benchmarks of normal volume, both estimated over the study's
estimation window :math:`T_0` (the same sessions as the return model):

- mean-adjusted (Campbell & Wasley 1996, mean-adjusted model):
  :math:`AV_{it} = v_{it} - \\bar v_i`, :math:`\\bar v_i = \\frac{1}{|T_0|}\\sum_{t\\in T_0}
  v_{it}`;
- market-adjusted: :math:`AV_{it} = (v_{it} - v_{mt}) - \\overline{(v_i - v_m)}`, the asset's
  log volume net of its benchmark's (BTC for tokens, SPY for equities) on the same session. The
  estimation mean of the difference is removed because the dollar volume of a token and of its
  benchmark differ in level by orders of magnitude (Campbell & Wasley's turnover does not).

Tests of the mean abnormal volume :math:`\\overline{AV}_t = \\frac1N \\sum_i AV_{it}` per event
period, and of its sum over a window :math:`CAAV(\\tau_1,\\tau_2)`:

- cross-sectional t: :math:`\\overline{AV}_t / (s_t / \\sqrt N)`, :math:`s_t` the cross-sectional
  standard deviation (Brown & Warner 1985, the test Campbell & Wasley call the cross-sectional
  t), Student t with N - 1 degrees of freedom; for a window, the same on each asset's sum;
- time-series (crude dependence adjustment) t: :math:`\\overline{AV}_t / \\hat S`, with
  :math:`\\hat S` the standard deviation of :math:`\\overline{AV}_t` over the estimation window;
  for a window of L periods :math:`CAAV / (\\sqrt L\\,\\hat S)` (Brown & Warner 1985; Campbell &
  Wasley 1996 report it as the parametric test robust to cross-correlation);
- Wilcoxon signed-rank of the :math:`AV_{it}` (Campbell & Wasley's non-parametric test).

References
----------
Campbell, C. J. & Wasley, C. E. (1996). Measuring abnormal daily trading volume for samples of
NYSE/ASE and NASDAQ securities using parametric and nonparametric test statistics. Review of
Quantitative Finance and Accounting 6(3), 309-326.
Ajinkya, B. B. & Jain, P. C. (1989). The behavior of daily stock market trading volume.
J. Accounting and Economics 11(4), 331-359.
Brown, S. J. & Warner, J. B. (1985). Using daily stock returns: the case of event studies.
J. Financial Economics 14(1), 3-31.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.iolib.summary2 import Summary

from analysis.calendars import HOURLY, sessions

VOLUME_MODELS = ("mean_adjusted", "market_adjusted")
MODEL_LABELS = {"mean_adjusted": "mean-adjusted", "market_adjusted": "market-adjusted"}


def _grid(calendar: str, day0: pd.Timestamp, lo: int, hi: int) -> pd.DatetimeIndex:
    """Sessions ``lo`` .. ``hi`` around ``day0`` on ``calendar`` (hours on the hourly clock)."""
    if calendar == HOURLY:
        return pd.date_range(day0 + pd.Timedelta(hours=lo), day0 + pd.Timedelta(hours=hi), freq="h")
    pad = pd.Timedelta(days=max(abs(lo), abs(hi)) * 2 + 15)
    s = sessions(calendar, day0 - pad, day0 + pad)
    pos = int(s.get_loc(day0))
    return s[pos + lo : pos + hi + 1]


@dataclass(frozen=True)
class VolumeResult:
    """Abnormal log volume per model: rows are event periods, columns ``(event, asset)``."""

    abnormal: dict[str, pd.DataFrame]
    estimation: dict[str, pd.DataFrame]  # the same over the estimation window
    tests: pd.DataFrame
    excluded: pd.DataFrame
    interval: str = "1d"

    @property
    def period(self) -> str:
        return "hour" if self.interval == "1h" else "day"

    def summary(self) -> Summary:
        """Mean abnormal log volume per window with its three tests, one table per model."""
        smry = Summary()
        smry.add_title(f"Abnormal log volume (Campbell & Wasley 1996), {self.period}s")
        t = self.tests
        if t.empty:  # summary2 needs one table to lay the text out
            smry.add_df(pd.DataFrame({"abnormal volume": ["no asset has volume data"]}))
        for model in VOLUME_MODELS:
            sub = t[t["model"] == model]
            if sub.empty:
                continue
            table = pd.DataFrame(
                {
                    "model": MODEL_LABELS[model],
                    "mean AV": sub["mean"].map(lambda v: f"{v:.4f}"),
                    "N": sub["n"].astype(str),
                    "t (cs)": [_cell(s, p) for s, p in zip(sub["t_cs"], sub["p_cs"], strict=True)],
                    "t (ts)": [_cell(s, p) for s, p in zip(sub["t_ts"], sub["p_ts"], strict=True)],
                    "Wilcoxon": [
                        _cell(s, p) for s, p in zip(sub["wilcoxon"], sub["p_wilcoxon"], strict=True)
                    ],
                }
            )
            table.index = list(sub["window"])
            table.index.name = None
            smry.add_df(table, index=True, header=True)
        smry.add_text(
            "AV = ln(1 + USD volume) less its estimation-window mean (mean-adjusted) or less the "
            "benchmark's log volume and their mean difference (market-adjusted). Cells: "
            "statistic (two-sided p); cs = cross-sectional t, ts = time-series t (crude "
            "dependence adjustment), Wilcoxon signed-rank."
        )
        for r in self.excluded.itertuples(index=False):
            smry.add_text(f"Excluded {r.asset} / {r.event}: {r.reason}.")
        return smry

    def __str__(self) -> str:
        return self.summary().as_text()

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "tests": json.loads(self.tests.to_json(orient="records", double_precision=15)),
            "abnormal": {
                m: json.loads(
                    f.set_axis([f"{e}/{a}" for e, a in f.columns], axis=1).to_json(
                        orient="index", double_precision=15
                    )
                )
                for m, f in self.abnormal.items()
            },
            "excluded": json.loads(self.excluded.to_json(orient="records", double_precision=15)),
        }


def _cell(stat: float, p: float) -> str:
    if not math.isfinite(stat):
        return "n/a"
    return f"{stat:.2f} ({p:.3f})" if math.isfinite(p) else f"{stat:.2f}"


def abnormal_volume(
    params: pd.DataFrame,
    volumes: pd.DataFrame,
    *,
    estimation_window: Sequence[int],
    event_window: Sequence[int],
    windows: Sequence[Sequence[int]] = (),
    interval: str = "1d",
    min_estimation_obs: int | None = None,
) -> VolumeResult:
    """Abnormal log volume of every pair of a fitted study, and its tests.

    Parameters
    ----------
    params
        ``result.params`` of the return study: ``day0``, ``calendar``, ``benchmark`` per
        ``(event, asset)`` pair (so volume uses the same sessions and benchmark).
    volumes
        Long ``date, symbol, volume_usd`` of the assets and their benchmarks.
    estimation_window, event_window
        Offsets relative to day 0 (hour 0), as in the return study.
    windows
        Windows of cumulated abnormal volume to test (inside the event window).
    min_estimation_obs
        Minimum estimation periods with volume (default half the estimation window).
    """
    est = (int(estimation_window[0]), int(estimation_window[1]))
    win = (int(event_window[0]), int(event_window[1]))
    l1 = est[1] - est[0] + 1
    need = max(5, math.ceil(l1 / 2)) if min_estimation_obs is None else int(min_estimation_obs)
    vol = volumes.copy()
    vol["date"] = pd.to_datetime(vol["date"])
    logv = {
        s: np.log1p(f.set_index("date")["volume_usd"].astype(float).where(lambda x: x >= 0))
        for s, f in vol.groupby("symbol")
    }
    ab: dict[str, dict[tuple[str, str], np.ndarray]] = {m: {} for m in VOLUME_MODELS}
    ab_est: dict[str, dict[tuple[str, str], np.ndarray]] = {m: {} for m in VOLUME_MODELS}
    excluded = []
    for (event, asset), p in params.iterrows():
        grid = _grid(str(p["calendar"]), pd.Timestamp(p["day0"]), est[0], win[1])
        n_est = l1
        series = logv.get(asset)
        if series is None:
            excluded.append((event, asset, "no volume"))
            continue
        v = series.reindex(grid).to_numpy()
        if np.isfinite(v[:n_est]).sum() < need:
            excluded.append(
                (
                    event,
                    asset,
                    f"{int(np.isfinite(v[:n_est]).sum())} estimation periods with "
                    f"volume, fewer than {need}",
                )
            )
            continue
        mean = np.nanmean(v[:n_est])
        gap = win[0] - est[1] - 1
        ev_slice = slice(n_est + gap, None)
        ab["mean_adjusted"][(event, asset)] = (v - mean)[ev_slice]
        ab_est["mean_adjusted"][(event, asset)] = (v - mean)[:n_est]
        bench = logv.get(str(p.get("benchmark", "")))
        if bench is not None:
            d = v - bench.reindex(grid).to_numpy()
            if np.isfinite(d[:n_est]).sum() >= need:
                dm = np.nanmean(d[:n_est])
                ab["market_adjusted"][(event, asset)] = (d - dm)[ev_slice]
                ab_est["market_adjusted"][(event, asset)] = (d - dm)[:n_est]
    days = pd.RangeIndex(win[0], win[1] + 1, name="hour" if interval == "1h" else "day")
    est_days = pd.RangeIndex(est[0], est[1] + 1, name=days.name)

    def frame(d: dict[tuple[str, str], np.ndarray], idx: pd.RangeIndex) -> pd.DataFrame:
        cols = pd.MultiIndex.from_tuples(list(d), names=["event", "asset"])
        return pd.DataFrame(
            np.column_stack(list(d.values())) if d else None, index=idx, columns=cols if d else None
        )

    abnormal = {m: frame(ab[m], days) for m in VOLUME_MODELS if ab[m]}
    estimation = {m: frame(ab_est[m], est_days) for m in VOLUME_MODELS if ab_est[m]}
    rows = []
    labelled = [(f"{d:+d}" if d else "0", int(d), int(d)) for d in days]
    labelled += [(f"[{int(a)},{int(b)}]", int(a), int(b)) for a, b in windows]
    for model, av in abnormal.items():
        s_hat = float(np.nanstd(estimation[model].mean(axis=1).to_numpy(), ddof=1))
        for label, lo, hi in labelled:
            x = av.loc[lo:hi].sum(axis=0, min_count=hi - lo + 1).dropna().to_numpy()
            rows.append(_tests(model, label, lo, hi, x, s_hat))
    cols = [
        "model",
        "window",
        "start",
        "end",
        "mean",
        "n",
        "t_cs",
        "p_cs",
        "t_ts",
        "p_ts",
        "wilcoxon",
        "p_wilcoxon",
        "reason",
    ]
    tests = pd.DataFrame(rows, columns=cols)
    tests = tests.drop_duplicates(["model", "window"]).reset_index(drop=True)
    return VolumeResult(
        abnormal=abnormal,
        estimation=estimation,
        tests=tests,
        excluded=pd.DataFrame(excluded, columns=["event", "asset", "reason"]),
        interval=interval,
    )


def _tests(model: str, label: str, lo: int, hi: int, x: np.ndarray, s_hat: float) -> dict:
    n = len(x)
    nan = float("nan")
    out: dict[str, Any] = {
        "model": model,
        "window": label,
        "start": lo,
        "end": hi,
        "mean": float(x.mean()) if n else nan,
        "n": n,
        "t_cs": nan,
        "p_cs": nan,
        "t_ts": nan,
        "p_ts": nan,
        "wilcoxon": nan,
        "p_wilcoxon": nan,
        "reason": "",
    }
    if n < 2:
        out["reason"] = "one asset: no cross-sectional test" if n == 1 else "no asset"
        return out
    sd = float(x.std(ddof=1))
    if sd > 0:
        t = float(x.mean() / (sd / math.sqrt(n)))
        out["t_cs"], out["p_cs"] = t, float(2 * stats.t.sf(abs(t), n - 1))
    if s_hat > 0 and math.isfinite(s_hat):
        t = float(x.mean() / (math.sqrt(hi - lo + 1) * s_hat))
        out["t_ts"], out["p_ts"] = t, float(2 * stats.norm.sf(abs(t)))
    if np.any(x != 0):
        w = stats.wilcoxon(x)
        out["wilcoxon"], out["p_wilcoxon"] = float(w.statistic), float(w.pvalue)
    return out


__all__ = ["VOLUME_MODELS", "VolumeResult", "abnormal_volume"]
