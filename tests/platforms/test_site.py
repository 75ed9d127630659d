"""The course site (`make test-site`, which runs `make site` first): every HTML page of `build/site`,
served over a local `http.server`, opened in Chromium. Each page loads (HTTP 200) with no console or page
error, requests nothing from another host, shows every image, and links only to pages and anchors that
exist. Every notebook of `tutorials/` has a page with a figure and its hints and solutions folded; the
landing page is the README with the series' links on the site; the math is typeset offline; the API
reference documents the library from its docstrings.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from support import BUILD, ROOT

from modlearn.series import notebooks
from modlearn.train import fit

SITE = BUILD / "site"
PAGES = sorted(
    path.relative_to(SITE).as_posix()
    for path in SITE.rglob("*.html")
    if "_static" not in path.relative_to(SITE).parts
)
NOTEBOOKS = [path.stem for path in notebooks(ROOT / "tutorials")]
LOCAL_SCHEMES = {"data", "blob", "about"}
FIGURE = re.compile(r'<img[^>]*\ssrc="[^"]*_images/[^"]+\.png"')
API_MODULES = ["modlearn"] + [
    f"modlearn.{name}"
    for name in "train data models local incubation cluster nemo bimt circuits causal scoreboard checks viz "
    "widgets results claims series".split()
]
UNLOADED_IMAGES = (
    "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
)
ANCHOR = re.compile(r'\s(?:id|name)="([^"]+)"')


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the site's files without logging each request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        """Drop the access log."""


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """The site served on a free local port for this module's tests; the server stops after them."""
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    """The ids and names that `page` (an HTML file of the site) defines."""
    return frozenset(ANCHOR.findall(page.read_text(encoding="utf-8")))


def broken_link(href: str, origin: str) -> str | None:
    """Why the same-origin link `href` (absolute) leads nowhere on the site, or None when it resolves."""
    parts = urlsplit(href)
    path = unquote(parts.path.removeprefix(urlsplit(origin).path))
    target = SITE / path / "index.html" if path.endswith("/") or not path else SITE / path
    if not target.is_file():
        return f"{href}: no file {target.relative_to(SITE)}"
    if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors(target):
        return f"{href}: no anchor #{parts.fragment} in {target.relative_to(SITE)}"
    return None


def open_page(page, url: str) -> tuple[list[str], list[str]]:
    """Load `url` until the network is idle: every URL the page requested, and the answers that failed."""
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on(
        "response",
        lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"),
    )
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.status == 200, f"{url}: HTTP {response and response.status}"
    return requested, failed


def test_site_was_built() -> None:
    """`make site` wrote the landing page, a page per notebook and the API reference."""
    expected = {"index.html", "api/index.html", *(f"tutorials/{name}.html" for name in NOTEBOOKS)}
    missing = sorted(expected - set(PAGES))
    assert not missing, (
        f"missing from {SITE}: {missing}; build it with `make site SITE_SRC=<executed notebooks>`"
    )


@pytest.mark.parametrize("path", PAGES)
def test_page(page, site_url: str, path: str) -> None:
    """The page loads locally and whole: status 200, no error, images shown, links resolve, math typeset."""
    requested, failed = open_page(page, urljoin(site_url, path))
    assert not failed, f"{path}: failed requests {failed}"
    origin = urlsplit(site_url).netloc
    remote = [
        url
        for url in requested
        if urlsplit(url).scheme not in LOCAL_SCHEMES and urlsplit(url).netloc != origin
    ]
    assert not remote, f"{path} requested other hosts: {remote}"
    unloaded = page.evaluate(UNLOADED_IMAGES)
    assert not unloaded, f"{path}: images that did not load: {unloaded}"
    hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    internal = [href for href in hrefs if urlsplit(href).netloc == origin]
    broken = [reason for href in internal if (reason := broken_link(href, site_url))]
    assert not broken, f"{path}: broken internal links: {broken}"
    untypeset = page.locator(".math:not(:has(mjx-container))").count()
    assert not untypeset, f"{path}: {untypeset} formulas not typeset by the site's MathJax"
    assert not page.log.console_errors, f"{path}: console errors {page.log.console_errors}"
    assert not page.log.page_errors, f"{path}: page errors {page.log.page_errors}"
    assert not page.log.failed_requests, f"{path}: failed requests {page.log.failed_requests}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page(page, site_url: str, name: str) -> None:
    """The notebook's page shows at least one figure and its hints and solutions folded."""
    path = SITE / "tutorials" / f"{name}.html"
    assert path.is_file(), f"no page for {name}: {path}"
    assert FIGURE.search(path.read_text(encoding="utf-8")), f"{name}: no figure (PNG output) on its page"
    open_page(page, urljoin(site_url, f"tutorials/{name}.html"))
    folds = page.locator("details")
    assert folds.count() > 0, f"{name}: no hint or solution (<details>) on its page"
    assert page.locator("details[open]").count() == 0, f"{name}: a hint or solution renders unfolded"
    assert not folds.first.locator(":scope > :not(summary)").first.is_visible(), (
        f"{name}: a fold shows its content"
    )


def test_landing_page_is_the_readme() -> None:
    """The landing page holds the README, its series table linking every notebook's page, and the figures."""
    html = (SITE / "index.html").read_text(encoding="utf-8")
    for heading in ("The series", "Measured figures", "reference run"):
        assert heading in html, f"index.html lacks the README's {heading!r}"
    unlinked = [name for name in NOTEBOOKS if f'href="tutorials/{name}.html"' not in html]
    assert not unlinked, f"index.html does not link these notebooks' pages: {unlinked}"
    local = [href for href in re.findall(r'href="([^"]*)"', html) if not urlsplit(href).scheme]
    assert not [href for href in local if ".ipynb" in href], f"index.html links notebook files: {local}"


def test_api_reference_documents_the_library(page, site_url: str) -> None:
    """autodoc wrote a page per module of the library; `fit` is on its module's page (`modlearn.train.loop`)
    with its docstring."""
    missing = [name for name in API_MODULES if f"api/{name}.html" not in PAGES]
    assert not missing, f"no API page for {missing}"
    open_page(page, urljoin(site_url, f"api/{fit.__module__}.html"))
    signature = page.locator(f'[id="{fit.__module__}.fit"]')
    assert signature.is_visible(), f"{fit.__module__}.fit is not documented on api/{fit.__module__}.html"
    summary = inspect.getdoc(fit).splitlines()[0].replace("`", "")
    assert summary in signature.locator("xpath=following-sibling::dd[1]").inner_text()
