"""Issue 11: no output-shape formula scrolls sideways, at 1280 px (the narrow panel beside the
diagram) or at 420 px, and no formula shrinks below a readable size to get there."""

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser

LAYERS = {
    "Conv1d": (
        {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
        [6, 3, 8],
    ),
    "Conv2d-dilated": (
        {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "dilation": 2, "padding": 1},
        [1, 4, 7, 7],
    ),
    "ConvTranspose3d": (
        {
            "type": "ConvTranspose3d",
            "in_channels": 2,
            "out_channels": 4,
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "output_padding": 1,
            "dilation": 2,
        },
        [1, 2, 3, 4, 4],
    ),
    "AvgPool2d-ceil": (
        {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        [1, 1, 7, 7],
    ),
    "MaxPool1d-dilated-ceil": (
        {"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True},
        [1, 2, 11],
    ),
    "Conv3d": (
        {"type": "Conv3d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1},
        [1, 2, 5, 6, 6],
    ),
    "LSTM": ({"type": "LSTM", "input_size": 10, "hidden_size": 20, "num_layers": 2}, [5, 3, 10]),
}

MEASURE = """() => {
  const l = document.querySelector('#formula-list');
  const px = (sel) => [...l.querySelectorAll(sel)].map(e => parseFloat(getComputedStyle(e).fontSize));
  return {scroll: l.scrollWidth, client: l.clientWidth, panel: [document.querySelector('#formula-panel').scrollWidth,
          document.querySelector('#formula-panel').clientWidth],
          items: [...l.querySelectorAll('li')].map(li => [li.scrollWidth, li.clientWidth]),
          katex: px('.katex'), fractions: px('.mfrac .vlist-t'), fits: [...l.querySelectorAll('.math')].map(e => e.dataset.fit || '')};
}"""


@pytest.mark.parametrize("width", [1280, 420])
@pytest.mark.parametrize("name", list(LAYERS))
def test_no_formula_scrolls_sideways(page, name, width):
    layer, shape = LAYERS[name]
    page.set_viewport_size({"width": width, "height": 800})
    open_view(page, {"layer": layer, "inputs": [{"shape": shape}]})
    page.evaluate("document.fonts.ready")
    m = page.evaluate(MEASURE)
    assert m["katex"], m  # the formulas are typeset
    assert m["scroll"] <= m["client"], m
    assert m["panel"][0] <= m["panel"][1], m
    assert all(s <= c for s, c in m["items"]), m
    # readable: nothing below 11 px, fractions included
    assert min(m["katex"]) >= 11 and min(m["fractions"] or [99]) >= 11, m


def test_a_long_fraction_is_written_on_one_line_to_wrap(page):
    # At 1280 px the Conv1d L_out fraction is far wider than the panel beside the diagram: rather than
    # shrink it to 8 px, the symbolic stage is written ⌊(…) / stride⌋, which wraps after + and −; the
    # substituted stage still fits as a fraction.
    layer, shape = LAYERS["Conv1d"]
    page.set_viewport_size({"width": 1280, "height": 800})
    open_view(page, {"layer": layer, "inputs": [{"shape": shape}]})
    li = page.locator("#formula-list li[data-dim='L_out']")
    linear = li.locator(".math[data-fit='linear']")
    assert linear.count() == 1
    tex = linear.locator("annotation").text_content()
    assert "\\frac" not in tex and "\\left" not in tex and "/" in tex and "stride" in tex
    assert li.locator(".math:not([data-fit='linear']) .mfrac").count() == 1  # ⌊(8 + 2·0 − 1·(4 − 1) − 1) / 1⌋
    assert li.locator(".katex").evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")[0] > 30
    # On a phone the formula panel takes the whole width: the same formula fits as a fraction again.
    page.set_viewport_size({"width": 420, "height": 800})
    page.wait_for_function("() => !document.querySelector('#formula-list .math[data-fit=\\'linear\\']')")
    assert li.locator(".mfrac").count() == 2
    # Each stage ("L_out = ⌊…⌋ + 1", "= ⌊…⌋ + 1", "= 5") is kept on one line: no "+" at a line's end
    # with its "1" starting the next, where it would read "1 = ⌊…⌋".
    assert li.locator(".math.stage").evaluate_all("els => els.map(e => e.getClientRects().length)") == [1, 1, 1]
