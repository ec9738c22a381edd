"""Repair notes: a repair of the file's format only is silent to the student and listed for the instructor."""

from __future__ import annotations

import json

import nbformat

from autograder.feedback import render
from autograder.notebooks import build_submission, nbgrader_meta
from autograder.repair import Reference, is_format_only, load_submission, repair
from autograder.store import NotebookResult, Result
from conftest import ROOT

RELEASED = ROOT / "exercises" / "01-losses" / "losses.ipynb"


def colab_download() -> bytes:
    """A right answer as Colab saves it: nbformat 4.0, no cell ids, Colab metadata, kernelspec without language."""
    data = json.loads(nbformat.writes(build_submission("01-losses")))
    data["nbformat_minor"] = 0
    data["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    data["metadata"]["colab"] = {"provenance": []}
    for cell in data["cells"]:
        del cell["id"]
        cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
        cell["metadata"]["id"] = "colab-id"
    return json.dumps(data).encode()


def feedback_notes(repairs: list[str], reference: Reference) -> str:
    notebook = NotebookResult("losses", repairs=repairs)
    return render(Result("s1", "01-losses", notebooks=[notebook]), notebook, reference, None, {}, set())


def test_colab_format_repairs_are_silent_and_structural_ones_are_not():
    """Is every repair of a Colab download format-only and left out of the feedback, while a deleted test cell's
    repair keeps its note (and only that one is shown)?"""
    reference = Reference.from_notebook(RELEASED)
    nb, done = load_submission(colab_download())
    done += repair(nb, reference)
    assert done and all(is_format_only(note) for note in done), done
    assert "had to repair" not in feedback_notes(done, reference)

    nb = build_submission("01-losses")
    del nb.cells[[nbgrader_meta(c).get("grade_id") for c in nb.cells].index("test_softmax")]
    structural = repair(nb, reference)
    assert structural and not any(is_format_only(note) for note in structural)
    page = feedback_notes(done + structural, reference)
    assert "had to repair" in page and "test_softmax" in page and "Colab metadata" not in page
