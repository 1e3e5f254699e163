"""Sector metrics for the AI-token report: indices, top members, concentration, correlations.

Plain pandas in, labelled pandas out (no database access, no plotting). Conventions:

- ``closes`` and ``caps`` are *wide*: a naive daily ``DatetimeIndex`` (UTC days for crypto,
  session dates for equities) by symbol, NaN where a series has no value.
- Returns are simple returns between *consecutive calendar days*; a day after a hole in a series
  gives no return for that series (it is never stretched over the hole).
- Shares and concentration are computed from the members with a market cap that day.

References
----------
Herfindahl-Hirschman index: :math:`HHI = \\sum_i s_i^2`, reported on the 0-10,000 scale used by the
US Department of Justice (shares in percent); 10,000 is a monopoly, below 1,500 "unconcentrated".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

HHI_SCALE = 10_000.0


def wide(
    long: pd.DataFrame, value: str = "close", *, symbols: list[str] | None = None
) -> pd.DataFrame:
    """Pivot a long ``date, symbol, <value>`` frame into dates x symbols (sorted, naive dates)."""
    missing = {"date", "symbol", value} - set(long.columns)
    if missing:
        raise ValueError(
            f"The frame lacks column(s) {', '.join(sorted(missing))}; it needs date, symbol and "
            f"{value}."
        )
    df = long[["date", "symbol", value]].copy()
    if symbols is not None:
        df = df[df["symbol"].isin(symbols)]
    df["date"] = pd.to_datetime(df["date"]).dt.normalize()
    out = df.pivot_table(index="date", columns="symbol", values=value, aggfunc="last")
    out = out.sort_index().astype(float)
    out.columns.name = None
    out.index.name = "date"
    return out


def daily_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Simple returns between consecutive calendar days (NaN after a missing day)."""
    if closes.empty:
        return closes.copy()
    full = pd.date_range(closes.index.min(), closes.index.max(), freq="D", name="date")
    daily = closes.reindex(full)
    return (daily / daily.shift(1) - 1.0).reindex(closes.index)


def equal_weight_index(
    closes: pd.DataFrame, *, base: float = 100.0, min_members: int = 1
) -> pd.DataFrame:
    """Equal-weight index rebalanced daily: each day the mean return of the members present.

    Parameters
    ----------
    closes
        Wide daily closes (dates x symbols) on one calendar (crypto: every UTC day).
    base
        Level of the index on its first day.
    min_members
        Days where fewer members have a return get no index return (``ret`` is NaN) and the
        level stays where it was.

    Returns
    -------
    DataFrame
        Indexed by date: ``level`` (the index), ``ret`` (its daily simple return) and
        ``n_members`` (members with a return that day).
    """
    if closes.empty:
        raise ValueError("An equal-weight index needs at least one series of closes.")
    rets = daily_returns(closes)
    n = rets.notna().sum(axis=1)
    mean = rets.mean(axis=1, skipna=True).where(n >= min_members)
    mean.iloc[0] = 0.0  # the base day
    level = base * (1.0 + mean.fillna(0.0)).cumprod()
    out = pd.DataFrame({"level": level, "ret": mean, "n_members": n.astype(int)})
    out.loc[out.index[0], "ret"] = np.nan
    out.index.name = "date"
    return out


def portfolio_prices(
    prices: pd.DataFrame,
    symbols: list[str],
    *,
    name: str = "AI_EW",
    asset_class: str = "ai_token",
) -> pd.DataFrame:
    """An equal-weight portfolio of ``symbols`` as a pseudo-asset: long ``date, symbol,
    asset_class, close`` rows that an event study can take beside the real assets."""
    ew = equal_weight_index(wide(prices, symbols=symbols))
    return pd.DataFrame(
        {
            "date": ew.index,
            "symbol": name,
            "asset_class": asset_class,
            "close": ew["level"].to_numpy(),
        }
    )


def cap_weighted_returns(closes: pd.DataFrame, caps: pd.DataFrame) -> pd.Series:
    """Sector return from day t-1 to t, weights = members' market caps on day t-1.

    Entry of a new member (or a member's missing day) never counts as a return: only members with
    a cap on t-1 and a return on t take part, so the summed market cap's jumps from membership
    changes do not leak into returns.
    """
    rets = daily_returns(closes)
    full = pd.date_range(closes.index.min(), closes.index.max(), freq="D", name="date")
    prev_caps = caps.reindex(columns=closes.columns).reindex(full).shift(1).reindex(closes.index)
    ok = rets.notna() & prev_caps.notna() & (prev_caps > 0)
    w = prev_caps.where(ok)
    num = (rets.where(ok) * w).sum(axis=1, min_count=1)
    den = w.sum(axis=1, min_count=1)
    out = (num / den).rename("ret")
    out.index.name = "date"
    return out


def index_from_returns(returns: pd.Series, *, base: float = 100.0) -> pd.Series:
    """Cumulate simple returns into an index; the first day (no return) sits at ``base``."""
    return (base * (1.0 + returns.fillna(0.0)).cumprod()).rename("level")


def shares(caps: pd.DataFrame) -> pd.DataFrame:
    """Each member's share of the day's summed market cap (fractions; rows sum to 1)."""
    total = caps.sum(axis=1, min_count=1)
    return caps.div(total, axis=0)


def hhi(caps: pd.DataFrame) -> pd.Series:
    """Herfindahl-Hirschman index per day on the 0-10,000 scale.

    .. math:: HHI_t = 10^4 \\sum_i s_{it}^2, \\quad s_{it} = cap_{it} / \\sum_j cap_{jt}
    """
    s = shares(caps)
    out = (s.pow(2).sum(axis=1, min_count=1) * HHI_SCALE).rename("hhi")
    out.index.name = caps.index.name
    return out


def top_n_share(caps: pd.DataFrame, n: int = 5) -> pd.Series:
    """Share (fraction) of the day's summed market cap held by its ``n`` largest members."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}.")
    values = caps.to_numpy(dtype=float)
    ordered = -np.sort(-np.nan_to_num(values, nan=0.0), axis=1)
    top = ordered[:, :n].sum(axis=1)
    total = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, top / total, np.nan)
    return pd.Series(out, index=caps.index, name=f"top{n}_share")


def concentration(caps: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """Per day: members with a cap, summed cap (USD), top-``n`` share (fraction) and HHI."""
    out = pd.DataFrame(
        {
            "n_with_cap": caps.notna().sum(axis=1).astype(int),
            "market_cap_usd": caps.sum(axis=1, min_count=1),
            f"top{n}_share": top_n_share(caps, n),
            "hhi": hhi(caps),
        }
    )
    out.index.name = "date"
    return out[out["n_with_cap"] > 0]


def top_members(members: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` largest members by market cap, with their share of all members' caps.

    ``members`` needs ``symbol`` and ``market_cap`` (USD); ``name`` is kept when present.
    Returns ``rank, symbol, [name,] market_cap_usd, share, cumulative_share``.
    """
    if not {"symbol", "market_cap"} <= set(members.columns):
        raise ValueError("top_members needs columns symbol and market_cap.")
    df = members.dropna(subset=["market_cap"]).sort_values("market_cap", ascending=False)
    total = df["market_cap"].sum()
    df = df.head(n).reset_index(drop=True)
    out = pd.DataFrame({"rank": np.arange(1, len(df) + 1), "symbol": df["symbol"]})
    if "name" in df.columns:
        out["name"] = df["name"]
    out["market_cap_usd"] = df["market_cap"].astype(float)
    out["share"] = out["market_cap_usd"] / total if total > 0 else np.nan
    out["cumulative_share"] = out["share"].cumsum()
    return out


def returns_on_dates(level: pd.Series, dates: pd.Index) -> pd.Series:
    """Returns of a daily index between consecutive ``dates`` (e.g. another asset's sessions).

    A Monday NVDA return spans Friday close to Monday close; sampling the crypto index on NVDA's
    session dates makes the sector return span the same days (crypto: UTC-day close, NVDA: 16:00
    New York, so the two closes are still some hours apart).
    """
    sampled = level.reindex(pd.DatetimeIndex(dates).sort_values())
    return (sampled / sampled.shift(1) - 1.0).iloc[1:].rename(level.name)


def correlations(
    sector_level: pd.Series,
    others: Mapping[str, pd.Series],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Correlation of sector returns with each other series' returns on that series' dates.

    ``others`` maps a label to a series of closes (its own calendar: BTC every day, NVDA on NYSE
    sessions). Returns ``series, calendar_days, n_obs, first, last, correlation`` (Pearson, on
    simple returns over the same intervals).
    """
    rows = []
    for name, closes in others.items():
        closes = closes.dropna().sort_index()
        if start is not None:
            closes = closes[closes.index >= start]
        if end is not None:
            closes = closes[closes.index <= end]
        dates = closes.index.intersection(sector_level.dropna().index)
        a = returns_on_dates(sector_level, dates)
        b = returns_on_dates(closes, dates)
        pair = pd.concat([a.rename("sector"), b.rename("other")], axis=1).dropna()
        rows.append(
            {
                "series": name,
                "n_obs": len(pair),
                "first": pair.index.min() if len(pair) else pd.NaT,
                "last": pair.index.max() if len(pair) else pd.NaT,
                "correlation": pair["sector"].corr(pair["other"]) if len(pair) > 2 else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["series", "n_obs", "first", "last", "correlation"])


def rolling_correlation(
    sector_level: pd.Series, other: pd.Series, *, window: int = 60
) -> pd.Series:
    """Rolling Pearson correlation over ``window`` common return intervals (other's dates)."""
    other = other.dropna().sort_index()
    dates = other.index.intersection(sector_level.dropna().index)
    pair = pd.concat(
        [returns_on_dates(sector_level, dates), returns_on_dates(other, dates)], axis=1
    ).dropna()
    if pair.empty:
        return pd.Series(dtype=float, name="correlation")
    out = pair.iloc[:, 0].rolling(window, min_periods=max(10, window // 2)).corr(pair.iloc[:, 1])
    return out.rename("correlation")


__all__ = [
    "HHI_SCALE",
    "cap_weighted_returns",
    "concentration",
    "correlations",
    "daily_returns",
    "equal_weight_index",
    "hhi",
    "index_from_returns",
    "portfolio_prices",
    "returns_on_dates",
    "rolling_correlation",
    "shares",
    "top_members",
    "top_n_share",
    "wide",
]
