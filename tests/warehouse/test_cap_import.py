"""Market caps beside the prices: the cap file's import (idempotent, bad rows refused by line,
nothing written), the preference order among cap sources, and the lineage rule of the sector
sum (never twice), checked by hand on small files and on the real Coin Metrics file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from flows.cli import main
from flows.sources.cap_import import is_cap_file, read_cap_csv
from flows.sources.csv_import import CsvValidationError
from tests.warehouse.helpers import read_df, write_csv
from warehouse.db import open_warehouse
from warehouse.studies import load_series

CAPS = """
date,symbol,market_cap,volume_usd,source
2024-02-14,FET,600000000,1000,coinmetrics_community
2024-02-15,FET,681642646.997147877718215,40009990.6596244,coinmetrics_community
2024-02-15,RNDR,2009268156.24,,coinmetrics_community
"""

PRICES = """
date,symbol,close,asset_class,venue
2024-02-14,FET,0.60,ai_token,binance_spot
2024-02-15,FET,0.66,ai_token,binance_spot
2024-02-15,RNDR,5.30,ai_token,binance_perp
"""


@pytest.fixture(scope="module")
def market_caps_csv(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "ai_events" / "market_caps.csv"
    if not path.is_file():
        pytest.skip(f"real cap file {path} is absent (set AITOKENS_SHARED)")
    return path


def caps_rows(db: Path) -> list[tuple]:
    """Every cap row (NULL as None), sorted."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT symbol, date::VARCHAR, source, market_cap, volume_usd FROM market_caps_daily "
            "ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


# ------------------------------------------------------------------------------ the file
def test_the_real_cap_file_imports_whole_and_a_reimport_changes_nothing(
    db_path, market_caps_csv, capsys
):
    assert is_cap_file(market_caps_csv)
    assert main(["import", str(market_caps_csv)]) == 0
    assert capsys.readouterr().out == (
        f"Imported market caps market_caps.csv into {db_path}: 9,560 rows read, 8 series; "
        "9,560 inserted, 0 updated, 0 unchanged.\n"
    )
    first = read_df(db_path, "SELECT * FROM market_caps_daily ORDER BY ALL")
    assert main(["import", str(market_caps_csv)]) == 0
    out = capsys.readouterr().out
    assert "0 inserted, 0 updated, 9,560 unchanged." in out and "Nothing changed" in out
    again = read_df(db_path, "SELECT * FROM market_caps_daily ORDER BY ALL")
    pd.testing.assert_frame_equal(first, again)  # ingested_at included: nothing rewritten
    # the values as published: FET on the Sora day (README: 681.6 M USD), its source kept
    fet = read_df(
        db_path,
        "SELECT market_cap, volume_usd, source FROM market_caps_daily "
        "WHERE symbol = 'FET' AND date = '2024-02-15'",
    )
    assert fet.to_records(index=False).tolist() == [
        (681642646.9971479, 40009990.6596244, "coinmetrics_community")
    ]
    runs = read_df(db_path, "SELECT details FROM ingest_runs WHERE flow = 'csv_import'")
    assert len(runs) == 2 and all("market_caps_daily" in d for d in runs["details"])


def test_a_cap_file_without_source_is_labelled_csv_and_updates_in_place(db_path, tmp_path):
    text = "date,symbol,market_cap\n2024-02-15,FET,100\n2024-02-16,fet,110\n"
    assert main(["import", str(write_csv(tmp_path / "a.csv", text))]) == 0
    assert caps_rows(db_path) == [
        ("FET", "2024-02-15", "csv", 100.0, None),
        ("FET", "2024-02-16", "csv", 110.0, None),
    ]
    assert main(["import", str(write_csv(tmp_path / "b.csv", text.replace("110", "120")))]) == 0
    assert [r[3] for r in caps_rows(db_path)] == [100.0, 120.0]


BAD_LINES = [
    ("2024-02-15,FET,-5,,x", "market_cap '-5' must be positive"),
    ("2024-02-15,FET,0,,x", "market_cap '0' must be positive"),
    ("2024-02-15,FET,,,x", "market_cap is empty"),
    ("2024-02-15,FET,1e9,-1,x", "volume_usd '-1' must not be negative"),
    ("15/02/2024,FET,1e9,,x", "date '15/02/2024' is not a YYYY-MM-DD date"),
    ("2999-01-01,FET,1e9,,x", "date '2999-01-01' is in the future"),
    ("2024-02-15T00:00:00Z,FET,1e9,,x", "carries a time of day"),
    ("2024-02-15,FE T!,1e9,,x", "symbol 'FE T!' is not a ticker"),
    ("2024-02-15,FET,1e9,,bad source", "source 'bad source' is not valid"),
    ('2024-02-15,FET,"1,5",,x', "decimal comma? write 1.5"),
    ("2024-02-15,FET,nan,,x", "market_cap 'nan' is not a finite number"),
]


def test_bad_rows_are_named_by_line_exit_2_and_nothing_is_written(db_path, tmp_path, capsys):
    good = write_csv(tmp_path / "good.csv", CAPS)
    assert main(["import", str(good)]) == 0
    before = caps_rows(db_path)
    runs = len(read_df(db_path, "SELECT * FROM ingest_runs"))
    body = "\n".join(line for line, _ in BAD_LINES)
    bad = write_csv(
        tmp_path / "bad.csv",
        "date,symbol,market_cap,volume_usd,source\n2024-02-16,FET,7e8,,x\n" + body + "\n",
    )
    capsys.readouterr()
    assert main(["import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"bad.csv has {len(BAD_LINES)} bad lines, nothing imported" in err
    for number, (_, reason) in enumerate(BAD_LINES[:10], start=3):  # at most ten are listed
        assert f"line {number}: " in err and reason in err, (number, reason)
    assert "... and 1 more" in err and "Traceback" not in err
    assert caps_rows(db_path) == before  # the good line 2 was not written either
    assert len(read_df(db_path, "SELECT * FROM ingest_runs")) == runs


def test_one_key_with_two_values_names_both_lines(tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        "date,symbol,market_cap,source\n2024-02-15,FET,1e9,cm\n2024-02-15,FET,1e9,cm\n"
        "2024-02-15,FET,2e9,cm\n2024-02-15,FET,2e9,other\n",
    )
    with pytest.raises(CsvValidationError) as info:
        read_cap_csv(path)
    assert info.value.problems == [
        (2, "FET on 2024-02-15 (cm) appears again with different values on line(s) 4")
    ]
    ok = write_csv(
        tmp_path / "d.csv", "date,symbol,market_cap\n2024-02-15,FET,1\n2024-02-15,FET,1\n"
    )
    parsed = read_cap_csv(ok)
    assert (parsed.rows_read, parsed.exact_duplicates, len(parsed.frame)) == (2, 1, 1)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ts,symbol,market_cap\n2024-02-15T01:00:00Z,FET,1\n", "market caps are daily"),
        ("date,market_cap\n2024-02-15,1\n", "lacks the column(s) symbol"),
        ("date;symbol;market_cap\n", "semicolons"),
        ("date,symbol,market_cap,market_cap\n", "appear twice"),
    ],
)
def test_cap_header_problems_exit_2(db_path, tmp_path, capsys, text, needle):
    path = write_csv(tmp_path / "h.csv", text)
    if "market_cap" in text and ";" not in text:
        assert is_cap_file(path)
    assert main(["import", str(path)]) == 2
    assert needle in capsys.readouterr().err
    assert (
        not db_path.exists()
        or read_df(db_path, "SELECT count(*) AS n FROM market_caps_daily")["n"].iloc[0] == 0
    )


def test_a_price_file_with_a_market_cap_column_stays_a_price_file(tmp_path):
    path = write_csv(tmp_path / "p.csv", "date,symbol,close,market_cap\n2024-02-15,FET,0.66,1e9\n")
    assert not is_cap_file(path)


# ------------------------------------------------------------------------------ readers
def test_studies_read_the_cap_file_beside_the_prices_own_cap_first(db_path, tmp_path):
    main(["import", str(write_csv(tmp_path / "p.csv", PRICES))])
    main(["import", str(write_csv(tmp_path / "c.csv", CAPS))])
    with open_warehouse(db_path) as con:
        panel = load_series(con, [("FET", "binance_spot"), ("RNDR", "binance_perp")])
    keys = zip(panel["symbol"], panel["date"].astype(str), strict=True)
    got = dict(zip(keys, panel["market_cap"], strict=True))
    assert got == {
        ("FET", "2024-02-14"): 600000000.0,
        ("FET", "2024-02-15"): 681642646.9971479,
        ("RNDR", "2024-02-15"): 2009268156.24,
    }
    # a price series that carries its own cap keeps it (same vendor, same instant)
    own = (
        "date,symbol,close,asset_class,venue,market_cap\n"
        "2024-02-14,FET,0.60,ai_token,binance_spot,\n"
        "2024-02-15,FET,0.66,ai_token,binance_spot,5\n"
    )
    main(["import", str(write_csv(tmp_path / "p2.csv", own))])
    with open_warehouse(db_path) as con:
        panel = load_series(con, [("FET", "binance_spot")])
    assert panel["market_cap"].tolist() == [600000000.0, 5.0]


def test_preference_order_picks_one_cap_per_symbol_and_day(db_path, tmp_path):
    text = (
        "date,symbol,market_cap,source\n"
        "2024-02-15,FET,3,zzz_vendor\n2024-02-15,FET,2,coinmetrics_community\n"
        "2024-02-15,FET,1,coinmetrics\n2024-02-16,FET,4,zzz_vendor\n2024-02-16,FET,5,aaa_vendor\n"
    )
    main(["import", str(write_csv(tmp_path / "c.csv", text))])
    got = read_df(
        db_path, "SELECT date, source, market_cap FROM preferred_market_caps ORDER BY date"
    )
    assert got.to_records(index=False).tolist() == [
        (pd.Timestamp("2024-02-15"), "coinmetrics", 1.0),  # the API before the file
        (pd.Timestamp("2024-02-16"), "aaa_vendor", 5.0),  # unlisted: after the listed, by name
    ]
    with open_warehouse(db_path) as con:
        con.execute("UPDATE market_cap_sources SET preference = 9 WHERE source = 'coinmetrics'")
    got = read_df(db_path, "SELECT source FROM preferred_market_caps WHERE date = '2024-02-15'")
    assert got["source"].tolist() == ["coinmetrics_community"]  # the order is the table's


# ------------------------------------------------------------------------------ lineage
LINEAGE_PRICES = """
date,symbol,close,asset_class,venue
2024-06-30,FET,1.0,ai_token,x
2024-06-30,AGIX,0.5,ai_token,x
2024-06-30,RNDR,7.0,ai_token,x
"""
LINEAGE_CAPS = """
date,symbol,market_cap,source
2023-10-31,RNDR,100,cm
2023-11-01,RNDR,110,cm
2024-06-30,RNDR,120,cm
2024-06-30,RENDER,130,cm
2024-06-30,FET,1000,cm
2024-06-30,AGIX,400,cm
2024-07-01,FET,1500,cm
2024-07-01,AGIX,380,cm
2024-07-02,AGIX,370,cm
"""


def test_the_sector_sum_never_counts_a_renamed_or_merged_asset_twice(db_path, tmp_path):
    main(["import", str(write_csv(tmp_path / "p.csv", LINEAGE_PRICES))])
    main(["import", str(write_csv(tmp_path / "c.csv", LINEAGE_CAPS))])
    daily = read_df(db_path, "SELECT date, n_members, market_cap_usd FROM ai_tracked_daily")
    got = {str(d.date()): (n, c) for d, n, c in daily.itertuples(index=False)}
    assert got == {
        "2023-10-31": (1, 100.0),  # RNDR before the migration
        "2023-11-01": (1, 110.0),  # RNDR stands for RENDER while RENDER has no cap
        "2024-06-30": (3, 130.0 + 1000.0 + 400.0),  # RENDER, not RNDR beside it; AGIX still apart
        "2024-07-01": (1, 1500.0),  # the merger's day closes after 03:00 UTC: FET only
        "2024-07-02": (1, 370.0),  # no FET cap that day: AGIX's stands for FET's network
    }
    member = read_df(
        db_path,
        "SELECT symbol, network, counted FROM ai_member_caps WHERE date = '2024-06-30' "
        "ORDER BY symbol",
    )
    assert member.to_records(index=False).tolist() == [
        ("AGIX", "AGIX", True),
        ("FET", "FET", True),
        ("RENDER", "RENDER", True),
        ("RNDR", "RENDER", False),
    ]


# ------------------------------------------------------------------------------ references
def test_sector_references_are_recorded_listed_replaced_and_removed(db_path, capsys):
    seeded = "the project brief"
    args = ["sector", "reference", "add", "--date", "2024-03-01", "--source", "a cited page"]
    assert main([*args, "--market-cap", "$30.5B"]) == 0
    assert capsys.readouterr().out == (
        "Recorded artificial-intelligence on 2024-03-01: $30,500,000,000 (a cited page).\n"
    )
    assert main(["sector", "reference", "list", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("category_id,date,market_cap_usd,source,origin,recorded_at\n")
    assert "artificial-intelligence,2024-02-15,25000000000.0," in out and seeded in out
    assert "artificial-intelligence,2024-03-01,30500000000.0,a cited page,analyst," in out
    assert main([*args, "--market-cap", "31e9"]) == 0
    assert capsys.readouterr().out.startswith("Replaced artificial-intelligence on 2024-03-01")
    got = read_df(db_path, "SELECT date::VARCHAR AS d, market_cap_usd FROM sector_references")
    assert sorted(got.itertuples(index=False, name=None)) == [
        ("2024-02-15", 25e9),
        ("2024-03-01", 31e9),
    ]
    for bad, needle in (
        (["--market-cap", "lots"], "--market-cap 'lots' is not a USD figure"),
        (["--market-cap", "-5"], "is not a plausible USD figure"),
    ):
        assert main([*args, *bad]) == 2
        assert needle in capsys.readouterr().err
    assert (
        main(
            ["sector", "reference", "add", "--date", "15/02/2024", "--market-cap", "1"]
            + ["--source", "x"]
        )
        == 2
    )
    assert "--date '15/02/2024' is not a date (YYYY-MM-DD)" in capsys.readouterr().err
    assert main(["sector", "reference", "remove", "--date", "2024-03-01"]) == 0
    assert (
        capsys.readouterr().out
        == "Removed 1 reference(s) of artificial-intelligence on 2024-03-01.\n"
    )
    assert main(["sector", "reference", "remove", "--date", "2024-03-01"]) == 2
    assert (
        "no sector reference for artificial-intelligence on 2024-03-01" in capsys.readouterr().err
    )


# ------------------------------------------------------------------------------ lineage joins
def merger_prices(tmp_path: Path) -> Path:
    """BTC and FET through 2024-08-31, AGIX until the day before the merger (seeded walks)."""
    rng = np.random.default_rng(25)
    lines = ["date,symbol,asset_class,venue,close"]
    for symbol, price, cls, last in (
        ("BTC", 42000.0, "crypto_benchmark", "2024-08-31"),
        ("FET", 0.6, "ai_token", "2024-08-31"),
        ("AGIX", 0.25, "ai_token", "2024-06-30"),
    ):
        for d in pd.date_range("2024-01-01", last):
            price *= float(np.exp(rng.normal(0.0, 0.03)))
            lines.append(f"{d.date()},{symbol},{cls},x,{price:.6f}")
    return write_csv(tmp_path / "merger.csv", "\n".join(lines) + "\n")


def test_agix_continues_as_0_433350_fet_across_2024_07_01(db_path, tmp_path):
    csv = merger_prices(tmp_path)
    assert main(["import", str(csv)]) == 0
    with open_warehouse(db_path) as con:
        panel = load_series(con, [("AGIX", "x"), ("FET", "x")])
    raw = pd.read_csv(csv, parse_dates=["date"]).pivot(index="date", columns="symbol")["close"]
    agix = panel[panel["symbol"] == "AGIX"].set_index("date")
    # held days untouched, then 0.433350 FET from the merger's day on, flagged, without a cap
    assert_allclose(agix.loc[:"2024-06-30", "close"], raw.loc[:"2024-06-30", "AGIX"])
    assert agix.loc[:"2024-06-30", "lineage"].isna().all()
    after = agix.loc["2024-07-01":]
    assert after.index[0] == pd.Timestamp("2024-07-01") and len(after) == 62
    assert_allclose(after["close"], 0.433350 * raw.loc["2024-07-01":, "FET"], rtol=1e-12)
    assert after["market_cap"].isna().all()
    assert set(after["lineage"]) == {
        "AGIX continues as 0.43335 FET (x) from 2024-07-01 (merger of 2024-07-01 03:00 UTC)"
    }
    assert (after[["asset_id", "source", "asset_class"]] == ["AGIX", "x", "ai_token"]).all().all()
    # the join day's return spans both assets: 0.433350 FET(07-01) / AGIX(06-30) - 1
    r = agix["close"].pct_change()
    hand = (
        0.433350
        * raw.at[pd.Timestamp("2024-07-01"), "FET"]
        / raw.at[pd.Timestamp("2024-06-30"), "AGIX"]
        - 1
    )
    assert_allclose(r.loc["2024-07-01"], hand, rtol=1e-12)
    # FET itself is not touched, and a range ending before the merger joins nothing
    assert panel.loc[panel["symbol"] == "FET", "lineage"].isna().all()
    with open_warehouse(db_path) as con:
        early = load_series(con, [("AGIX", "x")], date_range=("2024-01-01", "2024-06-30"))
    assert early["lineage"].isna().all() and len(early) == 182


def test_a_study_of_agix_after_the_merger_runs_on_the_joined_series(db_path, tmp_path):
    csv = merger_prices(tmp_path)
    main(["import", str(csv)])
    out = tmp_path / "s.json"
    args = ["study", "--event", "2024-07-02", "--assets", "AGIX", "--no-placebo", "--no-save"]
    r = run_cli_capture([*args, "--json", str(out)])
    assert r[0] == 0, r
    assert "lineage: AGIX continues as 0.43335 FET (x) from 2024-07-01" in r[1]
    rows = pd.DataFrame(json.loads(out.read_text())["legs"]["tokens"]["results"])
    ar = rows[rows["kind"] == "day"].set_index("start")["value"]
    # by hand: AGIX's joined returns on BTC's over days -120..-11, AR = R - a - b R_m
    raw = pd.read_csv(csv, parse_dates=["date"]).pivot(index="date", columns="symbol")["close"]
    joined = raw["AGIX"].where(raw.index <= "2024-06-30", 0.433350 * raw["FET"])
    ret, mkt = joined.pct_change(), raw["BTC"].pct_change()
    day0 = pd.Timestamp("2024-07-02")
    est = [day0 + pd.Timedelta(days=k) for k in range(-120, -10)]
    x = np.column_stack([np.ones(len(est)), mkt[est].to_numpy()])
    (a, b), *_ = np.linalg.lstsq(x, ret[est].to_numpy(), rcond=None)
    for k in (-1, 0, 5):  # -1 is the join day 2024-07-01
        d = day0 + pd.Timedelta(days=k)
        assert_allclose(ar[k], ret[d] - a - b * mkt[d], rtol=1e-9), k


def run_cli_capture(args: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def test_a_renamed_coingecko_id_is_followed_under_its_new_id(tmp_path):
    """render-token -> render (asset_lineage): once CoinGecko answers 404 for the old id, the
    next run asks for the new one, says so, and spends no call on the dead id."""
    from datetime import UTC, datetime, timedelta

    from flows.services.ingest_options import IngestOptions
    from flows.services.steps import run_ingestion
    from tests.fakes.coingecko import FakeCoinGecko
    from tests.fakes.fixtures import fast_coingecko_config

    db = tmp_path / "wh" / "aitokens.duckdb"
    since = datetime.now(UTC).date() - timedelta(days=10)
    with FakeCoinGecko(
        n_coins=3, plan="pro", api_key="pro-key-12345678", delisted=("render-token",)
    ) as cg:
        configs = {"coingecko": fast_coingecko_config(cg)}

        def history_calls() -> set[str]:
            return {r.path.split("/")[2] for r in cg.calls("/coins/*/market_chart/range")}

        first = run_ingestion(
            IngestOptions(
                flow="backfill", since=since, sources=("coingecko",), global_market=False
            ),
            db=db,
            configs=configs,
        )
        assert "render-token" in first.skipped and "render-token" in history_calls()
        assert "render" not in history_calls()
        cg.reset_log()
        again = run_ingestion(
            IngestOptions(
                flow="backfill", since=since, sources=("coingecko",), global_market=False
            ),
            db=db,
            configs=configs,
        )
        assert history_calls() == {"render"}  # the others are up to date
        assert (
            "CoinGecko id render-token was renamed render (asset_lineage): following render"
            in again.notes
        )


def test_a_long_cap_file_is_told_apart_by_its_header_alone(tmp_path):
    """The sniff reads 64 KB: a file whose 64th KB cuts a multi-byte character (a UTF-8 'é' in
    a long source label) is still a cap file, and UTF-16 files are read too."""
    header = "date,symbol,market_cap,volume_usd,source\n"
    filler = "2024-01-01,FET,1,,x\n" * 3000
    pad = 65535 - len(header) - len(filler) - 1
    utf8 = tmp_path / "u8.csv"
    utf8.write_text(header + filler + "#" * pad + "\n\u00e9\n", encoding="utf-8")
    assert utf8.read_bytes()[65535] == 0xC3  # the 64 KB read ends inside the 'é'
    assert is_cap_file(utf8)
    utf16 = tmp_path / "u16.csv"
    utf16.write_text("date,symbol,market_cap\n2024-02-15,FET,1\n", encoding="utf-16")
    assert is_cap_file(utf16)
    assert read_cap_csv(utf16).frame["market_cap"].tolist() == [1.0]
