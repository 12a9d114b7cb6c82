"""Issue 11's screenshot review: what the screenshots at 1280×800 and 420 px showed wrong, fixed.

- The shape diagram's labels ran into each other on small boxes (a 3×3 kernel beside a 64×64 input,
  the 2×2 output of a pooling): "C_in = 1" over "× C_out = 2", "k_H = 3" over both.
- The diagram's caption was cut at the drawing's edge ("groups 2: each output channe…").
- The pinned max-pooling winner's "max" tag covered the winning value (−1) in its cell.
"""

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser

NEG = [[[[-(i * 4 + j + 1) for j in range(4)] for i in range(4)]]]
MAXPOOL = {"layer": {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}, "inputs": [{"data": NEG}]}
CASES = {
    "conv2d-64": {
        "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
        "inputs": [{"shape": [1, 3, 64, 64]}],
    },
    "dilated": {
        "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "dilation": 2, "padding": 1},
        "inputs": [{"shape": [1, 1, 7, 7]}],
    },
    "grouped": {
        "layer": {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2},
        "inputs": [{"shape": [1, 4, 5, 5]}],
    },
    "maxpool": MAXPOOL,
    "conv1d": {
        "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
        "inputs": [{"shape": [6, 3, 8]}],
    },
    "conv3d": {
        "layer": {"type": "Conv3d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
        "inputs": [{"shape": [1, 2, 5, 6, 6]}],
    },
}

# Every label of the shape diagram (dimension labels, "× cards", titles, captions) as screen boxes.
LABELS = """() => {
  const svg = document.querySelector('#diagram svg.drawing');
  const box = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim());
  return {svg: [box.left, box.right], labels: texts.map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, cls: t.getAttribute('class'), l: r.left, r: r.right, t: r.top, b: r.bottom};
  })};
}"""


def overlaps(a, b, slack=1.0):
    return a["l"] + slack < b["r"] and b["l"] + slack < a["r"] and a["t"] + slack < b["b"] and b["t"] + slack < a["b"]


@pytest.mark.parametrize("width", [1280, 420])
@pytest.mark.parametrize("name", list(CASES))
def test_shape_diagram_labels_do_not_collide_or_get_cut(page, name, width):
    page.set_viewport_size({"width": width, "height": 800})
    open_view(page, CASES[name])
    m = page.evaluate(LABELS)
    labels = m["labels"]
    assert len(labels) >= 6
    hits = [
        (a["text"], b["text"])
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if overlaps(a, b) and "op" not in (a["cls"] or "") + (b["cls"] or "")
    ]
    assert not hits, hits
    left, right = m["svg"]
    cut = [lab["text"] for lab in labels if lab["r"] > right + 1 or lab["l"] < left - 1]
    assert not cut, cut


def test_max_tag_leaves_the_winning_value_readable(page):
    open_view(page, MAXPOOL, {"pinned": {"index": [0, 0, 0, 0], "output": None}})
    page.wait_for_function("() => document.querySelector('#explain-panel').dataset.index === '0,0,0,0'")
    page.wait_for_function("() => document.querySelector('#win-drawing .winner-label')")
    boxes = page.evaluate(
        """() => {
      const r = (e) => { const b = e.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom, text: e.textContent}; };
      const ring = document.querySelector('#win-drawing rect.winner').getBoundingClientRect();
      const inside = (e) => { const b = e.getBoundingClientRect(); const x = (b.left + b.right) / 2, y = (b.top + b.bottom) / 2;
        return x > ring.left && x < ring.right && y > ring.top && y < ring.bottom; };
      return {tag: r(document.querySelector('#win-drawing .winner-label')),
              values: [...document.querySelectorAll('#win-drawing text.fval')].filter(inside).map(r)};
    }"""
    )
    assert [v["text"] for v in boxes["values"]] == ["−1"]  # the winner is input [0, 0, 0, 0] = −1
    assert not overlaps(boxes["tag"], boxes["values"][0], slack=0)


FLOW = {
    "lstm": {
        "layer": {"type": "LSTM", "input_size": 10, "hidden_size": 20, "num_layers": 2},
        "inputs": [{"shape": [5, 3, 10]}],
    },
    "mha": {
        "layer": {"type": "MultiheadAttention", "embed_dim": 4, "num_heads": 2},
        "inputs": [{"shape": [5, 2, 4]}, {"shape": [5, 2, 4]}, {"shape": [5, 2, 4]}],
    },
}


@pytest.mark.parametrize("name", list(FLOW))
def test_tall_tensor_flow_is_drawn_at_full_size_at_1280(page, name):
    # At 1280×800 the diagram was capped at 250 px high so the sliding window stays in view; an
    # LSTM's tensor flow (no sliding window) shrank to 38 % of its size, 4 px text.
    page.set_viewport_size({"width": 1280, "height": 800})
    open_view(page, FLOW[name])
    scale, text_px = page.evaluate(
        """() => { const s = document.querySelector('#diagram svg.drawing');
      const k = s.getBoundingClientRect().width / s.viewBox.baseVal.width;
      const px = [...s.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * k);
      return [k, Math.min(...px)]; }"""
    )
    assert scale > 0.95 and text_px >= 8, (scale, text_px)


def test_conv_boxes_stay_short_beside_the_window(page):
    page.set_viewport_size({"width": 1280, "height": 800})
    open_view(page, CASES["dilated"])
    assert page.locator("#diagram svg.drawing").bounding_box()["height"] <= 250


@pytest.mark.parametrize("width", [1280, 420])
def test_bilinear_caption_is_not_cut(page, width):
    # "one sample (n = 0), one output feature (k = 0): a row vector · a 3×4 matrix · a column v…"
    page.set_viewport_size({"width": width, "height": 800})
    open_view(
        page,
        {
            "layer": {"type": "Bilinear", "in1_features": 3, "in2_features": 4, "out_features": 2},
            "inputs": [{"shape": [5, 3]}, {"shape": [5, 4]}],
        },
    )
    m = page.evaluate(LABELS)
    left, right = m["svg"]
    captions = [lab for lab in m["labels"] if "caption" in (lab["cls"] or "")]
    assert any("column vector = one number" in c["text"] for c in captions)
    assert all(c["r"] <= right + 1 and c["l"] >= left - 1 for c in captions), (m["svg"], captions)


def test_lstm_flow_fits_a_phone(page):
    # At 420 px the LSTM's parameter box (two columns) was wider than the drawing and centred, so its
    # left part ("weight_ih_l0", "4·hidden_size=80") lay outside the picture, cut off.
    page.set_viewport_size({"width": 420, "height": 800})
    open_view(page, FLOW["lstm"])
    m = page.evaluate(
        """() => { const s = document.querySelector('#diagram svg.drawing'); const b = s.getBoundingClientRect();
      const k = b.width / s.viewBox.baseVal.width;
      const r = [...s.querySelectorAll('rect, text')].map(e => e.getBoundingClientRect());
      return {k, left: Math.min(...r.map(x => x.left)) - b.left, right: b.right - Math.max(...r.map(x => x.right))}; }"""
    )
    assert m["left"] >= 0 and m["right"] >= 0, m
    assert m["k"] > 0.95, m  # drawn at its own size, not shrunk to fit
    names = page.locator("#diagram svg text.tensor-name").evaluate_all("els => els.map(e => e.textContent)")
    assert {"weight_ih_l0", "weight_hh_l1", "bias_hh_l1", "h_n", "c_n"} <= set(names)


def test_output_shape_names_keep_their_underscores(page):
    # The output-shape panel typeset h_n's "D·num_layers" as "D·num" with a subscript "layers".
    open_view(page, FLOW["lstm"])
    h_n = page.locator("#formula-list li.output-shape[data-output='h_n'] .katex-html").text_content()
    assert "num_layers" in h_n.replace("\u200b", "") and "=2" in h_n.replace(" ", "")
    assert page.locator("#formula-list li.output-shape[data-output='h_n'] .msupsub").count() == 1  # H_out only


@pytest.mark.parametrize("width", [1280, 420])
def test_3d_plane_titles_do_not_run_into_each_other(page, width):
    # At 420 px "z=2 (d=1) · in ch 0" ran over "z=3 (d=2)" above the next depth plane.
    page.set_viewport_size({"width": width, "height": 800})
    open_view(page, CASES["conv3d"], {"depth": 1})
    titles = page.evaluate(
        """() => [...document.querySelectorAll('#win-drawing .frame text.grid-title')].map(t => {
      const r = t.getBoundingClientRect(); return {text: t.textContent, l: r.left, r: r.right, t: r.top, b: r.bottom}; })"""
    )
    texts = {t["text"] for t in titles}
    assert {"z=3 (d=2)", "z=4 (d=3)"} <= texts and ({"z=2 (d=1)", "in ch 0"} <= texts or "z=2 (d=1) · in ch 0" in texts)
    # one input channel drawn at a time (in ch 1 is in the strip): its channel named once
    assert sum("in ch 0" in t["text"] for t in titles) == 1
    assert page.locator("#win-drawing .chan-strip .thumb[data-channel='1']").count() == 1
    hits = [(a["text"], b["text"]) for i, a in enumerate(titles) for b in titles[i + 1 :] if overlaps(a, b)]
    assert not hits, hits
