"""The HTML reports open in headless Chromium without errors; screenshots are kept for people.

Screenshots go to the test's temporary folder, or to ``$AITOKENS_SCREENSHOT_DIR`` when set (to
keep them for people); never into the repository's reports/. Without Chromium the test skips
locally and FAILS in CI (the CI script installs Debian's `chromium`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
CONSOLE_ERROR = re.compile(
    r"Uncaught|ERROR:CONSOLE|:CONSOLE\(\d+\)\].*(Error|error)|Failed to load resource"
)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it (see .ci/run)")
        pytest.skip(reason)
    return exe


@pytest.mark.parametrize("stem", ["sora_event_study", "ai_sector"])
def test_report_opens_in_headless_chromium(any_run, stem, tmp_path):
    exe = chromium()
    html = any_run.out / f"{stem}.html"
    shots = Path(os.environ.get("AITOKENS_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"{any_run.name}_{stem}.png"
    shot.unlink(missing_ok=True)
    common = [exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    proc = subprocess.run(
        [
            *common,
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            "--window-size=1400,4000",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    assert errors == [], errors
    assert shot.is_file() and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")

    dom = subprocess.run(
        [*common, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    img = re.compile(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{5000,}"')
    figures = img.findall(dom.stdout)
    assert len(figures) == len(img.findall(html.read_text())) >= 2
