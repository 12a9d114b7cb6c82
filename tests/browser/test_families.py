"""Every family's example renders without console errors; the page works narrow and exports."""

from pathlib import Path

import pytest

from .helpers import open_view, renders, wait_js, wait_render

pytestmark = pytest.mark.browser


def test_every_family_example_renders_cleanly(page, catalog):
    open_view(page)
    seen = set()
    for layer in catalog["layers"]:
        if layer["family"] in seen:
            continue
        seen.add(layer["family"])
        if layer["family"] == "container":
            # Sequential / Residual open the network builder (tests/browser/test_network.py).
            page.locator(f'.cat-item[data-type="{layer["type"]}"]').click()
            wait_js(page, "document.querySelector('#network-view').dataset.state === 'ok'")
            assert page.locator("#net-diagram svg.drawing").count() == 1
            assert page.locator("#net-error").is_hidden()
            continue
        before = renders(page)
        page.locator(f'.cat-item[data-type="{layer["type"]}"]').click()
        wait_render(page, before)
        assert page.locator("#form-layer .layer-type").inner_text() == layer["type"]
        assert page.locator("#diagram svg.drawing").count() == 1, layer["type"]
        assert page.locator("#form-error").is_hidden(), page.locator("#form-error").inner_text()
        assert page.locator("#shape-check").get_attribute("data-ok") == "true", layer["type"]
        assert page.locator("#code").inner_text().startswith("import torch")
        if layer["windows"]:
            assert page.locator("#window-panel").is_visible()
    assert seen == set(catalog["families"])


@pytest.mark.parametrize(
    "layer_type", ["BasicLinear", "Bilinear", "Conv3d", "AvgPool1d", "GroupNorm", "SimpleResidualBlock"]
)
def test_family_drawings(page, catalog, layer_type):
    entry = next((e for e in catalog["layers"] if e["type"] == layer_type), None)
    assert entry is not None, f"{layer_type} is missing from the catalog"
    open_view(page, entry["example"])
    kind = page.locator("#diagram").get_attribute("data-kind")
    expected = {
        "BasicLinear": "linear",
        "Bilinear": "bilinear",
        "Conv3d": "blocks",
        "AvgPool1d": "blocks",
        "SimpleResidualBlock": "dataflow",  # built of child modules: drawn as its forward()'s graph
    }.get(layer_type, "generic")
    assert kind == expected
    if layer_type == "BasicLinear":
        assert "weights" in page.locator("#diagram").inner_text()
    if layer_type == "Conv3d":
        assert page.locator("#win-depth").is_visible()


def test_narrow_window_has_no_horizontal_scroll(page):
    page.set_viewport_size({"width": 420, "height": 800})
    open_view(
        page,
        {
            "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
            "inputs": [{"shape": [1, 3, 8, 8]}],
        },
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 421
    assert page.locator("#diagram svg.drawing").bounding_box()["width"] <= 420


def test_export_svg_and_png(page):
    open_view(page)
    with page.expect_download() as info:
        page.locator("#export-svg").click()
    svg = info.value
    assert svg.suggested_filename == "Linear-diagram.svg"
    text = Path(svg.path()).read_text(encoding="utf-8")
    assert text.startswith("<?xml") and "<svg" in text and "fill:" in text
    with page.expect_download() as info:
        page.locator("#export-png").click()
    png = info.value
    assert png.suggested_filename == "Linear-diagram.png"
    assert Path(png.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
