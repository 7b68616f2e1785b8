"""Headless Chromium for the report tests (test_report.py, test_quality.py): the page as a reader sees it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser(tmp_path: Path):
    """Headless Chromium driven through Debian's chromedriver; skips the test when either is missing."""
    if chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not Path(driver_path).exists():
        pytest.skip("chromedriver is not installed (Debian: apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    profile = tempfile.mkdtemp(dir=tmp_path)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)
