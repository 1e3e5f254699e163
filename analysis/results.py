"""Read-only results of an event study, with statsmodels-style summary and JSON export.

Where the textbook and estudy2 differ (``convention=``):

1. Residual variance: textbook :math:`SSR/(L_1-2)` (MacKinlay 1997), estudy2 :math:`SSR/(L_1-1)`.
2. Forecast-error term: textbook takes the market mean and :math:`S_{mm}` over the regression days
   of each asset; estudy2 over every estimation day with a market return (also before a listing).
3. Rank and sign tests on unbalanced days: textbook sums the pairs present and divides
   :math:`\\sum_t \\bar d_t^2` by the T days with data (Corrado 1989; Corrado & Zivney 1992);
   estudy2 rescales the sum by :math:`N/N_t` and divides by the pairs' mean number of days.
   Textbook CAR windows use the pairs that have the CAR (one pair set for every test).
4. Generalized sign :math:`\\hat p`: textbook averages per-pair shares (Cowan 1992), of positive
   estimation-period CARs of the window's length for multi-day windows; estudy2 pools the daily
   residuals.
5. Sign and generalized sign p-values: textbook exact binomial, estudy2 the normal approximation.

The default is ``"textbook"``: it follows the cited papers and DESIGN.md section 5, is unbiased when
histories are unbalanced (as they are for tokens listing at different dates), and equals estudy2
when every pair has a complete estimation window. ``"estudy2"`` reproduces the R package exactly.
"""

from __future__ import annotations

import json
import math
import textwrap
from functools import cached_property
from typing import Any, Protocol

import pandas as pd
from statsmodels.iolib.summary2 import Summary, _df_to_simpletable, _simple_tables

from analysis.crosssection import TOO_FEW_ASSETS
from analysis.cstests import HEADLINE_TEST, SUMMARY_TESTS, TESTS
from analysis.models import MODELS
from analysis.statistics import TestStatistic, pvalue_t


def _jsonable(frame: pd.DataFrame, hourly: bool = False) -> list[dict[str, Any]]:
    """Records of plain Python values: floats at full precision (``json`` writes the shortest
    repr that round-trips, so a reader gets the same double; pandas' ``to_json`` would round to
    15 digits), NaN/NaT as ``None``, dates as ISO text."""
    df = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
    df = df.copy()
    fmt = "%Y-%m-%dT%H:%M:%SZ" if hourly else "%Y-%m-%d"
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = df[col].dt.strftime(fmt)
    obj = df.astype(object)
    records: list[dict[str, Any]] = obj.where(df.notna(), None).to_dict(orient="records")
    return [{str(k): _plain(v) for k, v in r.items()} for r in records]


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value ``json`` writes (non-finite floats as ``None``)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class ResultSource(Protocol):
    """Builds each labelled output of a fit (:class:`analysis.eventstudy.StudyOutputs`)."""

    def spec(self) -> dict[str, Any]: ...
    def params(self) -> pd.DataFrame: ...
    def abnormal_returns(self) -> pd.DataFrame: ...
    def ar_std(self) -> pd.DataFrame: ...
    def ar_dates(self) -> pd.DataFrame: ...
    def car(self) -> pd.DataFrame: ...
    def car_std(self) -> pd.DataFrame: ...
    def car_df(self) -> pd.Series: ...
    def tests(self) -> pd.DataFrame: ...
    def excluded(self) -> pd.DataFrame: ...
    def flags(self) -> pd.DataFrame: ...
    def portfolios(self) -> pd.DataFrame: ...
    def mappings(self) -> pd.DataFrame: ...


class EventStudyResult:
    """Results of :meth:`analysis.EventStudy.fit` (read-only; every property is labelled).

    Pairs are indexed by ``(event, asset)``; event days by their offset ``day`` from day 0 (on
    the hourly clock, hours by their offset ``hour`` from hour 0; the tidy frames keep the daily
    shape, with ``kind == "day"`` meaning one period).
    ``fit`` computes every number; each labelled frame is built once, when first read, and the
    public properties return copies.
    """

    def __init__(self, source: ResultSource) -> None:
        self._source = source

    @cached_property
    def _spec(self) -> dict[str, Any]:
        return self._source.spec()

    @cached_property
    def _params(self) -> pd.DataFrame:
        return self._source.params()

    @cached_property
    def _ar(self) -> pd.DataFrame:
        return self._source.abnormal_returns()

    @cached_property
    def _ar_std(self) -> pd.DataFrame:
        return self._source.ar_std()

    @cached_property
    def _ar_dates(self) -> pd.DataFrame:
        return self._source.ar_dates()

    @cached_property
    def _car(self) -> pd.DataFrame:
        return self._source.car()

    @cached_property
    def _car_std(self) -> pd.DataFrame:
        return self._source.car_std()

    @cached_property
    def _car_df(self) -> pd.Series:
        return self._source.car_df()

    @cached_property
    def _tests(self) -> pd.DataFrame:
        return self._source.tests()

    @cached_property
    def _excluded(self) -> pd.DataFrame:
        return self._source.excluded()

    @cached_property
    def _flags(self) -> pd.DataFrame:
        return self._source.flags()

    @cached_property
    def _portfolios(self) -> pd.DataFrame:
        return self._source.portfolios()

    @cached_property
    def _mappings(self) -> pd.DataFrame:
        return self._source.mappings()

    # ------------------------------------------------------------------ labelled outputs
    @property
    def spec(self) -> dict[str, Any]:
        """Full, JSON-serialisable specification, with resolved benchmarks, calendars and the
        SHA-256 of the input data; ``EventStudy.from_spec(spec)`` rebuilds the model."""
        return json.loads(json.dumps(self._spec))

    @property
    def params(self) -> pd.DataFrame:
        """Per pair: class, calendar, benchmark, day 0, estimation span, nobs, alpha, beta, their
        OLS standard errors and sigma."""
        return self._params.copy()

    @property
    def nobs(self) -> pd.Series:
        """Estimation observations per pair."""
        return self._params["nobs"].copy()

    @property
    def abnormal_returns(self) -> pd.DataFrame:
        """Abnormal returns: rows are event days, columns ``(event, asset)``."""
        return self._ar.copy()

    @property
    def ar_std(self) -> pd.DataFrame:
        """Forecast-error-corrected standard deviations of the abnormal returns."""
        return self._ar_std.copy()

    @property
    def ar_tstat(self) -> pd.DataFrame:
        """t statistics of the abnormal returns."""
        return self._ar / self._ar_std

    @property
    def ar_pvalue(self) -> pd.DataFrame:
        """Two-sided p-values of the abnormal returns, Student t with the model's d.o.f."""
        df = self._car_df.reindex(self._ar.columns).to_numpy()
        return pd.DataFrame(
            pvalue_t(self.ar_tstat.to_numpy(), df[None, :]),
            index=self._ar.index,
            columns=self._ar.columns,
        )

    @property
    def event_dates(self) -> pd.DataFrame:
        """Calendar date of each event day of each pair (its own sessions)."""
        return self._ar_dates.copy()

    @property
    def car(self) -> pd.DataFrame:
        """Cumulative abnormal returns: rows ``(event, asset)``, columns CAR windows."""
        return self._car.copy()

    @property
    def car_std(self) -> pd.DataFrame:
        """Standard deviations of the CARs (MacKinlay's CAR variance, not summed daily ones)."""
        return self._car_std.copy()

    @property
    def car_tstat(self) -> pd.DataFrame:
        """t statistics of the CARs."""
        return self._car / self._car_std

    @property
    def car_pvalue(self) -> pd.DataFrame:
        """Two-sided p-values of the CARs."""
        return pd.DataFrame(
            pvalue_t(self.car_tstat.to_numpy(), self._car_df.to_numpy()[:, None]),
            index=self._car.index,
            columns=self._car.columns,
        )

    @property
    def tests(self) -> pd.DataFrame:
        """Tidy cross-sectional tests: ``group, kind (day|car), window, start, end, test, mean,
        stat, pvalue, pvalue_holm, n, too_few_assets, dist, null, reason``. Groups: ``all``,
        ``event=...``, ``class=...``. ``mean`` is the group's mean AR of the day or mean CAR of
        the window at full precision; ``pvalue_holm`` is Holm-adjusted across the CAR windows
        of the group and test (NaN for days); ``too_few_assets`` flags parametric tests with
        fewer than five pairs."""
        return self._tests.copy()

    @property
    def headline(self) -> pd.DataFrame:
        """The Kolari-Pynnonen adjusted BMP test over all pairs, per CAR window: ``window, mean
        (CAAR), stat, pvalue, pvalue_holm, n, too_few_assets, dist, reason``. When
        ``too_few_assets`` is true (N < 5) the parametric statistic is no evidence on its own: a
        headline should fall back to placebo (calendar-time) inference."""
        t = self._tests
        sel = (t["group"] == "all") & (t["test"] == HEADLINE_TEST) & (t["kind"] == "car")
        cols = [
            "window",
            "mean",
            "stat",
            "pvalue",
            "pvalue_holm",
            "n",
            "too_few_assets",
            "dist",
            "reason",
        ]
        return t.loc[sel, cols].reset_index(drop=True)

    @property
    def too_few_assets(self) -> bool:
        """Whether the headline test over all pairs has fewer than five pairs in any CAR window
        (its parametric p-values are then flagged and shown without stars)."""
        return bool(self.headline["too_few_assets"].any())

    @property
    def excluded(self) -> pd.DataFrame:
        """Pairs left out, with the reason (``event, asset, reason``)."""
        return self._excluded.copy()

    @property
    def flags(self) -> pd.DataFrame:
        """Warnings on kept pairs: confounders inside event windows, overlapping windows."""
        return self._flags.copy()

    @property
    def portfolios(self) -> pd.DataFrame:
        """Equal- and cap-weighted portfolio CARs per event and asset class (robustness)."""
        return self._portfolios.copy()

    @property
    def event_mappings(self) -> pd.DataFrame:
        """Day 0 of every event on every calendar, with the rule that placed it."""
        return self._mappings.copy()

    def test(self, name: str, window: str = "[0,0]", group: str = "all") -> TestStatistic:
        """One cross-sectional test as a :class:`~analysis.statistics.TestStatistic`.

        ``window`` is a CAR label such as ``"[0,1]"`` or a day such as ``"+1"``.
        """
        t = self._tests
        row = t[(t["test"] == name) & (t["window"] == window) & (t["group"] == group)]
        if row.empty:
            raise KeyError(f"No test {name!r} for window {window!r} in group {group!r}.")
        r = row.iloc[0]
        return TestStatistic(
            name=name,
            stat=float(r["stat"]),
            pvalue=float(r["pvalue"]),
            null=str(r["null"]),
            dist_name=str(r["dist"]),
            n=int(r["n"]),
            reason=r["reason"] or None,
        )

    # ------------------------------------------------------------------ exports
    def to_frame(self) -> pd.DataFrame:
        """Per-pair results in long form, one row per pair and day or CAR window.

        Columns: ``event, asset, kind, window, start, end, value, std, tstat, pvalue, df,
        mean``; ``mean`` is the mean AR of the day (AAR) or mean CAR of the window (CAAR) over
        the pairs of the row's event that have it, at full precision.
        """
        ar = self._ar.T.stack().rename("value")
        sd = self._ar_std.T.stack().rename("std")
        days = pd.concat([ar, sd], axis=1).reset_index()
        period = str(self._ar.index.name)  # "day", or "hour" on the hourly clock
        days["kind"] = "day"
        days["start"] = days["end"] = days[period]
        days["window"] = days[period].map(lambda d: f"{d:+d}" if d else "0")
        days = days.drop(columns=period)
        car = self._car.stack().rename("value")
        csd = self._car_std.stack().rename("std")
        cars = pd.concat([car, csd], axis=1).reset_index()
        cars["kind"] = "car"
        bounds = cars["window"].str.strip("[]").str.split(",", expand=True).astype(int)
        cars["start"], cars["end"] = bounds[0], bounds[1]
        out = pd.concat([days, cars], ignore_index=True)
        out["tstat"] = out["value"] / out["std"]
        dfs = self._car_df.reindex(pd.MultiIndex.from_frame(out[["event", "asset"]])).to_numpy()
        out["df"] = dfs.astype(int)
        out["pvalue"] = pvalue_t(out["tstat"].to_numpy(), dfs)
        out["mean"] = out.groupby(["event", "kind", "window"], sort=False)["value"].transform(
            "mean"
        )
        return out[
            [
                "event",
                "asset",
                "kind",
                "window",
                "start",
                "end",
                "value",
                "std",
                "tstat",
                "pvalue",
                "df",
                "mean",
            ]
        ]

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to store and reproduce the run, as plain Python objects."""
        hourly = self._spec.get("interval") == "1h"
        return {
            "spec": self.spec,  # holds "interval" ("1d" or "1h")
            "event_mappings": _jsonable(self._mappings),
            "params": _jsonable(self._params, hourly),
            "results": _jsonable(self.to_frame()),
            "tests": _jsonable(self._tests),
            "excluded": _jsonable(self._excluded),
            "flags": _jsonable(self._flags),
            "portfolios": _jsonable(self._portfolios),
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (NaN becomes null)."""
        return json.dumps(self.to_dict(), **kwargs)

    # ------------------------------------------------------------------ display
    def summary(self) -> Summary:
        """A statsmodels ``Summary`` (``as_text``, ``as_html``) of the study."""
        spec = self._spec
        res = spec.get("resolved", {})
        n_events = len(spec["events"])
        bench = (
            ", ".join(
                sorted(
                    {
                        f"{res.get('asset_classes', {}).get(a, '?')}: {b}"
                        for a, b in res.get("benchmarks", {}).items()
                        if b
                    }
                )
            )
            or "none"
        )
        hourly = spec.get("interval") == "1h"
        unit = "hours" if hourly else "sessions"
        info = {
            "Model:": MODELS[spec["model"]],
            "Returns:": spec["return_kind"] if res.get("input") == "prices" else "as given",
            "Estimation window:": str(spec["estimation_window"]) + (f" {unit}" if hourly else ""),
            "Event window:": str(spec["event_window"]) + (f" {unit}" if hourly else ""),
            "Benchmarks:": bench,
            "Convention:": spec["convention"],
            "Events:": str(n_events),
            "Pairs kept / excluded:": f"{len(self._params)} / {len(self._excluded)}",
            "Min. estimation obs.:": str(spec["min_estimation_obs"]),
            "Day-0 policy:": spec["event_policy"],
        }
        if hourly:
            del info["Day-0 policy:"]
            info["Clock:"] = "1h (every UTC hour)"
            info["Hour-0 policy:"] = spec["event_policy"]
        smry = _NarrowSummary()
        smry.add_title("Event Study Results")
        smry.add_dict(info, ncols=2)

        t = self._tests
        car_rows = t[(t["group"] == "all") & (t["kind"] == "car")]
        caar = self._car.mean(axis=0)
        table = pd.DataFrame(index=list(self._car.columns))
        table.index.name = "window"
        table["CAAR"] = caar.map(lambda v: f"{v:.4f}")
        table["N"] = self._car.notna().sum(axis=0).astype(str)
        for code in SUMMARY_TESTS:
            sub = car_rows[car_rows["test"] == code].set_index("window")
            table[TESTS[code].short_label] = [_fmt_stat(sub, w) for w in table.index]
        _add_blocks(smry, table)
        smry.add_text(
            "Cells show statistic (two-sided p-value); headline test: KP-BMP "
            "(Kolari & Pynnonen 2010), robust to cross-correlation of pairs sharing a date."
        )
        # as text lines, so the tables keep their widths
        head = car_rows[car_rows["test"] == HEADLINE_TEST]
        holm = [
            f"{w} {p:.3f}"
            for w, p in zip(head["window"], head["pvalue_holm"], strict=True)
            if math.isfinite(p)
        ]
        if holm:
            smry.add_text(
                "KP-BMP p-values Holm-adjusted across the CAR windows: " + ", ".join(holm) + "."
            )
        few = car_rows[car_rows["too_few_assets"]]
        if not few.empty:
            windows = ", ".join(dict.fromkeys(few["window"]))
            smry.add_text(
                f"Flag {TOO_FEW_ASSETS} in {windows}: the parametric tests (t, Patell, BMP, "
                "KP-BMP, Brown-Warner, Lamb) rest on fewer than five assets; their p-values are "
                "no evidence on their own (no stars) -- use placebo (calendar-time) inference."
            )

        pair_tab = self._car.map(lambda v: "" if v != v else f"{v:.4f}")
        tstat = self.car_tstat
        pair_tab = pair_tab + tstat.map(lambda v: "" if v != v else f" ({v:.2f})")
        beta = self._params["beta"].map(lambda v: f"{v:.3f}")
        pair_tab.insert(0, "beta", beta)
        pair_tab.index = [f"{e}/{a}" for e, a in pair_tab.index]
        _add_blocks(smry, pair_tab)
        smry.add_text("Per-pair CARs with t statistics (forecast-error-corrected variance).")

        if not self._portfolios.empty:
            ok = self._portfolios[self._portfolios["reason"] == ""]
            if not ok.empty:
                cell = ok["car"].map(lambda v: f"{v:.4f}") + ok["tstat"].map(
                    lambda v: f" ({v:.2f})"
                )
                port = ok.assign(
                    cell=cell, row=ok["event"] + " " + ok["group"] + " " + ok["weighting"]
                ).pivot(index="row", columns="window", values="cell")
                port = port[[c for c in self._car.columns if c in port.columns]]
                port.index.name = None
                _add_blocks(smry, port)
                smry.add_text("Portfolio CARs (t) from the portfolio's own market model.")
        notes = [f"{'Hour' if hourly else 'Day'}-0 policy: {spec['event_policy_text']}."]
        for _, m in self._mappings.iterrows():
            if hourly:
                notes.append(
                    f"Event {m['event']}: {m['requested']} -> hour 0 = {m['session']} "
                    f"({m['reason']})."
                )
            elif m["moved"]:
                notes.append(
                    f"Event {m['event']} on {m['calendar']}: {m['requested']} -> "
                    f"{m['session']} ({m['reason']})."
                )
        for _, r in self._excluded.iterrows():
            notes.append(f"Excluded {r['asset']} / {r['event']}: {r['reason']}.")
        for _, r in self._flags.iterrows():
            notes.append(f"Flag {r['asset']} / {r['event']} ({r['flag']}): {r['detail']}.")
        bad = self._portfolios[self._portfolios["reason"] != ""]
        for (ev, grp, w), sub in bad.groupby(["event", "group", "weighting"]):
            notes.append(
                f"Portfolio {ev} {grp} {w}-weighted: not computed ({sub['reason'].iloc[0]})."
            )
        if "left_out" in self._portfolios.columns:
            part = self._portfolios[self._portfolios["left_out"].fillna("") != ""]
            for (ev, grp, w), sub in part.groupby(["event", "group", "weighting"]):
                notes.append(
                    f"Portfolio {ev} {grp} {w}-weighted: over the {int(sub['members'].iloc[0])} "
                    f"members with a market cap; left out {sub['left_out'].iloc[0]}."
                )
        for note in notes:
            smry.add_text(note)
        return smry

    def __str__(self) -> str:
        return self.summary().as_text()

    def __repr__(self) -> str:
        events = ", ".join(e["name"] for e in self._spec["events"])
        return (
            f"<EventStudyResult events=[{events}] pairs={len(self._params)} "
            f"excluded={len(self._excluded)} model={self._spec['model']!r}>"
        )

    def _repr_html_(self) -> str:
        return self.summary().as_html()


SUMMARY_WIDTH = 100
"""Columns of the text summary: terminals and pasted notes want 100 (issue 19 item 8)."""


def _text_width(frame: pd.DataFrame) -> int:
    """Width of ``frame`` as statsmodels renders it alone (the renderer ``Summary.as_text``
    uses, so the measure is exact rather than estimated)."""
    return len(_df_to_simpletable(frame, header=True, index=True).as_text().splitlines()[0])


class _NarrowSummary(Summary):
    """statsmodels' ``Summary`` whose text keeps each table at its own width.

    ``Summary.as_text`` pads every table to the widest one, and its padding overshoots (it
    spreads the difference over one separator too few, so the per-pair table came out wider
    than the widest); here each block is rendered as it is, the rules and the notes are as
    wide as the widest block (at most :data:`SUMMARY_WIDTH` when the blocks fit). The HTML
    view is statsmodels' own."""

    def as_text(self) -> str:
        blocks = [t.as_text() for t in _simple_tables(self.tables, self.settings)]
        lines = "\n".join(blocks).split("\n")
        widest = max((len(line) for line in lines), default=0)
        rule = "=" * widest
        lines[0] = rule
        lines.append(rule)
        title = self.title or ""
        if len(title) < widest:
            title = " " * int(widest / 2 - len(title) / 2) + title
        notes = ["\n".join(textwrap.wrap(x, widest)) for x in self.extra_txt]
        return f"{title}\n" + "\n".join(lines) + "\n" + "\n".join(notes)


def _add_blocks(smry: Summary, frame: pd.DataFrame, width: int = SUMMARY_WIDTH) -> None:
    """Add ``frame`` as one table per block of consecutive columns that fits ``width``, each
    block repeating the row labels (so six CAR windows wrap into two blocks instead of one
    136-column table); a single column wider than ``width`` stays a block of its own."""
    blocks: list[list[Any]] = []
    for col in frame.columns:
        if blocks and _text_width(frame[[*blocks[-1], col]]) <= width:
            blocks[-1].append(col)
        else:
            blocks.append([col])
    for cols in blocks or [[]]:
        smry.add_df(frame[cols], index=True, header=True)


def _fmt_stat(sub: pd.DataFrame, window: str) -> str:
    if window not in sub.index:
        return ""
    r = sub.loc[window]
    if r["reason"]:
        return "n/a"
    fmt = TESTS[r["test"]].format_stat(r["stat"])
    p = r["pvalue"]
    return f"{fmt} ({p:.3f})" if math.isfinite(p) else fmt


__all__ = ["HEADLINE_TEST", "SUMMARY_TESTS", "TESTS", "EventStudyResult"]
