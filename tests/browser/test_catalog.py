"""The catalog sidebar lists every layer type from GET /api/layers, grouped and searchable."""

import pytest

from .helpers import open_view, renders, wait_render

pytestmark = pytest.mark.browser


def test_catalog_lists_every_layer_by_family(page, catalog):
    open_view(page)
    for family in catalog["families"]:
        assert page.locator(f'.cat-family[data-family="{family}"] h3').inner_text().strip().lower() == family.lower()
    listed = page.locator(".cat-item").evaluate_all("els => els.map(e => e.dataset.type)")
    assert sorted(listed) == sorted(layer["type"] for layer in catalog["layers"])
    for layer in catalog["layers"]:
        fam = page.locator(f'.cat-item[data-type="{layer["type"]}"]').evaluate(
            "b => b.closest('.cat-family').dataset.family"
        )
        assert fam == layer["family"]
    assert page.locator(".cat-item.current").inner_text() == "Linear"


def test_search_filters_and_enter_opens_first_match(page):
    open_view(page)
    before = renders(page)
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "catalog-search"
    page.keyboard.type("convtranspose2")
    assert page.locator(".cat-item").evaluate_all("els => els.map(e => e.dataset.type)") == ["ConvTranspose2d"]
    page.keyboard.press("Enter")
    wait_render(page, before)
    assert page.locator("#form-layer .layer-type").inner_text() == "ConvTranspose2d"
    assert '"type":"ConvTranspose2d"' in page.evaluate("decodeURIComponent(location.search)")
    page.fill("#catalog-search", "no such layer at all")
    assert page.locator(".cat-item").count() == 0
    assert "No layer matches" in page.locator("#catalog-list").inner_text()


def test_catalog_is_one_tab_stop_with_arrow_keys(page):
    open_view(page)
    page.locator('.cat-item[data-type="Linear"]').focus()
    assert page.locator(".cat-item[tabindex='0']").count() == 1
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.type") == "Bilinear"
    before = renders(page)
    page.keyboard.press("Enter")
    wait_render(page, before)
    assert page.locator("#form-layer .layer-type").inner_text() == "Bilinear"
