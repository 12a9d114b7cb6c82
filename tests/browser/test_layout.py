"""Issue 11, defect 7: cause and effect on one screen at 1280×800 — the form, the shape diagram,
the formula and the sliding window (with its output grid) visible together; tensors and code
folded away; after an edit the previous shapes stay faintly beside the new ones."""

import pytest

from .helpers import open_view, wait_render

pytestmark = pytest.mark.browser

CONV1D = {
    "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
    "inputs": [{"shape": [6, 3, 8]}],
    "seed": 42,
}
GROUPED = {
    "layer": {
        "type": "Conv2d",
        "in_channels": 4,
        "out_channels": 4,
        "kernel_size": 3,
        "groups": 2,
        "dilation": 2,
        "padding": 1,
    },
    "inputs": [{"shape": [1, 4, 7, 7]}],
}


def box(page, sel):
    return page.evaluate(
        "s => { const r = [...document.querySelectorAll(s)].map(e => e.getBoundingClientRect());"
        " return {top: Math.min(...r.map(b => b.top)), bottom: Math.max(...r.map(b => b.bottom)),"
        " left: Math.min(...r.map(b => b.left)), right: Math.max(...r.map(b => b.right))}; }",
        sel,
    )


@pytest.mark.parametrize("config", [CONV1D, GROUPED], ids=["conv1d", "grouped-dilated-conv2d"])
def test_form_diagram_formula_and_window_fit_1280x800(page, config):
    page.set_viewport_size({"width": 1280, "height": 800})
    open_view(page, config)
    assert page.evaluate("window.scrollY") == 0
    for sel in [
        "#form-layer",
        "#diagram svg.drawing",
        "#formula-list",
        "#win-drawing rect.ocell",
        "#win-drawing rect.fcell",
        "#win-play",
    ]:
        b = box(page, sel)
        assert b["top"] >= 0 and b["bottom"] <= 800 and b["right"] <= 1280, (sel, b)
    assert page.locator("#tensors-fold .fold-toggle").get_attribute("aria-expanded") == "false"
    assert page.locator("#code-fold .fold-toggle").get_attribute("aria-expanded") == "false"
    assert (
        page.locator("#tensors-body").bounding_box() is None
        or page.locator("#tensors-fold-body").bounding_box()["height"] == 0
    )


def test_previous_shapes_stay_beside_the_new_ones(page):
    open_view(page, CONV1D)
    assert not page.locator("#shape-prev").is_visible()
    n = int(page.evaluate("document.querySelector('#layer-view').dataset.renders"))
    page.locator("#form-layer [data-field='layer.kernel_size'] input").fill("2")
    wait_render(page, n)
    prev = page.locator("#shape-prev")
    assert prev.is_visible() and "(6, 5, 5)" in prev.inner_text()
    assert "(6, 5, 7)" in page.locator("#shape-check").inner_text()
    # The fold opens on request and draws the heatmaps.
    page.locator("#tensors-fold .fold-toggle").click()
    assert page.locator("#tensors-body svg").first.is_visible()
