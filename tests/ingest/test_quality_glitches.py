"""A vendor's bad print (the fake CoinGecko's answer glitched mid-history) is quarantined with
its reason, and the rest of the ingest run goes on."""

from __future__ import annotations

import duckdb

from tests.ingest.test_ingestion_faults import CHART, VICTIM, options


def _quarantine(db) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT asset_id, source, check_name, value FROM quarantined_points ORDER BY 1"
        ).fetchall()
    finally:
        con.close()


def test_a_vendor_spike_is_quarantined_and_the_run_goes_on(env):
    env.cg.inject(CHART, kind="glitch_x100", times=1)
    summary = env.run(options())
    assert summary.status == "completed" and VICTIM not in summary.skipped
    rows = _quarantine(env.db)
    assert [(a, s, c) for a, s, c, _ in rows] == [(VICTIM, "coingecko", "spike")]
    assert [n for n in summary.notes if n.startswith("quarantined ")], summary.notes


def test_a_vendor_zero_is_set_aside_with_a_note_and_the_run_goes_on(env):
    """CoinGecko's parser already drops a 0 price with a note (the row never reaches the
    warehouse, so the views cannot see it); the gate finds nothing else to quarantine."""
    env.cg.inject(CHART, kind="glitch_zero", times=1)
    summary = env.run(options())
    assert summary.status == "completed" and VICTIM not in summary.skipped
    assert f"{VICTIM}: 1 daily points with a price of 0 dropped" in summary.notes
    assert _quarantine(env.db) == []


def test_a_clean_vendor_run_quarantines_nothing(env):
    summary = env.run(options())
    assert summary.status == "completed"
    assert _quarantine(env.db) == []
