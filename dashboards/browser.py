"""Headless Chromium (Playwright driving the system's browser) for the dashboard tests and the
README screenshot. Install the browser with ``apt-get install chromium`` (Debian); Playwright's
own browser downloads are not used."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from depthhints.errors import MissingDataError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    """``$CHROMIUM`` or the first Chromium on the PATH."""
    for name in (os.environ.get("CHROMIUM"), *CANDIDATES):
        found = name and shutil.which(name)
        if found:
            return found
    raise MissingDataError(
        "no Chromium found: install it (Debian: `apt-get install chromium`) or set $CHROMIUM "
        "to the browser's executable"
    )


@contextmanager
def open_page(url: str, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A headless page showing ``url`` (``file://`` or ``http://``), closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox"] if os.geteuid() == 0 else [],  # root cannot use the sandbox
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="load")
            yield page
        finally:
            browser.close()


def screenshot(url: str, path: str | Path, width: int = 1280, height: int = 900) -> Path:
    """A PNG of the page's first ``width`` × ``height`` pixels (what a laptop screen shows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_page(url, width, height) as page:
        page.screenshot(path=str(path))
    return path
