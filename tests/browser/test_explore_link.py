"""The link explore() opens in a script: a network too big for a request line travels after "#".

The server refuses a request head over 16 KiB, so a big network's state goes in the fragment, which the
browser never sends; the page reads it as it reads the query, then writes the query form to the bar.
"""

from __future__ import annotations

import importlib
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.helpers import wait_js

pytestmark = pytest.mark.browser

explore_mod = importlib.import_module("layer_explorer.explorer")


def _wait_network(page) -> None:
    wait_js(
        page,
        """() => {
            const v = document.querySelector('#network-view');
            return Number(v?.dataset.renders || 0) > 0 && v.getAttribute('aria-busy') === 'false' && v.dataset.state === 'ok';
        }""",
        timeout=60_000,
    )


SMALL = {
    "layer": {
        "type": "Sequential",
        "layers": [{"type": "Linear", "in_features": 6, "out_features": 3}, {"type": "ReLU"}],
    },
    "inputs": [{"shape": [2, 6]}],
}


@pytest.mark.parametrize("preset", ["densenet121", None])
def test_the_link_opens_the_network_whatever_its_size(page, base_url, preset):
    presets = httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]
    request = next(p["request"] for p in presets if p["id"] == preset) if preset else SMALL
    url = explore_mod.network_url(base_url, request)
    big = preset is not None
    assert ("#config=" in url) is big and ("?config=" in url) is not big
    if big:  # as a query it would pass the server's 16 KiB limit on a request head
        assert len(url) > 16 * 1024
    page.goto(url)
    _wait_network(page)
    # the page's count is /api/shape's (meta device: no DenseNet forward on this machine's CPUs)
    expected = httpx.post(f"{base_url}/api/shape", json=request, timeout=120).json()["totals"]["param_count"]
    assert int(page.locator("#net-total-params").get_attribute("data-value")) == expected
    # the bar holds the page's own query form (what Share copies), the fragment gone
    parts = urlsplit(page.url)
    assert not parts.fragment
    assert json.loads(parse_qs(parts.query)["ui"][0]) == {"view": "network"}
