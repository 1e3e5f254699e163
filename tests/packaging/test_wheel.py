"""The wheel carries everything an installed `aitokens` needs (notebooks, SQL, templates).

Built with ``uv build --wheel`` from this checkout, installed into a fresh virtual environment
(``uv pip install``; dependencies come from uv's cache or the registry), then run from a folder
outside the repository: `aitokens import` + `aitokens report` must work from the installed files
alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO_ROOT


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=900, **kwargs)


@pytest.mark.slow  # builds and installs the wheel, then executes both report notebooks
def test_the_installed_wheel_imports_and_reports(tmp_path, sora_prices_csv):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot build the wheel")
    dist = tmp_path / "dist"
    built = _run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO_ROOT)])
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("aitokens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "warehouse/views.sql",
        "warehouse/migrations/001_core.sql",
        "flows/notebooks/sora_event_study.ipynb",
        "flows/notebooks/ai_sector.ipynb",
        "flows/notebooks/templates/aitokens_report/index.html.j2",
    } <= names
    venv = tmp_path / "venv"
    made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    assert made.returncode == 0, made.stderr
    installed = _run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)]
    )
    if installed.returncode != 0 and "resolve" in installed.stderr.lower():
        pytest.skip(f"cannot install the wheel's dependencies: {installed.stderr[-300:]}")
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "elsewhere"  # not the checkout: nothing may come from the repository
    work.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AITOKENS_DB")
    }
    env["AITOKENS_HOME"] = str(work)
    exe = str(venv / "bin" / "aitokens")
    imported = _run([exe, "import", str(sora_prices_csv)], cwd=work, env=env)
    assert imported.returncode == 0, imported.stderr
    assert (work / "data" / "aitokens.duckdb").exists()
    reported = _run([exe, "report", "--out", str(work / "reports")], cwd=work, env=env)
    assert reported.returncode == 0, reported.stderr
    assert (work / "reports" / "sora_event_study.html").stat().st_size > 10_000
    assert (work / "reports" / "ai_sector.html").exists()
