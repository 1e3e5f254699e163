"""Events of interest: an analyst-editable list that later seeds a warehouse table.

Dates are given as dates when the time of day is unknown or irrelevant; NVIDIA results are released
after the US close (about 16:20 New York time), so they carry a timezone-aware timestamp and land on
the next NYSE session but on the same UTC day for crypto (which trades through the evening).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from analysis.calendars import EventMapping, map_event
from analysis.errors import EventStudyInputError


@dataclass(frozen=True)
class Event:
    """An event: a name, when it happened, and what it was.

    Attributes
    ----------
    name
        Short identifier (``"sora"``); unique within a study.
    when
        A date (``"2024-02-15"``) or a timezone-aware timestamp (``"2024-02-21 16:20-05:00"``).
    description
        One line for reports.
    kind
        ``"ai"`` (model launches), ``"earnings"`` ... free text used for grouping.
    """

    name: str
    when: str
    description: str = ""
    kind: str = field(default="")

    def map(self, calendar: str) -> EventMapping:
        """Day 0 of this event on ``calendar`` (see :func:`analysis.calendars.map_event`)."""
        return map_event(self.when, calendar)

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "when": self.when,
            "description": self.description,
            "kind": self.kind,
        }


def as_event(value: object) -> Event:
    """Coerce an :class:`Event`, a dict, a date or a timestamp into an :class:`Event`."""
    if isinstance(value, Event):
        return value
    if isinstance(value, dict):
        return Event(**value)
    if isinstance(value, dt.date | pd.Timestamp | str):
        ts = pd.Timestamp(value)
        if isinstance(value, str):
            when = value.strip()
        elif ts.tzinfo is None and ts == ts.normalize():
            when = ts.date().isoformat()
        else:
            when = ts.isoformat()
        name = when[:10] if len(when) == 10 or ts.tzinfo is None else ts.isoformat()
        return Event(name=name, when=when)
    raise EventStudyInputError(
        f"Cannot read {value!r} as an event; give an Event, a date or a timezone-aware timestamp."
    )


def _nvda(name: str, day: str, quarter: str) -> Event:
    return Event(
        name=name,
        when=pd.Timestamp(f"{day} 16:20", tz="America/New_York").isoformat(),
        description=f"NVIDIA {quarter} results (after the US close)",
        kind="earnings",
    )


DEFAULT_EVENTS: tuple[Event, ...] = (
    Event("chatgpt", "2022-11-30", "OpenAI ChatGPT launch", "ai"),
    Event("gpt4", "2023-03-14", "OpenAI GPT-4 release", "ai"),
    # about 18:00 UTC: OpenAI's post and X announcement of 2024-02-15 (migration 006 cites them)
    Event("sora", "2024-02-15T18:00:00+00:00", "OpenAI Sora announcement", "ai"),
    Event("gpt4o", "2024-05-13", "OpenAI GPT-4o announcement", "ai"),
    Event("sora_release", "2024-12-09", "OpenAI Sora public release", "ai"),
    _nvda("nvda_q4fy22", "2022-02-16", "Q4 FY2022"),
    _nvda("nvda_q1fy23", "2022-05-25", "Q1 FY2023"),
    _nvda("nvda_q2fy23", "2022-08-24", "Q2 FY2023"),
    _nvda("nvda_q3fy23", "2022-11-16", "Q3 FY2023"),
    _nvda("nvda_q4fy23", "2023-02-22", "Q4 FY2023"),
    _nvda("nvda_q1fy24", "2023-05-24", "Q1 FY2024"),
    _nvda("nvda_q2fy24", "2023-08-23", "Q2 FY2024"),
    _nvda("nvda_q3fy24", "2023-11-21", "Q3 FY2024"),
    _nvda("nvda_q4fy24", "2024-02-21", "Q4 FY2024"),
    _nvda("nvda_q1fy25", "2024-05-22", "Q1 FY2025"),
    _nvda("nvda_q2fy25", "2024-08-28", "Q2 FY2025"),
    _nvda("nvda_q3fy25", "2024-11-20", "Q3 FY2025"),
)
"""Seed events: OpenAI launches and NVIDIA quarterly results 2022-2024 (release dates as reported
by NVIDIA; the 16:20 time is indicative, only "after the close" matters for the daily mapping).
Sora carries its announcement time (about 18:00 UTC) for hourly studies; the other OpenAI events
only their date."""


def get_event(name: str) -> Event:
    """The default event called ``name``."""
    for ev in DEFAULT_EVENTS:
        if ev.name == name:
            return ev
    known = ", ".join(e.name for e in DEFAULT_EVENTS)
    raise EventStudyInputError(f"No default event is called {name!r}; known events: {known}.")
