"""Input handling: long prices or precomputed returns in, per-calendar return matrices out.

Everything stays in wide numpy form (dates x symbols) so that a thousand assets cost one reindex,
not a thousand.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.calendars import sessions
from analysis.errors import EventStudyInputError, NonSessionPriceWarning, UnknownAssetError


def naive_days(values: pd.Series | pd.Index) -> pd.DatetimeIndex:
    """Dates as naive midnight timestamps (tz-aware input is converted to its UTC day)."""
    if isinstance(values, pd.DatetimeIndex) and values.tz is None:
        idx = values
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(values))
        if idx.tz is not None:
            idx = idx.tz_convert("UTC").tz_localize(None)
    per_day = _DAY_IN_UNIT.get(idx.unit)
    if per_day is not None and not idx.hasnans and not (idx.asi8 % per_day).any():
        return idx  # already midnight: normalize() would give the same values
    return idx.normalize()


def naive_hours(values: pd.Series | pd.Index) -> pd.DatetimeIndex:
    """Hour close times as naive UTC timestamps (tz-aware input is converted to UTC).

    Raises
    ------
    EventStudyInputError
        When a time is not on the hour: hourly closes are labelled by the hour's close time.
    """
    idx = (
        values if isinstance(values, pd.DatetimeIndex) else pd.DatetimeIndex(pd.to_datetime(values))
    )
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    per_hour = _DAY_IN_UNIT[idx.unit] // 24 if idx.unit in _DAY_IN_UNIT else None
    on_hour = (
        not (idx.asi8 % per_hour).any()
        if per_hour is not None and not idx.hasnans
        else bool((idx == idx.floor("h")).all())
    )
    off = idx[idx != idx.floor("h")] if not on_hour else idx[:0]
    if len(off):
        raise EventStudyInputError(
            f"{len(off)} time(s) are not on the hour (first {off[0]}); hourly closes must be "
            "labelled by the hour's UTC close time, e.g. 2024-02-15 19:00."
        )
    return idx


_DAY_IN_UNIT = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


class WideData:
    """Closes or returns of every symbol on the union of their dates (NaN where absent).

    Held as a ``(dates x symbols)`` float array with its sorted, unique naive dates and the symbol
    names, so that panels are cut by integer positions; :attr:`values` gives the same numbers as
    a labelled frame.
    """

    __slots__ = ("array", "caps", "dates", "is_returns", "symbols", "_pos", "_bounds", "_frame")

    def __init__(
        self,
        array: np.ndarray,
        dates: pd.DatetimeIndex,
        symbols: list[str],
        caps: pd.DataFrame | None,
        is_returns: bool,
    ) -> None:
        self.array = array
        self.dates = dates
        self.symbols = symbols
        self.caps = caps
        self.is_returns = is_returns
        self._pos: dict[str, int] | None = None
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._frame: pd.DataFrame | None = None

    @property
    def values(self) -> pd.DataFrame:
        """The data as a frame (index: naive dates; columns: symbols)."""
        if self._frame is None:
            self._frame = pd.DataFrame(self.array, index=self.dates, columns=self.symbols)
        return self._frame

    @property
    def position(self) -> dict[str, int]:
        """Column of each symbol."""
        if self._pos is None:
            self._pos = {s: k for k, s in enumerate(self.symbols)}
        return self._pos

    def row_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Row of the first and last value of each symbol (0 for a symbol without values)."""
        if self._bounds is None:
            a = self.array
            n, k = a.shape
            first = np.zeros(k, dtype=np.intp)
            last = np.zeros(k, dtype=np.intp)
            if n:
                last[:] = n - 1
                # only columns without a value in the first (last) row need a scan
                for out, edge, flip in ((first, 0, False), (last, n - 1, True)):
                    need = np.flatnonzero(np.isnan(a[edge]))
                    if need.size:
                        ok = ~np.isnan(a[:, need])
                        pos = ok[::-1].argmax(axis=0) if flip else ok.argmax(axis=0)
                        out[need] = np.where(ok.any(axis=0), (n - 1 - pos) if flip else pos, 0)
            self._bounds = (first, last)
        return self._bounds


def read_prices(prices: pd.DataFrame, *, hourly: bool = False) -> WideData:
    """Wide closes (and market caps when given) from a long frame.

    Required columns: ``date`` (naive = UTC day; with ``hourly``, the hour's UTC close time),
    ``symbol``, ``close``; optional ``market_cap``.
    """
    missing = {"date", "symbol", "close"} - set(prices.columns)
    if missing:
        raise EventStudyInputError(
            f"The price frame lacks column(s) {', '.join(sorted(missing))}; it needs date, symbol "
            "and close (market_cap optional)."
        )
    dates = naive_hours(prices["date"]) if hourly else naive_days(prices["date"])
    sym = prices["symbol"].astype(str).to_numpy()
    # one pass from the long frame to a (dates x symbols) matrix: codes of both keys, one scatter
    day_codes, day_uniques = pd.factorize(dates.asi8, sort=True)
    sym_codes, sym_uniques = pd.factorize(sym, sort=True)
    n_d, n_s = len(day_uniques), len(sym_uniques)
    flat = day_codes.astype(np.int64) * n_s + sym_codes
    if (np.bincount(flat, minlength=n_d * n_s) > 1).any():
        dup = pd.Series(flat).duplicated().to_numpy()
        k = int(np.flatnonzero(dup)[0])
        raise EventStudyInputError(
            f"The price frame has {int(dup.sum())} duplicate symbol-date rows (first: "
            f"{sym[k]} on {dates[k] if hourly else dates[k].date()}); keep one close per "
            f"symbol and {'hour' if hourly else 'day'}."
        )
    day_index = pd.DatetimeIndex(day_uniques.astype(f"datetime64[{dates.unit}]"), name="date")
    symbols = [str(s) for s in sym_uniques.tolist()]

    def scatter(col: str) -> np.ndarray:
        out = np.full(n_d * n_s, np.nan)
        out[flat] = prices[col].to_numpy(dtype=float, na_value=np.nan)
        return out.reshape(n_d, n_s)

    closes = scatter("close")
    with np.errstate(invalid="ignore"):
        bad_col = (closes <= 0).any(axis=0)
    if bad_col.any():
        bad = [symbols[k] for k in np.flatnonzero(bad_col)]
        raise EventStudyInputError(
            f"Closes of {', '.join(bad)} contain zero or negative prices; returns are undefined."
        )
    caps = None
    if "market_cap" in prices.columns and prices["market_cap"].notna().any():
        caps = pd.DataFrame(
            scatter("market_cap"), index=day_index, columns=pd.Index(symbols, name="symbol")
        )
    return WideData(closes, day_index, symbols, caps, is_returns=False)


def read_returns(returns: pd.DataFrame, *, hourly: bool = False) -> WideData:
    """Wide returns from a wide frame (dates x symbols) or a long one (date, symbol, ret); with
    ``hourly``, dates are hour close times."""
    if {"date", "symbol"} <= set(returns.columns.tolist()):
        col = next((c for c in ("ret", "return", "returns") if c in returns.columns), None)
        if col is None:
            raise EventStudyInputError(
                "The long returns frame needs a 'ret' column beside 'date' and 'symbol'."
            )
        wide = returns.pivot(index="date", columns="symbol", values=col)
    else:
        wide = returns
    values = wide.to_numpy(dtype=float)
    dates = naive_hours(wide.index) if hourly else naive_days(wide.index)
    symbols = [str(c) for c in wide.columns.tolist()]
    if dates.has_duplicates:
        raise EventStudyInputError("The returns frame has duplicate dates; keep one row per date.")
    if not dates.is_monotonic_increasing:
        order = np.argsort(dates.asi8, kind="stable")
        dates, values = dates[order], values[order]
    return WideData(values, dates, symbols, None, is_returns=True)


def fingerprint(data: WideData) -> str:
    """SHA-256 of the whole input (symbols, dates, values), tying a stored run to its data."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, data.symbols)).encode())
    h.update(data.dates.asi8.tobytes())
    h.update(np.ascontiguousarray(data.array, dtype=float).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CalendarPanel:
    """Returns of every symbol needed on one calendar, on that calendar's sessions."""

    calendar: str
    sessions: pd.DatetimeIndex
    symbols: list[str]
    values: np.ndarray  # (k, S + 1): symbols x sessions, one NaN column for out-of-range gathers

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


def carry_closes(v: np.ndarray) -> np.ndarray:
    """The last close carried forward between the first and the last close of ``v``."""
    ok = ~np.isnan(v)
    if not ok.any():
        return v
    last = np.maximum.accumulate(np.where(ok, np.arange(v.size), -1))
    out = np.where(last >= 0, v[np.maximum(last, 0)], np.nan)
    out[np.flatnonzero(ok)[-1] + 1 :] = np.nan
    return out


def _i8_ns(idx: pd.DatetimeIndex) -> np.ndarray:
    return idx.as_unit("ns").asi8 if idx.unit != "ns" else idx.asi8


def build_panel(
    calendar: str,
    symbols: list[str],
    data: WideData,
    native: Mapping[str, str],
    *,
    kind: str,
    carry: Collection[str] = (),
) -> CalendarPanel:
    """Return matrix of ``symbols`` on ``calendar``.

    ``carry`` names symbols whose last close is carried over sessions without one, inside their
    data (a factor of the factor model whose market is shut on a crypto day: its price did not
    move, so its return is 0 that day and the next close's return spans the gap).

    From closes, returns are computed on ``calendar`` itself (a benchmark on another calendar is
    resampled to it, with gaps where it has no close). Given returns are placed on the sessions as
    they are. Values dated on non-sessions are ignored with a warning (not for resampled
    benchmarks, whose off-days are expected).
    """
    pos = data.position
    missing = [s for s in symbols if s not in pos]
    if missing:
        raise UnknownAssetError(f"Symbol(s) {', '.join(missing)} are not in the data.")
    cols = np.fromiter((pos[s] for s in symbols), dtype=np.intp, count=len(symbols))
    first, last = data.row_bounds()
    idx = sessions(calendar, data.dates[first[cols].min()], data.dates[last[cols].max()])
    n_s = len(idx)
    k = len(symbols)
    values = np.empty((k, n_s + 1))  # symbols x sessions, + one NaN column for out-of-range
    values[:, n_s] = np.nan
    if n_s:
        sess_i8, date_i8 = _i8_ns(idx), _i8_ns(data.dates)
        lo = int(np.searchsorted(date_i8, sess_i8[0]))
        hi = int(np.searchsorted(date_i8, sess_i8[-1], side="right"))
        d = date_i8[lo:hi]  # data rows inside the sessions' span
        r = np.searchsorted(sess_i8, d)
        on = sess_i8[np.minimum(r, n_s - 1)] == d
        c0 = int(cols[0]) if k else 0
        if k and cols[-1] - c0 == k - 1 and (np.diff(cols) == 1).all():
            sub = data.array[lo:hi, c0 : c0 + k]  # a run of columns: a view
        else:
            sub = np.take(data.array[lo:hi], cols, axis=1)
        if on.all() and hi - lo == n_s:  # every session has a row: one transposed copy
            values[:, :n_s] = sub.T
        else:
            values[:, :n_s] = np.nan
            values[:, r[on]] = sub[on].T
        if not on.all():
            off = sub[~on]
            off_days = data.dates[lo:hi][~on]
            for j, sym in enumerate(symbols):
                if native.get(sym, calendar) != calendar:
                    continue
                hit = np.flatnonzero(~np.isnan(off[:, j]))
                if hit.size:
                    warnings.warn(
                        f"{hit.size} value(s) of {sym!r} are dated on non-sessions of {calendar} "
                        f"(first {off_days[hit[0]].date()}) and were ignored.",
                        NonSessionPriceWarning,
                        stacklevel=4,
                    )
        if not data.is_returns:
            for j in [j for j, sym in enumerate(symbols) if sym in carry]:
                values[j, :n_s] = carry_closes(values[j, :n_s])
            values[:, :n_s] = closes_to_returns(values[:, :n_s].T, kind).T
    return CalendarPanel(calendar, idx, list(symbols), values)
