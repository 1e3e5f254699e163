"""Calendars, event mapping and returns on each asset's own calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis import CalendarError, NonSessionPriceWarning, calendar_for, map_event, sessions
from analysis.errors import EventStudyInputError
from analysis.events import DEFAULT_EVENTS, as_event, get_event
from analysis.returns import returns_from_closes


def test_crypto_trades_every_utc_day():
    s = sessions("crypto", "2024-02-15", "2024-02-21")
    assert len(s) == 7 and s[0] == pd.Timestamp("2024-02-15")


def test_nyse_skips_weekends_and_presidents_day():
    s = sessions("XNYS", "2024-02-15", "2024-02-22")
    assert [d.strftime("%m-%d") for d in s] == ["02-15", "02-16", "02-20", "02-21", "02-22"]


@pytest.mark.parametrize(
    ("asset_class", "calendar"),
    [
        ("ai_token", "crypto"),
        ("crypto_benchmark", "crypto"),
        ("equity", "XNYS"),
        ("equity_benchmark", "XNYS"),
    ],
)
def test_calendar_for(asset_class, calendar):
    assert calendar_for(asset_class) == calendar


def test_calendar_for_unknown_class_says_how_to_fix():
    with pytest.raises(CalendarError, match="calendars="):
        calendar_for("bond")


@pytest.mark.parametrize(
    ("when", "calendar", "session", "moved"),
    [
        ("2024-02-15", "XNYS", "2024-02-15", False),  # a session
        ("2024-02-17", "XNYS", "2024-02-20", True),  # Saturday -> Tuesday (Monday is a holiday)
        ("2024-02-19", "XNYS", "2024-02-20", True),  # Presidents' Day
        ("2024-02-17", "crypto", "2024-02-17", False),
        (dt.date(2024, 2, 19), "XNYS", "2024-02-20", True),
        ("2024-02-21 16:20-05:00", "XNYS", "2024-02-22", True),  # after the close
        ("2024-02-21 15:59-05:00", "XNYS", "2024-02-21", False),  # before the close
        ("2024-02-21 08:00-05:00", "XNYS", "2024-02-21", False),  # pre-market
        ("2024-02-21 16:20-05:00", "crypto", "2024-02-21", False),  # 21:20 UTC, same UTC day
        ("2024-02-21 20:00-05:00", "crypto", "2024-02-22", False),  # 01:00 UTC next day
        ("2024-02-17 10:00-05:00", "XNYS", "2024-02-20", True),  # weekend timestamp
    ],
)
def test_map_event(when, calendar, session, moved):
    m = map_event(when, calendar)
    assert m.session == pd.Timestamp(session)
    assert m.moved is moved
    assert m.to_dict()["policy"] == "next_session" and m.reason


def test_naive_timestamp_with_time_is_refused():
    with pytest.raises(CalendarError, match="time zone"):
        map_event("2024-02-21 16:20", "XNYS")


def test_default_events():
    names = [e.name for e in DEFAULT_EVENTS]
    assert len(names) == len(set(names))
    sora = get_event("sora")
    assert sora.when == "2024-02-15T18:00:00+00:00"  # about 18:00 UTC (migration 006)
    # the time changes no daily day 0: the same UTC day, and before the NYSE close
    assert sora.map("crypto").session == pd.Timestamp("2024-02-15")
    assert sora.map("XNYS").session == pd.Timestamp("2024-02-15")
    assert sora.map("crypto_1h").session == pd.Timestamp("2024-02-15 19:00")
    assert get_event("sora").description == "OpenAI Sora announcement"
    nv = get_event("nvda_q4fy24")
    assert nv.map("XNYS").session == pd.Timestamp("2024-02-22")
    assert nv.map("crypto").session == pd.Timestamp("2024-02-21")
    assert as_event("2024-02-15").name == "2024-02-15"
    with pytest.raises(EventStudyInputError, match="No default event"):
        get_event("nope")


def _closes(dates, values, name="X"):
    return pd.Series(values, index=pd.DatetimeIndex(dates), name=name)


def test_simple_and_log_returns():
    c = _closes(["2024-02-15", "2024-02-16", "2024-02-17"], [100.0, 110.0, 99.0])
    simple = returns_from_closes(c, "crypto")
    log = returns_from_closes(c, "crypto", "log")
    np.testing.assert_allclose(simple.to_numpy()[1:], [0.1, -0.1])
    np.testing.assert_allclose(log.to_numpy()[1:], np.log([1.1, 0.9]))
    assert np.isnan(simple.iloc[0])


def test_a_missing_close_leaves_a_gap_not_a_two_day_return():
    c = _closes(["2024-02-15", "2024-02-16", "2024-02-18", "2024-02-19"], [1.0, 2.0, 4.0, 8.0])
    r = returns_from_closes(c, "crypto")
    assert list(r.index.strftime("%d")) == ["15", "16", "17", "18", "19"]
    np.testing.assert_array_equal(np.isnan(r.to_numpy()), [True, False, True, True, False])


def test_equity_returns_span_sessions_over_a_holiday():
    c = _closes(["2024-02-16", "2024-02-20"], [10.0, 11.0])
    r = returns_from_closes(c, "XNYS")
    assert r.loc["2024-02-20"] == pytest.approx(0.1)  # Friday -> Tuesday is one session


def test_prices_on_non_sessions_are_ignored_with_a_warning():
    c = _closes(["2024-02-16", "2024-02-17", "2024-02-20"], [10.0, 10.5, 11.0])
    with pytest.warns(NonSessionPriceWarning, match="non-sessions"):
        r = returns_from_closes(c, "XNYS")
    assert r.loc["2024-02-20"] == pytest.approx(0.1)


def test_non_positive_prices_are_refused():
    with pytest.raises(EventStudyInputError, match="zero or negative"):
        returns_from_closes(_closes(["2024-02-16", "2024-02-17"], [1.0, 0.0]), "crypto")
