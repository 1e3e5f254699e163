"""Hostile identifiers and values through every library entry point that builds SQL: values are
bound as parameters, identifiers come from the catalog and are quoted, so a hostile string is
only ever data (or refused), and the warehouse is unchanged."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reliability.helpers import canonical_dump
from warehouse import studies
from warehouse.db import open_warehouse, transaction
from warehouse.errors import InputError, WarehouseError
from warehouse.export import export_warehouse
from warehouse.ingest_state import read_coverage
from warehouse.load import upsert
from warehouse.queries import price_panel

HOSTILE = [
    "FET'); DROP TABLE coins;--",
    'x" ; DROP TABLE imported_daily; --',
    "' OR '1'='1",
    "NVDA\x00; DELETE FROM imported_daily",
    "🙂'||(SELECT count(*) FROM coins)||'",
]


@pytest.fixture
def warehouse(tmp_path):
    db = tmp_path / "wh.duckdb"
    frame = pd.DataFrame(
        {
            "symbol": ["FET", "NVDA"],
            "date": [pd.Timestamp("2024-02-15").date()] * 2,
            "source": ["csv", "csv"],
            "asset_class": ["ai_token", "equity"],
            "close": [0.66, 72.6],
        }
    )
    with open_warehouse(db) as con, transaction(con):
        upsert(con, "imported_daily", frame, ["symbol", "date", "source"])
    return db


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_values_are_data(evil, warehouse, tmp_path):
    before = canonical_dump(warehouse)
    with open_warehouse(warehouse) as con:
        assert price_panel(con, [evil], sources=[evil]).empty
        assert len(price_panel(con, ["FET", evil])) == 1
        assert (
            read_coverage(
                con, evil, table="coin_daily", series_column="coin_id", time_column="date"
            )
            == {}
        )
        assert studies.load_series(con, [(evil, evil)]).empty
        with pytest.raises(WarehouseError):
            studies.find_event(con, evil)
        with pytest.raises(WarehouseError):
            studies.load_study(con, evil)
    with pytest.raises(InputError), open_warehouse(warehouse) as con, transaction(con):
        upsert(con, evil, pd.DataFrame({"a": [1]}), ["a"])  # not a table: refused
    with pytest.raises(InputError), open_warehouse(warehouse) as con, transaction(con):
        upsert(con, "imported_daily", pd.DataFrame({evil: [1], "symbol": ["A"]}), ["symbol"])
    with pytest.raises(WarehouseError):
        export_warehouse(warehouse, tmp_path / "out", tables=[evil])
    assert canonical_dump(warehouse) == before


def test_hostile_value_stored_through_a_binding_round_trips(warehouse):
    """A symbol that looks like SQL is stored verbatim, not executed (the CSV importer refuses
    such symbols before they get here; the loader alone must still be safe)."""
    evil = HOSTILE[0]
    frame = pd.DataFrame(
        {
            "symbol": [evil],
            "date": [pd.Timestamp("2024-02-16").date()],
            "source": [evil],
            "asset_class": ["x"],
            "close": [1.0],
        }
    )
    with open_warehouse(warehouse) as con, transaction(con):
        upsert(con, "imported_daily", frame, ["symbol", "date", "source"])
    with open_warehouse(warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM coins").fetchall()[0][0] >= 0
        rows = con.execute(
            "SELECT symbol, source FROM imported_daily WHERE symbol = ?", [evil]
        ).fetchall()
    assert rows == [(evil, evil)]
