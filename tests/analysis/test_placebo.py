"""Placebo (calendar-time) inference: agreement with the engine, size and power, real data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis import DEFAULT_EVENTS, EventStudy, get_event
from analysis import statistics as st
from analysis.placebo import MIN_PLACEBO, date_stats, empirical_p, placebo

TOL = 1e-10


def _tokens(prices: pd.DataFrame) -> list[str]:
    return sorted(prices.loc[prices["asset_class"] == "ai_token", "symbol"].unique())


def _engine(study: EventStudy, prices: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """CAAR and KP-BMP t of every CAR window from ``EventStudy.fit``, and the pairs kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = study.fit(prices)
    t = res.tests
    kp = t[(t["group"] == "all") & (t["test"] == "kp_bmp") & (t["kind"] == "car")]
    return res.car.mean(axis=0).to_numpy(), kp["stat"].to_numpy(), len(res.params)


@pytest.fixture(scope="module")
def sora_placebo(sora_prices: pd.DataFrame):
    study = EventStudy(
        [get_event("sora")], confounders=[get_event("nvda_q4fy24")], assets=_tokens(sora_prices)
    )
    return study, placebo(study, sora_prices, catalog=DEFAULT_EVENTS)


def test_sora_placebo_equals_the_engine_at_the_real_and_placebo_dates(
    sora_prices: pd.DataFrame, sora_placebo
) -> None:
    study, pl = sora_placebo
    caar, kp, n = _engine(study, sora_prices)
    assert n == pl.n_assets == 8
    np.testing.assert_allclose(pl.real_caar, caar, rtol=0, atol=TOL)
    np.testing.assert_allclose(pl.real_kp, kp, rtol=0, atol=TOL)
    # the first dates have gaps in the younger tokens' estimation windows (pairwise-complete
    # correlations); the last ones have none (unit-norm rows)
    for i in (0, 1, pl.n_placebo // 2, pl.n_placebo - 1):
        day = pl.dates[i]
        one = EventStudy([day.date().isoformat()], assets=_tokens(sora_prices))
        caar, kp, n = _engine(one, sora_prices)
        assert n == 8
        np.testing.assert_allclose(pl.caar[i], caar, rtol=0, atol=TOL)
        np.testing.assert_allclose(pl.kp[i], kp, rtol=0, atol=TOL)


@pytest.mark.parametrize("model", ["market_adjusted", "constant_mean"])
def test_other_models_equal_the_engine(sora_prices: pd.DataFrame, model: str) -> None:
    toks = _tokens(sora_prices)
    study = EventStudy(
        ["2024-02-15"], model=model, estimation_window=(-60, -11), assets=toks, car_windows=[(0, 3)]
    )
    pl = placebo(study, sora_prices, catalog=DEFAULT_EVENTS)
    caar, kp, _ = _engine(study, sora_prices)
    np.testing.assert_allclose(pl.real_caar, caar, rtol=0, atol=TOL)
    np.testing.assert_allclose(pl.real_kp, kp, rtol=0, atol=TOL)
    i = pl.n_placebo // 3
    one = EventStudy(
        [pl.dates[i].date().isoformat()],
        model=model,
        estimation_window=(-60, -11),
        assets=toks,
        car_windows=[(0, 3)],
    )
    caar, kp, _ = _engine(one, sora_prices)
    np.testing.assert_allclose(pl.caar[i], caar, rtol=0, atol=TOL)
    np.testing.assert_allclose(pl.kp[i], kp, rtol=0, atol=TOL)


def test_sora_placebo_dates_avoid_catalog_windows_and_keep_every_asset(sora_placebo) -> None:
    study, pl = sora_placebo
    assert pl.n_placebo >= MIN_PLACEBO
    days = pl.dates.to_numpy()
    span = study.event_window[1] - study.event_window[0]
    for ev in DEFAULT_EVENTS:
        d0 = np.datetime64(ev.map("crypto").session)
        gap = np.abs((days - d0) / np.timedelta64(1, "D"))
        assert (gap > span).all(), ev.name
    assert sum(pl.dropped.values()) + pl.n_placebo == pl.candidates
    # WLD listed 2023-07-24: no placebo date before it has the 55 estimation returns required
    assert pl.dates.min() > pd.Timestamp("2023-09-01")


def test_sora_placebo_json_records(sora_placebo) -> None:
    _, pl = sora_placebo
    recs = json.loads(json.dumps(pl.records()))
    assert [r["window"] for r in recs] == pl.windows
    assert "[0,3]" in pl.windows
    for r in recs:
        assert {"window", "caar", "n_placebo", "p_value"} <= r.keys()
        assert r["n_placebo"] == pl.n_placebo
        assert 0 < r["p_value"] <= 1
    r03 = recs[pl.windows.index("[0,3]")]
    # the Sora CAR[0,3] lies above every placebo CAR: p = 2 / (B + 1)
    assert r03["p_value"] == pytest.approx(2.0 / (pl.n_placebo + 1))


def test_several_events_have_no_shared_date(sora_prices: pd.DataFrame) -> None:
    study = EventStudy(["2024-02-15", "2023-03-14"], assets=_tokens(sora_prices))
    pl = placebo(study, sora_prices)
    assert pl.reason and pl.records() == [] and pl.n_placebo == 0


def test_empirical_p_counts_the_real_value_and_doubles_the_smaller_tail() -> None:
    placebo_values = np.arange(1.0, 40.0)[:, None]  # 39 placebo values 1..39
    assert empirical_p(np.array([100.0]), placebo_values)[0] == pytest.approx(2 / 40)
    assert empirical_p(np.array([-5.0]), placebo_values)[0] == pytest.approx(2 / 40)
    assert empirical_p(np.array([20.0]), placebo_values)[0] == 1.0
    assert empirical_p(np.array([35.5]), placebo_values)[0] == pytest.approx(2 * 5 / 40)
    assert np.isnan(empirical_p(np.array([1.0]), np.full((3, 1), np.nan))[0])


# ------------------------------------------------------------------------------- simulation
STUDY = EventStudy(
    ["2024-01-01"], estimation_window=(-50, -6), event_window=(-5, 5), car_windows=[(0, 0), (0, 3)]
)
N_ASSETS, SPACING, RHO, SIGMA = 8, 12, 0.3, 0.03


def _simulate(reps: int, shock: float, seed: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Placebo and KP-BMP p-values of ``reps`` panels of 8 tokens whose residuals share a
    factor (correlation 0.3) and are fat-tailed (contaminated normal: s.d. 3 on 10% of days,
    kurtosis 8.3). Each panel has ``b + 1`` candidate dates 12 days apart (event windows do not
    overlap); the real date is drawn at random among them and ``shock`` residual s.d. are added
    to every token on its day 0."""
    rng = np.random.default_rng(seed)
    est0, ev1 = STUDY.estimation_window[0], STUDY.event_window[1]
    width, k = ev1 - est0 + 1, b + 1
    t_len = -est0 + SPACING * k + ev1 + 1
    pos = -est0 + SPACING * np.arange(k)
    idx = pos[:, None] + est0 + np.arange(width)  # (k, width)

    def fat(shape: tuple[int, ...]) -> np.ndarray:
        z = rng.standard_normal(shape)
        return z * np.where(rng.random(shape) < 0.1, 3.0, 1.0) / np.sqrt(1.8)

    p_pl, p_kp = [], []
    for lo in range(0, reps, 250):
        r = min(250, reps - lo)
        eps = SIGMA * (
            np.sqrt(RHO) * fat((r, 1, t_len)) + np.sqrt(1 - RHO) * fat((r, N_ASSETS, t_len))
        )
        mkt = 0.02 * fat((r, 1, t_len))
        y = 0.001 + rng.uniform(0.5, 1.5, (r, N_ASSETS, 1)) * mkt + eps
        real = rng.integers(0, k, r)
        y[np.arange(r), :, pos[real]] += shock * SIGMA
        yw = np.moveaxis(y[:, :, idx], 2, 1).reshape(r * k, N_ASSETS, width)
        xw = np.moveaxis(np.broadcast_to(mkt[:, :, idx], (r, N_ASSETS, k, width)), 2, 1)
        s = date_stats(STUDY, yw, xw.reshape(r * k, N_ASSETS, width))
        caar, kp, n = (a.reshape(r, k, -1) for a in (s.caar, s.kp, s.n))
        rows = np.arange(r)
        others = np.ones((r, k), dtype=bool)
        others[rows, real] = False
        for i in range(r):
            p_pl.append(empirical_p(caar[i, real[i]], caar[i, others[i]]))
        p_kp.append(st.pvalue_t(kp[rows, real], n[rows, real] - 1))
    return np.array(p_pl), np.vstack(p_kp)


@pytest.mark.slow  # about 7 s on a busy 2-core machine: 64,000 study fits
def test_placebo_size_under_the_null_and_power_against_a_common_shock() -> None:
    # 39 placebo dates: the fewest at which a two-sided 5% test can reject (p = 2/40)
    p_null, _ = _simulate(1000, shock=0.0, seed=11, b=39)
    size = (p_null <= 0.05).mean(axis=0)
    assert np.all(np.abs(size - 0.05) <= 0.02), size
    # uniform: the deciles of the p-values hold about a tenth each (two-sided p is discrete)
    assert abs((p_null <= 0.5).mean() - 0.5) < 0.05
    # power at 79 placebo dates (the Sora study has 123); with 39 the placebo can only reject
    # when the real CAAR is the most extreme of 40 values
    p_pl, p_kp = _simulate(300, shock=3.0, seed=12, b=79)
    power_pl, power_kp = (p_pl <= 0.05).mean(axis=0), (p_kp <= 0.05).mean(axis=0)
    assert power_pl[0] >= power_kp[0] and power_pl[0] > 0.8, (power_pl, power_kp)


def test_hourly_placebo_hours_equal_the_engine(sora_hourly_csv) -> None:
    """On the hourly clock the placebo dates are hours; each equals the engine's study of that
    hour (the catalog's date-only events block their whole UTC day)."""
    prices = pd.read_csv(sora_hourly_csv)
    prices["date"] = pd.to_datetime(prices.pop("ts")).dt.tz_convert("UTC").dt.tz_localize(None)
    toks = _tokens(prices)
    kw = dict(estimation_window=(-240, -25), event_window=(-24, 24), car_windows=[(0, 0), (0, 5)])
    study = EventStudy(
        [get_event("sora")],
        assets=toks,
        interval="1h",
        **kw,  # type: ignore[arg-type]
    )
    pl = placebo(study, prices, catalog=DEFAULT_EVENTS)
    assert pl.calendar == "crypto_1h" and pl.n_placebo > 1000
    hours = pl.dates.to_numpy()
    # no placebo window (-24..+24 hours) overlaps the window of NVIDIA's results (hour 0 =
    # 2024-02-21 22:00 close, from 21:20 UTC) or of Sora (2024-02-15 19:00)
    for h0 in ("2024-02-21T22:00", "2024-02-15T19:00"):
        gap = np.abs((hours - np.datetime64(h0)) / np.timedelta64(1, "h"))
        assert gap.min() > 48
    caar, kp, n = _engine(study, prices)
    np.testing.assert_allclose(pl.real_caar, caar, rtol=0, atol=TOL)
    np.testing.assert_allclose(pl.real_kp, kp, rtol=0, atol=TOL)
    for i in (0, pl.n_placebo - 1):
        when = (pd.Timestamp(pl.dates[i]) - pd.Timedelta(minutes=30)).tz_localize("UTC")
        one = EventStudy([when.isoformat()], assets=toks, interval="1h", **kw)  # type: ignore[arg-type]
        caar, kp, n = _engine(one, prices)
        assert n == pl.n_assets
        np.testing.assert_allclose(pl.caar[i], caar, rtol=0, atol=TOL)
        np.testing.assert_allclose(pl.kp[i], kp, rtol=0, atol=TOL)
