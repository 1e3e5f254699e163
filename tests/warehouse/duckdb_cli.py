"""A real DuckDB 1.5 command-line client for the compatibility tests.

The ``duckdb-cli`` package from PyPI (the official CLI binary, 1.5.x) is installed with uv into
its own virtual environment under the user cache, once per machine (a file lock serialises the
install across pytest-xdist workers). When the package registry cannot be reached the tests that
need it skip, saying so.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLI_SPEC = "duckdb-cli==1.5.*"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aitokens-tests" / "duckdb-cli-1.5"


def duckdb15() -> Path:
    """Path of the DuckDB 1.5 CLI binary, installed on first use; skips when unreachable."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot install the duckdb-cli 1.5 package")
    root = _cache_root()
    root.parent.mkdir(parents=True, exist_ok=True)
    binary = root / "bin" / "duckdb"
    with open(root.parent / ".duckdb-cli.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            steps = (
                [uv, "venv", "--quiet", "--allow-existing", str(root)],
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(root / "bin" / "python"),
                    CLI_SPEC,
                ],
            )
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    pytest.skip(
                        f"cannot install {CLI_SPEC} from the package registry "
                        f"(is it reachable?): {done.stderr.strip().splitlines()[-1:]}"
                    )
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("v1.5."), version.stdout
    return binary


def run_sql(binary: Path, db_file: Path, sql: str) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` with the DuckDB CLI on ``db_file`` opened read-only (CSV output)."""
    return subprocess.run(
        [str(binary), "-readonly", "-csv", "-bail", str(db_file), "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
    )
