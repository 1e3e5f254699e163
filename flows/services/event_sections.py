"""The event report's sections, each a function over the study service's outcome.

Every code cell of ``notebooks/sora_event_study.ipynb`` is one call here: a section function
takes the :class:`~flows.services.report_study.ReportStudy` (and what earlier sections made)
and returns the items to show, in order: Markdown text, callouts, tables and named figures.
:func:`render` displays them and saves each figure as ``<figures_dir>/<name>.png``. Keeping the
logic here (not in notebook JSON) lets it be read, typed, linted and tested like any module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from flows.services.report_study import (
    HOURLY_ESTIMATION,
    HOURLY_WINDOW,
    PORTFOLIO,
    ReportStudy,
    SecondStageSection,
    second_stage_section,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HEADLINE_WINDOWS = ("[0,1]", "[0,3]", "[0,5]", "[0,10]")


@dataclass(frozen=True)
class Text:
    """Markdown to display."""

    markdown: str


@dataclass(frozen=True)
class Note:
    """A callout box (``kind``: note or caveat)."""

    text: str
    kind: str = "note"


@dataclass(frozen=True)
class Chart:
    """A figure, saved under its ``name``."""

    name: str
    figure: Figure


Item = Text | Note | Chart | Any  # Any: a table (DataFrame or Styler) or a result object


def render(items: Iterable[Item], figures_dir: Path | str | None = None) -> None:
    """Display ``items`` in the notebook, saving each :class:`Chart` into ``figures_dir``."""
    from IPython.display import Markdown, display

    from analysis import plots

    for item in items:
        if isinstance(item, Text):
            display(Markdown(item.markdown))
        elif isinstance(item, Note):
            display(plots.Callout(item.text, item.kind))
        elif isinstance(item, Chart):
            plots.show(item.figure, figures_dir, item.name)
        else:
            display(item)


@dataclass
class Context:
    """What several sections share, computed once from the study: the legs' results, day 0 per
    calendar, the confounders inside the windows and the CAR paths."""

    study: ReportStudy
    tokens: list[str]
    equities: list[str]
    day0: dict[str, pd.Timestamp]
    confounders: dict[str, tuple[int, str]]
    paths: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def res(self) -> Any:
        return self.study.tokens.result

    @property
    def res_eq(self) -> Any:
        lr = self.study.equities
        return None if lr is None else lr.result

    @property
    def conf_days(self) -> dict[str, float]:
        return {a: float(d) for a, (d, _) in self.confounders.items()}


def context(study: ReportStudy) -> Context:
    """The shared part of the sections (legs, day 0, confounders, CAR paths)."""
    from analysis import plots, sector
    from flows.services.study import path_result

    tok = study.tokens
    eq = study.equities
    results = [tok.result] + ([eq.result] if eq is not None else [])
    tokens = list(tok.result.params.index.get_level_values("asset"))
    equities = [] if eq is None else list(eq.result.params.index.get_level_values("asset"))
    maps = pd.concat([r.event_mappings for r in results])
    day0 = dict(zip(maps["calendar"], pd.to_datetime(maps["session"]), strict=True))
    conf = plots.confounder_days(tok.result, tok.leg.study.confounders)
    portfolio = sector.portfolio_prices(study.prices, tokens, name=PORTFOLIO)
    paths = plots.ar_car_paths(path_result(tok.leg, [*tokens, PORTFOLIO], portfolio))
    if eq is not None:
        paths = pd.concat([paths, plots.ar_car_paths(path_result(eq.leg, equities))])
        conf.update(plots.confounder_days(eq.result, eq.leg.study.confounders))
    return Context(study, tokens, equities, day0, conf, paths)


def caveats(texts: Sequence[str]) -> list[Item]:
    return [Note(t, "caveat") for t in texts]


def overview(ctx: Context) -> list[Item]:
    """The event, day 0 per calendar, the assets studied and the data's last dates."""
    st = ctx.study
    ev = st.event
    last = st.prices.groupby("asset_class")["date"].max().dt.date
    nyse = f" and {ctx.day0['XNYS'].date()} for NYSE" if "XNYS" in ctx.day0 else ""
    out: list[Item] = [
        Text(
            f"**Event:** {ev.description} ({ev.when}); day 0 is {ctx.day0['crypto'].date()} for "
            f"crypto (UTC day){nyse}.  \n"
            f"**Assets studied:** {len(ctx.tokens)} AI tokens ({', '.join(ctx.tokens)}) against "
            f"BTC; {len(ctx.equities)} equities ({', '.join(ctx.equities) or 'none'}) against "
            "SPY.  \n"
            "**Data through:** " + ", ".join(f"{k} {v}" for k, v in last.items()) + ".  \n"
            f"**Study:** `{st.outcome.request.command()}`"
            + (
                f" (stored study {st.study_id}, replayed on the series and dates it read)"
                if st.replayed
                else " (the study service's run, as the CLI prints it)"
            )
        )
    ]
    if st.equity_note:
        out.append(Note(st.equity_note))
    return out


def headline(ctx: Context) -> list[Item]:
    """The KP-adjusted BMP t with the calendar-time placebo p of each headline window."""
    from analysis.placebo import verdict_lines

    st = ctx.study
    tok, eq = st.tokens, st.equities
    lines = [
        f"- {v}" for v in verdict_lines(tok.result, tok.placebo, HEADLINE_WINDOWS, what="AI tokens")
    ]
    if eq is not None:
        eq_lines = verdict_lines(eq.result, eq.placebo, HEADLINE_WINDOWS, what="equities")
        lines += [f"- Equities: {v}" for v in eq_lines]
    return [Text("### Headline\n" + "\n".join(lines))]


def _short(e: Any) -> str:
    if e.kind == "earnings":  # "NVIDIA Q4 FY2024 results (after the US close)" -> "NVDA Q4 FY2024"
        return "NVDA " + e.description.split("NVIDIA ")[-1].split(" results")[0]
    return str(e.description.replace("OpenAI ", ""))


def timeline(ctx: Context) -> list[Item]:
    """The AI tokens' equal-weight level beside BTC and NVDA, with every catalog event."""
    from analysis import plots, sector

    st, res = ctx.study, ctx.res
    ev = st.event
    params = res.params
    pair = params.index[0]
    ew = sector.equal_weight_index(sector.wide(st.prices, symbols=ctx.tokens))["level"]
    closes = sector.wide(st.prices)
    levels = pd.DataFrame({"AI tokens (equal weight)": ew})
    for sym in ("BTC", "NVDA"):
        if sym in closes:
            s = closes[sym].dropna()
            levels[sym] = s / s.iloc[0] * 100
    start, end = levels.index.min(), levels.index.max()
    markers = [
        plots.Marker(
            e.map("crypto").session,
            f"{_short(e)} {e.when[:10]}",
            "event" if e.name == ev.name else "confounder" if e.kind == "earnings" else "other",
        )
        for e in [ev, *st.others]
        if start <= e.map("crypto").session <= end
    ]
    ev_dates = res.event_dates[pair]
    fig = plots.plot_event_timeline(
        levels.dropna(how="all"),
        markers,
        estimation=(params.loc[pair, "est_start"], params.loc[pair, "est_end"]),
        event_window=(ev_dates.min(), ev_dates.max()),
        title=f"Event timeline: {ev.description} and other events in the data",
    )
    return [Chart("01_event_timeline", fig)]


def day0_table(ctx: Context) -> list[Item]:
    """Day 0 per calendar and the rule that placed it."""
    results = [ctx.res] + ([ctx.res_eq] if ctx.res_eq is not None else [])
    maps = pd.concat([r.event_mappings for r in results])
    timeline = maps[["event", "calendar", "requested", "session", "moved", "reason"]].copy()
    timeline.columns = ["event", "calendar", "date given", "day 0", "moved", "rule"]
    return [
        Text(f"Day 0 per calendar. Policy: {ctx.res.spec['event_policy_text']}."),
        timeline.style.hide(axis="index"),
    ]


def _conf_label(ctx: Context) -> str:
    return next(iter(ctx.confounders.values()))[1] if ctx.confounders else "confounder"


def token_prices(ctx: Context) -> list[Item]:
    """The AI tokens' closes indexed to day -5."""
    from analysis import plots, sector

    st = ctx.study
    crypto = sector.wide(st.prices[st.prices["calendar"] == "crypto"]).asfreq("D")
    lv = plots.indexed_event_prices(
        crypto[ctx.tokens + (["BTC"] if "BTC" in crypto else [])],
        ctx.day0["crypto"],
        window=st.tokens.leg.study.event_window,
    )
    fig = plots.plot_indexed_prices(
        lv,
        title=f"AI tokens around {st.event.description}: close indexed to day -5 = 100",
        confounder_day=next((d for a, (d, _) in ctx.confounders.items() if a in ctx.tokens), None),
        confounder_label=_conf_label(ctx),
        xlabel="Event day (UTC days; day 0 = event)",
    )
    return [Chart("02_token_prices_indexed", fig)]


def token_ar_car(ctx: Context) -> list[Item]:
    from analysis import plots

    fig = plots.plot_ar_car_grid(
        ctx.paths,
        ctx.tokens,
        title=f"AI tokens: AR and CAR around {ctx.study.event.description} (market model vs BTC)",
        confounder_days=ctx.conf_days,
    )
    return [Chart("03_token_ar_car", fig)]


def portfolio(ctx: Context) -> list[Item]:
    """The equal-weight portfolio's AR and CAR path, and its CAR over the whole window."""
    from analysis import plots

    fig = plots.plot_ar_car(
        ctx.paths,
        PORTFOLIO,
        title=(
            f"Equal-weight AI-token portfolio ({len(ctx.tokens)} tokens): AR and CAR around "
            f"{ctx.study.event.description}"
        ),
        confounder_day=ctx.conf_days.get(ctx.tokens[0]),
    )
    p = ctx.paths[ctx.paths["asset"] == PORTFOLIO].set_index("day")
    end = p.index.max()
    return [
        Chart("04_portfolio_ar_car", fig),
        Text(
            f"Portfolio CAR from day -5 to day +10: {100 * p.loc[end, 'car']:+.1f}% "
            f"(95% band {100 * p.loc[end, 'car_lo']:+.1f}% to "
            f"{100 * p.loc[end, 'car_hi']:+.1f}%)."
        ),
    ]


def portfolio_kp(ctx: Context) -> list[Item]:
    from analysis.robustness import portfolio_kp_sentence

    return [Text(portfolio_kp_sentence(ctx.res, "[0,3]"))]


def equities(ctx: Context) -> list[Item]:
    """NVDA and AMD beside SPY and QQQ, indexed to day -5, with what the equity leg left out."""
    from analysis import plots, sector
    from flows.services.report import equity_notes

    st = ctx.study
    held = sorted(st.prices.loc[st.prices["asset_class"] == "equity", "symbol"].unique())
    eq = st.equities
    excluded = None if eq is None else eq.result.excluded
    out: list[Item] = [
        Note(t) for t in equity_notes(held, ctx.equities, excluded, st.equity_note, ctx.confounders)
    ]
    if not ctx.equities or eq is None:
        return out
    closes = sector.wide(st.prices)
    syms = [s for s in ctx.equities + ["SPY", "QQQ"] if s in closes]
    eq_closes = sector.wide(st.prices[st.prices["calendar"] == "XNYS"])[syms].dropna(how="all")
    lv = plots.indexed_event_prices(eq_closes, ctx.day0["XNYS"], window=eq.leg.study.event_window)
    fig = plots.plot_indexed_prices(
        lv,
        title=(
            f"NVDA and AMD against SPY around {st.event.description}: close indexed to day -5 = 100"
        ),
        confounder_day=next(
            (d for a, (d, _) in ctx.confounders.items() if a in ctx.equities), None
        ),
        confounder_label=_conf_label(ctx),
        xlabel="Event day (NYSE sessions; day 0 = event)",
    )
    out.append(Chart("05_equities_indexed", fig))
    return out


def equity_ar_car(ctx: Context) -> list[Item]:
    from analysis import plots

    if not ctx.equities:
        return []
    fig = plots.plot_ar_car_grid(
        ctx.paths,
        ctx.equities,
        title="NVDA and AMD: AR and CAR (market model vs SPY)",
        confounder_days=ctx.conf_days,
        ncols=2,
    )
    return [Chart("06_equities_ar_car", fig)]


def test_tables(ctx: Context) -> list[Item]:
    """Every registered cross-sectional test of every CAR window, per leg."""
    from analysis import plots

    out: list[Item] = []
    for result, label in (
        (ctx.res, "AI tokens (against BTC, UTC days)"),
        (ctx.res_eq, "Equities (against SPY, NYSE sessions)"),
    ):
        if result is not None:
            out += [Text(f"#### {label}"), plots.test_table(result)]
    return out


def placebo(ctx: Context) -> list[Item]:
    """The tokens' calendar-time placebo distribution (the study's own)."""
    from analysis import plots

    pl = ctx.study.tokens.placebo
    if pl is None:
        return [Note("No placebo distribution: the study ran without one.")]
    if pl.reason:
        return [Note(f"No placebo distribution: {pl.reason}.")]
    return [Chart("08_placebo", plots.plot_placebo(pl)), pl.frame().style.format(precision=4)]


def robustness(ctx: Context) -> list[Item]:
    """The specification curve of CAAR[0,3] over models, benchmarks and windows."""
    import warnings

    from analysis import plots
    from analysis.robustness import robustness_grid

    st = ctx.study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = robustness_grid(st.tokens.leg.study, st.prices, window="[0,3]", catalog=st.others)
    table = (
        grid.frame()
        .drop(columns=["headline_p"])
        .style.hide(axis="index")
        .format({"caar": "{:+.4f}", "kp_t": "{:.2f}", "kp_p": "{:.3f}", "placebo_p": "{:.3f}"})
    )
    return [
        Text(f"{grid.sentence()} Benchmark index: {grid.index_how}."),
        Chart("09_specification_curve", plots.plot_specification_curve(grid)),
        table,
    ]


def groups_and_volume(ctx: Context, db: Path | str) -> list[Item]:
    """Results by group, compute tokens beside NVDA and AMD, and abnormal volume."""
    from analysis.groups import plot_compute_and_gpu

    sec: SecondStageSection = second_stage_section(db, ctx.study)
    out: list[Item] = []
    if sec.groups is None:
        out.append(Note("The warehouse holds no asset groups: run `aitokens groups seed`."))
    else:
        out.append(sec.groups)
    compute = sec.groups.members.get("compute", []) if sec.groups is not None else []
    out.append(
        Chart("06b_compute_tokens_vs_gpu", plot_compute_and_gpu(ctx.res, ctx.res_eq, compute))
    )
    out.append(
        sec.volume if sec.volume is not None else Note(f"No abnormal volume: {sec.volume_reason}")
    )
    return out


def first_hours(ctx: Context) -> list[Item]:
    """The hourly study's CAR paths, its tests and its notes (or why there is none)."""
    from analysis import plots
    from flows.services.study import path_result

    st = ctx.study
    if st.hourly is None:
        return [
            Note(
                "No hourly closes cover this event (BTC over every hour from "
                f"{1 - HOURLY_ESTIMATION[0]} hours before hour 0 to {HOURLY_WINDOW[1]} hours "
                "after it, and an AI token at hour 0), or the event has no time of day: import "
                "them with `aitokens import FILE.csv` (a ts column), e.g. "
                f"../shared/data/sora2024/hourly.csv. ({st.hourly_reason})"
            )
        ]
    lr = st.hourly.results[0]
    h_res = lr.result
    h_tokens = list(h_res.params.index.get_level_values("asset"))
    h_paths = plots.hourly_car_paths(path_result(lr.leg, h_tokens, portfolios=True))
    h0 = h_res.event_mappings.iloc[0]
    src = (
        pd.DataFrame(
            [(s, c.source) for s, c in lr.leg.choices.items()], columns=["symbol", "source"]
        )
        .sort_values("symbol")
        .groupby("source")["symbol"]
        .agg(", ".join)
    )
    fig = plots.plot_first_hours(
        h_paths,
        [plots.PORTFOLIO_LABEL, *h_tokens],
        announcement=pd.Timestamp(st.event.when),
        title=(
            f"The first hours: hourly CAR paths around {st.event.description} (market model vs BTC)"
        ),
    )
    return [
        Text(
            f"**Hour 0** = the hour closing {h0['session']} ({h0['reason']}).  \n"
            f"**Hourly closes:** {'; '.join(f'{k}: {v}' for k, v in src.items())}."
        ),
        Chart("07_first_hours_car", fig),
        Text(plots.first_hours_sentence(h_res)),
        Text("#### AI tokens (against BTC, UTC hours)"),
        plots.test_table(h_res),
        *[Note(w) for w in lr.warnings],
    ]


def first_hours_placebo(ctx: Context) -> list[Item]:
    """The hourly study's placebo distribution (the study's own)."""
    from analysis import plots

    st = ctx.study
    if st.hourly is None:
        return []
    pl = st.hourly.results[0].placebo
    if pl is None or pl.reason:
        return [Note(f"No hourly placebo distribution: {pl.reason if pl else 'none drawn'}.")]
    wins = ("[0,0]", "[0,5]", "[0,23]")
    return [
        Text("#### Placebo hours (calendar-time inference on the hourly clock)"),
        Chart("07b_first_hours_placebo", plots.plot_placebo(pl, wins)),
        Text(" ".join(pl.sentence(w) for w in wins if w in pl.windows)),
        pl.frame().style.format(precision=4),
    ]


def exclusions(ctx: Context) -> list[Item]:
    """Excluded assets, the study's notes and warnings, confounders inside the windows."""
    st = ctx.study
    results = [lr.result for lr in st.outcome.results]
    excluded = pd.concat([r.excluded for r in results], ignore_index=True)
    out: list[Item] = []
    if excluded.empty:
        min_obs = st.tokens.leg.study.min_estimation_obs
        out.append(
            Text(
                "**Excluded assets:** none; every asset had enough estimation data "
                f"(at least {min_obs} returns) and a return on day 0."
            )
        )
    else:
        out += [
            Text("**Excluded assets** (not in any statistic above):"),
            excluded.style.hide(axis="index"),
        ]
    notes = [*st.outcome.plan.notes, *(n for lr in st.outcome.results for n in lr.leg.notes)]
    notes += [w for lr in st.outcome.results for w in lr.warnings]
    out += [Note(n) for n in dict.fromkeys(notes)]
    flags = pd.concat([r.flags for r in results], ignore_index=True)
    if not flags.empty:
        out += [
            Text("**Confounders and overlaps inside the event windows:**"),
            flags.style.hide(axis="index"),
        ]
    return out


def venues(ctx: Context) -> list[Item]:
    """The series each asset's numbers come from (the study's choice), and the data notes."""
    st = ctx.study
    rows = [
        {
            "symbol": c.symbol,
            "asset_class": c.asset_class,
            "source": c.source,
            "first": pd.Timestamp(c.first_date),
            "last": pd.Timestamp(c.last_date),
            "n_obs": c.n_obs,
            "why": c.reason,
        }
        for lr in st.outcome.results
        for c in lr.leg.choices.values()
        if c.symbol in {*lr.leg.assets, lr.leg.benchmark}
    ]
    chosen = pd.DataFrame(rows).drop_duplicates("symbol").sort_values(["asset_class", "symbol"])
    out: list[Item] = [
        Text(
            "**Venues: the price series used for each asset** (one series per asset; when "
            "several sources hold the same symbol, the study's rule chooses: a `--source` "
            "preference, else the most observations in the study's span)."
        ),
        chosen.style.format({"first": "{:%Y-%m-%d}", "last": "{:%Y-%m-%d}"}).hide(axis="index"),
    ]
    out.append(Text("\n\n".join(_data_notes(ctx, set(chosen["source"]), st.members))))
    return out


def _data_notes(ctx: Context, venues: set[str], members: pd.DataFrame) -> list[str]:
    ev = ctx.study.event
    notes = []
    if ctx.confounders:
        hits = sorted({(d, what) for d, what in ctx.confounders.values()})
        where = "; ".join(f"{what} on day {d:+d}" for d, what in hits)
        first = min(d for d, _ in hits)
        notes.append(
            f"**Confounders.** Other events fall inside the event window ({where}): CARs "
            f"over windows that reach day {first:+d} mix both events; windows ending "
            f"before it measure {ev.description} alone."
        )
    notes.append(
        "**Clocks.** Crypto closes are UTC-day closes (00:00 UTC); equity closes are 16:00 New "
        "York. A token's day-0 close comes 3-4 hours after NVIDIA's (EDT/EST)."
    )
    if any("perp" in v for v in venues):
        notes.append(
            "**Venues.** Some tokens are Binance USDT perpetual futures (binance_perp), the "
            "others spot; perpetual closes sit within about 0.3% of spot."
        )
    if "coingecko" in venues:
        notes.append(
            "**CoinGecko days.** CoinGecko's point stamped D 00:00 UTC is stored as the "
            "close of D-1 (see docs/warehouse.md)."
        )
    if members.empty:
        notes.append(
            "**Survivorship.** The AI tokens are those chosen today for the panel, i.e. "
            "tokens that survived and are still called AI tokens; tokens that faded or "
            "were delisted before today are missing, which biases the sector's returns up."
        )
    else:
        snap = pd.Timestamp(members["snapshot_date"].max()).date()
        notes.append(
            f"**Survivorship.** The AI tokens are CoinGecko's *current* members of the "
            f"artificial-intelligence category (snapshot {snap}), not the members at the "
            "event: tokens that left or died since are missing, which biases returns up."
        )
    return notes
