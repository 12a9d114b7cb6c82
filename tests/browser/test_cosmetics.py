"""Issue 16, cosmetics: one name for a "*" dimension on both sides, every output-shape formula on screen
at 1280 px, docstrings with their code marked (no raw backticks), the receptive-field recurrence typeset
with KaTeX, and a None default that says what it stands for."""

import pytest

from .helpers import config_url, open_view, wait_js

pytestmark = pytest.mark.browser


def chips(page, kind: str) -> list[str]:
    return page.locator(f"#diagram g.tensor-{kind} text.chip-text").evaluate_all("els => els.map(e => e.textContent)")


def test_star_dimensions_have_one_name_on_both_sides(page):
    # ReLU said "*₁=4 *₂=6" for its input and "*0=4 *1=6" for its output
    open_view(page, {"layer": {"type": "ReLU"}, "inputs": [{"shape": [4, 6]}]})
    assert chips(page, "input") == chips(page, "output") == ["*₁=4", "*₂=6"]
    formulas = page.locator("#formula-list").inner_text()
    assert "*0" not in formulas and "*1" not in formulas
    # one "*" dimension keeps the plain name
    open_view(page, {"layer": {"type": "ReLU"}, "inputs": [{"shape": [5]}]})
    assert chips(page, "input") == chips(page, "output") == ["*=5"]


def test_every_output_shape_formula_is_on_screen_at_1280(page):
    conv = {
        "layer": {
            "type": "Conv2d",
            "in_channels": 3,
            "out_channels": 8,
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "dilation": 2,
        },
        "inputs": [{"shape": [1, 3, 9, 9]}],
    }
    open_view(page, conv)
    page.evaluate("window.scrollTo(0, 0)")
    items = page.locator("#formula-list li")
    assert items.count() == 4  # N, C_out, H_out, W_out
    lst = page.locator("#formula-list")
    assert lst.evaluate("e => e.scrollHeight <= e.clientHeight + 1")  # nothing hidden below a scroll
    last = items.last.bounding_box()
    assert "W" in items.last.inner_text()
    assert last["y"] + last["height"] <= 800  # W_out's formula is in the 1280×800 viewport
    panel = page.locator("#formula-panel").bounding_box()
    assert last["y"] + last["height"] <= panel["y"] + panel["height"]


def test_docstrings_show_code_not_backticks(page):
    open_view(
        page,
        {"layer": {"type": "BasicLinear", "input_features": 4, "output_features": 3}, "inputs": [{"shape": [2, 4]}]},
    )
    doc = page.locator("#form-layer .doc")
    assert "`" not in doc.inner_text()
    assert doc.locator("code").evaluate_all("els => els.map(e => e.textContent)") == ["weights", "bias"]
    assert "`" not in (page.locator('.cat-item[data-type="BasicLinear"]').get_attribute("title") or "")


def test_a_none_default_says_what_it_stands_for(page):
    open_view(page, {"layer": {"type": "MaxPool2d", "kernel_size": 2}, "inputs": [{"shape": [1, 2, 6, 6]}]})
    stride = page.locator('#layer-view [data-field="layer.stride"]')
    assert stride.locator(".hint").inner_text() == "default: kernel_size"
    assert stride.locator("input").get_attribute("placeholder") == "kernel_size"
    assert "None" not in page.locator("#form-layer").inner_text()


def test_receptive_field_recurrence_is_typeset(page, presets):
    lenet = next(p for p in presets if p["id"] == "lenet5")["request"]
    page.goto(config_url(lenet, {"view": "network", "rf": {"node": "_3", "index": [0, 2, 5, 5]}}))
    wait_js(page, "() => document.querySelectorAll('#rf-formula .katex').length === 4")
    rec = page.locator("#rf-formula .rf-recurrence .katex-html")
    assert rec.locator(".mop.op-symbol").count() >= 1  # ∏ set as KaTeX's big operator, not a glyph of the page font
    assert (
        page.locator("#rf-formula .rf-recurrence annotation")
        .text_content()
        .endswith("r_l = r_{l-1} + (k_l - 1) \\cdot d_l \\cdot \\prod_{i<l} s_i, \\quad r_0 = 1")
    )
    steps = page.locator("#rf-formula .rf-steps li")
    assert steps.count() == 3
    assert steps.nth(2).locator(".rf-step-layer").inner_text() == "3 Conv2d"
    assert "6 + (5 - 1) \\cdot 1 \\cdot 2 = 14" in steps.nth(2).locator("annotation").text_content()
    assert page.locator("#rf-formula .rf-size").inner_text() == "size 14 × 14"
