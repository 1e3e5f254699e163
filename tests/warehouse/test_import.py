"""CSV import: validation before any write, idempotent re-import, all-or-nothing batches."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.sources.csv_import import CsvValidationError, read_price_csv
from tests.warehouse.helpers import dump_tables, read_df, write_csv
from warehouse import imports
from warehouse.db import open_warehouse
from warehouse.errors import InputError

GOOD = """
date,symbol,close,volume_usd,asset_class,venue
2024-02-14,FET,0.60,1000,ai_token,binance_spot
2024-02-15,FET,0.66,1500,ai_token,binance_spot
2024-02-16,FET,0.70,,ai_token,binance_spot
2024-02-15,NVDA,72.62,5e9,equity,nasdaq_adjusted
2024-02-16,NVDA,72.61,4e9,equity,nasdaq_adjusted
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


def test_real_panel_loads_every_row_and_reimport_changes_nothing(db_path, sora_prices_csv):
    first = load(db_path, sora_prices_csv)
    assert (first.result.inserted, first.result.updated, first.result.unchanged) == (5463, 0, 0)
    before = dump_tables(db_path)
    second = load(db_path, sora_prices_csv)
    assert (second.result.inserted, second.result.updated, second.result.unchanged) == (0, 0, 5463)
    after = dump_tables(db_path)
    # Price rows are byte-for-byte the same, ingested_at included; only a run record is added.
    assert after["imported_daily"] == before["imported_daily"]
    assert len(after["ingest_runs"]) == len(before["ingest_runs"]) + 1
    count = read_df(db_path, "SELECT count(*) AS n FROM daily_prices")["n"].iloc[0]
    assert count == 5463


def test_changed_value_is_updated_not_duplicated(db_path, tmp_path):
    load(db_path, write_csv(tmp_path / "a.csv", GOOD))
    changed = GOOD.replace("2024-02-16,FET,0.70", "2024-02-16,FET,0.71")
    report = load(db_path, write_csv(tmp_path / "b.csv", changed))
    assert (report.result.inserted, report.result.updated, report.result.unchanged) == (0, 1, 4)
    rows = read_df(
        db_path, "SELECT close FROM imported_daily WHERE symbol='FET' AND date='2024-02-16'"
    )
    assert rows["close"].tolist() == [0.71]


def test_exact_duplicate_lines_collapse(tmp_path):
    text = GOOD + "2024-02-16,FET,0.70,,ai_token,binance_spot\n"
    parsed = read_price_csv(write_csv(tmp_path / "d.csv", text))
    assert parsed.exact_duplicates == 1
    assert len(parsed.frame) == 5


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("2024-02-30,FET,0.7,,ai_token,binance_spot", "is not a YYYY-MM-DD date"),
        ("15/02/2024,FET,0.7,,ai_token,binance_spot", "is not a YYYY-MM-DD date"),
        ("2024-02-20,FET,0,,ai_token,binance_spot", "close '0' must be positive"),
        ("2024-02-20,FET,-1.5,,ai_token,binance_spot", "must be positive"),
        ("2024-02-20,FET,nan,,ai_token,binance_spot", "is not a finite number"),
        ("2024-02-20,FET,inf,,ai_token,binance_spot", "is not a finite number"),
        ("2024-02-20,FET,abc,,ai_token,binance_spot", "is not a number"),
        ("2024-02-20,FET,,,ai_token,binance_spot", "close is empty"),
        ("2024-02-20,,0.7,,ai_token,binance_spot", "symbol is empty"),
        ("2024-02-20,FET,0.7,-5,ai_token,binance_spot", "volume_usd '-5' must not be negative"),
        (
            "2024-02-16,FET,0.99,,ai_token,binance_spot",
            "appears again with different values on line(s) 7",
        ),
    ],
)
def test_bad_line_is_named_by_number_and_nothing_written(db_path, tmp_path, bad_line, reason):
    load(db_path, write_csv(tmp_path / "good.csv", GOOD))
    before = dump_tables(db_path)
    before_bytes = db_path.read_bytes()
    bad = write_csv(tmp_path / "bad.csv", GOOD + bad_line + "\n")
    with pytest.raises(CsvValidationError) as info:
        load(db_path, bad)
    message = str(info.value)
    assert reason in message
    expected_line = 4 if "appears again" in reason else 7
    assert f"line {expected_line}:" in message
    assert dump_tables(db_path) == before
    assert db_path.read_bytes() == before_bytes


def test_at_most_ten_bad_lines_are_listed(tmp_path):
    rows = "".join(f"2024-03-{d:02d},FET,-1,,ai_token,x\n" for d in range(1, 16))
    with pytest.raises(CsvValidationError) as info:
        read_price_csv(
            write_csv(
                tmp_path / "many.csv", "date,symbol,close,volume_usd,asset_class,venue\n" + rows
            )
        )
    message = str(info.value)
    assert "has 15 bad lines" in message
    assert message.count("  line ") == 10
    assert "line 2:" in message and "line 11:" in message and "line 12:" not in message
    assert "... and 5 more" in message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("symbol,close\nFET,1\n", "lacks the column(s) date"),
        ("", "is empty"),
        ("date,symbol\n2024-01-01,FET\n", "lacks the column(s) close"),
    ],
)
def test_header_problems(tmp_path, text, needle):
    with pytest.raises(InputError, match=r".*") as info:
        read_price_csv(write_csv(tmp_path / "h.csv", text) if text else _empty(tmp_path))
    assert needle in str(info.value)


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def test_bom_and_header_case_are_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffDate,Symbol,Close\n2024-02-15,fet,0.66\n".encode())
    parsed = read_price_csv(path)
    assert parsed.frame[["symbol", "close", "source", "asset_class"]].values.tolist() == [
        ["FET", 0.66, "csv", "crypto"]
    ]


def test_failure_inside_the_transaction_rolls_back_everything(db_path, tmp_path, monkeypatch):
    load(db_path, write_csv(tmp_path / "good.csv", GOOD))
    before = dump_tables(db_path)

    def explode(con, run):
        raise RuntimeError("disk fell off after the upsert")

    monkeypatch.setattr(imports, "record_run", explode)
    more = GOOD + "2024-02-17,FET,0.75,,ai_token,binance_spot\n"
    with pytest.raises(RuntimeError, match="disk fell off"):
        load(db_path, write_csv(tmp_path / "more.csv", more))
    assert dump_tables(db_path) == before


def test_a_failed_upsert_reports_its_own_error(db_path):
    """The stage's cleanup must not replace the real error with 'transaction is aborted'."""
    import duckdb

    from warehouse.db import transaction
    from warehouse.load import upsert

    bad = pd.DataFrame(
        {
            "symbol": ["FET"],
            "date": ["not a date"],
            "source": ["x"],
            "asset_class": ["ai_token"],
            "close": [1.0],
        }
    )
    with (
        open_warehouse(db_path) as con,
        pytest.raises(duckdb.ConversionException, match="not a date"),
        transaction(con),
    ):
        upsert(con, "imported_daily", bad, ["symbol", "date", "source"])
