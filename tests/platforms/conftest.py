"""The platform checks (`make test-browser`, `make test-site`, `make test-binder`): a real Chromium, driven
by playwright, on JupyterLab and on the built site. Not part of `make test` (they need Debian's
`chromium` and minutes); `.ci/run` runs them after the series.

They run where asked: the make targets set `MODLEARN_PLATFORMS=1`, and there a missing playwright or
Chromium is a failure with the command that installs it. Anywhere else (`pytest` from the root) they are
skipped, with the target that runs them: each takes minutes and Debian's Chromium.

Playwright never downloads a browser here: it drives the system's Chromium (`CHROMIUM`, default the
first of `chromium`, `chromium-browser` on PATH).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ASKED = os.environ.get("MODLEARN_PLATFORMS") == "1"
TARGETS = {"test_jupyterlab.py": "test-browser", "test_site.py": "test-site", "test_binder.py": "test-binder"}
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def pytest_collection_modifyitems(config, items) -> None:
    """Mark this folder's tests `platform`; skip them unless `MODLEARN_PLATFORMS=1` asks for them."""
    for item in items:
        path = Path(item.path)
        if path.parent != HERE:
            continue
        item.add_marker(pytest.mark.platform)
        if not ASKED:
            target = TARGETS.get(path.name, "test-browser")
            item.add_marker(pytest.mark.skip(reason=f"platform check: run it with `make {target}`"))


def chromium_executable() -> str:
    """The system Chromium's path (`CHROMIUM` overrides); fails with the command that installs it."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        pytest.fail("no Chromium found: install Debian's (`apt-get install chromium`) or set CHROMIUM=/path")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One headless Chromium for the session, closed (with playwright's driver) at the end."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make platform-deps`")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageLog:
    """Console errors, uncaught page errors and failed requests seen by one page."""

    def __init__(self, page) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfailed", lambda request: self.failed_requests.append(request.url))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser context and page (its `.log` is a `PageLog`), closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    new_page.log = PageLog(new_page)
    try:
        yield new_page
    finally:
        context.close()
