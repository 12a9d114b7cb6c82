"""The graph features in the browser: a model pasted as code, the dataflow graph, receptive fields."""

import pytest

from .test_network import MLP, current_config, open_net, total_params, tree_types, wait_net, net_renders

pytestmark = pytest.mark.browser

LENET_CODE = """model = nn.Sequential(
    nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
    nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
)"""


def test_paste_a_model_as_code(page, console):
    open_net(page, MLP)
    page.click("#net-paste summary")
    # a refusal names the line and column, and the caret goes there
    console.allow(r"status of 422")
    page.fill("#net-paste-code", "nn.Sequential(\n  nn.ReLU(),\n  open('/etc/passwd'))")
    page.click("#net-paste-open")
    err = page.locator("#net-paste-error")
    err.wait_for(state="visible")
    assert err.text_content().startswith("line 3, column 3: ")
    caret = page.locator("#net-paste-code").evaluate("t => t.selectionStart")
    assert caret == len("nn.Sequential(\n  nn.ReLU(),\n  ")
    assert tree_types(page) == ["Linear", "ReLU", "Linear"]  # the network is untouched

    n = net_renders(page)
    page.fill("#net-paste-code", LENET_CODE)
    page.click("#net-paste-open")
    wait_net(page, n, "ok")
    assert err.is_hidden()
    assert tree_types(page) == ["Conv2d", "Tanh", "AvgPool2d", "Conv2d", "Tanh", "AvgPool2d", "Flatten",
                                "Linear", "Tanh", "Linear", "Tanh", "Linear"]
    config = current_config(page)
    assert config["inputs"] == [{"shape": [1, 1, 28, 28]}]
    assert config["layer"]["layers"][7] == {"type": "Linear", "in_features": 400, "out_features": 120}
    assert total_params(page) == 61706  # LeNet-5's count, as torch reports it
