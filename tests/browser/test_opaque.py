"""A model from Python with a layer the server does not know: the network view draws the opaque layer
with what it stands for and "opaque: not computed", counts its parameters, and does not open it."""

import pytest
import torch
from torch import nn

from layer_explorer import to_config

from .test_network import current_ui, net_renders, open_net

pytestmark = pytest.mark.browser

SHOTS = "/work/shots/h20-config"


class MyBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8))
        self.b = nn.Parameter(torch.zeros(6))

    def forward(self, x):
        return torch.tanh(x @ self.w)[:, :6] + self.b


def test_opaque_layer_is_drawn_counted_and_not_opened(page):
    model = nn.Sequential(nn.Linear(4, 8), MyBlock(), nn.Linear(6, 2))
    body = to_config(model, torch.randn(3, 4))
    assert body["layer"]["layers"][1]["type"] == "Opaque"
    open_net(page, body)
    node = page.locator('#net-diagram .net-node[data-path="1"]')
    assert "MyBlock · opaque: not computed" in node.text_content()
    assert "net-opaque" in node.get_attribute("class")
    assert node.locator(".net-params").text_content().startswith("70")
    page.screenshot(path=f"{SHOTS}/opaque-network-1280.png")
    page.set_viewport_size({"width": 420, "height": 900})
    node.scroll_into_view_if_needed()
    page.screenshot(path=f"{SHOTS}/opaque-network-420.png")
    page.set_viewport_size({"width": 1280, "height": 800})
    before = net_renders(page)
    node.click()
    page.wait_for_timeout(300)
    assert page.locator("#network-view").is_visible()
    assert "drill" not in current_ui(page)
    assert net_renders(page) >= before
    # the layers around it still open on the input they receive
    page.locator('#net-diagram .net-node[data-path="2"]').click()
    page.wait_for_function("() => !document.querySelector('#layer-view').hidden")
    assert current_ui(page)["drill"]["path"] == "2"
