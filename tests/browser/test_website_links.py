"""The built website's files, without a browser: no broken internal link, anchor or image, and every state of
every static interactive figure is there."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.book

# Attributes whose URL the browser follows or fetches.
LINKING = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src", "iframe": "src"}


class _Page(HTMLParser):
    """The ids, the links and the static figures' states of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.states: list[str] = []
        self._in_states = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in LINKING and attrs.get(LINKING[tag]):
            self.links.append(attrs[LINKING[tag]])
        self._in_states = tag == "script" and "dlcw-states" in (attrs.get("class") or "")

    def handle_data(self, data):
        if self._in_states:
            self.states += [src for src, _alt in json.loads(data)["states"].values()]
            self._in_states = False


def _pages(site: Path) -> dict[Path, _Page]:
    pages = {}
    for path in sorted(site.rglob("*.html")):
        if path.relative_to(site).parts[0] in ("_static", "_sources"):
            continue
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path] = parser
    return pages


def test_no_broken_internal_link_or_image(site: Path):
    """Every relative link, image, script and stylesheet of every page exists; every #anchor is an id there."""
    pages = _pages(site)
    broken = []
    for path, page in pages.items():
        for link in page.links + page.states:
            url = urlparse(link)
            if url.scheme or link.startswith("//"):
                continue   # external: a link for the reader to follow (loading from outside is tested elsewhere)
            target = (path.parent / unquote(url.path)).resolve() if url.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}: {link}"
            if not target.is_file():
                broken.append(f"{where} (no such file)")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if url.fragment not in ids:
                    broken.append(f"{where} (no element with id {url.fragment!r})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_figure_states_are_files(site: Path):
    """Static interactive figures point at PNG files, one per state, not at inline data."""
    states = [s for page in _pages(site).values() for s in page.states]
    assert states, "no static interactive figure on the site"
    inline = [s[:40] for s in states if s.startswith("data:")]
    assert not inline, f"{len(inline)} states still inline (book/_ext/course_site.py did not run?)"
