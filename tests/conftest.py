"""Shared fixtures: where the real data lives, and fresh warehouse files.

Real data sits beside the repo in ``../shared`` (override with ``AITOKENS_SHARED``).
Tests that need it skip with a clear reason when it is absent; CI always has it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.nodeid import coerce_node_id

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """The shared folder: ``$AITOKENS_SHARED`` or ``../shared`` next to the repo."""
    return Path(os.environ.get("AITOKENS_SHARED", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} is absent (set AITOKENS_SHARED to its path)")
    return root


@pytest.fixture(scope="session")
def sora_prices_csv(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "sora2024" / "prices.csv"
    if not path.is_file():
        pytest.skip(f"real Sora panel {path} is absent (set AITOKENS_SHARED)")
    return path


@pytest.fixture(scope="session")
def sora_hourly_csv(shared_dir: Path) -> Path:
    """Real hourly closes (Binance perpetuals) around Sora: ts = the hour's UTC close."""
    path = shared_dir / "data" / "sora2024" / "hourly.csv"
    if not path.is_file():
        pytest.skip(f"real hourly panel {path} is absent (set AITOKENS_SHARED)")
    return path


@pytest.fixture(scope="session")
def estudy2_dir(shared_dir: Path) -> Path:
    path = shared_dir / "reference" / "estudy2"
    if not (path / "expected.json").is_file():
        pytest.skip(f"estudy2 reference {path} is absent (set AITOKENS_SHARED)")
    return path


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Each test starts with an empty secret registry (flows.redact): a key one test planted
    (some are one letter long) must not mask the texts another test asserts on."""
    from flows.redact import forget_secrets

    forget_secrets()
    yield
    forget_secrets()


@pytest.fixture(autouse=True)
def _no_rolling_hourly_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daily ingest keeps a rolling hourly history by default (AITOKENS_HOURLY_DAYS=90);
    the suites that pin daily call counts and tables run with it off. The hourly tests
    (tests/sources/test_coingecko_hourly.py) turn it on."""
    monkeypatch.setenv("AITOKENS_HOURLY_DAYS", "0")


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse path in a fresh temporary folder; ``AITOKENS_DB`` points at it."""
    path = tmp_path / "wh" / "aitokens.duckdb"
    monkeypatch.setenv("AITOKENS_DB", str(path))
    return path


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for the whole test session, shared by every suite (starting
    one costs ~15 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


_REPORT_RUN_FIXTURES = frozenset({"real_run", "fake_run", "any_run", "fake_warehouse"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One xdist worker per module, and one for every test of the shared report runs.

    Module- and session-scoped fixtures (a whole pipeline with its reports, a backfill against
    the fakes, a Prefect server) cost tens of seconds each; under ``pytest -n 2 --dist
    loadgroup`` a test sent to the other worker would build them a second time. The tests of
    the session report runs (``real_run``/``fake_run``) share one group across modules.
    """
    for item in items:
        if _REPORT_RUN_FIXTURES & set(getattr(item, "fixturenames", ())):
            group = "report_runs"
        else:
            group = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
        if os.environ.get("PYTEST_XDIST_WORKER") and "@" not in item.nodeid:
            # pytest-xdist 3.8 marks the group by rewriting ``item._nodeid``, which pytest 9
            # no longer reads (the id lives in ``item._id``): add the suffix it would add.
            item._id = coerce_node_id(f"{item.nodeid}@{group}")
