"""A real warehouse file for export tests: the shared Sora panel plus synthetic CoinGecko rows
in every dated table, loaded through the project's own import and upsert paths."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from warehouse.db import open_warehouse, transaction
from warehouse.export import export_warehouse
from warehouse.load import upsert

COINS = ("fetch-ai", "render-token", "singularitynet", "bitcoin")
FIRST_DAY, N_DAYS = date(2024, 1, 20), 52  # 2024-01-20 .. 2024-03-11: three months


def synthetic_frames(seed: int = 11) -> dict[str, tuple[pd.DataFrame, tuple[str, ...]]]:
    """Frames for the CoinGecko-side tables, each with its upsert key."""
    rng = np.random.default_rng(seed)
    days = [FIRST_DAY + timedelta(days=i) for i in range(N_DAYS)]
    coins = pd.DataFrame(
        {
            "coin_id": list(COINS),
            "symbol": ["fet", "rndr", "agix", "btc"],
            "name": ["Fetch.ai", "Render", "SingularityNET 'AGIX'", "Bitcoin"],
            "asset_class": ["ai_token", "ai_token", "ai_token", "crypto_benchmark"],
            "updated_at": datetime(2024, 3, 12, 1, 15),
        }
    )
    rows = []
    for coin in COINS:
        price = float(rng.uniform(0.5, 50))
        for d in days:
            price *= float(np.exp(rng.normal(0, 0.05)))
            mcap = None if (coin == "render-token" and d.day == 1) else price * 1e9
            rows.append(
                (
                    coin,
                    d,
                    price,
                    mcap,
                    price * 1e7,
                    "coingecko",
                    datetime.combine(d, datetime.min.time()) + timedelta(days=1),
                )
            )
    coin_daily = pd.DataFrame(
        rows, columns=["coin_id", "date", "price", "market_cap", "volume", "source", "source_ts"]
    )
    snapshots = [date(2024, 2, 1), date(2024, 3, 1)]
    members = pd.DataFrame(
        [
            ("artificial-intelligence", coin, snap, rank, 1e9 * rank)
            for snap, coins_in in zip(snapshots, (COINS[:2], COINS[1:3]), strict=True)
            for rank, coin in enumerate(coins_in, 1)
        ],
        columns=["category_id", "coin_id", "snapshot_date", "rank", "market_cap"],
    )
    snaps = pd.DataFrame(
        {
            "category_id": "artificial-intelligence",
            "snapshot_date": snapshots,
            "snapshot_ts": [datetime(2024, 2, 1, 1, 20), datetime(2024, 3, 1, 1, 20)],
            "name": "Artificial Intelligence (AI)",
            "market_cap": [2.5e10, 3.0e10],
            "volume_24h": [1.1e9, 1.3e9],
            "n_coins": [2, 2],
        }
    )
    sessions = pd.bdate_range("2024-02-12", "2024-02-23").date  # includes Presidents' Day
    equity = pd.DataFrame(
        {
            "ticker": "NVDA",
            "date": sessions,
            "open": np.linspace(700, 720, len(sessions)),
            "high": np.linspace(710, 730, len(sessions)),
            "low": np.linspace(690, 710, len(sessions)),
            "close": np.linspace(705, 725, len(sessions)),
            "adj_close": np.linspace(704, 724, len(sessions)),
            "volume": 4.5e7,
            "source": "yahoo",
        }
    )
    raw = pd.DataFrame(
        {
            "response_id": [1, 2, 3],
            "run_id": "backfill-test",
            "endpoint": ["/coins/categories", "/coins/fetch-ai/market_chart/range", "/global"],
            "params": [
                json.dumps({}),
                json.dumps({"vs_currency": "usd", "from": 1705708800, "to": 1710115200}),
                json.dumps({"note": "quote ' and unicode é"}),
            ],
            "fetched_at": [
                datetime(2024, 2, 29, 23, 59),
                datetime(2024, 3, 1, 0, 1),
                datetime(2024, 3, 12, 1, 15),
            ],
            "status": [200, 200, 429],
            "body": ['[{"id": "artificial-intelligence"}]', '{"prices": []}', '{"status": {}}'],
        }
    )
    study_runs = pd.DataFrame(
        {
            "study_id": ["sora-1"],
            "created_at": [datetime(2024, 3, 12, 9, 0)],
            "spec": [json.dumps({"event": "2024-02-15", "window": [-1, 3]})],
            "package_version": ["0.1.0"],
            "summary": ["CAR(-1,3) of AI tokens"],
        }
    )
    study_results = pd.DataFrame(
        {
            "study_id": "sora-1",
            "kind": ["car", "car", "test"],
            "event": "sora",
            "asset": ["FET", "AGIX", None],
            "label": ["(-1,3)", "(-1,3)", "kolari_pynnonen"],
            "value": [0.12, 0.31, 2.4],
            "details": [json.dumps({"n": 5}), None, json.dumps({"pvalue": 0.016})],
        }
    )
    return {
        "coins": (coins, ("coin_id",)),
        "coin_daily": (coin_daily, ("coin_id", "date", "source")),
        "category_members": (members, ("category_id", "coin_id", "snapshot_date")),
        "category_snapshots": (snaps, ("category_id", "snapshot_date")),
        "equity_daily": (equity, ("ticker", "date", "source")),
        "raw_responses": (raw, ("response_id",)),
        "study_runs": (study_runs, ("study_id",)),
        "study_results": (study_results, ()),  # no primary key: plain INSERT
    }


def hourly_frame() -> pd.DataFrame:
    """Hourly closes across a month boundary (2024-02-29 22:00 .. 2024-03-01 02:00 UTC), one
    hour missing for FET (a NULL return in ``hourly_returns``), with a vendor stamp."""
    hours = pd.date_range("2024-02-29 22:00", periods=5, freq="h")
    rows = [
        ("FET", ts, "binance_perp_usdt", "ai_token", 0.6 + 0.01 * i, 1e5 * (i + 1), None)
        for i, ts in enumerate(hours)
        if i != 2
    ]
    rows += [
        ("bitcoin", ts, "coingecko", None, 61_000.0 + i, None, ts + timedelta(minutes=1))
        for i, ts in enumerate(hours)
    ]
    return pd.DataFrame(
        rows,
        columns=["asset_id", "ts", "source", "asset_class", "close", "volume_usd", "vendor_ts"],
    )


def build_warehouse(db: Path, prices_csv: Path) -> Path:
    """Import the real panel the way `aitokens import` does, then upsert the synthetic rows."""
    from flows.sources.csv_import import read_price_csv
    from warehouse.hourly import upsert_hourly
    from warehouse.imports import import_prices

    parsed = read_price_csv(prices_csv)
    with open_warehouse(db) as con:
        import_prices(
            con,
            parsed.frame,
            path=prices_csv,
            rows_read=parsed.rows_read,
            exact_duplicates=parsed.exact_duplicates,
        )
        with transaction(con):
            for table, (frame, key) in synthetic_frames().items():
                if key:
                    upsert(con, table, frame, key)
                else:  # upsert's INSERT OR REPLACE needs a primary key
                    con.register("_stage", frame)
                    cols = ", ".join(frame.columns)
                    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _stage")
                    con.unregister("_stage")
            upsert_hourly(con, hourly_frame())
    return db


@pytest.fixture(scope="session")
def export_db(tmp_path_factory, sora_prices_csv) -> Path:
    """The populated warehouse; tests only ever open it read-only."""
    return build_warehouse(tmp_path_factory.mktemp("wh") / "aitokens.duckdb", sora_prices_csv)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, export_db):
    """One full export of ``export_db`` (tables and views), shared by the read-back tests."""
    out = tmp_path_factory.mktemp("export") / "parquet"
    report = export_warehouse(export_db, out)
    return out, report
