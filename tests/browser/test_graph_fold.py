"""Issue 19: big dataflow graphs collapse by module, fold repeated blocks, find any node, keep the view in the link.

ResNet-50 (177 nodes) and ViT-B/16 (142 nodes) open as a dozen boxes; the pure module that turns the API's
graph and an expansion into the drawn graph (static/js/geometry/collapse.js) is checked in the page too."""

from pathlib import Path

import httpx
import pytest

from .helpers import config_url, wait_js
from .test_a11y import audit
from .test_network import current_ui

pytestmark = pytest.mark.browser

SHOTS = Path("/work/shots/h19-merge")


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    # axe-core is injected as an inline script, which the page's CSP refuses (as test_a11y does)
    return {**browser_context_args, "bypass_csp": True}


@pytest.fixture(scope="module")
def preset_requests(base_url):
    return {p["id"]: p["request"] for p in httpx.get(f"{base_url}/api/presets", timeout=60).json()["presets"]}


@pytest.fixture(scope="module")
def resnet50(base_url, preset_requests):
    """The preset and the API's own answer for it (shapes, trace, subtotals, graph)."""
    req = preset_requests["resnet50"]
    return req, httpx.post(f"{base_url}/api/shape", json=req, timeout=120).json()


def wait_graph(page):
    wait_js(
        page,
        "() => document.querySelector('#net-graph svg') && document.querySelector('#net-graph').getAttribute('aria-busy') === 'false'",
        timeout=60_000,
    )


def wait_answer(page):
    # as test_network's wait_net, with room for a cold worker building ViT-B/16 on a busy machine
    wait_js(
        page,
        "() => { const v = document.querySelector('#network-view'); return Number(v.dataset.renders || 0) > 0 && v.getAttribute('aria-busy') === 'false'; }",
        timeout=60_000,
    )


def open_graph(page, req, ui=None):
    page.goto(config_url(req, {"view": "network", **(ui or {})}))
    wait_answer(page)
    wait_graph(page)


def boxes(page):
    return page.locator("#net-graph g.df-node").evaluate_all("els => els.map(e => e.dataset.id)")


def click_and_draw(page, locator):
    before = page.locator("#net-graph").get_attribute("data-expand")
    # the graph sits in a zoomed viewport: a box reached by the keyboard is brought into its view,
    # as a user pans to what they click
    locator.focus()
    locator.click()
    wait_js(
        page,
        "b => document.querySelector('#net-graph').dataset.expand !== b && document.querySelector('#net-graph').getAttribute('aria-busy') === 'false'",
        before,
    )


def shot(page, name, centre=None):
    """A 1280×800 picture: the panel's toolbar at the top, and the node `centre` in the middle of the graph's view."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#net-graph-panel").evaluate("e => e.scrollIntoView({block: 'start'})")
    if centre:
        page.evaluate(
            "async id => (await import('/static/js/net/graph-nav.js')).centreOnNode(document.querySelector('#net-graph'), id, 1)",
            centre,
        )
    page.screenshot(path=str(SHOTS / name))


# The network view also runs the model once for its script (/api/run): on a busy machine a real forward
# of ResNet-50 or ViT-B/16 may outlast the server's timeout. The graph comes from /api/shape alone.
SLOW_RUN = r"status of 504 \(Gateway Timeout\) \(http://[^)]*/api/run"


def test_resnet50_opens_collapsed_expands_folds_and_collapses(page, console, resnet50):
    console.allow(SLOW_RUN)
    req, answer = resnet50
    open_graph(page, req)
    ids = boxes(page)
    assert len(ids) <= 40 and len(answer["graph"]["nodes"]) == 177
    assert [i for i in ids if i.startswith("block:")] == [
        "block:layer1",
        "block:layer2",
        "block:layer3",
        "block:layer4",
    ]
    assert page.locator("#net-graph").get_attribute("data-nodes") == "177"
    # a collapsed stage is one box with its type, place, shapes in and out, and the API's totals
    stage = page.locator('#net-graph g.df-node[data-id="block:layer2"]')
    sub = answer["subtotals"]["layer2"]
    assert int(stage.get_attribute("data-params")) == sub["param_count"] == 1_219_584
    assert int(stage.get_attribute("data-macs")) == sub["macs"]
    text = stage.text_content()
    assert "Sequential" in text and "layer2" in text and "(1, 256, 56, 56) → (1, 512, 28, 28)" in text
    assert "1.22 M params" in text and "mult-adds" in text
    assert stage.get_attribute("role") == "button" and stage.get_attribute("aria-expanded") == "false"
    # edges into and out of a collapsed block keep the tensor's shape
    into = page.locator('#net-graph g.df-edge[data-to="block:layer2"]')
    assert into.count() == 1 and into.text_content() == "(1, 256, 56, 56)"
    assert page.locator('#net-graph g.df-edge[data-from="block:layer2"]').text_content() == "(1, 512, 28, 28)"
    shot(page, "resnet50-collapsed.png")

    # a click opens the stage in place: its first bottleneck, then the three equal ones folded "× 3"
    click_and_draw(page, stage)
    ids = boxes(page)
    assert "block:layer2" not in ids and "block:layer2.0" in ids and "fold:layer2.1" in ids
    fold = page.locator('#net-graph g.df-node[data-id="fold:layer2.1"]')
    assert fold.locator("text.df-type").text_content().strip() == "Sequential × 3"
    assert "layer2.1–3" in fold.text_content()
    assert int(fold.get_attribute("data-params")) == sum(
        answer["subtotals"][f"layer2.{i}"]["param_count"] for i in (1, 2, 3)
    )
    assert current_ui(page)["expand"] == ["layer2"]
    assert page.locator('#net-graph .df-collapse[data-key="layer2"]').get_attribute("aria-expanded") == "true"
    # only the open stage shows its fold; the others stay one box each
    assert page.locator("#net-graph g.df-fold").count() == 1
    shot(page, "resnet50-stage-expanded.png", centre="block:layer2.0")
    assert audit(page) == []

    # Enter on the fold unfolds the three blocks
    fold.focus()
    before = page.locator("#net-graph").get_attribute("data-expand")
    page.keyboard.press("Enter")
    wait_js(page, "b => document.querySelector('#net-graph').dataset.expand !== b", before)
    wait_graph(page)
    ids = boxes(page)
    assert {"block:layer2.1", "block:layer2.2", "block:layer2.3"} <= set(ids) and "fold:layer2.1" not in ids
    assert sorted(current_ui(page)["expand"]) == ["fold:layer2.1", "layer2"]
    # the focus stays on what was toggled: the first unfolded block
    assert page.evaluate("document.activeElement.dataset.id") == "block:layer2.1"

    # reloading the link restores the expansion
    page.reload()
    wait_answer(page)
    wait_graph(page)
    assert boxes(page) == ids

    # the frame's label collapses the stage again, and everything inside it
    click_and_draw(page, page.locator('#net-graph .df-collapse[data-key="layer2"]'))
    assert "block:layer2" in boxes(page) and "block:layer2.1" not in boxes(page)
    assert "expand" not in current_ui(page)


def test_expand_all_collapse_all_and_find(page, console, resnet50):
    console.allow(SLOW_RUN)
    req, answer = resnet50
    open_graph(page, req)
    collapsed = boxes(page)
    click_and_draw(page, page.locator("#net-graph-expand-all"))
    assert len(boxes(page)) == 177 and current_ui(page)["expand"] == "all"
    assert page.locator("#net-graph-count").text_content() == "all 177 nodes"
    # every edge of the API's graph is drawn, between the nodes themselves
    assert (
        page.locator(
            '#net-graph g.df-edge[data-from="layer3_4_block_body_relu2"][data-to="layer3_4_block_body_conv3"]'
        ).count()
        == 1
    )
    click_and_draw(page, page.locator("#net-graph-collapse-all"))
    assert boxes(page) == collapsed
    # Shift+click opens a block whole: every layer of stage 4 is drawn, the other stages stay boxes
    before = page.locator("#net-graph").get_attribute("data-expand")
    stage4_box = page.locator('#net-graph g.df-node[data-id="block:layer4"]')
    stage4_box.focus()  # brought into the zoomed view
    stage4_box.click(modifiers=["Shift"])
    wait_js(page, "b => document.querySelector('#net-graph').dataset.expand !== b", before)
    wait_graph(page)
    ids = boxes(page)
    assert not [i for i in ids if i.startswith("block:layer4") or i.startswith("fold:layer4")]
    stage4 = {n["id"] for n in answer["graph"]["nodes"] if any(sc["path"] == "layer4" for sc in n["scope"])}
    assert len(stage4) == 32 and stage4 <= set(ids) and "block:layer3" in ids  # 3 bottlenecks: 29 layers, 3 ⊕
    click_and_draw(page, page.locator("#net-graph-collapse-all"))

    # find: suggestions by path and type, keyboard operable; the chosen node is revealed and centred
    find = page.locator("#net-graph-find")
    find.fill("layer3.4 conv2")
    options = page.locator("#net-graph-suggest [role=option]")
    assert options.first.get_attribute("data-id") == "layer3_4_block_body_conv2"
    assert find.get_attribute("aria-expanded") == "true"
    assert find.get_attribute("aria-activedescendant") == options.first.get_attribute("id")
    page.keyboard.press("Enter")
    node = page.locator('#net-graph g.df-node[data-id="layer3_4_block_body_conv2"]')
    node.wait_for()
    wait_graph(page)
    assert "df-found" in node.get_attribute("class")
    assert set(current_ui(page)["expand"]) >= {
        "layer3",
        "layer3.4",
        "layer3.4.block",
        "layer3.4.block.body",
        "fold:layer3.1",
    }
    # centred in the graph's zoomed view at 1:1 (not by scrolling the page), selected, its details beside
    box = node.bounding_box()
    host = page.locator("#net-graph").bounding_box()
    assert abs(box["x"] + box["width"] / 2 - (host["x"] + host["width"] / 2)) < 2
    assert abs(box["y"] + box["height"] / 2 - (host["y"] + host["height"] / 2)) < 2
    assert float(page.locator("#net-graph").get_attribute("data-zoom")) == 1
    assert page.locator("#net-graph-details").get_attribute("data-node") == "layer3_4_block_body_conv2"
    assert current_ui(page)["graphNode"] == "layer3_4_block_body_conv2"
    # a type finds every layer of it; arrows move the choice
    find.fill("MaxPool2d")
    assert page.locator("#net-graph-suggest [role=option]").all_text_contents() == ["maxpoolMaxPool2d"]
    find.fill("nothing like this")
    assert page.locator("#net-graph-suggest").text_content() == "no node matches"
    page.keyboard.press("Escape")
    assert find.get_attribute("aria-expanded") == "false"
    assert audit(page) == []


def test_vit_folds_its_encoder(page, console, preset_requests):
    console.allow(SLOW_RUN)
    open_graph(page, preset_requests["vit-b16"])
    ids = boxes(page)
    assert len(ids) <= 40
    layers = page.locator('#net-graph g.df-node[data-id="block:layers"]')
    assert layers.locator("text.df-type").text_content().strip() == "TransformerEncoderLayer × 12"
    assert "layers" in layers.locator("text.df-path").text_content()
    assert layers.locator("rect.df-stack").count() == 2  # drawn as a stack of cards
    shot(page, "vit-folded.png")
    assert audit(page) == []
    click_and_draw(page, layers)
    ids = boxes(page)
    assert [i for i in ids if i.startswith("block:layers.")] == [f"block:layers.encoder_layer_{i}" for i in range(12)]
    assert sorted(current_ui(page)["expand"]) == ["fold:layers.encoder_layer_0", "layers"]
    # one encoder layer opened: its attention and MLP with both residual additions
    adds = page.locator("#net-graph g.df-node.df-add").count()
    click_and_draw(page, page.locator('#net-graph g.df-node[data-id="block:layers.encoder_layer_3"]'))
    assert page.locator('#net-graph g.df-node[data-path="layers.encoder_layer_3.self_attn"]').count() == 1
    assert page.locator("#net-graph g.df-node.df-add").count() == adds + 2
    shot(page, "vit-layer-expanded.png", centre="layers_encoder_layer_3_self_attn")


BLOCK = {
    "type": "Residual",
    "body": [
        {"type": "Conv1d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "Conv1d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
    ],
}
TEN_BLOCKS = {
    "layer": {
        "type": "Sequential",
        "layers": [{"type": "Conv1d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1}]
        + [BLOCK] * 10,
    },
    "inputs": [{"shape": [1, 2, 32]}],
}


def test_receptive_field_lights_collapsed_blocks_by_how_much_it_touches(page):
    """Ten equal residual blocks (43 nodes): the view opens with each block collapsed (the run of ten opened,
    as the top level alone would be four boxes). An element of block 5's second convolution depends on
    blocks 1–4 whole, on three of block 5's four calls (not its ⊕), and on nothing after it."""
    open_graph(page, TEN_BLOCKS)
    ids = boxes(page)
    assert ids == ["input_1", "_0"] + [f"block:{i}" for i in range(1, 11)] + ["output"]
    page.select_option("#rf-node", "_5_body_2")
    page.locator('#rf-target rect[data-r="1"][data-c="16"]').click()
    wait_js(
        page, "() => document.querySelector('#net-graph g.df-node[data-id=\"block:4\"]').dataset.rfFraction === '1.000'"
    )
    frac = page.locator("#net-graph g.df-block").evaluate_all(
        "els => els.map(e => [e.dataset.id, e.dataset.rfFraction])"
    )
    assert frac[:4] == [[f"block:{i}", "1.000"] for i in range(1, 5)]
    assert frac[4] == ["block:5", "0.750"] and frac[5:] == [[f"block:{i}", "0.000"] for i in range(6, 11)]
    five = page.locator('#net-graph g.df-node[data-id="block:5"]')
    assert "rf-target" in five.get_attribute("class") and "rf-hit" in five.get_attribute("class")
    assert "in the receptive field: 3 of its 4 calls" in five.get_attribute("aria-label")
    assert page.locator('#net-graph text.rf-count[data-for="block:5"]').text_content() == "3/4 calls"
    assert float(five.locator("rect.rf-bar").get_attribute("width")) == pytest.approx(
        0.75 * float(five.locator("rect.rf-bar-track").get_attribute("width"))
    )
    # opening the block shows which of its calls are lit, and the picked one
    click_and_draw(page, five)
    body = page.locator('#net-graph g.df-node[data-id="block:5.body"]')
    assert body.get_attribute("data-rf-fraction") == "1.000" and "rf-target" in body.get_attribute("class")
    assert "rf-hit" not in page.locator('#net-graph g.df-node[data-id="add_4"]').get_attribute("class")
    click_and_draw(page, body)
    lit = page.locator("#net-graph g.df-node.rf-hit").evaluate_all("els => els.map(e => e.dataset.id)")
    assert {"_5_body_0", "_5_body_1", "_5_body_2"} <= set(lit) and "add_4" not in lit
    assert page.locator("#net-graph g.df-node.rf-target").get_attribute("data-id") == "_5_body_2"


def test_collapse_module_in_the_page(page):
    """geometry/collapse.js on a hand-made graph: folds need equal, chained siblings; the URL's form of an
    expansion; find's order; ranges."""
    page.goto("/")
    page.wait_for_function("document.body.dataset.ready === 'true'")
    out = page.evaluate(
        """async () => {
          const m = await import('/static/js/geometry/collapse.js');
          const s = await import('/static/js/state.js');
          const blk = (i, w) => [
            {id: `b${i}_fc`, op: 'module', label: 'Linear', type: 'Linear', path: `${i}.fc`, shape: [2, w], shapes: [[2, w]],
             config: {type: 'Linear', in_features: w, out_features: w}, scope: [{path: `${i}`, type: 'Block', chain: false}]},
            {id: `b${i}_act`, op: 'module', label: 'ReLU', type: 'ReLU', path: `${i}.act`, shape: [2, w], shapes: [[2, w]],
             config: {type: 'ReLU'}, scope: [{path: `${i}`, type: 'Block', chain: false}]},
          ];
          const widths = [4, 4, 4, 8];  // block 3 differs in width: it ends the run
          const nodes = [{id: 'input', op: 'input', label: 'input', shape: [2, 4], shapes: [[2, 4]], scope: []}];
          widths.forEach((w, i) => nodes.push(...blk(i, w)));
          nodes.push({id: 'output', op: 'output', label: 'output', shape: [2, 8], shapes: [[2, 8]], scope: []});
          const edges = [];
          for (let i = 1; i < nodes.length; i++) edges.push({from: nodes[i - 1].id, to: nodes[i].id, shape: nodes[i - 1].shape, arg: 0});
          const graph = {method: 'fx', nodes, edges};
          const tree = m.moduleTree(graph);
          const open0 = m.openSet(tree, null);  // small: opens whole
          const closed = m.visibleGraph(tree, new Set(), {});
          const folded = closed.nodes.map(n => [n.id, n.op, n.n ?? null, n.range ?? null]);
          // a reader outside the run of block 1's output: the run may end at block 1 (nothing is hidden), not go on
          const branched = {...graph, edges: [...edges, {from: 'b1_act', to: 'output', shape: [2, 4], arg: 1}]};
          const t2 = m.moduleTree(branched);
          const edgesIn = closed.edges.map(e => [e.from, e.to, JSON.stringify(e.shape)]);
          const ui = s.decodeQuery(s.encodeQuery({request: s.DEFAULT_REQUEST, ui: {...s.DEFAULT_UI, expand: ['0', 'fold:0']}})).ui.expand;
          const bad = s.decodeQuery('?ui=' + encodeURIComponent(JSON.stringify({expand: [1, 2]}))).ui.expand;
          return {
            open0: [...open0].sort(), folded, folds2: [...t2.folds].map(([k, f]) => [k, f.members.length]), edgesIn,
            value: [m.expansionValue(tree, new Set(m.allKeys(tree))), m.expansionValue(tree, new Set(['1', '0']))],
            ui, bad,
            find: m.findNodes(tree, 'act').map(n => n.id),
            findType: m.findNodes(tree, '2 linear').map(n => n.id),
            ranges: [m.rangeLabel('layer2.1', 'layer2.3'), m.rangeLabel('a.x', 'b.y')],
            reveal: m.revealKeys(tree, 'b1_fc'),
          };
        }"""
    )
    assert out["open0"] == ["0", "1", "2", "3", "fold:0"]
    assert out["folded"] == [
        ["input", "input", None, None],
        ["fold:0", "fold", 3, "0–2"],
        ["block:3", "block", None, None],
        ["output", "output", None, None],
    ]
    assert out["folds2"] == [["fold:0", 2]]
    assert out["edgesIn"] == [
        ["input", "fold:0", "[2,4]"],
        ["fold:0", "block:3", "[2,4]"],
        ["block:3", "output", "[2,8]"],
    ]
    assert out["value"] == [None, ["0", "1"]]  # everything open is this small graph's default
    assert out["ui"] == ["0", "fold:0"] and out["bad"] is None
    assert out["find"] == ["b0_act", "b1_act", "b2_act", "b3_act"]
    assert out["findType"] == ["b2_fc"]
    assert out["ranges"] == ["layer2.1–3", "a.x … b.y"]
    assert out["reveal"] == ["1", "fold:0"]


def test_nested_layout_keeps_every_node_in_its_frames(page, resnet50):
    """layoutNested on ResNet-50 fully open, and with one stage open: each node lies inside every frame
    around it, frames of different containers never cross, no two boxes overlap, and every edge of the
    visible graph is drawn, ending with an arrow at its node."""
    _, answer = resnet50
    page.goto("/")
    page.wait_for_function("document.body.dataset.ready === 'true'")
    out = page.evaluate(
        """async (answer) => {
          const c = await import('/static/js/geometry/collapse.js');
          const d = await import('/static/js/geometry/dataflow.js');
          const tree = c.moduleTree(answer.graph);
          const problems = [];
          const sizes = [];
          for (const expand of ['all', ['layer2', 'fold:layer2.1'], []]) {
            const v = c.visibleGraph(tree, c.openSet(tree, expand), {...answer, frameChains: true});
            const lay = await d.layoutNested(v);
            sizes.push([v.nodes.length, lay.nodes.length, lay.groups.length]);
            const frame = new Map(lay.groups.map((g) => [g.path, g]));
            const inside = (a, b) => a.x >= b.x - 0.5 && a.y >= b.y - 0.5 && a.x + a.w <= b.x + b.w + 0.5 && a.y + a.h <= b.y + b.h + 0.5;
            const cross = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
            for (const n of lay.nodes)
              for (const f of n.node.frames) if (!inside(n, frame.get(f.path))) problems.push(`${n.id} outside ${f.path}`);
            for (let i = 0; i < lay.nodes.length; i++)
              for (let j = i + 1; j < lay.nodes.length; j++)
                if (cross(lay.nodes[i], lay.nodes[j])) problems.push(`${lay.nodes[i].id} overlaps ${lay.nodes[j].id}`);
            for (const a of lay.groups)
              for (const b of lay.groups) {
                if (a === b || b.path.startsWith(`${a.path}.`) || a.path.startsWith(`${b.path}.`)) continue;
                if (cross(a, b)) problems.push(`frame ${a.path} crosses ${b.path}`);
              }
            for (const e of v.edges) {
              const legs = lay.edges.filter((s) => s.from === e.from && s.to === e.to);
              if (!legs.some((s) => s.arrow)) problems.push(`edge ${e.from} → ${e.to} has no arrow at its node`);
            }
          }
          return {problems: problems.slice(0, 10), sizes};
        }""",
        answer,
    )
    assert out["problems"] == []
    assert out["sizes"][0] == [177, 177, 56]  # 16 bottlenecks × (block, Residual, body) + 4 shortcuts + 4 stages
    assert out["sizes"][1][0] == out["sizes"][1][1] == 16 and out["sizes"][2] == [13, 13, 0]
