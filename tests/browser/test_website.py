"""The built website in headless Chromium, with every request outside the site blocked.

Does every page of the table of contents load completely (no console error, no failed or outside request, every
image shown, every formula typeset), from loopback and from disk? Do the static interactive figures change
when their controls move? Do the launch links point at notebooks that exist? Does search find each chapter?
Does axe-core find no serious or critical accessibility violation, in the light and the dark theme?
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

import nbformat
import pytest

from autograder.release import needs_gpu
from autograder.course import load_config

pytestmark = [pytest.mark.browser, pytest.mark.book]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CONFIG = load_config(ROOT)


def run_axe(page) -> list[dict]:
    """axe-core's violations on the page (rules of WCAG 2.x A/AA and best practices).

    axe's colour-contrast rule checks every element holding text, and a chapter has thousands that repeat the
    same few colours: syntax-highlighting spans (a few dozen token classes) and MathJax's glyph elements (which
    inherit the colour of the text around them). Checking them all takes 15-20 s a chapter. So, first, every
    token span but the first of its class in each kind of code block is merged into the text of its block, and
    every formula but the first is replaced by its text in the same place: each colour pair is still checked
    where it occurs, in a few seconds.
    """
    page.evaluate("""() => {
        const seen = new Set();
        document.querySelectorAll('div.highlight pre span').forEach(span => {
            const key = span.className + '|' + span.closest('div.highlight').parentElement.className;
            if (seen.has(key)) span.replaceWith(...span.childNodes); else seen.add(key);
        });
        [...document.querySelectorAll('mjx-container')].slice(1).forEach(math => {
            math.textContent = math.textContent;
        });
    }""")
    page.add_script_tag(path=str(AXE))
    # preload: false -- axe would re-fetch stylesheets and resolve their @imports against the page, not the sheet.
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations'], preload: false}))
        .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))""")


def problems_on_page(page) -> list[str]:
    """Images that did not load and formulas MathJax did not typeset (or typeset as an error)."""
    broken = page.evaluate("""() => [...document.images]
        .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.getAttribute('src'))""")
    untypeset = page.evaluate("""() => [...document.querySelectorAll('span.math, div.math')]
        .filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.slice(0, 80))""")
    errors = page.evaluate("() => [...document.querySelectorAll('mjx-merror')].map(el => el.textContent)")
    return ([f"image not shown: {src}" for src in broken]
            + [f"formula not typeset: {text}" for text in untypeset]
            + [f"MathJax error: {text}" for text in errors])


def move_every_control(page) -> list[str]:
    """Move each control of each static interactive figure one step; return the figures that did not change."""
    stuck = []
    for w, widget in enumerate(page.locator(".dlcw").all()):
        figure = widget.locator("img.dlcw-figure")
        for control in widget.locator("[data-index]").all():
            before = figure.get_attribute("src")
            if control.evaluate("el => el.tagName") == "SELECT":
                count = control.locator("option").count()
                current = int(control.input_value())
                control.select_option(index=(current + 1) % count)
            else:
                at_max = control.input_value() == control.get_attribute("max")
                control.focus()
                control.press("ArrowLeft" if at_max else "ArrowRight")
            name = control.evaluate("el => el.parentNode.textContent.trim().split(/\\s+/)[0]")
            try:
                page.wait_for_function(
                    "([img, before]) => img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0",
                    arg=[figure.element_handle(), before], timeout=5000)
            except Exception:  # playwright's TimeoutError: report which control did nothing
                stuck.append(f"figure {w + 1}, control {name!r}: the figure did not change")
    return stuck


def accessibility_problems(page, scheme: str) -> list[str]:
    """Serious or critical axe-core violations; more than one h1 or a skipped heading level; an image without
    real alt text; in the dark theme, a figure without a light background."""
    found = [f"axe {v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}"
             for v in run_axe(page) if v["impact"] in ("serious", "critical")]
    levels = page.evaluate("""() => [...document.querySelectorAll('main :is(h1, h2, h3, h4, h5, h6)')]
        .filter(h => h.checkVisibility()).map(h => +h.tagName[1])""")
    if levels.count(1) != 1 or levels[0] != 1:
        found.append(f"headings {levels}: the page needs exactly one h1, first")
    found += [f"heading level jumps from h{a} to h{b}" for a, b in zip(levels, levels[1:]) if b > a + 1]
    found += [f"image without real alt text: {src}" for src in page.evaluate("""() =>
        [...document.querySelectorAll('article.bd-article img')].filter(img => {
            const alt = (img.getAttribute('alt') || '').trim();
            return !alt || /\\.(png|jpe?g|gif|svg)$/i.test(alt) || alt.includes('_images/');
        }).map(img => img.getAttribute('src'))""")]
    if scheme == "dark":
        backgrounds = page.evaluate("""() => [...document.querySelectorAll('.cell_output img, img.dlcw-figure')]
            .map(img => [img.getAttribute('src'), getComputedStyle(img).backgroundColor])""")
        for src, color in backgrounds:
            r, g, b = (int(c) for c in re.findall(r"\d+", color)[:3])
            if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.7 * 255:
                found.append(f"figure on a dark background ({color}) in the dark theme: {src}")
    return found


def _notebook(path: str) -> Path:
    notebook = ROOT / unquote(path)
    assert notebook.is_file(), f"link to {path}, which is not in the repository"
    return notebook


def check_launch_links(hrefs: list[str], notebook: str) -> list[str]:
    """Colab and JupyterHub links of a page: they must be the ones derived from _config.yml, for this notebook."""
    found = []
    colab = [h for h in hrefs if h.startswith(CONFIG.colab_url + "/")]
    hub = [h for h in hrefs if "/git-pull?" in h]
    if colab != [CONFIG.colab_link(notebook)]:
        found.append(f"Colab links {colab}, expected [{CONFIG.colab_link(notebook)}]")
    for href in colab:
        prefix = f"{CONFIG.colab_url}/github/{CONFIG.repo_slug}/blob/{CONFIG.branch}/"
        if href.startswith(prefix):
            _notebook(href.removeprefix(prefix))
    if len(hub) != 1:
        found.append(f"JupyterHub links {hub}, expected one")
    for href in hub:
        url = urlparse(href)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if f"{url.scheme}://{url.netloc}" != CONFIG.jupyterhub_url or query.get("repo") != CONFIG.repository_url \
                or query.get("branch") != CONFIG.branch:
            found.append(f"JupyterHub link {href} does not match _config.yml")
        tree = f"lab/tree/{CONFIG.repo_name}/"
        if not query.get("urlpath", "").startswith(tree):
            found.append(f"JupyterHub link {href} does not open a notebook of the repository in JupyterLab")
        elif query["urlpath"].removeprefix(tree) != notebook:
            found.append(f"JupyterHub link {href} opens {query['urlpath']}, not {notebook}")
        else:
            _notebook(query["urlpath"].removeprefix(tree))
    return found


def chapter_link_problems(page, docname: str) -> list[str]:
    """The launch menu opens this chapter's notebook in Colab (which offers a GPU exactly where the chapter trains
    with PyTorch) and on JupyterHub."""
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    notebook = f"{docname}.ipynb"
    found = check_launch_links(hrefs, notebook)
    nb = nbformat.read(_notebook(notebook), as_version=4)
    asks = nb.metadata.get("accelerator") == "GPU"
    if asks != needs_gpu(nb):
        found.append(f'{notebook}: the notebook metadata "accelerator": "GPU" is {"set" if asks else "missing"}, '
                     f'but the chapter {"does not train" if asks else "trains"} with PyTorch (run `python -m '
                     f'autograder sync`)')
    return found


def exercise_link_problems(page, docname: str) -> list[str]:
    """An exercise page links the student notebook on Colab, JupyterHub and GitHub, and names points and how to
    submit."""
    hrefs = page.evaluate("() => [...document.querySelectorAll('article.bd-article a[href]')].map(a => a.href)")
    assignment = Path(docname).name
    notebooks = sorted((ROOT / "exercises" / assignment).glob("*.ipynb"))
    if not notebooks:
        return [f"no student notebook in exercises/{assignment}"]
    notebook = notebooks[0].relative_to(ROOT).as_posix()
    found = check_launch_links(hrefs, notebook)
    if CONFIG.github_url(notebook) not in hrefs:
        found.append(f"no GitHub link {CONFIG.github_url(notebook)}")
    text = page.locator("article.bd-article").inner_text()
    if not re.search(r"\b\d+(\.\d+)? points\b", text) or "How to submit" not in text:
        found.append("the page does not state the points and how to submit")
    return found


def test_page_complete_accessible_and_launchable(open_page, site: Path, screenshots: Path, any_page: str):
    """Loads with no console error and no failed or outside request, every image shown and every formula typeset;
    passes the accessibility checks (light theme); a chapter's launch menu and an exercise page's links open
    the right notebook. Saves a screenshot of each chapter."""
    docname = any_page
    assert (site / f"{docname}.html").is_file(), f"{docname} is in _toc.yml but was not built"
    page, log = open_page(f"{docname}.html")
    found = problems_on_page(page) + log.problems()
    if (ROOT / f"{docname}.ipynb").is_file():
        page.screenshot(path=str(screenshots / f"{docname.replace('/', '_')}.jpg"), full_page=True, quality=80)
        found += chapter_link_problems(page, docname)
    elif docname.startswith("book/exercises/") and not docname.endswith("/index"):
        found += exercise_link_problems(page, docname)
    found += accessibility_problems(page, "light")
    assert not found, f"{docname}:\n" + "\n".join(found)


def test_page_accessible_in_dark_theme(open_page, any_page: str):
    """In the dark theme too: no serious axe-core violation (contrast!), figures on a light background."""
    page, _ = open_page(f"{any_page}.html", color_scheme="dark")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    found = accessibility_problems(page, "dark")
    assert not found, f"{any_page} (dark):\n" + "\n".join(found)


def test_page_works_from_disk_with_live_figures(open_page, site: Path, toc_page: str):
    """Opened as a file (no server, no internet) the page is complete, and every control of every static
    interactive figure changes the figure when it moves."""
    page, log = open_page((site / f"{toc_page}.html").resolve().as_uri())
    found = problems_on_page(page) + move_every_control(page) + log.problems()
    assert not found, f"{toc_page} from disk:\n" + "\n".join(found)


def test_site_has_interactive_figures(site: Path):
    """The course's widgets reach the website as static interactive figures (not as dead ipywidgets)."""
    chapters = {p: p.read_text(encoding="utf-8") for p in sorted((site / "book").glob("*.html"))
                if (ROOT / "book" / f"{p.stem}.ipynb").is_file()}
    pages = [p.name for p, text in chapters.items() if 'class="dlcw"' in text]
    assert pages, "no chapter page holds a static interactive figure (dlcourse.widgets.interactive_figure)"
    dead = [p.name for p, text in chapters.items() if "application/vnd.jupyter.widget-view+json" in text]
    assert not dead, f"pages showing a live ipywidget, which cannot work without a kernel: {dead}"


def test_search_finds_chapter(open_page, site: Path, chapter: str):
    """Searching for a chapter's title lists the chapter."""
    built = (site / f"{chapter}.html").read_text(encoding="utf-8")
    title = html.unescape(re.search(r"<title>(.*?) &#8212;|<title>(.*?)</title>", built).group(1) or "")
    assert title, f"{chapter}: no <title>"
    results, log = open_page(f"search.html?q={quote(title)}")
    results.locator(f'#search-results ul.search li a[href*="{chapter}.html"]').first.wait_for(timeout=15000)
    assert not log.problems(), "\n".join(log.problems())
