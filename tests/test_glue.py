"""dlcourse.glue: does it write what MyST-NB's glue writes, so the book fills the text in, and refuse bad values?"""

from __future__ import annotations

import numpy as np
import pytest

import dlcourse.glue
from dlcourse.glue import glue


@pytest.fixture
def displayed(monkeypatch) -> list[tuple[dict, dict]]:
    """What glue passes to IPython's display: (bundle, metadata) per call."""
    calls = []

    def fake_display(bundle, raw=False, metadata=None):
        assert raw, "glue must display a raw MIME bundle"
        calls.append((bundle, metadata))
    monkeypatch.setattr("IPython.display.display", fake_display)
    return calls


@pytest.mark.parametrize("value", [0.9275, np.float64(0.9275), np.int64(77), 46, "10,000"])
def test_output_is_myst_nb_glue_output(displayed, monkeypatch, value):
    """The same MIME bundle and metadata as myst_nb.glue(name, value, display=False), NumPy scalars as Python
    numbers (so that a format such as :.1% applies)."""
    myst_glue = pytest.importorskip("myst_nb.ext.glue")
    expected = []
    monkeypatch.setattr(myst_glue, "ipy_display",
                        lambda bundle, raw=False, metadata=None: expected.append((bundle, metadata)))
    python_value = value.item() if isinstance(value, np.generic) else value
    myst_glue.glue("name_1", python_value, display=False)
    glue("name_1", value)
    assert displayed == expected


def test_text_role_formats_the_glued_value(displayed):
    """{glue:text}`name:.1%` and {glue:text}`name` render as the text expects (MyST-NB's own formatting)."""
    variables = pytest.importorskip("myst_nb.core.variables")
    glue("accuracy", np.float64(0.9275))
    glue("count", "10,000")
    accuracy_text = displayed[0][0][dlcourse.glue.GLUE_PREFIX + "text/plain"]
    count_text = displayed[1][0][dlcourse.glue.GLUE_PREFIX + "text/plain"]
    assert variables.format_plain_text(accuracy_text, ".1%") == "92.8%"
    assert variables.format_plain_text(count_text, "") == "10,000"


@pytest.mark.parametrize("name", ["", "two words", "name:format", "doc::name", "1st", None])
def test_a_name_the_text_could_not_quote_is_refused(displayed, name):
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        glue(name, 1.0)
    assert not displayed


@pytest.mark.parametrize("value, error", [(np.array([1.0, 2.0]), TypeError), (None, TypeError), (True, TypeError),
                                          (float("nan"), ValueError), (np.float32("inf"), ValueError)])
def test_a_value_a_sentence_cannot_quote_is_refused(displayed, value, error):
    with pytest.raises(error):
        glue("value", value)
    assert not displayed
