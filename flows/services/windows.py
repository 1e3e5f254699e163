"""Day windows given on the command line (``--window -5:10``), parsed once for every service.

Its own module, below :mod:`flows.services.study` and :mod:`flows.services.second_stage`, so
both parse windows the same way without importing each other; a bad window is the user's
input (:class:`flows.errors.OptionError`, exit 2), not a warehouse error.
"""

from __future__ import annotations

from flows.errors import OptionError

MAX_WINDOW_DAYS = 7_500  # sessions either side of day 0; beyond that dates overflow pandas


def parse_window(text: str, option: str) -> tuple[int, int]:
    """``"A:B"`` -> ``(A, B)``, both integers, A <= B; a clear one-line error otherwise."""
    parts = (text or "").replace(" ", "").split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = int(parts[0]), int(parts[1])
    except ValueError:
        raise OptionError(
            f"{option} {text!r} is not FIRST:LAST in days relative to day 0 (e.g. -5:10)"
        ) from None
    if lo > hi:
        raise OptionError(f"{option} {text} starts after it ends (first day {lo} > last day {hi})")
    if max(abs(lo), abs(hi)) > MAX_WINDOW_DAYS:
        raise OptionError(
            f"{option} {text} reaches more than {MAX_WINDOW_DAYS:,} sessions from day 0 "
            "(about 20 years of UTC days): use a window within it"
        )
    return lo, hi


__all__ = ["MAX_WINDOW_DAYS", "parse_window"]
