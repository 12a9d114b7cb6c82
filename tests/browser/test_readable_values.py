"""Values you can read: window and grid cells carry at least four significant digits, fit their
cells, and every minus sign is U+2212; the exact value is one hover away."""

import re

import pytest

from .helpers import config_url, open_view, wait_js, wait_painted, wait_tooltip

pytestmark = pytest.mark.browser

AVGPOOL1D = {
    "layer": {"type": "AvgPool1d", "kernel_size": 2},
    "inputs": [{"data": [[[100, 101, 2.5, 3, -12.25, -12]]]}],
}
AVGPOOL2D_CEIL = {
    "layer": {"type": "AvgPool2d", "kernel_size": 2, "stride": 2, "ceil_mode": True},
    "inputs": [{"data": [[[[10, 20, 15], [30, 40, 20], [15, 20, 17.5]]]]}],
}
NUMBER = re.compile(r"^[-\u2212]?(\d|∞)")


def cell_texts(page, selector: str) -> list[dict]:
    """Text, width and cell size of every number drawn in ``selector`` (SVG text elements)."""
    wait_painted(page)
    return page.locator(selector).evaluate_all(
        """els => els.map(e => ({text: e.textContent, width: e.getBBox().width,
                                  cell: +e.ownerSVGElement.dataset.cell}))"""
    )


def test_avgpool1d_cells_show_four_significant_digits(page):
    open_view(page, AVGPOOL1D)
    wait_js(page, "() => document.querySelectorAll('#win-drawing text.oval').length === 3")
    page.locator("#win-drawing").scroll_into_view_if_needed()
    page.screenshot(path="/work/shots/h16-values/avgpool1d-1280.png", full_page=False)
    frame = cell_texts(page, "#win-drawing text.fval")
    assert [t["text"] for t in frame] == ["100", "101", "2.5", "3", "\u221212.25", "\u221212"]
    wait_js(page, "() => [...document.querySelectorAll('#win-drawing text.oval')].every(e => e.textContent)")
    out = cell_texts(page, "#win-drawing text.oval")
    assert [t["text"] for t in out] == ["100.5", "2.75", "\u221212.13"]
    for t in frame + out:  # the font shrinks to fit instead of rounding harder
        assert t["width"] <= t["cell"] - 2, t


def test_ceil_mode_average_is_not_rounded(page):
    open_view(page, AVGPOOL2D_CEIL)
    wait_js(
        page, "() => [...document.querySelectorAll('#win-drawing text.oval')].filter(e => e.textContent).length === 4"
    )
    out = [t["text"] for t in cell_texts(page, "#win-drawing text.oval")]
    # (10+20+30+40)/4, (15+20)/2, (15+20)/2, 17.5 alone: torch divides by the cells inside the input
    assert out == ["25", "17.5", "17.5", "17.5"]


def test_every_number_drawn_uses_one_minus_sign(page):
    config = {
        "layer": {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 1},
        "inputs": [{"data": [[[-1.5, -0.000123, 2, -30000, 0.25]]]}],
        "seed": 1,
    }
    open_view(page, config)
    wait_painted(page)
    texts = page.locator("#win-drawing svg text, #layer-view svg text").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    numbers = [t for t in texts if NUMBER.match(t.strip())]
    assert any(t.startswith("\u2212") for t in numbers)
    assert "\u22121.23e\u22124" in numbers  # the exponent's minus too
    assert not [t for t in numbers if "-" in t]


BILINEAR = {
    "layer": {"type": "Bilinear", "in1_features": 3, "in2_features": 4, "out_features": 2},
    "inputs": [{"shape": [2, 3]}, {"shape": [2, 4]}],
    "seed": 5,
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bilinear_headline_and_expansion_say_whose_value_they_are(page, dtype):
    """The headline is torch's value (in the run's dtype), the expansion the float64 hand computation."""
    open_view(page, {**BILINEAR, "dtype": dtype}, {"pinned": {"output": None, "index": [1, 0]}})
    page.locator("#explain-body .match").wait_for()
    headline = page.locator("#explain-body .explain-text").inner_text()
    expansion = page.locator("#explain-body .expansion").inner_text()
    match = page.locator("#explain-body .match").inner_text()
    assert headline.endswith(f"(torch, {dtype})") and headline.startswith("Σ")
    assert expansion.startswith("by hand (float64): ")
    assert f"torch ({dtype})" in match and "by hand (float64)" in match
    page.locator("#explain-body").scroll_into_view_if_needed()
    page.screenshot(path=f"/work/shots/h16-values/bilinear-explain-{dtype}-1280.png")


MAXPOOL = {
    "layer": {"type": "MaxPool2d", "kernel_size": 2},
    "inputs": [
        {
            "data": [
                [[[-1.1, 0.5, 2.0, -5.0], [0.25, -0.75, 1.5, -2.5], [3.5, -0.2, -1.1, -0.4], [0.9, 1.2, -0.6, -1.3]]]
            ]
        }
    ],
}


def fills(page) -> tuple[dict, dict]:
    """Fill colour of every input and output cell of the window drawing, by coordinate."""
    wait_painted(page)
    frame = page.locator("#win-drawing rect.fcell.role-input").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.coord, e.getAttribute('fill')]))"
    )
    page.locator("#win-fwd").click()  # paused at the end: every output cell is filled
    page.locator("#win-scrub").fill("3")
    wait_js(page, "() => document.querySelector('#window-panel').dataset.step === '3'")
    out = page.locator("#win-drawing rect.ocell").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.coord, e.getAttribute('fill')]))"
    )
    return frame, out


def test_one_colour_scale_where_input_and_output_share_units(page, catalog):
    """Max pooling shares units (the catalog's same_units): the same value, the same colour, both sides."""
    entries = {e["type"]: e for e in catalog["layers"]}
    assert entries["MaxPool2d"]["same_units"] and not entries["Conv2d"]["same_units"]
    open_view(page, MAXPOOL)
    page.locator("#win-play").wait_for()
    if page.locator("#win-play").get_attribute("aria-pressed") == "true":
        page.locator("#win-play").click()
    assert page.locator("#window-panel").get_attribute("data-scale") == "shared"
    assert page.locator("#win-shared-scale").is_checked()
    frame, out = fills(page)
    # the maxima: 0.5 at (0,1), 2.0 at (0,2), 3.5 at (2,0), −0.4 at (2,3)
    for src, dst in [("0,1", "0,0"), ("0,2", "0,1"), ("2,0", "1,0"), ("2,3", "1,1")]:
        assert frame[src] == out[dst], (src, dst)
    page.locator("#win-drawing").scroll_into_view_if_needed()
    page.screenshot(path="/work/shots/h16-values/maxpool-shared-scale-1280.png")
    # Each its own scale: the input reaches −5, the output only 3.5, so 0.5 is paler in the input.
    page.locator("#win-shared-scale").uncheck()
    wait_js(page, "() => document.querySelector('#window-panel').dataset.scale === 'own'")
    frame, out = fills(page)
    assert frame["0,1"] != out["0,0"]
    assert '"scale":"own"' in page.evaluate("decodeURIComponent(location.search)")


def test_convolution_defaults_to_each_its_own_scale(page):
    conv = {
        "layer": {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 2},
        "inputs": [{"shape": [1, 1, 6]}],
    }
    open_view(page, conv)
    page.locator("#win-play").wait_for()
    wait_js(page, "() => document.querySelector('#window-panel').dataset.scale")
    assert page.locator("#window-panel").get_attribute("data-scale") == "own"
    assert not page.locator("#win-shared-scale").is_checked()


def test_ceil_mode_overhang_is_outside_the_input_not_padding(page):
    open_view(page, AVGPOOL2D_CEIL)
    wait_painted(page)
    assert page.locator("#win-drawing rect.fcell.role-outside").count() == 4 * 4 - 3 * 3
    assert page.locator("#win-drawing rect.fcell.role-padding").count() == 0
    assert page.locator(".legend li.outside").is_visible()
    assert not page.locator(".legend li.pad").is_visible()  # no padding here
    assert page.locator("#win-drawing g.frame text.grid-title").first.text_content() == "input"
    page.locator("#win-drawing rect.fcell.role-outside").last.hover(force=True)
    tip = wait_tooltip(page, "outside the input, excluded")
    assert "leaves it out" in tip
    # the pinned output element: the expansion lists the one cell that counts
    open_view(page, AVGPOOL2D_CEIL, {"pinned": {"output": None, "index": [0, 0, 1, 1]}})
    page.locator("#explain-body .match").wait_for()
    assert page.locator("#explain-body .expansion").inner_text() == "by hand (float64): (17.5) / 1 = 17.5"
    rows = page.locator("#explain-body table.terms tbody tr.outside td:nth-child(2)").all_inner_texts()
    assert rows == ["outside"] * 3
    page.locator("#window-panel").scroll_into_view_if_needed()
    page.screenshot(path="/work/shots/h16-values/ceil-mode-outside-1280.png")


def test_transposed_convolution_calls_its_inserted_zeros_so(page):
    cfg = {
        "layer": {"type": "ConvTranspose2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2},
        "inputs": [{"shape": [1, 1, 3, 3]}],
        "seed": 0,
    }
    open_view(page, cfg, {"pinned": {"output": None, "index": [0, 0, 1, 1]}})
    wait_painted(page)
    page.locator("#win-drawing rect.fcell.role-zero").last.hover(force=True)
    tip = wait_tooltip(page, "inserted zero")
    assert "stride inserts" in tip and "padding" not in tip
    page.locator("#explain-body .match").wait_for()
    index_cells = page.locator("#explain-body table.terms tbody tr.inserted td:nth-child(2)").all_inner_texts()
    assert index_cells and set(index_cells) == {"inserted 0"}
    assert "zeros the stride inserts" in page.locator("#explain-body").inner_text()
    page.locator("#explain-body").scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    assert page.locator("#explain-body .expansion").inner_text().startswith("by hand (float64): ")
    page.screenshot(path="/work/shots/h16-values/convtranspose-inserted-1280.png")


def test_count_include_pad_false_expansion_lists_only_the_cells_that_count(page):
    cfg = {
        "layer": {"type": "AvgPool2d", "kernel_size": 3, "padding": 1, "stride": 1, "count_include_pad": False},
        "inputs": [
            {
                "data": [
                    [[[-1.1, 0.5, 2.0, 1.0], [0.25, -0.75, 1.5, 2.5], [3.5, -0.2, -1.1, -0.4], [0.9, 1.2, -0.6, -1.3]]]
                ]
            }
        ],
    }
    open_view(page, cfg, {"pinned": {"output": None, "index": [0, 0, 0, 0]}})
    page.locator("#explain-body .match").wait_for()
    line = page.locator("#explain-body .expansion").inner_text()
    assert line.startswith("by hand (float64): (\u22121.1 + 0.5 + 0.25 + (\u22120.75)) / 4 = ")
    assert " 0 +" not in line
    assert "mean of 4 (÷4)" in page.locator("#win-pin").inner_text()


def test_shape_diagram_does_not_count_the_overhang_as_padding(page):
    open_view(page, AVGPOOL2D_CEIL)
    caption = page.locator("#diagram svg").first.text_content()
    assert "padding 0×0" in caption and "past the input, excluded" in caption


def test_tensor_heatmaps_share_a_scale_where_units_are_shared(page):
    """ReLU (no sliding window): its input and output heatmaps use one scale by default, a toggle away."""
    relu = {"layer": {"type": "ReLU"}, "inputs": [{"data": [[-4, 0.5, 1.5], [3, -1, 0.25]]}]}
    open_view(page, relu)
    page.locator("#tensors-fold .fold-toggle").click()
    heat = "#tensors-panel article.role-{} rect.hcell"

    def colours(role):
        wait_js(page, "s => document.querySelectorAll(s).length === 6", heat.format(role))
        return page.locator(heat.format(role)).evaluate_all("els => els.map(e => e.getAttribute('fill'))")

    wait_js(page, "() => document.querySelector('#tensors-panel').dataset.scale === 'shared'")
    assert page.locator("#tensors-shared-scale").is_checked()
    x, y = colours("input"), colours("output")
    assert [x[i] for i in (1, 2, 3, 5)] == [y[i] for i in (1, 2, 3, 5)]  # 0.5, 1.5, 3, 0.25 on both sides
    page.locator("#tensors-shared-scale").uncheck()
    wait_js(page, "() => document.querySelector('#tensors-panel').dataset.scale === 'own'")
    x, y = colours("input"), colours("output")
    assert x[1] != y[1]  # the input reaches −4, the output only 3
    assert '"scale":"own"' in page.evaluate("decodeURIComponent(location.search)")


def test_avgpool1d_values_fit_on_a_phone(browser, base_url):
    ctx = browser.new_context(base_url=base_url, viewport={"width": 420, "height": 900})
    page = ctx.new_page()
    try:
        open_view(page, AVGPOOL1D)
        wait_js(
            page,
            "() => [...document.querySelectorAll('#win-drawing text.oval')].filter(e => e.textContent).length === 3",
        )
        frame = cell_texts(page, "#win-drawing text.fval")
        out = cell_texts(page, "#win-drawing text.oval")
        assert [t["text"] for t in frame] == ["100", "101", "2.5", "3", "\u221212.25", "\u221212"]
        assert [t["text"] for t in out] == ["100.5", "2.75", "\u221212.13"]
        for t in frame + out:
            assert t["width"] <= t["cell"] - 2, t
        page.locator("#win-drawing").scroll_into_view_if_needed()
        page.screenshot(path="/work/shots/h16-values/avgpool1d-420.png")
    finally:
        ctx.close()


def test_network_node_arguments_use_the_minus_sign(page):
    net = {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": 3},
                {"type": "LeakyReLU", "negative_slope": -0.01},
                {"type": "Flatten", "start_dim": 0, "end_dim": -1},
            ],
        },
        "inputs": [{"shape": [2, 4]}],
    }
    page.goto(config_url(net))
    wait_js(page, "() => Number(document.querySelector('#network-view')?.dataset.renders || 0) > 0", timeout=30_000)
    text = page.locator("#network-view svg").first.text_content()
    assert "slope=\u22120.01" in text and "end=\u22121" in text
    assert "=-" not in text


def test_lp_pool_explain_is_worked_in_the_runs_dtype(page):
    """LP pooling's hand computation follows torch's lp_pool in the run's dtype: a subnormal cubed
    underflows to 0 in float32, so the pinned element reads 0 by hand as torch does, not NaN."""
    cfg = {
        "layer": {"type": "LPPool1d", "norm_type": 3, "kernel_size": 2},
        "inputs": [{"data": [[[-4.0e-40, 0, 1, 2]]]}],
    }
    open_view(page, cfg, {"pinned": {"output": None, "index": [0, 0, 0]}})
    page.locator("#explain-body .match").wait_for()
    expansion = page.locator("#explain-body .expansion").inner_text()
    assert expansion.startswith("by hand (float32)")
    assert "NaN" not in page.locator("#explain-body").inner_text()
    page.locator("#explain-body").scroll_into_view_if_needed()
    page.screenshot(path="/work/shots/parity-fix/lp-pool-subnormal-1280.png")
