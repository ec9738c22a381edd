"""Fixtures of the browser tests: the built site served on loopback, and Debian's headless Chromium driven by
Playwright with every request outside the site blocked, so a page that needs the internet fails its test.

The site is built once per test session by ``built_book`` (tests/conftest.py, the README's ``make book``).
Screenshots of the chapter pages are saved under tests/artifacts/screenshots/ (not committed).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")     # Debian's package (.ci/install-system-packages); Playwright's own
CHROMIUM_ARGS = [                        # browser download needs the internet
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run",
]
SOURCE_SUFFIXES = (".md", ".ipynb")


# -- what the site should contain, read from _toc.yml at collection time --------------------------------------

def _source(docname: str) -> Path | None:
    for suffix in SOURCE_SUFFIXES:
        if (ROOT / f"{docname}{suffix}").is_file():
            return ROOT / f"{docname}{suffix}"
    return None


def _entries(items: list[dict]) -> list[str]:
    docnames = []
    for item in items or []:
        if "file" in item:
            docnames.append(item["file"])
        if "glob" in item:
            matches = sorted(p for p in ROOT.glob(item["glob"]) if p.suffix in SOURCE_SUFFIXES)
            docnames += [p.relative_to(ROOT).with_suffix("").as_posix() for p in matches]
        docnames += _entries(item.get("sections", []))
    return docnames


def toc_docnames() -> list[str]:
    """Every page the table of contents lists, in order (``book/intro``, ``book/01-...``, ...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    docnames = [toc["root"]]
    for part in toc.get("parts", []):
        docnames += _entries(part.get("chapters", []))
    docnames += _entries(toc.get("chapters", []))
    return docnames


def chapter_docnames() -> list[str]:
    """The pages that are notebooks: chapters, which get launch buttons."""
    return [d for d in toc_docnames() if (s := _source(d)) is not None and s.suffix == ".ipynb"]


def exercise_docnames() -> list[str]:
    return [d for d in toc_docnames() if d.startswith("book/exercises/") and not d.endswith("/index")]


def pytest_generate_tests(metafunc):
    """Parametrize by page: ``toc_page`` (every page of _toc.yml), ``any_page`` (those, search and the index),
    ``chapter`` (notebook pages) and ``exercise`` (the exercise pages)."""
    pages = {
        "toc_page": toc_docnames,
        "any_page": lambda: toc_docnames() + ["search", "genindex"],
        "chapter": chapter_docnames,
        "exercise": exercise_docnames,
    }
    for name, docnames in pages.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, docnames())


# -- the site on loopback --------------------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="session")
def site(built_book: Path) -> Path:
    """The built website (_build/html)."""
    return built_book


@pytest.fixture(scope="session")
def base_url(site: Path):
    """``http://127.0.0.1:<port>/`` serving the built site, for the whole session."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


# -- the browser -----------------------------------------------------------------------------------------------

@dataclass
class PageLog:
    """What went wrong while a page loaded and ran."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return ([f"console error: {m}" for m in self.console_errors]
                + [f"failed request: {r}" for r in self.failed_requests]
                + [f"request outside the site (blocked): {r}" for r in self.blocked_requests])


# The browser lives as long as the browser tests (package scope), not the session: Playwright's sync API keeps an
# asyncio loop running in this thread, and later tests' asyncio.run() (and the hub test's own Playwright) refuse
# to start inside it.
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run .ci/install-system-packages (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def browser_contexts(browser):
    """One browser context per colour scheme, shared by the tests (a context takes half a second to make)."""
    contexts = {scheme: browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
                for scheme in ("light", "dark")}
    yield contexts
    for context in contexts.values():
        context.close()


@pytest.fixture
def open_page(browser_contexts, base_url):
    """``open_page(url_or_path, color_scheme="light") -> (page, log)``: load a page of the site and wait until
    its math is typeset and its fonts are loaded. Only the site itself (loopback, or the file:// tree) and data:
    URIs can be fetched; every other request is aborted and recorded."""
    pages = []

    def open_(target: str, color_scheme: str = "light"):
        url = target if "://" in target else base_url + target
        allowed = ("file://", "data:", "blob:") if url.startswith("file://") else (base_url, "data:", "blob:")
        log = PageLog()

        def route(request_route):
            if request_route.request.url.startswith(allowed):
                request_route.continue_()
            else:
                log.blocked_requests.append(request_route.request.url)
                request_route.abort()

        page = browser_contexts[color_scheme].new_page()
        pages.append(page)
        page.route("**/*", route)
        page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: log.console_errors.append(f"uncaught {e}"))
        page.on("requestfailed", lambda r: log.failed_requests.append(f"{r.url} ({r.failure})")
                if r.url not in log.blocked_requests else None)
        page.on("response", lambda r: log.failed_requests.append(f"{r.url} (HTTP {r.status})")
                if r.status >= 400 else None)
        page.goto(url, wait_until="load")
        wait_for_math(page)
        page.evaluate("() => document.fonts.ready.then(() => true)")   # MathJax's fonts load after typesetting
        return page, log

    yield open_
    for page in pages:
        page.close()


def wait_for_math(page) -> None:
    """Wait until MathJax (when the page loads it) has typeset the page."""
    if page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
