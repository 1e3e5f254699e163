"""Hourly closes: the ``price_hourly`` table, its views, the CSV import of a ``ts`` file, the
upsert a CoinGecko loader will call, and the query the hourly event study will read."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows.cli import main
from flows.sources.csv_import import CsvValidationError, read_price_csv
from tests.warehouse.helpers import dump_tables, read_df, write_csv
from warehouse import imports
from warehouse.db import migration_files, open_warehouse, transaction
from warehouse.errors import ConflictingDuplicatesError, InputError
from warehouse.hourly import upsert_hourly
from warehouse.queries import hourly_closes
from warehouse.studies import UnknownSymbolError

HOURLY_ROWS, HOURLY_SYMBOLS, HOURS_EACH = 24_201, 9, 2_689

SMALL = """
ts,symbol,close,volume_usd,asset_class,venue
2024-02-15T17:00:00Z,FET,0.650,100,ai_token,binance_perp_usdt
2024-02-15T18:00:00Z,FET,0.656,110,ai_token,binance_perp_usdt
2024-02-15T19:00:00+00:00,FET,0.6606,120,ai_token,binance_perp_usdt
2024-02-15T21:00:00Z,FET,0.70,130,ai_token,binance_perp_usdt
2024-02-15T18:00:00Z,BTC,52000,1e6,crypto_benchmark,binance_perp_usdc
2024-02-15T19:00:00Z,BTC,52100,1e6,crypto_benchmark,binance_perp_usdc
"""

DAILY = """
date,symbol,close,volume_usd,asset_class,venue
2024-02-14,FET,0.60,1000,ai_token,binance_spot
2024-02-15,FET,0.66,1500,ai_token,binance_spot
"""


def load(db: Path, csv: Path) -> imports.ImportReport:
    parsed = read_price_csv(csv)
    with open_warehouse(db) as con:
        return imports.import_prices(
            con,
            parsed.frame,
            path=csv,
            rows_read=parsed.rows_read,
            exact_duplicates=parsed.exact_duplicates,
        )


def counts(report: imports.ImportReport) -> tuple[int, int, int]:
    r = report.result
    return r.inserted, r.updated, r.unchanged


# ------------------------------------------------------------------------ the real hourly file
def test_real_hourly_file_imports_every_row_and_reimport_changes_nothing(db_path, sora_hourly_csv):
    parsed = read_price_csv(sora_hourly_csv)
    assert parsed.interval == "1h"
    assert parsed.rows_read == len(parsed.frame) == HOURLY_ROWS
    assert list(parsed.frame.columns) == [
        "symbol",
        "ts",
        "source",
        "asset_class",
        "close",
        "volume_usd",
        "market_cap",
    ]
    first = load(db_path, sora_hourly_csv)
    assert counts(first) == (HOURLY_ROWS, 0, 0)
    assert first.series == HOURLY_SYMBOLS and first.interval == "1h"
    assert first.result.table == "price_hourly"
    before = dump_tables(db_path)
    second = load(db_path, sora_hourly_csv)
    assert counts(second) == (0, 0, HOURLY_ROWS)
    after = dump_tables(db_path)
    # Byte for byte the same rows (ingested_at included); only a run record is added.
    assert after["price_hourly"] == before["price_hourly"]
    assert after["imported_daily"] == before["imported_daily"] == []
    assert len(after["ingest_runs"]) == len(before["ingest_runs"]) + 1
    per_symbol = read_df(
        db_path,
        "SELECT symbol, count(*) AS n, min(ts) AS lo, max(ts) AS hi, "
        "count(*) FILTER (WHERE ts <> date_trunc('hour', ts)) AS off_hour "
        "FROM hourly_prices GROUP BY 1 ORDER BY 1",
    )
    assert per_symbol["symbol"].tolist() == [
        "AGIX",
        "ARKM",
        "BTC",
        "ETH",
        "FET",
        "INJ",
        "NMR",
        "RNDR",
        "WLD",
    ]
    assert set(per_symbol["n"]) == {HOURS_EACH} and set(per_symbol["off_hour"]) == {0}
    assert set(per_symbol["lo"]) == {pd.Timestamp("2024-01-05 00:00")}
    assert set(per_symbol["hi"]) == {pd.Timestamp("2024-04-26 00:00")}
    # Every consecutive pair is one hour apart: one return fewer than closes per series, none NULL.
    rets = read_df(
        db_path,
        "SELECT count(*) AS n, count(simple_return) AS n_ret, max(hours_spanned) AS span "
        "FROM hourly_returns",
    ).iloc[0]
    assert (rets["n"], rets["n_ret"], rets["span"]) == (HOURLY_ROWS - 9, HOURLY_ROWS - 9, 1)
    run = read_df(
        db_path,
        "SELECT details->>'interval' AS interval, details->>'table' AS tbl, rows_inserted "
        "FROM ingest_runs ORDER BY started_at LIMIT 1",
    ).iloc[0]
    assert (run["interval"], run["tbl"], run["rows_inserted"]) == ("1h", "price_hourly", 24_201)


def test_returns_view_matches_a_hand_computed_hour(db_path, sora_hourly_csv):
    load(db_path, sora_hourly_csv)
    # hourly.csv: FET closes 0.656 at 18:00Z and 0.6606 at 19:00Z on 2024-02-15 (Sora was
    # announced at about 18:00Z): the hour [18:00, 19:00) is labelled by its close, 19:00.
    row = read_df(
        db_path,
        "SELECT * FROM hourly_returns WHERE symbol = 'FET' AND ts = '2024-02-15 19:00:00'",
    ).iloc[0]
    assert row["prev_ts"] == pd.Timestamp("2024-02-15 18:00")
    assert (row["prev_close"], row["close"], row["hours_spanned"]) == (0.656, 0.6606, 1)
    assert row["simple_return"] == pytest.approx(0.6606 / 0.656 - 1, rel=1e-12)
    assert row["simple_return"] == pytest.approx(0.00701219512195, abs=1e-13)
    assert row["log_return"] == pytest.approx(math.log(0.6606 / 0.656), rel=1e-12)
    assert (row["source"], row["asset_class"], row["calendar"]) == (
        "binance_perp_usdt",
        "ai_token",
        "crypto",
    )


def test_cli_imports_the_hourly_file_and_sql_answers(db_path, sora_hourly_csv, capsys):
    assert main(["import", str(sora_hourly_csv)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"Imported hourly.csv into {db_path}: 24,201 rows read, 9 series; "
        "24,201 inserted, 0 updated, 0 unchanged.\n"
    )
    assert main(["import", str(sora_hourly_csv)]) == 0
    out = capsys.readouterr().out
    assert "0 inserted, 0 updated, 24,201 unchanged." in out
    assert "Nothing changed" in out
    assert main(["sql", "select count(*) as n from hourly_prices", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "n\n24201\n"


# ------------------------------------------------------------------------ views and gaps
def test_a_gap_gives_null_never_a_multi_hour_return(db_path, tmp_path):
    load(db_path, write_csv(tmp_path / "h.csv", SMALL))
    fet = read_df(
        db_path,
        "SELECT ts, prev_ts, hours_spanned, simple_return, log_return FROM hourly_returns "
        "WHERE symbol = 'FET' ORDER BY ts",
    )
    assert fet["ts"].dt.hour.tolist() == [18, 19, 21]
    assert fet["hours_spanned"].tolist() == [1, 1, 2]
    assert fet["simple_return"].iloc[0] == pytest.approx(0.656 / 0.650 - 1)
    assert fet["simple_return"].iloc[1] == pytest.approx(0.6606 / 0.656 - 1)
    # 19:00 -> 21:00 spans two hours: no return, rather than a two-hour move labelled 21:00.
    assert pd.isna(fet["simple_return"].iloc[2]) and pd.isna(fet["log_return"].iloc[2])
    assert fet["prev_ts"].iloc[2] == pd.Timestamp("2024-02-15 19:00")
    btc = read_df(db_path, "SELECT simple_return FROM hourly_returns WHERE symbol = 'BTC'")
    assert btc["simple_return"].tolist() == pytest.approx([52100 / 52000 - 1])


def test_hourly_rows_stay_out_of_the_daily_views(db_path, tmp_path):
    load(db_path, write_csv(tmp_path / "h.csv", SMALL))
    load(db_path, write_csv(tmp_path / "d.csv", DAILY))
    assert read_df(db_path, "SELECT count(*) AS n FROM daily_prices")["n"].iloc[0] == 2
    assert read_df(db_path, "SELECT count(*) AS n FROM hourly_prices")["n"].iloc[0] == 6


# ------------------------------------------------------------------------ daily path unchanged
def test_daily_import_is_unchanged(db_path, tmp_path):
    parsed = read_price_csv(write_csv(tmp_path / "d.csv", DAILY))
    assert parsed.interval == "1d"
    assert list(parsed.frame.columns) == [
        "symbol",
        "date",
        "source",
        "asset_class",
        "close",
        "volume_usd",
        "market_cap",
    ]
    report = load(db_path, tmp_path / "d.csv")
    assert counts(report) == (2, 0, 0) and report.result.table == "imported_daily"
    assert report.interval == "1d"
    dump = dump_tables(db_path)
    assert len(dump["imported_daily"]) == 2 and dump["price_hourly"] == []


def test_a_ts_column_of_dates_only_is_a_daily_file(tmp_path):
    parsed = read_price_csv(write_csv(tmp_path / "d.csv", DAILY.replace("date,", "ts,", 1)))
    assert parsed.interval == "1d" and "date" in parsed.frame.columns
    assert len(parsed.frame) == 2


# ------------------------------------------------------------------------ validation
HEADER = "ts,symbol,close,venue\n"
GOOD_LINE = "2024-02-15T18:00:00Z,FET,0.656,binance_perp_usdt\n"

# (lines after the header and a good line 2, line number named, phrase of the reason)
BAD_HOURLY = {
    "off_hour": ("2024-02-15T18:30:00Z,FET,0.66,x\n", 3, "is not on the hour"),
    "off_hour_seconds": ("2024-02-15T19:00:01Z,FET,0.66,x\n", 3, "is not on the hour"),
    "off_hour_fraction": ("2024-02-15T19:00:00.5Z,FET,0.66,x\n", 3, "is not on the hour"),
    "non_utc_offset": (
        "2024-02-15T20:00:00+01:00,FET,0.66,x\n",
        3,
        "has the UTC offset +01:00, not UTC",
    ),
    "negative_offset": ("2024-02-15T13:00:00-05:00,FET,0.66,x\n", 3, "that instant is"),
    "no_zone": ("2024-02-15T19:00:00,FET,0.66,x\n", 3, "has no UTC offset"),
    "unparseable": ("2024-02-15T25:00:00Z,FET,0.66,x\n", 3, "is not a valid time"),
    "garbage": ("15/02/2024 19:00,FET,0.66,x\n", 3, "is not an ISO-8601 UTC time"),
    "future": ("2999-01-01T00:00:00Z,FET,0.66,x\n", 3, "is in the future"),
    "before_1900": ("1899-12-31T23:00:00Z,FET,0.66,x\n", 3, "before 1900-01-01"),
    "mixed_daily_hourly": (
        "2024-02-16,FET,0.66,x\n",
        3,
        "a file mixing daily and hourly rows is refused: ts '2024-02-16' is a date without "
        "a time, line 2 holds the hourly time '2024-02-15T18:00:00Z'",
    ),
    "conflicting_duplicate": (
        "2024-02-15T19:00:00Z,FET,0.66,x\n2024-02-15T18:00:00+00:00,FET,0.657,binance_perp_usdt\n",
        2,
        "FET at 2024-02-15T18:00:00Z appears again with different values on line(s) 4",
    ),
    "bad_close_too": ("2024-02-15T19:30:00Z,FET,-1,x\n", 3, "close '-1' must be positive"),
}


@pytest.fixture
def warehouse_with_data(db_path, tmp_path) -> Path:
    """A warehouse already holding hourly and daily rows: a refused file must leave it as is."""
    load(db_path, write_csv(tmp_path / "h.csv", SMALL))
    load(db_path, write_csv(tmp_path / "d.csv", DAILY))
    return db_path


@pytest.mark.parametrize("case", sorted(BAD_HOURLY))
def test_bad_hourly_file_exits_2_names_the_line_and_writes_nothing(
    case, warehouse_with_data, tmp_path, capsys
):
    rows, line, phrase = BAD_HOURLY[case]
    csv = write_csv(tmp_path / "bad.csv", HEADER + GOOD_LINE + rows)
    with pytest.raises(CsvValidationError) as info:
        read_price_csv(csv)
    assert (line, info.value.problems[0][1]) == info.value.problems[0]
    assert any(n == line and phrase in why for n, why in info.value.problems), info.value.problems
    before = dump_tables(warehouse_with_data)
    capsys.readouterr()
    assert main(["import", str(csv)]) == 2
    err = capsys.readouterr().err
    assert f"line {line}: " in err and phrase in err and "nothing imported" in err
    assert "Traceback" not in err
    assert dump_tables(warehouse_with_data) == before


def test_a_date_column_with_times_is_refused_as_mixing(warehouse_with_data, tmp_path, capsys):
    text = (
        "date,symbol,close\n"
        "2024-02-14,FET,0.60\n"
        "2024-02-15T18:00:00Z,FET,0.66\n"
        "2024-02-15 19:00:00,FET,0.66\n"
    )
    csv = write_csv(tmp_path / "mixed.csv", text)
    with pytest.raises(CsvValidationError) as info:
        read_price_csv(csv)
    assert [n for n, _ in info.value.problems] == [3, 4]
    assert all(
        why.startswith("a file mixing daily and hourly rows is refused: date ")
        and "ts column" in why
        for _, why in info.value.problems
    )
    before = dump_tables(warehouse_with_data)
    assert main(["import", str(csv)]) == 2
    assert "line 3: a file mixing daily and hourly rows is refused" in capsys.readouterr().err
    assert dump_tables(warehouse_with_data) == before


def test_a_file_with_both_date_and_ts_columns_is_refused(tmp_path):
    csv = write_csv(tmp_path / "both.csv", "date,ts,symbol,close\n2024-02-15,,FET,1\n")
    with pytest.raises(InputError, match="both a date and a ts column"):
        read_price_csv(csv)


def test_an_hourly_file_without_a_header_is_named(tmp_path):
    csv = write_csv(tmp_path / "nohead.csv", "2024-02-15T18:00:00Z,FET,0.66\n")
    with pytest.raises(InputError, match="has no header line"):
        read_price_csv(csv)


def test_errors_are_capped_like_daily_errors(tmp_path):
    lines = "".join(f"2024-02-15T{h:02d}:30:00Z,FET,1,x\n" for h in range(15))
    with pytest.raises(CsvValidationError) as info:
        read_price_csv(write_csv(tmp_path / "many.csv", HEADER + lines))
    assert len(info.value.problems) == 15
    assert str(info.value).count("is not on the hour") == 10
    assert "... and 5 more" in str(info.value)


def test_exact_duplicates_collapse_and_z_equals_utc_offset(db_path, tmp_path):
    text = HEADER + GOOD_LINE + "2024-02-15T18:00:00+00:00,FET,0.656,binance_perp_usdt\n"
    parsed = read_price_csv(write_csv(tmp_path / "dup.csv", text))
    assert (parsed.rows_read, len(parsed.frame), parsed.exact_duplicates) == (2, 1, 1)
    assert parsed.frame["ts"].tolist() == [pd.Timestamp("2024-02-15 18:00")]


# ------------------------------------------------------------------------ upsert_hourly
def test_upsert_hourly_converts_zones_keeps_vendor_stamps_and_is_idempotent(db_path):
    frame = pd.DataFrame(
        {
            "asset_id": ["fetch-ai", "fetch-ai"],
            # mixed zones (an object column): each is converted to UTC
            "ts": [pd.Timestamp("2024-02-15T19:00:00+01:00"), pd.Timestamp("2024-02-15T19:00Z")],
            "source": "coingecko",
            "close": [0.656, 0.6606],
            "market_cap": [5.5e8, 5.6e8],
            "vendor_ts": pd.to_datetime(["2024-02-15T18:02:11Z", "2024-02-15T19:01:40Z"]),
        }
    )
    with open_warehouse(db_path) as con:
        con.execute(
            "INSERT INTO coins VALUES ('fetch-ai', 'fet', 'Fetch.ai', 'ai_token', now())"
        ).fetchall()
        with transaction(con):
            first = upsert_hourly(con, frame)
        with transaction(con):
            again = upsert_hourly(con, frame)
    assert (first.inserted, again.unchanged, again.written) == (2, 2, 0)
    rows = read_df(
        db_path, "SELECT ts, vendor_ts, asset_class FROM price_hourly ORDER BY ts"
    ).to_dict("records")
    assert [r["ts"] for r in rows] == [
        pd.Timestamp("2024-02-15 18:00"),
        pd.Timestamp("2024-02-15 19:00"),
    ]
    assert rows[0]["vendor_ts"] == pd.Timestamp("2024-02-15 18:02:11")
    view = read_df(db_path, "SELECT symbol, asset_id, asset_class FROM hourly_prices LIMIT 1")
    assert view.iloc[0].tolist() == ["FET", "fetch-ai", "ai_token"]


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"ts": [pd.Timestamp("2024-02-15 18:05")]}, "not on the hour"),
        ({"close": [0.0]}, "not a positive finite number"),
        ({"close": [float("nan")]}, "not a positive finite number"),
        ({"volume_usd": [-1.0]}, "negative volume_usd"),
        ({"symbol": ["FET"]}, "unknown column(s) symbol"),
    ],
)
def test_upsert_hourly_refuses_bad_rows(db_path, change, phrase):
    frame = pd.DataFrame(
        {
            "asset_id": ["fetch-ai"],
            "ts": [pd.Timestamp("2024-02-15 18:00")],
            "source": ["coingecko"],
            "close": [0.656],
        }
    ).assign(**change)
    with (
        open_warehouse(db_path) as con,
        pytest.raises(InputError, match=re.escape(phrase)),
        transaction(con),
    ):
        upsert_hourly(con, frame)
    assert dump_tables(db_path)["price_hourly"] == []


def test_upsert_hourly_conflicting_duplicates_are_refused(db_path):
    frame = pd.DataFrame(
        {
            "asset_id": ["fetch-ai", "fetch-ai"],
            "ts": [pd.Timestamp("2024-02-15 18:00")] * 2,
            "source": "coingecko",
            "close": [0.656, 0.657],
        }
    )
    with (
        open_warehouse(db_path) as con,
        pytest.raises(ConflictingDuplicatesError),
        transaction(con),
    ):
        upsert_hourly(con, frame)


def test_the_table_itself_refuses_a_time_off_the_hour(db_path):
    with open_warehouse(db_path) as con, pytest.raises(duckdb.ConstraintException):
        con.execute(
            "INSERT INTO price_hourly (asset_id, ts, source, close, ingested_at) "
            "VALUES ('FET', TIMESTAMP '2024-02-15 18:00:01', 'csv', 1, now())"
        )


# ------------------------------------------------------------------------ hourly_closes
def test_hourly_closes_chooses_one_source_per_symbol(db_path, tmp_path):
    load(db_path, write_csv(tmp_path / "h.csv", SMALL))
    other = (
        "ts,symbol,close,venue\n"
        "2024-02-15T18:00:00Z,FET,0.655,okx\n"
        "2024-02-15T19:00:00Z,FET,0.661,okx\n"
    )
    load(db_path, write_csv(tmp_path / "o.csv", other))
    with open_warehouse(db_path, read_only=True) as con:
        frame = hourly_closes(con, ["fet", "BTC"], "2024-02-15T17:00:00Z", "2024-02-15 20:00")
        assert list(frame.columns) == ["symbol", "asset_id", "source", "ts", "close"]
        assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
        assert frame["close"].dtype == "float64"
        fet = frame[frame["symbol"] == "FET"]
        # binance_perp_usdt holds 3 closes in [17:00, 20:00], okx 2: the fuller series wins.
        assert set(fet["source"]) == {"binance_perp_usdt"}
        assert fet["ts"].tolist() == [
            pd.Timestamp(f"2024-02-15 {h}:00", tz="UTC") for h in (17, 18, 19)
        ]
        assert frame.attrs["series"]["FET"]["reason"].startswith("most hourly closes")
        assert frame.attrs["series"]["BTC"] == {
            "asset_id": "BTC",
            "source": "binance_perp_usdc",
            "n_obs": 2,
            "reason": "only source",
        }
        # A span where okx has more, and explicit preferences.
        late = hourly_closes(con, ["FET"], "2024-02-15T18:00Z", "2024-02-15T19:00Z")
        assert late.attrs["series"]["FET"]["n_obs"] == 2  # tie 2-2: source name decides
        assert set(late["source"]) == {"binance_perp_usdt"}
        pref = hourly_closes(con, ["FET"], "2024-02-15", "2024-02-16", sources=["okx"])
        assert set(pref["source"]) == {"okx"} and len(pref) == 2
        pref = hourly_closes(con, ["FET"], "2024-02-15", "2024-02-16", sources=["FET=okx"])
        assert pref.attrs["series"]["FET"]["reason"] == "source FET=okx"
        # A zone-aware bound is converted: 19:00+01:00 is 18:00Z.
        tz = hourly_closes(con, ["BTC"], "2024-02-15T19:00+01:00", "2024-02-15T19:00+01:00")
        assert tz["ts"].tolist() == [pd.Timestamp("2024-02-15 18:00", tz="UTC")]
        with pytest.raises(UnknownSymbolError, match="FETT"):
            hourly_closes(con, ["FETT"], "2024-02-15", "2024-02-16")
        with pytest.raises(UnknownSymbolError, match="no hourly series"):
            hourly_closes(con, ["BTC"], "2024-02-15", "2024-02-16", sources=["BTC=okx"])
        with pytest.raises(InputError, match="after end"):
            hourly_closes(con, ["BTC"], "2024-02-16", "2024-02-15")


# ------------------------------------------------------------------------ migration
def test_a_version_3_warehouse_is_upgraded_with_its_daily_rows_kept(db_path, tmp_path):
    load(db_path, write_csv(tmp_path / "d.csv", DAILY))
    latest = migration_files()[-1][0]
    assert [name for v, name, _ in migration_files() if v == 4] == ["004_hourly.sql"]
    con = duckdb.connect(str(db_path))
    try:  # what a file written by the previous version looks like
        # every object of migrations 004 and later (hourly, Binance, event times)
        con.execute("DROP VIEW hourly_returns; DROP VIEW hourly_prices; DROP TABLE price_hourly")
        con.execute("DROP VIEW exchange_daily_prices; DROP TABLE exchange_daily")
        con.execute("DELETE FROM schema_migrations WHERE version >= 4")
        con.execute("UPDATE schema_meta SET value = '3' WHERE key = 'schema_version'")
        con.execute("UPDATE schema_meta SET value = 'old' WHERE key = 'views_sha256'")
    finally:
        con.close()
    with open_warehouse(db_path) as con:
        version = con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0]
    assert version == latest >= 4
    assert read_df(db_path, "SELECT count(*) AS n FROM daily_prices")["n"].iloc[0] == 2
    assert read_df(db_path, "SELECT count(*) AS n FROM hourly_returns")["n"].iloc[0] == 0


def test_a_future_hour_close_is_refused_relative_to_now(tmp_path):
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    done, open_hour = now, now + timedelta(hours=1)
    text = HEADER + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},FET,1,x\n" for t in (done, open_hour))
    with pytest.raises(CsvValidationError) as info:
        read_price_csv(write_csv(tmp_path / "now.csv", text))
    assert [n for n, _ in info.value.problems] == [3]
    assert "has not closed yet" in info.value.problems[0][1]
