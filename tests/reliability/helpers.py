"""Helpers of the reliability tests: canonical warehouse dumps, CLI runs in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.ingest.conftest import SYNTHETIC_TICKERS

REPO = Path(__file__).resolve().parents[2]
# Run bookkeeping and schema tables: they differ between runs by design.
BOOKKEEPING = {"ingest_runs", "schema_migrations", "schema_meta", "trading_sessions"}
# Columns stamped with the wall clock or a run id: excluded from comparisons.
VOLATILE = {
    "ingested_at",
    "updated_at",
    "snapshot_ts",
    "fetched_at",
    "skipped_at",
    "response_id",
    "run_id",
    "created_at",
    "applied_at",
}


def canonical_dump(db_file: Path) -> dict[str, object]:
    """Every data table of the warehouse without clock stamps and run ids, sorted.

    ``raw_responses``: the successful history answers as a sorted list of (endpoint, params),
    each exactly once (bodies end with a "now" point that differs run to run), and the set of
    failed answers (endpoint, params, status): after a crash the answer of a lost batch is
    asked again, so a failure may be recorded twice, a success never.
    ``skipped_coins`` as the set of (coin, reason).
    """
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]
        out: dict[str, object] = {}
        for table in tables:
            if table in BOOKKEEPING:
                continue
            if table == "raw_responses":
                rows = con.execute(
                    "SELECT endpoint, params::VARCHAR, status, body FROM raw_responses"
                ).fetchall()
                # as a list: a successful history answer is recorded exactly once
                out["raw_ok"] = sorted((e, p) for e, p, s, _ in rows if s == 200 and _is_history(e))
                out["raw_failed"] = sorted({(e, p, s) for e, p, s, _ in rows if s != 200})
                continue
            if table == "skipped_coins":
                out[table] = sorted(
                    set(con.execute("SELECT coin_id, reason FROM skipped_coins").fetchall())
                )
                continue
            cols = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if c not in VOLATILE
            ]
            quoted = ", ".join(f'"{c}"' for c in cols)
            out[table] = sorted(con.execute(f'SELECT {quoted} FROM "{table}"').fetchall(), key=repr)
        return out
    finally:
        con.close()


def _is_history(endpoint: str) -> bool:
    return "market_chart" in endpoint or "/chart/" in endpoint


def run_statuses(db_file: Path) -> list[str]:
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        return [
            r[0]
            for r in con.execute("SELECT status FROM ingest_runs ORDER BY started_at").fetchall()
        ]
    finally:
        con.close()


def fake_env(cg, yahoo, **extra: str) -> dict[str, str]:
    """Environment for a subprocess ingestion against the fakes of this process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AITOKENS_", "COINGECKO_", "PREFECT_API"))
    }
    env.update(
        {
            "AITOKENS_COINGECKO_URL": cg.url,
            "AITOKENS_YAHOO_URL": yahoo.url,
            "COINGECKO_PLAN": "pro",
            "COINGECKO_API_KEY": cg.api_key or "",
            "AITOKENS_COINGECKO_CALLS_PER_MINUTE": "60000",
            "AITOKENS_YAHOO_CALLS_PER_MINUTE": "60000",
            "AITOKENS_COINGECKO_MAX_RETRY_SECONDS": "3",
            "AITOKENS_YAHOO_MAX_RETRY_SECONDS": "3",
            "AITOKENS_COINGECKO_TIMEOUT": "2",
            "AITOKENS_YAHOO_TIMEOUT": "2",
            "AITOKENS_YAHOO_TICKERS": ",".join(SYNTHETIC_TICKERS),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            # as in this process (tests/conftest.py turns the rolling hourly history off for
            # the suites that pin daily call counts)
            "AITOKENS_HOURLY_DAYS": os.environ.get("AITOKENS_HOURLY_DAYS", "90"),
        }
    )
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", *args]


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
