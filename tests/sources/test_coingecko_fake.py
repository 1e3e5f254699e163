"""The CoinGecko source against the local fake over real HTTP: data, call counts, every fault."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from flows.errors import (
    BadApiKeyError,
    HtmlResponseError,
    NotFoundError,
    PlanLimitError,
    RateLimitedError,
    UpstreamError,
)
from flows.sources import coingecko as cg
from flows.sources.coingecko import CoinGeckoClient
from flows.sources.http import RATE_HEADROOM, RateLimiter
from tests.fakes import FakeCoinGecko, fast_coingecko_config

CHART = "/coins/*/market_chart/range"
TODAY = datetime.now(UTC).date()
# a recent window inside the keyless 365-day history cap, two chunks' worth is not needed
START, END = TODAY - timedelta(days=200), TODAY - timedelta(days=1)


def history(
    client: CoinGeckoClient, coin: str = "fetch-ai", start: date = START, end: date = END
) -> cg.CoinHistory:
    return cg.fetch_coin_history(client, coin, start, end)


# ---------------------------------------------------------------- data and call counts
def test_category_snapshot(cg_client, fake_coingecko, exchanges):
    frame = cg.fetch_categories(cg_client)
    assert frame["category_id"].tolist() == ["artificial-intelligence"]
    assert frame["market_cap"].iloc[0] > 0 and frame["volume_24h"].iloc[0] > 0
    assert frame["snapshot_date"].iloc[0] == TODAY
    assert len(fake_coingecko.calls("/coins/categories")) == 1
    assert exchanges.rows[0][0] == "/coins/categories" and exchanges.rows[0][2] == 200


def test_unknown_category_is_named(cg_client):
    with pytest.raises(NotFoundError, match="'no-such-category'.*AITOKENS_COINGECKO_CATEGORIES"):
        cg.fetch_categories(cg_client, ["artificial-intelligence", "no-such-category"])


@pytest.mark.parametrize(
    ("n_coins", "per_page", "calls"), [(20, 250, 1), (20, 7, 3), (21, 7, 4), (300, 250, 2)]
)
def test_members_every_page_until_a_short_page(n_coins, per_page, calls):
    with (
        FakeCoinGecko(n_coins=n_coins) as fake,
        CoinGeckoClient(fast_coingecko_config(fake)) as client,
    ):
        members = cg.fetch_category_members(client, "artificial-intelligence", per_page=per_page)
        assert len(fake.calls("/coins/markets")) == calls
    assert len(members) == n_coins and members["coin_id"].is_unique
    assert members["rank"].tolist() == list(range(1, n_coins + 1))
    assert members["market_cap"].is_monotonic_decreasing
    assert {"fetch-ai", "singularitynet", "render-token"} <= set(members["coin_id"])
    assert (members["snapshot_date"] == TODAY).all()
    assert cg.coin_universe(members)[-2:] == ["bitcoin", "ethereum"]


def test_history_one_call_per_coin_per_chunk(cg_client, fake_coingecko):
    plan = cg.plan_history(cg_client.config, START, END)
    coins = ["fetch-ai", "render-token", "bitcoin", "ethereum"]
    results = list(cg.iter_coin_histories(cg_client, coins, START, END))
    assert len(plan.chunks) == 1
    for coin, res in zip(coins, results, strict=True):
        assert res.coin_id == coin and res.skipped is None
        assert len(fake_coingecko.calls(f"/coins/{coin}/market_chart/range")) == len(plan.chunks)
        assert res.frame["date"].tolist() == [START + timedelta(days=i) for i in range(200)]
        assert (res.frame["ts"].dt.date == res.frame["date"] + timedelta(days=1)).all()
    assert len(fake_coingecko.calls(CHART)) == len(coins)  # nothing wasted
    for req in fake_coingecko.calls(CHART):  # every request spans > 90 days: daily points
        assert int(req.params["to"]) - int(req.params["from"]) > 90 * 86400


def test_long_backfill_is_chunked_to_365_days(shared_dir):
    # pro plan: no history cap, so the real 2023-2024 closes of the Sora panel are reachable
    with (
        FakeCoinGecko(plan="pro", api_key="pro-key") as fake,
        CoinGeckoClient(fast_coingecko_config(fake)) as client,
    ):
        res = cg.fetch_coin_history(client, "fetch-ai", date(2023, 1, 1), date(2024, 4, 25))
        requests_made = fake.calls(CHART)
    assert res.calls == len(requests_made) == 2
    assert all(int(r.params["to"]) - int(r.params["from"]) <= 365 * 86400 for r in requests_made)
    assert len(res.frame) == 481 and res.frame["date"].is_unique
    # real close of FET on 2024-02-15 (sora2024/prices.csv), served at the 2024-02-16 stamp
    sora = pd.read_csv(shared_dir / "data/sora2024/prices.csv")
    fet = sora[sora.symbol == "FET"].set_index("date")["close"]
    got = res.frame.set_index("date")["price"]
    assert got[date(2024, 2, 15)] == fet["2024-02-15"]
    assert got[date(2023, 6, 1)] == fet["2023-06-01"]


def test_global_snapshot(cg_client):
    frame = cg.fetch_global(cg_client)
    assert len(frame) == 1 and frame["total_market_cap_usd"].iloc[0] > 0
    assert frame["date"].iloc[0] == TODAY
    assert 0 < frame["btc_dominance_pct"].iloc[0] < 100


def test_300_coins_are_served(cg_client):
    with FakeCoinGecko(n_coins=320) as fake, CoinGeckoClient(fast_coingecko_config(fake)) as c:
        members = cg.fetch_category_members(c, "artificial-intelligence")
        last = cg.fetch_coin_history(c, members["coin_id"].iloc[-1], START, END)
    assert len(members) == 320
    assert last.skipped is None


# ---------------------------------------------------------------- faults
def test_429_with_retry_after_is_honoured(cg_client, fake_coingecko):
    fake_coingecko.inject("/coins/fetch-ai/market_chart/range", status=429, retry_after=1, times=2)
    t0 = time.monotonic()
    res = history(cg_client)
    assert time.monotonic() - t0 >= 1.9  # two Retry-After: 1 waits
    assert [r.status for r in fake_coingecko.calls(CHART)] == [429, 429, 200]
    assert len(res.frame) == 200


def test_429_without_retry_after_backs_off(cg_client, fake_coingecko):
    fake_coingecko.inject(CHART, status=429, times=3)
    res = history(cg_client)
    assert [r.status for r in fake_coingecko.calls(CHART)] == [429, 429, 429, 200]
    assert len(res.frame) == 200


def test_persistent_429_ends_in_rate_limited_error(fake_coingecko):
    fake_coingecko.inject(CHART, status=429, times=None)
    cfg = fast_coingecko_config(fake_coingecko, max_retry_seconds=0.3)
    with CoinGeckoClient(cfg) as client, pytest.raises(RateLimitedError) as info:
        history(client)
    msg = str(info.value)
    assert "rate limited (HTTP 429" in msg and "gave up after" in msg
    assert "AITOKENS_COINGECKO_CALLS_PER_MINUTE" in msg


def test_retry_after_beyond_budget_stops_at_once(fake_coingecko):
    fake_coingecko.inject(CHART, status=429, retry_after=30, times=None)
    cfg = fast_coingecko_config(fake_coingecko, max_retry_seconds=2)
    t0 = time.monotonic()
    with CoinGeckoClient(cfg) as client, pytest.raises(RateLimitedError, match="Retry-After 30"):
        history(client)
    # Well under the 30 s Retry-After it refused to wait (not a speed bound: a busy machine is
    # slow, but never 30 s slow for one local call).
    assert time.monotonic() - t0 < 25 and len(fake_coingecko.calls(CHART)) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(cg_client, fake_coingecko, status):
    fake_coingecko.inject(CHART, status=status, times=2)
    res = history(cg_client)
    assert [r.status for r in fake_coingecko.calls(CHART)] == [status, status, 200]
    assert len(res.frame) == 200


def test_persistent_5xx_ends_in_upstream_error(fake_coingecko):
    fake_coingecko.inject("/global", status=503, times=None)
    cfg = fast_coingecko_config(fake_coingecko, max_retry_seconds=0.2)
    with (
        CoinGeckoClient(cfg) as client,
        pytest.raises(UpstreamError, match=r"server error \(HTTP 503"),
    ):
        cg.fetch_global(client)


def test_slow_answer_within_timeout_is_fine(cg_client, fake_coingecko):
    fake_coingecko.inject(CHART, "slow", delay=0.3)
    assert len(history(cg_client).frame) == 200
    assert len(fake_coingecko.calls(CHART)) == 1


def test_timeout_is_retried(fake_coingecko):
    fake_coingecko.inject(CHART, "timeout", delay=2.0)
    cfg = fast_coingecko_config(fake_coingecko, timeout_seconds=0.3)
    with CoinGeckoClient(cfg) as client:
        assert len(history(client).frame) == 200
    assert len(fake_coingecko.calls(CHART)) == 2


def test_persistent_timeout_names_the_setting(fake_coingecko):
    fake_coingecko.inject("/global", "timeout", delay=2.0, times=None)
    cfg = fast_coingecko_config(fake_coingecko, timeout_seconds=0.2, max_retry_seconds=0.1)
    with (
        CoinGeckoClient(cfg) as client,
        pytest.raises(UpstreamError, match="timed out.*AITOKENS_COINGECKO_TIMEOUT"),
    ):
        cg.fetch_global(client)


def test_connection_refused_is_retried_then_reported():
    with FakeCoinGecko() as fake:
        cfg = fast_coingecko_config(fake, max_retry_seconds=0.2)
    with CoinGeckoClient(cfg) as client, pytest.raises(UpstreamError, match="connection failed"):
        cg.fetch_global(client)


@pytest.mark.parametrize("kind", ["truncated", "disconnect"])
def test_truncated_json_is_retried(cg_client, fake_coingecko, kind):
    fake_coingecko.inject(CHART, kind)
    assert len(history(cg_client).frame) == 200
    assert len(fake_coingecko.calls(CHART)) == 2


def test_persistent_truncated_json_says_so(fake_coingecko):
    fake_coingecko.inject("/coins/markets", "truncated", times=None)
    cfg = fast_coingecko_config(fake_coingecko, max_retry_seconds=0.1)
    with (
        CoinGeckoClient(cfg) as client,
        pytest.raises(UpstreamError, match="invalid or truncated JSON"),
    ):
        cg.fetch_category_members(client, "artificial-intelligence")


def test_html_body_is_a_clear_error_without_retry(cg_client, fake_coingecko):
    fake_coingecko.inject("/coins/categories", "html", times=None)
    with pytest.raises(HtmlResponseError, match="received HTML, likely a proxy or block page"):
        cg.fetch_categories(cg_client)
    assert len(fake_coingecko.calls("/coins/categories")) == 1


def test_html_503_from_a_proxy_is_retried(cg_client, fake_coingecko):
    fake_coingecko.inject("/coins/categories", "html", status=503, times=1)
    assert len(cg.fetch_categories(cg_client)) == 1
    assert len(fake_coingecko.calls("/coins/categories")) == 2


def test_empty_arrays_give_an_empty_frame(cg_client, fake_coingecko):
    fake_coingecko.inject(CHART, "empty")
    res = history(cg_client)
    assert res.frame.empty and list(res.frame.columns) == cg.CHART_COLUMNS
    assert res.skipped is None


def test_empty_markets_page_means_no_members(cg_client, fake_coingecko):
    fake_coingecko.inject("/coins/markets", "empty")
    members = cg.fetch_category_members(cg_client, "artificial-intelligence")
    assert members.empty and len(fake_coingecko.calls("/coins/markets")) == 1


def test_nulls_drop_priceless_days_and_keep_nan_caps(cg_client, fake_coingecko):
    clean = history(cg_client).frame
    fake_coingecko.inject(CHART, "nulls")
    res = history(cg_client)
    assert res.n_null_price > 0 and len(res.frame) == len(clean) - res.n_null_price
    assert res.frame["market_cap"].isna().any() and res.frame["price"].notna().all()
    assert any("without a price" in n for n in res.notes)
    merged = res.frame.merge(clean, on="date", suffixes=("", "_clean"))
    assert (merged["price"] == merged["price_clean"]).all()


def test_null_market_caps_in_markets(cg_client, fake_coingecko):
    fake_coingecko.inject("/coins/markets", "nulls")
    members = cg.fetch_category_members(cg_client, "artificial-intelligence")
    assert len(members) == 20 and members["market_cap"].isna().sum() == 10


@pytest.mark.parametrize("kind", ["duplicates", "out_of_order"])
def test_duplicates_and_disorder_resolve_to_clean_data(cg_client, fake_coingecko, kind):
    clean = history(cg_client).frame
    fake_coingecko.inject(CHART, kind)
    res = history(cg_client)
    pd.testing.assert_frame_equal(res.frame, clean)
    if kind == "duplicates":
        assert res.n_duplicates > 0


def test_delisted_coin_is_skipped_with_reason_and_others_go_on():
    with (
        FakeCoinGecko(delisted=("cortex",)) as fake,
        CoinGeckoClient(fast_coingecko_config(fake)) as client,
    ):
        coins = ["fetch-ai", "cortex", "render-token"]
        results = {r.coin_id: r for r in cg.iter_coin_histories(client, coins, START, END)}
        assert len(fake.calls("/coins/cortex/market_chart/range")) == 1  # no retry, no more chunks
    assert results["cortex"].skipped and "cortex" in results["cortex"].skipped
    assert "404" in results["cortex"].skipped and results["cortex"].frame.empty
    assert len(results["fetch-ai"].frame) == len(results["render-token"].frame) == 200


def test_plan_limit_10012_is_a_clear_error():
    # configured as pro but the server enforces the keyless cap: 10012 comes back
    with FakeCoinGecko(plan="keyless") as fake:
        cfg = fast_coingecko_config(fake, plan="pro", api_key="k")
        with CoinGeckoClient(cfg) as client, pytest.raises(PlanLimitError) as info:
            cg.fetch_coin_history(client, "fetch-ai", date(2023, 1, 1), date(2023, 6, 1))
        assert len(fake.calls(CHART)) == 1  # never retried
    msg = str(info.value)
    assert "error 10012" in msg and "365 days" in msg and "COINGECKO_PLAN=pro" in msg


def test_keyless_plan_chunks_within_the_cap_and_says_so(cg_client, fake_coingecko, caplog):
    coins = ["fetch-ai", "bitcoin"]
    with caplog.at_level("WARNING", logger="aitokens.sources.coingecko"):
        results = list(cg.iter_coin_histories(cg_client, coins, date(2020, 1, 1), END))
    assert all(r.notes and "10012" in r.notes[0] for r in results)
    assert sum("10012" in rec.getMessage() for rec in caplog.records) == 1  # said once
    assert all(r.status == 200 for r in fake_coingecko.calls(CHART))
    assert len(fake_coingecko.calls(CHART)) == 2
    first = results[0].frame["date"].min()
    assert first == cg.earliest_close_date(cg_client.config, TODAY)


def test_injected_10012_fault_shape(cg_client, fake_coingecko):
    fake_coingecko.inject(CHART, "plan_limit")
    with pytest.raises(PlanLimitError, match="10012"):
        history(cg_client)


# ---------------------------------------------------------------- keys
def test_bad_key_stops_and_names_the_variable():
    with FakeCoinGecko(plan="demo", api_key="right-key") as fake:
        cfg = fast_coingecko_config(fake, api_key="wrong-key")
        with CoinGeckoClient(cfg) as client, pytest.raises(BadApiKeyError) as info:
            cg.fetch_categories(client)
        assert len(fake.requests) == 1
    msg = str(info.value)
    assert "COINGECKO_API_KEY" in msg and "10002" in msg and "wrong-key" not in msg


def test_pro_key_on_the_demo_host_is_explained():
    with FakeCoinGecko(plan="demo", api_key="k") as fake:
        cfg = fast_coingecko_config(fake, plan="pro", api_key="k")
        with CoinGeckoClient(cfg) as client, pytest.raises(BadApiKeyError, match="10010"):
            cg.fetch_global(client)


def test_key_travels_in_a_header_only():
    with (
        FakeCoinGecko(plan="demo", api_key="demo-key-123") as fake,
        CoinGeckoClient(fast_coingecko_config(fake)) as client,
    ):
        cg.fetch_global(client)
        req = fake.requests[0]
    assert req.headers["x-cg-demo-api-key"] == "demo-key-123"
    assert "demo-key-123" not in req.query and "key" not in req.query


SECRET = "cg-SECRET-4242"


def test_key_never_in_logs_errors_or_raw_responses(caplog):
    seen: list[str] = []

    def record(endpoint, params, status, body):
        seen.append(f"{endpoint} {params} {status} {body}")

    errors: list[BaseException] = []
    with caplog.at_level("DEBUG"), FakeCoinGecko(plan="pro", api_key=SECRET) as fake:
        # the default test budget (3 s): 0.2 s gave up on the third fault when the machine was
        # busy, and this test is about the key, not the budget
        cfg = fast_coingecko_config(fake)
        with CoinGeckoClient(cfg, on_exchange=record) as client:
            assert SECRET not in repr(client) and SECRET not in repr(client.config)
            fake.inject(CHART, status=429, times=1)
            fake.inject(CHART, status=502, times=1)
            fake.inject(CHART, "truncated", times=1)
            cg.fetch_coin_history(client, "fetch-ai", START, END)
            cg.fetch_category_members(client, "artificial-intelligence")
            for kind, kw in (
                ("html", {}),
                ("status", {"status": 503}),
                ("plan_limit", {}),
                ("timeout", {"delay": 2.0}),
            ):
                fake.inject("/global", kind, times=None, **kw)
                try:
                    cg.fetch_global(client)
                except Exception as exc:  # collected and inspected below
                    errors.append(exc)
                fake.clear_faults()
        with CoinGeckoClient(
            fast_coingecko_config(fake, api_key=SECRET + "x"), on_exchange=record
        ) as bad:
            with pytest.raises(BadApiKeyError) as info:
                cg.fetch_global(bad)
            errors.append(info.value)
        queries = [r.query for r in fake.requests]
    assert len(errors) == 5
    import traceback

    texts = [
        *seen,
        *queries,
        *(rec.getMessage() for rec in caplog.records),
        *("".join(traceback.format_exception(e)) for e in errors),
        *(repr(e) for e in errors),
    ]
    assert caplog.records and seen
    assert not [t for t in texts if SECRET in t]


# ---------------------------------------------------------------- rate limit
class RecordingLimiter(RateLimiter):
    """The real limiter, noting when each call asked for a slot and when it was let go."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.grants: list[tuple[float, float]] = []  # (asked, released), monotonic seconds

    def acquire(self) -> float:
        asked = time.monotonic()
        waited = super().acquire()
        self.grants.append((asked, asked + waited))
        return waited


def test_limiter_keeps_a_rate_limited_fake_busy_without_429():
    # The fake answers 429 past 24 calls in any 2 s (R = 720/min, scaled down from a minute so
    # the test is short); the client is told R and must fill the window without a 429.
    rate, window = 24, 2.0
    cpm = rate * 60 / window * RATE_HEADROOM  # what shared_limiter would run at
    interval = 60 / cpm
    limiter = RecordingLimiter(cpm, window_seconds=window)
    with FakeCoinGecko(n_coins=50, rate_limit=(rate, window)) as fake:
        cfg = fast_coingecko_config(
            fake, calls_per_minute=rate * 60 / window, rate_window_seconds=window
        )
        with CoinGeckoClient(cfg, limiter=limiter) as client:
            coins = [f"ai-token-{i:03d}" for i in range(11, 46)] + ["bitcoin"]
            results = list(cg.iter_coin_histories(client, coins, START, END, max_workers=4))
        served = fake.calls(CHART)
    assert all(r.skipped is None and len(r.frame) > 0 for r in results)
    assert len(served) == 36 and all(r.status == 200 for r in served)
    # "Busy" is measured on the limiter's own schedule, not as wall-clock throughput (which a
    # loaded 2-core machine slows whatever the limiter does): whenever a call had to wait, it
    # was let go one interval after the call before it, so the limiter never idled the quota.
    # The median ignores the few slots the sliding-window rule pushes back after a late wake.
    releases = sorted(released for _, released in limiter.grants)
    held = [
        later - earlier
        for (asked, later), earlier in zip(
            sorted(limiter.grants, key=lambda g: g[1])[1:], releases, strict=False
        )
        if later - asked > 1e-3
    ]
    assert len(held) >= 10, "4 workers asking for 36 calls must queue at the limiter"
    assert sorted(held)[len(held) // 2] <= 1.1 * interval


def test_fake_enforces_its_rate_limit_and_client_recovers():
    with FakeCoinGecko(rate_limit=(3, 0.5), rate_limit_retry_after=False) as fake:
        cfg = fast_coingecko_config(fake, backoff_base_seconds=0.1, backoff_max_seconds=0.3)
        with CoinGeckoClient(cfg) as client:  # the client's limiter is far too generous
            for _ in range(6):
                cg.fetch_global(client)
        statuses = [r.status for r in fake.requests]
    assert statuses.count(200) == 6 and 429 in statuses
    assert all(r.fault in (None, "rate_limit") for r in fake.requests)


def test_pycoingecko_hidden_retries_are_disabled(cg_client):
    adapter = cg_client._cg.session.get_adapter("https://api.coingecko.com/")
    assert adapter.max_retries.total == 0


def test_each_answer_is_reported_once(cg_client, fake_coingecko, exchanges):
    fake_coingecko.inject(CHART, status=500, times=1)
    history(cg_client)
    statuses = [(e, s) for e, _, s, _ in exchanges.rows]
    assert statuses == [
        ("/coins/fetch-ai/market_chart/range", 500),
        ("/coins/fetch-ai/market_chart/range", 200),
    ]
    params = exchanges.rows[-1][1]
    assert set(params) == {"vs_currency", "from", "to"}
    assert math.isfinite(float(params["from"]))
