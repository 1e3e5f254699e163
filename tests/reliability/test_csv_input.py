"""Hostile and broken CSV files: each is refused with a clear message (or its bad lines
named) and nothing is written; valid files in any accepted form import exactly."""

from __future__ import annotations

import codecs
import math
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.cli import main
from flows.sources.csv_import import CsvValidationError, read_price_csv
from warehouse.db import migrate
from warehouse.errors import InputError
from warehouse.imports import import_prices

GOOD = "date,symbol,close,volume_usd,venue\n2024-02-15,FET,0.66,1500,binance_spot\n"


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom", "utf-32"]
)
def test_unicode_files_with_a_byte_order_mark_are_read(tmp_path, encoding):
    text = GOOD.replace("binance_spot", "binance_spot")
    if encoding == "utf-16-le-bom":
        data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    elif encoding == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    parsed = read_price_csv(write(tmp_path, data))
    assert parsed.frame[["symbol", "close", "volume_usd", "source"]].values.tolist() == [
        ["FET", 0.66, 1500.0, "binance_spot"]
    ]


# (bytes of the file, phrase of the message): each refused whole
REFUSED = {
    "cp1252": (
        ("date,symbol,close,venue\n2024-02-15,FET,0.66,Börse\n").encode("cp1252"),
        "looks like Windows-1252",
    ),
    "utf16-no-bom": (GOOD.encode("utf-16-le"), "UTF-16 without a byte-order mark"),
    "nul-bytes": (GOOD.encode() + b"\x00\x00garbage\n", "NUL"),
    "semicolons": (b"date;symbol;close\n2024-02-15;FET;0,66\n", "separates its columns with semi"),
    "tabs": (b"date\tsymbol\tclose\n2024-02-15\tFET\t0.66\n", "with tabs"),
    "no-header": (b"2024-02-15,FET,0.66\n2024-02-16,FET,0.70\n", "has no header line"),
    "header-only-other": (b"when,ticker,price\n2024-02-15,FET,0.66\n", "lacks the column(s)"),
    "repeated-column": (b"date,symbol,close,close\n2024-02-15,FET,0.66,0.7\n", "appear twice"),
    "empty": (b"", "is empty"),
    "blank-lines-only": (b"\n\n  \n", "is empty"),
    "unclosed-quote": (b'date,symbol,close\n2024-02-15,"FET,0.66\n', "not a well-formed CSV"),
    "date-and-ts": (b"date,ts,symbol,close\n2024-02-15,,FET,0.66\n", "both a date and a ts"),
    "hourly-no-header": (b"2024-02-15T18:00:00Z,FET,0.66\n", "has no header line"),
    "hourly-semicolons": (b"ts;symbol;close\n2024-02-15T18:00:00Z;FET;0.66\n", "semicolons"),
}
# (a data line after GOOD's, phrase of the reason): the line is named, line 3
BAD_LINES = {
    "decimal-comma-unquoted": ("2024-02-16,FET,0,70,2000,binance_spot", "decimal comma"),
    "decimal-comma-quoted": ('2024-02-16,FET,"0,70",2000,binance_spot', "write 0.70"),
    "nan": ("2024-02-16,FET,NaN,,binance_spot", "not a finite number"),
    "inf": ("2024-02-16,FET,inf,,binance_spot", "not a finite number"),
    "minus-infinity": ("2024-02-16,FET,1,-Infinity,binance_spot", "not a finite number"),
    "overflow": ("2024-02-16,FET,1e999,,binance_spot", "not a finite number"),
    "negative-price": ("2024-02-16,FET,-0.5,,binance_spot", "must be positive"),
    "zero-price": ("2024-02-16,FET,0,,binance_spot", "must be positive"),
    "negative-volume": ("2024-02-16,FET,0.5,-1,binance_spot", "must not be negative"),
    "underscore-number": ("2024-02-16,FET,1_000,,binance_spot", "is not a number"),
    "hex-number": ("2024-02-16,FET,0x10,,binance_spot", "is not a number"),
    "bad-date": ("2024-13-45,FET,0.5,,binance_spot", "not a YYYY-MM-DD date"),
    "us-date": ("02/16/2024,FET,0.5,,binance_spot", "not a YYYY-MM-DD date"),
    "ancient-date": ("1066-10-14,FET,0.5,,binance_spot", "before 1900"),
    "future-date": ("2999-01-01,FET,0.5,,binance_spot", "in the future"),
    "sql-symbol": ('2024-02-16,"FET\'); DROP TABLE coins;--",0.5,,binance_spot', "not a ticker"),
    "sql-venue": ("2024-02-16,FET,0.5,,x'); DROP TABLE imported_daily;--", "venue"),
    "too-many-fields": ("2024-02-16,FET,0.5,1,binance_spot,extra", "has 6 fields"),
    "duplicate-key": ("2024-02-15,FET,0.67,1500,binance_spot", "appears again"),
}


GOOD_HOURLY = "ts,symbol,close,volume_usd,venue\n2024-02-15T18:00:00Z,FET,0.656,1500,binance_perp\n"
# (a data line after GOOD_HOURLY's, phrase of the reason): the line is named, line 3
BAD_HOURLY_LINES = {
    "half-hour": ("2024-02-15T18:30:00Z,FET,0.66,,binance_perp", "is not on the hour"),
    "cest-offset": ("2024-02-15T20:00:00+02:00,FET,0.66,,binance_perp", "not UTC"),
    "naive-time": ("2024-02-15 19:00:00,FET,0.66,,binance_perp", "has no UTC offset"),
    "hour-25": ("2024-02-15T25:00:00Z,FET,0.66,,binance_perp", "is not a valid time"),
    "epoch-seconds": ("1708023600,FET,0.66,,binance_perp", "is not an ISO-8601 UTC time"),
    "date-among-times": ("2024-02-16,FET,0.66,,binance_perp", "mixing daily and hourly"),
    "future-hour": ("2999-01-01T00:00:00Z,FET,0.66,,binance_perp", "has not closed yet"),
    "duplicate-hour": ("2024-02-15T18:00:00+00:00,FET,0.657,1500,binance_perp", "appears again"),
    "nan-close": ("2024-02-15T19:00:00Z,FET,NaN,,binance_perp", "not a finite number"),
}


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AITOKENS_CONFIG", raising=False)
    db = tmp_path / "wh.duckdb"
    ok = write(tmp_path, b"date,symbol,close\n2024-01-01,BTC,42000\n", "seed.csv")
    assert main(["import", str(ok), "--db", str(db)]) == 0
    return db


def _refused(path: Path, db: Path, capsys) -> str:
    before = db.read_bytes()
    code = main(["import", str(path), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("Error: ") and "Traceback" not in err, err
    assert db.read_bytes() == before  # not a byte written
    return err


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_broken_file_is_refused_with_a_clear_message(case, tmp_path, cli_db, capsys):
    data, needle = REFUSED[case]
    err = _refused(write(tmp_path, data), cli_db, capsys)
    assert needle in err and err.count("\n") == 1, err


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_is_named_with_its_reason(case, tmp_path, cli_db, capsys):
    line, needle = BAD_LINES[case]
    err = _refused(write(tmp_path, (GOOD + line + "\n").encode()), cli_db, capsys)
    assert needle in err, err
    assert "line 3:" in err or ("appears again" in needle and "line 2:" in err), err


@pytest.mark.parametrize("case", sorted(BAD_HOURLY_LINES))
def test_bad_hourly_line_is_named_with_its_reason(case, tmp_path, cli_db, capsys):
    line, needle = BAD_HOURLY_LINES[case]
    err = _refused(write(tmp_path, (GOOD_HOURLY + line + "\n").encode()), cli_db, capsys)
    assert needle in err, err
    assert "line 3:" in err or ("appears again" in needle and "line 2:" in err), err


def test_a_date_column_carrying_times_is_refused(tmp_path, cli_db, capsys):
    data = (GOOD + "2024-02-16T00:00:00Z,FET,0.7,,binance_spot\n").encode()
    err = _refused(write(tmp_path, data), cli_db, capsys)
    assert "line 3: a file mixing daily and hourly rows is refused: date" in err, err


# ---------------------------------------------------------------- property-based
SYMBOLS = st.sampled_from(["FET", "AGIX", "RNDR", "NVDA", "BTC", "BRK.B", "^GSPC"])
DAYS = st.integers(0, 800).map(lambda n: date(2022, 1, 1) + timedelta(days=n))
PRICE = st.floats(1e-9, 1e12, allow_nan=False, allow_infinity=False)
OPTIONAL = st.one_of(st.none(), st.floats(0, 1e15, allow_nan=False, allow_infinity=False))
ROW = st.tuples(
    SYMBOLS, DAYS, PRICE, OPTIONAL, OPTIONAL, st.sampled_from(["", "binance_spot", "nasdaq"])
)
ROWS = st.lists(ROW, min_size=1, max_size=25, unique_by=lambda r: (r[0], r[1]))
FORM = st.fixed_dictionaries(
    {
        "encoding": st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
        "newline": st.sampled_from(["\n", "\r\n"]),
        "blank_every": st.sampled_from([0, 3]),
        "upper_header": st.booleans(),
    }
)
HYP = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def render(rows, form, bad: dict[int, tuple[str, str]] | None = None) -> tuple[bytes, list[int]]:
    """CSV bytes for ``rows`` and the file line number of each row."""
    header = "date,symbol,close,volume_usd,market_cap,venue"
    lines, numbers = [header.upper() if form["upper_header"] else header], []
    for i, (symbol, day, close, volume, cap, venue) in enumerate(rows):
        if form["blank_every"] and i % form["blank_every"] == 0:
            lines.append("")
        cells = {
            "date": day.isoformat(),
            "symbol": symbol.lower(),
            "close": repr(close),
            "volume_usd": "" if volume is None else repr(volume),
            "market_cap": "" if cap is None else repr(cap),
            "venue": venue,
        }
        if bad and i in bad:
            column, value = bad[i]
            cells[column] = value
        lines.append(",".join(cells[c] for c in header.split(",")))
        numbers.append(len(lines))
    text = form["newline"].join(lines) + form["newline"]
    return text.encode(form["encoding"]), numbers


@pytest.fixture(scope="module")
def memory_warehouse():
    con = duckdb.connect()
    migrate(con)
    yield con
    con.close()


@HYP
@given(rows=ROWS, form=FORM)
def test_any_valid_file_imports_exactly(rows, form, memory_warehouse):
    data, _ = render(rows, form)
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), data)
        parsed = read_price_csv(path)
        con = memory_warehouse
        con.execute("DELETE FROM imported_daily")
        import_prices(
            con,
            parsed.frame,
            path=path,
            rows_read=parsed.rows_read,
            exact_duplicates=parsed.exact_duplicates,
        )
    got = sorted(
        con.execute(
            "SELECT symbol, date, close, volume_usd, market_cap, source FROM imported_daily"
        ).fetchall()
    )

    def nan_none(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    want = sorted((s, d, c, v, m, venue or "csv") for s, d, c, v, m, venue in rows)
    assert [tuple(nan_none(x) for x in r) for r in got] == want
    assert parsed.rows_read == len(rows)


BAD_CELLS = st.sampled_from(
    [
        ("close", "nan"),
        ("close", "inf"),
        ("close", "-1"),
        ("close", "0"),
        ("close", "abc"),
        ("close", ""),
        ("close", '"0,5"'),
        ("volume_usd", "-3"),
        ("market_cap", "1e999"),
        ("date", "2024-13-45"),
        ("date", "15/02/2024"),
        ("date", ""),
        ("symbol", ""),
        ("symbol", '"FET;DROP TABLE x"'),
        ("venue", '"a b"'),
    ]
)


@HYP
@given(rows=ROWS, form=FORM, data=st.data())
def test_bad_cells_are_named_by_exact_line_and_nothing_passes(rows, form, data):
    chosen = data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))
    bad = {i: data.draw(BAD_CELLS) for i in chosen}
    raw, numbers = render(rows, form, bad)
    with tempfile.TemporaryDirectory() as folder, pytest.raises(CsvValidationError) as info:
        read_price_csv(write(Path(folder), raw))
    assert sorted(line for line, _ in info.value.problems) == sorted(numbers[i] for i in bad)
    assert isinstance(info.value, InputError)
