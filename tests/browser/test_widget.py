"""The explore() widget's ES module in a page, anywidget's model API stubbed, its kernel in this process.

It loads the page's own modules from the ``_modules`` trait, draws the network's flow, dataflow graph and
summary from the kernel's answers, and a click on a layer runs it inside the network with the module's
own parameters (weights=True): the numbers shown are the trained layer's.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from layer_explorer import to_config
from layer_explorer.widget import ExplorerWidget
from tests.browser.widget_host import open_widget

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 4, 3), nn.Flatten())
    with torch.no_grad():
        net[3].weight.mul_(10.0)  # "trained": far from any seeded initialisation
    x = torch.randn(1, 3, 12, 12)
    body = to_config(net, x, weights=True)
    parameters = body.pop("parameters")
    widget = ExplorerWidget(body, title="TinyNet", note="weights=True: trained", parameters=parameters)
    return net, widget


def test_widget_draws_the_network_and_a_trained_layer(page, trained):
    net, widget = trained
    open_widget(page, widget)
    host = page.locator(".layer-explorer-widget")
    assert host.locator(".lew").get_attribute("data-ready") == "true"
    assert host.locator(".lew-title").inner_text() == "TinyNet"
    assert "trained" in host.locator(".lew-note").inner_text()
    # the flow: one box per layer, the shapes on the edges are torch's
    drawing = host.locator(".net-drawing")
    drawing.wait_for()
    label = drawing.get_attribute("aria-label")
    assert "input (1, 3, 12, 12)" in label and "output (1, 64)" in label
    for path in ("0", "1", "2", "3", "4"):
        assert drawing.locator(f"[data-path='{path}']").count() >= 1
    assert "(1, 8, 6, 6)" in drawing.text_content()
    totals = host.locator(".lew-totals").inner_text()
    assert f"{sum(p.numel() for p in net.parameters()):,}" in totals

    # a layer as it ran: its weight's statistics are the trained module's, not a seeded initialisation's
    drawing.locator("[data-path='3']").first.click()
    box = host.locator(".lew-layer")
    page.wait_for_function(
        "document.querySelector('.layer-explorer-widget').shadowRoot.querySelector('.lew-layer').dataset.state === 'ok'"
    )
    assert box.locator(".lew-layer-h").inner_text() == "3: Conv2d"
    facts = box.inner_text()
    w = net[3].weight.detach()
    assert w.max().item() > 0.5  # a seeded Conv2d(8, 4, 3) initialisation stays below 1/sqrt(72) ≈ 0.118
    assert f"max {w.max().item():.3g}" in facts
    assert "(4, 8, 3, 3)" in facts
    # its four output channels drawn as images, from the .npy of the layer's whole output
    assert box.locator("canvas.feature-map").count() == 4
    assert "output channels" in facts

    # the other views are the page's too: the summary table and the dataflow graph
    host.get_by_role("tab", name="Summary").click()
    rows = host.locator(".net-table tbody tr")
    assert rows.count() == 5
    assert host.locator(".net-table tbody tr.lew-selected").get_attribute("data-path") == "3"
    host.get_by_role("tab", name="Dataflow graph").click()
    assert host.locator(".df-drawing").count() == 1
    assert host.locator(".df-node.lew-selected").get_attribute("data-path") == "3"


def test_widget_shows_the_kernel_error(page):
    body = {
        "layer": {"type": "Sequential", "layers": [{"type": "Linear", "in_features": 4, "out_features": 2}]},
        "inputs": [{"shape": [1, 5]}],
    }
    widget = ExplorerWidget(body, title="Broken")
    open_widget(page, widget)
    error = page.locator(".layer-explorer-widget .lew-error")
    assert error.is_visible()
    assert "5" in error.inner_text() and "4" in error.inner_text()
