"""The analyst views agree with the same figures computed independently in pandas."""

from __future__ import annotations

from datetime import date

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from tests.warehouse.helpers import read_df
from warehouse.db import open_warehouse, transaction
from warehouse.load import upsert


@pytest.fixture(scope="module")
def panel_db(tmp_path_factory, sora_prices_csv):
    """The real panel with holes punched in it: 3 crypto days and 2 NYSE sessions removed."""
    raw = pd.read_csv(sora_prices_csv)
    holes = ((raw.symbol == "FET") & raw.date.isin(["2024-02-10", "2024-02-11", "2024-03-01"])) | (
        (raw.symbol == "NVDA") & raw.date.isin(["2024-02-14", "2024-02-15"])
    )
    punched = raw.loc[~holes]
    csv = tmp_path_factory.mktemp("panel") / "punched.csv"
    punched.to_csv(csv, index=False)
    db = tmp_path_factory.mktemp("wh") / "aitokens.duckdb"
    from flows.sources.csv_import import read_price_csv
    from warehouse.imports import import_prices

    parsed = read_price_csv(csv)
    with open_warehouse(db) as con:
        import_prices(con, parsed.frame, path=csv, rows_read=parsed.rows_read, exact_duplicates=0)
    return db, punched


def test_daily_returns_match_pandas(panel_db):
    db, raw = panel_db
    view = read_df(
        db, "SELECT symbol, date, simple_return, log_return, sessions_spanned FROM daily_returns"
    )
    view["date"] = pd.to_datetime(view["date"])
    frame = raw.assign(date=pd.to_datetime(raw["date"])).sort_values(["symbol", "date"])
    frame["simple"] = frame.groupby("symbol")["close"].pct_change()
    frame["log"] = np.log(frame["close"]).groupby(frame["symbol"]).diff()
    merged = frame.dropna(subset=["simple"]).merge(
        view, on=["symbol", "date"], how="outer", indicator=True
    )
    assert (merged["_merge"] == "both").all(), "view and pandas disagree on which returns exist"
    np.testing.assert_allclose(merged["simple_return"], merged["simple"], rtol=1e-12)
    # ln(a/b) in SQL vs ln(a) - ln(b) here: equal up to rounding of a ~1e-4 difference.
    np.testing.assert_allclose(merged["log_return"], merged["log"], rtol=1e-10, atol=1e-14)


def test_sessions_spanned_marks_gaps_on_each_calendar(panel_db):
    db, _ = panel_db
    view = read_df(
        db,
        "SELECT symbol, date, prev_date, sessions_spanned FROM daily_returns "
        "WHERE sessions_spanned <> 1 ORDER BY symbol, date",
    )
    got = {(r.symbol, str(r.date)[:10], int(r.sessions_spanned)) for r in view.itertuples()}
    # FET: 02-10 and 02-11 missing -> 02-12 spans 3 days; 03-01 missing -> 03-02 spans 2.
    # NVDA: sessions 02-14, 02-15 missing -> 02-16 spans 3 sessions. 2024-02-19 (Presidents'
    # Day) is a holiday, so 02-16 -> 02-20 is one session for every equity: no row here.
    assert got == {("FET", "2024-02-12", 3), ("FET", "2024-03-02", 2), ("NVDA", "2024-02-16", 3)}


def test_freshness_matches_pandas(panel_db):
    db, raw = panel_db
    view = read_df(db, "SELECT * FROM freshness").set_index("symbol")
    nyse = xcals.get_calendar("XNYS", start="2022-12-01", end="2024-12-31")
    for symbol, group in raw.groupby("symbol"):
        dates = pd.to_datetime(group["date"]).sort_values()
        first, last = dates.iloc[0], dates.iloc[-1]
        if group["asset_class"].iloc[0].startswith("equity"):
            expected_sessions = nyse.sessions_in_range(first, last)
        else:
            expected_sessions = pd.date_range(first, last, freq="D")
        missing = len(expected_sessions) - len(dates)
        row = view.loc[symbol]
        assert str(row["first_date"])[:10] == str(first.date())
        assert str(row["last_date"])[:10] == str(last.date())
        assert row["n_obs"] == len(dates)
        assert row["missing_sessions"] == missing, symbol
    assert (
        view.loc["FET", "gaps"] == 2
        and view.loc["NVDA", "gaps"] == 1
        and view.loc["BTC", "gaps"] == 0
    )
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    assert view.loc["BTC", "stale_sessions"] == (today - pd.Timestamp("2024-04-25")).days - 1
    assert view.loc["SPY", "stale_sessions"] == len(
        xcals.get_calendar("XNYS", start="2024-01-01", end=str(today.date())).sessions_in_range(
            "2024-04-26", today - pd.Timedelta(days=1)
        )
    )


def test_ai_sector_daily_matches_pandas(db_path):
    """Members in force per day (latest snapshot on or before it) summed, with coverage."""
    coins = pd.DataFrame(
        {"coin_id": ["a", "b", "c"], "symbol": ["aa", "bb", "cc"], "asset_class": "ai_token"}
    )
    days = pd.date_range("2024-01-01", "2024-01-06").date
    rng = np.random.default_rng(7)
    daily = pd.DataFrame(
        [(c, d, 1.0, float(rng.integers(1, 100)), 5.0, "coingecko") for c in "abc" for d in days],
        columns=["coin_id", "date", "price", "market_cap", "volume", "source"],
    )
    members = pd.DataFrame(
        [
            ("artificial-intelligence", c, s, i, 100.0 * i)
            for s, cs in ((date(2024, 1, 3), "ab"), (date(2024, 1, 5), "bc"))
            for i, c in enumerate(cs, 1)
        ],
        columns=["category_id", "coin_id", "snapshot_date", "rank", "market_cap"],
    )
    snaps = pd.DataFrame(
        {
            "category_id": "artificial-intelligence",
            "snapshot_date": [date(2024, 1, 3), date(2024, 1, 5)],
            "snapshot_ts": pd.to_datetime(["2024-01-03 12:00", "2024-01-05 12:00"]),
            "market_cap": [500.0, 400.0],
        }
    )
    with open_warehouse(db_path) as con, transaction(con):
        upsert(con, "coins", coins, ["coin_id"])
        upsert(con, "coin_daily", daily, ["coin_id", "date", "source"])
        upsert(con, "category_members", members, ["category_id", "coin_id", "snapshot_date"])
        upsert(con, "category_snapshots", snaps, ["category_id", "snapshot_date"])
    view = read_df(db_path, "SELECT * FROM ai_sector_daily ORDER BY date").set_index("date")
    mcap = daily.set_index(["date", "coin_id"])["market_cap"]
    for d in days:
        in_force = "bc" if d >= date(2024, 1, 5) else "ab"  # before 01-03: earliest snapshot
        expected = sum(mcap[(d, c)] for c in in_force)
        row = view.loc[pd.Timestamp(d)]
        assert row["market_cap_usd"] == expected
        assert bool(row["backfilled_membership"]) == (d < date(2024, 1, 3))
        # Coverage on snapshot days: members' caps at snapshot time (100 + 200) / reported.
        if d == date(2024, 1, 3):
            assert row["coverage"] == pytest.approx(300.0 / 500.0)
        elif d == date(2024, 1, 5):
            assert row["coverage"] == pytest.approx(300.0 / 400.0)
        else:
            assert np.isnan(row["coverage"])
