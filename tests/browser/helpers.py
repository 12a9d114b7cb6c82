"""Page helpers shared by the browser tests."""

import json
import urllib.parse


def config_url(config: dict, ui: dict | None = None) -> str:
    q = "/?config=" + urllib.parse.quote(json.dumps(config))
    if ui:
        q += "&ui=" + urllib.parse.quote(json.dumps(ui))
    return q


def renders(page) -> int:
    return int(page.evaluate("Number(document.querySelector('#layer-view').dataset.renders || 0)"))


def wait_render(page, after: int = 0, timeout: float = 15_000) -> int:
    page.wait_for_function(
        "n => Number(document.querySelector('#layer-view')?.dataset.renders || 0) > n", arg=after, timeout=timeout
    )
    return renders(page)


def open_view(page, config: dict | None = None, ui: dict | None = None) -> None:
    page.goto(config_url(config, ui) if config else "/")
    wait_render(page)
