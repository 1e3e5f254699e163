"""API payloads under schema drift and garbage: the parsers return clean frames or raise a
typed ``UpstreamError`` ("unexpected payload shape: ..."), never a KeyError or a traceback;
an ingestion that meets a drifted answer fails that series with the reason and loads the rest.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.errors import PayloadMismatchError, SourceError, UpstreamError
from flows.services.ingest_options import IngestOptions
from flows.sources.coingecko import CHART_COLUMNS, parse_market_chart
from flows.sources.yahoo import EQUITY_COLUMNS, parse_chart
from tests.ingest.conftest import days_ago

D = date(2024, 2, 15)


def ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def chart(n: int = 3, **drift):
    days = [D + timedelta(days=i) for i in range(n)]
    body = {
        "prices": [[ms(d), 1.0 + i] for i, d in enumerate(days)],
        "market_caps": [[ms(d), 100.0 + i] for i, d in enumerate(days)],
        "total_volumes": [[ms(d), 10.0 + i] for i, d in enumerate(days)],
    }
    body.update(drift)
    return body


def yahoo(n: int = 3, **quote_drift):
    opens = [int(datetime(2024, 2, 12 + i, 14, 30, tzinfo=UTC).timestamp()) for i in range(n)]
    quote = {
        "open": [1.0] * n,
        "high": [2.0] * n,
        "low": [0.5] * n,
        "close": [1.5 + i for i in range(n)],
        "volume": [100] * n,
    }
    quote.update(quote_drift)
    return {
        "chart": {
            "result": [
                {
                    "meta": {"exchangeTimezoneName": "America/New_York"},
                    "timestamp": opens,
                    "indicators": {"quote": [quote], "adjclose": [{"adjclose": quote["close"]}]},
                }
            ],
            "error": None,
        }
    }


# ---------------------------------------------------------------- named drift cases
def test_coingecko_numbers_as_strings_are_read_and_counted():
    body = chart(prices=[[str(ms(D)), "1.5"], [ms(D + timedelta(days=1)), "2.5"]])
    parsed = parse_market_chart("x", body)
    assert parsed.frame["price"].tolist() == [1.5, 2.5] and parsed.n_coerced == 2  # points
    assert any("came as strings" in n for n in parsed.notes)


@pytest.mark.parametrize("missing", ["market_caps", "total_volumes"])
def test_coingecko_missing_side_series_leave_nan_and_a_note(missing):
    body = chart()
    del body[missing]
    parsed = parse_market_chart("x", body)
    column = "market_cap" if missing == "market_caps" else "volume"
    assert len(parsed.frame) == 3 and parsed.frame[column].isna().all()
    assert any(missing in n for n in parsed.notes)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"price": chart()["prices"]}, "missing 'prices'"),  # renamed
        ({"market_caps": [], "total_volumes": []}, "missing 'prices'"),
        ({"prices": "1,2,3"}, "'prices' is not a list"),
        ({"prices": {"0": 1}}, "'prices' is not a list"),
        ([[1, 2]], "expected an object, got list"),
        ("prices", "expected an object, got str"),
        (None, "expected an object, got NoneType"),
    ],
)
def test_coingecko_unreadable_shapes_raise_a_typed_error(body, needle):
    with pytest.raises(UpstreamError, match="unexpected payload shape") as info:
        parse_market_chart("x", body)
    assert needle in str(info.value)


def test_coingecko_garbage_points_are_dropped_and_counted():
    body = chart(
        prices=[
            [ms(D), 1.0],
            [ms(D), True],
            [1e30, 1.0],
            [float("nan"), 1.0],
            [ms(D + timedelta(days=1)), float("inf")],
            [ms(D), 2.0, 3.0],
            "x",
            [ms(D + timedelta(days=2)), -5.0],
            [ms(D + timedelta(days=3)), "abc"],
        ],
        extra_field={"ignored": True},
    )
    parsed = parse_market_chart("x", body)
    assert parsed.frame["price"].tolist() == [1.0]
    assert parsed.n_malformed == 6 and parsed.n_null_price == 2  # inf and -5 are not prices


def test_yahoo_numbers_as_strings_and_missing_adjclose():
    body = yahoo(close=["1.5", "2.5", "3.5"])
    del body["chart"]["result"][0]["indicators"]["adjclose"]
    parsed = parse_chart("X", body, now=datetime(2024, 3, 1, tzinfo=UTC))
    assert parsed.frame["close"].tolist() == [1.5, 2.5, 3.5] and parsed.n_coerced == 3
    assert parsed.frame["adj_close"].isna().all()
    assert any("adjclose" in n for n in parsed.notes)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"chart": {"result": [], "error": None}}, "missing 'chart.result[0]'"),
        ({"chart": {"results": [{}]}}, "missing 'chart.result[0]'"),  # renamed
        ({"charts": {}}, "missing 'chart'"),
        ([], "missing 'chart'"),
        (
            {"chart": {"result": [{"timestamp": [1707748200], "indicators": {"quote": {}}}]}},
            "no 'indicators.quote[0].close'",
        ),
        (
            {
                "chart": {
                    "result": [
                        {"timestamp": [1707748200], "indicators": {"quote": [{"Close": [1]}]}}
                    ]
                }
            },
            "no 'indicators.quote[0].close'",
        ),
    ],
)
def test_yahoo_unreadable_shapes_raise_a_typed_error(body, needle):
    with pytest.raises(UpstreamError, match="unexpected payload shape") as info:
        parse_chart("X", body)
    assert needle in str(info.value)


def test_yahoo_garbage_bars_are_dropped_and_counted():
    body = yahoo(close=[1.5, "x", 0])
    body["chart"]["result"][0]["timestamp"][1] = "not a time"
    body["chart"]["result"][0]["meta"] = "not an object"
    parsed = parse_chart("X", body, now=datetime(2024, 3, 1, tzinfo=UTC))
    assert parsed.frame["close"].tolist() == [1.5]
    assert parsed.n_malformed == 2


# ---------------------------------------------------------------- property-based
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=12,
)
STAMP = st.one_of(
    st.integers(0, 5 * 10**12).map(lambda x: x - x % 86_400_000),
    st.integers(-(10**20), 10**20),
    st.floats(),
    st.text(max_size=14),
    st.integers(1_700_000_000_000, 1_800_000_000_000).map(str),
)
VALUE = st.one_of(
    st.none(),
    st.floats(),
    st.integers(-(10**6), 10**20),
    st.text(max_size=8),
    st.booleans(),
    st.floats(0.001, 1e6).map(repr),
)
POINT = st.one_of(st.tuples(STAMP, VALUE).map(list), JSON)
SERIES = st.one_of(st.lists(POINT, max_size=12), JSON)
CG_BODY = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={"prices": SERIES, "market_caps": SERIES, "total_volumes": SERIES, "extra": JSON},
    ),
    JSON,
)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_frame(frame: pd.DataFrame, columns: list[str], value: str, key: str) -> None:
    assert list(frame.columns) == columns
    values = frame[value].to_numpy(dtype=float)
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert frame[key].is_unique and list(frame[key]) == sorted(frame[key])


@FAST
@given(body=CG_BODY)
def test_parse_market_chart_never_crashes(body):
    try:
        parsed = parse_market_chart("x", body, start=date(2001, 1, 1), end=date(2099, 1, 1))
    except SourceError as exc:
        # an unreadable shape, or an answer about something else (unit, coin) refused
        assert "unexpected payload shape" in str(exc) or isinstance(exc, PayloadMismatchError)
        return
    _check_frame(parsed.frame, CHART_COLUMNS, "price", "date")
    json.dumps(parsed.notes)


BAR_LIST = st.lists(VALUE, max_size=8)
YAHOO_BODY = st.one_of(
    st.builds(
        lambda stamps, close, adj, meta, extra: {
            "chart": {
                "result": [
                    {
                        "meta": meta,
                        "timestamp": stamps,
                        "indicators": {
                            "quote": [
                                {
                                    "open": close,
                                    "high": close,
                                    "low": close,
                                    "close": close,
                                    "volume": extra,
                                }
                            ],
                            "adjclose": [{"adjclose": adj}],
                        },
                    }
                ],
                "error": None,
            }
        },
        st.one_of(
            st.lists(STAMP.map(lambda s: s // 1000 if isinstance(s, int) else s), max_size=8), JSON
        ),
        st.one_of(BAR_LIST, JSON),
        st.one_of(BAR_LIST, JSON),
        st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "exchangeTimezoneName": st.sampled_from(
                        ["America/New_York", "Nowhere/City", ""]
                    ),
                    "gmtoffset": VALUE,
                    "currentTradingPeriod": JSON,
                },
            ),
            JSON,
        ),
        st.one_of(BAR_LIST, JSON),
    ),
    JSON,
)


@FAST
@given(body=YAHOO_BODY)
def test_parse_chart_never_crashes(body):
    try:
        parsed = parse_chart("X", body, now=datetime(2024, 3, 1, tzinfo=UTC))
    except SourceError as exc:
        # an unreadable shape, or an answer about something else (unit, coin) refused
        assert "unexpected payload shape" in str(exc) or isinstance(exc, PayloadMismatchError)
        return
    _check_frame(parsed.frame, EQUITY_COLUMNS, "close", "date")


# ---------------------------------------------------------------- through an ingestion
VICTIM = "render-token"
CHART = f"/coins/{VICTIM}/market_chart/range"


def _options() -> IngestOptions:
    return IngestOptions(
        flow="backfill",
        since=days_ago(30),
        coins=("fetch-ai", VICTIM),
        equities=False,
        global_market=False,
    )


def test_drifted_answer_fails_that_coin_with_the_reason_and_the_rest_loads(env):
    renamed = json.dumps({"price": [[ms(D), 1.0]], "market_caps": [], "total_volumes": []})
    env.cg.inject(CHART, kind="body", body=renamed, times=None)
    summary = env.run(_options())
    assert summary.status == "completed"
    assert "unexpected payload shape" in summary.skipped[VICTIM]
    assert "'prices'" in summary.skipped[VICTIM]
    import duckdb

    con = duckdb.connect(str(env.db), read_only=True)
    coins = {r[0] for r in con.execute("SELECT DISTINCT coin_id FROM coin_daily").fetchall()}
    con.close()
    assert VICTIM not in coins and "fetch-ai" in coins
    env.cg.clear_faults()
    assert VICTIM not in env.run(_options()).skipped  # the next run catches up
