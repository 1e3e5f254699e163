"""A hostile server against the real in-process ingestion: every case ends in a clear error or
correct data, within bounded time and memory, and the planted key is found nowhere.

The fakes (tests/fakes/hostile.py) echo the key in errors, redirect to another host, page
forever, trickle, send a gzip bomb or a 600 MB body, answer for another coin, stamp in the
wrong unit and list ids that walk a URL path. The key (regex metacharacters, a carriage
return, four characters) is looked for in stderr/stdout, the log, every warehouse file (the
DuckDB file and its WAL, byte for byte) and a Parquet export. The transport limits are made
small (``AITOKENS_HTTP_DEADLINE=2``, ``AITOKENS_HTTP_MAX_BYTES`` 8 MB) so the cases are quick.
"""

from __future__ import annotations

import json
import logging
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.redact import secret_variants
from flows.services.ingest_options import IngestOptions
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.fixtures import fast_coingecko_config, fast_yahoo_config
from tests.fakes.hostile import BAD_IDS, HostileCoinGecko, HostileYahoo, gzip_bomb
from tests.ingest.conftest import SYNTHETIC_TICKERS, days_ago

# Slow by design: each case is a real in-process ingestion run (DuckDB file, HTTP to the fakes)
# of 3-8 s, two wait out a 2 s deadline, and the bomb is built once (about 1 s).
pytestmark = pytest.mark.slow

MAX_BYTES = 8 * 1024 * 1024
DEADLINE = 2.0
REGEX_KEY = f"CG-.*+?[x](y){{2}}|^$\\d-{uuid.uuid4().hex[:12]}"
CR_KEY = f"CG-\r{uuid.uuid4().hex[:10]}"
SHORT_KEY = "Q~7`"  # four characters that no table, page or log line holds by chance
CHART = "/coins/fetch-ai/market_chart/range"


@dataclass
class Hostile:
    cg: HostileCoinGecko
    yahoo: HostileYahoo
    elsewhere: FakeCoinGecko  # "another host": records whatever reaches it
    db: Path
    key: str
    log: Path

    def configs(self, **cg_overrides):
        return {
            "coingecko": fast_coingecko_config(self.cg, **cg_overrides),
            "yahoo": fast_yahoo_config(self.yahoo, tickers=SYNTHETIC_TICKERS),
        }

    def run(self, flow: str = "backfill", refresh: bool = False, **cg_overrides):
        """The in-process ingestion (the steps ``--no-prefect`` runs), within bounded time."""
        from flows.services.steps import run_ingestion

        options = IngestOptions(
            flow=flow,
            since=days_ago(20) if flow == "backfill" else None,
            refresh_snapshot=refresh,
        )
        started = time.monotonic()
        try:
            return run_ingestion(options, db=self.db, configs=self.configs(**cg_overrides))
        finally:
            self.seconds = time.monotonic() - started

    def table(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def last_run(self) -> tuple[str, list[dict], dict]:
        status, errors, details = self.table(
            "SELECT status, errors::VARCHAR, details::VARCHAR FROM ingest_runs "
            "ORDER BY started_at DESC LIMIT 1"
        )[0]
        return status, json.loads(errors or "[]"), json.loads(details or "{}")


def _hostile(tmp_path: Path, monkeypatch, key: str) -> Iterator[Hostile]:
    monkeypatch.setenv("AITOKENS_HTTP_DEADLINE", str(DEADLINE))
    monkeypatch.setenv("AITOKENS_HTTP_MAX_BYTES", str(MAX_BYTES))
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with (
            FakeCoinGecko() as elsewhere,
            HostileCoinGecko(n_coins=4, plan="pro", api_key=key, redirect_to=elsewhere.url) as cg,
            HostileYahoo(extra=SYNTHETIC_TICKERS, redirect_to=elsewhere.url) as yahoo,
        ):
            yield Hostile(cg, yahoo, elsewhere, tmp_path / "wh" / "aitokens.duckdb", key, log_file)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


@pytest.fixture
def hostile(tmp_path, monkeypatch) -> Iterator[Hostile]:
    yield from _hostile(tmp_path, monkeypatch, REGEX_KEY)


def found_key(h: Hostile, *texts: str, extra_files: tuple[Path, ...] = ()) -> list[str]:
    """Where the key (in any encoding, as text or bytes) turns up: the given texts, the log,
    every file beside the warehouse (DuckDB file, WAL, lock) and ``extra_files``."""
    forms = secret_variants(h.key)
    found = [f"text {i}" for i, t in enumerate(texts) if any(f in t for f in forms)]
    log_text = h.log.read_text(errors="replace")
    found += ["log"] if any(f in log_text for f in forms) else []
    files = [p for p in h.db.parent.iterdir() if p.is_file()] + list(extra_files)
    for path in files:
        data = path.read_bytes()
        if any(f.encode() in data for f in forms):
            found.append(f"file {path.name}")
    return found


# ------------------------------------------------------------------------------ the key
@pytest.mark.parametrize("key", [REGEX_KEY, SHORT_KEY], ids=["regex", "short"])
def test_key_echoed_in_errors_is_found_nowhere(tmp_path, monkeypatch, capfd, key):
    """Errors that quote the key (raw, JSON, repr, URL-encoded) on a history call (skipped
    with its reason), a retried 5xx (logged each retry), ``/global`` (a note) and the CLI
    (stderr), then an export: the key is in none of them."""
    for h in _hostile(tmp_path, monkeypatch, key):
        h.cg.inject(CHART, "echo_key", status=400, times=None)
        h.cg.inject("/coins/render-token/market_chart/range", "echo_key", status=500, times=None)
        h.cg.inject("/global", "echo_key", status=400, times=None)
        summary = h.run()
        assert summary.status == "completed"
        assert "fetch-ai" in summary.skipped and "***" in summary.skipped["fetch-ai"]
        assert "render-token" in summary.skipped
        assert any(n.startswith("/global skipped") for n in summary.notes)
        reasons = h.table("SELECT coin_id, reason FROM skipped_coins")
        assert {c for c, _ in reasons} >= {"fetch-ai", "render-token"}
        # the CLI on the same server: the run fails on a key error that echoes the key
        h.cg.inject("/coins/categories", "echo_key", status=401, times=None)
        for name, value in {
            "AITOKENS_COINGECKO_URL": h.cg.url,
            "AITOKENS_YAHOO_URL": h.yahoo.url,
            "COINGECKO_PLAN": "pro",
            "COINGECKO_API_KEY": key,
            "AITOKENS_COINGECKO_CALLS_PER_MINUTE": "60000",
            "AITOKENS_YAHOO_CALLS_PER_MINUTE": "60000",
            "AITOKENS_COINGECKO_MAX_RETRY_SECONDS": "1",
        }.items():
            monkeypatch.setenv(name, value)
        code = main(["ingest", "--no-prefect", "--refresh-snapshot", "--db", str(h.db)])
        assert code == 2
        exported = tmp_path / "export"
        assert (
            main(["export", "--format", "parquet", "--out", str(exported), "--db", str(h.db)]) == 0
        )
        out, err = capfd.readouterr()
        assert "rejected the API key" in err and "***" in err
        assert key not in err
        # the key was really sent (in a header), so finding it nowhere means something
        assert any(r.headers.get("x-cg-pro-api-key") == key for r in h.cg.requests)
        status, errors, _ = h.last_run()
        assert status == "failed" and "***" in json.dumps(errors)
        parquet = tuple(p for p in exported.rglob("*") if p.is_file())
        assert parquet
        assert found_key(h, out, err, extra_files=parquet) == []


def test_key_with_a_carriage_return_is_never_printed_escaped(tmp_path, monkeypatch, capfd):
    """A key holding '\\r' cannot go into a header: requests refuses it with an error that
    quotes the value escaped ('\\\\r'), the form a plain scrubber misses."""
    for h in _hostile(tmp_path, monkeypatch, CR_KEY):
        with pytest.raises(Exception) as info:  # noqa: PT011 - any error, inspected below
            h.run()
        out, err = capfd.readouterr()
        message = str(info.value)
        assert "header" in message.lower() and "***" in message
        status, errors, _ = h.last_run()
        assert status == "failed"
        assert found_key(h, out, err, message, json.dumps(errors)) == []


# ------------------------------------------------------------------------------ redirects
def test_a_redirect_to_another_host_is_refused_and_the_key_never_sent_there(hostile):
    hostile.cg.inject(CHART, "redirect", times=None)
    hostile.yahoo.inject(f"/v8/finance/chart/{SYNTHETIC_TICKERS[0]}", "redirect", times=None)
    summary = hostile.run()
    assert summary.status == "completed"
    assert "redirect to another host" in summary.skipped["fetch-ai"]
    assert "redirect to another host" in summary.skipped[SYNTHETIC_TICKERS[0]]
    assert hostile.elsewhere.requests == []  # nothing at all reached the other host
    assert len(hostile.cg.calls(CHART)) == 1  # refused, not retried
    assert found_key(hostile) == []


def test_a_redirect_on_the_same_host_is_followed_and_a_loop_is_not(hostile):
    from flows.sources.coingecko import CoinGeckoClient

    hostile.cg.redirect_to = hostile.cg.url  # the same host: followed, with the key
    hostile.cg.inject("/global", "redirect", times=1)
    with CoinGeckoClient(fast_coingecko_config(hostile.cg)) as client:
        assert "data" in client.global_()
        hostile.cg.inject("/global", "redirect", times=None)  # redirects to itself forever
        with pytest.raises(Exception, match="more than 5 redirects"):
            client.global_()
    assert len(hostile.cg.calls("/global")) == 2 + 6


# ------------------------------------------------------------------------------ bounds
def test_endless_identical_pages_stop_at_the_second_page(hostile):
    hostile.cg.inject("/coins/markets", "same_page", times=None)
    with pytest.raises(Exception, match="page 2 repeats page 1"):
        hostile.run(per_page=2)
    assert len(hostile.cg.calls("/coins/markets")) == 2
    status, errors, _ = hostile.last_run()
    assert status == "failed" and "repeats" in errors[-1]["reason"]


def test_call_cap_stops_a_run(hostile, monkeypatch):
    monkeypatch.setenv("AITOKENS_MAX_CALLS_PER_RUN", "3")
    with pytest.raises(Exception, match="cap of 3"):
        hostile.run()
    status, errors, _ = hostile.last_run()
    assert status == "failed" and "AITOKENS_MAX_CALLS_PER_RUN" in errors[-1]["reason"]
    assert len(hostile.cg.requests) <= 3


def test_slow_trickle_fails_within_the_deadline(hostile):
    """One byte every 1.5 s never trips a per-read timeout; the 2 s deadline ends each try."""
    hostile.cg.inject(CHART, "trickle", delay=1.5, times=None)
    summary = hostile.run(timeout_seconds=5.0)  # each byte comes well within a read timeout
    assert summary.status == "completed"
    reason = summary.skipped["fetch-ai"]
    assert "did not complete within its 2 s deadline" in reason, reason
    tries = len(hostile.cg.calls(CHART))
    # each try ends by its deadline; the retry budget (3 s, FAST) allows two
    assert 1 <= tries <= 3
    assert hostile.seconds < 3 * DEADLINE + 15


def test_headers_trickled_byte_by_byte_fail_at_the_deadline(hostile):
    """The watchdog: a server that sends its status line and headers one byte every 0.5 s
    (never a read timeout) fails at the 2 s deadline, not after 300 bytes x 0.5 s."""
    from flows.errors import UpstreamError
    from flows.sources.coingecko import CoinGeckoClient

    hostile.cg.inject("/global", "trickle_headers", delay=0.5, times=None)
    config = fast_coingecko_config(hostile.cg, max_retry_seconds=0, timeout_seconds=5.0)
    started = time.monotonic()
    with CoinGeckoClient(config) as client, pytest.raises(UpstreamError) as info:
        client.global_()
    assert "did not complete within its 2 s deadline" in str(info.value)
    assert time.monotonic() - started < DEADLINE + 2.0


@pytest.mark.parametrize("kind", ["gzip_bomb", "huge"])
def test_gzip_bomb_and_huge_body_are_refused_within_bounded_memory(hostile, kind):
    """A 1 MB gzip stream of 1 GB and a 600 MB body both stop at the 8 MB cap; the peak of
    Python allocations stays a small multiple of the cap (measured with tracemalloc)."""
    from flows.sources.coingecko import CoinGeckoClient

    gzip_bomb()  # built once per process before the fake serves it (about a second)
    hostile.cg.inject(CHART, kind, times=None)
    config = fast_coingecko_config(hostile.cg, max_retry_seconds=0)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with CoinGeckoClient(config) as client, pytest.raises(Exception) as info:
            client.market_chart_range("fetch-ai", 1_700_000_000, 1_710_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.monotonic() - started
    assert f"body larger than {MAX_BYTES:,} bytes" in str(info.value)
    print(f"{kind}: refused in {seconds:.2f} s, peak Python allocations {peak / 2**20:.1f} MB")
    assert peak < 4 * MAX_BYTES
    if kind == "huge":
        return
    # and through the run: the series is skipped with that reason, the others load
    summary = hostile.run()
    assert "body larger than" in summary.skipped["fetch-ai"]
    assert summary.inserted > 0


# ------------------------------------------------------------------------------ payloads
def test_answers_about_something_else_are_refused_with_the_reason(hostile):
    """In one run: a chart for another coin, a chart stamped in seconds, a Yahoo chart stamped
    in milliseconds (0 rows and a "completed" run before), and members whose ids walk a URL
    path. Each is refused with its reason; everything else loads."""
    ticker, other = SYNTHETIC_TICKERS
    hostile.cg.inject(CHART, "wrong_coin", times=None)
    hostile.cg.inject("/coins/render-token/market_chart/range", "seconds", times=None)
    hostile.yahoo.inject(f"/v8/finance/chart/{ticker}", "ms", times=None)
    hostile.cg.inject("/coins/markets", "bad_ids", times=None)
    summary = hostile.run()
    assert summary.status == "completed"
    assert "the answer is for coin 'bitcoin', not 'fetch-ai'" in summary.skipped["fetch-ai"]
    assert "stamps are in seconds" in summary.skipped["render-token"]
    assert "timestamps are in milliseconds" in summary.skipped[ticker]
    held = dict(hostile.table("SELECT coin_id, count(*) FROM coin_daily GROUP BY coin_id"))
    assert "fetch-ai" not in held and "render-token" not in held and held["bitcoin"] > 0
    tickers = dict(hostile.table("SELECT ticker, count(*) FROM equity_daily GROUP BY ticker"))
    assert ticker not in tickers and tickers[other] > 0
    note = next(n for n in summary.notes if "coin id(s) refused" in n)
    assert f"{len(BAD_IDS)} coin id(s) refused" in note and "contains '?'" in note
    members = {r[0] for r in hostile.table("SELECT coin_id FROM category_members")}
    assert members.isdisjoint(BAD_IDS) and "bittensor" in members
    paths = [r.path + "?" + r.query for r in hostile.cg.requests]
    assert not any("evil" in p or "x=1" in p or "/../" in p for p in paths)


def test_global_failing_or_unreadable_keeps_the_loaded_coins(hostile):
    body = json.dumps({"data": {"total_market_cap": {"usd": "lots"}, "updated_at": "soon"}})
    hostile.cg.inject("/global", "body", body=body, times=1)
    summary = hostile.run()
    assert summary.status == "completed"
    assert hostile.table("SELECT total_market_cap_usd FROM global_daily") == [(None,)] or (
        hostile.table("SELECT isnan(total_market_cap_usd) FROM global_daily") == [(True,)]
    )
    hostile.cg.inject("/global", status=500, times=None)
    summary = hostile.run(flow="daily_ingest", refresh=True)
    assert summary.status == "completed"
    assert any(n.startswith("/global skipped") for n in summary.notes)
    assert hostile.last_run()[0] == "completed"
