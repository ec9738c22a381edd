"""dlcourse.widgets: do the live and the static view cover the same values, drawn by the same function?"""

from __future__ import annotations

import base64
import html
import json
import re

import pytest

from dlcourse.widgets import MAX_STATES, Choice, Slider, interactive_figure


def draw_line(fig, slope, kind):
    ax = fig.subplots()
    xs = [x / 10 for x in range(-10, 11)]
    ax.plot(xs, [slope * x if kind == "line" else slope * x * x for x in xs])
    ax.set(title=f"{kind}, slope {slope}", xlabel="x", ylabel="y", ylim=(-2, 2))


def make_figure():
    return interactive_figure(draw_line, {"slope": Slider(-1, 1, 0.5, 0.4, label="Slope"),
                                          "kind": Choice([("a line", "line"), ("a parabola", "parabola")])},
                              alt="{kind} with slope {slope}", figsize=(3, 2), dpi=40)


def states_of(static_html: str) -> dict:
    match = re.search(r'<script type="application/json" class="dlcw-states">(.*?)</script>', static_html, re.S)
    return json.loads(match.group(1))


def test_slider_values_form_a_grid_and_snap_the_initial_value():
    slider = Slider(-1, 1, 0.5, 0.4)
    assert slider.values() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert slider.values()[slider.initial_index()] == 0.5
    with pytest.raises(ValueError):
        Slider(0, 0.1, 1, 0).values()


def test_choice_accepts_values_or_label_value_pairs():
    choice = Choice([("a line", "line"), ("a parabola", "parabola")], value="parabola")
    assert choice.values() == ["line", "parabola"]
    assert choice.initial_index() == 1
    assert choice.display("line") == "a line"
    assert Choice([1, 2]).display(2) == "2"


def test_too_many_states_are_refused():
    steps = MAX_STATES  # MAX_STATES + 1 slider values
    with pytest.raises(ValueError, match="combinations"):
        interactive_figure(draw_line, {"slope": Slider(0, steps, 1, 0), "kind": Choice(["line"])}, alt="x")


def test_static_view_holds_the_png_of_every_state_drawn_by_render_png():
    figure = make_figure()
    data = states_of(figure.static_html())
    assert len(data["states"]) == 5 * 2
    assert data["labels"] == [["-1", "-0.5", "0", "0.5", "1"], ["a line", "a parabola"]]
    for key, (src, alt) in data["states"].items():
        i, j = map(int, key.split(","))
        slope, kind = [-1.0, -0.5, 0.0, 0.5, 1.0][i], ["line", "parabola"][j]
        assert base64.b64decode(src.removeprefix("data:image/png;base64,")) == figure.render_png(slope=slope,
                                                                                              kind=kind)
        assert alt == figure.alt_text(slope=slope, kind=kind)
    # Different values draw different figures (the website test relies on the image changing).
    assert len({src for src, _ in data["states"].values()}) == 10


def test_static_view_starts_at_the_initial_values_with_labelled_controls():
    figure = make_figure()
    page = figure.static_html()
    initial = states_of(page)["states"]["3,0"]
    assert f'src="{initial[0]}"' in page
    assert f'alt="{html.escape("a line with slope 0.5")}"' in page
    assert re.search(r'<label class="dlcw-control">Slope <input type="range" min="0" max="4" step="1" value="3"',
                     page)
    assert '<option value="1">a parabola</option>' in page
    assert page.count("<script") == 2   # the states (JSON) and the script that swaps them


def test_states_json_cannot_close_its_script_element():
    figure = interactive_figure(lambda fig, word: fig.subplots().set_title(word),
                                {"word": Choice(["</script>", "ok"])}, alt="a title {word}", figsize=(2, 1), dpi=30)
    page = figure.static_html()
    inside = re.search(r'class="dlcw-states">(.*?)</script>', page, re.S).group(1)
    assert "</" not in inside
    assert states_of(page)["labels"] == [["</script>", "ok"]]


def test_website_build_gets_only_the_static_view(monkeypatch):
    monkeypatch.setenv("DLCOURSE_STATIC_WIDGETS", "1")
    bundle = make_figure()._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"] == "Interactive figure: a line with slope 0.5"


def test_jupyter_gets_the_live_widget(monkeypatch):
    monkeypatch.delenv("DLCOURSE_STATIC_WIDGETS", raising=False)
    figure = make_figure()
    bundle = figure._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" not in bundle
    controls, image = figure.widget().children
    slope, kind = controls.children
    assert (slope.min, slope.max, slope.step, slope.value) == (-1, 1, 0.5, 0.5)
    kind.value = "parabola"   # the kernel redraws through the same render_png as the static view
    assert image.value == figure.render_png(slope=0.5, kind="parabola")
