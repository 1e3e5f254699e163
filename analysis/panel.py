"""Input handling: long prices or precomputed returns in, per-calendar return matrices out."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.calendars import sessions
from analysis.errors import EventStudyInputError, NonSessionPriceWarning, UnknownAssetError
from analysis.returns import returns_from_closes


def _naive_days(values: pd.Series | pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(values))
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.normalize()


def read_prices(prices: pd.DataFrame) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """Closes (and market caps, when given) per symbol from a long frame.

    Required columns: ``date`` (naive = UTC day), ``symbol``, ``close``; optional ``market_cap``.
    """
    missing = {"date", "symbol", "close"} - set(prices.columns)
    if missing:
        raise EventStudyInputError(
            f"The price frame lacks column(s) {', '.join(sorted(missing))}; it needs date, symbol "
            "and close (market_cap optional)."
        )
    df = prices.copy()
    df["date"] = _naive_days(df["date"])
    dup = df.duplicated(["symbol", "date"])
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise EventStudyInputError(
            f"The price frame has {int(dup.sum())} duplicate symbol-date rows (first: "
            f"{first['symbol']} on {first['date'].date()}); keep one close per symbol and day."
        )
    closes: dict[str, pd.Series] = {}
    caps: dict[str, pd.Series] = {}
    for sym, grp in df.sort_values("date").groupby("symbol", sort=False):
        closes[str(sym)] = pd.Series(grp["close"].to_numpy(float), index=grp["date"], name=sym)
        if "market_cap" in grp and grp["market_cap"].notna().any():
            caps[str(sym)] = pd.Series(
                grp["market_cap"].to_numpy(float), index=grp["date"]
            ).dropna()
    return closes, caps


def read_returns(returns: pd.DataFrame) -> dict[str, pd.Series]:
    """Returns per symbol from a wide frame (dates x symbols) or a long one (date, symbol, ret)."""
    if {"date", "symbol"} <= set(returns.columns):
        col = next((c for c in ("ret", "return", "returns") if c in returns.columns), None)
        if col is None:
            raise EventStudyInputError(
                "The long returns frame needs a 'ret' column beside 'date' and 'symbol'."
            )
        wide = returns.pivot(index="date", columns="symbol", values=col)
    else:
        wide = returns
    idx = _naive_days(wide.index)
    out = {}
    for sym in wide.columns:
        s = pd.Series(wide[sym].to_numpy(float), index=idx, name=str(sym))
        out[str(sym)] = s[~s.index.duplicated()]
    return out


def fingerprint(series: Mapping[str, pd.Series]) -> str:
    """SHA-256 of the input series (symbol, dates, values), to tie a stored run to its data."""
    h = hashlib.sha256()
    for sym in sorted(series):
        s = series[sym]
        h.update(sym.encode())
        h.update(s.index.asi8.tobytes())
        h.update(np.ascontiguousarray(s.to_numpy(float)).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CalendarPanel:
    """Returns of every symbol needed on one calendar, on that calendar's sessions."""

    calendar: str
    sessions: pd.DatetimeIndex
    symbols: list[str]
    values: np.ndarray  # (S, k) with one NaN row appended for out-of-range gathers

    def column(self, symbol: str) -> int:
        return self.symbols.index(symbol)


def build_panel(
    calendar: str,
    symbols: list[str],
    data: Mapping[str, pd.Series],
    native: Mapping[str, str],
    *,
    kind: str,
    given_returns: bool,
) -> CalendarPanel:
    """Return matrix of ``symbols`` on ``calendar``.

    From closes, each symbol's returns are computed on ``calendar`` itself (a benchmark on another
    calendar is thus resampled to this one, with gaps where it has no close). Given returns are
    placed on the sessions as they are; returns dated on non-sessions are ignored with a warning.
    """
    for sym in symbols:
        if sym not in data:
            raise UnknownAssetError(f"Symbol {sym!r} is not in the data.")
    lo = min(data[s].index.min() for s in symbols)
    hi = max(data[s].index.max() for s in symbols)
    idx = sessions(calendar, lo, hi)
    cols = []
    for sym in symbols:
        s = data[sym]
        if given_returns:
            off = s.dropna().index.difference(idx)
            if len(off):
                warnings.warn(
                    f"{len(off)} return(s) of {sym!r} are dated on non-sessions of {calendar} "
                    f"(first {off[0].date()}) and were ignored.",
                    NonSessionPriceWarning,
                    stacklevel=3,
                )
            cols.append(s.reindex(idx).to_numpy(float))
        else:
            with warnings.catch_warnings():
                if native.get(sym) != calendar:
                    # a benchmark resampled from another calendar: its off-days are expected
                    warnings.simplefilter("ignore", NonSessionPriceWarning)
                r = returns_from_closes(s, calendar, kind, start=idx.min(), end=idx.max())  # type: ignore[arg-type]
            cols.append(r.reindex(idx).to_numpy(float))
    values = np.vstack([np.column_stack(cols), np.full((1, len(symbols)), np.nan)])
    return CalendarPanel(calendar, idx, list(symbols), values)
