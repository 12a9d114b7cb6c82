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
    assert "Nothing matches" in page.locator("#catalog-list").inner_text()
    assert page.locator("#catalog-count").inner_text().startswith("0 of ")


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


def listed(page) -> list[str]:
    return page.locator("#catalog-list .cat-item, #catalog-list .cat-preset").evaluate_all(
        "els => els.map(e => e.dataset.type || 'preset:' + e.dataset.preset)"
    )


def test_search_ranks_names_before_descriptions_and_counts_what_it_shows(page, catalog, presets):
    # issue 16: "basic" + Enter opened Transformer (its doc says "a basic transformer layer") and
    # the count said "2 of 142" with 4 entries listed
    open_view(page)
    page.fill("#catalog-search", "basic")
    shown = listed(page)
    assert shown[0] == "BasicLinear"
    assert shown.index("BasicLinear") < shown.index("Transformer")
    # matches in a description (Transformer's "a basic transformer layer", ResNet-18's basic blocks) come
    # after every match in a name
    last_name = max(i for i, s in enumerate(shown) if not s.startswith("preset:") and "basic" in s.lower())
    assert shown.index("Transformer") > last_name
    total = len(catalog["layers"]) + len(presets)
    layers = sum(1 for s in shown if not s.startswith("preset:"))
    assert page.locator("#catalog-count").inner_text() == (
        f"{len(shown)} of {total}: {layers} layers, {len(shown) - layers} networks"
    )
    before = renders(page)
    page.locator("#catalog-search").press("Enter")
    wait_render(page, before)
    assert page.locator("#form-layer .layer-type").inner_text() == "BasicLinear"
    # exact name, then prefix, then inside the name: "linear" puts Linear first, LinearXxx before
    # Bilinear, and every name match before the layers whose description alone says "linear"
    page.fill("#catalog-search", "linear")
    shown = [s for s in listed(page) if not s.startswith("preset:")]
    assert shown[0] == "Linear"
    by_type = {layer["type"]: layer for layer in catalog["layers"]}
    name_hits = [t for t in shown if "linear" in t.lower()]
    assert shown[: len(name_hits)] == name_hits
    prefix = [t for t in name_hits if t.lower().startswith("linear")]
    assert name_hits[: len(prefix)] == prefix
    assert all("linear" in (by_type[t]["doc"] or "").lower() + by_type[t]["family"] for t in shown[len(name_hits) :])
    # the count equals the entries on screen, whatever the query
    for q in ["conv", "pool 2d", "norm", "lstm"]:
        page.fill("#catalog-search", q)
        n = len(listed(page))
        assert page.locator("#catalog-count").inner_text().startswith(f"{n} of {total}:")


def test_match_rank_orders_exact_prefix_inside_description(page):
    open_view(page)
    ranks = page.evaluate(
        """async () => { const m = await import('/static/js/ui/catalog.js');
           return ['basiclinear', 'basic', 'linear', 'lin basic', 'layer', 'zzz'].map(q => m.matchRank('BasicLinear', 'custom a layer', q)); }"""
    )
    assert ranks == [4, 3, 2, 1, 0, -1]
