"""Headless Chromium for the browser tests (Debian's chromium + chromedriver, driven
by Selenium): found, started with the project's flags, always quit. Where they are
not installed the test is skipped, and under CI it fails: CI must run the browser
tests, never skip them silently."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
         "--no-first-run")


def _find(name: str, fallback: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    return fallback if os.access(fallback, os.X_OK) else None


@contextmanager
def headless_chromium(window: tuple[int, int], flags: Sequence[str] = (),
                      logging: dict[str, str] | None = None) -> Iterator[Any]:
    """A Selenium Chrome driver of this window size, with more ``flags`` and
    ``goog:loggingPrefs`` ``logging``."""
    import pytest

    chromium = _find("chromium", "/usr/bin/chromium")
    chromedriver = _find("chromedriver", "/usr/bin/chromedriver")
    if not chromium or not chromedriver:
        reason = "chromium and chromedriver are not installed (bash .ci/setup installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (*FLAGS, f"--window-size={window[0]},{window[1]}", *flags):
        options.add_argument(arg)
    if logging:
        options.set_capability("goog:loggingPrefs", logging)
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        drv.set_page_load_timeout(60)
        yield drv
    finally:
        drv.quit()
