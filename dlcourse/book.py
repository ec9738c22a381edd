"""Numbers the book's prose quotes, taken from the computation that produced them.

A chapter's Markdown quotes a computed number with MyST-NB's glue role, ``{glue:text}`name:.1%```, and the code
cell that computes it calls :func:`glue`. The website then always shows what the build computed, so a new library
version cannot silently falsify a sentence (`tests/test_prose_numbers.py` checks that every quoted number is glued
or on its list of constants).

Examples:
    >>> from dlcourse.book import glue
    >>> glue("val_accuracy", 0.6893)   # in Markdown: about {glue:text}`val_accuracy:.0%`
"""

from __future__ import annotations

import numbers


def glue(name: str, value: float) -> None:
    """Record ``value`` under ``name`` for the chapter's prose, without displaying it.

    Args:
        name: the key the Markdown refers to; unique within the chapter.
        value: a number (a NumPy or PyTorch scalar is converted to a Python number).

    Outside a book build (Colab, plain Jupyter, where MyST-NB is not installed) this does nothing: the number is
    printed by the cell that computes it, and the role shows as written.
    """
    if hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"glue({name!r}, ...) takes a number, not {type(value).__name__}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)
