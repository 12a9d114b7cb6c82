"""A layer whose answer outgrows the response budget: the tensor cards still draw, say what was left
out, and hand over the whole tensor as .npy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from tests.browser.helpers import open_view, wait_js

pytestmark = pytest.mark.browser

# 96 weight tensors of 16,384 or 32,768 numbers: their 32 × 32 previews (about 25 KB of JSON each)
# spend the 2 MiB budget before the last layers
DEEP_LSTM = {
    "layer": {"type": "LSTM", "input_size": 64, "hidden_size": 64, "num_layers": 24, "bidirectional": True},
    "inputs": [{"shape": [3, 1, 64]}],
    "seed": 5,
}


def test_cards_of_tensors_left_out_say_so_and_download_their_values(page, api_run):
    answer = api_run(DEEP_LSTM)
    values = [p["values"] for p in answer["params"]]
    assert values[0] == "preview" and "none" in values  # the budget ran out on the way
    last = next(p for p in answer["params"] if p["values"] == "none")

    open_view(page, DEEP_LSTM)
    card = f'#tensors-body article.tensor-card[data-name="{last["name"]}"]'
    wait_js(page, "s => !!document.querySelector(s)", card)
    text = page.locator(card).inner_text()
    assert "this answer's budget went to the tensors listed before it" in text
    # the cards drawn from previews are still drawn
    wait_js(page, "() => document.querySelectorAll('#tensors-body article.role-param .heat svg').length >= 5")
    page.locator("#tensors-fold .fold-toggle").click()  # the tensors panel opens
    with page.expect_download() as info:
        page.locator(f"{card} button.npy-download").click()
    download = info.value
    assert download.suggested_filename == f"{last['name']}.npy"
    with open(download.path(), "rb") as f:
        got = np.load(io.BytesIO(f.read()))
    assert list(got.shape) == last["shape"]
    # the run's own tensor: what plain torch builds under the same seed
    torch.manual_seed(DEEP_LSTM["seed"])
    plain = torch.nn.LSTM(64, 64, num_layers=24, bidirectional=True)
    np.testing.assert_array_equal(got, dict(plain.named_parameters())[last["name"]].detach().numpy())
