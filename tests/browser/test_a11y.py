"""Issue 11, defect 9, and issue 16: axe-core (vendored from npm, 4.14.1) finds no serious or critical
violation, and no heading out of order, on the layer page, the network page, and the deeper states the
browser tests reach (a receptive field drawn, layers greyed after a failure, a drill-down, an explained
element, a catalog search)."""

from pathlib import Path

import pytest

from .helpers import config_url, open_view

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"

CONV1D = {
    "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
    "inputs": [{"shape": [6, 3, 8]}],
    "seed": 42,
}
LSTM = {"layer": {"type": "LSTM", "input_size": 10, "hidden_size": 20}, "inputs": [{"shape": [5, 3, 10]}]}
# big grids: the sliding window and the heatmaps painted on canvases
CONV64 = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 64, 64]}],
}
NETWORK = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
            {"type": "ReLU"},
            {
                "type": "Residual",
                "body": [{"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "padding": 1}],
                "shortcut": {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 1},
            },
            {"type": "Flatten"},
            {"type": "Linear", "in_features": 6 * 6 * 6, "out_features": 10},
        ],
    },
    "inputs": [{"shape": [1, 1, 8, 8]}],
}


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    # axe is injected as an inline script, which the page's CSP (script-src 'self') rightly refuses;
    # the audit is of the page's markup, so these contexts alone let the injected script run
    return {**browser_context_args, "bypass_csp": True}


def audit(page) -> list[str]:
    """Serious and critical violations, and headings out of order (moderate in axe, but a screen reader's
    outline of the page): none may remain in a state the browser tests reach (issue 16)."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical' || v.id === 'heading-order')
             .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; ')}`)"""
    )


def test_axe_version_is_the_pinned_one(page):
    page.goto("/")
    page.add_script_tag(path=str(AXE))
    assert page.evaluate("axe.version") == "4.14.1"


@pytest.mark.parametrize("config", [CONV1D, LSTM, CONV64], ids=["conv1d", "lstm", "conv2d-64-canvas"])
def test_layer_page_has_no_serious_violations(page, config):
    open_view(page, config, {"pinned": {"index": [0, 0, 1], "output": None}} if config is CONV1D else None)
    if config is CONV1D:
        page.wait_for_function("() => document.querySelector('#explain-panel').dataset.index === '0,0,1'")
    if config is CONV64:
        page.wait_for_function("() => document.querySelector('#win-drawing svg.drawing')?.dataset.painted === 'true'")
        assert page.locator("#win-drawing svg.drawing").get_attribute("data-cells") == "canvas"
    found = audit(page)
    assert found == [], "\n".join(found)


def test_network_page_has_no_serious_violations(page):
    page.goto(config_url(NETWORK))
    page.wait_for_selector("#net-diagram g.net-node.pickable")
    page.wait_for_selector("#net-tree .nt-pick")
    found = audit(page)
    assert found == [], "\n".join(found)


# Issue 16: deeper states, each audited as the browser tests reach it.
LENET_UI = {"view": "network", "rf": {"node": "_3", "index": [0, 2, 5, 5]}}
BROKEN = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
            {"type": "Flatten"},
            {"type": "Linear", "in_features": 7, "out_features": 10},
            {"type": "ReLU"},
            {"type": "Linear", "in_features": 10, "out_features": 2},
        ],
    },
    "inputs": [{"shape": [1, 1, 8, 8]}],
}


@pytest.fixture(scope="module")
def lenet_request(base_url):
    import httpx

    presets = httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]
    return next(p for p in presets if p["id"] == "lenet5")["request"]


def test_after_a_receptive_field_no_serious_violations(page, lenet_request):
    from .helpers import wait_js

    page.goto(config_url(lenet_request, LENET_UI))
    wait_js(page, "() => document.querySelector('#net-graph g.df-node.rf-target')?.dataset.id === '_3'")
    page.locator('#rf-nodes figure[data-id="input_1"]').wait_for()
    found = audit(page)
    assert found == [], "\n".join(found)
    # effective mode redraws every grid
    page.check('input[name="rf-mode"][value="effective"]')
    found = audit(page)
    assert found == [], "\n".join(found)


def test_network_with_unreached_layers_has_no_serious_violations(page, console):
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    from .helpers import wait_js

    page.goto(config_url(BROKEN))
    wait_js(page, "() => document.querySelector('#network-view').dataset.state === 'error'")
    assert page.locator("#net-tree .status-unreached").count() == 2  # the ReLU and Linear after the failure
    found = audit(page)
    assert found == [], "\n".join(found)


def test_drill_down_and_explain_have_no_serious_violations(page, lenet_request):
    from .helpers import wait_js, wait_render
    from .test_network import wait_net

    page.goto(config_url(lenet_request))
    wait_net(page)
    page.locator('#net-diagram .net-node[data-path="3"]').click()
    wait_render(page, 0)
    page.locator("#drill-bar").wait_for()
    found = audit(page)
    assert found == [], "\n".join(found)
    # explain an element of the drilled layer from the keyboard: its output grid, Enter
    page.locator("#win-drawing g.out-grid").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    wait_js(page, "() => document.querySelector('#explain-panel').dataset.index === '0,0,0,1'")
    found = audit(page)
    assert found == [], "\n".join(found)


def test_catalog_search_has_no_serious_violations(page):
    open_view(page)
    page.fill("#catalog-search", "basic")
    page.locator(".cat-results").wait_for()
    found = audit(page)
    assert found == [], "\n".join(found)
    page.fill("#catalog-search", "no such layer")
    found = audit(page)
    assert found == [], "\n".join(found)


def test_window_strip_hover_and_dataflow_diagram_have_no_serious_violations(page):
    """The sliding window's channel strip with an output's window lit, and a custom module's
    dataflow drawn in the layer view."""
    conv = {
        "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
        "inputs": [{"shape": [1, 3, 6, 6]}],
        "seed": 0,
    }
    open_view(page, conv)
    page.locator("#win-play").click()
    page.locator("#win-drawing .chan-strip .thumb[data-channel='1']").click()
    page.wait_for_function("() => document.querySelector('#win-drawing g.frame').dataset.channel === '1'")
    page.locator("#win-drawing rect.ocell[data-coord='1,1']").hover()
    assert page.locator("#win-drawing .win-lit rect.lit-win").count() == 9
    found = audit(page)
    assert found == [], "\n".join(found)
    block = {
        "layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
        "inputs": [{"shape": [5, 10]}],
        "seed": 42,
    }
    open_view(page, block)
    page.wait_for_function("() => document.querySelector('#diagram').dataset.kind === 'dataflow'")
    found = audit(page)
    assert found == [], "\n".join(found)


def test_graph_tools_no_serious_violations(page, base_url):
    """Issue 19: the dataflow graph's zoom viewport, its tools, the cost legend and the selected node's
    details beside it (tests/browser/test_graph_nav.py drives them)."""
    import httpx

    from .helpers import wait_js

    presets = httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]
    net = next(p for p in presets if p["id"] == "tutorial-residual-net")["request"]
    for cost in ["params", "memory"]:
        page.goto(config_url(net, {"view": "network", "graphCost": cost, "graphNode": "block1_fc1"}))
        wait_js(page, "() => document.querySelector('#net-graph-details')?.innerText.includes('block1.fc1')")
        page.locator("#net-graph-legend").wait_for(state="visible")
        found = audit(page)
        assert found == [], "\n".join(found)
