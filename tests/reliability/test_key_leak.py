"""A planted API key never leaves the process: not in logs (DEBUG), the warehouse (every
table, every byte of its files), Prefect (artifacts, flow run parameters, logs, task runs, and
every byte of its SQLite database), the CLI's output, or the reports. Runs through the real
Prefect flows against the hostile fakes, with faults (429, 5xx, HTML, 10012, errors that echo
the key in every encoding, a redirect to another host) so every error path writes its
messages. The key holds regex metacharacters."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from tests.ingest.conftest import SYNTHETIC_TICKERS, days_ago

pytestmark = pytest.mark.slow

KEY = f"CG-LEAKCANARY.*+?[a](b)|^$-{uuid.uuid4().hex}"


def leaks(text: str | bytes) -> bool:
    """The key, in any encoding a server or a library could give it (raw, JSON, repr, URL)."""
    from flows.redact import secret_variants

    forms = secret_variants(KEY)
    if isinstance(text, bytes):
        return any(f.encode() in text for f in forms)
    return any(f in text for f in forms)


def _prefect_database_files() -> list[Path]:
    """The SQLite file (and WAL/journal) of the Prefect API the test harness runs."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    path = Path(url.split(":///", 1)[-1])
    return [p for p in path.parent.glob(path.name + "*") if p.is_file()]


async def _prefect_records() -> dict[str, list[str]]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        artifacts = await client.read_artifacts()
        flow_runs = await client.read_flow_runs()
        task_runs = await client.read_task_runs()
        logs = await client.read_logs()
    return {
        "artifacts": [a.model_dump_json() for a in artifacts],
        "flow_runs": [r.model_dump_json() for r in flow_runs],
        "task_runs": [r.model_dump_json() for r in task_runs],
        "logs": [entry.model_dump_json() for entry in logs],
    }


def _warehouse_texts(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        return {
            t: json.dumps(con.execute(f'SELECT * FROM "{t}"').fetchall(), default=str)
            for t in tables
        }
    finally:
        con.close()


@pytest.fixture
def leak_env(tmp_path, monkeypatch, prefect_harness):
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.hostile import HostileCoinGecko
    from tests.fakes.yahoo import FakeYahoo

    with (
        FakeCoinGecko() as elsewhere,
        HostileCoinGecko(
            n_coins=6,
            plan="pro",
            api_key=KEY,
            delisted=("old-ai-coin",),
            redirect_to=elsewhere.url,
        ) as cg,
        FakeYahoo(extra=SYNTHETIC_TICKERS) as yahoo,
    ):
        cg.elsewhere = elsewhere
        for name, value in {
            "AITOKENS_COINGECKO_URL": cg.url,
            "AITOKENS_YAHOO_URL": yahoo.url,
            "COINGECKO_PLAN": "pro",
            "COINGECKO_API_KEY": KEY,
            "AITOKENS_COINGECKO_CALLS_PER_MINUTE": "6000",
            "AITOKENS_YAHOO_CALLS_PER_MINUTE": "6000",
            "AITOKENS_COINGECKO_MAX_RETRY_SECONDS": "5",
            "AITOKENS_YAHOO_MAX_RETRY_SECONDS": "5",
            "AITOKENS_YAHOO_TICKERS": ",".join(SYNTHETIC_TICKERS),
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AITOKENS_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        log_file = tmp_path / "debug.log"
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        loggers = [
            logging.getLogger(n)
            for n in ("", "prefect", "aitokens", "urllib3", "warehouse", "flows")
        ]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            lg.setLevel(logging.DEBUG)
        try:
            yield cg, yahoo, tmp_path, log_file
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.removeHandler(handler)
                lg.setLevel(level)
            handler.close()


def test_planted_key_is_found_nowhere(leak_env, capfd, sora_prices_csv):
    from flows.errors import BadApiKeyError, HtmlResponseError
    from flows.pipelines.ingest_flows import backfill, daily_ingest

    cg, yahoo, folder, log_file = leak_env
    db = folder / "wh" / "aitokens.duckdb"
    faults = [
        cg.inject("/coins/fetch-ai/market_chart/range", status=429, retry_after=0, times=2),
        cg.inject("/coins/render-token/market_chart/range", status=500, times=1),
        cg.inject("/coins/singularitynet/market_chart/range", kind="html", status=503, times=1),
        cg.inject("/coins/bittensor/market_chart/range", kind="plan_limit", times=None),
        cg.inject("/coins/the-graph/market_chart/range", kind="truncated", times=1),
        cg.inject("/coins/fetch-ai/market_chart/range", kind="echo_key", status=500, times=1),
        cg.inject("/coins/injective-protocol/market_chart/range", kind="echo_key", times=None),
        cg.inject("/coins/render-token/market_chart/range", kind="redirect", times=1),
        cg.inject("/global", kind="echo_key", status=400, times=None),
        yahoo.inject(f"/v8/finance/chart/{SYNTHETIC_TICKERS[0]}", status=502, times=1),
    ]
    result = backfill(since=days_ago(100), db=str(db))
    assert result["status"] == "completed" and "bittensor" in result["skipped"]
    assert "***" in result["skipped"]["injective-protocol"]  # the echoed key, scrubbed
    assert "redirect to another host" in result["skipped"]["render-token"]
    assert cg.elsewhere.requests == []  # the redirect was not followed: no key went there
    assert all(f.hits for f in faults), [(f.path, f.kind, f.hits) for f in faults]

    cg.inject("/coins/categories", kind="html", times=None)
    with pytest.raises(HtmlResponseError):
        daily_ingest(db=str(db), refresh_snapshot=True)
    cg.clear_faults()
    cg.inject("/coins/categories", kind="echo_key", status=401, times=None)
    with pytest.raises(BadApiKeyError, match=r"\*\*\*"):
        daily_ingest(db=str(db), refresh_snapshot=True)
    cg.clear_faults()

    # the CLI's own output, and the reports (run with the key in the environment; on the real
    # Sora panel, as the fakes' synthetic dates do not cover the event)
    assert main(["status", "--db", str(db)]) == 0
    assert main(["sql", "SELECT * FROM raw_responses", "--format", "json", "--db", str(db)]) == 0
    report_db = folder / "report" / "aitokens.duckdb"
    assert main(["import", str(sora_prices_csv), "--db", str(report_db)]) == 0
    reports = folder / "reports"
    assert main(["report", "--event", "sora", "--out", str(reports), "--db", str(report_db)]) == 0
    out, err = capfd.readouterr()

    # The key was really used (in a header), so finding nothing means something.
    assert any(r.headers.get("x-cg-pro-api-key") == KEY for r in cg.requests)
    assert not any(leaks(r.query) or leaks(r.path) for r in cg.requests)
    assert leaks(f"control {KEY} control")

    found = []
    log_text = log_file.read_text(errors="replace")
    assert "DEBUG" in log_text and "market_chart" in log_text  # the log did capture the run
    found += ["debug log"] if leaks(log_text) else []
    found += ["stdout"] if leaks(out) else []
    found += ["stderr"] if leaks(err) else []
    tables = _warehouse_texts(db)
    assert "raw_responses" in tables and "ingest_runs" in tables
    assert "bittensor" in tables["ingest_runs"] and "10012" in tables["ingest_runs"]
    found += [f"table {t}" for t, text in tables.items() if leaks(text)]
    for path in db.parent.iterdir():  # the DuckDB file, its WAL, the run lock
        found += [f"file {path.name}"] if leaks(path.read_bytes()) else []
    records = asyncio.run(_prefect_records())
    assert records["artifacts"] and records["flow_runs"] and records["logs"]
    found += [f"prefect {kind}" for kind, items in records.items() if any(map(leaks, items))]
    prefect_files = _prefect_database_files()
    assert prefect_files and any(p.stat().st_size > 0 for p in prefect_files)
    found += [f"prefect file {p.name}" for p in prefect_files if leaks(p.read_bytes())]
    report_files = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in report_files)
    assert any(p.suffix == ".png" for p in report_files)
    found += [f"report {p.name}" for p in report_files if leaks(p.read_bytes())]
    assert found == [], f"the key leaked into: {found}"
