"""Issue 11, defects 5 and 6: generic diagrams use torch's dimension names and draw every output;
the Bilinear picture is per sample."""

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser

LSTM = {"layer": {"type": "LSTM", "input_size": 10, "hidden_size": 20}, "inputs": [{"shape": [5, 3, 10]}]}
MHA = {
    "layer": {"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 2, "batch_first": True},
    "inputs": [{"shape": [2, 4, 8]}, {"shape": [2, 5, 8]}, {"shape": [2, 5, 8]}],
}
BILINEAR = {
    "layer": {"type": "Bilinear", "in1_features": 3, "in2_features": 4, "out_features": 2},
    "inputs": [{"shape": [5, 3]}, {"shape": [5, 4]}],
}


def chips(page, name):
    """The dimension chips of the tensor box titled `name`, as their text."""
    return page.evaluate(
        """name => [...document.querySelectorAll('#diagram g.tensor')]
             .filter(g => g.querySelector('.tensor-name').textContent === name)
             .map(g => [...g.querySelectorAll('text.chip-text')].map(t => t.textContent))[0]""",
        name,
    )


def test_lstm_uses_torch_names_and_draws_h_n_and_c_n(page):
    open_view(page, LSTM)
    assert chips(page, "weight_ih_l0") == ["4·hidden_size=80", "Hin=10"]
    assert chips(page, "weight_hh_l0") == ["4·hidden_size=80", "Hout=20"]
    assert chips(page, "bias_ih_l0") == ["4·hidden_size=80"]
    assert chips(page, "output") == ["L=5", "N=3", "D·Hout=20"]
    assert chips(page, "h_n") == ["D·num_layers=1", "N=3", "Hout=20"]
    assert chips(page, "c_n")[2] == "Hcell=20"
    text = page.locator("#diagram").inner_text()
    assert "p0" not in text and "d0" not in text and "d2" not in text
    # The output-shape panel lists every output.
    outs = page.locator("#formula-list li.output-shape").evaluate_all("els => els.map(e => e.dataset.output)")
    assert outs == ["output", "h_n", "c_n"]


def test_multihead_attention_names(page):
    open_view(page, MHA)
    assert chips(page, "attn_output") == ["N=2", "L=4", "E=8"]
    assert chips(page, "attn_output_weights") == ["N=2", "L=4", "S=5"]
    assert chips(page, "in_proj_weight") == ["3·E=24", "E=8"]
    assert "d0" not in page.locator("#diagram").inner_text()


def test_bilinear_is_drawn_per_sample(page):
    open_view(page, BILINEAR, {"pinned": {"index": [3, 1], "output": None}})
    page.wait_for_function("() => document.querySelector('#diagram svg')?.dataset.n === '3'")
    svg = page.locator("#diagram svg")
    assert svg.get_attribute("data-k") == "1"
    # x₁[n] is one row, x₂[n]ᵀ one column, the result one element.
    size = lambda id: page.locator(f"#diagram .m-{id} rect.cell").count()  # noqa: E731
    assert (size("x1"), size("A"), size("x2"), size("yk")) == (3, 12, 4, 1)
    text = page.locator("#diagram").inner_text()
    assert "y[n, k] = x₁[n] · A" in text and "y[3, 1]" in text
    assert "x₁ᵀ A" not in text
    # Clicking another element of y redraws for its sample and feature.
    page.locator("#diagram .m-y rect.cell[data-r='0'][data-c='0']").click()
    page.wait_for_function("() => document.querySelector('#diagram svg')?.dataset.n === '0'")
    assert page.locator("#diagram svg").get_attribute("data-k") == "0"
