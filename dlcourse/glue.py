"""Numbers that a chapter's text quotes, taken from its computation when the book is built (MyST-NB's glue).

A chapter computes a value, glues it under a name, and its Markdown quotes the name with the role
``{glue:text}`name``` or, formatted, ``{glue:text}`name:.1%```. The book build fills the text in from the executed
notebook, so a new library version or dataset cannot silently falsify a sentence; a quoted name that no code
glued fails the build (warnings are errors), and ``tests/test_prose_numbers.py`` checks the names before any build.

:func:`glue` writes exactly the output of ``myst_nb.glue(name, value, display=False)``, but needs no MyST-NB,
which Colab lacks. In Jupyter and Colab the glued output shows nothing: print the value as well where a reader
should see it.

    >>> accuracy = 0.9275
    >>> glue("val_accuracy", accuracy)     # the text says: validation accuracy {glue:text}`val_accuracy:.1%`
"""

from __future__ import annotations

import math
import re
from typing import Union

import numpy as np

__all__ = ["glue", "GLUE_PREFIX"]

GLUE_PREFIX = "application/papermill.record/"   # MyST-NB's MIME prefix of a glued value that is not displayed
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Gluable = Union[int, float, str]


def glue(name: str, value: Gluable | np.generic) -> None:
    """Store ``value`` under ``name`` in the cell's output, for the chapter's text to quote.

    Args:
        name: an identifier (letters, digits, underscores), unique within the chapter.
        value: a number (Python or NumPy scalar, 0-d array or tensor, finite) or a string. A format is applied
            in the text:
            ``{glue:text}`name:.2f```.

    Raises:
        ValueError: a name that is not an identifier, or a number that is not finite.
        TypeError: a value that is neither a number nor a string (an array, a tensor, None).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"glue name {name!r}: use letters, digits and underscores (the text quotes it as "
                         f"{{glue:text}}`name` or {{glue:text}}`name:format`)")
    if isinstance(value, np.generic) or (hasattr(value, "item") and getattr(value, "ndim", None) == 0):
        value = value.item()   # a NumPy scalar or a 0-d array or tensor
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"glue({name!r}, ...) takes a number or a string, not {type(value).__name__}: "
                        f"convert it first, e.g. float(x) or int(x)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"glue({name!r}, {value}): a sentence should not quote a value that is not finite")
    from IPython.display import display    # imported here: the module stays importable without IPython

    display({GLUE_PREFIX + "text/plain": repr(value)}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})
