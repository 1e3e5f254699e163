"""The pipeline's control flow with the heavy steps stubbed: what runs, what is recorded, and
which caveat reaches the report; once through Prefect, once without."""

from __future__ import annotations

from pathlib import Path

import pytest

import flows.pipelines.ingest_flows as ingest_flows
import flows.services.pipeline as pl
from flows.pipelines.daily_pipeline import pipeline
from flows.services.report import ReportSummary


@pytest.fixture
def stubs(monkeypatch, tmp_path):
    calls: dict[str, list] = {"study": [], "report": []}

    def study(db, event, out, return_kind="simple"):
        calls["study"].append((db, event))
        return "stub study", "st-stub"

    def report(db, event, out, caveats, study=None):
        assert study == "st-stub"  # the report renders the study the pipeline just stored
        calls["report"].append(list(caveats))
        return ReportSummary(Path(db), Path(out), html=[Path(out) / "x.html"])

    monkeypatch.setattr(pl, "stored_study_step", study)
    monkeypatch.setattr(pl, "report_step", report)
    return calls


def test_plain_run_with_a_working_ingest_has_no_caveat(stubs, tmp_path):
    s = pl.run_pipeline(tmp_path / "w.duckdb", out=tmp_path, ingest=lambda db: "completed: 3 calls")
    assert [(x.name, x.status) for x in s.steps] == [
        ("ingest", "ok"),
        ("study", "ok"),
        ("report", "ok"),
    ]
    assert stubs["report"] == [[]]
    assert s.reports == [str(tmp_path / "x.html")]


def test_plain_run_records_a_failed_ingest_then_reports_and_fails(stubs, tmp_path):
    def broken(db):
        raise ConnectionError("no route to api.coingecko.com")

    with pytest.raises(pl.PipelineFailedError) as info:
        pl.run_pipeline(tmp_path / "w.duckdb", out=tmp_path, ingest=broken)
    s = info.value.summary
    assert [(x.name, x.status) for x in s.steps] == [
        ("ingest", "failed"),
        ("study", "ok"),
        ("report", "ok"),
    ]
    assert stubs["report"][0][0].startswith(
        "data may be stale: ingest failed: ConnectionError: no route to api.coingecko.com."
    )
    assert str(info.value).startswith(
        "ingest failed: ConnectionError: no route to api.coingecko.com; the study and report "
        "were built on the data already held"
    )
    assert info.value.exit_code == 1


def test_offline_run_skips_ingest_and_says_so(stubs, tmp_path):
    def never(db):
        raise AssertionError("ingest must not run offline")

    s = pl.run_pipeline(tmp_path / "w.duckdb", out=tmp_path, offline=True, ingest=never)
    assert [(x.name, x.status) for x in s.steps][0] == ("ingest", "skipped")
    assert stubs["report"][0][0].startswith("ingest skipped (--offline)")


def test_prefect_flow_runs_ingest_as_subflow_and_fails_after_the_report(
    stubs, tmp_path, monkeypatch, prefect_harness
):
    from prefect import flow

    @flow(name="daily_ingest")
    def failing_ingest(db: str | None = None):
        raise RuntimeError("CoinGecko answered 503 three times")

    monkeypatch.setattr(ingest_flows, "daily_ingest", failing_ingest)
    with pytest.raises(pl.PipelineFailedError) as info:
        pipeline(db=str(tmp_path / "w.duckdb"), out=str(tmp_path))
    assert [(x.name, x.status) for x in info.value.summary.steps] == [
        ("ingest", "failed"),
        ("study", "ok"),
        ("report", "ok"),
    ]
    assert stubs["report"][0][0].startswith(
        "data may be stale: ingest failed: RuntimeError: CoinGecko answered 503 three times."
    )


def test_the_schedule_serves_the_pipeline():
    from flows.pipelines.schedule import daily_flow

    assert daily_flow() is pipeline
    assert daily_flow().name == "pipeline"
