"""analysis.sector: indices, concentration and correlations against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from analysis import sector

DAYS = pd.date_range("2024-01-01", periods=4, freq="D", name="date")


def test_equal_weight_index_averages_the_members_present():
    closes = pd.DataFrame({"A": [100, 110, 121, 121], "B": [np.nan, 50, 40, 44]}, index=DAYS)
    ew = sector.equal_weight_index(closes)
    # day 2: only A has a return (+10%); day 3: A +10%, B -20% -> -5%; day 4: A 0, B +10% -> +5%
    assert_allclose(ew["ret"].iloc[1:], [0.10, -0.05, 0.05])
    assert_allclose(ew["level"], [100, 110, 104.5, 109.725])
    assert ew["n_members"].tolist() == [0, 1, 2, 2]


def test_returns_are_never_stretched_over_a_missing_day():
    closes = pd.DataFrame({"A": [100.0, 110.0, 121.0]}, index=DAYS[[0, 1, 3]])
    r = sector.daily_returns(closes)["A"]
    assert_allclose(r.iloc[1], 0.10)
    assert np.isnan(r.iloc[2])  # 2024-01-04 follows a hole


def test_cap_weighted_returns_use_yesterdays_caps_and_ignore_entries():
    closes = pd.DataFrame({"A": [10, 11, 11], "B": [np.nan, 5, 10]}, index=DAYS[:3], dtype=float)
    caps = pd.DataFrame({"A": [300, 330, 330], "B": [np.nan, 100, 200]}, index=DAYS[:3])
    r = sector.cap_weighted_returns(closes, caps)
    assert np.isnan(r.iloc[0])
    assert_allclose(r.iloc[1], 0.10)  # B enters: its first day adds no return
    assert_allclose(r.iloc[2], (330 * 0.0 + 100 * 1.0) / 430)


def test_hhi_and_top_n_share():
    caps = pd.DataFrame({"A": [50.0, 25], "B": [30.0, 25], "C": [20.0, 25], "D": [np.nan, 25]})
    assert_allclose(sector.hhi(caps), [10_000 * (0.25 + 0.09 + 0.04), 2_500])
    assert_allclose(sector.top_n_share(caps, 2), [0.8, 0.5])
    conc = sector.concentration(caps, n=2)
    assert conc["n_with_cap"].tolist() == [3, 4]
    assert_allclose(conc["market_cap_usd"], [100, 100])
    with pytest.raises(ValueError, match="at least 1"):
        sector.top_n_share(caps, 0)


def test_top_members_ranks_and_shares():
    members = pd.DataFrame(
        {"symbol": ["A", "B", "C", "D"], "name": list("abcd"), "market_cap": [10, 60, np.nan, 30]}
    )
    top = sector.top_members(members, n=2)
    assert top["symbol"].tolist() == ["B", "D"]
    assert top["rank"].tolist() == [1, 2]
    assert_allclose(top["share"], [0.6, 0.3])
    assert_allclose(top["cumulative_share"], [0.6, 0.9])


def test_correlations_sample_the_sector_on_the_other_series_dates():
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    rng = np.random.default_rng(7)
    level = pd.Series(100 * np.cumprod(1 + rng.normal(0, 0.02, 30)), index=days)
    weekdays = days[days.day_of_week < 5]
    twin = level.reindex(weekdays) * 3  # the same moves, sampled on sessions only
    c = sector.correlations(level, {"TWIN": twin})
    assert c.loc[0, "n_obs"] == len(weekdays) - 1
    assert_allclose(c.loc[0, "correlation"], 1.0)
    # a Monday return of the sector spans Friday to Monday, like the session series'
    r = sector.returns_on_dates(level, weekdays)
    monday = weekdays[weekdays.day_of_week == 0][1]
    friday = monday - pd.Timedelta(days=3)
    assert_allclose(r.loc[monday], level[monday] / level[friday] - 1)


def test_portfolio_prices_is_a_pseudo_asset():
    long = pd.DataFrame(
        {
            "date": list(DAYS) * 2,
            "symbol": ["A"] * 4 + ["B"] * 4,
            "close": [1, 2, 2, 2, 1, 1, 1, 2.0],
        }
    )
    p = sector.portfolio_prices(long, ["A", "B"], name="EW")
    assert p.columns.tolist() == ["date", "symbol", "asset_class", "close"]
    assert_allclose(p["close"], [100, 150, 150, 225])
