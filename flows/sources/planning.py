"""Planning from coverage, the same for every source: what a series still needs, and what a
fetch adds to its coverage. Pure functions of dates (no I/O), tested on their own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

DAY = timedelta(days=1)


@dataclass(frozen=True)
class SeriesPlan:
    """The close-date ranges to fetch for one series of one source (empty: up to date)."""

    source: str
    series_id: str
    ranges: tuple[tuple[date, date], ...]
    covered_from: date | None
    covered_to: date | None

    @property
    def up_to_date(self) -> bool:
        return not self.ranges

    def with_ranges(self, ranges: Sequence[tuple[date, date]]) -> SeriesPlan:
        return SeriesPlan(
            self.source, self.series_id, tuple(ranges), self.covered_from, self.covered_to
        )


def plan_series(
    source: str,
    series_ids: Iterable[str],
    coverage: Mapping[str, tuple[date, date | None]],
    *,
    end: date,
    since: date | None,
    lookback_days: int,
) -> list[SeriesPlan]:
    """The ranges each series still needs, from its coverage.

    Upper range: from the day after ``covered_to`` (or, for a new series, from ``since`` or
    ``end - lookback_days``) to ``end``. Lower range (backfill only): from ``since`` to the day
    before ``covered_from``. Ranges that are empty are left out, so a series up to date costs
    no call.
    """
    plans = []
    for sid in series_ids:
        covered_from, covered_to = coverage.get(sid, (None, None))
        ranges: list[tuple[date, date]] = []
        if covered_from is None:
            start = since or end - timedelta(days=lookback_days - 1)
            if start <= end:
                ranges.append((start, end))
        else:
            if since is not None and since < covered_from and since <= end:
                ranges.append((since, min(covered_from - DAY, end)))
            upper_start = (covered_to or covered_from - DAY) + DAY
            if upper_start <= end:
                ranges.append((upper_start, end))
        plans.append(SeriesPlan(source, sid, tuple(ranges), covered_from, covered_to))
    return plans


def extended_coverage(
    plan: SeriesPlan, requested: Sequence[tuple[date, date] | None], received: pd.Series
) -> tuple[date | None, date | None]:
    """The series' coverage after this fetch: every day in it was really asked for.

    ``requested`` is what each plan range actually asked for once a plan's history cap cut it.
    A range below the coverage (a backfill) extends it down to its start. The upper range
    normally starts the day after the coverage ends; when a cap cut its start forward (a
    warehouse idle for over a year), the days between were never asked for, so the coverage
    restarts at the range's start and a later backfill fills the hole. The end is the last
    day actually received: a day not yet published is asked for again next run.
    """
    lo, hi = plan.covered_from, plan.covered_to
    for asked in requested:
        if asked is None:
            continue  # the cap left nothing of this range to ask for
        start, end = asked
        if lo is not None and end < lo:
            if end + DAY >= lo:
                lo = start  # a lower range ends the day before the coverage: contiguous
            # else a window below the coverage with a gap between (``--until``, an hourly
            # window around an old event): one interval cannot hold both, so the coverage
            # stays as it was and that window is asked again if it is asked for again
            continue
        if lo is None:
            lo, hi = start, None  # nothing held yet: the coverage starts here
            continue
        reach = (hi if hi is not None else lo - DAY) + DAY
        if start > reach:
            lo, hi = start, None  # a hole the cap left: restart here
        elif start < lo:
            lo = start  # one range spanning below and through the coverage (equities)
    last_received = max(received) if len(received) else None
    candidates = [d for d in (hi, last_received) if d is not None]
    return lo, (max(candidates) if candidates else None)
