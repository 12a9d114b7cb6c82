"""Issue 11: the sliding window tells the whole truth — padding as the operation reads it, every
input channel of the sum, real values at any size, and motion between positions."""

import io
from pathlib import Path

import pytest
from PIL import Image

from .helpers import canvas_pixel, canvas_point, css_rgb, hover_canvas, open_view, wait_painted, wait_render

pytestmark = pytest.mark.browser

NEG = [[[[-(i * 4 + j + 1) for j in range(4)] for i in range(4)]]]
MAXPOOL = {"layer": {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}, "inputs": [{"data": NEG}]}
CONV1D = {
    "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
    "inputs": [{"shape": [6, 3, 8]}],
    "seed": 42,
}
GROUPED = {
    "layer": {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2},
    "inputs": [{"shape": [1, 4, 5, 5]}],
}
BIG = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 64, 64]}],
    "seed": 3,
}


def texts(page, sel):
    return page.locator(sel).evaluate_all("els => els.map(e => e.textContent)")


def pause(page):
    if page.locator("#win-play").get_attribute("aria-pressed") == "true":
        page.locator("#win-play").click()


def explained(page, index):
    page.wait_for_function(
        "i => document.querySelector('#explain-panel').dataset.index === i", arg=",".join(map(str, index))
    )


def test_max_pool_padding_reads_minus_infinity(page):
    open_view(page, MAXPOOL, {"pinned": {"index": [0, 0, 0, 0], "output": None}})
    explained(page, [0, 0, 0, 0])
    marks = texts(page, "#win-drawing text.pad-mark")
    assert marks and set(marks) == {"−∞"}
    assert page.locator("#win-drawing svg").get_attribute("data-pad-value") == "-inf"
    body = page.locator("#explain-body").inner_text()
    assert "−∞" in body and "add 0" not in body
    assert "= −1" in page.locator("#win-pin").inner_text()
    # The table says −∞ for the padding rows, and so does the tooltip over a padding cell.
    assert page.locator("#explain-body tr.padding td:nth-child(3)").all_inner_texts() == ["−∞"] * 5
    # The pinned window covers frame cell (0, 0), a padding cell: its tooltip shows through.
    page.locator("#win-drawing rect.win-cell[data-term='0']").hover()
    assert "−∞" in page.locator(".tooltip").inner_text()
    assert "padding (reads −∞)" in page.locator(".legend").inner_text()


def test_avg_pool_excluded_and_reflect_copies(page):
    cfg = {
        "layer": {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        "inputs": [{"shape": [1, 1, 6, 6]}],
    }
    open_view(page, cfg)
    assert set(texts(page, "#win-drawing text.pad-mark")) == {"×"}
    cfg = {
        "layer": {
            "type": "Conv2d",
            "in_channels": 1,
            "out_channels": 1,
            "kernel_size": 3,
            "padding": 1,
            "padding_mode": "reflect",
        },
        "inputs": [{"shape": [1, 1, 5, 5]}],
    }
    open_view(page, cfg)
    copies = page.locator("#win-drawing rect.fcell.pad-copy")
    assert copies.count() == 7 * 7 - 5 * 5
    assert page.locator("#win-drawing text.pad-mark").count() == 0
    # A copied cell has the colour of the input element it repeats: reflect of row -1 is row 1.
    fill = page.locator("#win-drawing rect.fcell[data-coord='0,1']").get_attribute("fill")
    assert fill == page.locator("#win-drawing rect.fcell[data-coord='2,1']").get_attribute("fill")
    assert not fill.startswith("url(")


def test_every_input_channel_of_the_sum_is_drawn(page):
    page.emulate_media(reduced_motion="reduce")
    open_view(page, CONV1D, {"pinned": {"index": [0, 0, 2], "output": None}})
    explained(page, [0, 0, 2])
    assert page.locator("#win-drawing g.frame").evaluate_all("els => els.map(e => e.dataset.channel)") == [
        "0",
        "1",
        "2",
    ]
    assert page.locator("#win-drawing rect.win-cell").count() == 12  # the 12-term sum
    assert page.locator("#win-drawing rect.kcell").count() == 12  # each channel's kernel slice
    assert "Σ of 12 terms" in page.locator("#win-pin").inner_text()
    # Row → cell and cell → row; hovering a row first brings the window back to the pinned element.
    pause(page)
    page.locator("#win-scrub").fill("4")
    page.locator("#explain-body tr[data-term='5']").hover()
    assert page.locator("#window-panel").get_attribute("data-step") == "2"
    assert page.locator("#win-drawing rect.win-cell.hl").evaluate_all("els => els.map(e => e.dataset.term)") == ["5"]
    assert page.locator("#win-drawing rect.kcell.hl").count() == 1
    page.locator("#win-drawing rect.win-cell[data-term='7']").hover()
    assert page.locator("#explain-body tr.hl").evaluate_all("els => els.map(e => e.dataset.term)") == ["7"]


def test_grouped_conv_draws_its_group(page):
    open_view(page, GROUPED, {"channel": 4, "pinned": {"index": [0, 4, 1, 1], "output": None}})
    explained(page, [0, 4, 1, 1])
    # The group's two input channels in the strip; one drawn at a time, with its 9 terms.
    strip = page.locator("#win-drawing .chan-strip .thumb")
    assert strip.evaluate_all("els => els.map(e => e.dataset.channel)") == ["2", "3"]
    assert page.locator("#win-drawing g.frame").evaluate_all("els => els.map(e => e.dataset.channel)") == ["2"]
    assert page.locator("#win-drawing rect.win-cell").count() == 9
    assert "Σ of 18 terms" in page.locator("#win-pin").inner_text()
    # A term read from the other channel (terms 9–17) draws that channel, with the term's cell lit.
    page.locator("#explain-body tr[data-term='12']").hover()
    assert page.locator("#win-drawing g.frame").evaluate_all("els => els.map(e => e.dataset.channel)") == ["3"]
    assert page.locator("#win-drawing rect.win-cell.hl").evaluate_all("els => els.map(e => e.dataset.term)") == ["12"]
    assert page.locator("#win-drawing .chan-strip .thumb[aria-checked='true']").get_attribute("data-channel") == "3"
    assert "inChannel" in page.url and "3" in page.url.split("inChannel")[1][:10]


def test_large_input_shows_real_values_and_sweeps_rows(page, api_run):
    open_view(page, BIG)
    panel = page.locator("#window-panel")
    page.wait_for_function("() => document.querySelector('#window-panel').dataset.values === 'slice'")
    pause(page)
    wait_painted(page)
    api = api_run({**BIG, "window_slice": {"batch": 0, "channel": 0}})["windows"]["values"]
    # 3 × 64 × 64 frame cells and 62 × 62 output cells: painted on canvases, read back by pixel.
    assert page.locator("#win-drawing svg").get_attribute("data-cells") == "canvas"
    band0 = "#win-drawing g.frame[data-band='0'] foreignObject.fcanvas"
    unfilled = css_rgb(page, "#dbeafe")  # an input cell without its value
    for r, c in [(0, 0), (5, 63), (31, 17), (63, 0), (63, 63)]:
        assert canvas_pixel(page, band0, r, c) != unfilled
    page.locator("#win-drawing .chan-strip .thumb[data-channel='1']").click()
    wait_painted(page)
    tip = hover_canvas(page, "#win-drawing g.frame[data-band='1'] foreignObject.fcanvas", 3, 5, "frame (3, 5)")
    shown = float(tip.split("= ")[-1].replace("−", "-"))
    assert shown == pytest.approx(api["input"][1][3][5], rel=1e-6)
    assert "input[1, 3, 5]" in tip
    # Fast mode is on for 3,844 steps; one step moves a whole output row.
    assert page.locator("#win-fast").is_checked()
    page.locator("#win-scrub").fill("0")
    page.locator("#win-play").click()
    page.wait_for_function("() => Number(document.querySelector('#window-panel').dataset.step) > 0", timeout=5000)
    assert int(panel.get_attribute("data-step")) % 62 == 0
    pause(page)
    # Click an output cell to jump there.
    page.mouse.click(*canvas_point(page, "#win-drawing foreignObject.ocanvas", 40, 7))
    assert int(panel.get_attribute("data-step")) == 40 * 62 + 7
    explained(page, [0, 0, 40, 7])  # the click pinned it (an answer arriving later would follow it back)
    # Another output channel: its planes are fetched, with real values again.
    n = int(page.evaluate("document.querySelector('#layer-view').dataset.renders"))
    page.locator("#win-channel").select_option("2")
    wait_render(page, n)
    page.wait_for_function("() => document.querySelector('#window-panel').dataset.values === 'slice'")
    tip = hover_canvas(page, "#win-drawing foreignObject.ocanvas", 0, 0, "output[0, 0]")
    api2 = api_run({**BIG, "window_slice": {"batch": 0, "channel": 2}})["windows"]["values"]
    assert float(tip.split("= ")[-1].split("\n")[0].replace("−", "-")) == pytest.approx(api2["output"][0][0], rel=1e-5)


def _x(page):
    return page.evaluate("+document.querySelector('#win-drawing rect.win-cell[data-term=\"0\"]').getAttribute('x')")


def test_window_glides_between_positions(page):
    open_view(page, CONV1D)
    pause(page)
    page.locator("#win-scrub").fill("0")
    page.wait_for_timeout(400)
    start = _x(page)
    cell = page.evaluate("+document.querySelector('#win-drawing rect.fcell').getAttribute('width')")
    page.locator("#win-fwd").click()
    page.wait_for_timeout(90)
    mid = _x(page)
    assert start < mid < start + cell  # in motion, not a jump
    page.wait_for_timeout(400)
    assert _x(page) == pytest.approx(start + cell)


def test_reduced_motion_jumps(page):
    page.emulate_media(reduced_motion="reduce")
    open_view(page, CONV1D)
    pause(page)
    page.locator("#win-scrub").fill("0")
    start = _x(page)
    cell = page.evaluate("+document.querySelector('#win-drawing rect.fcell').getAttribute('width')")
    page.locator("#win-fwd").click()
    assert _x(page) == pytest.approx(start + cell)


def test_export_menu_downloads_a_gif(page):
    open_view(page, CONV1D)
    page.locator("#win-export > summary").click()
    with page.expect_download() as dl:
        page.locator("#win-export button[data-format='gif']").click()
    d = dl.value
    assert d.suggested_filename == "Conv1d-window.gif"
    data = Path(d.path()).read_bytes()
    assert data[:6] == b"GIF89a"
    assert Image.open(io.BytesIO(data)).n_frames == 6


CONV3D = {
    "layer": {"type": "Conv3d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
    "inputs": [{"shape": [1, 2, 5, 6, 6]}],
    "seed": 1,
}


def test_export_menu_offers_3d_animation_for_the_depth_shown(page):
    open_view(page, CONV3D, {"depth": 1, "channel": 2})
    assert page.locator("#win-depth").input_value() == "1"
    page.locator("#win-export > summary").click()
    items = page.locator("#win-export .export-items")
    assert items.locator("button[data-format]").all_inner_texts() == ["Animated GIF", "WebM video", "MP4 video"]
    assert items.locator("button[data-format='gif']").is_enabled()
    assert page.locator("#win-export .export-depths").is_visible()
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if "/api/animate" in r.url else None)
    with page.expect_download() as dl:
        items.locator("button[data-format='gif']").click()
    data = Path(dl.value.path()).read_bytes()
    assert dl.value.suggested_filename == "Conv3d-window.gif" and data[:6] == b"GIF89a"
    assert sent[-1]["window_slice"] == {"batch": 0, "channel": 2, "depth": 1}
    im = Image.open(io.BytesIO(data))
    assert im.n_frames == 3 * 3 + 1  # one output depth slice: H_out·W_out steps and the held frame
    # Every depth slice in one animation.
    page.locator("#win-export > summary").click()
    page.locator("#win-export-all-depths").check()
    with page.expect_download() as dl:
        items.locator("button[data-format='gif']").click()
    assert sent[-1]["window_slice"]["depth"] == "all"
    assert Image.open(io.BytesIO(Path(dl.value.path()).read_bytes())).n_frames == 27 + 1


def test_export_depth_box_only_for_3d(page):
    open_view(page, CONV1D)
    page.locator("#win-export > summary").click()
    assert not page.locator("#win-export .export-depths").is_visible()
