"""Event-study engine: pandas in, result objects out (no database access).

Public API::

    from analysis import EventStudy, Event, DEFAULT_EVENTS
    res = EventStudy([get_event("sora")], confounders=[get_event("nvda_q4fy24")]).fit(prices)
    print(res.summary()); res.tests; res.to_json()
"""

from analysis.calendars import calendar_for, map_event, sessions
from analysis.errors import (
    AssetsExcludedWarning,
    CalendarError,
    EventStudyInputError,
    InsufficientHistoryError,
    NonSessionPriceWarning,
    UnknownAssetError,
    WindowOutsideDataError,
)
from analysis.events import DEFAULT_EVENTS, Event, get_event
from analysis.eventstudy import DEFAULT_CAR_WINDOWS, EventStudy
from analysis.results import EventStudyResult
from analysis.returns import returns_from_closes
from analysis.statistics import TestStatistic

__all__ = [
    "DEFAULT_CAR_WINDOWS",
    "DEFAULT_EVENTS",
    "AssetsExcludedWarning",
    "CalendarError",
    "Event",
    "EventStudy",
    "EventStudyInputError",
    "EventStudyResult",
    "InsufficientHistoryError",
    "NonSessionPriceWarning",
    "TestStatistic",
    "UnknownAssetError",
    "WindowOutsideDataError",
    "calendar_for",
    "get_event",
    "map_event",
    "returns_from_closes",
    "sessions",
]
