"""Interactive figures that work live in Jupyter/Colab and without a kernel on the course website.

One drawing function defines a figure; :func:`interactive_figure` turns it into

* a live ipywidgets view (sliders and drop-downs above an image), redrawn by the kernel on every change;
* when ``DLCOURSE_STATIC_WIDGETS=1`` (the book build sets it), instead a static HTML view holding a PNG of every
  state, switched by a few lines of inline JavaScript, so the page stays interactive with no kernel.

Both views render through the same :meth:`InteractiveFigure.render_png`, and the static view covers exactly
the values the live controls can take, so the two cannot drift apart. Jupyter and Colab display the live
view; the website shows ``text/html`` (see ``nb_mime_priority_overrides`` in ``_config.yml``). The book build
moves each state's PNG into a file of its own (``book/_ext/course_site.py``).

Example:
    >>> def draw(fig, slope, intercept):
    ...     ax = fig.subplots()
    ...     ax.plot([0, 1], [intercept, intercept + slope])
    ...     ax.set(title="A line", xlabel="x", ylabel="y")
    >>> interactive_figure(draw, {"slope": Slider(-2, 2, 0.5, 1.0), "intercept": Slider(-1, 1, 0.5, 0.0)},
    ...                    alt="A straight line with slope {slope} and intercept {intercept}")
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

from matplotlib.figure import Figure

__all__ = ["Slider", "Choice", "InteractiveFigure", "interactive_figure", "static_widgets_enabled"]

MAX_STATES = 400   # static PNGs per figure; keeps a page under a few megabytes
_ids = itertools.count(1)


def static_widgets_enabled() -> bool:
    """True when the static (kernel-free) view should be rendered: the book build sets DLCOURSE_STATIC_WIDGETS=1."""
    return os.environ.get("DLCOURSE_STATIC_WIDGETS") == "1"


@dataclass(frozen=True)
class Slider:
    """A numeric control taking the values ``min, min + step, ..., max``.

    Args:
        min, max, step: the range and the spacing of the values.
        value: the initial value (snapped to the grid).
        label: text shown next to the slider (defaults to the control's name).
        fmt: format of the value shown next to the slider.
    """

    min: float
    max: float
    step: float
    value: float
    label: str | None = None
    fmt: str = "{:.3g}"

    def values(self) -> list[float]:
        count = int(round((self.max - self.min) / self.step)) + 1
        if count < 2:
            raise ValueError(f"Slider({self.min}, {self.max}, {self.step}) has fewer than two values")
        return [round(self.min + i * self.step, 10) for i in range(count)]

    def initial_index(self) -> int:
        values = self.values()
        return min(range(len(values)), key=lambda i: abs(values[i] - self.value))

    def display(self, value: float) -> str:
        return self.fmt.format(value)


@dataclass(frozen=True)
class Choice:
    """A drop-down control. ``options`` are values, or ``(label, value)`` pairs."""

    options: Sequence[Any]
    value: Any = None
    label: str | None = None
    _pairs: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        pairs = tuple(o if isinstance(o, tuple) and len(o) == 2 else (str(o), o) for o in self.options)
        object.__setattr__(self, "_pairs", pairs)

    def values(self) -> list[Any]:
        return [value for _, value in self._pairs]

    def initial_index(self) -> int:
        values = self.values()
        return values.index(self.value) if self.value in values else 0

    def display(self, value: Any) -> str:
        return next(label for label, v in self._pairs if v == value)


Control = Union[Slider, Choice]


class InteractiveFigure:
    """A figure drawn by ``draw(fig, **values)`` for every combination of control values.

    Use :func:`interactive_figure` to create one; display it as the last expression of a cell.
    """

    def __init__(self, draw: Callable[..., None], controls: Mapping[str, Control],
                 alt: str | Callable[..., str], figsize: tuple[float, float] = (6.4, 4.0), dpi: int = 80):
        self.draw = draw
        self.controls = dict(controls)
        self.alt = alt
        self.figsize = figsize
        self.dpi = dpi
        count = 1
        for control in self.controls.values():
            count *= len(control.values())
        if count > MAX_STATES:
            raise ValueError(f"{count} combinations of control values; at most {MAX_STATES} can be shown on "
                             f"the static website. Use coarser steps or fewer options.")
        self._widget = None

    # -- shared by both views -------------------------------------------------------------------------------

    def initial_values(self) -> dict[str, Any]:
        return {name: c.values()[c.initial_index()] for name, c in self.controls.items()}

    def alt_text(self, **values: Any) -> str:
        if callable(self.alt):
            return self.alt(**values)
        shown = {name: self.controls[name].display(v) for name, v in values.items()}
        return self.alt.format(**shown)

    def render_png(self, **values: Any) -> bytes:
        """Draw the figure for one combination of values and return it as PNG bytes."""
        fig = Figure(figsize=self.figsize, dpi=self.dpi, layout="constrained")
        self.draw(fig, **values)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", facecolor="white")
        return buffer.getvalue()

    # -- live view -------------------------------------------------------------------------------------------

    def widget(self):
        """The ipywidgets view: one control per entry of ``controls`` above an image of the figure."""
        if self._widget is not None:
            return self._widget
        import ipywidgets as w

        inputs = {}
        for name, control in self.controls.items():
            description = control.label or name
            if isinstance(control, Slider):
                inputs[name] = w.FloatSlider(min=control.min, max=control.max, step=control.step,
                                             value=control.values()[control.initial_index()],
                                             description=description, continuous_update=False,
                                             readout_format=".3g", style={"description_width": "initial"})
            else:
                inputs[name] = w.Dropdown(options=list(control._pairs),
                                          value=control.values()[control.initial_index()],
                                          description=description, style={"description_width": "initial"})
        image = w.Image(value=self.render_png(**self.initial_values()), format="png")

        def update(_change=None):
            values = {name: widget.value for name, widget in inputs.items()}
            image.value = self.render_png(**values)

        for widget in inputs.values():
            widget.observe(update, names="value")
        self._widget = w.VBox([w.HBox(list(inputs.values()), layout=w.Layout(flex_flow="row wrap")), image])
        return self._widget

    # -- static view -----------------------------------------------------------------------------------------

    def static_html(self) -> str:
        """Self-contained HTML: the controls, a PNG of every state and a small script that swaps them."""
        names = list(self.controls)
        grids = [self.controls[n].values() for n in names]
        states = {}
        for indices in itertools.product(*(range(len(g)) for g in grids)):
            values = {n: grids[k][i] for k, (n, i) in enumerate(zip(names, indices))}
            png = base64.b64encode(self.render_png(**values)).decode("ascii")
            states[",".join(map(str, indices))] = ["data:image/png;base64," + png, self.alt_text(**values)]
        # Unique on the page, and the same on every build of the same notebook.
        uid = f"dlcw-{next(_ids)}-" + hashlib.sha1(repr(self.alt).encode()).hexdigest()[:8]
        initial = ",".join(str(self.controls[n].initial_index()) for n in names)
        controls_html = []
        for k, name in enumerate(names):
            control, grid = self.controls[name], grids[k]
            label = html.escape(control.label or name)
            labels = [control.display(v) for v in grid]
            start = control.initial_index()
            if isinstance(control, Slider):
                controls_html.append(
                    f'<label class="dlcw-control">{label} <input type="range" min="0" max="{len(grid) - 1}" '
                    f'step="1" value="{start}" data-index="{k}" aria-valuetext="{html.escape(labels[start])}"> '
                    f'<output>{html.escape(labels[start])}</output></label>')
            else:
                options = "".join(f'<option value="{i}"{" selected" if i == start else ""}>{html.escape(t)}'
                                  f'</option>' for i, t in enumerate(labels))
                controls_html.append(f'<label class="dlcw-control">{label} <select data-index="{k}">{options}'
                                     f'</select></label>')
        display_labels = [[self.controls[n].display(v) for v in g] for n, g in zip(names, grids)]
        payload = json.dumps({"states": states, "labels": display_labels}).replace("</", "<\\/")
        src, alt = states[initial]
        return (
            f'<div class="dlcw" id="{uid}" data-dlcw-initial="{initial}">'
            f'<div class="dlcw-controls">{"".join(controls_html)}</div>'
            f'<img class="dlcw-figure" src="{src}" alt="{html.escape(alt)}">'
            # Screen readers do not announce a changed alt text: a visually hidden live region does.
            f'<div class="dlcw-status" aria-live="polite" style="{_VISUALLY_HIDDEN}"></div>'
            f'<script type="application/json" class="dlcw-states">{payload}</script>'
            f'</div>'
            f'<script>{_STATIC_SCRIPT.replace("__UID__", uid)}</script>'
        )

    # -- display ---------------------------------------------------------------------------------------------

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = f"Interactive figure: {self.alt_text(**self.initial_values())}"
        if static_widgets_enabled():
            # The website shows only the static view: no live widget is made, so no widget state (a second copy
            # of the figure) is saved into the executed notebook and embedded in the page.
            return {"text/plain": text, "text/html": self.static_html()}
        widget = self.widget()
        if hasattr(widget, "_repr_mimebundle_"):     # ipywidgets 8
            bundle = dict(widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        else:                                        # ipywidgets 7 (Colab's) displays through _ipython_display_
            bundle = {"application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": widget.model_id}}
        bundle["text/plain"] = text
        return bundle


_VISUALLY_HIDDEN = ("position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;"
                    "clip:rect(0,0,0,0);white-space:nowrap;border:0")

# Swaps the image when a control changes; the state key is the comma-joined index of every control. After each
# change it preloads the states one step away on every control, so that the next move shows at once when the
# states are separate files (the website).
_STATIC_SCRIPT = """
(function () {
  var root = document.getElementById("__UID__");
  if (!root) return;
  var data = JSON.parse(root.querySelector(".dlcw-states").textContent);
  var img = root.querySelector(".dlcw-figure");
  var status = root.querySelector(".dlcw-status");
  var inputs = root.querySelectorAll("[data-index]");
  var loaded = {};
  function preload(key) {
    var state = data.states[key.join(",")];
    if (state && !loaded[state[0]]) { loaded[state[0]] = true; new Image().src = state[0]; }
  }
  function update() {
    var key = [];
    inputs.forEach(function (el) {
      var k = +el.dataset.index, i = +el.value;
      key[k] = i;
      var out = el.parentNode.querySelector("output");
      if (out) { out.textContent = data.labels[k][i]; el.setAttribute("aria-valuetext", data.labels[k][i]); }
    });
    var state = data.states[key.join(",")];
    if (!state) return;
    img.src = state[0]; img.alt = state[1]; status.textContent = state[1];
    key.forEach(function (i, k) {
      [i - 1, i + 1].forEach(function (j) {
        if (j >= 0 && j < data.labels[k].length) { var next = key.slice(); next[k] = j; preload(next); }
      });
    });
  }
  inputs.forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
    el.addEventListener("focus", update, { once: true });
  });
})();
"""


def interactive_figure(draw: Callable[..., None], controls: Mapping[str, Control], *,
                       alt: str | Callable[..., str], figsize: tuple[float, float] = (6.4, 4.0),
                       dpi: int = 80) -> InteractiveFigure:
    """Make an interactive figure from a drawing function.

    Args:
        draw: ``draw(fig, **values)`` draws on a fresh ``matplotlib.figure.Figure``; one keyword per control.
        controls: ``{name: Slider(...) or Choice(...)}``, in display order.
        alt: alt text for the figure, a format string over the controls' displayed values (``"slope {slope}"``)
            or a function of the values.
        figsize, dpi: size of the rendered figure.

    Returns:
        An :class:`InteractiveFigure`; make it the last expression of a cell to display it.
    """
    return InteractiveFigure(draw, controls, alt, figsize, dpi)

