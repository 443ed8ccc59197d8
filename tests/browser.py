"""Headless Chromium (Debian's `chromium`) for the page tests: the DOM after scripts ran, the console, a screenshot."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# what Chromium itself says in a VM without a GPU: not the page's doing
NOISE = ("GL Driver Message", "WebGL has been deprecated", "GPU stall")


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") or os.environ.get("LAB_REQUIRE_CHROMIUM") == "1":  # set by `make test` as root
            pytest.fail("chromium is not installed (scripts/setup.sh --test installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def render(target: str | Path, screenshot: Path | None = None, height: int = 1600) -> tuple[str, list[str]]:
    """(DOM after 10 s of virtual time, the page's console lines) of a URL or an HTML file; a PNG too if asked."""
    url = target if isinstance(target, str) else target.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        common = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                  "--virtual-time-budget=10000", f"--window-size=1300,{height}"]
        out = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=False)
        assert out.returncode == 0, out.stderr[-2000:]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            shot = subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, text=True,
                                  timeout=180, check=False)
            assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    console = [line for line in out.stderr.splitlines()
               if re.search(r":CONSOLE[:(]", line) and not any(n in line for n in NOISE)]
    return out.stdout, console


def screenshots_folder(tmp_path: Path) -> Path:
    """Where the page tests keep their screenshots: $LAB_SCREENSHOTS when set (CI artifacts), else tmp_path."""
    folder = Path(os.environ.get("LAB_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
