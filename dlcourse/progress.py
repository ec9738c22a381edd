"""A progress bar that never writes to stderr (nbgrader scores a test cell that writes to stderr 0).

:func:`progress` is tqdm's live notebook bar in Jupyter and Colab, and a single final line of text on stdout when
the book build executes the notebook (``DLCOURSE_STATIC_WIDGETS=1``) or in a terminal. The chapters' training
loops (:func:`dlcourse.torch_utils.fit`) use it; it is also importable from :mod:`dlcourse.nnviz` and
:mod:`dlcourse.torch_utils`, where the chapters found it before it had a module of its own.
"""

from __future__ import annotations

import io
import sys
from typing import Any, Iterable

__all__ = ["progress"]


class _FinalLine(io.TextIOBase):
    """A file for tqdm that keeps only the bar's latest state and prints it once, as one line, when closed."""

    def __init__(self, stream):
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for part in text.replace("\n", "\r").split("\r"):
            if part.strip():
                self.last = part
        return len(text)

    def flush(self) -> None:
        pass

    def emit(self) -> None:
        if self.last:
            self.stream.write(self.last.rstrip() + "\n")
            self.stream.flush()
            self.last = ""


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable: Iterable | None = None, **kwargs: Any):
    """A tqdm progress bar (same arguments as ``tqdm.tqdm``) that never writes to stderr.

    In Jupyter and Colab it is tqdm's live notebook bar. When the book build executes a notebook
    (``DLCOURSE_STATIC_WIDGETS=1``) or outside a notebook, the bar is written to stdout once, in its final
    state, when it closes: a static page shows one clean line instead of a hundred redraws.

    Example:
        >>> for epoch in progress(range(3), desc="epochs"):
        ...     pass
    """
    from dlcourse.widgets import static_widgets_enabled

    if _in_notebook() and not static_widgets_enabled():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(iterable, **kwargs)
    from tqdm.std import tqdm as text_tqdm

    sink = _FinalLine(sys.stdout)
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("ascii", False)
    kwargs.setdefault("ncols", 100)
    bar = text_tqdm(iterable, file=sink, **kwargs)
    close = bar.close

    def close_and_emit() -> None:
        close()
        sink.emit()

    bar.close = close_and_emit
    return bar
