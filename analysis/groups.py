"""Results by asset group (sub-sector): each group's CAAR with the study's own tests, and the
differences between groups.

A group's results come from the engine's public API only: the same :class:`EventStudy`
specification restricted to the group's members (``assets=``), fitted on the same panel. Each
asset's market model does not depend on the others, so a member's CARs equal its CARs in the
full study; the cross-sectional tests (the headline KP-BMP among them) are those of the group.

Differences between two groups compare the members' CARs of one window with Welch's t (unequal
variances; Welch 1947) and the Wilcoxon rank-sum test (Wilcoxon 1945; Mann & Whitney 1947),
through :func:`scipy.stats.ttest_ind` (``equal_var=False``), :func:`scipy.stats.ranksums` (normal
approximation) and :func:`scipy.stats.mannwhitneyu` (exact for small samples without ties).
Both assume independent samples, so an asset in both groups is left out of that comparison.
A group with a single asset has a CAR but no cross-sectional test.

Each group also gets the calendar-time placebo p-value of :mod:`analysis.placebo`: the same
restricted specification re-run on every pseudo-date of the group's own history that keeps all
its members and avoids the catalog's event windows. It needs no cross-section, so a group of one
has one (its CAR ranked among its own placebo CARs), and below
:data:`analysis.placebo.SMALL_N` members it is the group's verdict, as for the study headline.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.iolib.summary2 import Summary

from analysis.calendars import HOURLY
from analysis.cstests import HEADLINE_TEST
from analysis.errors import AssetsExcludedWarning, EventStudyInputError
from analysis.placebo import PlaceboResult, placebo, verdict_lines

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from analysis.eventstudy import EventStudy
    from analysis.results import EventStudyResult

GROUP_OF_ONE = "a group of one gives no cross-sectional test"
NO_MEMBER = "no member of this group is in the study"


@dataclass(frozen=True)
class GroupResults:
    """Per-group results of one study leg.

    Attributes
    ----------
    members
        ``{group: [assets studied]}`` (members held in the study, after exclusions).
    results
        ``{group: EventStudyResult}`` for groups with at least one asset.
    caar
        One row per group and CAR window: ``group, window, n, caar, kp_stat, kp_pvalue,
        placebo_p, n_placebo, reason``.
    tests
        Every cross-sectional test of every group (the engine's tidy ``tests`` with ``group``
        set to the group's name), NaN with the reason for a group of one.
    differences
        One row per pair of groups and window: ``group_a, group_b, window, n_a, n_b,
        mean_a, mean_b, diff, welch_t, welch_df, welch_p, ranksum_z, ranksum_p, mwu_u, mwu_p,
        shared, reason``.
    as_of
        The day membership was read for (the earliest event's day 0).
    placebo
        ``{group: PlaceboResult}`` for the groups fitted, when the placebo was asked for.
    """

    members: dict[str, list[str]]
    results: dict[str, Any]
    caar: pd.DataFrame
    tests: pd.DataFrame
    differences: pd.DataFrame
    as_of: str = ""
    placebo: dict[str, PlaceboResult] = field(default_factory=dict)

    def summary(self) -> Summary:
        """CAAR per group and window with KP-BMP (p), then the between-group tests."""
        smry = Summary()
        smry.add_title("Results by group")
        c = self.caar
        if not c.empty:
            order = list(dict.fromkeys(c["window"]))
            caar_cell = [f"{v:.4f} [{n}]" for v, n in zip(c["caar"], c["n"], strict=True)]
            kp_cell = [
                "n/a" if not math.isfinite(s) else f"{s:.2f} ({p:.3f})"
                for s, p in zip(c["kp_stat"], c["kp_pvalue"], strict=True)
            ]
            cols = [(caar_cell, "CAAR [N]"), (kp_cell, "KP-BMP (p)")]
            if self.placebo:
                pl_cell = [
                    "n/a" if not math.isfinite(p) else f"{p:.3f} [{b}]"
                    for p, b in zip(c["placebo_p"], c["n_placebo"], strict=True)
                ]
                cols.append((pl_cell, "placebo p [B]"))
            for cells, label in cols:
                table = c.assign(cell=cells).pivot(index="group", columns="window", values="cell")
                table = table[order].fillna("")
                table.insert(0, "", label)
                table.index.name = None
                smry.add_df(table, index=True, header=True)
            smry.add_text(
                "CAAR [N] of each group's own pairs, and the Kolari & Pynnonen (2010) adjusted "
                "BMP statistic (two-sided p) on them."
                + (
                    " Placebo p [B]: two-sided empirical p-value of the group's CAAR among its "
                    "CAARs on B calendar-time placebo dates (the same study on the group's own "
                    "members, no catalog event in the window)."
                    if self.placebo
                    else ""
                )
            )
        d = self.differences
        ok = d[d["reason"] == ""] if not d.empty else d
        if not ok.empty:
            diff = pd.DataFrame(
                {
                    "window": ok["window"],
                    "diff": ok["diff"].map(lambda v: f"{v:.4f}"),
                    "N": ok["n_a"].astype(str) + "/" + ok["n_b"].astype(str),
                    "Welch t (p)": [
                        f"{t:.2f} ({p:.3f})"
                        for t, p in zip(ok["welch_t"], ok["welch_p"], strict=True)
                    ],
                    "rank-sum z (p)": [
                        f"{z:.2f} ({p:.3f})"
                        for z, p in zip(ok["ranksum_z"], ok["ranksum_p"], strict=True)
                    ],
                    "M-W U (exact p)": [
                        f"{u:.1f} ({p:.3f})" for u, p in zip(ok["mwu_u"], ok["mwu_p"], strict=True)
                    ],
                }
            )
            diff.index = list(ok["group_a"] + " - " + ok["group_b"])
            smry.add_df(diff, index=True, header=True)
            smry.add_text(
                "Differences of mean CAR between groups: Welch t (unequal variances), Wilcoxon "
                "rank-sum z and Mann-Whitney U; assets in both groups left out of the comparison."
            )
        for note in self.notes():
            smry.add_text(note)
        for line in self.verdicts():
            smry.add_text(line)
        return smry

    def verdicts(self) -> list[str]:
        """The headline of each fitted group per CAR window, as the study's own headline
        (:func:`analysis.placebo.verdict_lines`): below five members the placebo p-value is the
        verdict and the KP-BMP t is for reference only. Empty without the placebo."""
        if not self.placebo:
            return []
        return [
            f"Group {g}: {line}."
            for g, res in self.results.items()
            for line in verdict_lines(res, self.placebo.get(g))
        ]

    def notes(self) -> list[str]:
        """One sentence per group without a cross-sectional test or comparison."""
        out = []
        if self.as_of:
            out.append(f"Group membership as of {self.as_of} (the first event's day 0).")
        for g, m in self.members.items():
            if len(m) == 1:
                out.append(f"Group {g} holds one asset ({m[0]}): {GROUP_OF_ONE}{self._one(g)}.")
            elif not m:
                out.append(f"Group {g}: {NO_MEMBER}.")
        d = self.differences
        if not d.empty:
            bad = d[d["reason"] != ""].drop_duplicates(["group_a", "group_b"])
            for r in bad.itertuples(index=False):
                out.append(f"No test of {r.group_a} - {r.group_b}: {r.reason}.")
        return out

    def _one(self, g: str) -> str:
        """What the placebo says for a group of one (its only test)."""
        pl = self.placebo.get(g)
        if pl is None:
            return ""
        if pl.reason:
            return f", and no placebo p-value either ({pl.reason})"
        unit = "hours" if pl.calendar == HOURLY else "dates"
        ps = ", ".join(
            f"{r['window']} p = {r['p_value']:.3f}"
            for r in pl.records()
            if r["p_value"] is not None
        )
        return (
            f"; it does have a placebo p-value, its CAR ranked among its own CARs on "
            f"{pl.n_placebo} placebo {unit} ({ps})"
        )

    def __str__(self) -> str:
        return self.summary().as_text()

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "members": self.members,
            "caar": json.loads(self.caar.to_json(orient="records", double_precision=15)),
            "tests": json.loads(self.tests.to_json(orient="records", double_precision=15)),
            "differences": json.loads(
                self.differences.to_json(orient="records", double_precision=15)
            ),
            "placebo": {g: pl.records() for g, pl in self.placebo.items()},
            "placebo_reasons": {g: pl.reason for g, pl in self.placebo.items() if pl.reason},
            "verdicts": self.verdicts(),
            "notes": self.notes(),
        }


def fit_groups(
    study: EventStudy,
    prices: pd.DataFrame,
    groups: Mapping[str, Sequence[str]],
    full: EventStudyResult,
    *,
    as_of: str = "",
    placebo_prices: pd.DataFrame | None = None,
    catalog: Iterable[Any] = (),
    with_placebo: bool = True,
) -> GroupResults:
    """Fit ``study`` on each group's members held in ``full`` (the fitted full study).

    Parameters
    ----------
    study
        The leg's engine (its spec is reused with ``assets`` set to the group's members).
    prices
        The panel ``study`` was fitted on.
    groups
        ``{group: [symbols]}`` as of the event (members outside the study are ignored).
    full
        The full study's result: the assets it kept define who is studied.
    placebo_prices, catalog, with_placebo
        The calendar-time placebo of each group (:func:`analysis.placebo.placebo` on the
        group's restricted study, as the study legs run it): the whole history to draw placebo
        dates from (default ``prices``) and the catalog events their windows must avoid.
    """
    from analysis.eventstudy import EventStudy

    kept = list(dict.fromkeys(full.params.index.get_level_values("asset")))
    members = {g: [a for a in kept if a in set(m)] for g, m in groups.items()}
    spec = study.spec
    results: dict[str, Any] = {}
    placebos: dict[str, PlaceboResult] = {}
    caar_rows, test_frames = [], []
    windows = list(full.car.columns)
    for g, assets in members.items():
        if not assets:
            for w in windows:
                caar_rows.append(_caar_row(g, w, 0, np.nan, np.nan, np.nan, NO_MEMBER))
            continue
        sub = EventStudy.from_spec({**spec, "assets": assets})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AssetsExcludedWarning)
            try:
                res = sub.fit(prices)
            except EventStudyInputError as exc:
                for w in windows:
                    caar_rows.append(_caar_row(g, w, 0, np.nan, np.nan, np.nan, str(exc)))
                continue
        results[g] = res
        pl_p: dict[str, tuple[float, int]] = {}
        if with_placebo:
            placebos[g] = pl = _group_placebo(
                sub, prices if placebo_prices is None else placebo_prices, catalog
            )
            pl_p = {
                r["window"]: (np.nan if r["p_value"] is None else r["p_value"], r["n_placebo"])
                for r in pl.records()
            }
        t = res.tests
        t = t[t["group"] == "all"].assign(group=g)
        n_assets = len(assets)
        if n_assets < 2:
            t = t.assign(stat=np.nan, pvalue=np.nan, reason=GROUP_OF_ONE)
        test_frames.append(t)
        kp = t[(t["test"] == HEADLINE_TEST) & (t["kind"] == "car")].set_index("window")
        for w in windows:
            car = res.car[w] if w in res.car.columns else pd.Series(dtype=float)
            n = int(car.notna().sum())
            stat = float(kp.loc[w, "stat"]) if w in kp.index else np.nan
            p = float(kp.loc[w, "pvalue"]) if w in kp.index else np.nan
            reason = (
                GROUP_OF_ONE
                if n_assets < 2
                else (str(kp.loc[w, "reason"] or "") if w in kp.index else "")
            )
            caar_rows.append(
                _caar_row(g, w, n, float(car.mean()), stat, p, reason, *pl_p.get(w, (np.nan, 0)))
            )
    caar = pd.DataFrame(caar_rows, columns=CAAR_COLUMNS)
    tests = pd.concat(test_frames, ignore_index=True) if test_frames else pd.DataFrame()
    return GroupResults(
        members=members,
        results=results,
        caar=caar,
        tests=tests,
        differences=group_differences(full.car, members),
        as_of=as_of,
        placebo=placebos,
    )


def _group_placebo(sub: EventStudy, prices: pd.DataFrame, catalog: Iterable[Any]) -> PlaceboResult:
    """The placebo of one group's study, as ``flows.services.study.leg_placebo`` runs a leg's:
    a history that cannot be read gives a result that says why, not an error."""
    from analysis.eventstudy import _label

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the group's fit has met the same data
        try:
            return placebo(sub, prices, catalog=catalog)
        except EventStudyInputError as exc:
            windows = [_label(*w) for w in sub.car_windows]
            return PlaceboResult.skipped(windows, f"the placebo history could not be read: {exc}")


CAAR_COLUMNS = [
    "group",
    "window",
    "n",
    "caar",
    "kp_stat",
    "kp_pvalue",
    "placebo_p",
    "n_placebo",
    "reason",
]


def _caar_row(
    g: str,
    w: str,
    n: int,
    caar: float,
    stat: float,
    p: float,
    reason: str,
    placebo_p: float = np.nan,
    n_placebo: int = 0,
) -> dict[str, Any]:
    return {
        "group": g,
        "window": w,
        "n": n,
        "caar": caar,
        "kp_stat": stat,
        "kp_pvalue": p,
        "placebo_p": placebo_p,
        "n_placebo": n_placebo,
        "reason": reason,
    }


DIFF_COLUMNS = [
    "group_a",
    "group_b",
    "window",
    "n_a",
    "n_b",
    "mean_a",
    "mean_b",
    "diff",
    "welch_t",
    "welch_df",
    "welch_p",
    "ranksum_z",
    "ranksum_p",
    "mwu_u",
    "mwu_p",
    "shared",
    "reason",
]


def group_differences(car: pd.DataFrame, members: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Welch t, Wilcoxon rank-sum and Mann-Whitney U between each pair of groups, per CAR
    window of ``car`` (rows ``(event, asset)``). Assets in both groups are left out."""
    rows = []
    assets = car.index.get_level_values("asset")
    for a, b in itertools.combinations(members, 2):
        shared = set(members[a]) & set(members[b])
        only_a = [m for m in members[a] if m not in shared]
        only_b = [m for m in members[b] if m not in shared]
        for w in car.columns:
            x = car.loc[assets.isin(only_a), w].dropna().to_numpy()
            y = car.loc[assets.isin(only_b), w].dropna().to_numpy()
            row: dict[str, Any] = dict.fromkeys(DIFF_COLUMNS, np.nan)
            row.update(
                group_a=a,
                group_b=b,
                window=w,
                n_a=len(x),
                n_b=len(y),
                mean_a=float(x.mean()) if len(x) else np.nan,
                mean_b=float(y.mean()) if len(y) else np.nan,
                shared=", ".join(sorted(shared)),
                reason="",
            )
            row["diff"] = row["mean_a"] - row["mean_b"]
            if len(x) < 2 or len(y) < 2:
                small = a if len(x) < 2 else b
                n_small = min(len(x), len(y))
                row["reason"] = (
                    f"group {small} has {n_small} asset{'s' if n_small != 1 else ''} outside the "
                    "other group; the between-group tests need at least two in each"
                )
            else:
                welch = stats.ttest_ind(x, y, equal_var=False)
                rs = stats.ranksums(x, y)
                mw = stats.mannwhitneyu(x, y, alternative="two-sided")
                row.update(
                    welch_t=float(welch.statistic),
                    welch_df=float(welch.df),
                    welch_p=float(welch.pvalue),
                    ranksum_z=float(rs.statistic),
                    ranksum_p=float(rs.pvalue),
                    mwu_u=float(mw.statistic),
                    mwu_p=float(mw.pvalue),
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def plot_compute_and_gpu(
    tokens: EventStudyResult,
    equities: EventStudyResult | None,
    compute: Sequence[str],
    gpu: Sequence[str] = ("NVDA", "AMD"),
    *,
    title: str = "Compute tokens and GPU makers: cumulative abnormal return",
) -> Figure:
    """One figure: the CAR path of each compute token (UTC days) beside NVDA and AMD (NYSE
    sessions), each on its own calendar, so day k is the k-th session of the asset's market."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plotted = 0
    for res, names, style, cal in (
        (tokens, compute, "-", "UTC days"),
        (equities, gpu, "--", "NYSE sessions"),
    ):
        if res is None:
            continue
        ar = res.abnormal_returns
        for event, asset in ar.columns:
            if asset not in set(names):
                continue
            path = ar[(event, asset)].cumsum()
            ax.plot(
                path.index, path.to_numpy() * 100, style, marker="o", ms=3, label=f"{asset} ({cal})"
            )
            plotted += 1
    ax.axvline(0, color="grey", lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("event day (each asset's own sessions)")
    ax.set_ylabel("cumulative abnormal return (%)")
    ax.set_title(title)
    if plotted:
        ax.legend(loc="best")
    else:
        ax.text(
            0.5,
            0.5,
            "no compute token or GPU maker in the study",
            ha="center",
            transform=ax.transAxes,
        )
    return fig


__all__ = [
    "GROUP_OF_ONE",
    "GroupResults",
    "fit_groups",
    "group_differences",
    "plot_compute_and_gpu",
]
