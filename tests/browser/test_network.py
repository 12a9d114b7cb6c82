"""The network builder: build a network in the UI, see shapes on every edge and the parameter
totals the API reports, see the broken edge when shapes do not fit, open a layer on the input it
really receives, share a network by its link, and load every preset."""

import json
import urllib.parse
from pathlib import Path

import httpx
import pytest

from .helpers import config_url, renders, wait_js, wait_render

pytestmark = pytest.mark.browser

MLP = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {"type": "Linear", "in_features": 10, "out_features": 15},
            {"type": "ReLU"},
            {"type": "Linear", "in_features": 15, "out_features": 5},
        ],
    },
    "inputs": [{"shape": [4, 10]}],
    "seed": 0,
}


def net_renders(page) -> int:
    return int(page.evaluate("Number(document.querySelector('#network-view').dataset.renders || 0)"))


def wait_net(page, after: int = 0, state: str | None = None) -> int:
    """Wait for the network view to draw a new response (and, if given, to be in `state`)."""
    wait_js(
        page,
        """([n, state]) => {
            const v = document.querySelector('#network-view');
            return Number(v.dataset.renders || 0) > n && v.getAttribute('aria-busy') === 'false' && (!state || v.dataset.state === state);
        }""",
        [after, state],
        15_000,
    )
    return net_renders(page)


def open_net(page, config: dict) -> None:
    page.goto(config_url(config))
    wait_net(page)


def current_config(page) -> dict:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return json.loads(query["config"][0])


def current_ui(page) -> dict:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return json.loads(query["ui"][0]) if "ui" in query else {}


def svg_text(locator) -> str:
    return locator.evaluate("e => e.textContent")


def edge_shapes(page) -> list[str]:
    return page.locator("#net-diagram text.net-shape[data-to]").evaluate_all("els => els.map(e => e.textContent)")


def total_params(page) -> int:
    return int(page.locator("#net-total-params").get_attribute("data-value"))


def tree_types(page) -> list[str]:
    return page.locator("#net-tree .nt-item").evaluate_all("els => els.map(e => e.dataset.type)")


def row(page, path: str):
    return page.locator(f'#net-tree .nt-item[data-path="{path}"] > .nt-row')


def add_layer(page, layer_type: str) -> None:
    n = net_renders(page)
    page.select_option("#net-add-type", layer_type)
    page.click("#net-add")
    wait_net(page, n)


@pytest.fixture(scope="module")
def presets(base_url):
    return httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]


def test_build_a_network_in_the_ui(page, api_run):
    page.goto("/")
    wait_render(page)
    # Sequential in the catalog opens the builder with its example network.
    page.locator('.cat-item[data-type="Sequential"]').click()
    wait_net(page)
    assert page.locator("#network-view").is_visible() and page.locator("#layer-view").is_hidden()
    assert tree_types(page) == ["Linear", "ReLU", "Linear"]

    # Remove the last two layers, then add a BasicLinear: its input_features fit the (4, 15) it receives.
    for path in ["2", "1"]:
        n = net_renders(page)
        row(page, path).locator('[data-action="remove"]').click()
        wait_net(page, n)
    add_layer(page, "BasicLinear")
    editor = page.locator("#net-editor")
    assert editor.is_visible()
    assert editor.locator('[data-field="layer.input_features"] input').input_value() == "15"
    n = net_renders(page)
    editor.locator('[data-field="layer.output_features"] input').fill("7")
    wait_net(page, n, "ok")
    add_layer(page, "ReLU")
    add_layer(page, "Linear")
    assert editor.locator('[data-field="layer.in_features"] input').input_value() == "7"
    assert tree_types(page) == ["Linear", "BasicLinear", "ReLU", "Linear"]
    assert edge_shapes(page) == ["(4, 10)", "(4, 15)", "(4, 7)", "(4, 7)", "(4, 5)"]

    config = current_config(page)
    api = api_run(config)
    assert total_params(page) == api["totals"]["param_count"] == (10 * 15 + 15) + (15 * 7 + 7) + (7 * 5 + 5)
    assert page.locator("#net-table-total").get_attribute("data-value") == str(api["totals"]["param_count"])
    # Per-layer counts on the boxes, as the trace gives them.
    for t in api["trace"]:
        node = page.locator(f'#net-diagram .net-node[data-path="{t["path"]}"] .net-params')
        assert svg_text(node).replace(",", "").startswith(str(t["param_count"]))

    # Reorder: the ReLU moves up between the two linear layers, shapes still fit.
    n = net_renders(page)
    row(page, "2").locator('[data-action="up"]').click()
    wait_net(page, n, "ok")
    assert tree_types(page) == ["Linear", "ReLU", "BasicLinear", "Linear"]
    assert edge_shapes(page) == ["(4, 10)", "(4, 15)", "(4, 15)", "(4, 7)", "(4, 5)"]

    # Wrap it in a residual block: drawn as a skip connection into a ⊕, parameters unchanged.
    row(page, "1").locator(".nt-pick").click()
    n = net_renders(page)
    page.click("#net-wrap")
    wait_net(page, n, "ok")
    assert current_config(page)["layer"]["layers"][1] == {
        "type": "Residual",
        "body": [{"type": "ReLU"}],
        "shortcut": None,
    }
    assert page.locator("#net-diagram .net-group-res").count() == 1
    assert page.locator("#net-diagram .net-add").count() == 1
    assert page.locator("#net-diagram .net-skip").count() == 1
    assert page.locator('#net-diagram .net-node[data-path="1.body.0"]').count() == 1
    assert total_params(page) == api["totals"]["param_count"]


def test_shapes_that_do_not_fit_show_a_red_edge_and_the_message(page, console):
    console.allow(r"status of 422")
    open_net(page, MLP)
    row(page, "2").locator(".nt-pick").click()
    n = net_renders(page)
    page.locator('#net-child-form [data-field="layer.in_features"] input').fill("6")
    wait_net(page, n, "error")
    bad = page.locator("#net-diagram path.net-edge.bad")
    assert bad.count() == 1
    assert bad.get_attribute("data-to") == "2"
    assert svg_text(page.locator('#net-diagram text.net-shape.bad[data-to="2"]')) == "(4, 15)"
    message = page.locator("#net-error")
    assert message.is_visible()
    assert "layer 2 (Linear)" in message.inner_text() and "in_features=6" in message.inner_text()
    assert "layer 2 (Linear)" in " ".join(
        page.locator("#net-diagram .net-msg tspan").evaluate_all("els => els.map(e => e.textContent)")
    )
    assert "status-bad" in page.locator('#net-diagram .net-node[data-path="2"]').get_attribute("class")
    assert "status-bad" in page.locator('#net-tree .nt-item[data-path="2"]').get_attribute("class")
    assert page.locator("#net-table-panel tr.failed").count() == 1
    # Fixing the argument clears it.
    n = net_renders(page)
    page.locator('#net-child-form [data-field="layer.in_features"] input').fill("15")
    wait_net(page, n, "ok")
    assert page.locator("#net-diagram .net-edge.bad").count() == 0
    assert message.is_hidden()


def test_a_residual_block_whose_shapes_do_not_add_up(page, console):
    console.allow(r"status of 422")
    config = {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "Residual", "name": "res", "body": [{"type": "Linear", "in_features": 8, "out_features": 4}]}
            ],
        },
        "inputs": [{"shape": [2, 8]}],
    }
    open_net(page, config)
    assert page.locator("#network-view").get_attribute("data-state") == "error"
    assert "bad" in page.locator("#net-diagram .net-add").get_attribute("class")
    assert page.locator("#net-diagram .net-skip.status-bad").count() == 1
    assert "res" in page.locator("#net-error").inner_text()
    # A projection on the skip path, sized by the builder, makes it fit.
    row(page, "res").locator(".nt-pick").click()
    n = net_renders(page)
    page.select_option("#net-shortcut", "Linear")
    wait_net(page, n, "ok")
    assert current_config(page)["layer"]["layers"][0]["shortcut"] == {
        "type": "Linear",
        "in_features": 8,
        "out_features": 4,
    }
    assert page.locator('#net-diagram .net-node[data-path="res.shortcut"]').count() == 1


def test_drill_into_a_layer_of_lenet_and_back(page, api_run, presets, context):
    lenet = next(p for p in presets if p["id"] == "lenet5")
    page.goto("/")
    wait_render(page)
    page.locator('.cat-preset[data-preset="lenet5"]').click()
    wait_net(page, 0, "ok")
    assert total_params(page) == api_run(lenet["request"])["totals"]["param_count"] == 61706

    before = renders(page)
    page.locator('#net-diagram .net-node[data-path="3"]').click()
    wait_render(page, before)
    assert page.locator("#layer-view").is_visible() and page.locator("#network-view").is_hidden()
    assert page.locator("#form-layer .layer-type").inner_text() == "Conv2d"
    assert page.locator('#layer-view [data-field="layer.in_channels"] input').input_value() == "6"
    assert page.locator('#layer-view [data-field="inputs[0].shape"] input').input_value() == "1, 6, 14, 14"
    assert page.locator("#diagram").get_attribute("data-kind") == "blocks"
    assert page.locator("#win-drawing svg").count() == 1
    assert "(1, 6, 14, 14)" in page.locator("#drill-text").inner_text()
    assert current_ui(page)["drill"]["path"] == "3"
    # The view is the layer as it ran inside the network: its real input and weights, and a
    # script that prints that layer's output from the whole network.
    code = page.locator("#code").inner_text()
    assert "get_submodule('3')" in code and "print(captured['output'])" in code
    inside = api_run({**lenet["request"], "path": "3"})
    assert inside["inputs"][0]["shape"] == [1, 6, 14, 14]
    shown = page.locator("#tensors-body").inner_text()
    for tensor in (inside["inputs"][0], inside["output"]):
        assert f"max {tensor['summary']['max']:.3g}" in shown

    # Explain an output element from the input the layer really receives inside the network.
    # One input channel of 14 × 14 at a time (the strip holds all 6) and a 10 × 10 output: SVG cells
    assert page.locator("#win-drawing svg").get_attribute("data-cells") == "svg"
    assert page.locator("#win-drawing .chan-strip .thumb").count() == 6
    page.locator("#win-drawing rect.ocell[data-coord='0,0']").click()
    match = page.locator("#explain-body .match")
    match.wait_for()
    assert match.get_attribute("data-match") == "true"
    assert "Inside the network" in page.locator("#explain-body .drill-note").inner_text()

    # The link reopens the drill-down, with its way back.
    other = context.new_page()
    other.goto(page.url)
    wait_render(other)
    assert other.locator("#drill-bar").is_visible()
    assert other.locator('#layer-view [data-field="inputs[0].shape"] input').input_value() == "1, 6, 14, 14"
    other.close()

    n = net_renders(page)
    page.click("#drill-back")
    wait_net(page, n, "ok")
    assert page.locator("#network-view").is_visible()
    assert current_config(page)["layer"] == lenet["request"]["layer"]
    assert total_params(page) == 61706
    assert "selected" in row(page, "3").get_attribute("class")


def test_the_link_reproduces_a_network(page, context, api_run):
    open_net(page, MLP)
    add_layer(page, "Tanh")
    row(page, "0").locator(".nt-pick").click()
    n = net_renders(page)
    page.locator("#net-name").fill("fc1")
    wait_net(page, n, "ok")
    config = current_config(page)
    assert config["layer"]["layers"][0]["name"] == "fc1"
    assert current_ui(page) == {"view": "network"}

    other = context.new_page()
    other.goto(page.url)
    wait_net(other, 0, "ok")
    assert tree_types(other) == ["Linear", "ReLU", "Linear", "Tanh"]
    assert other.locator('#net-diagram .net-node[data-path="fc1"]').count() == 1
    assert edge_shapes(other) == edge_shapes(page)
    assert total_params(other) == api_run(config)["totals"]["param_count"]
    other.close()


def test_every_preset_loads_and_matches_the_api(page, presets, api_run):
    open_net(page, MLP)
    listed = page.locator("#net-preset option").evaluate_all("os => os.map(o => o.value).filter(Boolean)")
    assert listed == [p["id"] for p in presets]
    # the full-size classics run for seconds each; the small ViT (a Graph with parameter nodes) stands for them
    for p in [p for p in presets if p.get("group") != "classic" or p["id"] == "vit-tiny"]:
        n = net_renders(page)
        page.select_option("#net-preset", p["id"])
        wait_net(page, n, "ok")
        api = api_run(p["request"])
        assert total_params(page) == api["totals"]["param_count"], p["id"]
        assert current_config(page)["layer"] == p["request"]["layer"]
        assert page.locator("#net-table-panel tbody tr").count() == len(api["trace"]), p["id"]
        assert page.locator("#net-error").is_hidden()
    # the script is written after the run's answer: wait for it, not for a fixed time
    page.wait_for_function("() => document.querySelector('#net-code').textContent.startsWith('import torch')")
    with page.expect_download() as info:
        page.locator("#net-export-svg").click()
    assert info.value.suggested_filename == "network.svg"
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert "<svg" in text and "net-node" in text


def test_network_fits_a_narrow_window(page, presets):
    page.set_viewport_size({"width": 420, "height": 800})
    block = next(p for p in presets if p["id"] == "resnet-basic-block")
    open_net(page, block["request"])
    assert page.evaluate("document.documentElement.scrollWidth") <= 421
    assert page.locator("#net-diagram svg.drawing").bounding_box()["width"] <= 400


def test_network_model_is_pure(page):
    page.goto("/")
    wait_render(page)
    out = page.evaluate(
        """Promise.all([import('/static/js/net/model.js'), fetch('/api/layers').then(r => r.json())]).then(([m, catalog]) => {
            // the model decides by the catalog's facts (containers, slots, fits): it is handed the catalog
            m.setCatalog(catalog);
            const conv = catalog.layers.find(l => l.type === "Conv2d");
            const req = {layer: {type: "Sequential", layers: [
                {type: "Linear", in_features: 4, out_features: 5, name: "fc"},
                {type: "Residual", body: [{type: "Linear", in_features: 6, out_features: 5}], shortcut: null}]},
              inputs: [{shape: [2, 4]}]};
            const error = {detail: "…", error: "shape_mismatch", field: "layer.layers[1].body[0]", path: "1.body.0",
              trace: [{path: "fc", type: "Linear", input_shapes: [[2, 4]], output_shape: [2, 5], param_count: 25}]};
            const g = m.buildGraph(req, {error});
            return {
              items: m.walk(g.root).map(it => [it.path, it.status, it.inShape]),
              bad: g.bad.field,
              path: m.pathOf(req, "layer.layers[1].body[0]"),
              wrapped: m.wrapResidual(req, "layer.layers[0]").request.layer.layers[0],
              moved: m.move(req, "layer.layers[1]", -1).field,
              child: m.childRequest(req, "layer.layers[0]", [[2, 4]]),
              // which argument follows which input dimension is the catalog's fact (fit_to_input)
              fit: m.fitToInput({type: "Conv2d", in_channels: 3, out_channels: 8, kernel_size: 3}, conv, [1, 6, 14, 14]),
            };
        })"""
    )
    assert out["items"] == [
        ["", "partial", [2, 4]],
        ["fc", "ok", [2, 4]],
        ["1", "partial", [2, 5]],
        ["1.body", "partial", [2, 5]],
        ["1.body.0", "bad", [2, 5]],
    ]
    assert out["bad"] == "layer.layers[1].body[0]"
    assert out["path"] == "1.body.0"
    assert out["wrapped"] == {
        "type": "Residual",
        "name": "fc",
        "body": [{"type": "Linear", "in_features": 4, "out_features": 5}],
        "shortcut": None,
    }
    assert out["moved"] == "layer.layers[0]"
    assert out["child"] == {
        "layer": {"type": "Linear", "in_features": 4, "out_features": 5},
        "inputs": [{"shape": [2, 4]}],
    }
    assert out["fit"]["in_channels"] == 6
