"""A warehouse mixing eras: the 2023-2024 Sora panel imported, and this year's CoinGecko data
ingested. The sector report must still build, saying which benchmark has no overlapping days
(regression: an IndexError once stopped the ai_sector notebook)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.services.ingest_options import IngestOptions
from flows.services.steps import run_ingestion
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.fixtures import fast_coingecko_config, fast_yahoo_config
from tests.fakes.yahoo import FakeYahoo
from tests.reports.conftest import run_cli


def test_sector_report_builds_when_benchmarks_do_not_overlap(tmp_path, sora_prices_csv):
    db = tmp_path / "mixed.duckdb"
    assert run_cli(["import", str(sora_prices_csv), "--db", str(db)]).code == 0
    since = datetime.now(UTC).date() - timedelta(days=60)
    with FakeCoinGecko(n_coins=6, plan="pro", api_key="mixed-era-key") as cg, FakeYahoo() as yahoo:
        run_ingestion(
            IngestOptions(flow="backfill", since=since, equities=False),
            db=db,
            configs={"coingecko": fast_coingecko_config(cg), "yahoo": fast_yahoo_config(yahoo)},
        )
    result = run_cli(
        ["report", "--only", "sector", "--db", str(db), "--out", str(tmp_path / "out")]
    )
    assert result.code == 0, result.err
    html = (tmp_path / "out" / "ai_sector.html").read_text(encoding="utf-8")
    # The longer (imported, 2023-2024) NVDA and BTC series are chosen: neither overlaps.
    assert "NVDA, BTC: no closes after the sector series starts" in html
    assert html.count("<img") >= 4
