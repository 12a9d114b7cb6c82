"""An edit redraws the shapes from /api/shape before /api/run answers; a newer edit aborts the stale run."""

import contextlib

import pytest

from .helpers import open_view, renders, wait_js, wait_render

pytestmark = pytest.mark.browser

CONV2D = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 9, 9]}],
    "seed": 7,
}


def shapes(page) -> int:
    return int(page.evaluate("Number(document.querySelector('#layer-view').dataset.shapes || 0)"))


def out_channels(page):
    return page.locator('[data-field="layer.out_channels"] input')


def hold_runs(page) -> list:
    held: list = []
    page.route("**/api/run", lambda route: held.append(route))  # held until the test lets it through
    return held


def release(held) -> None:
    for route in held:
        with contextlib.suppress(Exception):  # the page aborted that request already
            route.continue_()


def test_shapes_are_drawn_before_the_run_answers(page):
    open_view(page, CONV2D)
    before_renders, before_shapes = renders(page), shapes(page)
    assert "4" in page.locator("#formula-list").inner_text()
    held = hold_runs(page)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/shape" in r.url else None)
    out_channels(page).fill("13")
    wait_js(page, "n => Number(document.querySelector('#layer-view').dataset.shapes || 0) > n", before_shapes)
    # the formulas' answer alone: no dataflow graph or inner trace (meta passes) on the edit's path
    assert asked and all(u.endswith("/api/shape?detail=shapes") for u in asked)
    assert held, "the run was asked for at once, not after a debounce"
    assert renders(page) == before_renders  # no run has answered yet
    assert "13" in page.locator("#formula-list").inner_text()  # C_out from the formula
    release(held)
    wait_render(page, before_renders)


def test_a_newer_edit_aborts_the_stale_run(page):
    open_view(page, CONV2D)
    before = renders(page)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url) if r.url.endswith("/api/run") else None)
    held = hold_runs(page)
    out_channels(page).fill("6")
    page.wait_for_timeout(100)
    out_channels(page).fill("7")
    page.wait_for_timeout(300)
    assert len(held) == 2
    release(held)
    wait_render(page, before)
    page.wait_for_timeout(300)
    assert failed, "the first edit's run was not aborted"
    assert renders(page) == before + 1  # only the newest edit's run was drawn
    assert "7" in page.locator("#formula-list").inner_text()
