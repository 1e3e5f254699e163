"""The hourly clock: hour 0 mapping, refusals, and seeded simulations of the hourly engine.

Simulated hourly returns follow a market model with cross-correlated residuals (one common
factor, correlation ``RHO``), so the plain BMP test over-rejects and the Kolari-Pynnonen
adjustment must bring the size back to the nominal 5%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import CalendarError, Event, EventStudy, EventStudyInputError, map_event
from analysis.calendars import HOURLY, next_session, session_close, sessions

RHO = 0.3  # residual cross-correlation of the simulated tokens
N_ASSETS = 10
SPACING = 800  # hours between simulated events: estimation -720..-25 and window -24..72 fit
EST, WIN = (-720, -25), (-24, 72)


# ------------------------------------------------------------------------ calendar and mapping
@pytest.mark.parametrize(
    ("when", "hour0"),
    [
        ("2024-02-15T18:00Z", "2024-02-15 19:00"),  # Sora: the 18:00 -> 19:00 return
        ("2024-02-15T18:59:59+00:00", "2024-02-15 19:00"),
        ("2024-02-15T19:00Z", "2024-02-15 20:00"),  # on the hour: the hour it opens
        ("2024-02-21 16:20-05:00", "2024-02-21 22:00"),  # NVDA 21:20 UTC
        ("2024-02-15T23:30Z", "2024-02-16 00:00"),  # the hour closing at midnight
    ],
)
def test_hour_0_is_the_hour_holding_the_event_labelled_by_its_close(when, hour0):
    m = map_event(when, HOURLY)
    assert m.session == pd.Timestamp(hour0)
    assert m.to_dict()["policy"] == "hour_0_floor"
    assert m.to_dict()["session"] == pd.Timestamp(hour0).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_hourly_calendar_counts_every_utc_hour():
    s = sessions(HOURLY, "2024-02-15 17:30", "2024-02-15T21:00Z")
    assert list(s.strftime("%H")) == ["17", "18", "19", "20", "21"]
    assert next_session(HOURLY, "2024-02-15 19:00") == pd.Timestamp("2024-02-15 20:00")
    assert session_close(HOURLY, "2024-02-15 19:00") == pd.Timestamp("2024-02-15 19:00Z")
    # a bare date starts at 00:00 UTC (used only for date-only confounders)
    assert map_event("2024-02-15", HOURLY).session == pd.Timestamp("2024-02-15 01:00")
    with pytest.raises(CalendarError, match="no time zone"):
        map_event("2024-02-15 18:00", HOURLY)


def test_hourly_study_refuses_dates_equities_and_daily_calendars():
    with pytest.raises(EventStudyInputError, match="needs the time of day of each event; sora"):
        EventStudy([Event("sora", "2024-02-15")], interval="1h")
    with pytest.raises(EventStudyInputError, match="Interval '5m' is unknown"):
        EventStudy(["2024-02-15T18:00Z"], interval="5m")
    with pytest.raises(EventStudyInputError, match="crypto=.* daily calendar|daily calendar"):
        EventStudy(["2024-02-15T18:00Z"], interval="1h", calendars={"ai_token": "crypto"})
    rets, meta = _panel(np.random.default_rng(0), 1, hours=1_000)
    meta["NVDA"] = "equity"
    rets["NVDA"] = 0.0
    hour0 = rets.index[800]
    study = EventStudy([_event(0, hour0)], interval="1h", estimation_window=EST, event_window=WIN)
    with pytest.raises(CalendarError, match="equities stay daily in hourly studies"):
        study.fit(returns=rets, meta=meta)


def test_spec_round_trip_keeps_the_interval():
    study = EventStudy(["2024-02-15T18:00Z"], interval="1h", estimation_window=EST)
    spec = study.spec
    assert (spec["interval"], spec["event_policy"]) == ("1h", "hour_0_floor")
    assert EventStudy.from_spec(spec).interval == "1h"
    assert EventStudy(["2024-02-15"]).spec["interval"] == "1d"
    old = EventStudy(["2024-02-15"]).spec
    del old["interval"]  # runs stored before the hourly clock
    assert EventStudy.from_spec(old).interval == "1d"


def test_hourly_prices_must_sit_on_the_hour():
    prices = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-02-15 18:00Z", "2024-02-15 18:30Z"]),
            "symbol": ["FET", "FET"],
            "close": [1.0, 1.1],
            "asset_class": "ai_token",
        }
    )
    with pytest.raises(EventStudyInputError, match="not on the hour"):
        EventStudy(["2024-02-15T18:00Z"], interval="1h").fit(prices)


# ------------------------------------------------------------------------ simulation
def _panel(
    rng: np.random.Generator, n_events: int, *, hours: int | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Hourly returns of N_ASSETS tokens and a market ``MKT``: R = a + b R_m + s e with
    e = sqrt(RHO) f + sqrt(1 - RHO) u (one common factor f: cross-correlated residuals)."""
    t = hours or (n_events + 1) * SPACING
    idx = pd.date_range("2023-01-01 01:00", periods=t, freq="h", name="date")
    rm = rng.normal(0.0, 0.006, t)
    eps = np.sqrt(RHO) * rng.normal(size=(t, 1)) + np.sqrt(1 - RHO) * rng.normal(size=(t, N_ASSETS))
    beta = rng.uniform(0.7, 1.5, N_ASSETS)
    sigma = rng.uniform(0.005, 0.015, N_ASSETS)
    r = 1e-4 + rm[:, None] * beta + eps * sigma
    names = [f"T{i:02d}" for i in range(N_ASSETS)]
    frame = pd.DataFrame(r, index=idx, columns=names)
    frame["MKT"] = rm
    meta = dict.fromkeys(names, "ai_token") | {"MKT": "crypto_benchmark"}
    return frame, meta


def _event(k: int, hour0: pd.Timestamp) -> Event:
    """An announcement 20 minutes into the hour whose close labels hour 0."""
    t = (hour0 - pd.Timedelta(minutes=40)).tz_localize("UTC")
    return Event(f"e{k}", t.isoformat())


def _study(events: list[Event], **kw) -> EventStudy:
    return EventStudy(
        events,
        interval="1h",
        estimation_window=EST,
        event_window=WIN,
        car_windows=[(0, 0), (0, 2), (0, 5), (0, 23), (-24, -1)],
        benchmarks={"ai_token": "MKT"},
        portfolios=False,
        **kw,
    )


def test_a_jump_at_hour_3_is_found_in_0_5_and_not_before(tmp_path):
    rng = np.random.default_rng(20240215)
    rets, meta = _panel(rng, 1)
    hour0 = rets.index[SPACING]
    jump_at = hour0 + pd.Timedelta(hours=3)
    rets.loc[jump_at, rets.columns[:-1]] += 0.06  # +6% for every token at hour 3
    res = _study([_event(0, hour0)]).fit(returns=rets, meta=meta)
    assert res.event_dates.loc[3].iloc[0] == jump_at
    kp = res.headline.set_index("window")
    assert kp.loc["[0,5]", "pvalue"] < 0.01
    assert kp.loc["[0,23]", "pvalue"] < 0.05
    assert kp.loc["[-24,-1]", "pvalue"] > 0.05
    assert kp.loc["[0,2]", "pvalue"] > 0.05  # the hours before the jump
    # the hour itself: the day-kind test of hour +3 rejects, hour +2 does not
    assert res.test("kp_bmp", "+3").pvalue < 0.01
    assert res.test("kp_bmp", "+2").pvalue > 0.05
    assert (res.car["[0,5]"] > 0.03).all()  # every token carries the jump


def test_kp_size_is_nominal_with_cross_correlated_hourly_residuals():
    """1,000 events (one multi-event fit, one KP test per event): KP rejects 5% +/- 2 points at
    the 5% level in every window, while the unadjusted BMP over-rejects."""
    rng = np.random.default_rng(7)
    n_events = 1_000
    rets, meta = _panel(rng, n_events)
    events = [_event(k, rets.index[(k + 1) * SPACING - 40]) for k in range(n_events)]
    res = _study(events, tests=["bmp", "kp_bmp"]).fit(returns=rets, meta=meta)
    t = res.tests
    t = t[t["group"].str.startswith("event=") & (t["kind"] == "car")]
    rates = (t["pvalue"] < 0.05).groupby([t["test"], t["window"]]).mean()
    kp = rates.loc["kp_bmp"]
    assert len(kp) == 5 and t.groupby("test").size().loc["kp_bmp"] == 5 * n_events
    assert ((kp - 0.05).abs() <= 0.02).all(), kp.to_dict()
    assert (rates.loc["bmp"] > 0.15).all(), rates.loc["bmp"].to_dict()


@pytest.mark.parametrize(
    ("model", "convention"),
    [
        ("market", "textbook"),
        ("market", "estudy2"),
        ("market_adjusted", "textbook"),
        ("constant_mean", "textbook"),
    ],
)
def test_every_model_and_test_runs_on_the_hourly_clock(model, convention):
    """The daily engine's models, variances and registry of tests, unchanged, on hours."""
    from analysis.cstests import TESTS

    rets, meta = _panel(np.random.default_rng(3), 1)
    hour0 = rets.index[SPACING]
    study = _study([_event(0, hour0)], model=model, convention=convention)
    study = EventStudy.from_spec({**study.spec, "portfolios": True})
    res = study.fit(returns=rets, meta=meta)
    assert res.abnormal_returns.index.name == "hour"
    assert res.abnormal_returns.index.tolist() == list(range(-24, 73))
    assert res.event_dates.loc[0].iloc[0] == hour0
    t = res.tests
    car = t[(t["group"] == "all") & (t["kind"] == "car")]
    assert set(car["test"]) == set(TESTS)
    computed = car[car["reason"] == ""]
    needs_market = {"lamb"} if model != "market" else set()
    assert set(computed["test"]) == set(TESTS) - needs_market
    assert computed["pvalue"].between(0, 1).all()
    # CAR variance over L hours is MacKinlay's, not the sum of the hourly variances
    var_sum = (res.ar_std.loc[0:5] ** 2).sum()
    car_var = res.car_std["[0,5]"] ** 2
    if model == "market":
        assert not np.allclose(car_var.to_numpy(), var_sum.to_numpy(), rtol=1e-6)
    assert not res.portfolios.empty
    frame = res.to_frame()
    assert set(frame["kind"]) == {"day", "car"} and len(frame) == N_ASSETS * (97 + 5)
