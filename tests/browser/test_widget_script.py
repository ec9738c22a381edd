"""The static view's script (dlcourse.widgets) in Chromium, on a bare page: each control move shows exactly the
state the live widget would draw, and updates the value shown, the alt text and the screen-reader status."""

from __future__ import annotations

import json

import pytest

from dlcourse.widgets import Choice, Slider, interactive_figure

pytestmark = pytest.mark.browser


def draw(fig, slope, kind):
    ax = fig.subplots()
    ax.plot([0, 1], [0, slope if kind == "line" else -slope])
    ax.set(title=f"{kind} {slope}", xlabel="x", ylabel="y")


def test_controls_show_the_matching_state(open_page, tmp_path):
    figure = interactive_figure(draw, {"slope": Slider(0, 2, 1, 1), "kind": Choice(["line", "flipped"])},
                                alt="a {kind} of slope {slope}", figsize=(2, 1.5), dpi=30)
    page_file = tmp_path / "figure.html"
    page_file.write_text(f"<!doctype html><html lang='en'><title>t</title><body>{figure.static_html()}</body>"
                         f"</html>", encoding="utf-8")
    page, log = open_page(page_file.as_uri())
    states = json.loads(page.locator("script.dlcw-states").text_content())["states"]
    expected = {key: src for key, (src, _alt) in states.items()}

    def shown():
        return page.evaluate("""() => { const r = document.querySelector('.dlcw');
            return [r.querySelector('img').getAttribute('src'), r.querySelector('img').alt,
                    r.querySelector('output').textContent, r.querySelector('input').getAttribute('aria-valuetext'),
                    r.querySelector('.dlcw-status').textContent]; }""")

    assert shown()[:3] == [expected["1,0"], "a line of slope 1", "1"]
    slider = page.locator("input[type=range]")
    slider.focus()
    slider.press("ArrowRight")
    assert shown() == [expected["2,0"], "a line of slope 2", "2", "2", "a line of slope 2"]
    page.locator("select").select_option("1")
    assert shown()[:2] == [expected["2,1"], "a flipped of slope 2"]
    slider.press("Home")
    assert shown()[:3] == [expected["0,1"], "a flipped of slope 0", "0"]
    assert not log.problems(), log.problems()
