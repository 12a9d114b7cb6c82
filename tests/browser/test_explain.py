"""Clicking an output cell shows the arithmetic behind it, and torch agrees with it."""

import json
import subprocess
import sys

import pytest

from .helpers import open_view, renders, wait_render

pytestmark = pytest.mark.browser


def flat(v):
    return [x for row in v for x in flat(row)] if isinstance(v, list) else [v]


LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}


def test_click_linear_output_cell_shows_matching_arithmetic(page, api_run):
    open_view(page, LINEAR)
    page.locator('#diagram .m-y rect.cell[data-r="1"][data-c="2"]').click()
    match = page.locator("#explain-body .match")
    match.wait_for()
    expected = api_run(LINEAR)["output"]["data"][1][2]
    assert float(match.get_attribute("data-torch")) == pytest.approx(expected, abs=1e-7)
    assert float(match.get_attribute("data-manual")) == pytest.approx(expected, abs=1e-5)
    assert match.get_attribute("data-match") == "true"
    assert "✓ match" in match.inner_text()
    body = page.locator("#explain-body").inner_text()
    assert "output[1, 2]" in body
    assert "Σ" in body
    assert page.locator("#explain-body table.terms tbody tr").count() == 10
    # The row of x, the column of Aᵀ and b_2 are highlighted in the diagram.
    assert page.locator("#diagram .pin-x").count() == 1
    assert page.locator("#diagram .pin-A").count() == 1
    assert page.locator("#diagram .pin-b").count() == 1
    # Escape unpins.
    page.keyboard.press("Escape")
    assert page.locator("#diagram .pin").count() == 0
    assert "ui=" not in page.url


def test_keyboard_reaches_and_explains_an_output_cell(page):
    open_view(page, LINEAR)
    page.locator("#diagram g.m-y").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.locator("#explain-body .match").wait_for()
    assert page.locator("#explain-panel").get_attribute("data-index") == "1,1"


def test_click_conv_and_pool_cells_in_the_window_grid(page, api_run):
    cfg = {
        "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1},
        "inputs": [{"shape": [1, 3, 5, 5]}],
        "seed": 1,
    }
    open_view(page, cfg)
    page.locator("#win-channel").select_option("2")
    page.locator('#win-drawing rect.ocell[data-coord="0,4"]').click()
    match = page.locator("#explain-body .match")
    match.wait_for()
    expected = api_run(cfg)["output"]["data"][0][2][0][4]
    assert float(match.get_attribute("data-torch")) == pytest.approx(expected, abs=1e-7)
    assert match.get_attribute("data-match") == "true"
    # The corner window reaches into the padding: those terms are marked.
    assert page.locator("#explain-body tr.padding").count() > 0
    assert page.locator("#win-play").get_attribute("aria-pressed") == "false"
    assert page.locator("#win-drawing .pin-ring").count() == 1

    pool = {"layer": {"type": "MaxPool2d", "kernel_size": 2}, "inputs": [{"shape": [1, 2, 4, 4]}], "seed": 3}
    open_view(page, pool)
    page.locator('#win-drawing rect.ocell[data-coord="1,0"]').click()
    page.locator("#explain-body .match").wait_for()
    expected = api_run(pool)["output"]["data"][0][0][1][0]
    assert float(page.locator("#explain-body .match").get_attribute("data-torch")) == pytest.approx(expected)
    assert page.locator("#explain-body tr.winner").count() == 1
    assert "Max pooling chose" in page.locator("#explain-body").inner_text()
    assert page.locator("#win-drawing .winner").count() == 1


def test_code_snippet_prints_the_same_output(page, api_run, tmp_path):
    open_view(page, LINEAR)
    code = page.locator("#code").inner_text()
    assert "torch.manual_seed(42)" in code
    script = tmp_path / "snippet.py"
    script.write_text(code)
    # Run the snippet exactly as shown, then dump what it computed for an exact comparison.
    runner = (
        "import json, runpy, sys\n"
        f"ns = runpy.run_path({str(script)!r})\n"
        "print('@@' + json.dumps(ns['output'].tolist()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed, _, dumped = proc.stdout.rpartition("@@")
    assert printed.lstrip().startswith("tensor(")
    got = json.loads(dumped)
    want = api_run(LINEAR)["output"]["data"]
    assert flat(got) == pytest.approx(flat(want), abs=1e-6)
    # The copy button puts the same text on the clipboard (or says how to copy).
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("#code-fold .fold-toggle").click()
    page.locator("#copy-code").click()
    page.locator("#code-panel .copy-status").wait_for(state="visible")
    assert page.evaluate("navigator.clipboard.readText()") == code


def test_switching_layer_drops_the_pin_cleanly(page):
    open_view(page, LINEAR)
    page.locator('#diagram .m-y rect.cell[data-r="0"][data-c="0"]').click()
    page.locator("#explain-body .match").wait_for()
    before = renders(page)
    page.locator('.cat-item[data-type="Conv2d"]').click()
    wait_render(page, before)
    page.wait_for_timeout(200)
    assert page.locator("#explain-body .match").count() == 0
    assert page.locator("#win-drawing .pin-ring").count() == 0


def test_window_grid_pin_shows_a_one_line_result(page):
    cfg = {
        "layer": {"type": "AvgPool1d", "kernel_size": 3, "stride": 2, "padding": 1},
        "inputs": [{"shape": [1, 2, 7]}],
        "seed": 5,
    }
    open_view(page, cfg)
    page.locator('#win-drawing rect.ocell[data-coord="0"]').click()
    line = page.locator("#win-pin")
    line.wait_for(state="visible")
    assert "output[0, 0, 0]" in line.inner_text()
    assert "÷3" in line.inner_text() and "✓ matches torch" in line.inner_text()
    page.locator("#explain-body button.link").click()
    assert line.is_hidden()
