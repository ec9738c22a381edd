"""The chapters' prose quotes computed numbers only through glue, so the text cannot drift from the code.

A sentence such as "about 69% of the images" goes stale as soon as a library, a dataset or a seed changes what
the code computes. Chapters therefore quote a computed number with MyST-NB's ``{glue:text}`key:format``` role,
filled in at build time from ``dlcourse.glue.glue("key", value)`` in the cell that computes it (issue 11).
These tests read the committed notebooks (no execution, well under a second): every glue reference must name a
key that the same chapter glues, and every approximate quantity left in the Markdown ("about 5,000", "87 %") must
be a true constant or a hypothetical, listed below with the reason. The book build (-W) then fails if a glued key
is not computed, and tests/test_book.py checks that no unresolved role reaches the website.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9]*.ipynb"))

GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([^`]+)`")
GLUE_CALL = re.compile(r"\bglue\(\s*[\"']([^\"']+)[\"']")
# Where a number is not quoted from a computation: code spans, display and inline math (hand derivations).
NOT_PROSE = re.compile(r"`[^`]*`|\$\$.*?\$\$|\$[^$\n]*\$", re.DOTALL)
# "about 0.92", "roughly 3", "≈ 2.3", "87 %", "10%", "87 percent".
NUMBER = r"\d+(?:[.,]\d+)*"
QUANTITY = re.compile(rf"(?:\b(?:about|roughly|around|approximately|nearly|almost)\s+|≈\s*){NUMBER}"
                      rf"|{NUMBER}\s?(?:%|percent\b)")

# (chapter, text of the match) -> why it is not a computed result. A number that a cell computes does not belong
# here: glue it.
CONSTANTS = {
    ("01-ml-recipe", "10%"): "chance level with 10 balanced classes, 1/10",
    ("01-ml-recipe", "about 1.2"): "an input value asked about, not a result",
    ("01-ml-recipe", "99%"): "a hypothetical model in a question",
    ("01-ml-recipe", "70%"): "a hypothetical model in a question",
    ("03-gradients", "about 16"): "float64 carries about 16 significant digits (a property of the format)",
    ("04-gradient-descent", "20%"): "the share of patients held out, a choice",
    ("04-gradient-descent", "about 0.5"): "the spread of the s5 feature, a property of the dataset's units",
    ("04-gradient-descent", "about 3"): "advice: factors of about 3 between tried learning rates",
    ("05-neural-networks", "nearly 0"): "a limit: a saturated activation's derivative tends to 0",
    ("06-backpropagation", "nearly 0"): "a limit: the sigmoid's derivative tends to 0 for large |x|",
    ("07-numpy-net", "about 3"): "advice: factors of about 3 to 10 between tried learning rates",
    ("07-numpy-net", "99 %"): "a hypothetical model in a question",
    ("07-numpy-net", "80 %"): "a hypothetical model in a question",
    ("07-numpy-net", "85 %"): "exercise 04's pass bar, a fixed rule",
    ("08-pytorch", "87%"): "exercise 05's pass bar, a fixed rule",
    ("09-cnn", "about 5,000"): "parameters of the two convolutions, 160 + 4,640 = 4,800, fixed by the architecture",
    ("09-cnn", "90%"): "exercise 06's pass bar, a fixed rule",
    ("10-practical-tricks", "100%"): "the training accuracy a memorising network reaches, by definition of memorising",
}


def markdown_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "markdown"]


def code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "code"]


def glue_keys(role_texts: list[str]) -> set[str]:
    # "key:.1%" -> "key"; a key from another document ("path::key") is not this chapter's.
    return {text.rsplit(":", 1)[0] if ":" in text.replace("::", "") else text for text in role_texts}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_glue_reference_is_glued_by_the_chapter(path):
    """Does each {glue:text}`key` in the prose name a key that a code cell of the same chapter passes to glue()?"""
    referenced = glue_keys([m for cell in markdown_cells(path) for m in GLUE_ROLE.findall(cell)])
    gluing = "\n".join(cell for cell in code_cells(path) if "glue(" in cell)
    missing = sorted(key for key in referenced if f'"{key}"' not in gluing and f"'{key}'" not in gluing)
    assert not missing, f"{path.name}: the prose quotes {missing}, which no code cell glues"
    glued = GLUE_CALL.findall(gluing)
    assert len(glued) == len(set(glued)), f"{path.name} glues twice: {sorted({n for n in glued if glued.count(n) > 1})}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_quoted_quantities_are_glued_or_constants(path):
    """Is every approximate number left in the prose ("about 69%") a listed constant rather than a stale result?"""
    stale = []
    for cell in markdown_cells(path):
        prose = NOT_PROSE.sub(" ", GLUE_ROLE.sub(" ", cell))
        for match in QUANTITY.finditer(prose):
            if (path.stem, match.group().strip()) not in CONSTANTS:
                line = prose[max(0, match.start() - 60):match.end() + 30].replace("\n", " ")
                stale.append(f"{match.group()!r} in ...{line}...")
    assert not stale, (f"{path.name} quotes numbers that are neither glued nor listed constants; glue them from "
                       f"the cell that computes them (dlcourse.glue.glue), or list a true constant in CONSTANTS:\n"
                       + "\n".join(stale))


def test_the_constants_list_has_no_stale_entries():
    """Does every allow-listed quantity still occur in its chapter (so that the list cannot hide new numbers)?"""
    found = set()
    for path in CHAPTERS:
        for cell in markdown_cells(path):
            prose = NOT_PROSE.sub(" ", GLUE_ROLE.sub(" ", cell))
            found |= {(path.stem, m.group().strip()) for m in QUANTITY.finditer(prose)}
    assert not set(CONSTANTS) - found, f"listed but no longer in the prose: {sorted(set(CONSTANTS) - found)}"


def test_the_checks_catch_a_stale_number_and_a_missing_glue(tmp_path):
    """Would a bare "about 69%" and a role without its glue() call be reported? (The tests can fail.)"""
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["About 69% right; {glue:text}`acc:.1%`"]},
                          {"cell_type": "code", "metadata": {}, "source": ["print(1)"], "outputs": [],
                           "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99-example.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(AssertionError, match="acc"):
        test_every_glue_reference_is_glued_by_the_chapter(path)
    with pytest.raises(AssertionError, match="69%"):
        test_quoted_quantities_are_glued_or_constants(path)
