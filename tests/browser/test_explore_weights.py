"""explore(module, x, weights=True) from a script: the page on the local server computes with the trained
values. The link carries only the architecture; the server in this process adds the parameters and the
example's values to the page's requests, so a layer drilled into shows the trained module's numbers."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from tests.browser.helpers import wait_js, wait_render

pytestmark = pytest.mark.browser

explore_mod = importlib.import_module("layer_explorer.explorer")


@pytest.fixture
def explored(monkeypatch):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():  # "trained": values no seeded initialisation gives
        net[2].weight.copy_(torch.arange(15.0).reshape(3, 5) / 4 + 1.5)
        net[2].bias.copy_(torch.tensor([100.0, 250.0, 475.0]))
    x = torch.randn(2, 4)
    monkeypatch.setattr(explore_mod.webbrowser, "open", lambda url: True)
    monkeypatch.delenv(explore_mod.NO_BROWSER_ENV, raising=False)
    result = explore_mod.explore(net, x, weights=True, block=False)
    yield net, x, result
    explore_mod._LocalServer.stop()


def test_the_page_drills_into_a_layer_with_the_trained_weights(page, explored):
    net, x, result = explored
    page.goto(result.url)
    wait_js(
        page,
        """() => {
            const v = document.querySelector('#network-view');
            return Number(v?.dataset.renders || 0) > 0 && v.getAttribute('aria-busy') === 'false' && v.dataset.state === 'ok';
        }""",
        timeout=60_000,
    )
    page.locator('#net-diagram .net-node[data-path="2"]').click()
    wait_render(page, 0, timeout=30_000)
    assert page.locator("#form-layer .layer-type").inner_text() == "Linear"
    with torch.no_grad():
        inside, out = net[:2](x), net(x)
    shown = page.locator("#tensors-body").inner_text()
    # the layer's input is the example's, through the trained first layer; its output the trained module's
    assert f"max {inside.max().item():.3g}" in shown
    assert f"max {out.max().item():.3g}" in shown and f"min {out.min().item():.3g}" in shown
    assert out.min().item() > 99  # the bias set above: a seeded initialisation gives nothing near it
