"""axe-core finds no serious or critical violation in the lesson's states (first, a network, last, phone)."""

from __future__ import annotations

import pytest

from .helpers import config_url, wait_js
from .test_a11y import audit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    # axe is injected as an inline script, which the page's CSP refuses (see test_a11y.py)
    return {**browser_context_args, "bypass_csp": True}


@pytest.fixture(scope="module")
def steps(base_url):
    import httpx

    return {s["id"]: s for s in httpx.get(f"{base_url}/api/lesson", timeout=30).json()["steps"]}


@pytest.mark.parametrize("step_id", ["basic-linear", "residual-block", "maxpool2d-ceil"])
@pytest.mark.parametrize("width", [1280, 420])
def test_lesson_steps_have_no_serious_violations(page, steps, step_id, width):
    page.set_viewport_size({"width": width, "height": 800 if width == 1280 else 900})
    step = steps[step_id]
    page.goto(config_url(step["request"], {"view": step["view"], "lesson": step_id, "pinned": step["pinned"]}))
    wait_js(page, "id => document.querySelector('#lesson')?.dataset.step === id", step_id)
    view = "#layer-view" if step["view"] == "layer" else "#network-view"
    wait_js(page, "v => Number(document.querySelector(v).dataset.renders || 0) > 0", view)
    if step["pinned"]:
        page.locator("#explain-body .match").wait_for()
    if width == 420 and step["view"] == "layer":
        # the docked picture while a field is edited
        page.locator("#config-form input[type='text']").first.focus()
        wait_js(page, "() => getComputedStyle(document.querySelector('#diagram-panel')).position === 'fixed'")
    found = audit(page)
    assert found == [], "\n".join(found)
