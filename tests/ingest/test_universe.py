"""Whole-universe mode: every coin CoinGecko lists, with the cost stated before it starts."""

from __future__ import annotations

import duckdb

from flows.services.ingest_options import IngestOptions
from tests.fakes.coingecko import FakeCoinGecko
from tests.ingest.conftest import Env, days_ago


def test_universe_all_lists_every_coin_and_states_the_cost_first(tmp_path):
    with FakeCoinGecko(n_coins=5, n_other=40, plan="pro", api_key="k") as cg:
        from tests.fakes.yahoo import FakeYahoo

        with FakeYahoo() as yahoo:
            env = Env(cg, yahoo, tmp_path / "w.duckdb")
            seen: dict[str, int] = {}

            def on_plan(total: int) -> None:  # the CLI prints calls and ETA from this
                seen["planned"] = total
                seen["history_calls_before"] = len(cg.calls("/coins/*/market_chart/range"))

            summary = env.run(
                IngestOptions(
                    flow="backfill",
                    since=days_ago(30),
                    universe="all",
                    equities=False,
                    global_market=False,
                ),
                on_plan=on_plan,
            )
            history = cg.calls("/coins/*/market_chart/range")
            listing = cg.calls("/coins/list")
    assert seen == {"planned": 47, "history_calls_before": 0}  # 5 AI + 40 others + BTC + ETH
    assert len(history) == 47 and len(listing) == 1
    assert any("CoinGecko lists 47 coins" in n for n in summary.notes)
    con = duckdb.connect(str(env.db), read_only=True)
    classes = dict(con.execute("SELECT asset_class, count(*) FROM coins GROUP BY 1").fetchall())
    held = con.execute("SELECT count(DISTINCT coin_id) FROM coin_daily").fetchall()[0][0]
    con.close()
    assert classes == {"ai_token": 5, "crypto": 40, "crypto_benchmark": 2}
    assert held == 47


def test_category_mode_never_calls_coins_list(env):
    env.run(IngestOptions(flow="backfill", since=days_ago(10), equities=False))
    assert env.cg.calls("/coins/list") == []


def test_universe_second_run_same_day_makes_no_call_and_changes_no_row(tmp_path):
    with FakeCoinGecko(n_coins=3, n_other=10, plan="pro", api_key="universe-key") as cg:
        from tests.fakes.yahoo import FakeYahoo

        with FakeYahoo() as yahoo:
            env = Env(cg, yahoo, tmp_path / "w.duckdb")
            opts = IngestOptions(
                flow="daily_ingest", universe="all", equities=False, lookback_days=20
            )
            env.run(opts)
            cg.reset_log()
            again = env.run(opts)
            assert cg.requests == []
    assert again.inserted == again.updated == 0
