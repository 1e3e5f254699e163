"""``benchmarks/warehouse.py`` on a tiny market, so the benchmark cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def bench():
    # Loaded from its path: the script's name would shadow the `warehouse` package if its
    # folder were put on sys.path.
    path = REPO_ROOT / "benchmarks" / "warehouse.py"
    spec = importlib.util.spec_from_file_location("aitokens_bench_warehouse", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_synthetic_market_is_deterministic_and_shaped(bench):
    config = bench.Config(coins=20, days=40, members=5, naive_rows=10, repeat=1)
    a, b = bench.synthetic_market(config), bench.synthetic_market(config)
    pd.testing.assert_frame_equal(a.daily, b.daily)
    assert len(a.daily) == 20 * 40 and len(a.next_day) == 20
    assert not a.daily.duplicated(["coin_id", "date"]).any()
    assert a.next_day["date"].min() == a.daily["date"].max() + pd.Timedelta(days=1)
    # Snapshots on the 1st of each month inside the 40 days: 2023-01-01 and 2023-02-01.
    assert sorted(a.members["snapshot_date"].dt.strftime("%Y-%m-%d").unique()) == [
        "2023-01-01",
        "2023-02-01",
    ]
    assert (a.members.groupby("snapshot_date").size() == 5).all()
    assert np.isfinite(a.daily[["price", "market_cap", "volume"]].to_numpy()).all()


def test_pandas_peers_compute_what_the_views_compute(bench):
    daily = pd.DataFrame(
        {
            "coin_id": ["a", "a", "a", "b", "b"],
            "date": pd.to_datetime(
                ["2023-01-01", "2023-01-02", "2023-01-03", "2023-01-01", "2023-01-02"]
            ),
            "price": [1.0, 2.0, 1.0, 10.0, 11.0],
            "market_cap": [5.0, 6.0, 7.0, 50.0, 55.0],
            "volume": [1.0, 1.0, 1.0, 2.0, 2.0],
        }
    )
    returns = bench.pandas_returns(daily)
    assert returns["simple_return"].tolist() == pytest.approx([1.0, -0.5, 0.1])
    members = pd.DataFrame({"snapshot_date": pd.to_datetime(["2023-01-02"]), "coin_id": ["b"]})
    sector = bench.pandas_sector(daily, members)  # before the snapshot: backfilled membership
    assert sector["market_cap_usd"].tolist() == [50.0, 55.0, 0.0]
    assert sector["n_with_market_cap"].tolist() == [1, 1, 0]


def test_tiny_run_prints_every_figure_and_ratio(bench, tmp_path, capsys):
    json_path = tmp_path / "figures.json"
    code = bench.main(
        [
            "--coins",
            "50",
            "--days",
            "30",
            "--members",
            "10",
            "--naive-rows",
            "120",
            "--repeat",
            "1",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(json_path),
        ]
    )
    assert code == 0
    report = capsys.readouterr().out
    assert report.startswith(
        "aitokens warehouse benchmark: 50 coins x 30 days = 1,500 coin_daily rows; "
        "10 AI-category members per monthly snapshot; seed 0\n"
    )
    for name in (
        "bulk load: upsert(), one transaction",
        "daily upsert(): new day, inserted",
        "daily upsert(): same batch, unchanged",
        "daily upsert(): revised prices, updated",
        "naive executemany INSERT OR REPLACE (sample)",
        "SQL daily_returns -> DataFrame (full panel)",
        "pandas returns: sort + groupby pct_change",
        "SQL ai_sector_daily -> DataFrame",
        "pandas sector: merge + groupby",
        "aitokens export coin_daily -> Parquet",
    ):
        assert f"\n{name} " in report, name
    figures = json.loads(json_path.read_text())
    assert [r["name"] for r in figures["ratios"]] == [
        "bulk load",
        "daily batch",
        "daily_returns, full panel",
        "mean return per day",
        "ai_sector_daily",
    ]
    assert all(r["ratio"] > 0 for r in figures["ratios"])
    naive = next(s for s in figures["steps"] if s["name"].startswith("naive"))
    bulk = next(s for s in figures["steps"] if s["name"].startswith("bulk load"))
    assert naive["rows"] == 120 and bulk["rows"] == 1_500
    assert all(s["peak_rss_mb"] is None or s["peak_rss_mb"] > 0 for s in figures["steps"])
    # Bulk load + daily batch (+50) + naive sample (+120): what the export then finds.
    assert figures["sizes"]["coin_daily_rows"] == 1_500
    assert (tmp_path / "work" / "export" / "manifest.json").is_file()
    manifest = json.loads((tmp_path / "work" / "export" / "manifest.json").read_text())
    assert manifest["tables"]["coin_daily"]["rows"] == 1_500 + 50 + 120


def test_bad_sizes_are_refused(bench):
    with pytest.raises(SystemExit):
        bench.main(["--coins", "10", "--members", "11"])


@pytest.mark.skipif(sys.platform != "linux", reason="per-step peak RSS needs /proc")
def test_memory_peak_resets_per_step(bench):
    memory = bench.Memory()
    start = memory.start()
    block = np.ones(40 * 2**20 // 8)  # 40 MB, touched
    assert memory.peak() - start >= 35
    del block
    assert Path("/proc/self/clear_refs").exists()
