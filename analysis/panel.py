"""Input handling: long prices or precomputed returns in, per-calendar return matrices out.

Everything stays in wide numpy form (dates x symbols) so that a thousand assets cost one reindex,
not a thousand.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.calendars import sessions
from analysis.errors import EventStudyInputError, NonSessionPriceWarning, UnknownAssetError


def naive_days(values: pd.Series | pd.Index) -> pd.DatetimeIndex:
    """Dates as naive midnight timestamps (tz-aware input is converted to its UTC day)."""
    idx = pd.DatetimeIndex(pd.to_datetime(values))
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.normalize()


@dataclass(frozen=True)
class WideData:
    """Closes or returns of every symbol on the union of their dates (NaN where absent)."""

    values: pd.DataFrame  # index: naive dates (sorted, unique); columns: symbols
    caps: pd.DataFrame | None  # market caps, same layout, or None
    is_returns: bool

    def first_last(self) -> tuple[pd.Series, pd.Series]:
        """First and last date with a value, per symbol."""
        ok = self.values.notna().to_numpy()
        idx = self.values.index
        first = np.where(ok.any(axis=0), ok.argmax(axis=0), 0)
        last = np.where(ok.any(axis=0), len(idx) - 1 - ok[::-1].argmax(axis=0), 0)
        cols = self.values.columns
        return pd.Series(idx[first], index=cols), pd.Series(idx[last], index=cols)


def read_prices(prices: pd.DataFrame) -> WideData:
    """Wide closes (and market caps when given) from a long frame.

    Required columns: ``date`` (naive = UTC day), ``symbol``, ``close``; optional ``market_cap``.
    """
    missing = {"date", "symbol", "close"} - set(prices.columns)
    if missing:
        raise EventStudyInputError(
            f"The price frame lacks column(s) {', '.join(sorted(missing))}; it needs date, symbol "
            "and close (market_cap optional)."
        )
    df = prices.copy()
    df["date"] = naive_days(df["date"])
    df["symbol"] = df["symbol"].astype(str)
    dup = df.duplicated(["symbol", "date"])
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise EventStudyInputError(
            f"The price frame has {int(dup.sum())} duplicate symbol-date rows (first: "
            f"{first['symbol']} on {first['date'].date()}); keep one close per symbol and day."
        )
    closes = df.pivot(index="date", columns="symbol", values="close").sort_index().astype(float)
    if (closes <= 0).any().any():
        bad = closes.columns[(closes <= 0).any()].tolist()
        raise EventStudyInputError(
            f"Closes of {', '.join(bad)} contain zero or negative prices; returns are undefined."
        )
    caps = None
    if "market_cap" in df.columns and df["market_cap"].notna().any():
        caps = df.pivot(index="date", columns="symbol", values="market_cap").sort_index()
    closes.columns.name = None
    return WideData(closes, caps, is_returns=False)


def read_returns(returns: pd.DataFrame) -> WideData:
    """Wide returns from a wide frame (dates x symbols) or a long one (date, symbol, ret)."""
    if {"date", "symbol"} <= set(returns.columns):
        col = next((c for c in ("ret", "return", "returns") if c in returns.columns), None)
        if col is None:
            raise EventStudyInputError(
                "The long returns frame needs a 'ret' column beside 'date' and 'symbol'."
            )
        wide = returns.pivot(index="date", columns="symbol", values=col)
    else:
        wide = returns
    wide = pd.DataFrame(
        wide.to_numpy(dtype=float),
        index=naive_days(wide.index),
        columns=[str(c) for c in wide.columns],
    )
    if wide.index.has_duplicates:
        raise EventStudyInputError("The returns frame has duplicate dates; keep one row per date.")
    return WideData(wide.sort_index(), None, is_returns=True)


def fingerprint(data: WideData) -> str:
    """SHA-256 of the whole input (symbols, dates, values), tying a stored run to its data."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, data.values.columns)).encode())
    h.update(data.values.index.asi8.tobytes())
    h.update(np.ascontiguousarray(data.values.to_numpy(float)).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CalendarPanel:
    """Returns of every symbol needed on one calendar, on that calendar's sessions."""

    calendar: str
    sessions: pd.DatetimeIndex
    symbols: list[str]
    values: np.ndarray  # (S + 1, k): one NaN row appended for out-of-range gathers

    def columns(self, symbols: list[str]) -> np.ndarray:
        pos = {s: k for k, s in enumerate(self.symbols)}
        return np.array([pos[s] for s in symbols], dtype=int)


def closes_to_returns(p: np.ndarray, kind: str) -> np.ndarray:
    """Session-to-session returns of closes ``p`` (sessions x symbols); NaN across any gap."""
    out = np.full(p.shape, np.nan)
    if p.shape[0] > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[1:] = np.log(p[1:] / p[:-1]) if kind == "log" else p[1:] / p[:-1] - 1.0
    return out


def build_panel(
    calendar: str,
    symbols: list[str],
    data: WideData,
    native: Mapping[str, str],
    *,
    kind: str,
) -> CalendarPanel:
    """Return matrix of ``symbols`` on ``calendar``.

    From closes, returns are computed on ``calendar`` itself (a benchmark on another calendar is
    resampled to it, with gaps where it has no close). Given returns are placed on the sessions as
    they are. Values dated on non-sessions are ignored with a warning (not for resampled
    benchmarks, whose off-days are expected).
    """
    missing = [s for s in symbols if s not in data.values.columns]
    if missing:
        raise UnknownAssetError(f"Symbol(s) {', '.join(missing)} are not in the data.")
    wide = data.values[symbols]
    first, last = data.first_last()
    idx = sessions(calendar, first[symbols].min(), last[symbols].max())
    off_rows = ~wide.index.isin(idx) & (wide.index >= idx.min()) & (wide.index <= idx.max())
    if off_rows.any():
        off = wide.loc[off_rows]
        for sym in symbols:
            if native.get(sym, calendar) != calendar:
                continue
            hit = off[sym].dropna()
            if len(hit):
                warnings.warn(
                    f"{len(hit)} value(s) of {sym!r} are dated on non-sessions of {calendar} "
                    f"(first {hit.index[0].date()}) and were ignored.",
                    NonSessionPriceWarning,
                    stacklevel=4,
                )
    on = wide.reindex(idx).to_numpy(float)
    values = on if data.is_returns else closes_to_returns(on, kind)
    values = np.vstack([values, np.full((1, len(symbols)), np.nan)])
    return CalendarPanel(calendar, idx, list(symbols), values)
