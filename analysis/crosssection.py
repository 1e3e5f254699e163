"""Cross-sectional tests over asset-event pairs, per event day and per CAR window.

A "column" is a window of event days: each single day ``[t, t]`` and each CAR window. Single days
are windows of length one, so one code path serves both and the statistics agree by construction.
Tests are computed for groups of pairs (all pairs, each event, each asset class).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import statistics as st

TESTS: dict[str, tuple[str, str]] = {
    # name: (label, null hypothesis)
    "t_cs": ("Cross-sectional t", "mean (C)AR = 0"),
    "patell": ("Patell Z", "mean standardized (C)AR = 0"),
    "bmp": ("BMP t", "mean standardized (C)AR = 0"),
    "kp_bmp": ("KP-adjusted BMP t", "mean standardized (C)AR = 0, cross-correlated"),
    "corrado_rank": ("Corrado rank", "event-day ranks are not unusual"),
    "modified_rank": ("Corrado-Zivney rank", "event-day standardized ranks = 1/2"),
    "cz_sign": ("Corrado-Zivney sign", "(C)AR median = estimation median"),
    "generalized_sign": ("Generalized sign", "share of positive (C)AR = estimation share"),
    "sign": ("Sign", "share of positive (C)AR = 1/2"),
    "wilcoxon": ("Wilcoxon signed-rank V", "(C)AR symmetric about 0"),
    "bw1980": ("Brown-Warner 1980", "mean (C)AR = 0"),
    "bw1985": ("Brown-Warner 1985", "mean (C)AR = 0"),
    "lamb": ("Lamb 1995", "mean (C)AR = 0"),
}
"""Every cross-sectional test: code, label and null hypothesis."""


@dataclass(frozen=True)
class CrossSectionInput:
    """Arrays for the included pairs (P), event days (E), estimation days (L1), columns (C)."""

    car: np.ndarray  # (P, C) cumulative abnormal returns (AR for one-day columns)
    car_var: np.ndarray  # (P, C) forecast-error-corrected variances
    dof: np.ndarray  # (P,) degrees of freedom of sigma
    nobs: np.ndarray  # (P,) estimation observations
    resid_est: np.ndarray  # (P, L1) estimation-window residuals
    ar_event: np.ndarray  # (P, E) event-window abnormal returns
    windows: np.ndarray  # (E, C) 0/1 day membership of each column
    corr_blocks: Sequence[tuple[np.ndarray, np.ndarray]]  # (pair idx, residual correlations)
    lamb_q: np.ndarray | None  # (P, E) (R_m - mu_m)^2 / S_mm, market model only
    convention: str


def _ranks(full: np.ndarray) -> np.ndarray:
    if not np.isnan(full).any():
        from scipy.stats import rankdata

        return rankdata(full, axis=1)
    return pd.DataFrame(full).rank(axis=1, method="average", na_option="keep").to_numpy()


def _invalid_reason(n: np.ndarray, stat: np.ndarray, min_n: int = 2) -> list[str | None]:
    out: list[str | None] = []
    for k, s in zip(n, stat, strict=True):
        if k < min_n:
            out.append(f"needs at least {min_n} pairs, has {int(k)}")
        elif not np.isfinite(s):
            out.append("not finite (zero or undefined variance)")
        else:
            out.append(None)
    return out


def run_tests(
    inp: CrossSectionInput,
    groups: Mapping[str, np.ndarray],
    column_labels: Sequence[str],
    column_kinds: Sequence[str],
    column_bounds: Sequence[tuple[int, int]],
) -> pd.DataFrame:
    """All tests for every group and column, as a tidy frame.

    Columns of the result: ``group, kind, window, start, end, test, stat, pvalue, n, dist, null,
    reason`` (``reason`` is empty for valid statistics; invalid ones have NaN stat and p-value).
    """
    p_pairs, n_cols = inp.car.shape
    lengths = inp.windows.sum(axis=0)
    sar = inp.car / np.sqrt(inp.car_var)
    full = np.hstack([inp.resid_est, inp.ar_event])
    n_est = inp.resid_est.shape[1]
    ranks = _ranks(full)
    m_i = (~np.isnan(full)).sum(axis=1).astype(float)
    dev_rank = ranks - (m_i[:, None] + 1.0) / 2.0  # Corrado (1989): K_it - (M_i + 1)/2
    dev_urank = ranks / (m_i[:, None] + 1.0) - 0.5  # Corrado & Zivney (1992): U_it - 1/2
    med = np.nanmedian(full, axis=1)
    dev_sign = np.sign(full - med[:, None])  # Corrado & Zivney (1992) sign: G_it
    est_ok = ~np.isnan(inp.resid_est)
    pos_share = (inp.resid_est > 0).sum(axis=1) / est_ok.sum(axis=1)
    est_var = np.nanvar(inp.resid_est, axis=1, ddof=1)
    estudy2 = inp.convention == "estudy2"

    rows: list[dict[str, object]] = []

    def emit(group: str, test: str, stat, pval, n, dist, reasons=None) -> None:
        stat = np.broadcast_to(np.asarray(stat, dtype=float), (n_cols,))
        pval = np.broadcast_to(np.asarray(pval, dtype=float), (n_cols,))
        n = np.broadcast_to(np.asarray(n), (n_cols,))
        dist = np.broadcast_to(np.asarray(dist, dtype=object), (n_cols,))
        reasons = _invalid_reason(n, stat) if reasons is None else reasons
        for c in range(n_cols):
            bad = reasons[c]
            rows.append(
                {
                    "group": group,
                    "kind": column_kinds[c],
                    "window": column_labels[c],
                    "start": column_bounds[c][0],
                    "end": column_bounds[c][1],
                    "test": test,
                    "stat": np.nan if bad else float(stat[c]),
                    "pvalue": np.nan if bad else float(pval[c]),
                    "n": int(n[c]),
                    "dist": dist[c],
                    "null": TESTS[test][1],
                    "reason": bad or "",
                }
            )

    for gname, gmask in groups.items():
        idx = np.flatnonzero(gmask)
        if idx.size == 0:
            continue
        car_g = inp.car[idx].T  # (C, N)
        sar_g = sar[idx].T
        n_g = idx.size

        t, n = st.cross_sectional_t(car_g)
        emit(gname, "t_cs", t, st.pvalue_t(t, n - 1), n, [f"t({k - 1})" for k in n])

        z, n = st.patell_z(sar_g, inp.dof[idx])
        bad_dof = np.any(inp.dof[idx] <= 2)
        reasons = (
            ["estimation window too short (d.o.f. <= 2)"] * n_cols
            if bad_dof
            else _invalid_reason(n, z, 1)
        )
        emit(gname, "patell", z, st.pvalue_normal(z), n, "N(0,1)", reasons)

        tb, n = st.bmp_t(sar_g)
        emit(gname, "bmp", tb, st.pvalue_t(tb, n - 1), n, [f"t({k - 1})" for k in n])

        present = (~np.isnan(sar[idx])).astype(float)  # (N, C)
        off = np.zeros(n_cols)
        for bidx, corr in inp.corr_blocks:
            sel = np.isin(idx, bidx)
            if sel.sum() < 2:
                continue
            pos = np.searchsorted(bidx, idx[sel])
            sub = corr[np.ix_(pos, pos)]
            mb = present[sel]
            off += ((sub @ mb) * mb).sum(axis=0) - mb.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rbar = off / (n * (n - 1.0))
        tk = st.kp_adjust(tb, n, rbar)
        emit(
            gname,
            "kp_bmp",
            tk,
            st.pvalue_t(tk, n - 1),
            n,
            [f"t({k - 1}), r={r:.3f}" for k, r in zip(n, rbar, strict=True)],
        )

        scale = n_g if estudy2 else None
        for test, dev, root in (
            ("corrado_rank", dev_rank, False),
            ("modified_rank", dev_urank, True),
            ("cz_sign", dev_sign, True),
        ):
            dbar, s = st.rank_day_aggregates(dev[idx].T, root=root, scale_to=scale)
            z = st.window_rank_z(dbar[n_est:], s, inp.windows)
            n_present = (~np.isnan(inp.ar_event[idx])).astype(float).T  # (E, N) -> per column
            nn = (n_present.sum(axis=1) @ inp.windows) / np.maximum(lengths, 1)
            emit(
                gname,
                test,
                z,
                st.pvalue_normal(z),
                np.round(nn).astype(int),
                "N(0,1)",
                _invalid_reason(np.round(nn), z, 1),
            )

        p_hat = (
            np.nansum(inp.resid_est[idx] > 0) / est_ok[idx].sum()
            if estudy2
            else np.nanmean(pos_share[idx])
        )
        z, n = st.generalized_sign_z(car_g, p_hat)
        emit(
            gname,
            "generalized_sign",
            z,
            st.pvalue_normal(z),
            n,
            f"N(0,1), p={p_hat:.3f}",
            _invalid_reason(n, z, 1),
        )
        z, n = st.sign_z(car_g)
        emit(gname, "sign", z, st.pvalue_normal(z), n, "N(0,1)", _invalid_reason(n, z, 1))
        v, pv, n = st.wilcoxon_signed_rank(car_g)
        emit(gname, "wilcoxon", v, pv, n, "signed-rank", _invalid_reason(n, v, 1))

        # Brown & Warner (1980, 1985) and Lamb (1995): time-series standard deviations from the
        # estimation window ("crude dependence adjustment"), t(mean L1 - 1) as in estudy2.
        mean_car, _, n = st._mean_sd(car_g)
        df_bw = float(np.mean(inp.nobs[idx])) - 1.0
        sd80 = np.sqrt(np.nansum(est_var[idx])) / n_g
        with np.errstate(invalid="ignore", divide="ignore"):
            z80 = mean_car / (sd80 * np.sqrt(lengths))
        emit(
            gname,
            "bw1980",
            z80,
            st.pvalue_t(z80, df_bw),
            n,
            f"t({df_bw:g})",
            _invalid_reason(n, z80, 1),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # days on which no pair has data
            cm = np.nanmean(inp.resid_est[idx], axis=0)
        sd85 = np.nanstd(cm, ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            z85 = mean_car / (sd85 * np.sqrt(lengths))
        emit(
            gname,
            "bw1985",
            z85,
            st.pvalue_t(z85, df_bw),
            n,
            f"t({df_bw:g})",
            _invalid_reason(n, z85, 1),
        )
        if inp.lamb_q is None:
            emit(
                gname,
                "lamb",
                np.nan,
                np.nan,
                n,
                "N(0,1)",
                ["Lamb's test needs the market model"] * n_cols,
            )
        else:
            # Lamb (1995) as in estudy2: BW85 s.d. times the forecast-error factor
            # sqrt(1 + 1/mean(L1) + mean_i (R_mt - mu_m)^2 / S_mm); windows sum daily Z / sqrt(L).
            ar_ev = inp.ar_event[idx]
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                daily_mean = np.nanmean(ar_ev, axis=0)
                factor = np.sqrt(
                    1.0 + 1.0 / np.mean(inp.nobs[idx]) + np.nanmean(inp.lamb_q[idx], axis=0)
                )
                daily = daily_mean / (sd85 * factor)
            ok = np.isfinite(daily)
            zl = (np.where(ok, daily, 0.0) @ inp.windows) / np.sqrt(ok.astype(float) @ inp.windows)
            emit(gname, "lamb", zl, st.pvalue_normal(zl), n, "N(0,1)", _invalid_reason(n, zl, 1))

    frame = pd.DataFrame(rows)
    return frame


def residual_correlation_blocks(
    resid: np.ndarray, dates: np.ndarray, event_of_pair: np.ndarray, min_overlap: int = 20
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairwise correlations of estimation residuals within each event, aligned by date.

    Pairs of different events get correlation 0 (their event days differ); pairs of one event are
    aligned on calendar dates, so a token (every day) and an equity (sessions) are compared on the
    dates both have. Correlations from fewer than ``min_overlap`` common days are set to 0.
    Returns ``(pair indices, correlation matrix)`` per event.
    """
    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    for ev in np.unique(event_of_pair):
        idx = np.flatnonzero(event_of_pair == ev)
        if idx.size < 2:
            blocks.append((idx, np.ones((idx.size, idx.size))))
            continue
        r = resid[idx]
        d = dates[idx]
        aligned = bool(np.all(d == d[0]))
        if aligned and not np.isnan(r).any():
            corr = np.corrcoef(r)
        else:
            if aligned:
                frame = pd.DataFrame(r.T)
            else:
                frame = pd.concat(
                    [
                        pd.Series(r[k], index=pd.DatetimeIndex(d[k]))
                        .dropna()
                        .loc[lambda s: ~s.index.isna()]
                        for k in range(idx.size)
                    ],
                    axis=1,
                    keys=range(idx.size),
                )
            corr = frame.corr(min_periods=min_overlap).to_numpy()
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        blocks.append((idx, corr))
    return blocks
