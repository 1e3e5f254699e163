"""The Yahoo equities source: parsing and the local fake over real HTTP, with faults."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from flows.errors import ConfigError, HtmlResponseError, RateLimitedError, UpstreamError
from flows.sources.yahoo import (
    EQUITY_COLUMNS,
    YahooClient,
    YahooConfig,
    fetch_equity_daily,
    iter_equity_daily,
    parse_chart,
)
from flows.sources.yahoo import constants as C
from tests.fakes import FakeYahoo, fast_yahoo_config
from tests.fakes.yahoo import session_open

CHART = "/v8/finance/chart/*"
START, END = date(2024, 2, 12), date(2024, 2, 23)  # NYSE closed 2024-02-19 (Presidents' Day)


def test_config_from_env():
    cfg = YahooConfig.from_env(
        {
            "AITOKENS_YAHOO_URL": "http://127.0.0.1:9",
            "AITOKENS_YAHOO_TICKERS": "nvda, tsm",
            "AITOKENS_YAHOO_TIMEOUT": "3",
        }
    )
    assert cfg.base_url == "http://127.0.0.1:9/" and cfg.tickers == ("NVDA", "TSM")
    assert cfg.timeout_seconds == 3
    assert YahooConfig.from_env({}).tickers == ("NVDA", "AMD", "SPY", "QQQ")
    assert YahooConfig.from_env({}).base_url == C.YAHOO_URL
    with pytest.raises(ConfigError):
        YahooConfig.from_env({"AITOKENS_YAHOO_CALLS_PER_MINUTE": "x"})


def test_default_tickers_with_adjusted_close(yahoo_client, fake_yahoo, exchanges):
    out = {h.ticker: h for h in iter_equity_daily(yahoo_client, START, END)}
    assert list(out) == ["NVDA", "AMD", "SPY", "QQQ"]
    for hist in out.values():
        frame = hist.frame
        assert list(frame.columns) == EQUITY_COLUMNS
        assert date(2024, 2, 19) not in set(frame["date"])  # no session that day
        assert frame["date"].iloc[0] == START and frame["date"].iloc[-1] == END
        assert len(frame) == 9 and frame["adj_close"].notna().all()
        assert (frame["close"] >= frame["adj_close"] - 1e-9).all()  # adj_close kept beside close
    assert len(fake_yahoo.calls(CHART)) == 4
    assert [r[0] for r in exchanges.rows] == [f"/v8/finance/chart/{t}" for t in out]


def test_real_adjusted_closes_and_session_dates(yahoo_client, shared_dir: Path):
    if not (shared_dir / "data/raw/yahoo_nvda_daily_adjusted.csv").is_file():
        pytest.skip("real Yahoo CSVs are absent")
    frame = fetch_equity_daily(yahoo_client, "NVDA", START, END).frame.set_index("date")
    sora = pd.read_csv(shared_dir / "data/sora2024/prices.csv")
    nvda = sora[sora.symbol == "NVDA"].set_index("date")["close"]
    assert frame.loc[date(2024, 2, 15), "adj_close"] == pytest.approx(nvda["2024-02-15"], abs=0.005)
    # a session opens 09:30 New York = 14:30 UTC in winter: the date is the local session date
    assert frame.loc[date(2024, 2, 15), "ts"] == pd.Timestamp("2024-02-15 14:30", tz="UTC")


def test_session_date_uses_exchange_time_zone():
    # Tokyo opens 09:00 JST = 00:00 UTC of the same day; a late US-style session in UTC+9
    stamp = int(datetime(2024, 2, 15, 0, 0, tzinfo=UTC).timestamp())
    payload = {
        "chart": {
            "result": [
                {
                    "meta": {"exchangeTimezoneName": "Asia/Tokyo"},
                    "timestamp": [stamp - 3600],
                    "indicators": {"quote": [{"close": [1.0]}], "adjclose": [{"adjclose": [1.0]}]},
                }
            ],
            "error": None,
        }
    }
    frame = parse_chart("7203.T", payload).frame
    assert frame["date"].tolist() == [date(2024, 2, 15)]  # 2024-02-14 23:00 UTC is the 15th


def test_partial_session_is_dropped():
    d = date(2024, 2, 15)
    payload = {
        "chart": {
            "result": [
                {
                    "meta": {
                        "exchangeTimezoneName": "America/New_York",
                        "currentTradingPeriod": {
                            "regular": {"start": session_open(d), "end": session_open(d) + 23400}
                        },
                    },
                    "timestamp": [session_open(date(2024, 2, 14)), session_open(d)],
                    "indicators": {
                        "quote": [{"close": [1.0, 2.0]}],
                        "adjclose": [{"adjclose": [1.0, 2.0]}],
                    },
                }
            ],
            "error": None,
        }
    }
    during = datetime(2024, 2, 15, 17, tzinfo=UTC)  # noon in New York, market open
    parsed = parse_chart("X", payload, now=during)
    assert parsed.n_partial == 1 and parsed.frame["date"].tolist() == [date(2024, 2, 14)]
    after = datetime(2024, 2, 15, 22, tzinfo=UTC)
    assert len(parse_chart("X", payload, now=after).frame) == 2


def test_nulls_drop_closeless_bars_keep_other_nans(yahoo_client, fake_yahoo):
    fake_yahoo.inject(CHART, "nulls")
    parsed = fetch_equity_daily(yahoo_client, "SPY", START, END)
    assert parsed.n_null_close == 3  # the all-null first row and two null closes
    frame = parsed.frame
    assert len(frame) == 9 - 3 and frame["close"].notna().all()
    assert frame["volume"].isna().any()


@pytest.mark.parametrize("kind", ["duplicates", "out_of_order"])
def test_duplicates_and_disorder_resolve(yahoo_client, fake_yahoo, kind):
    clean = fetch_equity_daily(yahoo_client, "QQQ", START, END).frame
    fake_yahoo.inject(CHART, kind)
    parsed = fetch_equity_daily(yahoo_client, "QQQ", START, END)
    pd.testing.assert_frame_equal(parsed.frame, clean)
    assert parsed.n_duplicates == (1 if kind == "duplicates" else 0)


def test_empty_range_gives_an_empty_frame(yahoo_client, fake_yahoo):
    fake_yahoo.inject(CHART, "empty")
    parsed = fetch_equity_daily(yahoo_client, "AMD", START, END)
    assert parsed.frame.empty and list(parsed.frame.columns) == EQUITY_COLUMNS


def test_unknown_ticker_is_skipped_with_reason(yahoo_client, fake_yahoo):
    out = list(iter_equity_daily(yahoo_client, START, END, ["NVDA", "NOPE"]))
    assert out[1].skipped and "NOPE" in out[1].skipped and "delisted" in out[1].skipped
    assert len(out[0].frame) == 9
    assert len(fake_yahoo.calls("/v8/finance/chart/NOPE")) == 1


@pytest.mark.parametrize("retry_after", [None, "0.05"])
def test_429_is_retried(yahoo_client, fake_yahoo, retry_after):
    fake_yahoo.inject(CHART, status=429, retry_after=retry_after, times=2)
    assert len(fetch_equity_daily(yahoo_client, "NVDA", START, END).frame) == 9
    assert [r.status for r in fake_yahoo.calls(CHART)] == [429, 429, 200]


def test_python_user_agent_is_refused_but_ours_is_a_browser(fake_yahoo):
    import requests

    assert (
        requests.get(
            fake_yahoo.url + "v8/finance/chart/NVDA", params={"period1": 0, "period2": 1}
        ).status_code
        == 429
    )
    cfg = fast_yahoo_config(fake_yahoo, user_agent="python-requests/2", max_retry_seconds=0.1)
    with YahooClient(cfg) as client, pytest.raises(RateLimitedError, match="HTTP 429"):
        fetch_equity_daily(client, "NVDA", START, END)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(yahoo_client, fake_yahoo, status):
    fake_yahoo.inject(CHART, status=status, times=1)
    assert len(fetch_equity_daily(yahoo_client, "NVDA", START, END).frame) == 9
    assert len(fake_yahoo.calls(CHART)) == 2


@pytest.mark.parametrize("kind", ["truncated", "disconnect", "timeout"])
def test_broken_answers_are_retried(fake_yahoo, kind):
    fake_yahoo.inject(CHART, kind, delay=1.0 if kind == "timeout" else None)
    with YahooClient(fast_yahoo_config(fake_yahoo, timeout_seconds=0.3)) as client:
        assert len(fetch_equity_daily(client, "NVDA", START, END).frame) == 9
    assert len(fake_yahoo.calls(CHART)) == 2


def test_html_is_a_clear_error(yahoo_client, fake_yahoo):
    fake_yahoo.inject(CHART, "html", times=None)
    with pytest.raises(HtmlResponseError, match="received HTML, likely a proxy or block page"):
        fetch_equity_daily(yahoo_client, "NVDA", START, END)
    assert len(fake_yahoo.calls(CHART)) == 1


def test_persistent_failure_is_bounded(fake_yahoo):
    fake_yahoo.inject(CHART, status=503, times=None)
    with (
        YahooClient(fast_yahoo_config(fake_yahoo, max_retry_seconds=0.2)) as client,
        pytest.raises(UpstreamError, match="gave up after"),
    ):
        fetch_equity_daily(client, "NVDA", START, END)


def test_generated_ticker_and_nan_free_weekdays():
    with FakeYahoo(extra=("TSM",)) as fake, YahooClient(fast_yahoo_config(fake)) as client:
        frame = fetch_equity_daily(client, "TSM", START, END).frame
    assert len(frame) == 10 and all(d.weekday() < 5 for d in frame["date"])
    assert not any(math.isnan(x) for x in frame["close"])
