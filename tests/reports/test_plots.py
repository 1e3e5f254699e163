"""analysis.plots: event-study shaping checked against the engine, and figure hygiene."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from analysis import plots, sector
from flows.services.report import inject_parameters
from flows.services.report_study import report_study
from flows.services.study import path_result


@pytest.fixture(scope="module")
def sora(real_run):
    # the report's study is the study service's (aitokens study --event sora), placebo and all
    study = report_study(real_run.db, "sora")
    tokens_leg = study.tokens
    model, res = tokens_leg.leg.study, tokens_leg.result
    tokens = list(res.params.index.get_level_values("asset"))
    portfolio = sector.portfolio_prices(study.prices, tokens)
    path_res = path_result(tokens_leg.leg, [*tokens, "AI_EW"], portfolio)
    return study, model, res, plots.ar_car_paths(path_res)


def test_car_path_ends_on_the_engines_event_window_car(sora):
    _, _, res, paths = sora
    last = paths[paths["day"] == 10].set_index("asset")
    for (_, asset), car in res.car["[-5,10]"].items():
        assert_allclose(last.loc[asset, "car"], car, rtol=1e-12)
    assert (paths["car_lo"] < paths["car"]).all() and (paths["car"] < paths["car_hi"]).all()


def test_portfolio_path_matches_the_engines_equal_weight_portfolio(sora):
    _, _, res, paths = sora
    port = res.portfolios
    eng = port[(port["weighting"] == "equal") & (port["window"] == "[-5,10]")].iloc[0]
    mine = paths[(paths["asset"] == "AI_EW") & (paths["day"] == 10)].iloc[0]
    assert_allclose(mine["car"], eng["car"], rtol=1e-9)
    # the 95% band is +-t(0.975, df) * the engine's CAR standard deviation
    half = (mine["car_hi"] - mine["car_lo"]) / 2
    assert_allclose(half / eng["std"], 1.98, atol=0.02)


def test_test_table_puts_the_kp_adjusted_bmp_first(sora):
    _, _, res, _ = sora
    table = plots.test_table(res)
    assert table.columns.tolist()[:4] == ["CAAR", "N", "KP-adj. BMP", "BMP"]
    assert table.index.tolist() == [
        "[0,0]",
        "[0,1]",
        "[-1,1]",
        "[0,3]",
        "[0,5]",
        "[0,10]",
        "[-5,10]",
    ]
    kp = res.test("kp_bmp", "[0,5]")
    assert table.loc["[0,5]", "KP-adj. BMP"].startswith(f"{kp.stat:.2f} (p={kp.pvalue:.3f})")


def test_indexed_prices_are_100_on_day_minus_5(sora):
    inputs, model, _, _ = sora
    closes = sector.wide(inputs.prices[inputs.prices["calendar"] == "XNYS"])
    lv = plots.indexed_event_prices(closes, pd.Timestamp("2024-02-15"), window=(-5, 10))
    assert_allclose(lv.loc[-5].drop("date").astype(float), 100.0)
    # NYSE sessions: Presidents' Day 2024-02-19 is skipped, day +2 is 2024-02-20
    assert lv.loc[2, "date"] == pd.Timestamp("2024-02-20")


def _has_event_line(ax) -> bool:
    return any(
        matplotlib.colors.same_color(line.get_color(), plots.EVENT_COLOR) for line in ax.lines
    )


def test_every_figure_has_title_labelled_axes_and_the_event_marked(sora):
    inputs, model, res, paths = sora
    tokens = list(res.params.index.get_level_values("asset"))
    day = pd.Timestamp("2024-02-15")
    mk = [plots.Marker(day, "Sora", "event")]
    levels = pd.DataFrame(
        {"A": np.linspace(100, 200, 50)}, index=pd.date_range("2024-01-01", periods=50)
    )
    members = pd.DataFrame({"symbol": ["A", "B"], "name": ["a", "b"], "market_cap": [2e9, 1e9]})
    caps = pd.DataFrame({"A": [2e9] * 50, "B": [1e9] * 50}, index=levels.index)
    sec = pd.DataFrame(
        {
            "date": levels.index,
            "market_cap_usd": 3e9,
            "reported_market_cap_usd": np.nan,
            "coverage": np.nan,
            "backfilled_membership": True,
        }
    )
    sec.loc[49, ["reported_market_cap_usd", "coverage"]] = [3.1e9, 0.97]
    figs = {
        "timeline": plots.plot_event_timeline(levels, mk),
        "indexed": plots.plot_indexed_prices(
            plots.indexed_event_prices(
                sector.wide(inputs.prices[inputs.prices["calendar"] == "crypto"]).asfreq("D")[
                    tokens
                ],
                day,
            ),
            title="t",
        ),
        "ar_car": plots.plot_ar_car(paths, "AI_EW", title="t", confounder_day=6),
        "grid": plots.plot_ar_car_grid(paths, tokens, title="t"),
        "market_cap": plots.plot_sector_market_cap(sec, markers=mk),
        "concentration": plots.plot_concentration(
            sector.concentration(caps), markers=mk, title="t"
        ),
        "levels": plots.plot_levels(levels, markers=mk, title="t"),
        "rolling": plots.plot_rolling_correlation(levels / 200, window=60, markers=mk, title="t"),
    }
    top = plots.plot_top_members(sector.top_members(members), title="t")
    for name, fig in {**figs, "top": top}.items():
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert plots.figure_title(fig) != "figure", name
        for ax in axes:
            if ax.get_xlabel():
                assert ax.get_ylabel() or name == "grid", name
        labelled = [ax for ax in axes if ax.get_ylabel()]
        assert labelled, name
        assert any(ax.get_xlabel() for ax in axes), name
        units = " ".join(ax.get_ylabel() + ax.get_xlabel() for ax in axes)
        assert any(u in units for u in ("%", "USD", "= 100", "HHI", "Correlation", "day")), name
        if name != "top":  # a snapshot bar chart has no time axis
            assert any(_has_event_line(ax) for ax in axes), name
        w, h = fig.get_size_inches()
        assert w >= 11
        matplotlib.pyplot.close(fig)


def test_inject_parameters_after_the_tagged_cell():
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# t"),
            nbformat.v4.new_code_cell("db = None", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(db)"),
        ]
    )
    inject_parameters(nb, {"db": "/x.duckdb", "caveats": ["a"]})
    inject_parameters(nb, {"db": "/y.duckdb"})  # a second injection replaces the first
    assert [c.source for c in nb.cells] == [
        "# t",
        "db = None",
        "# Parameters injected by `aitokens report`\ndb = '/y.duckdb'",
        "print(db)",
    ]
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
