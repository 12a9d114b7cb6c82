"""Issue 19, navigating a big graph: zoom and pan (mouse, keyboard, fit to screen), the selected node's
details beside the graph, cost colouring with a legend whose numbers are the trace's, and exports that
hold the whole graph (SVG, PNG) and every row of the trace (CSV, LaTeX)."""

import csv
import io
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from .helpers import config_url, wait_js
from .test_network import current_ui, net_renders, wait_net

pytestmark = pytest.mark.browser

SHOTS = Path("/work/shots/h19-merge")
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def presets(base_url):
    return httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]


@pytest.fixture(scope="module")
def resnet50(presets):
    return next(p for p in presets if p["id"] == "resnet50")["request"]


@pytest.fixture(scope="module")
def tutorial(presets):
    return next(p for p in presets if p["id"] == "tutorial-residual-net")["request"]


@pytest.fixture(scope="module")
def resnet50_shape(base_url, resnet50):
    """The API's own answer for ResNet-50 (trace, totals, graph), to compare the page with."""
    r = httpx.post(f"{base_url}/api/shape", json=resnet50, timeout=300)
    r.raise_for_status()
    return r.json()


def open_graph(page, request: dict, ui: dict | None = None, timeout: float = 180_000) -> None:
    page.goto(config_url(request, {"view": "network", **(ui or {})}))
    wait_js(
        page,
        "() => document.querySelectorAll('#net-graph svg g.df-node').length > 0 && "
        "document.querySelector('#network-view').getAttribute('aria-busy') === 'false'",
        timeout=timeout,
    )
    page.locator("#net-graph").scroll_into_view_if_needed()


def transform(page) -> dict:
    """The zoom transform of the graph's drawing: {k, x, y}."""
    return page.evaluate(
        """() => { const m = document.querySelector('#net-graph svg.df-drawing > g').transform.baseVal.consolidate().matrix;
                   return {k: m.a, x: m.e, y: m.f}; }"""
    )


def boxes_outside_viewport(page) -> list[str]:
    """Ids of the nodes whose box is not wholly inside the graph's viewport."""
    return page.evaluate(
        """() => { const v = document.querySelector('#net-graph').getBoundingClientRect();
                   return [...document.querySelectorAll('#net-graph g.df-node')].filter((g) => {
                     const b = g.getBoundingClientRect();
                     return b.left < v.left - 0.5 || b.top < v.top - 0.5 || b.right > v.right + 0.5 || b.bottom > v.bottom + 0.5;
                   }).map((g) => g.dataset.id); }"""
    )


def test_zoom_pan_fit_with_mouse_buttons_and_keys(page, tutorial):
    open_graph(page, tutorial)
    t0 = transform(page)
    assert boxes_outside_viewport(page) == []  # a small graph opens whole

    page.click("#net-graph-zoom-in")
    t1 = transform(page)
    assert t1["k"] == pytest.approx(t0["k"] * 1.25)

    # a drag pans (the viewport on the screen: the toolbar's click may have scrolled the page above it)
    page.locator("#net-graph").scroll_into_view_if_needed()
    v = page.locator("#net-graph").bounding_box()
    page.mouse.move(v["x"] + 20, v["y"] + 20)
    page.mouse.down()
    page.mouse.move(v["x"] + 80, v["y"] + 50, steps=5)
    page.mouse.up()
    t2 = transform(page)
    assert (t2["x"] - t1["x"], t2["y"] - t1["y"]) == (pytest.approx(60, abs=1), pytest.approx(30, abs=1))
    assert t2["k"] == pytest.approx(t1["k"])

    # the wheel zooms at the pointer
    page.mouse.move(v["x"] + v["width"] / 2, v["y"] + v["height"] / 2)
    page.mouse.wheel(0, -300)
    wait_js(page, "k => Number(document.querySelector('#net-graph').dataset.zoom) > k * 1.01", t2["k"])
    t3 = transform(page)
    assert t3["k"] > t2["k"]

    # fit to screen: every node in the viewport again
    page.click("#net-graph-fit")
    assert boxes_outside_viewport(page) == []

    # the keyboard, with the graph focused: + zooms, arrows pan, − zooms out, 0 fits
    page.locator("#net-graph").focus()
    before = transform(page)
    page.keyboard.press("+")
    assert transform(page)["k"] == pytest.approx(before["k"] * 1.25)
    at = transform(page)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    after = transform(page)
    assert (after["x"] - at["x"], after["y"] - at["y"]) == (pytest.approx(60), pytest.approx(60))
    page.keyboard.press("-")
    assert transform(page)["k"] == pytest.approx(at["k"] / 1.25)
    page.keyboard.press("0")
    assert transform(page) == pytest.approx(before)
    assert boxes_outside_viewport(page) == []


def test_a_redraw_of_the_same_graph_keeps_the_view(page, tutorial):
    open_graph(page, tutorial)
    page.click("#net-graph-zoom-in")
    page.click("#net-graph-zoom-in")
    kept = transform(page)
    # the colouring redraws nothing; an edit's new answer redraws the same graph
    page.select_option("#net-graph-cost", "params")
    assert transform(page) == pytest.approx(kept)
    n = net_renders(page)
    page.locator('#network-view [data-part="run"] input[name="seed"]').fill("7")
    wait_net(page, n)
    wait_js(page, "() => document.querySelector('#net-graph svg g.df-node')")
    assert transform(page) == pytest.approx(kept)


def test_selected_node_details_beside_the_graph(page, tutorial, base_url):
    shape = httpx.post(f"{base_url}/api/shape", json=tutorial, timeout=60).json()
    entry = next(t for t in shape["trace"] if t["path"] == "block1.fc1")
    open_graph(page, tutorial)
    details = page.locator("#net-graph-details")
    assert "Click a node" in details.inner_text()
    page.locator('#net-graph g.df-node[data-path="block1.fc1"]').click()
    wait_js(page, "() => document.querySelector('#net-graph-details').dataset.node !== ''")
    text = details.inner_text()
    assert "Linear block1.fc1" in text
    assert f"{entry['param_count']:,}" in text
    assert "(5, 10)" in text and "(5, 50)" in text  # its input and output, as the trace has them
    assert current_ui(page)["graphNode"] == details.get_attribute("data-node")
    assert page.locator("#net-graph g.df-node.df-selected").get_attribute("data-path") == "block1.fc1"
    # beside the graph at 1280 px: the same height band, to its right
    g = page.locator("#net-graph").bounding_box()
    d = details.bounding_box()
    assert d["x"] >= g["x"] + g["width"] and d["y"] < g["y"] + g["height"]

    # the selection travels in the link
    page.reload()
    wait_js(page, "() => document.querySelector('#net-graph-details')?.innerText.includes('block1.fc1')")
    assert "Linear block1.fc1" in details.inner_text()

    # the drill-down sits in the panel
    page.click("#net-graph-details .df-open")
    page.locator("#drill-bar").wait_for(state="visible")
    assert current_ui(page)["drill"]["path"] == "block1.fc1"


def test_details_stack_under_the_graph_on_a_phone(page, tutorial):
    page.set_viewport_size({"width": 420, "height": 900})
    open_graph(page, tutorial)
    page.locator('#net-graph g.df-node[data-path="block1.fc2"]').dispatch_event("click")
    wait_js(page, "() => document.querySelector('#net-graph-details').innerText.includes('block1.fc2')")
    g = page.locator("#net-graph").bounding_box()
    d = page.locator("#net-graph-details").bounding_box()
    assert d["y"] >= g["y"] + g["height"]
    assert d["x"] + d["width"] <= 420
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#net-graph-panel").screenshot(path=str(SHOTS / "phone-graph-details.png"))


def test_resnet50_cost_colouring_fit_and_exports(page, resnet50, resnet50_shape):
    """ResNet-50 (177 nodes): colour by parameters, mult-adds and memory, the legend's ends are the
    trace's smallest and largest figure; fit shows every node; the SVG and PNG hold the whole graph
    however it is zoomed; the CSV and LaTeX hold every trace row. Collapsed, a stage (and a fold of N
    blocks) is coloured by its totals, the legend spans the boxes drawn, the SVG holds every box drawn."""
    open_graph(page, resnet50, {"expand": "all"})  # every node drawn (a big graph opens collapsed)
    n_nodes = page.locator("#net-graph g.df-node").count()
    assert n_nodes == len(resnet50_shape["graph"]["nodes"])
    assert page.locator("#net-graph-legend").is_hidden()
    fills0 = page.locator("#net-graph g.df-module .df-box").evaluate_all(
        "els => els.map(e => getComputedStyle(e).fill)"
    )
    assert len(set(fills0)) == 1

    trace = resnet50_shape["trace"]
    by_path = {t["path"]: t for t in trace}
    module_paths = [n["path"] for n in resnet50_shape["graph"]["nodes"] if n["op"] == "module"]
    for metric, field in [("params", "param_count"), ("macs", "macs"), ("memory", "activation_bytes")]:
        page.select_option("#net-graph-cost", metric)
        legend = page.locator("#net-graph-legend")
        legend.wait_for(state="visible")
        values = [by_path[p][field] for p in module_paths if by_path[p][field] is not None]
        positive = [v for v in values if v > 0]
        assert float(legend.get_attribute("data-min")) == min(positive)
        assert float(legend.get_attribute("data-max")) == max(positive)
        ticks = legend.locator(".df-legend-tick").evaluate_all("els => els.map(e => Number(e.dataset.value))")
        assert ticks[0] == min(positive) and ticks[-1] == max(positive)
        # every module node carries its trace figure, and the fills tell them apart
        got = page.locator("#net-graph g.df-module").evaluate_all(
            "els => els.map(e => [e.dataset.path, e.dataset.cost, getComputedStyle(e.querySelector('.df-box')).fill])"
        )
        for path, cost, _ in got:
            want = by_path[path][field]
            assert cost == ("none" if want is None else str(want))
        assert len({fill for _, _, fill in got}) >= 8
        assert current_ui(page)["graphCost"] == metric
        if metric == "params":
            assert "0" in legend.inner_text()  # ReLU and MaxPool: zero parameters, a colour of their own
    assert page.locator("#net-graph-legend").inner_text().startswith("activation memory")

    # fit shows every node
    page.click("#net-graph-fit")
    assert boxes_outside_viewport(page) == []

    # select a node, colour by parameters: the screenshot the issue asks for
    page.select_option("#net-graph-cost", "params")
    page.evaluate(
        "() => document.querySelector('#net-graph g.df-node[data-path=\"layer1.0.block.body.conv2\"]')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
    )
    wait_js(page, "() => document.querySelector('#net-graph-details').innerText.includes('layer1.0.block.body.conv2')")
    page.click("#net-graph-details .df-centre")
    assert transform(page)["k"] == 1
    sel = page.locator('#net-graph g.df-node[data-path="layer1.0.block.body.conv2"]').get_attribute("data-id")
    assert sel not in boxes_outside_viewport(page)
    page.locator("#net-graph-panel").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "resnet50-cost-details-1280.png"))

    # the SVG: zoomed in, the export still holds every node, and its viewBox covers every box
    with page.expect_download() as dl:
        page.click("#net-graph-svg")
    svg_text = Path(dl.value.path()).read_text()
    root = ET.fromstring(svg_text.split("?>", 1)[1])
    nodes = [g for g in root.iter(f"{SVG_NS}g") if "df-node" in (g.get("class") or "").split()]
    assert len(nodes) == n_nodes
    vx, vy, vw, vh = map(float, root.get("viewBox").split())
    assert float(root.get("width")) == vw and float(root.get("height")) == vh
    drawing = next(g for g in root if g.tag == f"{SVG_NS}g")
    assert drawing.get("transform") is None  # no zoom or pan in the file
    for g in nodes:
        tx, ty = map(float, re.match(r"translate\(([-\d.e]+),([-\d.e]+)\)", g.get("transform")).groups())
        shape = next(c for c in g if c.tag in (f"{SVG_NS}rect", f"{SVG_NS}circle"))
        if shape.tag == f"{SVG_NS}rect":
            w, h = float(shape.get("width")), float(shape.get("height"))
        else:
            w = h = 2 * float(shape.get("r"))
        assert vx <= tx and vy <= ty and tx + w <= vx + vw and ty + h <= vy + vh, g.get("data-id")
    # styles inlined (the file stands alone), cost colours included, and the legend with it
    conv = next(g for g in nodes if g.get("data-path") == "fc")
    assert "fill:" in conv.find(f"{SVG_NS}rect").get("style")
    assert "parameters" in svg_text and "df-legend-export" in svg_text

    # the PNG: a valid PNG of the exported SVG's size at the export's scale
    with page.expect_download() as dl:
        page.click("#net-graph-png")
    png = Path(dl.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    w, h = struct.unpack(">II", png[16:24])
    scale = min(2, 16384 / max(vw, vh))
    assert (w, h) == (int(vw * scale), int(vh * scale))

    # the trace as CSV: every row, in order, with its figures
    with page.expect_download() as dl:
        page.click("#net-table-csv")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [r["path"] for r in rows[:-1]] == [t["path"] for t in trace]
    assert rows[-1]["path"] == "Total" and int(rows[-1]["param_count"]) == 25_557_032
    for r, t in zip(rows, trace, strict=False):
        assert int(r["param_count"]) == t["param_count"]
        assert r["macs"] == ("" if t["macs"] is None else str(t["macs"]))
        assert r["output_shape"] == "(" + ", ".join(map(str, t["output_shape"])) + ")"

    # and as a LaTeX tabular: a row per trace entry, underscores escaped
    with page.expect_download() as dl:
        page.click("#net-table-latex")
    tex = Path(dl.value.path()).read_text()
    assert tex.count("\\begin{tabular}") == 1 and tex.rstrip().endswith("\\end{tabular}")
    body = [ln for ln in tex.splitlines() if ln.endswith("\\\\")]
    assert len(body) == 1 + len(trace) + 1  # header, the rows, the total
    assert "25,557,032" in body[-1]
    assert "BatchNorm2d" in tex and "Param \\#" in tex

    # collapsed: a stage is one box coloured by its totals (the API's subtotals), and the legend's ends
    # are the smallest and largest figure among the boxes drawn now
    page.click("#net-graph-collapse-all")
    wait_js(
        page,
        "() => document.querySelector('#net-graph').getAttribute('aria-busy') === 'false' && "
        "document.querySelectorAll('#net-graph g.df-node').length <= 40",
    )
    page.locator('#net-graph g.df-node[data-id="block:layer2"]').focus()  # brought into the view
    page.keyboard.press("Enter")  # opens the stage: its first block, then the other three folded "× 3"
    wait_js(
        page,
        """() => document.querySelector('#net-graph g.df-node[data-id="fold:layer2.1"]') && """
        "document.querySelector('#net-graph').getAttribute('aria-busy') === 'false'",
    )
    subtotals = resnet50_shape["subtotals"]
    for metric, field in [("params", "param_count"), ("macs", "macs"), ("memory", "activation_bytes")]:
        page.select_option("#net-graph-cost", metric)
        got = page.locator("#net-graph g.df-node").evaluate_all("els => els.map(e => [e.dataset.id, e.dataset.cost])")
        cost = dict(got)
        for stage in ["layer1", "layer3", "layer4"]:
            assert cost[f"block:{stage}"] == str(subtotals[stage][field])
        assert cost["block:layer2.0"] == str(subtotals["layer2.0"][field])
        # the fold stands for three bottlenecks: all three counted, not its first
        assert cost["fold:layer2.1"] == str(sum(subtotals[f"layer2.{i}"][field] for i in (1, 2, 3)))
        drawn = [float(c) for c in cost.values() if c != "none" and float(c) > 0]
        legend = page.locator("#net-graph-legend")
        assert float(legend.get_attribute("data-min")) == min(drawn)
        assert float(legend.get_attribute("data-max")) == max(drawn)
    # a stage's box is as costly as its layers together: darker than any one layer of it drawn flat
    assert float(cost["block:layer4"]) > max(
        by_path[p]["activation_bytes"] for p in module_paths if p.startswith("layer4.")
    )
    shown = set(cost)
    # the SVG holds the graph as it is drawn now: every box, closed blocks and the fold included
    with page.expect_download() as dl:
        page.click("#net-graph-svg")
    root = ET.fromstring(Path(dl.value.path()).read_text().split("?>", 1)[1])
    exported = {g.get("data-id") for g in root.iter(f"{SVG_NS}g") if "df-node" in (g.get("class") or "").split()}
    assert exported == shown and {"block:layer4", "fold:layer2.1"} <= exported


def test_csv_and_latex_escape_what_they_must(page, tutorial):
    open_graph(page, tutorial)
    got = page.evaluate(
        """async () => {
             const m = await import('/static/js/util/table-export.js');
             const rows = [
               {path: 'a_b&c%d#e$f{g}h~i^j\\\\k', type: 'T_1', depth: 0, leaf: true, input_shapes: [[2, 3], [4]],
                output_shape: [2, 3], param_count: 1234567, macs: null, activation_bytes: 24},
               {path: 'x."y",z', type: '=HYPERLINK()', depth: 1, leaf: false, input_shapes: [[1]],
                output_shape: [1], param_count: 0, macs: 5, activation_bytes: 4},
             ];
             return {csv: m.traceCsv(rows, {param_count: 1234567, macs: 5, activation_bytes: 28}),
                     tex: m.traceLatex(rows, {param_count: 1234567, macs: 5, macs_complete: false}),
                     esc: m.latexEscape('100% of x_1 & y#2 {z} $w ~ ^ \\\\ < > |')};
           }"""
    )
    rows = list(csv.reader(io.StringIO(got["csv"])))
    assert rows[0][:3] == ["path", "type", "depth"]
    assert rows[1][0] == "a_b&c%d#e$f{g}h~i^j\\k"
    assert rows[1][4] == "(2, 3); (4,)" and rows[1][5] == "(2, 3)" and rows[1][7] == ""
    assert rows[2][0] == 'x."y",z'  # quotes doubled, the comma kept inside the field
    assert rows[2][1] == "'=HYPERLINK()"  # never a formula in a spreadsheet
    assert rows[3][0] == "Total" and rows[3][6] == "1234567"
    assert got["esc"] == (
        "100\\% of x\\_1 \\& y\\#2 \\{z\\} \\$w \\textasciitilde{} \\textasciicircum{} \\textbackslash{} "
        "\\textless{} \\textgreater{} \\textbar{}"
    )
    tex = got["tex"]
    assert (
        "a\\_b\\&c\\%d\\#e\\$f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k & T\\_1 & (2, 3) & 1,234,567 & -- \\\\"
        in tex
    )
    assert '\\hspace{1em}x."y",z & =HYPERLINK() & (1,) & (0) & (5) \\\\' in tex
    assert "Total &  &  & 1,234,567 & $\\geq$ 5 \\\\" in tex
    # no special character left bare in a cell: every & is a column separator or escaped
    for line in tex.splitlines():
        if line.endswith("\\\\") and not line.startswith("Layer"):
            assert line.count(" & ") == 4, line


def test_cost_scale_and_view_geometry(page, tutorial):
    """The pure parts: the ramp darkens as the figure grows and its text stays readable on it; the legend
    runs from the smallest to the largest figure; a module called twice takes its two trace entries in
    order; fit puts any box inside the viewport; centring puts the point in the middle."""
    open_graph(page, tutorial)
    got = page.evaluate(
        """async () => {
             const c = await import('/static/js/geometry/cost.js');
             const v = await import('/static/js/geometry/graph-view.js');
             const contrast = (a, b) => { const [x, y] = [c.luminance(a), c.luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
             const ramp = Array.from({length: 21}, (_, i) => c.rampColour(i / 20));
             const scale = c.costScale([0, null, 128, 4096, 2049000, 36864]);
             const ticks = c.legendTicks(scale);
             const graph = {nodes: [{id: 'a', op: 'module', path: 'fc'}, {id: 'r', op: 'function', path: null},
                                    {id: 'b', op: 'module', path: 'fc'}]};
             const trace = [{path: 'fc', param_count: 6, macs: 10, activation_bytes: 40},
                            {path: 'fc', param_count: 6, macs: 20, activation_bytes: 80}];
             const macs = c.nodeCosts(graph, trace, 'macs');
             // a block drawn as one box (collapsed): parameters its own, mult-adds and memory its layers' sum
             const nested = [{path: 'blk', leaf: false, param_count: 30, macs: null, activation_bytes: 8},
                             {path: 'blk.a', leaf: true, param_count: 10, macs: 100, activation_bytes: 4},
                             {path: 'blk.b', leaf: true, param_count: 20, macs: null, activation_bytes: 4},
                             {path: 'blkx', leaf: true, param_count: 1, macs: 7, activation_bytes: 2}];
             // a collapsed block carries its totals (geometry/collapse.js, from the API's subtotals): those
             // are its figures, not its trace entry's
             const block = {nodes: [{id: 'B', op: 'block', path: 'blk', params: 30, macs: 100, memory: 8},
                                    {id: 'F', op: 'fold', path: 'blk.a', params: 60, macs: 300, memory: 24}]};
             const blockCosts = ['params', 'macs', 'memory'].map((m) => [c.nodeCosts(block, nested, m).get('B'), c.nodeCosts(block, nested, m).get('F')]);
             const fits = [];
             for (const box of [{x: 0, y: 0, w: 400, h: 15728}, {x: -20, y: 30, w: 3000, h: 200}, {x: 5, y: 5, w: 50, h: 40}]) {
               const view = {width: 434, height: 574};
               const t = v.fitTransform(box, view);
               fits.push([t.x + t.k * box.x >= 0, t.y + t.k * box.y >= 0, t.x + t.k * (box.x + box.w) <= view.width + 1e-9,
                          t.y + t.k * (box.y + box.h) <= view.height + 1e-9, t.k <= 1]);
             }
             const ct = v.centreTransform({x: 100, y: 900}, 1, {width: 400, height: 600});
             return {lum: ramp.map(c.luminance), contrast: ramp.map((f) => contrast(f, c.textOn(f))),
                     ticks: ticks.map((t) => [t.value, t.at]), zero: scale.colour(0), none: scale.colour(null),
                     zeroFill: c.ZERO_FILL, noneFill: c.NONE_FILL, macs: [...macs.entries()], fits, blockCosts,
                     centre: [ct.x + 100 * ct.k, ct.y + 900 * ct.k]};
           }"""
    )
    assert all(a > b for a, b in zip(got["lum"], got["lum"][1:], strict=False))
    assert min(got["contrast"]) >= 4.5
    ticks = got["ticks"]
    assert ticks[0] == [128, 0] and ticks[-1] == [2049000, 1]
    assert [a for _, a in ticks] == sorted(a for _, a in ticks) and len(ticks) >= 3
    assert got["zero"] == got["zeroFill"] and got["none"] == got["noneFill"]
    assert got["macs"] == [["a", 10], ["r", None], ["b", 20]]
    assert got["blockCosts"] == [[30, 60], [100, 300], [8, 24]]
    assert all(all(f) for f in got["fits"]), got["fits"]
    assert got["centre"] == [200, 300]


def test_pinch_zooms_on_a_touch_screen(browser, base_url, tutorial):
    """Two fingers moving apart zoom in, as on a phone (touch events through the DevTools protocol)."""
    ctx = browser.new_context(base_url=base_url, viewport={"width": 420, "height": 900}, has_touch=True, is_mobile=True)
    try:
        page = ctx.new_page()
        open_graph(page, tutorial)
        before = transform(page)
        v = page.locator("#net-graph").bounding_box()
        cx, cy = v["x"] + v["width"] / 2, v["y"] + min(v["height"], 900 - v["y"]) / 2
        cdp = ctx.new_cdp_session(page)

        def touch(kind: str, d: float) -> None:
            points = [] if kind == "touchEnd" else [{"x": cx - d, "y": cy, "id": 1}, {"x": cx + d, "y": cy, "id": 2}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", 30)
        for d in (40, 50, 60):
            touch("touchMove", d)
        touch("touchEnd", 0)
        after = transform(page)
        assert after["k"] == pytest.approx(before["k"] * 2, rel=0.05)
    finally:
        ctx.close()
