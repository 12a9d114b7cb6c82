"""Page helpers shared by the browser tests."""

import json
import time
import urllib.parse


def wait_js(page, expression: str, arg=None, timeout: float = 30_000) -> None:
    """Poll ``expression`` (a JS function or expression) until it is truthy.

    Not ``page.wait_for_function``: Playwright evaluates its predicate with ``eval`` inside the page,
    which the app's Content-Security-Policy (script-src 'self', no 'unsafe-eval') rightly refuses.
    ``page.evaluate`` goes through the DevTools protocol, which CSP does not govern.
    """
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} ms waiting for: {expression}")
        page.wait_for_timeout(50)


def config_url(config: dict, ui: dict | None = None) -> str:
    q = "/?config=" + urllib.parse.quote(json.dumps(config))
    if ui:
        q += "&ui=" + urllib.parse.quote(json.dumps(ui))
    return q


def renders(page) -> int:
    return int(page.evaluate("Number(document.querySelector('#layer-view').dataset.renders || 0)"))


def wait_render(page, after: int = 0, timeout: float = 15_000) -> int:
    wait_js(page, "n => Number(document.querySelector('#layer-view')?.dataset.renders || 0) > n", after, timeout)
    return renders(page)


def open_view(page, config: dict | None = None, ui: dict | None = None) -> None:
    page.goto(config_url(config, ui) if config else "/")
    wait_render(page)
