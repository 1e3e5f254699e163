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
    corr_blocks: Sequence[CorrBlock]  # residual correlations per event
    lamb_q: np.ndarray | None  # (P, E) (R_m - mu_m)^2 / S_mm, market model only
    convention: str
    tests: tuple[str, ...] = tuple(TESTS)  # which tests to compute


def _ranks(full: np.ndarray) -> np.ndarray:
    """Ranks within each row (average ranks for ties, NaN kept as NaN)."""
    order = np.argsort(full, axis=1)  # NaN sort last, so valid values get ranks 1..M_i
    srt = np.take_along_axis(full, order, axis=1)
    ranks = np.empty_like(full)
    pos = np.broadcast_to(np.arange(1, full.shape[1] + 1, dtype=float), full.shape)
    np.put_along_axis(ranks, order, pos, axis=1)
    tied = (np.diff(srt, axis=1) == 0).any(axis=1)
    if tied.any():
        ranks[tied] = pd.DataFrame(full[tied]).rank(axis=1, method="average").to_numpy()
    return np.where(np.isnan(full), np.nan, ranks)


def _invalid_reason(n: np.ndarray, stat: np.ndarray, min_n: int = 2) -> list[str | None]:
    n = np.asarray(n)
    few = n < min_n
    bad = ~few & ~np.isfinite(stat)
    if not (few.any() or bad.any()):
        return [None] * len(n)
    out: list[str | None] = [None] * len(n)
    for k in np.flatnonzero(few | bad):
        out[k] = (
            f"needs at least {min_n} pairs, has {int(n[k])}"
            if few[k]
            else "not finite (zero or undefined variance)"
        )
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
    want = set(inp.tests)
    n_est = inp.resid_est.shape[1]
    if want & {"corrado_rank", "modified_rank", "cz_sign"}:
        full = np.hstack([inp.resid_est, inp.ar_event])
        ranks = _ranks(full)
        m_i = (~np.isnan(full)).sum(axis=1).astype(float)
        devs = {
            "corrado_rank": (ranks - (m_i[:, None] + 1.0) / 2.0, False),  # K_it - (M_i+1)/2
            "modified_rank": (ranks / (m_i[:, None] + 1.0) - 0.5, True),  # U_it - 1/2
        }
        med = np.median(full, axis=1) if not np.isnan(full).any() else np.nanmedian(full, axis=1)
        devs["cz_sign"] = (np.sign(full - med[:, None]), True)  # G_it = sign(A_it - median_i)
    est_ok = ~np.isnan(inp.resid_est)
    pos_share = (inp.resid_est > 0).sum(axis=1) / est_ok.sum(axis=1)
    est_var = np.nanvar(inp.resid_est, axis=1, ddof=1) if "bw1980" in want else None
    estudy2 = inp.convention == "estudy2"

    parts: list[dict[str, object]] = []

    def emit(group: str, test: str, stat, pval, n, dist, reasons=None) -> None:
        stat = np.broadcast_to(np.asarray(stat, dtype=float), (n_cols,))
        pval = np.broadcast_to(np.asarray(pval, dtype=float), (n_cols,))
        n = np.broadcast_to(np.asarray(n), (n_cols,)).astype(int)
        reasons = _invalid_reason(n, stat) if reasons is None else reasons
        bad = np.array([r is not None for r in reasons])
        parts.append(
            {
                "group": [group] * n_cols,
                "kind": column_kinds,
                "window": column_labels,
                "start": starts,
                "end": ends,
                "test": [test] * n_cols,
                "stat": np.where(bad, np.nan, stat),
                "pvalue": np.where(bad, np.nan, pval),
                "n": n,
                "dist": list(np.broadcast_to(np.asarray(dist, dtype=object), (n_cols,))),
                "null": [TESTS[test][1]] * n_cols,
                "reason": [r or "" for r in reasons],
            }
        )

    starts = [b[0] for b in column_bounds]
    ends = [b[1] for b in column_bounds]
    block_of = np.full(p_pairs, -1)
    pos_in_block = np.zeros(p_pairs, dtype=int)
    for b_id, block in enumerate(inp.corr_blocks):
        block_of[block.idx] = b_id
        pos_in_block[block.idx] = np.arange(block.idx.size)

    for gname, gmask in groups.items():
        idx = np.flatnonzero(gmask)
        if idx.size == 0:
            continue
        car_g = inp.car[idx].T  # (C, N)
        sar_g = sar[idx].T
        n_g = idx.size

        if "t_cs" in want:
            t, n = st.cross_sectional_t(car_g)
            emit(gname, "t_cs", t, st.pvalue_t(t, n - 1), n, [f"t({k - 1})" for k in n])

        if "patell" in want:
            z, n = st.patell_z(sar_g, inp.dof[idx])
            bad_dof = np.any(inp.dof[idx] <= 2)
            reasons = (
                ["estimation window too short (d.o.f. <= 2)"] * n_cols
                if bad_dof
                else _invalid_reason(n, z, 1)
            )
            emit(gname, "patell", z, st.pvalue_normal(z), n, "N(0,1)", reasons)

        if want & {"bmp", "kp_bmp"}:
            tb, n = st.bmp_t(sar_g)
            if "bmp" in want:
                emit(gname, "bmp", tb, st.pvalue_t(tb, n - 1), n, [f"t({k - 1})" for k in n])
        if "kp_bmp" in want:
            rbar = _mean_offdiag(inp, sar, idx, block_of, pos_in_block, n)
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
        for test in ("corrado_rank", "modified_rank", "cz_sign"):
            if test not in want:
                continue
            dev, root = devs[test]
            dbar, s = st.rank_day_aggregates(dev[idx].T, root=root, scale_to=scale)
            z = st.window_rank_z(dbar[n_est:], s, inp.windows)
            n_present = (~np.isnan(inp.ar_event[idx])).sum(axis=0).astype(float)  # per day
            nn = np.round((n_present @ inp.windows) / np.maximum(lengths, 1))
            emit(
                gname,
                test,
                z,
                st.pvalue_normal(z),
                nn.astype(int),
                "N(0,1)",
                _invalid_reason(nn, z, 1),
            )

        if "generalized_sign" in want:
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
        if "sign" in want:
            z, n = st.sign_z(car_g)
            emit(gname, "sign", z, st.pvalue_normal(z), n, "N(0,1)", _invalid_reason(n, z, 1))
        if "wilcoxon" in want:
            v, pv, n = st.wilcoxon_signed_rank(car_g)
            emit(gname, "wilcoxon", v, pv, n, "signed-rank", _invalid_reason(n, v, 1))

        if not want & {"bw1980", "bw1985", "lamb"}:
            continue
        # Brown & Warner (1980, 1985) and Lamb (1995): time-series standard deviations from the
        # estimation window ("crude dependence adjustment"), t(mean L1 - 1) as in estudy2.
        mean_car, _, n = st._mean_sd(car_g)
        df_bw = float(np.mean(inp.nobs[idx])) - 1.0
        if "bw1980" in want:
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
        if "bw1985" in want:
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
        if "lamb" not in want:
            continue
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
            continue
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
        with np.errstate(invalid="ignore", divide="ignore"):
            zl = (np.where(ok, daily, 0.0) @ inp.windows) / np.sqrt(ok.astype(float) @ inp.windows)
        emit(gname, "lamb", zl, st.pvalue_normal(zl), n, "N(0,1)", _invalid_reason(n, zl, 1))

    if not parts:
        return pd.DataFrame(
            columns=[
                "group",
                "kind",
                "window",
                "start",
                "end",
                "test",
                "stat",
                "pvalue",
                "n",
                "dist",
                "null",
                "reason",
            ]
        )
    return pd.DataFrame(
        {
            k: np.concatenate(
                [
                    np.asarray(
                        p[k],
                        dtype=object
                        if k in ("group", "kind", "window", "test", "dist", "null", "reason")
                        else None,
                    )
                    for p in parts
                ]
            )
            for k in parts[0]
        }
    )


def _mean_offdiag(inp, sar, idx, block_of, pos_in_block, n) -> np.ndarray:
    """Mean off-diagonal residual correlation among the pairs present in each column."""
    present = (~np.isnan(sar[idx])).astype(float)  # (N, C)
    off = np.zeros(present.shape[1])
    g_blocks = block_of[idx]
    for b_id in np.unique(g_blocks):
        sel = g_blocks == b_id
        if sel.sum() < 2:
            continue
        block = inp.corr_blocks[b_id]
        pos = pos_in_block[idx[sel]]
        mb = present[sel]
        if block.z is not None:
            # sum of r_ij over a set S = ||sum_{i in S} z_i||^2 for unit-norm standardized rows
            sz = mb.T @ block.z[pos]  # (C, L)
            off += (sz * sz).sum(axis=1) - mb.sum(axis=0)
        else:
            sub = block.corr[np.ix_(pos, pos)]
            off += ((sub @ mb) * mb).sum(axis=0) - mb.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return off / (n * (n - 1.0))


@dataclass(frozen=True)
class CorrBlock:
    """Residual correlations of the pairs of one event.

    Either ``z`` (rows standardized to unit norm, when all pairs share dates and have no gaps:
    then :math:`r_{ij} = z_i \\cdot z_j` and sums over pair sets need no N x N matrix) or
    ``corr`` (pairwise-complete correlations).
    """

    idx: np.ndarray
    z: np.ndarray | None
    corr: np.ndarray | None


def residual_correlation_blocks(
    resid: np.ndarray, dates: np.ndarray, event_of_pair: np.ndarray, min_overlap: int = 20
) -> list[CorrBlock]:
    """Correlations of estimation residuals within each event, aligned by date.

    Pairs of different events get correlation 0 (their event days differ); pairs of one event are
    aligned on calendar dates, so a token (every day) and an equity (sessions) are compared on the
    dates both have. Correlations from fewer than ``min_overlap`` common days are set to 0.
    """
    blocks: list[CorrBlock] = []
    for ev in np.unique(event_of_pair):
        idx = np.flatnonzero(event_of_pair == ev)
        r = resid[idx]
        d = dates[idx]
        aligned = bool((d[:, [0, -1]] == d[0, [0, -1]]).all()) and bool(np.all(d == d[0]))
        if aligned and not np.isnan(r).any():
            z = r - r.mean(axis=1, keepdims=True)
            norm = np.sqrt((z * z).sum(axis=1, keepdims=True))
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where(norm > 0, z / norm, 0.0)
            blocks.append(CorrBlock(idx, z, None))
            continue
        if aligned:
            frame = pd.DataFrame(r.T)
        else:
            frame = pd.concat(
                [pd.Series(r[k], index=pd.DatetimeIndex(d[k])).dropna() for k in range(idx.size)],
                axis=1,
                keys=range(idx.size),
                sort=True,
            )
            frame = frame.loc[frame.index.notna()]
        corr = frame.corr(min_periods=min_overlap).to_numpy() if idx.size > 1 else np.ones((1, 1))
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        blocks.append(CorrBlock(idx, None, corr))
    return blocks
