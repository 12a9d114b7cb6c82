"""Issue 11, defect 8: the smaller things — readable cell text, no overflow, no hint where nothing
can be explained, a link that keeps the channel, full-size fractions, readable grid labels, the
catalog forgetting an edited preset, and no truncated device select."""

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser

CONV = {
    "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 2},
    "inputs": [{"shape": [1, 1, 4, 4]}],
    "seed": 5,
}
LSTM = {"layer": {"type": "LSTM", "input_size": 10, "hidden_size": 20}, "inputs": [{"shape": [5, 3, 10]}]}


def luminance(rgb):
    def ch(v):
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (ch(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def rgb(page, css):
    return page.evaluate(
        """c => { const e = document.createElement('div'); e.style.color = c; document.body.append(e);
                  const v = getComputedStyle(e).color; e.remove(); return v.match(/\\d+/g).slice(0, 3).map(Number); }""",
        css,
    )


def show_all(page):
    if page.locator("#win-play").get_attribute("aria-pressed") == "true":
        page.locator("#win-play").click()
    page.locator("#win-scrub").fill(str(int(page.locator("#win-scrub").get_attribute("max"))))


def test_output_values_readable_and_inside_their_cells(page):
    page.emulate_media(reduced_motion="reduce")
    page.set_viewport_size({"width": 1280, "height": 800})
    open_view(page, CONV)
    show_all(page)
    cells = page.evaluate(
        """() => [...document.querySelectorAll('#win-drawing text.oval')].filter(t => t.textContent).map(t => {
             const d = t.__data__; const rect = [...document.querySelectorAll('#win-drawing rect.ocell')]
               .find(r => r.dataset.coord === d.coord.join(','));
             const b = t.getBBox();
             return {text: t.textContent, fill: rect.getAttribute('fill'), color: t.getAttribute('fill'),
                     w: b.width, cell: +rect.getAttribute('width')}; })"""
    )
    assert cells, "output values are drawn in the cells"
    for c in cells:
        assert c["w"] <= c["cell"] - 2, c  # e.g. "−0.039" stays inside
        assert contrast(rgb(page, c["fill"]), rgb(page, c["color"])) >= 4.5, c


def test_no_explain_hint_for_layers_that_cannot_be_explained(page):
    open_view(page, LSTM)
    assert not page.locator("#explain-panel").is_visible()
    assert "Click an output cell" not in page.locator("body").inner_text()
    open_view(page, CONV)
    assert "Click an output cell" in page.locator("#explain-panel").inner_text()


def test_link_keeps_the_channel_when_an_element_is_pinned(page):
    open_view(page, CONV, {"channel": 3, "pinned": {"index": [0, 1, 1, 1], "output": None}})
    page.wait_for_function("() => document.querySelector('#explain-panel').dataset.index === '0,1,1,1'")
    assert page.locator("#win-channel").input_value() == "3"
    assert '"channel":3' in page.evaluate("decodeURIComponent(location.search)")


def test_fractions_and_grid_labels_are_readable(page):
    open_view(page, CONV)
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('#formula-list .mfrac .vlist-t')].map(e => parseFloat(getComputedStyle(e).fontSize))"
    )
    assert sizes and min(sizes) >= 12
    label = page.locator("#win-drawing text.idx").first
    assert float(label.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 11
    fill = label.evaluate("e => getComputedStyle(e).fill")
    assert contrast([int(v) for v in fill[4:-1].split(",")], [255, 255, 255]) >= 4.5


def test_device_select_is_not_truncated(page):
    open_view(page, CONV)
    sel = page.locator("#form-run select[name='device']")
    assert sel.evaluate(
        "e => e.scrollWidth <= e.clientWidth + 1 && e.clientWidth >= e.options[e.selectedIndex].text.length * 6"
    )


def test_catalog_forgets_an_edited_preset(page):
    page.goto("/")
    page.locator('.cat-preset[data-preset="lenet5"]').click()
    page.wait_for_selector('.cat-preset.current[data-preset="lenet5"]')
    page.wait_for_selector("#net-tree .nt-pick")
    page.locator("#net-add").click()
    page.wait_for_function("() => !document.querySelector('.cat-preset.current')")
    assert page.locator(".cat-preset.current").count() == 0
