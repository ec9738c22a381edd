"""Sphinx extension of the course website: every file a page loads is served by the site itself.

1. MathJax comes from npm (``package.json``; ``make book`` runs ``npm ci``) and is copied into
   ``_static/mathjax/``; ``_config.yml`` points ``mathjax_path`` there instead of Sphinx's default CDN.
2. A static interactive figure (:mod:`dlcourse.widgets`) arrives as HTML holding every state as a ``data:`` PNG.
   Each state is written once to ``_images/dlcw/<hash>.png`` and the page refers to it by URL, so a page stays
   small and the browser fetches only the states a reader looks at.
3. A page that would still load a script, stylesheet, image or frame from another host is reported as a warning,
   which fails the build (``-W``): the site must render with no internet.
4. Thebe (live code through Binder) is switched off: the launch buttons open Colab and JupyterHub instead, its
   library would come from a CDN, and sphinx-thebe writes its configuration script twice into every page, a
   JavaScript error ("Identifier 'THEBE_JS_URL' has already been declared").
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

logger = logging.getLogger(__name__)

# What MathJax's tex-mml-chtml component loads: the combined file, TeX extensions loaded on demand, the CHTML
# fonts, and the accessibility and menu components (with the speech rule engine) its context menu offers.
MATHJAX_PARTS = ["tex-mml-chtml.js", "input", "output/chtml", "a11y", "ui", "sre"]
WIDGET_IMAGES = "_images/dlcw"
_ABSOLUTE_URL = re.compile(r"^(https?:)?//", re.IGNORECASE)
_DATA_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
# Elements whose src/href the browser fetches when the page loads (links a reader follows are fine).
_EXTERNAL_LOAD = re.compile(r"<(script|img|iframe|link|source|video|audio)\b[^>]*?\b(src|href)="
                            r"[\"']((?:https?:)?//[^\"']+)", re.IGNORECASE)


def copy_mathjax(app: Sphinx) -> None:
    """Copy MathJax from node_modules into the site's _static/mathjax (skipped when that version is there)."""
    if app.builder.format != "html":
        return
    package = Path(app.srcdir) / "node_modules" / "mathjax"
    if not (package / "package.json").is_file():
        raise ExtensionError("MathJax is missing from node_modules/: run `npm ci` in the repository root "
                             "(`make book` does it).")
    version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    target = Path(app.outdir) / "_static" / "mathjax"
    stamp = target / ".version"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == version:
        return
    shutil.rmtree(target, ignore_errors=True)
    for part in MATHJAX_PARTS:
        source = package / "es5" / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    shutil.copy2(package / "LICENSE", target / "LICENSE")
    stamp.write_text(version, encoding="utf-8")


def extract_widget_images(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Replace the data: PNGs of static widget figures by files under _images/dlcw/, named by their content."""
    if app.builder.format != "html" or not hasattr(app.builder, "get_target_uri"):
        return
    page = app.builder.get_target_uri(docname)
    folder = Path(app.outdir) / WIDGET_IMAGES

    def to_file(match: re.Match) -> str:
        data = match.group(1)
        name = hashlib.sha256(data.encode("ascii")).hexdigest()[:20] + ".png"
        path = folder / name
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(data))
        return relative_uri(page, f"{WIDGET_IMAGES}/{name}")

    for raw in doctree.findall(nodes.raw):
        if "html" in raw.get("format", "").split() and 'class="dlcw"' in raw.astext():
            text = _DATA_PNG.sub(to_file, raw.astext())
            raw.children = [nodes.Text(text)]


def forbid_external_resources(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Warn (failing a -W build) about anything a page would load from outside the site."""
    external = [str(f) for f in [*context.get("script_files", []), *context.get("css_files", [])]
                if _ABSOLUTE_URL.match(str(f))]
    external += [m.group(3) for m in _EXTERNAL_LOAD.finditer(context.get("body", "") or "")]
    for url in external:
        logger.warning("page %s loads %s from outside the site; serve it from _static (see book/_ext/"
                       "course_site.py) so the site works offline", pagename, url, location=pagename)


def drop_thebe(app: Sphinx) -> None:
    """Disconnect sphinx-thebe (loaded by Jupyter Book whatever the configuration) from the build."""
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", drop_thebe)
    app.connect("builder-inited", copy_mathjax)
    app.connect("doctree-resolved", extract_widget_images)
    app.connect("html-page-context", forbid_external_resources)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
