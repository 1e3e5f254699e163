"""The Coin Metrics source (community API v4): parser units, the client against a local fake
over real HTTP (cursor paging, 429 with and without Retry-After, the error envelope, an asset it
does not cover), and an end-to-end ingestion whose second run makes no call."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.errors import RateLimitedError, UpstreamError
from flows.sources.base import SeriesPlan
from flows.sources.coinmetrics import (
    ROW_COLUMNS,
    SOURCE,
    AssetNotCoveredError,
    CoinMetricsClient,
    CoinMetricsConfig,
    CoinMetricsDaily,
    fetch_metrics,
    parse_rows,
)
from flows.sources.coinmetrics import constants as C
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.coinmetrics import ASSET_METRICS, FakeCoinMetrics, stamp
from tests.fakes.fixtures import FAST, fast_coingecko_config

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def fast_config(fake: FakeCoinMetrics, **overrides: Any) -> CoinMetricsConfig:
    kwargs: dict[str, Any] = {"base_url": fake.url, "calls_per_minute": 60_000.0, **FAST}
    kwargs.update(overrides)
    return CoinMetricsConfig(**kwargs)


@pytest.fixture
def fake():
    with FakeCoinMetrics() as server:
        yield server


@pytest.fixture
def client(fake):
    with CoinMetricsClient(fast_config(fake)) as c:
        yield c


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def row(day: date, asset: str = "fet", **metrics: object) -> dict[str, object]:
    return {"asset": asset, "time": stamp(day), **metrics}


# ------------------------------------------------------------------------------ parser
def test_a_row_is_its_utc_day_with_strings_as_floats_and_missing_metrics_nan():
    d = date(2024, 2, 15)
    parsed = parse_rows(
        "fet",
        [row(d, CapMrktEstUSD="681642646.997147877718215", volume_reported_spot_usd_1d="4e7")],
        now=NOW,
    )
    got = parsed.frame.iloc[0]
    assert list(parsed.frame.columns) == ROW_COLUMNS
    assert (got["symbol"], got["date"], got["source"]) == ("FET", d, "coinmetrics")
    assert got["market_cap"] == 681642646.9971479 and got["volume_usd"] == 4e7
    assert math.isnan(got["price_usd"])  # ReferenceRateUSD left out of the row: missing


def test_todays_running_day_and_rows_without_any_metric_are_left_out():
    today = NOW.date()
    rows = [
        row(today - timedelta(days=2), CapMrktEstUSD="1"),
        row(today - timedelta(days=1)),
        row(today, CapMrktEstUSD="2"),
    ]
    parsed = parse_rows("fet", rows, now=NOW)
    assert list(parsed.frame["date"]) == [today - timedelta(days=2)]
    assert (parsed.n_open, parsed.n_empty) == (1, 1)


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (row(date(2024, 2, 1), CapMrktEstUSD="abc"), "CapMrktEstUSD is 'abc'"),
        (row(date(2024, 2, 1), CapMrktEstUSD="-5"), "expected a non-negative number"),
        (row(date(2024, 2, 1), CapMrktEstUSD=True), "CapMrktEstUSD is True"),
        ({"asset": "fet", "time": "2024-02-01T13:00:00Z"}, "not the start of a UTC day"),
        (row(date(2024, 2, 1), asset="grt"), "asset is 'grt', not 'fet'"),
        ("fet", "expected an object"),
    ],
)
def test_garbage_is_refused_whole_naming_the_row(bad, needle):
    good = row(date(2024, 1, 31), CapMrktEstUSD="1")
    with pytest.raises(UpstreamError, match="malformed row 1") as info:
        parse_rows("fet", [good, bad], now=NOW)
    assert needle in str(info.value) and "nothing of it loaded" in str(info.value)


def test_a_repeated_day_is_refused():
    d = date(2024, 2, 1)
    with pytest.raises(UpstreamError, match="2024-02-01 repeats row 0"):
        parse_rows("fet", [row(d, CapMrktEstUSD="1"), row(d, CapMrktEstUSD="2")], now=NOW)


# ------------------------------------------------------------------------------ client + fake
def test_cursor_paging_follows_next_page_url_to_the_last_page(fake):
    end = yesterday()
    start = end - timedelta(days=99)
    with CoinMetricsClient(fast_config(fake, page_size=30)) as client:
        parsed = fetch_metrics(client, "fet", start, end)
        assert client.calls == 4
    assert len(parsed.frame) == 100 and parsed.frame["date"].is_unique
    assert parsed.frame["date"].min() == start and parsed.frame["date"].max() == end
    calls = fake.calls(ASSET_METRICS)
    assert [c.status for c in calls] == [200] * 4
    first = calls[0].params
    assert first == {
        "assets": "fet",
        "metrics": "CapMrktEstUSD,ReferenceRateUSD,volume_reported_spot_usd_1d",
        "frequency": "1d",
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "page_size": "30",
        "paging_from": "start",
    }
    assert "next_page_token" not in first
    tokens = [c.params.get("next_page_token") for c in calls[1:]]
    assert len(set(tokens)) == 3 and all(tokens)
    for later in calls[1:]:  # each next page is the given URL: the same query plus the token
        assert {k: v for k, v in later.params.items() if k != "next_page_token"} == first
    day = end - timedelta(days=40)
    assert parsed.frame.set_index("date").loc[day, "market_cap"] == fake.value_of("fet", day)


def test_one_page_holds_a_short_range_and_today_is_never_stored(client, fake):
    today = datetime.now(UTC).date()
    parsed = fetch_metrics(client, "grt", today - timedelta(days=2), today)
    assert parsed.frame["date"].max() == today - timedelta(days=1) and parsed.n_open == 1
    assert len(fake.calls(ASSET_METRICS)) == 1


def test_429_with_retry_after_is_retried_after_waiting(client, fake):
    fake.inject(ASSET_METRICS, status=429, retry_after=0.2, times=1)
    parsed = fetch_metrics(client, "fet", yesterday(), yesterday())
    assert len(parsed.frame) == 1
    calls = fake.calls(ASSET_METRICS)
    assert [r.status for r in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 0.19  # the limiter paused for Retry-After


def test_429_without_retry_after_backs_off_and_retries(client, fake):
    fake.inject(ASSET_METRICS, status=429, times=2)
    assert len(fetch_metrics(client, "fet", yesterday(), yesterday()).frame) == 1
    assert [r.status for r in fake.calls(ASSET_METRICS)] == [429, 429, 200]
    assert "retry-after" not in {k.lower() for k in fake.error_reply(429, "").headers}


def test_429_that_never_ends_is_a_rate_limit_error_naming_the_setting(fake):
    fake.inject(ASSET_METRICS, status=429, retry_after=30, times=None)
    with (
        CoinMetricsClient(fast_config(fake, max_retry_seconds=0.5)) as client,
        pytest.raises(RateLimitedError) as info,
    ):
        fetch_metrics(client, "fet", yesterday(), yesterday())
    assert "HTTP 429, Retry-After 30 s" in str(info.value)
    assert CoinMetricsConfig.env.calls_per_minute in str(info.value)


def test_the_client_keeps_under_a_sliding_window_limit_instead_of_meeting_429s():
    """A server holding a sliding-window limit like the documented one (10 calls per 6 s;
    here 3 per 0.5 s, to stay quick) and a client whose window is the config's own (3 per
    0.6 s: the slack absorbs the network's jitter): seven calls, none refused."""
    with (
        FakeCoinMetrics(rate_limit=(3, 0.5)) as server,
        CoinMetricsClient(
            fast_config(server, calls_per_minute=300.0, rate_window_seconds=0.6)
        ) as client,
    ):
        for _ in range(7):
            fetch_metrics(client, "fet", yesterday(), yesterday())
        statuses = [r.status for r in server.calls(ASSET_METRICS)]
    assert statuses == [200] * 7
    assert client.limiter.window_seconds == 0.6
    default = CoinMetricsConfig()
    assert default.rate_window_seconds == 6.0
    assert default.calls_per_minute * default.rate_window_seconds / 60.0 == 10.0


def test_the_error_envelope_is_read_and_reported(client, fake):
    body = json.dumps(
        {
            "error": {
                "type": "forbidden",
                "message": "Requested metric 'X' is not available with supplied credentials.",
            }
        }
    )
    fake.inject(ASSET_METRICS, "body", status=403, body=body)
    with pytest.raises(UpstreamError) as info:
        client.asset_metrics_pages("fet", yesterday(), yesterday()).__next__()
    text = str(info.value)
    assert "request refused (HTTP 403, forbidden: Requested metric 'X'" in text
    assert "community API serves only some metrics" in text
    assert info.value.status == 403 and not info.value.retryable
    assert len(fake.calls(ASSET_METRICS)) == 1  # never retried
    fake.inject(ASSET_METRICS, status=503, times=1)
    assert len(fetch_metrics(client, "fet", yesterday(), yesterday()).frame) == 1
    fake.inject(ASSET_METRICS, status=500, times=None)
    with pytest.raises(UpstreamError, match=r"server error \(HTTP 500, internal_error"):
        fetch_metrics(client, "fet", yesterday(), yesterday())


def test_an_asset_it_does_not_cover_is_a_typed_skip(client, fake):
    with pytest.raises(AssetNotCoveredError, match="does not cover asset 'agix'") as info:
        fetch_metrics(client, "agix", yesterday(), yesterday())
    assert info.value.asset == "agix" and info.value.status == 400
    assert "Bad parameter 'assets'. Value 'agix' is not supported." in str(info.value)
    assert len(fake.calls(ASSET_METRICS)) == 1
    plan = SeriesPlan("coinmetrics", "AGIX", ((yesterday(), yesterday()),), None, None)
    result = CoinMetricsDaily.fetch(client, plan, datetime.now(UTC))
    assert result.skipped and "skipped (check AITOKENS_COINMETRICS_ASSETS)" in result.skipped
    assert result.frame() is None and result.requested == []


def test_a_next_page_on_another_host_is_refused_never_followed(client, fake):
    fake.inject(ASSET_METRICS, "foreign_next")
    with pytest.raises(UpstreamError, match="next_page_url points to https://evil.example"):
        fetch_metrics(client, "fet", yesterday() - timedelta(days=5), yesterday())
    assert len(fake.requests) == 1


def test_a_cursor_that_repeats_stops_instead_of_paging_forever(client, fake):
    fake.inject(ASSET_METRICS, "loop_next", times=None)
    with pytest.raises(UpstreamError, match="repeats a page already fetched"):
        fetch_metrics(client, "fet", yesterday() - timedelta(days=5), yesterday())
    assert len(fake.calls(ASSET_METRICS)) == 2


# ------------------------------------------------------------------------------ settings
def test_registry_lists_coinmetrics_off_by_default_with_its_table():
    from flows.sources.registry import default_sources, source_classes

    assert source_classes()["coinmetrics"] is SOURCE is CoinMetricsDaily
    assert "coinmetrics" not in default_sources()
    assert SOURCE.table.name == "market_caps_daily"
    assert SOURCE.table.key == ("symbol", "date", "source")


def test_settings_from_the_environment_and_bad_assets_refused():
    config = CoinMetricsConfig.from_env(
        {C.ENV_COINMETRICS_ASSETS: "FET, wld", CoinMetricsConfig.env.url: "http://127.0.0.1:9"}
    )
    assert config.assets == ("fet", "wld") and config.base_url == "http://127.0.0.1:9/"
    from flows.errors import ConfigError

    with pytest.raises(ConfigError, match="not a Coin Metrics asset id"):
        CoinMetricsConfig(assets=("fet/../x",))


# ------------------------------------------------------------------------------ end to end
def test_ingestion_loads_coinmetrics_and_a_second_run_makes_no_call(tmp_path: Path):
    from flows.services.ingest_options import IngestOptions
    from flows.services.steps import run_ingestion

    db = tmp_path / "wh" / "aitokens.duckdb"
    end = yesterday()
    since = end - timedelta(days=59)
    gap = end - timedelta(days=10)
    with (
        FakeCoinGecko(n_coins=3) as cg,
        FakeCoinMetrics(
            listed={"wld": end - timedelta(days=4)}, no_price=("grt",), gaps={"fet": {gap}}
        ) as cm,
    ):
        configs = {
            "coingecko": fast_coingecko_config(cg),
            "coinmetrics": fast_config(cm, assets=("fet", "grt", "wld", "agix"), page_size=25),
        }
        options = IngestOptions(
            flow="backfill", since=since, sources=("coinmetrics",), global_market=False
        )
        summary = run_ingestion(options, db=db, configs=configs)
        assert summary.status == "completed"
        assert cg.requests == []  # no source of this run follows the CoinGecko universe
        # fet, grt: 60 days, three pages of 25; wld: 5 days, one page; agix: one refusal
        assert len(cm.calls(ASSET_METRICS)) == 3 + 3 + 1 + 1
        assert summary.skipped.keys() == {"AGIX"}
        assert "does not cover asset 'agix'" in summary.skipped["AGIX"]

        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = con.execute(
                "SELECT symbol, count(*), count(market_cap), count(price_usd), min(date), "
                "max(date), min(source) FROM market_caps_daily GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert rows == [
                ("FET", 60, 59, 60, since, end, "coinmetrics"),  # no cap on the gap day
                ("GRT", 60, 60, 0, since, end, "coinmetrics"),  # no reference rate
                ("WLD", 5, 5, 5, end - timedelta(days=4), end, "coinmetrics"),
            ]
            cap = con.execute(
                "SELECT market_cap FROM market_caps_daily WHERE symbol = 'FET' AND date = ?",
                [end],
            ).fetchall()[0][0]
            assert cap == cm.value_of("fet", end)
            coverage = con.execute(
                "SELECT series_id, covered_from, covered_to FROM fetch_coverage "
                "WHERE source = 'coinmetrics' ORDER BY 1"
            ).fetchall()
            assert coverage == [("FET", since, end), ("GRT", since, end), ("WLD", since, end)]
            preferred = con.execute(
                "SELECT count(*), min(source), max(licence) FROM preferred_market_caps"
            ).fetchall()
            assert preferred == [(59 + 60 + 5, "coinmetrics", preferred[0][2])]
            assert "CC BY-NC 4.0" in preferred[0][2]
            raw = con.execute(
                "SELECT count(*) FROM raw_responses WHERE endpoint = ?", [C.ASSET_METRICS_PATH]
            ).fetchall()[0][0]
            assert raw == 8  # every answer kept for audit and replay
            before = con.execute("SELECT * FROM market_caps_daily ORDER BY ALL").fetchall()
        finally:
            con.close()

        cm.reset_log()
        again = run_ingestion(
            IngestOptions(flow="daily_ingest", sources=("coinmetrics",), global_market=False),
            db=db,
            configs={**configs, "coinmetrics": fast_config(cm, assets=("fet", "grt", "wld"))},
        )
        assert again.status == "completed"
        assert cm.requests == [] and cg.requests == []
        assert again.total_calls == 0 and again.inserted == again.updated == 0
        con = duckdb.connect(str(db), read_only=True)
        try:
            assert con.execute("SELECT * FROM market_caps_daily ORDER BY ALL").fetchall() == before
        finally:
            con.close()


def test_the_coinmetrics_section_of_the_settings_file_is_read_under_the_environment(
    tmp_path: Path,
):
    """``[coinmetrics]`` in aitokens.toml (declared once on CoinMetricsConfig); the variable wins,
    and a bad asset id from the file is refused like one from the environment."""
    path = tmp_path / "aitokens.toml"
    path.write_text('[coinmetrics]\nassets = ["FET", "arkm"]\npage_size = 5\n', encoding="utf-8")
    from flows.errors import ConfigError

    with pytest.raises(ConfigError, match="page_size"):  # not a declared setting of the file
        CoinMetricsDaily.from_env({"AITOKENS_CONFIG": str(path)})
    path.write_text('[coinmetrics]\nassets = ["FET", "arkm"]\ntimeout_seconds = 9\n', "utf-8")
    config = CoinMetricsDaily.from_env({"AITOKENS_CONFIG": str(path)}).config
    assert (config.assets, config.timeout_seconds) == (("fet", "arkm"), 9.0)
    env = {"AITOKENS_CONFIG": str(path), C.ENV_COINMETRICS_ASSETS: "wld"}
    assert CoinMetricsDaily.from_env(env).config.assets == ("wld",)
    path.write_text('[coinmetrics]\nassets = ["fet/../x"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a Coin Metrics asset id"):
        CoinMetricsDaily.from_env({"AITOKENS_CONFIG": str(path)})
