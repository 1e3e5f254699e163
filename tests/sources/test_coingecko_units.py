"""CoinGecko source without a server: config, chunk planning, payload parsing, error shapes."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.errors import BadApiKeyError, ConfigError
from flows.sources.coingecko import (
    CHART_COLUMNS,
    Chunk,
    CoinGeckoConfig,
    chunk_request_range,
    coin_universe,
    earliest_close_date,
    error_info,
    parse_market_chart,
    plan_chunks,
    plan_history,
)
from flows.sources.coingecko import constants as C

DAY_MS = 86_400_000
D = date(2024, 2, 15)


def ms(d: date, seconds: int = 0) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000 + seconds * 1000


# ---------------------------------------------------------------- config
def test_config_defaults_keyless():
    cfg = CoinGeckoConfig.from_env({})
    assert cfg.plan == "keyless" and cfg.api_key is None
    assert cfg.base_url == C.COINGECKO_PUBLIC_URL
    assert cfg.calls_per_minute == 30 and cfg.history_days == 365
    assert cfg.categories == ("artificial-intelligence",)


def test_config_from_env_all_settings():
    cfg = CoinGeckoConfig.from_env(
        {
            "COINGECKO_PLAN": "pro",
            "COINGECKO_API_KEY": "k-123",
            "AITOKENS_COINGECKO_URL": "https://mirror:8080/api/v3",
            "AITOKENS_COINGECKO_CALLS_PER_MINUTE": "120",
            "AITOKENS_COINGECKO_MAX_RETRY_SECONDS": "9",
            "AITOKENS_COINGECKO_TIMEOUT": "4",
            "AITOKENS_COINGECKO_CATEGORIES": "artificial-intelligence, ai-agents",
        }
    )
    assert cfg.plan == "pro" and cfg.api_key == "k-123"
    assert cfg.base_url == "https://mirror:8080/api/v3/"  # trailing slash added
    assert (cfg.calls_per_minute, cfg.max_retry_seconds, cfg.timeout_seconds) == (120, 9, 4)
    assert cfg.categories == ("artificial-intelligence", "ai-agents")
    assert cfg.history_days is None
    assert "k-123" not in repr(cfg) and "***" in repr(cfg)


def test_a_file_base_url_needs_the_opt_in_and_https(tmp_path):
    """A planted aitokens.toml cannot send the key elsewhere: its base_url must be CoinGecko's,
    unless the environment opts in; plain http is refused whatever the opt-in."""
    path = tmp_path / "aitokens.toml"
    env = {"AITOKENS_CONFIG": str(path), "COINGECKO_API_KEY": "k-123"}
    path.write_text('[coingecko]\nbase_url = "https://pro-api.coingecko.com/api/v3"\n')
    assert CoinGeckoConfig.from_env(env).base_url == C.COINGECKO_PRO_URL  # the vendor's own
    path.write_text('[coingecko]\nbase_url = "https://collector.example/api/v3/"\n')
    with pytest.raises(ConfigError, match="AITOKENS_ALLOW_CONFIG_BASE_URL=1") as info:
        CoinGeckoConfig.from_env(env)
    assert "k-123" not in str(info.value)
    opted = {**env, "AITOKENS_ALLOW_CONFIG_BASE_URL": "1"}
    assert CoinGeckoConfig.from_env(opted).base_url == "https://collector.example/api/v3/"
    path.write_text('[coingecko]\nbase_url = "http://collector.example/api/v3/"\n')
    with pytest.raises(ConfigError, match="uses plain http"):
        CoinGeckoConfig.from_env(opted)
    # the environment's URL needs no opt-in (whoever sets it runs the command)
    url = {**env, "AITOKENS_COINGECKO_URL": "http://127.0.0.1:9/api/v3"}
    assert CoinGeckoConfig.from_env(url).base_url == "http://127.0.0.1:9/api/v3/"


def test_config_key_without_plan_means_demo():
    cfg = CoinGeckoConfig.from_env({"COINGECKO_API_KEY": "k"})
    assert cfg.plan == "demo" and cfg.base_url == C.COINGECKO_PUBLIC_URL


def test_config_plan_needing_key_names_the_variable():
    with pytest.raises(BadApiKeyError, match="COINGECKO_API_KEY"):
        CoinGeckoConfig.from_env({"COINGECKO_PLAN": "pro"})


@pytest.mark.parametrize(
    "env",
    [
        {"COINGECKO_PLAN": "gold"},
        {"AITOKENS_COINGECKO_CALLS_PER_MINUTE": "fast"},
        {"AITOKENS_COINGECKO_CALLS_PER_MINUTE": "0"},
    ],
)
def test_config_rejects_bad_values(env):
    with pytest.raises(ConfigError):
        CoinGeckoConfig.from_env(env)


# ---------------------------------------------------------------- chunks
@given(st.dates(date(2013, 1, 1), date(2030, 1, 1)), st.integers(0, 3000), st.integers(1, 400))
def test_plan_chunks_cover_every_date_once(start, length, max_days):
    end = start + timedelta(days=length)
    chunks = plan_chunks(start, end, max_days)
    assert chunks[0].start == start and chunks[-1].end == end
    assert all(1 <= c.days <= max_days for c in chunks)
    assert all(
        b.start == a.end + timedelta(days=1) for a, b in zip(chunks, chunks[1:], strict=False)
    )
    assert len(chunks) == math.ceil((length + 1) / max_days)


def test_plan_chunks_empty_and_invalid():
    assert plan_chunks(D, D - timedelta(days=1)) == []
    with pytest.raises(ValueError):
        plan_chunks(D, D, 0)


@given(st.dates(date(2020, 1, 1), date(2026, 1, 1)), st.integers(0, 364))
def test_request_range_is_daily_and_stamps_the_next_day(start, length):
    chunk = Chunk(start, start + timedelta(days=length))
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    f, t = chunk_request_range(chunk, now=now)
    assert t - f >= C.MIN_DAILY_SPAN_DAYS * 86400 > 90 * 86400  # daily granularity
    assert f <= ms(chunk.start + timedelta(days=1)) // 1000  # first wanted stamp inside
    assert t >= ms(chunk.end + timedelta(days=1)) // 1000  # last wanted stamp inside


def test_request_range_short_chunk_respects_history_window():
    today = date(2026, 6, 1)
    cfg = CoinGeckoConfig()
    earliest = earliest_close_date(cfg, today)
    chunk = Chunk(earliest, earliest + timedelta(days=3))
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    f, t = chunk_request_range(chunk, earliest=earliest, now=now)
    assert f >= now.timestamp() - 365 * 86400  # never triggers 10012
    assert t - f > 90 * 86400 and t <= now.timestamp()


def test_plan_history_clamps_to_the_plan_and_says_so():
    today = date(2026, 6, 1)
    plan = plan_history(CoinGeckoConfig(), date(2020, 1, 1), date(2030, 1, 1), today=today)
    assert plan.end == today - timedelta(days=1)  # last complete UTC day
    assert plan.start == earliest_close_date(CoinGeckoConfig(), today)
    assert "365" in plan.note and "10012" in plan.note and "COINGECKO_PLAN=pro" in plan.note
    assert len(plan.chunks) == 1  # 364 days fit one chunk
    pro = CoinGeckoConfig(plan="pro", api_key="k")
    plan = plan_history(pro, date(2020, 1, 1), date(2026, 5, 31), today=today)
    assert plan.note is None and plan.start == date(2020, 1, 1) and len(plan.chunks) == 7


def test_coin_universe_always_adds_btc_eth_once():
    assert coin_universe(["fetch-ai", "bitcoin"]) == ["fetch-ai", "bitcoin", "ethereum"]


# ---------------------------------------------------------------- parsing
def _payload(points):
    return {
        "prices": [[t, p] for t, p, _, _ in points],
        "market_caps": [[t, c] for t, _, c, _ in points],
        "total_volumes": [[t, v] for t, _, _, v in points],
    }


def test_parse_recorded_fixture(shared_dir: Path):
    text = (shared_dir / "data/raw/coingecko_api_fixtures/GetMarketChart.txt").read_text()
    body = json.loads(text.split("\n", 3)[3])
    parsed = parse_market_chart("bitcoin", body)
    frame = parsed.frame
    assert list(frame.columns) == CHART_COLUMNS
    # stamps 2024-03-31 and 2024-04-01 00:00 are the closes of 03-30 and 03-31; the third
    # point (2024-04-01 15:01:22) is the partial "now" point and is dropped
    assert frame["date"].tolist() == [date(2024, 3, 30), date(2024, 3, 31)]
    assert frame["ts"].tolist()[0] == datetime(2024, 3, 31, tzinfo=UTC)
    assert frame["price"].tolist() == [69702.3087473573, 71246.9514406015]
    assert frame["market_cap"].iloc[1] == 1401370211582.37
    assert parsed.n_partial == 1


def test_parse_duplicates_keep_last_and_sort():
    d1, d2, d3 = (ms(D + timedelta(days=i)) for i in range(3))
    body = _payload(
        [(d3, 3.0, 30, 300), (d1, 1.0, 10, 100), (d2, 2.0, 20, 200), (d2, 2.5, 25, 250)]
    )
    parsed = parse_market_chart("x", body)
    assert parsed.unordered and parsed.n_duplicates == 1
    assert parsed.frame["price"].tolist() == [1.0, 2.5, 3.0]
    assert parsed.frame["date"].tolist() == [D - timedelta(days=1), D, D + timedelta(days=1)]


def test_parse_nulls_drop_priceless_rows_keep_nan_caps():
    d1, d2, d3 = (ms(D + timedelta(days=i)) for i in range(3))
    body = _payload([(d1, None, 10, 100), (d2, 2.0, None, None), (d3, 3.0, 30, 300)])
    parsed = parse_market_chart("x", body)
    assert parsed.n_null_price == 1
    assert parsed.frame["price"].tolist() == [2.0, 3.0]
    assert math.isnan(parsed.frame["market_cap"].iloc[0])


def test_parse_drops_intraday_points_and_trims_to_range():
    hourly = [(ms(D, 3600 * h + 37), 1.0 + h, 1, 1) for h in range(5)]
    daily = [(ms(D + timedelta(days=i)), float(i), 1, 1) for i in range(10)]
    parsed = parse_market_chart(
        "x", _payload(hourly + daily), start=D + timedelta(days=2), end=D + timedelta(days=4)
    )
    assert parsed.n_partial == 5 and parsed.n_outside == 7
    assert parsed.frame["price"].tolist() == [3.0, 4.0, 5.0]


def test_parse_empty_and_malformed():
    parsed = parse_market_chart("x", {"prices": [], "market_caps": [], "total_volumes": []})
    assert parsed.frame.empty and list(parsed.frame.columns) == CHART_COLUMNS
    parsed = parse_market_chart("x", {"prices": [[ms(D), 1.0], ["bad"], [ms(D), "x"]]})
    assert parsed.n_malformed == 2 and len(parsed.frame) == 1
    assert math.isnan(parsed.frame["market_cap"].iloc[0])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": {"error_code": 429, "error_message": "slow down"}}, (429, "slow down")),
        (
            {"error": {"status": {"error_code": 10012, "error_message": "365 days"}}},
            (10012, "365 days"),
        ),
        ({"error": "coin not found"}, (None, "coin not found")),
        ({"prices": []}, (None, None)),
        ([{"id": "x"}], (None, None)),
    ],
)
def test_error_info_shapes(body, expected):
    assert error_info(body) == expected


def test_parse_drops_zero_negative_and_infinite_prices_with_a_note():
    day = 86_400_000
    base = 1_700_000_000_000 // day * day
    payload = {
        "prices": [
            [base, 1.0],
            [base + day, 0.0],
            [base + 2 * day, -3.0],
            [base + 3 * day, float("inf")],
            [base + 4 * day, 2.0],
        ]
    }
    parsed = parse_market_chart("x", payload)
    assert parsed.frame["price"].tolist() == [1.0, 2.0]
    assert parsed.n_bad_price == 1 and parsed.n_null_price == 2  # -3 and inf parse as missing
    assert any("1 daily points with a price of 0 dropped" in n for n in parsed.notes)
