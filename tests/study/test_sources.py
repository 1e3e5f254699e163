"""One source per symbol: most observations in the study span by default, `--source` to choose;
`--category` from imported ai_token symbols and CoinGecko category members."""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from flows.cli import main
from warehouse.db import open_warehouse, transaction
from warehouse.load import upsert


@pytest.fixture
def with_coingecko(sora_db, sora_prices_csv):
    """FET also from CoinGecko (only 2023-10-01 on, prices x1.01), and a CoinGecko-only AI coin
    'OCEAN' in the category snapshot of 2024-01-01."""
    raw = pd.read_csv(sora_prices_csv, parse_dates=["date"])
    fet = raw[(raw["symbol"] == "FET") & (raw["date"] >= "2023-10-01")]
    ocean = raw[(raw["symbol"] == "GRT")]  # a stand-in price path for a CoinGecko-only coin
    now = datetime(2024, 5, 1)
    daily = pd.concat(
        [
            pd.DataFrame(
                {
                    "coin_id": "fetch-ai",
                    "date": fet["date"].dt.date,
                    "price": fet["close"] * 1.01,
                    "source": "coingecko",
                }
            ),
            pd.DataFrame(
                {
                    "coin_id": "ocean-protocol",
                    "date": ocean["date"].dt.date,
                    "price": ocean["close"] * 0.5,
                    "source": "coingecko",
                }
            ),
        ]
    )
    with open_warehouse(sora_db) as con, transaction(con):
        upsert(
            con,
            "coins",
            pd.DataFrame(
                {
                    "coin_id": ["fetch-ai", "ocean-protocol"],
                    "symbol": ["fet", "ocean"],
                    "name": ["Fetch.ai", "Ocean Protocol"],
                    "asset_class": ["crypto", "crypto"],
                    "updated_at": now,
                }
            ),
            ["coin_id"],
        )
        upsert(con, "coin_daily", daily, ["coin_id", "date", "source"], ingested_at=now)
        upsert(
            con,
            "category_members",
            pd.DataFrame(
                {
                    "category_id": "artificial-intelligence",
                    "coin_id": ["fetch-ai", "ocean-protocol"],
                    "snapshot_date": date(2024, 1, 1),
                    "rank": [1, 2],
                }
            ),
            ["category_id", "coin_id", "snapshot_date"],
        )
    return sora_db


def spec_of(db) -> tuple[dict, dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        spec, fp = con.execute("SELECT spec, fingerprint FROM study_runs").fetchall()[0]
    finally:
        con.close()
    return json.loads(spec), json.loads(fp)


def test_default_source_has_most_observations_and_is_stated(with_coingecko, capsys):
    assert main(["study", "--event", "sora", "--assets", "FET", "--no-equities"]) == 0
    out = capsys.readouterr().out
    # both vendors cover the whole span 2023-10-18..2024-02-25: the tie goes to the source name
    assert (
        "Note: FET: source binance_spot (most observations in the study span of binance_spot "
        "(131 obs.), coingecko (131 obs.)); not mixed with coingecko (131 obs.)."
    ) in out.splitlines()
    _, fp = spec_of(with_coingecko)
    fet = next(s for s in fp["series"] if s["symbol"] == "FET")
    assert (fet["source"], fet["asset_id"]) == ("binance_spot", "FET")


def test_longer_estimation_prefers_the_longer_series(with_coingecko, capsys):
    assert (
        main(
            [
                "study",
                "--event",
                "sora",
                "--assets",
                "FET",
                "--no-equities",
                "--no-save",
                "--estimation",
                "-300:-11",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "Note: FET: source binance_spot (most observations in the study span of binance_spot "
        "(311 obs.), coingecko (148 obs.)); not mixed with coingecko (148 obs.)."
    ) in out.splitlines()


def test_source_option_picks_one_vendor_for_the_whole_series(with_coingecko, capsys):
    assert (
        main(
            [
                "study",
                "--event",
                "sora",
                "--assets",
                "FET",
                "--no-equities",
                "--source",
                "fet=coingecko",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "Note: FET: source coingecko (--source FET=coingecko); not mixed with binance_spot" in out
    )
    spec, fp = spec_of(with_coingecko)
    fet = next(s for s in fp["series"] if s["symbol"] == "FET")
    assert (fet["source"], fet["asset_id"], fet["first_date"]) == (
        "coingecko",
        "fetch-ai",
        "2023-10-01",
    )
    assert spec["resolved"]["asset_classes"] == {"FET": "crypto"}
    assert main(["study", "--event", "sora", "--source", "kraken"]) == 2
    assert capsys.readouterr().err.startswith(
        "Error: --source kraken: no series of the study's symbols"
    )


def test_category_takes_imported_ai_tokens_and_coingecko_members(with_coingecko, capsys):
    assert (
        main(
            [
                "study",
                "--event",
                "sora",
                "--category",
                "artificial-intelligence",
                "--no-equities",
                "--no-save",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "Note: --category artificial-intelligence: 8 symbols with asset_class 'ai_token'; 2 "
        "CoinGecko members with prices, snapshot 2024-01-01."
    ) in out.splitlines()
    assert "Tokens vs BTC: 9 assets;" in out  # OCEAN is class 'crypto': no longer "AI tokens"
    assert main(["study", "--event", "sora", "--category", "gaming"]) == 2
    assert capsys.readouterr().err == (
        "Error: category 'gaming' has no members with prices in the warehouse (categories held: "
        "artificial-intelligence; imported AI tokens count for artificial-intelligence)\n"
    )
