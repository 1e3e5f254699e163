"""Fixtures of the reliability tests: the ingestion fakes, the Prefect harness, dumps."""

from __future__ import annotations

from tests.ingest.conftest import env  # noqa: F401 - fixture reused
