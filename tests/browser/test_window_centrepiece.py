"""The sliding window as the page's centrepiece: big readable cells at 1280×800 (one input channel
at a time, with a strip of every channel), hover both ways, playback controls."""

import json
import urllib.parse

import pytest

from .helpers import config_url, open_view, renders, wait_js, wait_painted, wait_render

pytestmark = pytest.mark.browser

READABLE = 24  # px: a cell wide enough for its value

CONV2D_DEFAULT = {  # the catalog's example for Conv2d
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 6, 6]}],
    "seed": 0,
}


def run_module(page, path, body, arg=None):
    return page.evaluate(f"async (arg) => {{ const m = await import('{path}'); {body} }}", arg)


def lenet_conv3(presets):
    """The single-layer view of LeNet-5's second Conv2d (6 input channels on 14 × 14), as a drill-down."""
    net = presets["lenet5"]["request"]
    i = [k for k, lay in enumerate(net["layer"]["layers"]) if lay["type"] == "Conv2d"][1]
    n = net["inputs"][0]["shape"][0]
    drill = {"network": net, "field": f"layer.layers[{i}]", "path": str(i), "inputs": [[n, 6, 14, 14]]}
    req = {"layer": net["layer"]["layers"][i], "inputs": [{"shape": [n, 6, 14, 14]}], "seed": net.get("seed", 42)}
    return req, {"view": "layer", "drill": drill}


@pytest.fixture(scope="module")
def presets(base_url):
    import httpx

    return {p["id"]: p for p in httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]}


def measure(page):
    """Cell size in screen pixels of the frame, kernel and output grids, and the widths that matter."""
    return page.evaluate(
        """() => {
          const svg = document.querySelector('#win-drawing svg.drawing');
          const px = (sel) => { const e = svg.querySelector(sel); return e ? e.getBoundingClientRect() : null; };
          const frame = px('rect.fcell') || px('foreignObject.fcanvas');
          const cellOf = (sel) => { const r = px(sel); return r ? r.width : null; };
          return {
            cell: +svg.dataset.cell,
            frameCell: svg.querySelector('rect.fcell') ? cellOf('rect.fcell') : null,
            kernelCell: cellOf('rect.kcell'), outCell: cellOf('rect.ocell'),
            drawing: svg.getBoundingClientRect().width,
            panel: document.querySelector('#win-drawing').clientWidth,
            frames: [...svg.querySelectorAll('g.frame')].map((g) => g.dataset.channel),
            thumbs: [...svg.querySelectorAll('.chan-strip .thumb')].map((g) => g.dataset.channel),
            values: svg.querySelectorAll('text.fval').length,
            kvalues: svg.querySelectorAll('text.kval').length,
            frameRight: Math.max(...[...svg.querySelectorAll('g.frame')].map((g) => g.getBoundingClientRect().right)),
            outLeft: svg.querySelector('g.out-grid rect.out-frame').getBoundingClientRect().left,
          };
        }"""
    )


@pytest.mark.parametrize("which", ["conv2d-default", "lenet-conv3"])
def test_windows_with_several_channels_have_readable_cells_at_1280(page, presets, which):
    assert page.viewport_size == {"width": 1280, "height": 800}
    if which == "conv2d-default":
        open_view(page, CONV2D_DEFAULT)
        n_in, frame_cells, out_cells = 3, 36, 16
    else:
        open_view(page, *lenet_conv3(presets))
        n_in, frame_cells, out_cells = 6, 196, 100
    wait_painted(page)
    m = measure(page)
    # Frame, kernel and output share one cell size, at least 24 px on screen, with their values.
    for k in ("frameCell", "kernelCell", "outCell"):
        assert m[k] is not None and m[k] >= READABLE, (k, m)
    assert m["cell"] >= READABLE
    assert m["values"] == frame_cells  # every input cell carries its value
    assert m["kvalues"] == 9 if which == "conv2d-default" else m["kvalues"] == 25
    # The drawing uses the panel's width (it was 273 px of 746 for LeNet's third layer); a small
    # frame's cells stop growing where its output would leave the screen.
    assert m["drawing"] >= (0.9 if which == "lenet-conv3" else 0.65) * m["panel"], m
    assert m["drawing"] <= m["panel"] + 1
    # One input channel drawn, every channel in the strip; the output sits beside the frame.
    assert m["frames"] == ["0"]
    assert m["thumbs"] == [str(c) for c in range(n_in)]
    assert m["outLeft"] > m["frameRight"]
    assert page.locator("#win-drawing rect.ocell").count() == out_cells


def test_the_channel_strip_chooses_the_channel_drawn_by_click_and_keys(page):
    open_view(page, CONV2D_DEFAULT)
    page.locator("#win-play").click()  # pause
    strip = page.locator("#win-drawing .chan-strip")
    assert strip.get_attribute("role") == "radiogroup"
    # One tab stop: only the checked thumbnail is focusable.
    assert strip.locator(".thumb[tabindex='0']").count() == 1
    strip.locator(".thumb[data-channel='2']").click()
    wait_js(page, "() => document.querySelector('#win-drawing g.frame').dataset.channel === '2'")
    assert json.loads(urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["ui"][0])["inChannel"] == 2
    assert page.locator("#win-drawing .kernel-slice text").text_content() == "w[0, 2]"
    # Arrow keys move the choice (focus stays in the strip across the redraw), and only that: the
    # animation's step stays where it was.
    page.locator("#win-scrub").fill("5")
    strip.locator(".thumb[aria-checked='true']").focus()
    page.keyboard.press("ArrowLeft")
    wait_js(page, "() => document.querySelector('#win-drawing g.frame').dataset.channel === '1'")
    assert page.evaluate("document.activeElement.dataset.channel") == "1"
    assert page.locator("#window-panel").get_attribute("data-step") == "5"
    page.keyboard.press("Home")
    wait_js(page, "() => document.querySelector('#win-drawing g.frame').dataset.channel === '0'")
    # The choice survives a reload (it is in the link).
    page.locator("#win-drawing .chan-strip .thumb[data-channel='2']").click()
    wait_js(page, "() => document.querySelector('#win-drawing g.frame').dataset.channel === '2'")
    page.reload()
    wait_js(page, "() => document.querySelector('#win-drawing g.frame')?.dataset.channel === '2'")
    # Each thumbnail shows the window's place: at step 0 its top-left corner.
    win = page.locator("#win-drawing .thumb[data-channel='1'] rect.thumb-win")
    assert win.get_attribute("visibility") == "visible"


def test_frame_layout_geometry(page):
    """geometry/windows.js frameLayout: one channel at a time for 2-D, all channels for 1-D, the
    output beside the frame when the width allows and under it otherwise."""
    open_view(page)
    out = run_module(
        page,
        "/static/js/geometry/windows.js",
        """
        const win2 = (rows, cols, k, out) => ({spatial_dims: 2, kernel: [k, k], output_spatial: [out, out],
          frame: {shape: [rows, cols], input_origin: [0, 0], input_step: [1, 1]}, input_spatial: [rows, cols]});
        const lenet = m.frameLayout(win2(14, 14, 5, 10), {width: 746, bands: 6, band: 2, kernel: true});
        const conv = m.frameLayout(win2(6, 6, 3, 4), {width: 746, bands: 3, kernel: true});
        const phone = m.frameLayout(win2(14, 14, 5, 10), {width: 390, bands: 6, kernel: true});
        const one = m.frameLayout(win2(6, 6, 3, 4), {width: 746, bands: 1, kernel: true});
        const w1 = {spatial_dims: 1, kernel: [4], output_spatial: [5], frame: {shape: [8], input_origin: [0], input_step: [1]}, input_spatial: [8]};
        const conv1 = m.frameLayout(w1, {width: 746, bands: 3, kernel: true});
        const thumb = m.placeThumbCoord([3, 4], lenet, 5);
        return {
          lenet: {cell: lenet.cell, frames: lenet.frames.map((f) => f.band), shown: lenet.shown, stacked: lenet.stacked,
                  width: lenet.width, thumbs: lenet.strip.thumbs.length, kernelUnderOutput: lenet.kernels[0].y > lenet.output.y,
                  outRight: lenet.output.x > lenet.frames[0].x + 14 * lenet.cell,
                  strip: {x: lenet.strip.x, y: lenet.strip.y}, outX: lenet.output.x,
                  kernelBottom: lenet.kernels[0].y + 5 * lenet.cell,
                  place: m.placeFrameCoord([1, 2], lenet, 2), hidden: m.placeFrameCoord([1, 2], lenet, 0).plane},
          conv: {cell: conv.cell, width: conv.width},
          phone: {cell: phone.cell, stacked: phone.stacked, below: phone.output.y > phone.frames[0].y + 14 * phone.cell,
                  width: phone.width},
          one: {strip: one.strip, cell: one.cell}, phoneStripTop: phone.strip.y < phone.frames[0].y,
          conv1: {frames: conv1.frames.map((f) => f.band), strip: conv1.strip},
          thumb, t5: lenet.strip.thumbs[5], readable: m.READABLE_CELL,
        };
        """,
    )
    assert out["readable"] == READABLE
    lenet = out["lenet"]
    assert lenet["cell"] >= READABLE and not lenet["stacked"] and lenet["outRight"] and lenet["kernelUnderOutput"]
    assert lenet["frames"] == [2] and lenet["shown"] == [2] and lenet["thumbs"] == 6
    assert 0.9 * 746 <= lenet["width"] <= 746
    assert lenet["strip"]["x"] == lenet["outX"] and lenet["strip"]["y"] > lenet["kernelBottom"]  # under the kernel
    assert lenet["place"] == {"plane": 0, "r": 1, "c": 2} and lenet["hidden"] == -1
    # Conv2d's default: cells as big as a 240 px frame allows.
    assert out["conv"]["cell"] == 40 and out["conv"]["width"] <= 746
    # A phone: the output goes under the frame, which gives bigger cells than beside it.
    assert out["phone"]["stacked"] and out["phone"]["below"] and out["phone"]["cell"] >= READABLE
    assert out["phone"]["width"] <= 390
    assert out["one"]["strip"] is None and out["one"]["cell"] == 40
    assert out["phoneStripTop"]
    # 1-D keeps every channel, stacked, with no strip.
    assert out["conv1"]["frames"] == [0, 1, 2] and out["conv1"]["strip"] is None
    t5 = out["t5"]
    assert out["thumb"] == {
        "x": t5["x"] + 4 * t5["cell"],
        "y": t5["y"] + 3 * t5["cell"],
        "w": t5["cell"],
        "h": t5["cell"],
    }


# --- Hover both ways -------------------------------------------------------------------------

PADDED_STRIDED = {
    "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1},
    "inputs": [{"shape": [1, 1, 7, 7]}],
    "seed": 3,
}
REFLECT_STRIDED_1D = {
    "layer": {
        "type": "Conv1d",
        "in_channels": 1,
        "out_channels": 1,
        "kernel_size": 3,
        "stride": 2,
        "padding": 2,
        "padding_mode": "reflect",
    },
    "inputs": [{"shape": [1, 1, 5]}],
    "seed": 3,
}


def api_windows(win):
    """Every output's window from the API's compact description, expanded here independently:
    output o reads frame cells o·window_step + k·dilation, frame cell f holds input frame_map[d][f]."""
    import itertools

    out = {}
    for o in itertools.product(*(range(n) for n in win["output_spatial"])):
        cells = []
        for k in itertools.product(*(range(n) for n in win["kernel"])):
            f = tuple(o[d] * win["window_step"][d] + k[d] * win["dilation"][d] for d in range(len(o)))
            src = tuple(win["frame_map"][d][f[d]] for d in range(len(o)))
            cells.append((f, src if min(src) >= 0 else None))
        out[o] = cells
    return out


def lit(page, cls):
    return sorted(
        tuple(map(int, c.split(",")))
        for c in page.locator(f"#win-drawing .win-lit rect.{cls}").evaluate_all("els => els.map(e => e.dataset.coord)")
    )


@pytest.mark.parametrize("cfg", [PADDED_STRIDED, REFLECT_STRIDED_1D], ids=["padded-strided-2d", "reflect-strided-1d"])
def test_hover_lights_both_ways_as_the_api_windows_say(page, api_run, cfg):
    page.emulate_media(reduced_motion="reduce")
    open_view(page, cfg)
    page.locator("#win-play").click()  # pause: the moving window stays put
    win = api_run(cfg)["windows"]
    windows = api_windows(win)
    sd = win["spatial_dims"]
    key = (lambda c: f"{c[0]}") if sd == 1 else (lambda c: f"{c[0]},{c[1]}")
    # Output → its window: the frame cells torch's window reads.
    for o in list(windows)[:: max(1, len(windows) // 5)]:
        page.locator(f"#win-drawing rect.ocell[data-coord='{key(o)}']").hover(force=True)
        assert lit(page, "lit-win") == sorted(f for f, _ in windows[o]), o
        assert lit(page, "lit-out") == [o]
    # Input element → every output it feeds (through padding copies too, for reflect padding).
    frame_shape = win["frame"]["shape"]
    import itertools

    for f in itertools.product(*(range(n) for n in frame_shape)):
        src = tuple(win["frame_map"][d][f[d]] for d in range(sd))
        page.locator(f"#win-drawing rect.fcell[data-coord='{key(f)}']").hover(force=True)
        if min(src) >= 0:
            want = sorted(o for o, cells in windows.items() if any(s == src for _, s in cells))
            holders = sorted(
                g
                for g in itertools.product(*(range(n) for n in frame_shape))
                if tuple(win["frame_map"][d][g[d]] for d in range(sd)) == src
            )
            assert lit(page, "lit-in") == holders, f
        else:  # padding: the outputs whose window covers this very cell
            want = sorted(o for o, cells in windows.items() if any(g == f for g, _ in cells))
            assert lit(page, "lit-in") == [f]
        assert lit(page, "lit-out") == want, f
    page.mouse.move(0, 790)
    assert page.locator("#win-drawing .win-lit rect").count() == 0
    if cfg is PADDED_STRIDED:
        # stride 2: input (0, 0) (frame (1, 1)) feeds only output (0, 0); input (1, 1) (frame (2, 2)) four outputs.
        page.locator("#win-drawing rect.fcell[data-coord='2,2']").hover(force=True)
        assert lit(page, "lit-out") == [(0, 0), (0, 1), (1, 0), (1, 1)]
    else:
        # reflect padding: input 1 sits at frame 1 and 3, so it feeds outputs 0 and 1.
        page.locator("#win-drawing rect.fcell[data-coord='3']").hover(force=True)
        assert lit(page, "lit-in") == [(1,), (3,)]
        assert lit(page, "lit-out") == [(0,), (1,)]


def test_hover_on_canvas_grids_lights_outputs(page):
    cfg = {
        "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2},
        "inputs": [{"shape": [1, 1, 64, 64]}],
        "seed": 1,
    }
    open_view(page, cfg)
    page.locator("#win-play").click()
    wait_painted(page)
    assert page.locator("#win-drawing svg.drawing").get_attribute("data-cells") == "canvas"
    from .helpers import canvas_point

    page.mouse.move(*canvas_point(page, "#win-drawing foreignObject.fcanvas", 4, 4))
    wait_js(page, "() => document.querySelector('#win-drawing svg.drawing').dataset.lit === 'input 4,4'")
    # frame (4, 4) is read by outputs 1 and 2 along each axis (4 = 2·1 + 2 = 2·2 + 0)
    assert lit(page, "lit-out") == [(1, 1), (1, 2), (2, 1), (2, 2)]
    page.mouse.move(*canvas_point(page, "#win-drawing foreignObject.ocanvas", 10, 3))
    wait_js(page, "() => document.querySelector('#win-drawing svg.drawing').dataset.lit === 'output 10,3'")
    assert lit(page, "lit-win") == [(r, c) for r in range(20, 23) for c in range(6, 9)]


# --- Playback: speed, scrubber, click-to-pin ---------------------------------------------------


def ui_of(page):
    q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return json.loads(q["ui"][0]) if "ui" in q else {}


def test_playback_speed_scrubber_and_pin_by_mouse_and_keyboard(page):
    open_view(page, PADDED_STRIDED)
    panel = page.locator("#window-panel")
    step = lambda _page: int(panel.get_attribute("data-step"))  # noqa: E731
    assert page.locator("#win-play").get_attribute("aria-pressed") == "true"
    # Speed: the select, and − / + in the panel; the choice is in the link and survives a reload.
    page.locator("#win-speed").select_option("2")
    assert ui_of(page)["speed"] == 2
    page.locator("#win-play").click()  # pause
    page.locator("#win-play").focus()
    page.keyboard.press("+")
    assert page.locator("#win-speed").input_value() == "4" and ui_of(page)["speed"] == 4
    page.keyboard.press("-")
    page.keyboard.press("-")
    # the link follows the select as the page handles the second key: read it once the select shows 1
    page.wait_for_function("() => document.querySelector('#win-speed').value === '1'", timeout=5_000)
    page.wait_for_function("() => !new URLSearchParams(location.search).get('ui')?.includes('speed')", timeout=5_000)
    assert ui_of(page).get("speed", 1) == 1  # the default drops out of the link
    # Scrubber: arrow keys, Home/End; it says where it is in words.
    scrub = page.locator("#win-scrub")
    scrub.focus()
    page.keyboard.press("End")
    assert step(page) == 15
    assert scrub.get_attribute("aria-valuetext") == "step 16 of 16, output (3, 3)"
    page.keyboard.press("ArrowLeft")
    assert step(page) == 14
    page.keyboard.press("Home")
    assert step(page) == 0
    # Home/End also work from the panel's buttons.
    page.locator("#win-fwd").focus()
    page.keyboard.press("End")
    assert step(page) == 15
    # Click to pin: the output cell is explained, the window goes there and stays (paused).
    page.locator("#win-play").click()
    assert page.locator("#win-play").get_attribute("aria-pressed") == "true"
    page.locator("#win-drawing rect.ocell[data-coord='2,1']").click()
    wait_js(page, "() => document.querySelector('#explain-panel').dataset.index === '0,0,2,1'")
    assert page.locator("#win-play").get_attribute("aria-pressed") == "false"
    assert step(page) == 2 * 4 + 1
    assert ui_of(page)["pinned"]["index"] == [0, 0, 2, 1]
    assert page.locator("#win-drawing .pin-ring").count() == 1
    # … and by keyboard: the output grid is one tab stop, arrows move, Enter pins.
    grid = page.locator("#win-drawing g.out-grid")
    grid.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")  # the grid's cursor moves; the timeline does not step on top
    assert step(page) == 3 * 4 + 2
    page.keyboard.press("Enter")
    wait_js(page, "() => document.querySelector('#explain-panel').dataset.index === '0,0,3,2'")
    assert step(page) == 3 * 4 + 2
    # Fast mode is a choice in the link too.
    page.locator("#win-fast").check()
    assert ui_of(page)["fast"] is True
    page.reload()
    wait_js(
        page,
        "() => document.querySelector('#win-speed')?.value === '1' && !!document.querySelector('#win-drawing svg')",
    )
    assert page.locator("#win-fast").is_checked()
    page.locator("#win-speed").select_option("0.5")
    page.reload()
    wait_js(page, "() => document.querySelector('#win-speed')?.value === '0.5'")
    assert page.locator("#win-fast").is_checked()


# --- One layer, one picture: a module built of children is drawn as its dataflow -----------------


def diagram_graph(page):
    wait_js(page, "() => document.querySelector('#diagram')?.dataset.kind === 'dataflow'")
    return page.evaluate(
        """() => ({
          paths: [...document.querySelectorAll('#diagram svg.df-drawing g.df-node.df-module')].map((g) => g.dataset.path).sort(),
          adds: document.querySelectorAll('#diagram svg.df-drawing g.df-node.df-add').length,
          text: document.querySelector('#diagram').textContent,
          title: document.querySelector('#diagram-title').textContent,
        })"""
    )


def test_catalog_simple_residual_block_is_drawn_as_the_presets_dataflow(page, catalog, presets):
    entry = next(e for e in catalog["layers"] if e["type"] == "SimpleResidualBlock")
    # From the catalog's layer list.
    open_view(page)
    page.locator("#catalog button.cat-item[data-type='SimpleResidualBlock']").click()
    wait_js(page, "() => document.querySelector('#layer-view')?.dataset.type === 'SimpleResidualBlock'")
    got = diagram_graph(page)
    assert got["paths"] == ["downsample", "fc1", "fc2", "relu"] and got["adds"] == 1
    assert "H_out=20" not in got["text"] and "dataflow" in got["title"]
    # An edit redraws the dataflow with the new shapes (never the parameter boxes in between).
    n = renders(page)
    kinds = []
    page.expose_function("__kind", lambda k: kinds.append(k))
    page.evaluate(
        "() => new MutationObserver(() => window.__kind(document.querySelector('#diagram').dataset.kind))"
        ".observe(document.querySelector('#diagram'), {attributes: true, childList: true})"
    )
    page.locator('[data-field="layer.out_features"] input').fill("30")
    wait_render(page, n)
    got = diagram_graph(page)
    assert got["paths"] == ["downsample", "fc1", "fc2", "relu"] and "(5, 30)" in got["text"]
    assert set(kinds) == {"dataflow"}, kinds
    # The same picture as the preset of the same block in the network view's dataflow panel.
    preset = presets["tutorial-residual-block"]["request"]
    page.goto(config_url(preset, {"view": "network"}))
    wait_js(page, "() => document.querySelectorAll('#net-graph g.df-node').length > 0")
    net_paths = sorted(
        page.locator("#net-graph g.df-node.df-module").evaluate_all("els => els.map(e => e.dataset.path)")
    )
    assert net_paths == got["paths"]
    assert page.locator("#net-graph g.df-node.df-add").count() == got["adds"]
    assert entry["example"]["layer"]["type"] == "SimpleResidualBlock"


def test_a_composite_torch_module_and_a_drilled_block_draw_their_dataflow(page, catalog, presets):
    # A torch module made of children: TransformerEncoderLayer (its catalog example).
    entry = next(e for e in catalog["layers"] if e["type"] == "TransformerEncoderLayer")
    open_view(page, entry["example"])
    got = diagram_graph(page)
    assert {"self_attn", "linear1", "linear2", "norm1", "norm2"} <= set(got["paths"])
    assert got["adds"] >= 2  # its two residual additions
    # A block opened from a network (the two-block preset's block1): the same dataflow.
    net = presets["tutorial-residual-net"]["request"]
    first = net["layer"]["layers"][0]
    drill = {"network": net, "field": "layer.layers[0]", "path": first["name"], "inputs": [net["inputs"][0]["shape"]]}
    open_view(page, {"layer": first, "inputs": net["inputs"], "seed": net["seed"]}, {"view": "layer", "drill": drill})
    got = diagram_graph(page)
    assert got["paths"] == ["downsample", "fc1", "fc2", "relu"] and got["adds"] == 1
    # A layer that does its own arithmetic keeps its family drawing.
    open_view(page, {"layer": {"type": "Linear", "in_features": 4, "out_features": 3}, "inputs": [{"shape": [2, 4]}]})
    wait_js(page, "() => document.querySelector('#diagram')?.dataset.kind === 'linear'")


def test_calls_children_decides_from_the_graph(page):
    open_view(page)
    out = run_module(
        page,
        "/static/js/geometry/dataflow.js",
        """
        const leaf = {nodes: [{op: 'input'}, {op: 'module', path: ''}, {op: 'output'}]};
        const block = {nodes: [{op: 'input'}, {op: 'module', path: 'fc1'}, {op: 'function', label: '+'}]};
        return [m.callsChildren(leaf), m.callsChildren(block), m.callsChildren(null), m.callsChildren({nodes: []})];
        """,
    )
    assert out == [False, True, False, False]


def test_inverse_window_geometry_matches_the_forward_expansion(page):
    """outputsReading / framesOf / outputsFedBy (geometry/windows.js) invert windowAt and the frame map:
    checked against expanding every output's window, with stride, dilation and reflect copies."""
    open_view(page)
    out = run_module(
        page,
        "/static/js/geometry/windows.js",
        """
        // 2-D: frame 11 x 9, kernel 3 x 2, stride (3, 2), dilation (2, 3); frame_map as reflect padding 1
        const reflect = (n, p) => Array.from({length: n + 2 * p}, (_, f) => { const i = f - p; return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i; });
        const win = {spatial_dims: 2, kernel: [3, 2], window_step: [3, 2], dilation: [2, 3], output_spatial: [3, 3],
                     frame_map: [reflect(9, 1), reflect(7, 1)]};
        const bad = [];
        const outs = [];
        for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) outs.push([a, b]);
        for (let r = 0; r < 11; r++) for (let c = 0; c < 9; c++) {
          const want = outs.filter((o) => m.windowAt(win, o).some((f) => f[0] === r && f[1] === c)).map(String);
          const got = m.outputsReading(win, [r, c]).map(String);
          if (want.join(';') !== got.join(';')) bad.push(['reading', r, c, want, got]);
        }
        for (let i = 0; i < 9; i++) for (let j = 0; j < 7; j++) {
          const holders = [];
          for (let r = 0; r < 11; r++) for (let c = 0; c < 9; c++) if (win.frame_map[0][r] === i && win.frame_map[1][c] === j) holders.push(String([r, c]));
          if (m.framesOf(win, [i, j]).map(String).join(';') !== holders.join(';')) bad.push(['frames', i, j]);
          const want = outs.filter((o) => m.windowAt(win, o).some((f) => win.frame_map[0][f[0]] === i && win.frame_map[1][f[1]] === j)).map(String);
          if (m.outputsFedBy(win, [i, j]).map(String).join(';') !== want.join(';')) bad.push(['fed', i, j]);
        }
        return {bad, sample: m.outputsFedBy(win, [1, 2]), none: m.outputsReading({...win, window_step: null}, [0, 0])};
        """,
    )
    assert out["bad"] == []
    assert out["sample"] and out["none"] == []
