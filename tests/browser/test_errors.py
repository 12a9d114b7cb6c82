"""Issue 16, errors: a message sits next to the field whose edit caused it, in words (no raw error
codes on screen), and a layer opened anew shows no "before this edit"."""

import pytest

from .helpers import config_url, open_view, wait_js, wait_render
from .test_network import open_net, wait_net

pytestmark = pytest.mark.browser

CONV = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 6, 6]}],
}
CODES = ["shape_mismatch", "invalid_argument", "invalid_request", "unknown_layer", "not_explainable", "too_large"]


def field(page, path, root="#layer-view"):
    return page.locator(f'{root} [data-field="{path}"]')


def no_raw_codes(page) -> None:
    shown = page.locator("body").inner_text()
    for code in CODES:
        assert code not in shown


def box(locator) -> dict:
    return locator.bounding_box()


@pytest.fixture
def expect_422(console):
    console.allow(r"Failed to load resource: the server responded with a status of 422")


def test_a_bad_kernel_size_is_reported_at_kernel_size_in_words(page, expect_422):
    open_view(page, CONV)
    kernel = field(page, "layer.kernel_size")
    kernel.locator("input").fill("9")
    err = kernel.locator(".field-error")
    err.wait_for(state="visible")
    assert "larger than the padded input" in err.inner_text()
    assert "invalid" in kernel.get_attribute("class")
    assert kernel.locator("input").get_attribute("aria-invalid") == "true"
    # not at the input shape, far from the edit
    assert field(page, "inputs[0].shape").locator(".field-error").inner_text() == ""
    k, e = box(kernel.locator("input")), box(err)
    assert abs(e["y"] - (k["y"] + k["height"])) < 80  # right under the control that caused it
    status = page.locator("#status")
    wait_js(page, "() => document.querySelector('#status').dataset.kind === 'error'")
    assert status.inner_text() == "shapes do not fit"
    no_raw_codes(page)
    # fixed: the message goes
    kernel.locator("input").fill("3")
    wait_js(page, "() => document.querySelector('#status').dataset.kind === 'ok'")
    assert err.inner_text() == ""


def test_a_too_small_input_is_reported_at_the_input_shape(page, expect_422):
    open_view(page, CONV)
    shape = field(page, "inputs[0].shape")
    shape.locator("input").fill("1, 3, 2, 2")
    err = shape.locator(".field-error")
    err.wait_for(state="visible")
    assert "larger than the padded input" in err.inner_text()
    assert field(page, "layer.kernel_size").locator(".field-error").inner_text() == ""
    no_raw_codes(page)


def test_in_a_network_the_message_sits_at_the_edited_argument(page, console):
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    net = {
        "layer": {"type": "Sequential", "layers": [CONV["layer"], {"type": "ReLU"}]},
        "inputs": [{"shape": [1, 3, 6, 6]}],
    }
    open_net(page, net)
    page.locator("#net-tree .nt-pick").first.click()
    kernel = field(page, "layer.kernel_size", "#network-view")
    kernel.wait_for()
    kernel.locator("input").fill("9")
    err = kernel.locator(".field-error")
    err.wait_for(state="visible")
    assert "larger than the padded input" in err.inner_text()
    wait_js(page, "() => document.querySelector('#status').dataset.kind === 'error'")
    assert page.locator("#status").inner_text() == "shapes do not fit"
    no_raw_codes(page)


def test_a_drill_down_shows_no_before_this_edit(page, presets):
    # issue 16: a Conv2d opened from LeNet said "before this edit: (5, 5)" when nothing was edited
    lenet = next(p for p in presets if p["id"] == "lenet5")["request"]
    open_view(
        page,
        {
            "layer": {"type": "Conv2d", "in_channels": 6, "out_channels": 2, "kernel_size": 3},
            "inputs": [{"shape": [1, 6, 7, 7]}],
        },
    )
    page.goto(config_url(lenet))
    wait_net(page)
    before = int(page.evaluate("Number(document.querySelector('#layer-view').dataset.renders || 0)"))
    page.locator('#net-diagram .net-node[data-path="3"]').click()
    wait_render(page, before)
    assert page.locator("#shape-prev").is_hidden()
    # a layer opened anew from a network whose shapes allow an edit: an edit does show the shape before it
    net = {
        "layer": {"type": "Sequential", "layers": [CONV["layer"], {"type": "ReLU"}]},
        "inputs": [{"shape": [1, 3, 6, 6]}],
    }
    page.goto(config_url(net))
    wait_net(page)
    n = int(page.evaluate("Number(document.querySelector('#layer-view').dataset.renders || 0)"))
    page.locator('#net-diagram .net-node[data-path="0"]').click()
    n = wait_render(page, n)
    assert page.locator("#shape-prev").is_hidden()
    field(page, "layer.kernel_size").locator("input").fill("5")
    wait_render(page, n)
    prev = page.locator("#shape-prev")
    prev.wait_for(state="visible")
    assert prev.inner_text() == "before this edit: (1, 4, 4, 4)"
    # and a layer opened from the catalog starts afresh too
    n = int(page.evaluate("Number(document.querySelector('#layer-view').dataset.renders || 0)"))
    page.locator('.cat-item[data-type="Conv2d"]').click()
    wait_render(page, n)
    assert page.locator("#shape-prev").is_hidden()


def test_a_message_without_a_control_reads_without_field_paths(page, console):
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    bad = {"layer": {"type": "BasicLinear", "in_features": 4, "output_features": 3}, "inputs": [{"shape": [2, 4]}]}
    page.goto(config_url(bad))
    msg = page.locator("#form-error")
    msg.wait_for(state="visible")
    text = msg.inner_text()
    assert "has no argument 'in_features'" in text and "input_features" in text
    assert "layer." not in text  # no field path
    no_raw_codes(page)
