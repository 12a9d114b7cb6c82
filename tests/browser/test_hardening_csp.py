"""The page works under its Content-Security-Policy: no violation, KaTeX's fonts and styles load."""

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser

CONV2D = {
    "layer": {"type": "Conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
    "inputs": [{"shape": [1, 2, 6, 6]}],
    "seed": 0,
}
LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}


def test_no_csp_violations_and_katex_fonts_load(page, tmp_path):
    # Installed through the DevTools protocol (not subject to the page's CSP), before any page script.
    page.add_init_script("""
        window.__cspViolations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
    """)
    response = page.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    open_view(page, CONV2D)  # the sliding-window animation (d3 sets styles through element.style)
    page.locator("#window-panel").wait_for()
    open_view(page, LINEAR)
    page.locator('#diagram .m-y rect.cell[data-r="1"][data-c="2"]').click()
    page.locator("#explain-body .match").wait_for()
    page.evaluate("document.fonts.ready")
    fonts = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert any("KaTeX" in f for f in fonts), fonts
    # KaTeX's stylesheet applied: its formula spans are laid out with its own font family
    family = page.evaluate("getComputedStyle(document.querySelector('.katex')).fontFamily")
    assert "KaTeX_Main" in family
    page.screenshot(path=str(tmp_path / "csp.png"), full_page=True)
    assert page.evaluate("window.__cspViolations") == []
