"""Ingestion throughput: how busy a rate-limited backfill keeps the API, and what Prefect and
DuckDB cost per coin.

Part A: a fake CoinGecko that answers 429 past R calls per minute (a real 60 s sliding window)
serves 300 AI coins; a backfill of one chunk per coin runs with the client limited to R.
Goal: at least 90% of R used for history calls, and no 429.

Part B: the same backfill with no rate limit, three ways in one run: fetching only (no
warehouse), the plain core (fetch + DuckDB load per coin), and the Prefect flow. Differences
divided by the number of coins give DuckDB's and Prefect's overhead per coin.

Run: uv run --all-extras python -m benchmarks.ingest_throughput [--coins 300] [--rate 240]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.services.ingest_options import IngestOptions  # noqa: E402
from flows.services.steps import run_ingestion  # noqa: E402
from flows.sources import coingecko as cg  # noqa: E402
from tests.fakes.coingecko import FakeCoinGecko  # noqa: E402
from tests.fakes.fixtures import fast_yahoo_config  # noqa: E402
from tests.fakes.yahoo import FakeYahoo  # noqa: E402

HISTORY = "/coins/*/market_chart/range"


def since() -> datetime:
    return (datetime.now(UTC) - timedelta(days=200)).date()


def options() -> IngestOptions:
    return IngestOptions(flow="backfill", since=since(), equities=False, global_market=False)


def config(fake: FakeCoinGecko, rate: float, window: float = 60.0) -> cg.CoinGeckoConfig:
    return cg.CoinGeckoConfig(
        plan="pro",
        api_key="bench-key",
        base_url=fake.url,
        calls_per_minute=rate,
        rate_window_seconds=window,
        max_retry_seconds=120,
        timeout_seconds=10,
        backoff_base_seconds=0.2,
        backoff_max_seconds=5,
    )


def rate_limited(coins: int, rate: float, workdir: Path, path: str) -> dict[str, float]:
    with (
        FakeCoinGecko(
            n_coins=coins, plan="pro", api_key="bench-key", rate_limit=(int(rate), 60.0)
        ) as fake,
        FakeYahoo() as yahoo,
    ):
        started = time.monotonic()
        if path == "prefect":
            _point_env_at(fake, yahoo, rate)
            from flows.pipelines.ingest_flows import backfill

            result = backfill(
                since=since(), db=str(workdir / "limited-prefect.duckdb"), tickers=["SPY"]
            )
            status = result["status"]
        else:
            status = run_ingestion(
                options(),
                db=workdir / "limited.duckdb",
                configs={"coingecko": config(fake, rate), "yahoo": fast_yahoo_config(yahoo)},
            ).status
        wall = time.monotonic() - started
        history = [r for r in fake.calls(HISTORY) if r.status == 200]
        limited = len(fake.calls("*", status=429))
        stamps = sorted(r.at for r in history)
    span = stamps[-1] - stamps[0]
    achieved = (len(stamps) - 1) / span * 60.0 if span > 0 else float("nan")
    return {
        "coins": coins,
        "rate": rate,
        "history_calls": len(history),
        "wall_s": wall,
        "span_s": span,
        "achieved_per_min": achieved,
        "busy": achieved / rate,
        "http_429": limited,
        "status": status,
    }


def _point_env_at(fake: FakeCoinGecko, yahoo: FakeYahoo, rate: float) -> None:
    """The Prefect flows read their settings from the environment, as a scheduled run does."""
    os.environ.update(
        {
            "AITOKENS_COINGECKO_URL": fake.url,
            "COINGECKO_PLAN": "pro",
            "COINGECKO_API_KEY": "bench-key",
            "AITOKENS_COINGECKO_CALLS_PER_MINUTE": str(rate),
            "AITOKENS_YAHOO_URL": yahoo.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "ERROR",
        }
    )


def warm_prefect() -> None:
    """Start Prefect's temporary server outside every measurement."""
    from prefect import flow

    @flow
    def warm_up() -> int:
        return 1

    warm_up()


def overhead(coins: int, workdir: Path) -> dict[str, float]:
    unlimited = 1_000_000.0
    with (
        FakeCoinGecko(n_coins=coins, plan="pro", api_key="bench-key") as fake,
        FakeYahoo() as yahoo,
    ):
        conf = config(fake, unlimited)
        ids = cg.coin_universe(fake.universe.ai_ids)
        end = (datetime.now(UTC) - timedelta(days=1)).date()
        client = cg.CoinGeckoClient(conf)
        t0 = time.perf_counter()
        for coin in ids:  # the same calls as the core makes, without the warehouse
            cg.fetch_coin_history(client, coin, since(), end)
        fetch_only = time.perf_counter() - t0
        client.close()

        t0 = time.perf_counter()
        run_ingestion(
            options(),
            db=workdir / "plain.duckdb",
            configs={"coingecko": conf, "yahoo": fast_yahoo_config(yahoo)},
        )
        plain = time.perf_counter() - t0

        _point_env_at(fake, yahoo, unlimited)
        from flows.pipelines.ingest_flows import backfill

        t0 = time.perf_counter()
        backfill(since=since(), db=str(workdir / "prefect.duckdb"), tickers=["SPY"])
        with_prefect = time.perf_counter() - t0
    n = len(ids)
    return {
        "series": n,
        "fetch_only_s": fetch_only,
        "plain_s": plain,
        "prefect_s": with_prefect,
        "duckdb_ms_per_coin": (plain - fetch_only) / n * 1000,
        "prefect_ms_per_coin": (with_prefect - plain) / n * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=300)
    parser.add_argument("--rate", type=float, default=240.0, help="R, calls per minute")
    parser.add_argument(
        "--paths", default="plain,prefect", help="rate-limited runs to make: plain, prefect or both"
    )
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        warm_prefect()
        for path in [p for p in args.paths.split(",") if p]:
            a = rate_limited(args.coins, args.rate, work, path)
            print(
                f"A. rate-limited backfill ({path}): {a['coins']} coins + BTC/ETH, "
                f"R = {a['rate']:g} calls/min (fake enforces a 60 s sliding window)"
            )
            print(
                f"   history calls {a['history_calls']}, wall {a['wall_s']:.1f} s, "
                f"first-to-last history call {a['span_s']:.1f} s"
            )
            print(
                f"   achieved {a['achieved_per_min']:.1f} calls/min = {a['busy']:.1%} of R "
                f"(goal >= 90%); HTTP 429 answers: {a['http_429']}; run {a['status']}",
                flush=True,
            )
        if args.skip_overhead:
            return 0
        b = overhead(args.coins, work)
        print(f"B. overhead, no rate limit, {b['series']} series, one call each:")
        print(f"   fetch only      {b['fetch_only_s']:7.2f} s")
        print(
            f"   plain core      {b['plain_s']:7.2f} s  -> DuckDB load "
            f"{b['duckdb_ms_per_coin']:.1f} ms per coin"
        )
        print(
            f"   Prefect flow    {b['prefect_s']:7.2f} s  -> Prefect "
            f"{b['prefect_ms_per_coin']:.1f} ms per coin (server already warm)"
        )
        print(
            "   fetches run on their own threads and never wait for loads, so load overhead "
            "delays the end of a run, not the API's busy share"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
