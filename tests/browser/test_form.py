"""The generated form: edits update the view without a reload, errors appear at their field, and
the address bar is a link that reopens the same view."""

import json
import urllib.parse

import pytest

from .helpers import config_url, open_view, renders, wait_render

pytestmark = pytest.mark.browser

CONV2D = {
    "layer": {
        "type": "Conv2d",
        "in_channels": 3,
        "out_channels": 4,
        "kernel_size": 3,
        "stride": 2,
        "padding": 1,
        "dilation": 2,
    },
    "inputs": [{"shape": [1, 3, 9, 9]}],
    "seed": 7,
}


def field(page, path):
    return page.locator(f'[data-field="{path}"]')


def current_config(page) -> dict:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return json.loads(query["config"][0])


def test_form_shows_defaults_types_and_bounds(page):
    open_view(page, CONV2D)
    stride = field(page, "layer.stride")
    assert "int or 2 ints" in stride.locator(".ptype").inner_text()
    assert "≥ 1" in stride.locator(".ptype").inner_text()
    assert field(page, "layer.groups").locator("input").get_attribute("placeholder") == "1"
    assert "default 1" in field(page, "layer.groups").locator(".hint").inner_text()
    assert field(page, "layer.in_channels").locator(".hint").inner_text() == "required"
    assert field(page, "layer.bias").locator("input").is_checked()
    assert field(page, "inputs[0].shape").locator("input").input_value() == "1, 3, 9, 9"
    assert "(N, C_in, H_in, W_in)" in page.locator("#form-inputs").inner_text()
    assert page.locator('#form-run select[name="device"] option').first.get_attribute("value") == ""


def test_edits_update_the_view_without_reload(page):
    open_view(page)
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#diagram .m-y rect.cell").count() == 25
    before = renders(page)
    field(page, "layer.out_features").locator("input").fill("7")
    wait_render(page, before)
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#diagram .m-y rect.cell").count() == 5 * 7
    assert page.locator("#shape-check").inner_text().endswith("(5, 7)")
    assert page.locator('#formula-list .formula[data-value="7"]').count() == 1
    assert current_config(page)["layer"]["out_features"] == 7
    # The input shape editor drives the batch dimension.
    before = renders(page)
    field(page, "inputs[0].shape").locator("input").fill("3, 10")
    wait_render(page, before)
    assert page.locator("#diagram .m-y rect.cell").count() == 3 * 7
    assert current_config(page)["inputs"] == [{"shape": [3, 10]}]
    # Seed changes the numbers, not the shapes.
    out_before = page.locator("#code").inner_text()
    before = renders(page)
    field(page, "seed").locator("input").fill("3")
    wait_render(page, before)
    assert "torch.manual_seed(3)" in page.locator("#code").inner_text()
    assert page.locator("#code").inner_text() != out_before


def test_local_error_is_shown_at_the_field_without_a_request(page):
    open_view(page, CONV2D)
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/api/run" in r.url else None)
    kernel = field(page, "layer.kernel_size")
    kernel.locator("input").fill("0")
    page.wait_for_timeout(500)
    assert kernel.locator(".field-error").inner_text() == "each value must be ≥ 1"
    assert "invalid" in kernel.get_attribute("class")
    assert kernel.locator("input").get_attribute("aria-invalid") == "true"
    assert not page.locator("#stale-banner").is_hidden()
    assert requests == []
    before = renders(page)
    kernel.locator("input").fill("3")
    wait_render(page, before)
    assert kernel.locator(".field-error").inner_text() == ""
    assert page.locator("#stale-banner").is_hidden()


def test_api_error_is_shown_at_the_field_it_names(page, console):
    # Chromium logs every 4xx response; this one is the point of the test.
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    open_view(page)
    page.wait_for_timeout(100)
    field(page, "layer.in_features").locator("input").fill("7")
    # a mismatch between in_features and the input's shape: shown at the side just edited (issue 16)
    edited = field(page, "layer.in_features")
    edited.locator(".field-error").wait_for(state="visible")
    assert "in_features=7" in edited.locator(".field-error").inner_text()
    assert "invalid" in edited.get_attribute("class")
    assert field(page, "inputs[0].shape").locator(".field-error").inner_text() == ""
    assert page.locator("#status").get_attribute("data-kind") == "error"
    # A server-side constructor check lands at the argument.
    page.goto(
        config_url(
            {
                "layer": {
                    "type": "Conv1d",
                    "in_channels": 3,
                    "out_channels": 5,
                    "kernel_size": 4,
                    "padding": "same",
                    "stride": 2,
                },
                "inputs": [{"shape": [1, 3, 8]}],
            }
        )
    )
    err = field(page, "layer.padding").locator(".field-error")
    err.wait_for(state="visible")
    assert err.inner_text()


def test_shared_link_reproduces_the_view(page, context):
    open_view(page, CONV2D)
    before = renders(page)
    field(page, "layer.out_channels").locator("input").fill("2")
    wait_render(page, before)
    page.locator('#win-drawing rect.ocell[data-coord="1,2"]').click()
    page.locator("#explain-body .match").wait_for()
    link = page.url
    assert current_config(page)["layer"]["out_channels"] == 2

    other = context.new_page()
    other.goto(link)
    wait_render(other)
    other.locator("#explain-body .match").wait_for()
    for sel in ["#form-layer", "#formula-list", "#shape-check", "#code", "#repr", "#params-table"]:
        assert other.locator(sel).inner_text() == page.locator(sel).inner_text(), sel
    assert other.locator("#explain-body .match").get_attribute("data-torch") == page.locator(
        "#explain-body .match"
    ).get_attribute("data-torch")
    assert other.locator("#explain-panel").get_attribute("data-index") == "0,0,1,2"

    def out(p):
        return p.locator("#diagram svg.drawing").get_attribute("aria-label")

    assert out(other) == out(page)
    other.close()


def test_bad_links_fall_back_with_a_notice(page):
    page.goto("/?config=%7Bbroken")
    wait_render(page)
    assert "could not be read" in page.locator("#notice").inner_text()
    assert page.locator("#form-layer .layer-type").inner_text() == "Linear"
    page.goto(config_url({"layer": {"type": "NoSuchLayer"}}))
    wait_render(page)
    assert "NoSuchLayer" in page.locator("#notice").inner_text()
    page.locator("#notice-close").click()
    assert page.locator("#notice").is_hidden()


def test_pasted_data_replaces_the_random_input(page, api_run):
    open_view(page)
    page.locator('[data-field="inputs[0]"] details.paste summary').click()
    before = renders(page)
    data = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]
    field(page, "inputs[0].data").locator("textarea").fill(json.dumps(data))
    wait_render(page, before)
    assert field(page, "inputs[0].shape").locator("input").is_disabled()
    assert current_config(page)["inputs"] == [{"data": data}]
    assert page.locator("#shape-check").inner_text().endswith("(2, 5)")
    field(page, "inputs[0].data").locator("textarea").fill("[[1, 2")
    assert "not valid JSON" in field(page, "inputs[0].data").locator(".field-error").inner_text()
