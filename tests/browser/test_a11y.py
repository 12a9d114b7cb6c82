"""Issue 11, defect 9: axe-core (vendored from npm, 4.14.1) finds no serious or critical violation
on the layer page or the network page."""

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


def serious(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; ')}`)"""
    )
    return found


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
    found = serious(page)
    assert found == [], "\n".join(found)


def test_network_page_has_no_serious_violations(page):
    page.goto(config_url(NETWORK))
    page.wait_for_selector("#net-diagram g.net-node.pickable")
    page.wait_for_selector("#net-tree .nt-pick")
    found = serious(page)
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
    found = serious(page)
    assert found == [], "\n".join(found)
    block = {
        "layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
        "inputs": [{"shape": [5, 10]}],
        "seed": 42,
    }
    open_view(page, block)
    page.wait_for_function("() => document.querySelector('#diagram').dataset.kind === 'dataflow'")
    found = serious(page)
    assert found == [], "\n".join(found)
