"""The Binance spot daily source (the example third vendor): parser units, the client against a
local fake over real HTTP, and an end-to-end ingestion through the one orchestration path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.errors import ConfigError, HtmlResponseError, RateLimitedError, UpstreamError
from flows.sources.base import SeriesPlan
from flows.sources.binance import (
    KLINE_COLUMNS,
    SOURCE,
    BinanceClient,
    BinanceConfig,
    BinanceSpotDaily,
    SymbolNotFoundError,
    fetch_klines,
    kline_windows,
    parse_klines,
)
from flows.sources.binance import constants as C
from tests.fakes.binance import KLINES, FakeBinance, open_ms
from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.fixtures import FAST, fast_coingecko_config

DAY_MS = 86_400_000


def kline(day: date, close: object = "42283.58000000", **fields: object) -> list[object]:
    """One kline in Binance's shape, opening ``day`` 00:00 UTC."""
    row: list[object] = [
        open_ms(day),
        "42000.00000000",
        "43000.00000000",
        "41000.00000000",
        close,
        "1234.50000000",
        open_ms(day) + DAY_MS - 1,
        "52000000.12000000",
        987654,
        "600.00000000",
        "25000000.00000000",
        "0",
    ]
    names = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote")
    for name, value in fields.items():
        row[names.index(name)] = value
    return row


def fast_binance_config(fake: FakeBinance, **overrides: Any) -> BinanceConfig:
    kwargs: dict[str, Any] = {"base_url": fake.url, "calls_per_minute": 60_000.0, **FAST}
    kwargs.update(overrides)
    return BinanceConfig(**kwargs)


@pytest.fixture
def fake():
    with FakeBinance() as server:
        yield server


@pytest.fixture
def client(fake):
    with BinanceClient(fast_binance_config(fake)) as c:
        yield c


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


# ------------------------------------------------------------------------------ parser
def test_kline_opening_d_is_the_close_of_utc_day_d():
    d = date(2024, 3, 5)
    parsed = parse_klines("BTCUSDT", [kline(d)], now=datetime(2024, 3, 7, tzinfo=UTC))
    row = parsed.frame.iloc[0]
    assert list(parsed.frame.columns) == KLINE_COLUMNS
    assert row["date"] == d and row["symbol"] == "BTCUSDT"
    assert row["close"] == 42283.58 and row["volume_quote"] == 52000000.12


def test_strings_become_floats_and_trades_an_integer():
    d = date(2024, 3, 5)
    frame = parse_klines("ETHUSDT", [kline(d)], now=datetime(2024, 3, 7, tzinfo=UTC)).frame
    for name in ("open", "high", "low", "close", "volume_base", "volume_quote"):
        assert frame[name].dtype == "float64", name
    assert frame["trades"].dtype == "int64" and frame["trades"].iloc[0] == 987654
    assert (frame["open"].iloc[0], frame["low"].iloc[0]) == (42000.0, 41000.0)


def test_the_still_open_kline_of_today_is_dropped():
    today = date(2024, 3, 7)
    now = datetime(2024, 3, 7, 15, 30, tzinfo=UTC)
    parsed = parse_klines("BTCUSDT", [kline(today - timedelta(days=1)), kline(today)], now=now)
    assert list(parsed.frame["date"]) == [date(2024, 3, 6)]
    assert parsed.n_open == 1 and parsed.n_klines == 2


def test_days_outside_the_asked_range_are_left_out_and_order_is_restored():
    days = [date(2024, 1, d) for d in (5, 3, 4, 2)]
    parsed = parse_klines(
        "BTCUSDT",
        [kline(d) for d in days],
        start=date(2024, 1, 3),
        end=date(2024, 1, 4),
        now=datetime(2024, 2, 1, tzinfo=UTC),
    )
    assert list(parsed.frame["date"]) == [date(2024, 1, 3), date(2024, 1, 4)]
    assert parsed.n_outside == 2


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ({"close": None}, "close is None, expected a positive number"),
        ({"close": "n/a"}, "close is 'n/a', expected a positive number"),
        ({"close": "0.00000000"}, "close is '0.00000000'"),
        ({"volume": "-1"}, "volume_base is '-1'"),
        ({"open_time": "1709596800000"}, "openTime is '1709596800000', expected a whole number"),
        ({"open_time": open_ms(date(2024, 3, 5)) + 3_600_000}, "is not 00:00 UTC"),
        ({"close_time": open_ms(date(2024, 3, 5)) + 1}, "closeTime"),
    ],
)
def test_nulls_and_garbage_are_refused_naming_kline_and_field(bad, needle):
    row = kline(date(2024, 3, 5), **bad)
    with pytest.raises(UpstreamError, match="malformed kline 1") as info:
        parse_klines(
            "BTCUSDT", [kline(date(2024, 3, 4)), row], now=datetime(2024, 4, 1, tzinfo=UTC)
        )
    assert needle in str(info.value) and "BTCUSDT" in str(info.value)


def test_short_klines_repeats_and_non_lists_are_refused():
    now = datetime(2024, 4, 1, tzinfo=UTC)
    with pytest.raises(UpstreamError, match="malformed kline 0: 5 fields, expected at least 9"):
        parse_klines("BTCUSDT", [kline(date(2024, 3, 5))[:5]], now=now)
    with pytest.raises(UpstreamError, match="2024-03-05 comes twice"):
        parse_klines("BTCUSDT", [kline(date(2024, 3, 5))] * 2, now=now)
    with pytest.raises(UpstreamError, match="unexpected payload shape: expected a list of klines"):
        parse_klines("BTCUSDT", {"code": 0}, now=now)


def test_an_empty_answer_is_an_empty_frame():
    parsed = parse_klines("BTCUSDT", [], now=datetime(2024, 4, 1, tzinfo=UTC))
    assert parsed.frame.empty and list(parsed.frame.columns) == KLINE_COLUMNS


def test_a_range_longer_than_1000_days_is_split_into_contiguous_windows():
    start = date(2019, 1, 1)
    end = start + timedelta(days=2499)
    windows = kline_windows(start, end)
    assert len(windows) == 3 and windows[0] == (start, start + timedelta(days=999))
    assert windows[-1][1] == end
    for (_, hi), (lo, _) in zip(windows, windows[1:], strict=False):
        assert lo == hi + timedelta(days=1)
    assert kline_windows(start, start) == [(start, start)]
    assert kline_windows(end, start) == []


# ------------------------------------------------------------------------------ client + fake
def test_fetch_pages_a_long_range_one_call_per_1000_days(client, fake):
    end = yesterday()
    start = end - timedelta(days=1499)
    parsed = fetch_klines(client, "BTCUSDT", start, end)
    assert len(parsed.frame) == 1500 and parsed.frame["date"].is_unique
    assert parsed.frame["date"].min() == start and parsed.frame["date"].max() == end
    calls = fake.calls(KLINES)
    assert len(calls) == 2 and client.calls == 2
    assert [int(c.params["limit"]) for c in calls] == [1000, 1000]
    assert int(calls[1].params["startTime"]) == int(calls[0].params["endTime"]) + 1
    assert calls[0].params["interval"] == "1d" and calls[0].params["symbol"] == "BTCUSDT"
    day = end - timedelta(days=3)
    stored = parsed.frame.set_index("date").loc[day, "close"]
    assert stored == fake.close_of("BTCUSDT", day)


def test_today_is_never_stored_even_when_asked(client, fake):
    today = datetime.now(UTC).date()
    parsed = fetch_klines(client, "ETHUSDT", today - timedelta(days=2), today)
    assert parsed.frame["date"].max() == today - timedelta(days=1) and parsed.n_open == 1


def test_429_with_retry_after_is_retried(client, fake):
    fake.inject(KLINES, status=429, retry_after=0.05, times=2)
    parsed = fetch_klines(client, "BTCUSDT", yesterday(), yesterday())
    assert len(parsed.frame) == 1
    assert [r.status for r in fake.calls(KLINES)] == [429, 429, 200]


def test_418_ip_ban_is_a_rate_limit_retried_then_reported(fake):
    fake.inject(KLINES, status=418, retry_after=0.05, times=1)
    with BinanceClient(fast_binance_config(fake)) as client:
        fetch_klines(client, "BTCUSDT", yesterday(), yesterday())
    assert [r.status for r in fake.calls(KLINES)] == [418, 200]
    fake.inject(KLINES, status=418, retry_after=30, times=None)
    with BinanceClient(fast_binance_config(fake)) as client, pytest.raises(RateLimitedError) as e:
        fetch_klines(client, "BTCUSDT", yesterday(), yesterday())
    assert "HTTP 418, Retry-After 30 s" in str(e.value)
    assert "AITOKENS_BINANCE_CALLS_PER_MINUTE" in str(e.value)


def test_bad_symbol_is_a_typed_not_found(client, fake):
    with pytest.raises(SymbolNotFoundError, match="'NOPEUSDT'.*-1121: Invalid symbol") as info:
        client.klines("NOPEUSDT", 0, DAY_MS)
    assert info.value.symbol == "NOPEUSDT" and info.value.status == 400
    assert len(fake.calls(KLINES)) == 1  # never retried


def test_bad_symbol_is_skipped_with_reason_by_the_source(client, fake):
    plan = SeriesPlan("binance", "NOPEUSDT", ((yesterday(), yesterday()),), None, None)
    result = BinanceSpotDaily.fetch(client, plan, datetime.now(UTC))
    assert result.skipped and "delisted, renamed or misspelt, skipped" in result.skipped
    assert result.frame() is None and result.requested == []


def test_html_page_is_a_clear_error_without_retry(client, fake):
    fake.inject(KLINES, "html", status=403)
    with pytest.raises(HtmlResponseError, match="received HTML.*AITOKENS_BINANCE_URL"):
        client.klines("BTCUSDT", 0, DAY_MS)
    assert len(fake.calls(KLINES)) == 1


@pytest.mark.parametrize("kind", ["truncated", "disconnect"])
def test_cut_answers_are_retried(client, fake, kind):
    fake.inject(KLINES, kind, times=1)
    assert len(fetch_klines(client, "BTCUSDT", yesterday(), yesterday()).frame) == 1
    assert len(fake.calls(KLINES)) == 2


def test_5xx_is_retried_then_reported_with_binance_detail(client, fake):
    fake.inject(KLINES, status=503, times=1)
    assert len(fetch_klines(client, "BTCUSDT", yesterday(), yesterday()).frame) == 1
    fake.inject(KLINES, status=500, times=None)
    with pytest.raises(UpstreamError, match=r"server error \(HTTP 500, code -1000"):
        client.klines("BTCUSDT", 0, DAY_MS)


def test_a_null_in_the_answer_is_refused_not_half_loaded(client, fake):
    fake.inject(KLINES, "nulls")
    with pytest.raises(UpstreamError, match="malformed kline .* close is None"):
        fetch_klines(client, "BTCUSDT", yesterday() - timedelta(days=9), yesterday())


def test_every_answer_is_reported_with_its_params(fake):
    seen: list[tuple[str, dict, int]] = []
    config = fast_binance_config(fake)
    with BinanceClient(config, on_exchange=lambda e, p, s, b: seen.append((e, dict(p), s))) as c:
        c.klines("BTCUSDT", 0, DAY_MS)
    assert seen == [
        (
            KLINES,
            {
                "symbol": "BTCUSDT",
                "interval": "1d",
                "startTime": 0,
                "endTime": DAY_MS,
                "limit": 1000,
            },
            200,
        )
    ]


# ------------------------------------------------------------------------------ settings
def test_registry_lists_binance_off_by_default():
    from flows.sources.registry import default_sources, source_class, source_classes

    assert SOURCE is BinanceSpotDaily and source_class("binance") is BinanceSpotDaily
    assert "binance" in source_classes() and "binance" not in default_sources()


def test_settings_file_binance_section_is_accepted_and_env_wins(tmp_path: Path):
    from flows.config import parse_config

    path = tmp_path / "aitokens.toml"
    path.write_text(
        '[binance]\nsymbols = ["btcusdt", "FETUSDT"]\ncalls_per_minute = 300\n'
        'timeout_seconds = 10\nmax_retry_seconds = 60\nbase_url = "http://127.0.0.1:9/"\n'
    )
    assert parse_config(path.read_text(), path).section("binance")["symbols"] == (
        "btcusdt",
        "FETUSDT",
    )
    # a base URL from the file that is not Binance's needs the opt-in from the environment
    with pytest.raises(ConfigError, match="AITOKENS_ALLOW_CONFIG_BASE_URL=1"):
        BinanceConfig.from_env({"AITOKENS_CONFIG": str(path)})
    opt_in = {"AITOKENS_ALLOW_CONFIG_BASE_URL": "1"}
    config = BinanceConfig.from_env({"AITOKENS_CONFIG": str(path), **opt_in})
    assert config.symbols == ("BTCUSDT", "FETUSDT") and config.calls_per_minute == 300
    assert (config.timeout_seconds, config.max_retry_seconds) == (10, 60)
    env = {
        "AITOKENS_CONFIG": str(path),
        "AITOKENS_BINANCE_CALLS_PER_MINUTE": "120",
        "AITOKENS_BINANCE_SYMBOLS": "ETHUSDT",
        **opt_in,
    }
    config = BinanceConfig.from_env(env)
    assert config.calls_per_minute == 120 and config.symbols == ("ETHUSDT",)
    assert BinanceConfig.from_env({}).symbols == C.DEFAULT_SYMBOLS


def test_settings_file_refuses_unknown_binance_keys_and_bad_symbols(tmp_path: Path):
    from flows.config import parse_config
    from flows.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[binance\]: unknown key 'interval'"):
        parse_config('[binance]\ninterval = "1h"\n')
    with pytest.raises(ConfigError, match="AITOKENS_BINANCE_SYMBOLS: 'BTC-USDT'"):
        BinanceConfig(symbols=("BTC-USDT",))


# ------------------------------------------------------------------------------ end to end
def test_ingestion_loads_binance_alone_and_a_rerun_makes_no_call(tmp_path: Path):
    from flows.services.ingest_options import IngestOptions
    from flows.services.steps import run_ingestion

    db = tmp_path / "wh" / "aitokens.duckdb"
    since = datetime.now(UTC).date() - timedelta(days=1200)  # two windows per pair
    end = yesterday()
    symbols = ("BTCUSDT", "FETUSDT", "NOPEUSDT")
    with FakeCoinGecko(n_coins=3) as cg, FakeBinance(listed={"FETUSDT": end - timedelta(9)}) as bn:
        configs = {
            # A fake behind CoinGecko's settings: any CoinGecko call would show in its log.
            "coingecko": fast_coingecko_config(cg),
            "binance": fast_binance_config(bn, symbols=symbols),
        }
        options = IngestOptions(
            flow="backfill", since=since, sources=("binance",), global_market=False
        )
        summary = run_ingestion(options, db=db, configs=configs)
        assert summary.status == "completed"
        # No source of this run follows the CoinGecko universe: no snapshot, no history call.
        assert cg.requests == []
        calls = bn.calls(KLINES)
        assert len(calls) == 2 + 2 + 1  # BTC and FET: two windows each; NOPE: one refusal
        assert summary.skipped.keys() == {"NOPEUSDT"}
        assert "delisted, renamed or misspelt" in summary.skipped["NOPEUSDT"]

        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = con.execute(
                "SELECT symbol, count(*), min(date), max(date), min(source), max(source) "
                "FROM exchange_daily GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert rows == [
                ("BTCUSDT", (end - since).days + 1, since, end, "binance", "binance"),
                ("FETUSDT", 10, end - timedelta(9), end, "binance", "binance"),
            ]
            close = con.execute(
                "SELECT close FROM exchange_daily WHERE symbol = 'BTCUSDT' AND date = ?", [end]
            ).fetchall()[0][0]
            assert close == bn.close_of("BTCUSDT", end)
            coverage = con.execute(
                "SELECT series_id, covered_from, covered_to FROM fetch_coverage "
                "WHERE source = 'binance' ORDER BY 1"
            ).fetchall()
            assert coverage == [("BTCUSDT", since, end), ("FETUSDT", since, end)]
            view = con.execute(
                "SELECT count(*), min(asset_class), max(close IS NULL) FROM exchange_daily_prices"
            ).fetchall()
            assert view == [((end - since).days + 1 + 10, "crypto", False)]
            before = con.execute("SELECT * FROM exchange_daily ORDER BY ALL").fetchall()
        finally:
            con.close()

        cg.reset_log()
        bn.reset_log()
        again = run_ingestion(
            IngestOptions(flow="daily_ingest", sources=("binance",), global_market=False),
            db=db,
            configs=configs,
        )
        assert again.status == "completed"
        assert bn.requests == [] and cg.requests == []
        assert again.total_calls == 0 and again.inserted == again.updated == 0
        con = duckdb.connect(str(db), read_only=True)
        try:
            assert con.execute("SELECT * FROM exchange_daily ORDER BY ALL").fetchall() == before
        finally:
            con.close()
