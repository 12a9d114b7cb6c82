"""The tutorial as a lesson: walked first to last and back, restored from a link, on a phone."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.browser.helpers import config_url, wait_js

pytestmark = pytest.mark.browser

# tests/test_tutorial.py's printed values of the element each step pins (MaxPool: plain torch, see
# tests/test_lesson.py); None where the step opens a network.
PINNED_VALUE = {
    "basic-linear": 5.7495,
    "linear": 0.7910,
    "bilinear": 0.2347,
    "maxpool1d": -0.3,
    "maxpool2d-ceil": 19.0,
}


@pytest.fixture(scope="module")
def lesson(base_url):
    import httpx

    return httpx.get(f"{base_url}/api/lesson", timeout=30).json()["steps"]


def ui_of(page) -> dict:
    q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return json.loads(q["ui"][0]) if "ui" in q else {}


def wait_step(page, step: dict, n: int, total: int) -> None:
    wait_js(page, "id => document.querySelector('#lesson')?.dataset.step === id", step["id"])
    assert page.locator("#lesson-count").inner_text() == f"Step {n} of {total}"
    assert step["title"] in page.locator("#lesson-title").inner_text()
    view = "#layer-view" if step["view"] == "layer" else "#network-view"
    # the step's view has drawn its answer
    wait_js(
        page,
        "v => { const r = document.querySelector(v); return !r.hidden && Number(r.dataset.renders || 0) > 0"
        " && r.getAttribute('aria-busy') !== 'true'; }",
        view,
    )
    assert ui_of(page).get("lesson") == step["id"]


def check_numbers(page, step: dict) -> None:
    if step["view"] == "network":
        # the network view opens the tutorial's preset (its numbers: tests/test_lesson.py, via the API)
        wait_js(page, "id => document.querySelector('#net-preset').value === id", step["preset"])
        return
    t = step["request"]["layer"]
    wait_js(page, "t => document.querySelector('#config-form legend .layer-type')?.textContent.includes(t)", t["type"])
    if step["pinned"] is None:
        return
    match = page.locator("#explain-body .match")
    match.wait_for()
    wait_js(page, "() => document.querySelector('#explain-body .match')?.dataset.match === 'true'")
    if step["id"] in PINNED_VALUE:
        assert float(match.get_attribute("data-torch")) == pytest.approx(PINNED_VALUE[step["id"]], abs=5e-5)
    if step["id"] == "maxpool1d":
        # the padded cell of the first window reads −∞, never 0
        assert "∞" in page.locator("#explain-body").inner_text()


def test_a_newcomer_is_pointed_to_the_lesson(page):
    page.goto("/")
    wait_js(page, "() => document.body.dataset.ready === 'true'")
    btn = page.locator("#lesson-btn")
    assert btn.is_visible() and "lesson" in btn.inner_text().lower()
    assert page.locator("#lesson").is_hidden()
    btn.click()
    wait_js(page, "() => document.querySelector('#lesson')?.dataset.step === 'basic-linear'")
    assert btn.get_attribute("aria-pressed") == "true"


def test_walk_the_lesson_first_to_last_and_back(page, lesson):
    total = len(lesson)
    first = lesson[0]
    page.goto(config_url(first["request"], {"lesson": first["id"], "pinned": first["pinned"]}))
    wait_step(page, first, 1, total)
    assert page.locator("#lesson-prev").is_disabled()
    check_numbers(page, first)
    for n, step in enumerate(lesson[1:], start=2):
        page.click("#lesson-next")
        wait_step(page, step, n, total)
        check_numbers(page, step)
    assert page.locator("#lesson-next").is_disabled()
    # the tutorial's unfinished MaxPool section ends the lesson
    assert "MaxPool" in page.locator("#lesson-title").inner_text()
    for n in range(total - 1, 0, -1):
        page.click("#lesson-prev")
        wait_step(page, lesson[n - 1], n, total)
    check_numbers(page, first)
    # each step pushed a history entry: the browser's Back returns to the previous one
    page.click("#lesson-next")
    wait_step(page, lesson[1], 2, total)
    page.go_back()
    wait_step(page, first, 1, total)


def test_a_link_restores_the_step(page, lesson):
    step = next(s for s in lesson if s["id"] == "bilinear")
    page.goto(config_url(step["request"], {"lesson": "bilinear", "pinned": step["pinned"]}))
    wait_step(page, step, 6, len(lesson))
    check_numbers(page, step)
    # the round trip: the address the page writes reopens the same step
    url = page.url
    page.goto("about:blank")
    page.goto(url)
    wait_step(page, step, 6, len(lesson))
    # a network step, too
    net = next(s for s in lesson if s["id"] == "residual-block")
    page.goto(config_url(net["request"], {"view": "network", "lesson": net["id"]}))
    wait_step(page, net, 3, len(lesson))
    check_numbers(page, net)  # still the tutorial's preset, by name
    # an unknown step leaves the lesson closed, the view itself opens
    page.goto(config_url(step["request"], {"lesson": "no-such-step"}))
    wait_js(page, "() => Number(document.querySelector('#layer-view').dataset.renders || 0) > 0")
    assert page.locator("#lesson").is_hidden()


def test_leaving_and_the_code_link(page, lesson):
    step = lesson[0]
    page.goto(config_url(step["request"], {"lesson": step["id"], "pinned": step["pinned"]}))
    wait_step(page, step, 1, len(lesson))
    page.click("#lesson-code")
    code = page.locator("#code-panel pre.code")
    wait_js(page, "() => document.querySelector('#code').textContent.includes('BasicLinear')")
    box = code.bounding_box()
    assert box and 0 <= box["y"] < 800, "the reproduction script is brought into view"
    assert "torch.manual_seed(42)" in page.locator("#code").inner_text()
    page.click("#lesson-close")
    assert page.locator("#lesson").is_hidden()
    wait_js(page, "() => !new URLSearchParams(location.search).get('ui')?.includes('lesson')")
    # choosing a layer from the catalog also leaves the lesson
    page.click("#lesson-btn")
    wait_js(page, "() => !document.querySelector('#lesson').hidden")
    page.fill("#catalog-search", "Conv2d")
    page.locator('#catalog-list button.cat-item:text-is("Conv2d")').click()
    wait_js(page, "() => document.querySelector('#lesson').hidden")


@pytest.mark.parametrize("step_id", ["conv1d", "maxpool2d-ceil"])
def test_phone_keeps_the_picture_in_view_while_editing(page, lesson, step_id):
    page.set_viewport_size({"width": 420, "height": 900})
    step = next(s for s in lesson if s["id"] == step_id)
    page.goto(config_url(step["request"], {"lesson": step_id}))
    wait_step(page, step, [s["id"] for s in lesson].index(step_id) + 1, len(lesson))
    fields = page.locator(
        "#config-form input[type='text']:not([disabled]):not([readonly]), #config-form select:not([disabled])"
    )
    assert fields.count() >= 4
    for i in range(fields.count()):
        field = fields.nth(i)
        if not field.is_visible():
            continue
        field.focus()
        assert field.evaluate("el => el === document.activeElement"), i
        # the dock restyles on focus, then the page scrolls the field above it (ui/dock.js)
        wait_js(
            page,
            """() => { const f = document.activeElement.getBoundingClientRect();
                       const p = document.querySelector('#diagram-panel');
                       return getComputedStyle(p).position === 'fixed' && f.bottom <= p.getBoundingClientRect().top + 1; }""",
            timeout=5_000,
        )
        f = field.bounding_box()
        d = page.locator("#diagram svg.drawing").bounding_box()
        panel = page.locator("#diagram-panel").bounding_box()
        assert d is not None and panel is not None
        # the picture is on screen, at least 150 px of it, and the field being edited is not under it
        visible = min(d["y"] + d["height"], 900) - max(d["y"], 48)
        assert visible >= 150, (i, d)
        assert f["y"] >= 48 and f["y"] + f["height"] <= panel["y"] + 1, (i, f, panel)
    page.evaluate("() => document.activeElement.blur()")
    # editing done: the picture is back in its place in the page
    wait_js(page, "() => getComputedStyle(document.querySelector('#diagram-panel')).position !== 'fixed'")


def test_phone_keeps_the_network_in_view_while_editing(page, lesson):
    page.set_viewport_size({"width": 420, "height": 900})
    step = next(s for s in lesson if s["id"] == "neural-net")
    page.goto(config_url(step["request"], {"view": "network", "lesson": step["id"]}))
    wait_step(page, step, 2, len(lesson))
    page.locator("#net-diagram svg").first.wait_for()
    page.locator('#net-form [data-part="inputs"] input[type="text"]').first.focus()
    wait_js(
        page,
        """() => { const f = document.activeElement.getBoundingClientRect();
                   const p = document.querySelector('#net-diagram-panel');
                   return getComputedStyle(p).position === 'fixed' && f.bottom <= p.getBoundingClientRect().top + 1
                     && f.top >= 48; }""",
        timeout=5_000,
    )
    d = page.locator("#net-diagram svg").first.bounding_box()
    assert d is not None and min(d["y"] + d["height"], 900) - max(d["y"], 48) >= 150
