"""Returns from closes, on each asset's own calendar.

A return at session ``s`` spans the previous session of the same calendar to ``s``:

.. math::  R^{simple}_s = P_s / P_{s-1} - 1, \\qquad R^{log}_s = \\ln P_s - \\ln P_{s-1}.

Gap policy: when a close is missing at a session, the returns at that session and at the next one
are missing (NaN). A two-session move is never recorded as a one-session return, because the
event-study variances assume one return per session; the missing days simply drop out of the
estimation window (and an event window with a gap yields no CAR over that gap).

Closes dated on non-sessions (an equity price on a Saturday) are ignored with a
:class:`~analysis.errors.NonSessionPriceWarning`. Crypto closes are UTC-day closes: the warehouse
shifts CoinGecko's 00:00 UTC stamp of day D to the close of D-1 before data reaches this module.
"""

from __future__ import annotations

import warnings
from typing import Literal

import pandas as pd

from analysis.calendars import sessions
from analysis.errors import EventStudyInputError, NonSessionPriceWarning
from analysis.panel import closes_to_returns

ReturnKind = Literal["simple", "log"]
RETURN_KINDS: tuple[str, ...] = ("simple", "log")


def _check_kind(kind: str) -> None:
    if kind not in RETURN_KINDS:
        raise EventStudyInputError(f"Return kind {kind!r} is unknown; use 'simple' or 'log'.")


def returns_from_closes(
    closes: pd.Series,
    calendar: str,
    kind: ReturnKind = "simple",
    *,
    start: object | None = None,
    end: object | None = None,
) -> pd.Series:
    """Session-to-session returns of one asset on ``calendar``.

    Parameters
    ----------
    closes
        Closes indexed by naive date (the UTC day for crypto, the session date for equities).
    calendar
        ``"crypto"`` or an exchange code.
    kind
        ``"simple"`` or ``"log"``.
    start, end
        Session range of the output; defaults to the first and last close.

    Returns
    -------
    pandas.Series
        Returns indexed by every session of the range; NaN where a close is missing at the session
        or at the session before it.
    """
    _check_kind(kind)
    s = pd.Series(closes, dtype="float64").dropna()
    s.index = pd.DatetimeIndex(s.index).normalize()
    if s.index.has_duplicates:
        raise EventStudyInputError(
            f"Closes of {closes.name!r} have duplicate dates; keep one close per day."
        )
    if (s <= 0).any():
        raise EventStudyInputError(
            f"Closes of {closes.name!r} contain zero or negative prices; returns are undefined."
        )
    if s.empty:
        return pd.Series(dtype="float64", name=closes.name, index=pd.DatetimeIndex([], name="date"))
    idx = sessions(
        calendar, s.index.min() if start is None else start, s.index.max() if end is None else end
    )
    off = s.index.difference(idx)
    off = off[(off >= idx.min()) & (off <= idx.max())] if len(idx) else off
    if len(off):
        warnings.warn(
            f"{len(off)} close(s) of {closes.name!r} fall on non-sessions of {calendar} (first "
            f"{off[0].date()}) and were ignored.",
            NonSessionPriceWarning,
            stacklevel=2,
        )
    out = closes_to_returns(s.reindex(idx).to_numpy()[:, None], kind)[:, 0]
    return pd.Series(out, index=idx, name=closes.name)
