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


# --------------------------------------------------------------------------- caps of networks
def network_caps(member_caps: pd.DataFrame) -> pd.DataFrame:
    """Wide dates x network of the caps that count towards the sector sum.

    ``member_caps`` is long ``date, symbol, network, market_cap, counted`` (the warehouse's
    ``ai_member_caps``): a member's cap counts for its ``network`` (itself, or its lineage
    successor after an identity change), and ``counted`` is False where the successor's own cap
    stands that day. Summing a row of the result therefore counts each network once.
    """
    need = {"date", "network", "market_cap", "counted"}
    if not need <= set(member_caps.columns):
        raise ValueError(
            f"network_caps needs columns {', '.join(sorted(need))}; got "
            f"{', '.join(map(str, member_caps.columns))}."
        )
    rows = member_caps[member_caps["counted"].astype(bool)]
    rows = rows.assign(date=pd.to_datetime(rows["date"]).dt.normalize())
    out = rows.pivot_table(
        index="date", columns="network", values="market_cap", aggfunc="sum", dropna=True
    )
    out = out.sort_index().astype(float)
    out.columns.name = None
    out.index.name = "date"
    return out


def reference_coverage(
    member_caps: pd.DataFrame,
    references: pd.DataFrame,
    *,
    held: list[str] | None = None,
    large: pd.DataFrame | None = None,
    n_large: int = 10,
) -> pd.DataFrame:
    """The tracked members' summed cap against each cited sector figure.

    Parameters
    ----------
    member_caps
        Long ``date, symbol, network, market_cap, counted`` (the warehouse's
        ``ai_member_caps``): the sum takes the ``counted`` rows, so each network counts once.
    references
        ``date, market_cap_usd, source`` per cited figure (the warehouse's
        ``sector_references``).
    held
        Members the warehouse tracks (e.g. the AI tokens it prices): those without a cap on a
        reference day (neither their own nor their network's) are named as missing.
    large
        ``symbol, market_cap`` of the category's largest members (a CoinGecko snapshot), when
        known: the ``n_large`` largest without a cap that day are named as missing too.

    Returns
    -------
    DataFrame
        One row per reference: ``date, reference_usd, source, tracked_usd, share`` (tracked /
        cited), ``n_members`` (networks counted that day) and ``missing`` (text).
    """
    mc = member_caps.assign(date=pd.to_datetime(member_caps["date"]).dt.normalize())
    rows = []
    for ref in references.itertuples(index=False):
        day = pd.Timestamp(ref.date).normalize()
        today = mc[(mc["date"] == day) & mc["market_cap"].notna()]
        counted = today[today["counted"].astype(bool)]
        tracked = float(counted["market_cap"].sum()) if len(counted) else np.nan
        present = set(today["symbol"]) | set(today["network"])
        missing = [s for s in (held or []) if s not in present]
        if large is not None and len(large):
            big = large.dropna(subset=["market_cap"]).sort_values("market_cap", ascending=False)
            for sym in big["symbol"].head(n_large):
                if sym not in present and sym not in missing:
                    missing.append(str(sym))
        cited = float(ref.market_cap_usd)
        rows.append(
            {
                "date": day,
                "reference_usd": cited,
                "source": str(ref.source),
                "tracked_usd": tracked,
                "share": tracked / cited if cited > 0 and tracked == tracked else np.nan,
                "n_members": int(counted["network"].nunique()),
                "missing": ", ".join(missing) if missing else "none",
            }
        )
    cols = ["date", "reference_usd", "source", "tracked_usd", "share", "n_members", "missing"]
    return pd.DataFrame(rows, columns=cols)


def latest_members(
    caps: pd.DataFrame,
    day: pd.Timestamp | None = None,
    *,
    member_caps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``symbol, market_cap`` of the networks with a cap on ``day`` (default: the last day any
    member has one), largest first, for :func:`top_members`. With ``member_caps`` (the long
    frame of :func:`network_caps`), a network counted through an older symbol that day is
    labelled with it: ``RENDER (as RNDR)`` before RENDER had a cap of its own."""
    if caps.empty:
        return pd.DataFrame(columns=["symbol", "market_cap"])
    if day is None:
        day = caps.dropna(how="all").index.max()
    day = pd.Timestamp(day).normalize()
    row = caps.loc[day].dropna()
    labels = [str(s) for s in row.index]
    if member_caps is not None and len(member_caps):
        mc = member_caps[
            (pd.to_datetime(member_caps["date"]).dt.normalize() == day)
            & member_caps["counted"].astype(bool)
        ]
        via = (
            mc[mc["symbol"] != mc["network"]]
            .groupby("network")["symbol"]
            .agg(lambda s: "+".join(sorted(map(str, s))))
        )
        labels = [f"{n} (as {via[n]})" if n in via.index else n for n in labels]
    out = pd.DataFrame({"symbol": labels, "market_cap": row.to_numpy(float)})
    return out.sort_values("market_cap", ascending=False).reset_index(drop=True)


def cap_change_around(
    caps: pd.DataFrame,
    event_day: pd.Timestamp,
    windows: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (0, 5), (0, 10), (-5, 10)),
) -> pd.DataFrame:
    r"""The sector's cap change in dollars over event windows, like for like.

    Window ``[a, b]`` runs from the close of day ``a - 1`` to the close of day ``b`` (crypto: UTC
    days), the span a CAR over ``[a, b]`` covers. Only networks with a cap on both days take
    part, so a member starting or stopping inside the window moves no dollars:

    .. math:: \Delta_{[a,b]} = \sum_{i \in B} cap_{i,b} - \sum_{i \in B} cap_{i,a-1}, \quad
        B = \{i : cap_{i,a-1}, cap_{i,b} \text{ both held}\}

    Returns ``window, from, to, n_members, cap_from_usd, cap_to_usd, change_usd, change``
    (``change`` a fraction); a window whose days are not held has NaN figures.
    """
    day0 = pd.Timestamp(event_day).normalize()
    rows = []
    for a, b in windows:
        if a > b:
            raise ValueError(f"window [{a},{b}] ends before it starts.")
        lo, hi = day0 + pd.Timedelta(days=a - 1), day0 + pd.Timedelta(days=b)
        c0 = caps.loc[lo] if lo in caps.index else pd.Series(dtype=float)
        c1 = caps.loc[hi] if hi in caps.index else pd.Series(dtype=float)
        both = c0.dropna().index.intersection(c1.dropna().index)
        v0, v1 = float(c0[both].sum()), float(c1[both].sum())
        ok = len(both) > 0
        rows.append(
            {
                "window": f"[{a},{b}]",
                "from": lo,
                "to": hi,
                "n_members": len(both),
                "cap_from_usd": v0 if ok else np.nan,
                "cap_to_usd": v1 if ok else np.nan,
                "change_usd": v1 - v0 if ok else np.nan,
                "change": v1 / v0 - 1.0 if ok and v0 > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def cap_change_by_member(
    caps: pd.DataFrame, event_day: pd.Timestamp, window: tuple[int, int] = (0, 5)
) -> pd.DataFrame:
    """Each network's dollar change over ``window`` (as in :func:`cap_change_around`), largest
    move first: ``symbol, cap_from_usd, cap_to_usd, change_usd, change, share_of_change``."""
    a, b = window
    day0 = pd.Timestamp(event_day).normalize()
    lo, hi = day0 + pd.Timedelta(days=a - 1), day0 + pd.Timedelta(days=b)
    if lo not in caps.index or hi not in caps.index:
        return pd.DataFrame(
            columns=["symbol", "cap_from_usd", "cap_to_usd", "change_usd", "change"]
            + ["share_of_change"]
        )
    pair = pd.DataFrame({"cap_from_usd": caps.loc[lo], "cap_to_usd": caps.loc[hi]}).dropna()
    pair["change_usd"] = pair["cap_to_usd"] - pair["cap_from_usd"]
    pair["change"] = pair["cap_to_usd"] / pair["cap_from_usd"] - 1.0
    total = pair["change_usd"].sum()
    pair["share_of_change"] = pair["change_usd"] / total if total != 0 else np.nan
    pair = pair.reindex(pair["change_usd"].abs().sort_values(ascending=False).index)
    return pair.rename_axis("symbol").reset_index()


def cap_jumps(caps: pd.DataFrame, factor: float = 2.0) -> pd.DataFrame:
    """Days a network's cap grew more than ``factor``-fold or fell below ``1/factor`` of the day
    before: ``date, symbol, cap_before_usd, cap_usd, change`` (a fraction), largest move first.
    Such jumps are more often a vendor's supply estimate being rebased (Coin Metrics' FET on
    2024-05-04) than a price move; the report lists them so a reader can tell."""
    if not factor > 1:
        raise ValueError(f"factor must exceed 1, not {factor}.")
    full = caps.reindex(pd.date_range(caps.index.min(), caps.index.max(), freq="D", name="date"))
    prev = full.shift(1)
    ratio = (full / prev).stack()
    change = ratio[(ratio > factor) | (ratio < 1.0 / factor)] - 1.0
    if change.empty:
        return pd.DataFrame(columns=["date", "symbol", "cap_before_usd", "cap_usd", "change"])
    out = change.rename("change").reset_index()
    out.columns = ["date", "symbol", "change"]
    out["cap_before_usd"] = [prev.at[d, s] for d, s in zip(out["date"], out["symbol"], strict=True)]
    out["cap_usd"] = [full.at[d, s] for d, s in zip(out["date"], out["symbol"], strict=True)]
    size = np.abs(np.log1p(out["change"].to_numpy(float)))
    out = out.iloc[np.argsort(-size, kind="stable")]
    return out[["date", "symbol", "cap_before_usd", "cap_usd", "change"]].reset_index(drop=True)


__all__ = [
    "HHI_SCALE",
    "cap_jumps",
    "cap_change_around",
    "cap_change_by_member",
    "latest_members",
    "network_caps",
    "reference_coverage",
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
