"""Text in, attention out (issue 21): a sentence into an Embedding → TransformerEncoderLayer network,
its vocabulary, and the attention weights as a token × token heatmap labelled with the tokens."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from tests.browser.helpers import config_url, wait_js
from tests.browser.test_a11y import audit

pytestmark = pytest.mark.browser

SHOTS = Path("/work/shots/h21-text")


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    # axe is injected as an inline script, which the page's CSP refuses (see test_a11y.py)
    return {**browser_context_args, "bypass_csp": True}


NET = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {"type": "Embedding", "name": "embed", "num_embeddings": 64, "embedding_dim": 16},
            {
                "type": "TransformerEncoderLayer",
                "name": "encoder",
                "d_model": 16,
                "nhead": 2,
                "dim_feedforward": 32,
                "dropout": 0.0,
                "batch_first": True,
            },
        ],
    },
    "inputs": [{"shape": [1, 6], "dtype": "int64"}],
    "seed": 0,
}


def _runs(page) -> list[dict]:
    calls: list[dict] = []

    def on_request(req):
        if req.url.split("?")[0].endswith("/api/run") and req.method == "POST":
            calls.append(json.loads(req.post_data))

    page.on("request", on_request)
    return calls


def _heatmap(page) -> dict:
    return page.evaluate(
        """() => {
             const svg = document.querySelector('#net-text-panel .attn-map');
             const rgb = (s) => s.match(/\\d+/g).map(Number);
             return {
               rows: [...svg.querySelectorAll('.attn-row-label')].map(t => t.textContent),
               cols: [...svg.querySelectorAll('.attn-col-label')].map(t => t.textContent),
               cells: [...svg.querySelectorAll('rect')].map(r => ({i: +r.dataset.i, j: +r.dataset.j,
                        v: +r.dataset.v, rgb: rgb(r.getAttribute('fill'))})),
             };
           }"""
    )


def _wait_tokens(page, n: int) -> None:
    wait_js(
        page,
        "n => document.querySelectorAll('#net-text-panel .attn-map .attn-row-label').length === n"
        " && !document.querySelector('#net-text-panel').hasAttribute('aria-busy')",
        n,
        timeout=90_000,
    )


def test_a_sentence_gives_a_token_by_token_attention_heatmap(page, api_run):
    calls = _runs(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(
        config_url(NET, {"view": "network", "text": {"text": "the cat sat on the mat", "tokenize": "whitespace"}})
    )
    _wait_tokens(page, 6)
    # type a new sentence: the heatmap follows, labelled with its tokens on both axes
    page.locator("#net-text-panel textarea").fill("the dog saw the cat")
    _wait_tokens(page, 5)
    tokens = ["the", "dog", "saw", "the", "cat"]
    got = _heatmap(page)
    assert got["rows"] == tokens and got["cols"] == tokens
    body = next(c for c in reversed(calls) if "text" in c["inputs"][0])
    assert body["inputs"][0] == {"text": "the dog saw the cat", "tokenize": "whitespace"}
    ref = api_run(body)
    [a] = ref["attention"]
    mean = np.array(a["mean"])[0]
    drawn = np.zeros((5, 5))
    for c in got["cells"]:
        drawn[c["i"], c["j"]] = c["v"]
    np.testing.assert_allclose(drawn, mean, atol=1e-6)
    # the colours follow the weights: a larger weight is never lighter
    order = sorted(got["cells"], key=lambda c: c["v"])
    light = [sum(c["rgb"]) for c in order]
    assert all(a >= b for a, b in itertools.pairwise(light)) and light[0] > light[-1]
    # the vocabulary, token → id over the sorted set
    vocab = page.eval_on_selector_all("#net-text-panel .vocab-item", "els => els.map(e => e.textContent)")
    assert vocab == [f'"{t}" → {k}' for k, t in enumerate(sorted(set(tokens)))]
    # no positional encoding before the attention: the two "the" rows are equal, and the page says why
    np.testing.assert_allclose(mean[0], mean[3], atol=1e-6)
    assert "same row" in page.locator("#net-text-panel .attn-fig .aside").inner_text()
    # the numbers as a table: the tokens as row and column headers
    page.locator("#net-text-panel .attn-fig details summary").click()
    heads = page.eval_on_selector_all("#net-text-panel .attn-table th[scope=row]", "els => els.map(e => e.textContent)")
    assert heads == tokens
    # one head: that head's own weights
    page.locator("#net-text-panel select[id$='-head']").select_option("1")
    head = np.array(a["weights"])[0, 1]
    got = _heatmap(page)
    drawn = np.zeros((5, 5))
    for c in got["cells"]:
        drawn[c["i"], c["j"]] = c["v"]
    np.testing.assert_allclose(drawn, head, atol=1e-6)
    assert audit(page) == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate(
        "() => { document.querySelector('#net-text-panel').scrollIntoView({block: 'start'}); window.scrollBy(0, -60); }"
    )
    page.screenshot(path=str(SHOTS / "attention-1280x800.png"))
    page.set_viewport_size({"width": 420, "height": 900})
    page.locator("#net-text-panel select[id$='-head']").select_option("mean")
    page.evaluate(
        "() => { document.querySelector('#net-text-panel').scrollIntoView({block: 'start'}); window.scrollBy(0, -60); }"
    )
    page.screenshot(path=str(SHOTS / "attention-420x900.png"))


def test_a_vocabulary_larger_than_the_embedding_is_said_at_the_field(page, console):
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    emb = {
        "layer": {"type": "Embedding", "num_embeddings": 4, "embedding_dim": 3},
        "inputs": [{"shape": [1, 4], "dtype": "int64"}],
    }
    page.goto(config_url(emb, {"text": {"text": "abc", "tokenize": "char"}}))
    wait_js(page, "() => document.querySelectorAll('#text-panel .vocab-item').length === 3", timeout=90_000)
    page.locator("#text-panel textarea").fill("abcdef")
    wait_js(page, "() => !document.querySelector('#text-panel [role=alert]').hidden", timeout=30_000)
    msg = page.locator("#text-panel [role=alert]").inner_text()
    assert "6 distinct tokens" in msg and "num_embeddings=4" in msg
    assert page.locator("#text-panel textarea").get_attribute("aria-invalid") == "true"


@pytest.mark.parametrize(
    "layer, inputs",
    [
        ({"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 2}, [{"shape": [4, 1, 8]}] * 3),
        (
            {"type": "TransformerEncoderLayer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "batch_first": True},
            [{"shape": [1, 4, 8]}],
        ),
    ],
)
def test_an_attention_layer_shows_its_weights_by_position(page, api_run, layer, inputs):
    """Without a text, the heatmap's labels are the positions; its values are the API's."""
    calls = _runs(page)
    page.goto(config_url({"layer": layer, "inputs": inputs, "seed": 0}))
    wait_js(page, "() => document.querySelectorAll('#text-panel .attn-map rect').length === 16", timeout=90_000)
    assert page.locator("#text-panel textarea").is_hidden()  # float inputs: no text
    got = page.eval_on_selector_all("#text-panel .attn-map .attn-row-label", "els => els.map(e => e.textContent)")
    assert got == ["0", "1", "2", "3"]
    [a] = api_run(calls[-1])["attention"]
    vals = page.eval_on_selector_all("#text-panel .attn-map rect", "els => els.map(e => Number(e.dataset.v))")
    np.testing.assert_allclose(np.array(vals).reshape(4, 4), np.array(a["mean"])[0], atol=1e-6)


def test_an_embedding_of_a_text_labels_the_tensors_with_its_tokens(page):
    emb = {
        "layer": {"type": "Embedding", "num_embeddings": 16, "embedding_dim": 4},
        "inputs": [{"shape": [1, 4], "dtype": "int64"}],
    }
    page.goto(config_url(emb, {"text": {"text": "to be or not to be", "tokenize": "whitespace"}}))
    wait_js(page, "() => document.querySelectorAll('#tensors-panel .row-labels text').length === 6", timeout=90_000)
    rows = page.eval_on_selector_all(
        "#tensors-panel .role-output .row-labels text", "els => els.map(e => e.textContent)"
    )
    cols = page.eval_on_selector_all(
        "#tensors-panel .role-input .col-labels text", "els => els.map(e => e.textContent)"
    )
    tokens = ["to", "be", "or", "not", "to", "be"]
    assert rows == tokens and cols == tokens
    vocab = page.eval_on_selector_all("#text-panel .vocab-item", "els => els.map(e => e.textContent)")
    assert vocab == ['"be" → 0', '"not" → 1', '"or" → 2', '"to" → 3']
    assert audit(page) == []
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator("#text-panel").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "embedding-text-1280x800.png"), full_page=False)
    page.locator("#tensors-fold .fold-toggle").click()
    page.locator("#tensors-panel .role-output").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "embedding-tensors-1280x800.png"), full_page=False)


def test_the_text_preset_opens_with_its_sentence(page):
    page.goto("/")
    page.locator("#catalog button", has_text="Text → Embedding → self-attention").first.click()
    _wait_tokens(page, 6)
    assert page.locator("#net-text-panel textarea").input_value() == "the cat sat on the mat"
    got = _heatmap(page)
    assert got["rows"] == ["the", "cat", "sat", "on", "the", "mat"] == got["cols"]


def test_a_link_with_a_text_input_opens_with_that_text(page):
    """An API body whose input is {"text"} (e.g. the preset's, pasted as a link) opens with the text in the box."""
    body = {**NET, "inputs": [{"text": "a rose is a rose", "tokenize": "whitespace"}]}
    page.goto(config_url(body))
    _wait_tokens(page, 5)
    assert page.locator("#net-text-panel textarea").input_value() == "a rose is a rose"
    assert _heatmap(page)["rows"] == ["a", "rose", "is", "a", "rose"]


def test_a_network_text_past_its_embedding_is_said_at_the_text_box(page, console):
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    small = json.loads(json.dumps(NET))
    small["layer"]["layers"][0]["num_embeddings"] = 4
    page.goto(
        config_url(small, {"view": "network", "text": {"text": "one two three four five", "tokenize": "whitespace"}})
    )
    wait_js(page, "() => document.querySelector('#net-text-panel [role=alert]')?.hidden === false", timeout=90_000)
    msg = page.locator("#net-text-panel [role=alert]").inner_text()
    assert "5 distinct tokens" in msg and "num_embeddings=4" in msg
    assert page.locator("#net-text-panel .attn-map").count() == 0
