"""Issue 16, "Flows that break": the receptive-field picker by keyboard and in the link, the network's
output values, and the BatchNorm note with its one-click eval mode."""

import pytest

from .helpers import config_url, wait_js
from .test_network import current_ui, wait_net


def open_net(page, config: dict) -> None:
    """As test_network's, with room for a cold start: the first LeNet run of a session, on a loaded
    machine, may take longer than an edit's 15 s."""
    page.goto(config_url(config))
    wait_js(
        page,
        "() => Number(document.querySelector('#network-view').dataset.renders || 0) > 0 && "
        "document.querySelector('#network-view').getAttribute('aria-busy') === 'false'",
        timeout=60_000,
    )


pytestmark = pytest.mark.browser


def lenet(presets) -> dict:
    return next(p for p in presets if p["id"] == "lenet5")["request"]


def wait_field(page, target: str) -> None:
    wait_js(
        page,
        "t => document.querySelector('#net-graph g.df-node.rf-target')?.dataset.id === t && "
        "document.querySelector('#net-rf-panel').getAttribute('aria-busy') === 'false'",
        target,
    )


def test_picker_is_one_tab_stop_with_arrow_keys(page, presets):
    # issue 16: every cell of the picker was a tab stop (784 for LeNet's first conv), arrows did nothing
    open_net(page, lenet(presets))
    page.select_option("#rf-node", "_0")
    grid = page.locator("#rf-target .rf-keys")
    grid.wait_for()
    assert page.locator("#rf-target [tabindex]").count() == 1
    assert page.locator("#rf-target rect[tabindex], #rf-target rect[role=button]").count() == 0
    assert page.locator("#rf-target rect[data-r]").count() == 28 * 28
    # Tab from the last sample/channel input reaches the grid past the mode radios (one stop), and the
    # next Tab leaves it: the 784 cells are one stop
    page.locator("#rf-lead input").last.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "rf-mode"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('rf-keys')")
    page.keyboard.press("Tab")
    assert not page.evaluate("!!document.activeElement.closest('#rf-target')")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.classList.contains('rf-keys')")
    for key in ["ArrowDown", "ArrowDown", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowUp"]:
        page.keyboard.press(key)
    assert grid.get_attribute("data-cursor") == "1,3"
    assert "row 1, column 3" in grid.get_attribute("aria-label")
    page.keyboard.press("Enter")
    wait_field(page, "_0")
    assert page.locator("#rf-target rect.picked").evaluate("r => [r.dataset.r, r.dataset.c]") == ["1", "3"]
    # conv 5×5 with padding 2 at (1, 3): rows 0–3 (one row falls in the padding), columns 1–5
    assert "depends on 20 of the input's 784 elements" in page.locator("#rf-summary").inner_text()
    # the focus stays on the grid: the next element is one key away
    assert page.evaluate("document.activeElement.classList.contains('rf-keys')")
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    wait_js(page, "() => document.querySelector('#rf-target rect.picked')?.dataset.c === '4'")


def test_the_pick_is_in_the_link_and_comes_back(page, presets):
    open_net(page, lenet(presets))
    page.select_option("#rf-node", "_3")
    page.locator('#rf-lead input[data-dim="1"]').fill("2")
    page.locator('#rf-target rect[data-r="5"][data-c="5"]').click()
    wait_field(page, "_3")
    page.check('input[name="rf-mode"][value="effective"]')
    wait_js(page, "() => new URL(location.href).searchParams.get('ui')?.includes('effective')")
    ui = current_ui(page)
    assert ui["rf"] == {"node": "_3", "index": [0, 2, 5, 5], "mode": "effective"}
    url = page.url
    page.goto("/")
    page.goto(url)
    wait_net(page)
    wait_field(page, "_3")
    assert page.locator("#rf-node").input_value() == "_3"
    assert page.locator('#rf-lead input[data-dim="1"]').input_value() == "2"
    assert page.locator("#rf-target rect.picked").evaluate("r => [r.dataset.r, r.dataset.c]") == ["5", "5"]
    assert page.locator('input[name="rf-mode"][value="effective"]').is_checked()
    assert "depends on 196 of the input's 784 elements" in page.locator("#rf-summary").inner_text()
    # the keyboard cursor starts at the restored pick: one arrow and Enter pick its neighbour
    page.locator("#rf-target .rf-keys").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    wait_js(page, "() => new URL(location.href).searchParams.get('ui')?.includes('[0,2,5,6]')")
    assert page.locator("#rf-target rect.picked").evaluate("r => [r.dataset.r, r.dataset.c]") == ["5", "6"]
    # a pick that no longer fits the network (index out of range) is dropped, not traced
    bad = config_url(lenet(presets), {"view": "network", "rf": {"node": "_3", "index": [0, 2, 50, 5]}})
    page.goto(bad)
    wait_net(page)
    assert page.locator("#rf-target rect.picked").count() == 0
    wait_js(page, "() => !(new URL(location.href).searchParams.get('ui') || '').includes('rf')")


def test_network_output_values_on_screen_and_on_hover(page, presets, api_run):
    req = lenet(presets)
    open_net(page, req)
    card = page.locator('#net-output-panel .tensor-card[data-name="output"]')
    card.wait_for()
    assert page.locator("#net-output-panel").is_visible()
    out = api_run(req)["output"]
    assert "[1, 10]" in card.locator(".shape").inner_text().replace("(", "[").replace(")", "]")
    card.locator("details.numbers summary").click()
    wait_js(page, "() => document.querySelector('#net-output-panel details.numbers pre').textContent.length > 0")
    numbers = card.locator("pre").inner_text()
    assert f"{out['data'][0][3]:.4g}"[:5] in numbers.replace("−", "-")
    # the picker's cells of the output say their value on hover
    page.select_option("#rf-node", "output")
    cell = page.locator('#rf-target rect[data-r="0"][data-c="3"]')
    cell.hover()
    tip = page.locator(".tooltip")
    tip.wait_for()
    text = tip.inner_text().replace("−", "-")
    assert "row 0, column 3" in text
    assert float(text.split("=")[-1]) == pytest.approx(out["data"][0][3], rel=1e-6)
    # and the traced element's value heads the summary
    cell.click()
    wait_field(page, "output")
    summary = page.locator("#rf-summary").inner_text().replace("−", "-")
    assert float(summary.split("=")[1].split("depends")[0]) == pytest.approx(out["data"][0][3], rel=1e-5)


def test_a_layers_own_values_on_hover(page, presets, api_run):
    req = lenet(presets)
    open_net(page, req)
    page.select_option("#rf-node", "_3")
    page.locator('#rf-lead input[data-dim="1"]').fill("2")
    want = api_run({**req, "path": "3"})["output"]["data"][0][2][4][7]
    tip = page.locator(".tooltip")
    for _ in range(100):  # the layer's values arrive after the node is chosen
        page.locator('#rf-target rect[data-r="0"][data-c="0"]').hover()
        page.locator('#rf-target rect[data-r="4"][data-c="7"]').hover()
        if "=" in tip.inner_text():
            break
        page.wait_for_timeout(100)
    text = tip.inner_text().replace("−", "-")
    assert text.startswith("3 row 4, column 7 =")
    assert float(text.split("=")[-1]) == pytest.approx(want, rel=1e-6)


BN_NET = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
            {"type": "BatchNorm2d", "num_features": 2},
            {"type": "ReLU"},
            {"type": "Conv2d", "in_channels": 2, "out_channels": 1, "kernel_size": 3},
        ],
    },
    "inputs": [{"shape": [2, 1, 9, 9]}],
}


def test_batch_norm_note_and_eval_mode_in_one_click(page):
    open_net(page, BN_NET)
    page.select_option("#rf-node", "output")
    page.locator('#rf-lead input[data-dim="0"]').fill("0")
    page.locator('#rf-target rect[data-r="2"][data-c="2"]').click()
    wait_field(page, "output")
    note = page.locator('#rf-notes .rf-note[data-code="batch_statistics"]')
    note.wait_for()
    assert "training mode" in note.inner_text() and "whole input" in note.inner_text()
    assert "depends on 162 of the input's 162 elements" in page.locator("#rf-summary").inner_text()
    page.locator("#rf-notes button.rf-eval").click()
    # eval mode: the request says train: false, the same element is traced again, the field is 5 × 5
    wait_js(page, "() => document.querySelector('#rf-summary').textContent.includes('depends on 25 of')")
    assert '"train":false' in page.evaluate("decodeURIComponent(location.search)")
    assert page.locator('#rf-notes .rf-note[data-code="batch_statistics"]').count() == 0
    assert "eval mode" in page.locator("#rf-notes .rf-mode-note").inner_text()
    assert page.locator("#rf-target rect.picked").evaluate("r => [r.dataset.r, r.dataset.c]") == ["2", "2"]
    page.locator("#rf-notes button.rf-train").click()
    wait_js(page, "() => document.querySelector('#rf-summary').textContent.includes('depends on 162 of')")
    assert '"train"' not in page.evaluate("decodeURIComponent(location.search)")


def test_state_round_trips_the_pick(page):
    page.goto("/")
    got = page.evaluate(
        """async () => { const s = await import('/static/js/state.js');
           const st = s.initialState();
           st.ui = {...st.ui, view: 'network', rf: {node: '_3', index: [0, 2, 5, 5], mode: 'effective'}};
           const q = s.encodeQuery(st);
           const none = s.encodeQuery(s.initialState());
           return {back: s.decodeQuery(q).ui.rf, q, none}; }"""
    )
    assert got["back"] == {"node": "_3", "index": [0, 2, 5, 5], "mode": "effective"}
    assert "rf" in got["q"] and "rf" not in got["none"]  # no pick, nothing in the link


def test_large_grids_are_painted_from_the_compact_answer(page):
    # issue 18: masks arrive as run lengths and heat maps as PNG images; a grid of more than 4096 cells
    # (this 72 × 72 input) is painted as one image instead of a rect per cell
    conv = {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 5}
    net = {
        "layer": {
            "type": "Sequential",
            "layers": [conv, {"type": "ReLU"}, {**conv, "in_channels": 2, "out_channels": 1, "stride": 2}],
        },
        "inputs": [{"shape": [1, 1, 72, 72]}],
    }
    open_net(page, net)
    page.select_option("#rf-node", "output")
    page.locator('#rf-target rect[data-r="10"][data-c="10"]').click()
    wait_field(page, "output")
    # output (10, 10): rows 20–24 of the first conv's output, rows 20–28 of the input: 9 × 9
    fig = page.locator('#rf-nodes figure[data-id="input_1"]')
    assert fig.get_attribute("data-count") == "81"
    assert fig.locator("svg.rf-image").get_attribute("data-on") == "81"
    assert fig.locator("rect").count() == 0
    conv1 = page.locator('#rf-nodes figure[data-id="_0"] svg.rf-image')  # 2 × 68 × 68, folded: 5 × 5
    assert conv1.get_attribute("data-on") == "25"
    page.check('input[name="rf-mode"][value="effective"]')
    # the gradient's PNG: non-zero on the same 81 pixels (a random conv has no zero weight)
    wait_js(
        page, "() => document.querySelector('#rf-nodes figure[data-id=\"input_1\"] svg.rf-image')?.dataset.on === '81'"
    )
    painted = page.evaluate(
        """() => { const c = document.querySelector('#rf-nodes figure[data-id="input_1"] canvas');
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let blue = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > d[i] + 40) blue++;
           return blue; }"""
    )
    assert painted > 0  # the heat is drawn (blues), not only counted
