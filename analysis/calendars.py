"""Trading calendars and the mapping of events onto sessions.

Each asset is studied in its own time: crypto trades every UTC calendar day (a session is a UTC day
whose close is 24:00 UTC), equities trade on the sessions of their exchange as maintained by
``exchange_calendars`` (NYSE holidays such as 2024-02-19 are not sessions). Event windows are
counted in these sessions, so "day +1" of a token and of NVDA can be different calendar dates.

Event policy (:data:`EVENT_POLICY`): a date (no time of day) that is a session is day 0; a date that
is not a session moves to the next session. A timezone-aware timestamp is day 0 of the session whose
close it precedes (announcements before the open or during trading hit that session's close-to-close
return); a timestamp at or after the close, or on a non-session day, moves to the next session.

Hourly clock (:data:`HOURLY`, ``interval="1h"``, 24/7 assets only): a session is one UTC hour,
labelled by its **close** time (the warehouse's ``ts``), so the return at session ``s`` spans
``[s - 1h, s)``. Hour 0 of an event at instant ``t`` is the return over
``[floor_hour(t), floor_hour(t) + 1h)``, labelled ``floor_hour(t) + 1h`` (:data:`HOURLY_POLICY`):
Sora, announced at 18:00 UTC, has hour 0 = the 18:00 -> 19:00 return, labelled 19:00. Windows count
hours. Equities stay on their exchange's daily sessions: they have no hourly calendar.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from analysis.errors import CalendarError

CRYPTO = "crypto"
"""Calendar code of assets that trade every UTC day."""
HOURLY = "crypto_1h"
"""Calendar code of 24/7 assets on the hourly clock: every UTC hour, labelled by its close."""
INTERVALS = ("1d", "1h")
"""Clocks of a study: ``"1d"`` (sessions: UTC days, exchange sessions) or ``"1h"`` (UTC hours)."""

EVENT_POLICY = "next_session"
EVENT_POLICY_TEXT = (
    "a date that is a session is day 0; a non-session date moves to the next session; a "
    "timezone-aware timestamp before the session close is day 0 of that session, at or after the "
    "close it moves to the next session"
)

HOURLY_POLICY = "hour_0_floor"
HOURLY_POLICY_TEXT = (
    "hour 0 is the return over [floor_hour(t), floor_hour(t) + 1h) of the event time t (UTC), "
    "labelled by its close floor_hour(t) + 1h; windows count hours; returns are simple or log "
    "returns between consecutive hour closes"
)
EQUITIES_DAILY_TEXT = "equities stay daily in hourly studies"


def event_policy(interval: str) -> tuple[str, str]:
    """The event-time policy code and its sentence for a study clock (``"1d"`` or ``"1h"``)."""
    return (
        (HOURLY_POLICY, HOURLY_POLICY_TEXT)
        if interval == "1h"
        else (EVENT_POLICY, EVENT_POLICY_TEXT)
    )


ASSET_CLASS_CALENDARS: dict[str, str] = {
    "ai_token": CRYPTO,
    "crypto": CRYPTO,
    "crypto_benchmark": CRYPTO,
    "equity": "XNYS",
    "equity_benchmark": "XNYS",
}
"""Default calendar per asset class; override per symbol in :class:`analysis.EventStudy`."""


def calendar_for(asset_class: str, interval: str = "1d") -> str:
    """Return the calendar code an asset class trades on (``"crypto"`` or an exchange code; on
    the hourly clock ``interval="1h"``, :data:`HOURLY` for 24/7 classes).

    Raises
    ------
    CalendarError
        If the asset class has no default calendar, or no hourly one (equities stay daily).
    """
    try:
        code = ASSET_CLASS_CALENDARS[asset_class]
    except KeyError:
        known = ", ".join(sorted(ASSET_CLASS_CALENDARS))
        raise CalendarError(
            f"Asset class {asset_class!r} has no default calendar. Use one of {known}, or pass "
            "calendars={symbol: code} to the study."
        ) from None
    if interval == "1h":
        if code != CRYPTO:
            raise CalendarError(
                f"Asset class {asset_class!r} trades on {code} sessions, not around the clock: "
                f"{EQUITIES_DAILY_TEXT}. Study it with interval='1d'."
            )
        return HOURLY
    return code


def _hour(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.floor("h")


def session_label(calendar: str, session: object) -> str:
    """A session as text: its date, or ``2024-02-15 19:00Z`` (an hour's close) on :data:`HOURLY`."""
    ts = pd.Timestamp(session)
    if calendar == HOURLY:
        return ts.strftime("%Y-%m-%d %H:%MZ")
    return ts.date().isoformat()


@lru_cache(maxsize=16)
def _exchange_calendar(code: str, start_year: int) -> xcals.ExchangeCalendar:
    try:
        with warnings.catch_warnings():
            # exchange_calendars 4.13 reads tz-aware Series.values, which pandas 3.1 deprecates;
            # the values it builds are correct, so keep the noise out of our users' output.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            return xcals.get_calendar(code, start=f"{start_year}-01-01")
    except xcals.errors.InvalidCalendarName:
        raise CalendarError(
            f"Calendar {code!r} is neither 'crypto' nor an exchange_calendars code such as 'XNYS'."
        ) from None


def _calendar(code: str, start: pd.Timestamp) -> xcals.ExchangeCalendar:
    # exchange_calendars builds 20 years back by default; start earlier only when asked to.
    return _exchange_calendar(code, min(start.year, 2000))


def _day(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def sessions(calendar: str, start: object, end: object) -> pd.DatetimeIndex:
    """Sessions of ``calendar`` from ``start`` to ``end`` inclusive, as naive dates.

    Parameters
    ----------
    calendar
        ``"crypto"`` (every UTC day) or an ``exchange_calendars`` code such as ``"XNYS"``.
    start, end
        Anything :class:`pandas.Timestamp` accepts; only the date is used.
    """
    if calendar == HOURLY:
        h0, h1 = _hour(start), _hour(end)
        if h1 < h0:
            return pd.DatetimeIndex([], name="date")
        return pd.date_range(h0, h1, freq="h", name="date")
    lo, hi = _day(start), _day(end)
    if hi < lo:
        return pd.DatetimeIndex([], name="date")
    if calendar == CRYPTO:
        return pd.date_range(lo, hi, freq="D", name="date")
    cal = _calendar(calendar, lo)
    lo_c, hi_c = max(lo, cal.first_session), min(hi, cal.last_session)
    if hi_c < lo_c:
        return pd.DatetimeIndex([], name="date")
    out = cal.sessions_in_range(lo_c, hi_c)
    return pd.DatetimeIndex(out.tz_localize(None) if out.tz is not None else out, name="date")


def session_close(calendar: str, session: object) -> pd.Timestamp:
    """UTC time at which ``session`` closes (24:00 UTC for crypto, the label itself for an hour,
    the exchange close otherwise)."""
    if calendar == HOURLY:
        return _hour(session).tz_localize("UTC")
    day = _day(session)
    if calendar == CRYPTO:
        return (day + pd.Timedelta(days=1)).tz_localize("UTC")
    return _calendar(calendar, day).session_close(day)


def is_session(calendar: str, day: object) -> bool:
    """Whether ``day`` is a session of ``calendar`` (on :data:`HOURLY`: a time on the hour)."""
    if calendar == HOURLY:
        ts = pd.Timestamp(day)
        return bool(ts == ts.floor("h"))
    d = _day(day)
    return True if calendar == CRYPTO else bool(_calendar(calendar, d).is_session(d))


def next_session(calendar: str, day: object) -> pd.Timestamp:
    """The first session strictly after ``day``."""
    if calendar == HOURLY:
        return _hour(day) + pd.Timedelta(hours=1)
    d = _day(day) + pd.Timedelta(days=1)
    if calendar == CRYPTO:
        return d
    return _calendar(calendar, d).date_to_session(d, direction="next").tz_localize(None)


@dataclass(frozen=True)
class EventMapping:
    """Where an event lands on one calendar, and why.

    Attributes
    ----------
    requested
        The event time as given (ISO text).
    calendar
        Calendar code.
    session
        Day 0 of the event on that calendar.
    moved
        Whether day 0 differs from the requested calendar date.
    reason
        One sentence saying which rule of :data:`EVENT_POLICY` applied.
    """

    requested: str
    calendar: str
    session: pd.Timestamp
    moved: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "calendar": self.calendar,
            "session": (
                self.session.strftime("%Y-%m-%dT%H:%M:%SZ")
                if self.calendar == HOURLY
                else self.session.date().isoformat()
            ),
            "moved": self.moved,
            "reason": self.reason,
            "policy": HOURLY_POLICY if self.calendar == HOURLY else EVENT_POLICY,
        }


def is_date_only(when: object) -> bool:
    """Whether an event time is a date without a time of day."""
    return _is_date_only(when)


def _is_date_only(when: object) -> bool:
    if isinstance(when, dt.date) and not isinstance(when, dt.datetime):
        return True
    if isinstance(when, str):
        return len(when.strip()) == 10
    ts = pd.Timestamp(when)
    return ts.tzinfo is None and ts == ts.normalize()


def map_event(when: object, calendar: str) -> EventMapping:
    """Map an event date or timezone-aware timestamp to day 0 on ``calendar``.

    Parameters
    ----------
    when
        A date (``"2024-02-15"``, :class:`datetime.date`, a naive midnight timestamp) or a
        timezone-aware timestamp (``"2024-02-21 16:20-05:00"``).
    calendar
        ``"crypto"`` or an exchange code.

    Returns
    -------
    EventMapping
        Day 0 with the rule that placed it; see :data:`EVENT_POLICY_TEXT`.

    Raises
    ------
    CalendarError
        For a naive timestamp with a time of day, whose time zone would be a guess.
    """
    requested = str(when)
    if calendar == HOURLY:
        return _map_hourly(when, requested)
    if _is_date_only(when):
        day = _day(when)
        if is_session(calendar, day):
            return EventMapping(requested, calendar, day, False, "date is a session")
        nxt = next_session(calendar, day)
        return EventMapping(
            requested, calendar, nxt, True, f"{day.date()} is not a session: next session"
        )
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise CalendarError(
            f"Event time {requested!r} has a time of day but no time zone. Give a date, or a "
            "timestamp with its zone such as '2024-02-21 16:20-05:00'."
        )
    utc = ts.tz_convert("UTC")
    if calendar == CRYPTO:
        day = utc.tz_localize(None).normalize()
        return EventMapping(requested, calendar, day, False, "timestamp inside this UTC day")
    cal = _calendar(calendar, utc.tz_localize(None))
    local_day = utc.tz_convert(cal.tz).tz_localize(None).normalize()
    if cal.is_session(local_day):
        close = cal.session_close(local_day)
        if utc < close:
            return EventMapping(requested, calendar, local_day, False, "before the session close")
        nxt = next_session(calendar, local_day)
        return EventMapping(
            requested,
            calendar,
            nxt,
            True,
            f"at or after the {local_day.date()} close: next session",
        )
    nxt = next_session(calendar, local_day)
    return EventMapping(
        requested, calendar, nxt, True, f"{local_day.date()} is not a session: next session"
    )


def _map_hourly(when: object, requested: str) -> EventMapping:
    """Hour 0 on the hourly clock: the hour ``[floor_hour(t), floor_hour(t) + 1h)`` holding the
    event time, labelled by its close; a bare date starts at 00:00 UTC (its first hour)."""
    if _is_date_only(when):
        day = _day(when)
        return EventMapping(
            requested,
            HOURLY,
            day + pd.Timedelta(hours=1),
            False,
            "a date without a time of day: hour 0 is the first hour of the UTC day [00:00, 01:00)",
        )
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise CalendarError(
            f"Event time {requested!r} has a time of day but no time zone. Give a timestamp with "
            "its zone such as '2024-02-15T18:00Z'."
        )
    utc = ts.tz_convert("UTC").tz_localize(None)
    start = utc.floor("h")
    end = start + pd.Timedelta(hours=1)
    return EventMapping(
        requested,
        HOURLY,
        end,
        False,
        f"hour 0 = the return over [{start:%H:%M}, {end:%H:%M}) UTC holding "
        f"{utc:%Y-%m-%d %H:%M} UTC, labelled by its close {end:%H:%M}",
    )
