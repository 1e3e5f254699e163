"""Groups against the fakes: a category-wide study with the fakes' market caps, the seeded
groups, and a regression on log_cap; a group refreshed from a CoinGecko category."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flows.cli import main


@pytest.mark.slow  # a whole category study (9 tokens, 4 group sub-studies) on the fakes' backfill
def test_category_study_by_group_with_regression(fake_warehouse: Path, tmp_path: Path, capsys):
    db = tmp_path / "wh.duckdb"
    shutil.copy(fake_warehouse, db)
    out = tmp_path / "out.json"
    args = ["study", "--event", "sora", "--category", "artificial-intelligence", "--no-equities"]
    args += ["--by-group", "--regress", "log_cap,beta,group:compute", "--regress-window", "0:3"]
    args += ["--wls", "--db", str(db), "--json", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    payload = json.loads(out.read_text())
    tokens = payload["groups"]["tokens"]
    assert tokens["members"]["compute"] == ["RNDR", "TAO"]  # both have CoinGecko caps here
    caar = {(r["group"], r["window"]): r for r in tokens["caar"]}
    assert caar[("compute", "[0,3]")]["n"] == 2 and caar[("compute", "[0,3]")]["reason"] == ""
    reg = payload["regression"]
    assert reg["method"] == "WLS" and reg["window"] == "[0,3]"
    assert list(reg["coefficients"]) == ["const", "log_cap", "beta", "group:compute"]
    assert reg["nobs"] >= 5 and not reg["dropped"]
    data = {r["asset"]: r for r in reg["data"]}
    # log_cap is ln(the fake's market cap at day -6), read back from the warehouse
    with duckdb.connect(str(db), read_only=True) as con:
        (cap,) = con.execute(
            "SELECT market_cap FROM daily_prices WHERE symbol = 'RNDR' AND source = 'coingecko' "
            "AND date = DATE '2024-02-09'"
        ).fetchone()
    assert data["RNDR"]["log_cap"] == pytest.approx(math.log(cap), rel=1e-12)
    assert data["RNDR"]["group:compute"] == 1 and data["FET"]["group:compute"] == 0
    assert "cross-sectional WLS of CAR[0,3]" in text
    assert "[0,3]" in {r["window"] for r in payload["legs"]["tokens"]["results"]}


def test_refresh_from_a_coingecko_category(db_path: Path, capsys):
    from flows.services.groups import refresh_groups
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.fixtures import fast_coingecko_config
    from warehouse.db import open_warehouse
    from warehouse.errors import InputError
    from warehouse.groups import group_memberships

    add = ["groups", "add", "--name", "l1", "--coingecko-category", "layer-1", "--members", "SOL"]
    assert main(add) == 0
    with FakeCoinGecko(n_coins=3) as cg:
        config = fast_coingecko_config(cg)
        (first,) = refresh_groups(db_path, ["l1"], config=config)
        assert first.added == ("BTC", "ETH") and first.ended == ()
        assert first.n_members == 2
        # the category now lists only ethereum: bitcoin's membership ends, SOL (analyst) stays
        assert (
            main(
                ["groups", "add", "--name", "l1", "--coingecko-category", "smart-contract-platform"]
            )
            == 0
        )
        (second,) = refresh_groups(db_path, ["l1"], config=config)
        assert second.added == () and second.ended == ("BTC",)
        with pytest.raises(InputError, match="no CoinGecko category to refresh from"):
            refresh_groups(db_path, ["compute"], config=config)
    with open_warehouse(db_path, read_only=True) as con:
        rows = group_memberships(con, "l1").set_index("symbol")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert rows.loc["BTC", "origin"] == "coingecko"
    assert str(rows.loc["BTC", "valid_to"])[:10] == str(yesterday)
    assert rows.loc["SOL", "origin"] == "analyst" and rows["valid_to"].isna().sum() == 2
    assert rows.loc["ETH", "coin_id"] == "ethereum"
