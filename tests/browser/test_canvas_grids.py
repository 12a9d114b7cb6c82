"""Issue 9: big grids (the sliding window's frames and output, the tensors' heatmaps) are painted on a
canvas, not one SVG node per cell, and still tell the same truth: the palette colour of each value,
the same tooltips, clicks and keys as the SVG cells. Small grids stay SVG."""

import pytest

from .helpers import (
    canvas_pixel,
    canvas_point,
    css_rgb,
    hover_canvas,
    open_view,
    tooltip_html,
    wait_js,
    wait_painted,
    wait_render,
    wait_tooltip,
)

pytestmark = pytest.mark.browser


def conv(hw: int) -> dict:
    return {
        "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
        "inputs": [{"shape": [1, 3, hw, hw]}],
        "seed": 5,
    }


SMALL = {
    "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
    "inputs": [{"shape": [6, 3, 8]}],
    "seed": 42,
}
OUT = "#win-drawing foreignObject.ocanvas"


def shown_after(page, action) -> str:
    """The tooltip that ``action`` (a hover or click) brings up: cleared first, then waited for, since
    Chromium hands mouse events to the page with the next frame, after Playwright's call returns."""
    page.evaluate("() => document.querySelectorAll('.tooltip').forEach(t => { t.hidden = true; t.innerHTML = ''; })")
    action()
    wait_js(page, "() => [...document.querySelectorAll('.tooltip')].some(t => !t.hidden && t.innerHTML)")
    return tooltip_html(page)


def pause(page):
    if page.locator("#win-play").get_attribute("aria-pressed") == "true":
        page.locator("#win-play").click()


def open_big(page, hw=64):
    page.emulate_media(reduced_motion="reduce")  # no autoplay: the steps stay where the test puts them
    open_view(page, conv(hw))
    wait_js(page, "() => document.querySelector('#window-panel').dataset.values === 'slice'")
    pause(page)
    wait_painted(page)


def tensors_painted(page):
    wait_js(
        page,
        "() => [...document.querySelectorAll('#tensors-body svg.drawing[data-cells=canvas]')].length > 0",
    )


def show_in_channel(page, channel):
    """Draw input channel ``channel`` big: click its thumbnail in the channel strip."""
    page.locator(f"#win-drawing .chan-strip .thumb[data-channel='{channel}']").click()
    wait_js(page, "c => document.querySelector('#win-drawing g.frame')?.dataset.channel === String(c)", channel)
    wait_painted(page)


def module(page, path, body, arg=None):
    return page.evaluate(f"async (arg) => {{ const m = await import('{path}'); {body} }}", arg)


@pytest.mark.parametrize("hw", [64, 128])
def test_big_grids_are_canvases_with_a_bounded_number_of_nodes(page, hw):
    open_big(page, hw)
    drawing = page.locator("#win-drawing svg.drawing")
    assert drawing.get_attribute("data-cells") == "canvas"
    # 3 input channels of hw × hw and an output of (hw-2)²: tens of thousands of cells, a few nodes.
    nodes = page.evaluate("document.querySelectorAll('#win-drawing *').length")
    assert nodes < 300, nodes
    assert page.locator("#win-drawing rect.fcell, #win-drawing rect.ocell").count() == 0
    # One input channel drawn big (a canvas), every channel small in the strip (one more canvas).
    assert page.locator("#win-drawing foreignObject.fcanvas canvas").count() == 1
    assert page.locator("#win-drawing .chan-strip .thumb").count() == 3
    assert page.locator("#win-drawing foreignObject.scanvas canvas").count() == 1
    assert page.locator(f"{OUT} canvas").count() == 1
    # The kernel slice stays SVG: the drawn channel's 3 × 3 weights.
    assert page.locator("#win-drawing rect.kcell").count() == 9
    # The tensors' heatmaps too (the input and output previews are thousands of cells).
    tensors_painted(page)
    heat_nodes = page.evaluate("document.querySelectorAll('#tensors-body svg *').length")
    assert heat_nodes < 300, heat_nodes
    assert page.locator("#tensors-body article[data-name='input'] svg").get_attribute("data-cells") == "canvas"


def test_small_grids_still_draw_svg_cells(page):
    open_view(page, SMALL)
    assert page.locator("#win-drawing svg.drawing").get_attribute("data-cells") == "svg"
    assert page.locator("#win-drawing rect.fcell").count() == 3 * 8
    assert page.locator("#win-drawing rect.ocell").count() == 5
    assert page.locator("#win-drawing foreignObject").count() == 0
    assert page.locator("#tensors-body foreignObject").count() == 0
    assert page.locator("#tensors-body rect.hcell").count() > 0


def test_canvas_pixels_have_the_palette_colour_of_their_values(page, api_run):
    open_big(page)
    page.locator("#win-scrub").fill(page.locator("#win-scrub").get_attribute("max"))  # every output cell filled
    values = api_run({**conv(64), "window_slice": {"batch": 0, "channel": 0}})["windows"]["values"]
    out = values["output"]
    lo = min(min(row) for row in out)
    hi = max(max(row) for row in out)
    cells = [(0, 0), (0, 61), (17, 33), (40, 7), (61, 61)]
    expected = module(
        page,
        "/static/js/draw/common.js",
        "const color = m.valueColor(arg.domain); return arg.values.map(color);",
        {"domain": [lo, hi], "values": [out[r][c] for r, c in cells]},
    )
    for (r, c), color in zip(cells, expected):
        assert canvas_pixel(page, OUT, r, c) == css_rgb(page, color), (r, c, color)
    # The input frames: the colour of the input value, on the scale of all three channels.
    ins = values["input"]
    flat = [v for ch in ins for row in ch for v in row]
    probes = [(0, 0, 0), (1, 3, 5), (2, 63, 63)]
    expected = module(
        page,
        "/static/js/draw/common.js",
        "const color = m.valueColor(arg.domain); return arg.values.map(color);",
        {"domain": [min(flat), max(flat)], "values": [ins[b][r][c] for b, r, c in probes]},
    )
    for (b, r, c), color in zip(probes, expected):
        show_in_channel(page, b)
        fo = f"#win-drawing g.frame[data-band='{b}'] foreignObject.fcanvas"
        assert canvas_pixel(page, fo, r, c) == css_rgb(page, color), (b, r, c, color)
    show_in_channel(page, 0)
    # Not yet computed output cells are white, as in the SVG version.
    page.locator("#win-scrub").fill("10")
    assert canvas_pixel(page, OUT, 0, 11) == [255, 255, 255]
    assert canvas_pixel(page, OUT, 0, 10) == css_rgb(page, expected_color(page, lo, hi, out[0][10]))


def expected_color(page, lo, hi, v):
    return module(page, "/static/js/draw/common.js", "return m.valueColor(arg.d)(arg.v);", {"d": [lo, hi], "v": v})


def test_heatmap_canvas_colours_and_tooltips(page, api_run):
    open_big(page)
    tensors_painted(page)
    page.locator("#tensors-fold .fold-toggle").click()
    run = api_run(conv(64))
    x = run["inputs"][0]
    fo = "#tensors-body article[data-name='input'] foreignObject.hcanvas"
    # slice [0, 1] of the 32 × 32 preview (every 2nd element), where heatmapLayout placed it
    lay = page.locator("#tensors-body article[data-name='input'] g.slice").evaluate_all(
        "els => els.map(e => [+e.dataset.x, +e.dataset.y])"
    )
    assert len(lay) == 3
    ox, oy = lay[1]
    v = x["preview"][0][1][4][9]
    lim = max(abs(x["summary"]["min"]), abs(x["summary"]["max"]))
    color = module(page, "/static/js/draw/common.js", "return m.valueColor(arg.d)(arg.v);", {"d": [-lim, lim], "v": v})
    assert canvas_pixel(page, fo, 4, 9, origin=(ox, oy)) == css_rgb(page, color)
    # the preview cell stands for element (8, 18) of the real tensor
    tip = hover_canvas(page, fo, 4, 9, "input[0, 1, 8, 18]", origin=(ox, oy))
    assert float(tip.split("= ")[-1].replace("−", "-")) == pytest.approx(v, rel=1e-6)


# The same window drawing twice, from the same API answer: all SVG cells, and all canvas (the
# threshold forced both ways); hovering and clicking a cell must give the same tooltip and pick.
TWIN = {
    "layer": {
        "type": "Conv2d",
        "in_channels": 2,
        "out_channels": 3,
        "kernel_size": 3,
        "padding": 1,
        "padding_mode": "reflect",
    },
    "inputs": [{"shape": [1, 2, 6, 6]}],
    "seed": 11,
}
MAXPOOL = {
    "layer": {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
    "inputs": [{"shape": [1, 1, 7, 7]}],
}

BUILD_TWINS = """async ({cfg, band}) => {
  const wm = await import('/static/js/draw/windows.js');
  const cm = await import('/static/js/draw/common.js');
  const run = await (await fetch('/api/run', {method: 'POST', headers: {'content-type': 'application/json'},
                                                body: JSON.stringify(cfg)})).json();
  const w = run.windows;
  const get = (a, idx) => idx.reduce((v, i) => (v === undefined ? v : v[i]), a);
  const weight = run.params.find((p) => p.name === 'weight');
  const feeds = w.channel_map ? w.channel_map[0] : [0];
  const bands = feeds.map((c) => ({channel: c, inputValue: (coord) => get(run.inputs[0].data, [0, c, ...coord]),
    kernelValue: weight ? (k) => get(weight.data, [0, c, ...k]) : null}));
  window.__twins = {};
  for (const [id, above, left] of [['twin-svg', Infinity, 0], ['twin-canvas', 0, 640]]) {
    document.getElementById(id)?.remove();
    const div = document.createElement('div');
    div.id = id;
    Object.assign(div.style, {position: 'fixed', top: '0px', left: `${left}px`, width: '620px', background: '#fff', zIndex: 1000});
    document.body.append(div);
    const picks = [];
    const d = wm.createWindowDrawing(div, {win: w, width: 600, bands, band, outChannel: 0, canvasAbove: above,
      outputValue: (coord) => get(run.output.data, [0, 0, ...coord]),
      colorIn: cm.valueColor([-3, 3]), colorOut: cm.valueColor([-2, 2]), colorW: cm.valueColor([-1, 1]),
      names: {input: 'input', output: 'output'}, onPick: (c) => picks.push(c)});
    d.showStep(d.count - 1);
    await d.painted;
    window.__twins[id] = {d, picks};
  }
  return {frame: w.frame.shape, out: w.output_spatial, bands: bands.length,
          cells: [...document.querySelectorAll('#twin-canvas svg.drawing')].map((s) => s.dataset.cells)};
}"""


@pytest.mark.parametrize("cfg", [TWIN, MAXPOOL], ids=["reflect-padded-conv", "max-pool"])
def test_canvas_cells_answer_like_svg_cells(page, cfg):
    open_view(page, SMALL)
    info = page.evaluate(BUILD_TWINS, {"cfg": cfg, "band": 0})
    assert info["cells"] == ["canvas"]
    assert page.locator("#twin-svg svg").get_attribute("data-cells") == "svg"
    rows, cols = info["frame"]
    # Every frame cell: the canvas pixel has the SVG cell's fill (hatched padding aside), and hovering
    # gives the same tooltip; 2-D draws one input channel at a time, so each is drawn in turn.
    for b in range(info["bands"]):
        page.evaluate(BUILD_TWINS, {"cfg": cfg, "band": b})
        svg_cells = page.locator(f"#twin-svg g.frame[data-band='{b}'] rect.fcell")
        assert svg_cells.count() == rows * cols
        fills = svg_cells.evaluate_all("els => els.map(e => [e.dataset.coord, e.getAttribute('fill')])")
        fo = f"#twin-canvas g.frame[data-band='{b}'] foreignObject.fcanvas"
        for coord, fill in fills:
            r, c = map(int, coord.split(","))
            if not fill.startswith("url("):
                assert canvas_pixel(page, fo, r, c, at=0.2) == css_rgb(page, fill), (b, coord, fill)
        for r, c in [(0, 0), (0, 3), (2, 2), (rows - 1, cols - 1)]:
            # force: the window's own cells lie on top of some; they show the cell's tooltip too
            cell = page.locator(f"#twin-svg g.frame[data-band='{b}'] rect.fcell[data-coord='{r},{c}']")
            want = shown_after(page, lambda cell=cell: cell.hover(force=True))
            assert f"frame ({r}, {c})" in want
            page.mouse.move(0, 790)  # away from both drawings
            got = shown_after(page, lambda fo=fo, r=r, c=c: page.mouse.move(*canvas_point(page, fo, r, c)))
            assert got == want
    # Output cells: the same colour, tooltip and pick.
    orows, ocols = info["out"]
    svg_out = page.locator("#twin-svg rect.ocell")
    for coord, fill in svg_out.evaluate_all("els => els.map(e => [e.dataset.coord, e.getAttribute('fill')])"):
        r, c = map(int, coord.split(","))
        assert canvas_pixel(page, "#twin-canvas foreignObject.ocanvas", r, c, at=0.2) == css_rgb(page, fill), coord
    for r, c in [(0, 0), (orows - 1, ocols - 1), (orows // 2, 1)]:
        cell = page.locator(f"#twin-svg rect.ocell[data-coord='{r},{c}']")
        want = shown_after(page, lambda cell=cell: cell.click(force=True))
        assert f"output</b>[{r}, {c}]" in want and "click to explain" in want
        page.mouse.move(0, 790)
        got = shown_after(
            page, lambda r=r, c=c: page.mouse.click(*canvas_point(page, "#twin-canvas foreignObject.ocanvas", r, c))
        )
        assert got == want
    picks = page.evaluate("() => [window.__twins['twin-svg'].picks, window.__twins['twin-canvas'].picks]")
    assert picks[0] == picks[1] == [[r, c] for r, c in [(0, 0), (orows - 1, ocols - 1), (orows // 2, 1)]]


def test_keyboard_and_click_on_a_canvas_output(page):
    open_big(page)
    panel = page.locator("#window-panel")
    grid = page.locator("#win-drawing g.out-grid")
    grid.focus()
    assert panel.get_attribute("data-step") == "0"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert panel.get_attribute("data-step") == str(62 + 2)
    assert "row 1, column 2" in grid.get_attribute("aria-label")
    # The current cell is ringed on top of the canvas.
    ring = page.evaluate(
        "() => { const r = document.querySelector('#win-drawing rect.out-current');"
        " return [+r.getAttribute('x'), +r.getAttribute('y'), r.getAttribute('visibility')]; }"
    )
    fo = page.evaluate(
        f"() => {{ const f = document.querySelector('{OUT}'); return [+f.getAttribute('x'), +f.getAttribute('y')]; }}"
    )
    cell = float(page.locator("#win-drawing svg.drawing").get_attribute("data-cell"))
    assert ring == [fo[0] + 2 * cell, fo[1] + 1 * cell, "visible"]
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#explain-panel').dataset.index === '0,0,1,2'")
    assert page.locator("#win-drawing .pin-ring").count() == 1
    assert "Σ of 27 terms" in page.locator("#win-pin").inner_text()
    # Clicking another output cell on the canvas pins it the same way.
    page.mouse.click(*canvas_point(page, OUT, 30, 44))
    page.wait_for_function("() => document.querySelector('#explain-panel').dataset.index === '0,0,30,44'")
    assert panel.get_attribute("data-step") == str(30 * 62 + 44)


def test_export_turns_canvases_into_images(page):
    open_big(page)
    out = module(
        page,
        "/static/js/export.js",
        "const svg = document.querySelector('#win-drawing svg.drawing'); const text = m.svgString(svg);"
        "const doc = new DOMParser().parseFromString(text.replace(/^<\\?xml[^>]*>/, ''), 'image/svg+xml');"
        "const png = await m.pngBlob(svg, 1);"
        "return {bad: doc.querySelector('parsererror') !== null, fo: doc.querySelectorAll('foreignObject').length,"
        " images: [...doc.querySelectorAll('image')].map(i => [i.getAttribute('class'), i.getAttribute('href').slice(0, 22)]),"
        " png: png.size, type: png.type};",
    )
    assert not out["bad"]
    assert out["fo"] == 0
    assert sorted(out["images"]) == sorted(
        [
            ["fcanvas", "data:image/png;base64,"],
            ["ocanvas", "data:image/png;base64,"],
            ["scanvas", "data:image/png;base64,"],
        ]
    )
    assert out["type"] == "image/png" and out["png"] > 10_000


def test_grid_geometry_hit_testing(page):
    open_view(page, SMALL)
    out = module(
        page,
        "/static/js/geometry/grid.js",
        """
        const g = {x: 10, y: 20, rows: 3, cols: 4, cell: 5};
        const L = {sd: 3, cell: 5, frames: [{band: 0, z: 2, x: 0, y: 0, rows: 2, cols: 2}, {band: 0, z: 4, x: 20, y: 0, rows: 2, cols: 2}],
                   output: {x: 50, y: 0, rows: 2, cols: 3}};
        const H = {cell: 2, placed: [{x: 2, y: 16, rows: 2, cols: 2}, {x: 20, y: 16, rows: 2, cols: 2}]};
        return {
          inside: [m.cellAt(g, 10, 20), m.cellAt(g, 29.9, 34.9), m.cellAt(g, 15, 20)],
          outside: [m.cellAt(g, 9.9, 20), m.cellAt(g, 30, 20), m.cellAt(g, 10, 35)],
          origin: m.cellOrigin(g, 2, 3),
          frame: [m.frameHit(L, 21, 6), m.frameHit(L, 12, 2)],
          out: [m.outputHit(L, 64, 9, 7), m.outputHit(L, 65, 0, 7)],
          flat: [m.outputCoord({sd: 1}, 0, 4), m.outputCoord({sd: 2}, 3, 4), m.frameCoord({sd: 2}, {z: 9}, 1, 2)],
          heat: [m.heatmapHit(H, 23, 19), m.heatmapHit(H, 10, 17)],
          chunks: [m.rowChunks(10, 100, 300), m.rowChunks(3, 5000, 2048)],
          canvas: [m.useCanvas(1024), m.useCanvas(1025), m.useCanvas(50, 10)],
        };
        """,
    )
    assert out["inside"] == [{"r": 0, "c": 0}, {"r": 2, "c": 3}, {"r": 0, "c": 1}]
    assert out["outside"] == [None, None, None]
    assert out["origin"] == {"x": 25, "y": 30}
    assert out["frame"] == [{"plane": 1, "band": 0, "z": 4, "r": 1, "c": 0, "coord": [4, 1, 0]}, None]
    assert out["out"] == [{"r": 1, "c": 2, "coord": [7, 1, 2]}, None]
    assert out["flat"] == [[4], [3, 4], [1, 2]]
    assert out["heat"] == [{"slice": 1, "r": 1, "c": 1}, None]
    assert out["chunks"] == [[[0, 3], [3, 6], [6, 9], [9, 10]], [[0, 1], [1, 2], [2, 3]]]
    assert out["canvas"] == [False, True, True]


def test_an_edit_redraws_the_canvas_grids(page):
    open_big(page)
    n = int(page.evaluate("document.querySelector('#layer-view').dataset.renders"))
    page.locator('[data-field="layer.kernel_size"] input').fill("5")
    wait_render(page, n)
    wait_painted(page)
    # 64 - 5 + 1 = 60 output columns now, and 75 kernel weights
    width = float(page.locator(OUT).get_attribute("width"))
    cell = float(page.locator("#win-drawing svg.drawing").get_attribute("data-cell"))
    assert width == 60 * cell
    assert page.locator("#win-drawing rect.kcell").count() == 25  # the drawn channel's 5 × 5
    assert page.locator("#win-drawing foreignObject.fcanvas").count() == 1
    assert page.locator("#win-drawing .chan-strip .thumb").count() == 3


CONV3D = {
    "layer": {"type": "Conv3d", "in_channels": 2, "out_channels": 2, "kernel_size": 3},
    "inputs": [{"shape": [1, 2, 6, 20, 20]}],
    "seed": 4,
}


def test_3d_canvas_planes_follow_the_depth_selector(page, api_run):
    page.emulate_media(reduced_motion="reduce")
    open_view(page, CONV3D, {"depth": 2})
    wait_js(page, "() => document.querySelector('#window-panel').dataset.values === 'slice'")
    wait_painted(page)
    assert page.locator("#win-drawing svg.drawing").get_attribute("data-cells") == "canvas"
    planes = page.locator("#win-drawing foreignObject.fcanvas").evaluate_all(
        "els => els.map(e => [+e.dataset.band, +e.dataset.z])"
    )
    assert planes == [[0, 2], [0, 3], [0, 4]]  # output depth 2 reads input depths 2–4
    show_in_channel(page, 1)
    planes = page.locator("#win-drawing foreignObject.fcanvas").evaluate_all(
        "els => els.map(e => [+e.dataset.band, +e.dataset.z])"
    )
    assert planes == [[1, 2], [1, 3], [1, 4]]
    values = api_run({**CONV3D, "window_slice": {"batch": 0, "channel": 0}})["windows"]["values"]
    page.mouse.move(*canvas_point(page, "#win-drawing foreignObject.fcanvas[data-band='1'][data-z='3']", 4, 5))
    tip = wait_tooltip(page, "frame (3, 4, 5)")
    assert "input[1, 3, 4, 5]" in tip
    assert float(tip.split("= ")[-1].replace("−", "-")) == pytest.approx(values["input"][1][3][4][5], rel=1e-6)
    # The output grid is depth 2's; a click explains [0, 0, 2, r, c].
    page.mouse.click(*canvas_point(page, OUT, 7, 9))
    page.wait_for_function("() => document.querySelector('#explain-panel').dataset.index === '0,0,2,7,9'")
    page.locator("#win-depth").select_option("0")
    wait_js(
        page,
        "() => [...document.querySelectorAll('#win-drawing foreignObject.fcanvas')].map(e => e.dataset.z).join() === '0,1,2'",
    )
