"""Fixtures for the report tests: two warehouses, each run once through the pipeline.

- ``real_run``: the README's main job on the real Sora panel, through Prefect:
  ``aitokens pipeline --import prices.csv --offline`` (imported CSV: no market caps).
- ``fake_run``: a warehouse backfilled from the CoinGecko and Yahoo fakes (market caps, a
  category snapshot), then ``aitokens pipeline --no-prefect`` whose ingest fails (a wrong API
  plan): the report must still be written, with the stale-data caveat, and the exit code is 1.

Each executes both notebooks once per session (about 30 s each on a quiet machine).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

EVENT_FIGURES = (
    "01_event_timeline",
    "02_token_prices_indexed",
    "03_token_ar_car",
    "04_portfolio_ar_car",
    "05_equities_indexed",
    "06_equities_ar_car",
    "06b_compute_tokens_vs_gpu",
    "08_placebo",
    "09_specification_curve",
)
SECTOR_FIGURES_PRICES_ONLY = ("04_sector_vs_nvda_btc", "05_rolling_correlation")
SECTOR_FIGURES_FULL = (
    "01_sector_market_cap",
    "02_top_members",
    "03_concentration",
    *SECTOR_FIGURES_PRICES_ONLY,
)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(args: list[str]) -> CliResult:
    """Run `aitokens ARGS` in-process, capturing what it prints."""
    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return CliResult(code, out.getvalue(), err.getvalue())


@dataclass
class Run:
    name: str
    db: Path
    out: Path
    result: CliResult

    def html(self, stem: str) -> str:
        return (self.out / f"{stem}.html").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, sora_prices_csv: Path, prefect_harness) -> Run:
    root = tmp_path_factory.mktemp("real")
    db, out = root / "wh.duckdb", root / "reports"
    result = run_cli(
        [
            "pipeline",
            "--import",
            str(sora_prices_csv),
            "--offline",
            "--db",
            str(db),
            "--out",
            str(out),
        ]
    )
    return Run("real", db, out, result)


@pytest.fixture(scope="session")
def fake_warehouse(tmp_path_factory) -> Path:
    """Backfilled from the fakes since 2023-08-01: 8 AI coins with market caps, BTC, ETH,
    NVDA/AMD/SPY/QQQ (real closes where ../shared has them), one category snapshot (today)."""
    from flows.services.ingest_options import IngestOptions
    from flows.services.steps import run_ingestion
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.fixtures import fast_coingecko_config, fast_yahoo_config
    from tests.fakes.yahoo import FakeYahoo

    db = tmp_path_factory.mktemp("fake") / "wh.duckdb"
    with (
        FakeCoinGecko(n_coins=9, plan="pro", api_key="pro-key-12345678") as cg,
        FakeYahoo() as yahoo,
    ):
        summary = run_ingestion(
            IngestOptions(flow="backfill", since=date(2023, 8, 1)),
            db=db,
            configs={"coingecko": fast_coingecko_config(cg), "yahoo": fast_yahoo_config(yahoo)},
        )
    assert summary.status == "completed", summary
    return db


@pytest.fixture(scope="session")
def fake_run(fake_warehouse: Path, tmp_path_factory) -> Run:
    """`aitokens pipeline --no-prefect` whose ingest fails at once (a misconfigured plan)."""
    out = tmp_path_factory.mktemp("fake_reports") / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COINGECKO_PLAN", "enterprise")
        mp.setenv("AITOKENS_YAHOO_URL", "http://127.0.0.1:9/")  # never reached
        result = run_cli(
            ["pipeline", "--no-prefect", "--db", str(fake_warehouse), "--out", str(out)]
        )
    return Run("fakes", fake_warehouse, out, result)


@pytest.fixture(scope="session", params=["real", "fakes"])
def any_run(request) -> Run:
    return request.getfixturevalue("real_run" if request.param == "real" else "fake_run")
