"""Figures and report tables for the notebooks: event-study paths, prices, sector panels.

Every ``plot_*`` function takes labelled pandas objects and returns a matplotlib ``Figure`` with a
title, axis labels with units, the event day marked, and fonts legible at report width. Nothing
here reads the warehouse or fits a model; the shaping helpers (``indexed_event_prices``,
``ar_car_paths``, ``test_table``) turn an :class:`~analysis.EventStudyResult` into frames that
the plots and the report tables use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter
from scipy import stats

from analysis import cstests
from analysis.calendars import HOURLY
from analysis.crosssection import TOO_FEW_ASSETS
from analysis.cstests import TESTS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

REPORT_RC: dict[RcKeyType, Any] = {
    "figure.figsize": (12.0, 5.5),
    "figure.dpi": 100,
    "savefig.dpi": 130,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 14,
    "axes.titleweight": "bold",
    "axes.labelsize": 12,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.constrained_layout.use": True,
}
EVENT_COLOR = "#d62728"
SERIES_COLORS = {
    "NVDA": "#ff7f0e",
    "BTC": "#2ca02c",
    "AMD": "#9467bd",
    "SPY": "#7f7f7f",
    "QQQ": "#8c564b",
}


def series_color(label: str, i: int) -> str | tuple[float, float, float, float]:
    """A fixed colour for well-known series (NVDA orange, BTC green...), else tab10 by order."""
    for key, color in SERIES_COLORS.items():
        if label == key or label.endswith(f" {key}"):
            return color
    return plt.get_cmap("tab10")(i % 10)


CONFOUNDER_COLOR = "#1f77b4"
BAND_ALPHA = 0.18
REPORT_TESTS: tuple[tuple[str, str], ...] = tuple(
    (code, TESTS[code].report_label) for code in cstests.REPORT_TESTS
)
"""(code, column header) of the report table's tests, from :data:`analysis.cstests.REPORT_TESTS`:
the headline first (Kolari & Pynnonen 2010), then the robust ones."""


def use_report_style() -> None:
    """Apply the report's matplotlib settings (sizes, grid, tight layout), and make every
    pandas ``Styler`` table HTML-escape its cells: names and descriptions come from APIs and
    the event catalog, and a Styler, unlike ``DataFrame.to_html``, writes them raw by default.
    """
    matplotlib.rcParams.update(REPORT_RC)
    pd.set_option("styler.format.escape", "html")
    _escape_styler_cells()


def _escape_styler_cells() -> None:
    """Make ``Styler.format`` escape HTML unless told otherwise: the option above covers
    ``df.style``, but each later ``.style.format({...})`` call resets the columns it does not
    name to unescaped, so the default must live in ``format`` itself."""
    from pandas.io.formats.style import Styler

    if getattr(Styler.format, "_aitokens_escapes", False):
        return
    plain = Styler.format

    @functools.wraps(plain)
    def format_escaped(self, *args: Any, **kwargs: Any):
        if len(args) < 7:  # ``escape`` is the seventh parameter after self
            kwargs.setdefault("escape", "html")
        return plain(self, *args, **kwargs)

    format_escaped._aitokens_escapes = True  # type: ignore[attr-defined]
    Styler.format = format_escaped


@dataclass(frozen=True)
class Marker:
    """A dated vertical line on a time axis (the event, a confounder, another event)."""

    date: pd.Timestamp
    label: str
    kind: str = "event"  # event | confounder | other


def _usd_bn(ax, axis: str = "y") -> None:
    fmt = FuncFormatter(
        lambda v, _: f"${v / 1e9:,.0f}bn" if abs(v) >= 1e10 else f"${v / 1e9:,.1f}bn"
    )
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _date_axis(ax) -> None:
    loc = mdates.AutoDateLocator(minticks=5, maxticks=12)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def mark_dates(ax, markers: Iterable[Marker], *, label_top: bool = True) -> None:
    """Vertical lines for dated markers; the studied event in red, confounders in blue.

    Labels run down from the top of the axes beside their line; labels of nearby dates are
    pushed right, just clear of each other, at every draw (:class:`_LabelPacker`), so they
    never overprint whatever the figure's final size.
    """
    ymax = ax.get_ylim()[1]
    labels = []
    for m in markers:
        style = {
            "event": {"color": EVENT_COLOR, "ls": "-", "lw": 1.8},
            "confounder": {"color": CONFOUNDER_COLOR, "ls": ":", "lw": 1.6},
        }.get(m.kind, {"color": "0.45", "ls": "--", "lw": 1.0})
        ax.axvline(pd.Timestamp(m.date), **style, zorder=1)
        if label_top:
            ann = ax.annotate(
                m.label,
                xy=(pd.Timestamp(m.date), ymax),
                xytext=_LABEL_OFFSET,
                textcoords="offset points",
                rotation=90,
                va="top",
                ha="left",
                fontsize=9,
                color=style["color"],
            )
            ann.set_in_layout(False)  # packing moves it; the layout must not depend on that
            labels.append(ann)
    if len(labels) > 1:
        ax.add_artist(_LabelPacker(labels))


_LABEL_OFFSET = (3.0, -4.0)  # points right of and below the marker's top


class _LabelPacker(Artist):
    """Draws nothing; before the labels are drawn (lowest zorder), shifts each marker label
    right just enough to clear the one before it, in date order (a greedy 1-D packing on the
    rendered text extents, so it holds for any figure size and font)."""

    def __init__(self, labels: list, gap_points: float = 1.5) -> None:
        super().__init__()
        self._labels = labels
        self._gap = gap_points
        self.set_zorder(-100)
        self.set_in_layout(False)

    def draw(self, renderer) -> None:
        px_per_pt = renderer.points_to_pixels(1.0)
        right = -np.inf
        for ann in self._labels:
            ann.xyann = _LABEL_OFFSET
        boxes = {id(a): a.get_window_extent(renderer) for a in self._labels}
        for ann in sorted(self._labels, key=lambda a: boxes[id(a)].x0):
            box = boxes[id(ann)]
            shift = max(0.0, right + self._gap * px_per_pt - box.x0)
            if shift:
                ann.xyann = (_LABEL_OFFSET[0] + shift / px_per_pt, _LABEL_OFFSET[1])
            right = box.x1 + shift
        self.stale = False


def mark_event_day(
    ax,
    label: str = "day 0 (event)",
    confounder_day: float | None = None,
    confounder_label: str = "confounder",
) -> None:
    """Mark day 0 of an event-time axis (and a confounder's day, when it falls in the window)."""
    ax.axvline(0, color=EVENT_COLOR, lw=1.6, label=label, zorder=1)
    if confounder_day is not None:
        ax.axvline(
            confounder_day, color=CONFOUNDER_COLOR, lw=1.4, ls=":", label=confounder_label, zorder=1
        )


def save_figure(fig: Figure, directory: str | Path | None, name: str) -> Path | None:
    """Write ``fig`` as ``<directory>/<name>.png`` (no-op when ``directory`` is None)."""
    if directory is None:
        return None
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=REPORT_RC["savefig.dpi"], bbox_inches="tight", facecolor="white")
    return path


def figure_title(fig: Figure) -> str:
    """The figure's suptitle, else its first axes title (used as alternative text)."""
    sup = fig.get_suptitle()
    return sup or next((ax.get_title() for ax in fig.axes if ax.get_title()), "figure")


def show(fig: Figure, directory: str | Path | None = None, name: str = "figure") -> None:
    """Render ``fig`` once: write ``<directory>/<name>.png`` (when a directory is given),
    display the same PNG in the notebook, and close the figure (no second render)."""
    import io

    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=REPORT_RC["savefig.dpi"], bbox_inches="tight", facecolor="white"
    )
    plt.close(fig)
    data = buf.getvalue()
    if directory is not None:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.png").write_bytes(data)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python: writing the file is all there is to do
        return None
    if get_ipython() is not None:
        width = int(min(fig.get_figwidth() * 100, 1200))
        display(Image(data=data, format="png", width=width, metadata={"alt": figure_title(fig)}))
    return None


# --------------------------------------------------------------------------- event-study shaping
def cumulative_windows(event_window: Sequence[int]) -> list[tuple[int, int]]:
    """CAR windows ``[first, d]`` for every day ``d`` of the event window (the CAR path)."""
    lo, hi = (int(v) for v in event_window)
    return [(lo, d) for d in range(lo, hi + 1)]


def indexed_event_prices(
    closes: pd.DataFrame,
    day0: pd.Timestamp,
    *,
    window: Sequence[int] = (-5, 10),
    base_day: int = -5,
    base: float = 100.0,
) -> pd.DataFrame:
    """Closes around an event, counted in the frame's own rows, indexed to ``base`` on
    ``base_day``.

    ``closes`` is wide on ONE calendar: its index must hold every session of that calendar in
    the window (crypto: every day; equities: the session dates). Day 0 is the first row on or
    after ``day0``. Returns a frame indexed by ``day`` (event time) with one column per symbol
    and a ``date`` column.
    """
    lo, hi = (int(v) for v in window)
    if not lo <= base_day <= hi:
        raise ValueError(f"base_day {base_day} lies outside the window [{lo}, {hi}].")
    idx = closes.index
    pos = int(idx.searchsorted(pd.Timestamp(day0)))
    rows = np.arange(pos + lo, pos + hi + 1)
    ok = (rows >= 0) & (rows < len(idx))
    block = pd.DataFrame(
        np.nan, index=pd.RangeIndex(lo, hi + 1, name="day"), columns=closes.columns
    )
    dates = pd.Series(pd.NaT, index=block.index, dtype="datetime64[ns]")
    block.loc[block.index[ok]] = closes.to_numpy()[rows[ok]]
    dates[block.index[ok]] = idx[rows[ok]]
    levels = block / block.loc[base_day] * base
    levels.insert(0, "date", dates)
    return levels


def ar_car_paths(path_result, *, level: float = 0.95) -> pd.DataFrame:
    """AR and CAR paths with two-sided ``level`` bands from a fit whose CAR windows are
    :func:`cumulative_windows` of its event window.

    Bands use Student t quantiles with each pair's residual degrees of freedom, the ARs'
    forecast-error-corrected standard deviations and MacKinlay's CAR variance (not summed daily
    variances). Returns a tidy frame ``event, asset, day, date, ar, ar_lo, ar_hi, car, car_lo,
    car_hi`` (fractions: 0.05 = +5%).
    """
    ar, sd = path_result.abnormal_returns, path_result.ar_std
    car, car_sd = path_result.car, path_result.car_std
    dfs = path_result.params["df"]
    dates = path_result.event_dates
    ev0 = int(ar.index.min())
    rows = []
    for key in ar.columns:
        q = float(stats.t.ppf(0.5 + level / 2, dfs.loc[key]))
        for day in ar.index:
            label = f"[{ev0},{int(day)}]"
            c = car.loc[key, label] if label in car.columns else np.nan
            cs = car_sd.loc[key, label] if label in car_sd.columns else np.nan
            a, s = ar.loc[day, key], sd.loc[day, key]
            rows.append(
                {
                    "event": key[0],
                    "asset": key[1],
                    "day": int(day),
                    "date": dates.loc[day, key],
                    "ar": a,
                    "ar_lo": a - q * s,
                    "ar_hi": a + q * s,
                    "car": c,
                    "car_lo": c - q * cs,
                    "car_hi": c + q * cs,
                }
            )
    return pd.DataFrame(rows)


def test_table(result, group: str = "all", *, windows: Sequence[str] | None = None) -> pd.DataFrame:
    """The report's test table for one group: CAAR, N and each test as "stat (p)".

    Columns: ``CAAR`` (percent), ``N``, then :data:`REPORT_TESTS` with the Kolari-Pynnonen
    adjusted BMP first; rows are the CAR windows. A test that could not be computed shows its
    reason.
    """
    t = result.tests
    sel = t[(t["group"] == group) & (t["kind"] == "car")]
    if sel.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(sel["window"])) if windows is None else list(windows)
    out = pd.DataFrame(index=pd.Index(order, name="CAR window"))
    car = result.car
    if group.startswith("class="):
        cls = group.split("=", 1)[1]
        keys = result.params.index[result.params["asset_class"] == cls]
        car = car.loc[keys]
    elif group.startswith("event="):
        ev = group.split("=", 1)[1]
        car = car.loc[[k for k in car.index if k[0] == ev]]
    out["CAAR"] = [f"{100 * car[w].mean():+.2f}%" if w in car.columns else "" for w in order]
    out["N"] = [int(car[w].notna().sum()) if w in car.columns else 0 for w in order]
    for code, name in REPORT_TESTS:
        sub = sel[sel["test"] == code].set_index("window")
        cells = []
        for w in order:
            if w not in sub.index:
                cells.append("")
                continue
            r = sub.loc[w]
            if r["reason"]:
                cells.append(f"n/a ({r['reason']})")
                continue
            stat = TESTS[code].format_stat(r["stat"])
            p = r["pvalue"]
            if bool(r.get("too_few_assets", False)):  # no stars below five assets
                cells.append(f"{stat} (p={p:.3f}, {TOO_FEW_ASSETS})")
                continue
            star = "**" if p < 0.01 else "*" if p < 0.05 else ""
            cells.append(f"{stat} (p={p:.3f}){star}" if np.isfinite(p) else stat)
        out[name] = cells
    return out


def confounder_days(result, events: Iterable) -> dict[str, tuple[int, str]]:
    """Event day (in each pair's own sessions) on which a confounding event falls, per asset.

    ``events`` are :class:`~analysis.events.Event` objects; each is mapped to the pair's own
    calendar (NVIDIA's results after the US close land on the next NYSE session but on the same
    UTC day for crypto). Returns ``{asset: (day, event description)}`` for the first hit.
    """
    dates = result.event_dates
    cal = result.params["calendar"]
    out: dict[str, tuple[int, str]] = {}
    for ev in events:
        for key in dates.columns:
            if key[1] in out:
                continue
            sess = ev.map(cal.loc[key]).session
            sess = sess if cal.loc[key] == HOURLY else sess.normalize()
            session = np.datetime64(sess.tz_localize(None))
            hit = np.flatnonzero(dates[key].to_numpy() == session)
            if hit.size:
                out[key[1]] = (int(dates.index[hit[0]]), ev.description or ev.name)
    return out


PORTFOLIO_LABEL = "equal-weight portfolio"


def hourly_car_paths(path_result, *, level: float = 0.95) -> pd.DataFrame:
    """CAR paths with two-sided ``level`` bands of every token and of the equal-weight portfolio
    from an hourly fit whose CAR windows are :func:`cumulative_windows` of its event window and
    which estimates portfolios (``portfolios=True``).

    Tokens as :func:`ar_car_paths`; the portfolio is the engine's equal-weight portfolio with its
    own market model, so its variance holds the tokens' cross-correlation. Its band uses Student t
    with :math:`L_1 - 2` degrees of freedom and MacKinlay's (1997) CAR variance
    :math:`\\sigma^2 [L + L^2/L_1 + (\\sum_t (R_{mt} - \\hat\\mu_m))^2 / S_{mm}]`. Returns
    ``event, asset, hour, date, ar, ar_lo, ar_hi, car, car_lo, car_hi`` (fractions); ``date`` is
    the close time of the hour.
    """
    paths = ar_car_paths(path_result, level=level).rename(columns={"day": "hour"})
    spec = path_result.spec
    l1 = spec["estimation_window"][1] - spec["estimation_window"][0] + 1
    q = float(stats.t.ppf(0.5 + level / 2, l1 - 2))
    port = path_result.portfolios
    port = port[(port["weighting"] == "equal") & (port["reason"] == "")]
    dates = path_result.event_dates.iloc[:, 0]
    rows = []
    for r in port.itertuples(index=False):
        hour = int(str(r.window).strip("[]").split(",")[1])
        rows.append(
            {
                "event": r.event,
                "asset": PORTFOLIO_LABEL,
                "hour": hour,
                "date": dates.loc[hour],
                "car": r.car,
                "car_lo": r.car - q * r.std,
                "car_hi": r.car + q * r.std,
            }
        )
    return pd.concat([paths, pd.DataFrame(rows)], ignore_index=True)


def first_hours_sentence(
    result, windows: Sequence[tuple[int, str]] = ((0, "1 hour"), (5, "6 hours"), (23, "24 hours"))
) -> str:
    """One sentence naming the tokens whose CAR from hour 0 was significant (two-sided p < 0.05,
    t with each pair's residual degrees of freedom) within 1, 6 and 24 hours."""
    car, pv = result.car, result.car_pvalue
    parts = []
    for last, text in windows:
        label = f"[0,{last}]"
        if label not in car.columns:
            continue
        hits = [
            f"{asset} ({100 * car.loc[(ev, asset), label]:+.1f}%)"
            for ev, asset in car.index
            if pv.loc[(ev, asset), label] < 0.05
        ]
        parts.append(f"within {text} (CAR{label}): {', '.join(hits) if hits else 'none'}")
    if not parts:
        return "No CAR window starting at hour 0 was estimated."
    return (
        "Tokens whose abnormal return was significant at 5% "
        + "; ".join(parts)
        + f" (of {len(car)} tokens)."
    )


def plot_first_hours(
    paths: pd.DataFrame,
    assets: Sequence[str],
    *,
    announcement: pd.Timestamp,
    title: str,
    ncols: int = 4,
) -> Figure:
    """Small multiples of hourly CAR paths (line, 95% band), the equal-weight portfolio first,
    against hours after the announcement's hour; the announcement minute is marked in red.

    The x axis is the close time of each hour minus ``floor_hour(announcement)``: hour 0's
    return ends at x = 1; the announcement sits at x = its minute / 60.
    """
    t = pd.Timestamp(announcement)
    t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t
    base = t.floor("h")
    minute = (t - base) / pd.Timedelta(hours=1)
    assets = list(assets)
    n = max(len(assets), 1)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(14, 3.3 * nrows + 0.9), sharey=True, squeeze=False
    )
    for i, asset in enumerate(assets):
        ax = axes.flat[i]
        p = paths[paths["asset"] == asset].sort_values("hour")
        x = (pd.to_datetime(p["date"]) - base) / pd.Timedelta(hours=1)
        color = "#1f77b4" if asset == PORTFOLIO_LABEL else "#2ca02c"
        ax.plot(x, 100 * p["car"], color=color, lw=1.8, label="CAR")
        ax.fill_between(
            x,
            100 * p["car_lo"],
            100 * p["car_hi"],
            color=color,
            alpha=BAND_ALPHA,
            label="95% band",
        )
        ax.axhline(0, color="0.2", lw=0.8)
        ax.axvline(minute, color=EVENT_COLOR, lw=1.4, label=f"announcement {t:%H:%M} UTC", zorder=1)
        ax.set_title(asset, fontsize=11, fontweight="bold" if asset == PORTFOLIO_LABEL else None)
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_xticks(range(-24, int(x.max()) + 1, 24))
        if i % ncols == 0:
            ax.set_ylabel("CAR (%)")
        if i >= len(assets) - ncols:
            ax.set_xlabel(f"Hours after {base:%H:%M} UTC {base:%Y-%m-%d}")
        if i == 0:
            ax.legend(loc="upper left", fontsize=8)
    for ax in list(axes.flat)[len(assets) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    return fig


class Callout:
    """A highlighted paragraph for reports (``kind``: ``caveat`` in red, ``note`` in blue)."""

    def __init__(self, text: str, kind: str = "note") -> None:
        self.text, self.kind = text, kind

    def _repr_html_(self) -> str:
        import html
        import re

        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(self.text, quote=False))
        return f'<div class="aitokens-{self.kind}">{body}</div>'

    def _repr_markdown_(self) -> str:
        return f"**{self.kind.upper()}:** {self.text}"

    def __repr__(self) -> str:
        return f"{self.kind.upper()}: {self.text}"


# --------------------------------------------------------------------------- event-study figures
def plot_event_timeline(
    levels: pd.DataFrame,
    markers: Sequence[Marker],
    *,
    estimation: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    event_window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    title: str = "Event timeline",
    ylabel: str = "Index (first day = 100, log scale)",
) -> Figure:
    """Index levels over time with the estimation and event windows shaded and events marked."""
    fig, ax = plt.subplots(figsize=(12, 5.2))
    for i, col in enumerate(levels.columns):
        s = levels[col].dropna()
        ax.plot(s.index, s, lw=1.5, label=col, color=series_color(col, i))
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if estimation is not None:
        ax.axvspan(*estimation, color="0.85", alpha=0.6, label="estimation window", zorder=0)
    if event_window is not None:
        ax.axvspan(*event_window, color="#ffbb78", alpha=0.6, label="event window", zorder=0)
    _date_axis(ax)
    ax.set_title(title)
    ax.set_xlabel("Date (UTC days; equities: NYSE sessions)")
    ax.set_ylabel(ylabel)
    mark_dates(ax, markers)
    ax.legend(loc="upper left", ncols=2, frameon=True)
    return fig


def plot_indexed_prices(
    levels: pd.DataFrame,
    *,
    title: str,
    base_day: int = -5,
    confounder_day: float | None = None,
    confounder_label: str = "confounder",
    xlabel: str = "Event day (sessions of each asset's calendar; day 0 = event)",
) -> Figure:
    """Prices indexed to 100 on ``base_day`` against event time, one line per asset."""
    data = levels.drop(columns=["date"], errors="ignore")
    fig, ax = plt.subplots(figsize=(12, 5.8))
    cmap = plt.get_cmap("tab10" if data.shape[1] <= 10 else "tab20")
    for i, col in enumerate(data.columns):
        ax.plot(
            data.index, data[col], marker="o", ms=3.5, lw=1.8, color=cmap(i % cmap.N), label=col
        )
    ax.axhline(100, color="0.3", lw=0.8)
    mark_event_day(ax, confounder_day=confounder_day, confounder_label=confounder_label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"Close, indexed (day {base_day} = 100)")
    ax.set_xticks(list(data.index))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def _ar_car_axes(ax, p: pd.DataFrame, confounder_day: float | None, *, legend: bool) -> None:
    days = p["day"].to_numpy()
    ar = 100 * p["ar"].to_numpy()
    err = 100 * np.vstack([p["ar"] - p["ar_lo"], p["ar_hi"] - p["ar"]])
    ax.bar(days, ar, color="0.6", width=0.7, label="AR (daily)", zorder=2)
    ax.errorbar(
        days,
        ar,
        yerr=err,
        fmt="none",
        ecolor="0.35",
        elinewidth=0.9,
        capsize=2,
        label="AR 95% band",
        zorder=3,
    )
    ax.plot(days, 100 * p["car"], color="#2ca02c", lw=2.2, marker="o", ms=3, label="CAR", zorder=4)
    ax.fill_between(
        days,
        100 * p["car_lo"],
        100 * p["car_hi"],
        color="#2ca02c",
        alpha=BAND_ALPHA,
        label="CAR 95% band",
        zorder=1,
    )
    ax.axhline(0, color="0.2", lw=0.8)
    mark_event_day(
        ax, label="day 0", confounder_day=confounder_day, confounder_label="NVDA results"
    )
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    if legend:
        ax.legend(loc="upper left", fontsize=9, ncols=2)


def plot_ar_car(
    paths: pd.DataFrame,
    asset: str,
    *,
    title: str,
    confounder_day: float | None = None,
) -> Figure:
    """One asset's AR (bars, 95% error bars) and CAR path (line, 95% band) in event time."""
    p = paths[paths["asset"] == asset].sort_values("day")
    fig, ax = plt.subplots(figsize=(12, 5.5))
    _ar_car_axes(ax, p, confounder_day, legend=True)
    ax.set_title(title)
    ax.set_xlabel("Event day (day 0 = event)")
    ax.set_ylabel("Abnormal return (%)")
    ax.set_xticks(p["day"].tolist())
    return fig


def plot_ar_car_grid(
    paths: pd.DataFrame,
    assets: Sequence[str],
    *,
    title: str,
    confounder_days: dict[str, float] | None = None,
    ncols: int = 3,
) -> Figure:
    """Small multiples of :func:`plot_ar_car`, one panel per asset, shared y axis."""
    assets = list(assets)
    n = max(len(assets), 1)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(13, 3.4 * nrows + 0.8), sharey=True, squeeze=False
    )
    for i, asset in enumerate(assets):
        ax = axes.flat[i]
        p = paths[paths["asset"] == asset].sort_values("day")
        conf = (confounder_days or {}).get(asset)
        _ar_car_axes(ax, p, conf, legend=(i == 0))
        ax.set_title(asset, fontsize=12)
        ax.set_xticks(p["day"].tolist()[::3])
        if i % ncols == 0:
            ax.set_ylabel("Abnormal return (%)")
        if i >= len(assets) - ncols:
            ax.set_xlabel("Event day")
    for ax in list(axes.flat)[len(assets) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=14, fontweight="bold")
    return fig


# --------------------------------------------------------------------------- sector figures
def plot_sector_market_cap(
    sector: pd.DataFrame,
    *,
    markers: Sequence[Marker] = (),
    title: str = "AI-token sector: total market cap",
) -> Figure:
    """Members' summed market cap (line) against CoinGecko's reported category figure (points)
    and the coverage ratio on snapshot days; the backfilled-membership span is shaded."""
    s = sector.sort_values("date")
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(12, 7.2), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    ax.plot(
        s["date"],
        s["market_cap_usd"],
        lw=1.8,
        color="#1f77b4",
        label="members' closes summed (coin_daily)",
    )
    snap = s.dropna(subset=["reported_market_cap_usd"])
    ax.scatter(
        snap["date"],
        snap["reported_market_cap_usd"],
        s=60,
        color="#ff7f0e",
        zorder=5,
        marker="D",
        label="category total reported by CoinGecko (snapshot)",
    )
    back = s[s["backfilled_membership"].fillna(False).astype(bool)]
    if not back.empty:
        ax.axvspan(
            back["date"].min(),
            back["date"].max(),
            color="0.9",
            zorder=0,
            label="today's members stand in for the past (survivorship)",
        )
    _usd_bn(ax)
    ax.set_ylabel("Market cap (USD bn)")
    ax.set_title(title)
    mark_dates(ax, markers)
    ax.legend(loc="upper left", frameon=True)
    cov = s.dropna(subset=["coverage"])
    ax2.plot(cov["date"], 100 * cov["coverage"], marker="o", ms=7, color="#ff7f0e", lw=1.2)
    for d, v in zip(cov["date"], cov["coverage"], strict=True):
        ax2.annotate(
            f"{100 * v:.1f}%", (d, 100 * v), xytext=(6, 6), textcoords="offset points", fontsize=9
        )
    ax2.set_ylabel("Coverage (%)")
    ax2.set_xlabel("Date (UTC day)")
    ax2.set_title(
        "Coverage: members' caps / reported category cap, on snapshot days",
        fontsize=11,
        fontweight="normal",
    )
    lo = min(80.0, float(100 * cov["coverage"].min()) - 5) if not cov.empty else 80.0
    ax2.set_ylim(lo, 105)
    ax2.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    _date_axis(ax2)
    return fig


def plot_top_members(top: pd.DataFrame, *, title: str) -> Figure:
    """Horizontal bars of the largest members' market caps, labelled with their share."""
    t = top.iloc[::-1]
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(t) + 1.8))
    labels = [
        f"{r.symbol} ({r.name})"
        if "name" in t.columns and isinstance(r.name, str)
        else str(r.symbol)
        for r in t.itertuples()
    ]
    bars = ax.barh(labels, t["market_cap_usd"], color="#1f77b4")
    for bar, share in zip(bars, t["share"], strict=True):
        ax.annotate(
            f"{100 * share:.1f}%",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=10,
        )
    _usd_bn(ax, "x")
    ax.set_xlabel("Market cap at the snapshot (USD bn); label: share of all members")
    ax.set_ylabel("Member")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, float(t["market_cap_usd"].max()) * 1.15)
    return fig


def plot_concentration(
    conc: pd.DataFrame, *, n: int = 5, markers: Sequence[Marker] = (), title: str
) -> Figure:
    """Top-``n`` share (%) and HHI (0-10,000) of the members' market caps over time."""
    c = conc.sort_index()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6.8), sharex=True)
    ax.plot(c.index, 100 * c[f"top{n}_share"], color="#9467bd", lw=1.8)
    ax.set_ylabel(f"Top-{n} share (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_title(title)
    mark_dates(ax, markers)
    ax2.plot(c.index, c["hhi"], color="#8c564b", lw=1.8)
    ax2.axhline(1500, color="0.4", ls="--", lw=1, label="1,500: moderately concentrated")
    ax2.axhline(2500, color="0.2", ls="--", lw=1, label="2,500: highly concentrated (DoJ)")
    ax2.set_ylabel("HHI (0-10,000)")
    ax2.set_xlabel("Date (UTC day)")
    ax2.legend(loc="upper left", fontsize=9)
    mark_dates(ax2, markers, label_top=False)
    _date_axis(ax2)
    return fig


def plot_levels(
    levels: pd.DataFrame,
    *,
    title: str,
    markers: Sequence[Marker] = (),
    ylabel: str = "Index (first common day = 100, log scale)",
    log: bool = True,
) -> Figure:
    """Several index levels over calendar time (e.g. the AI-token index, BTC and NVDA)."""
    fig, ax = plt.subplots(figsize=(12, 5.5))
    for i, col in enumerate(levels.columns):
        s = levels[col].dropna()
        ax.plot(s.index, s, lw=1.7, label=col, color=series_color(col, i))
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_title(title)
    ax.set_xlabel("Date (UTC days; NVDA: NYSE sessions)")
    ax.set_ylabel(ylabel)
    _date_axis(ax)
    mark_dates(ax, markers)
    ax.legend(loc="upper left")
    return fig


def plot_rolling_correlation(
    rolling: pd.DataFrame, *, window: int, markers: Sequence[Marker] = (), title: str
) -> Figure:
    """Rolling correlations of sector returns with other series (one line per series)."""
    fig, ax = plt.subplots(figsize=(12, 5.0))
    for i, col in enumerate(rolling.columns):
        s = rolling[col].dropna()
        ax.plot(s.index, s, lw=1.7, label=col, color=series_color(col, i))
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylim(-1, 1)
    ax.set_title(title)
    ax.set_xlabel("Date (end of the rolling window)")
    ax.set_ylabel(f"Correlation of returns ({window} intervals)")
    _date_axis(ax)
    mark_dates(ax, markers)
    ax.legend(loc="lower left")
    return fig


__all__ = [
    "REPORT_RC",
    "REPORT_TESTS",
    "Marker",
    "ar_car_paths",
    "Callout",
    "confounder_days",
    "cumulative_windows",
    "indexed_event_prices",
    "mark_dates",
    "mark_event_day",
    "plot_ar_car",
    "plot_ar_car_grid",
    "plot_concentration",
    "plot_event_timeline",
    "plot_indexed_prices",
    "plot_levels",
    "plot_rolling_correlation",
    "plot_sector_market_cap",
    "plot_top_members",
    "save_figure",
    "show",
    "test_table",
    "use_report_style",
]


# --------------------------------------------------------------------------- verdict figures
def plot_placebo(pl, windows: Sequence[str] = ("[0,1]", "[0,3]", "[0,10]")) -> Figure:
    """Histograms of the placebo CAARs (:class:`analysis.placebo.PlaceboResult`), one panel per
    CAR window, with the real CAAR marked and its empirical two-sided p-value in the title."""
    wins = [w for w in windows if w in pl.windows] or list(pl.windows[:3])
    fig, axes = plt.subplots(1, len(wins), figsize=(12, 4.2), squeeze=False)
    unit = "hours" if pl.calendar == HOURLY else "dates"
    p = pl.p_value
    for ax, w in zip(axes[0], wins, strict=True):
        c = pl.windows.index(w)
        vals = 100 * pl.caar[:, c][np.isfinite(pl.caar[:, c])]
        real = 100 * pl.real_caar[c]
        ax.hist(vals, bins=min(40, max(10, vals.size // 4)), color="#9fb7d4", edgecolor="white")
        ax.axvline(real, color=EVENT_COLOR, lw=2.5, label=f"event: {real:+.1f}%")
        ax.set_title(f"CAR{w}: placebo p = {p[c]:.3f}", fontsize=12)
        ax.set_xlabel("CAAR (%)")
        ax.legend(loc="upper left", frameon=False)
    axes[0][0].set_ylabel(f"placebo {unit}")
    fig.suptitle(
        f"Placebo distribution: the same study of the same {pl.n_assets} assets on "
        f"{pl.n_placebo} other {unit}",
        fontweight="bold",
    )
    return fig


_SPEC_FACTORS = (
    ("benchmark", "Benchmark"),
    ("model", "Model"),
    ("estimation", "Estimation"),
    ("returns", "Returns"),
)


def plot_specification_curve(grid) -> Figure:
    """Specification curve (Simonsohn, Simmons & Nelson 2020) of a
    :class:`analysis.robustness.RobustnessGrid`: the CAARs sorted, filled where the
    specification agrees with the baseline (same sign, headline test significant at 5%), the
    baseline marked; below, which choice each specification made."""
    t = grid.frame().sort_values("caar").reset_index(drop=True)
    levels: list[tuple[str, str]] = []
    for col, _ in _SPEC_FACTORS:
        levels += [(col, v) for v in dict.fromkeys(t[col])]
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(12, 7.5),
        sharex=True,
        gridspec_kw={"height_ratios": [2.2, max(2.0, 0.28 * len(levels))]},
    )
    x = np.arange(len(t))
    y = 100 * t["caar"].to_numpy()
    agree = t["agrees"].to_numpy(dtype=bool)
    top.scatter(x[agree], y[agree], color="#1f77b4", s=36, label="agrees (p < 0.05, same sign)")
    top.scatter(
        x[~agree], y[~agree], facecolor="white", edgecolor="#1f77b4", s=36, label="does not"
    )
    b = np.flatnonzero(t["baseline"].to_numpy(dtype=bool))
    top.scatter(x[b], y[b], marker="D", color=EVENT_COLOR, s=70, zorder=3, label="baseline")
    top.axhline(0, color="black", lw=0.8)
    top.set_ylabel(f"CAAR{grid.window} (%)")
    top.set_title(
        f"Specification curve: {grid.n_agree} of {len(t)} specifications agree with the baseline"
    )
    top.legend(loc="upper left", frameon=False)
    for i, (col, val) in enumerate(levels):
        hit = (t[col] == val).to_numpy()
        bottom.scatter(x[hit], np.full(hit.sum(), i), marker="|", s=120, color="#444444")
    bottom.set_yticks(range(len(levels)))
    bottom.set_yticklabels([f"{dict(_SPEC_FACTORS)[c]}: {v}" for c, v in levels])
    bottom.invert_yaxis()
    bottom.set_xlabel("Specification (sorted by CAAR)")
    bottom.grid(axis="x", visible=False)
    return fig
