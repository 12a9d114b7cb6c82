"""The sliding-window animation: it plays by itself, and the step controls and slider move it."""

import pytest

from .helpers import config_url, open_view, wait_js, wait_render

pytestmark = pytest.mark.browser

CONV1D = {
    "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
    "inputs": [{"shape": [6, 3, 8]}],
    "seed": 42,
}


def step(page) -> int:
    return int(page.locator("#window-panel").get_attribute("data-step"))


def window_cells(page, band=0):
    """x of the window's cells over the first stacked input channel (transitions finished)."""
    page.wait_for_timeout(350)
    return page.locator("#win-drawing rect.win-cell").evaluate_all(
        "(els, band) => els.filter(e => Math.floor(+e.dataset.term / 4) === band).map(e => +e.getAttribute('x')).sort((a, b) => a - b)",
        band,
    )


def test_animation_plays_and_the_controls_step(page, api_run):
    open_view(page, CONV1D)
    panel = page.locator("#window-panel")
    assert panel.is_visible()
    assert page.locator("#win-play").get_attribute("aria-pressed") == "true"
    wait_js(page, "() => Number(document.querySelector('#window-panel').dataset.step) > 0", None, 5000)
    page.locator("#win-play").click()
    assert page.locator("#win-play").get_attribute("aria-pressed") == "false"
    page.locator("#win-scrub").fill("0")
    assert step(page) == 0
    first = window_cells(page)
    assert len(first) == 4  # kernel_size 4
    assert page.locator("#win-drawing rect.win-cell").count() == 12  # … on each of the 3 input channels
    page.locator("#win-fwd").click()
    assert step(page) == 1
    second = window_cells(page)
    cell = page.evaluate("+document.querySelector('#win-drawing rect.fcell').getAttribute('width')")
    assert [b - a for a, b in zip(first, second)] == [cell] * 4  # stride 1: one cell to the right
    page.locator("#win-fwd").click()
    page.locator("#win-back").click()
    assert step(page) == 1
    page.locator("#win-scrub").fill("4")
    assert step(page) == 4
    assert "step 5 / 5" in page.locator("#win-step").inner_text()
    # Output cells fill in up to the current step, with torch's values.
    filled = page.locator("#win-drawing rect.ocell").evaluate_all("els => els.map(e => e.getAttribute('fill'))")
    assert "#ffffff" not in filled
    page.locator("#win-scrub").fill("2")
    filled = page.locator("#win-drawing rect.ocell").evaluate_all("els => els.map(e => e.getAttribute('fill'))")
    assert filled[3:] == ["#ffffff", "#ffffff"]
    # Keyboard: arrows step while focus is in the panel.
    page.locator("#win-fwd").focus()
    page.keyboard.press("ArrowRight")
    assert step(page) == 3


def test_windows_follow_the_api_for_stride_dilation_and_padding(page, api_run):
    cfg = {
        "layer": {
            "type": "Conv2d",
            "in_channels": 2,
            "out_channels": 4,
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "dilation": 2,
            "groups": 2,
        },
        "inputs": [{"shape": [1, 2, 9, 9]}],
    }
    page.emulate_media(reduced_motion="reduce")
    open_view(page, cfg)
    if page.locator("#win-play").get_attribute("aria-pressed") == "true":
        page.locator("#win-play").click()
    page.locator("#win-scrub").fill("1")
    win = api_run(cfg)["windows"]
    cell = page.evaluate("+document.querySelector('#win-drawing rect.fcell').getAttribute('width')")
    origin = page.evaluate(
        "(() => { const r = document.querySelector('#win-drawing rect.fcell'); return [+r.getAttribute('x'), +r.getAttribute('y')]; })()"
    )
    drawn = page.locator("#win-drawing rect.win-cell").evaluate_all(
        "els => els.filter(e => +e.dataset.term < 9).map(e => [+e.getAttribute('y'), +e.getAttribute('x')])"
    )
    # output (0, 1): the window's corner at (0, 1)·stride, its cells kernel·dilation apart
    expected = [
        [0 * win["stride"][0] + kh * win["dilation"][0], 1 * win["stride"][1] + kw * win["dilation"][1]]
        for kh in range(win["kernel"][0])
        for kw in range(win["kernel"][1])
    ]
    assert sorted([round((y - 1 - origin[1]) / cell), round((x - 1 - origin[0]) / cell)] for y, x in drawn) == sorted(
        expected
    )
    assert page.locator("#win-drawing rect.fcell.role-padding").count() == 11 * 11 - 9 * 9
    # groups=2: output channel 3 reads input channel 1 only.
    page.locator("#win-channel").select_option("3")
    page.wait_for_function("() => document.querySelector('#win-drawing g.frame')?.dataset.channel === '1'")
    assert page.locator("#win-drawing g.frame").evaluate_all("els => els.map(e => e.dataset.channel)") == ["1"]
    assert page.locator("#win-channels line.ch-link.sel").count() == len(win["channel_map"][3])


def test_transposed_conv_shows_inserted_zeros(page, api_run):
    cfg = {
        "layer": {"type": "ConvTranspose2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2},
        "inputs": [{"shape": [1, 1, 3, 3]}],
    }
    open_view(page, cfg)
    win = api_run(cfg)["windows"]
    assert page.locator("#win-drawing rect.fcell").count() == win["frame"]["shape"][0] * win["frame"]["shape"][1]
    assert page.locator("#win-drawing rect.fcell.role-input").count() == 9
    assert page.locator("#win-drawing rect.fcell.role-zero").count() == 5 * 5 - 9
    assert page.locator(".legend li.zero").is_visible()
    assert "stretched input" in page.locator("#win-drawing").inner_text()


def test_reduced_motion_does_not_autoplay(browser, base_url):
    ctx = browser.new_context(reduced_motion="reduce", base_url=base_url)
    page = ctx.new_page()
    page.goto(config_url(CONV1D))
    wait_render(page)
    assert page.locator("#win-play").get_attribute("aria-pressed") == "false"
    page.wait_for_timeout(900)
    assert step(page) == 0
    ctx.close()
