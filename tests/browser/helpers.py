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


# Big grids are painted on a <canvas> held by an SVG <foreignObject> (draw/canvas.js); these find a
# cell by the drawing's geometry, as the page's own hit-testing does.


def wait_painted(page, svg: str = "#win-drawing svg.drawing", timeout: float = 30_000) -> None:
    """Wait until every canvas of the drawing ``svg`` is painted (they are painted in pieces)."""
    wait_js(page, "s => document.querySelector(s)?.dataset.painted === 'true'", svg, timeout)


def canvas_point(page, fo: str, r: int, c: int, origin=(0, 0)) -> tuple[float, float]:
    """Viewport point at the centre of cell (r, c) of the canvas grid in the foreignObject ``fo``.

    ``origin``: where the grid starts inside the canvas, in drawing units (a heatmap's slice). The grid
    is scrolled to the middle of the viewport first: "in view" is not enough under the sticky header."""
    return tuple(
        page.evaluate(
            """([sel, r, c, ox, oy]) => {
                 const fo = document.querySelector(sel);
                 fo.scrollIntoView({block: 'center', inline: 'nearest'});
                 const cell = +fo.ownerSVGElement.dataset.cell;
                 const b = fo.getBoundingClientRect();
                 const k = b.width / +fo.getAttribute('width');
                 return [b.left + (ox + (c + 0.5) * cell) * k, b.top + (oy + (r + 0.5) * cell) * k];
               }""",
            [fo, r, c, *origin],
        )
    )


def canvas_pixel(page, fo: str, r: int, c: int, origin=(0, 0), at: float = 0.5) -> list[int]:
    """[r, g, b] of the canvas pixel at the centre of cell (r, c) (``at``: a fraction of the cell
    from its top-left corner instead, e.g. to stay clear of a value written in the cell)."""
    return page.evaluate(
        """([sel, r, c, ox, oy, at]) => {
             const fo = document.querySelector(sel);
             const canvas = fo.querySelector('canvas');
             const cell = +fo.ownerSVGElement.dataset.cell;
             const k = canvas.width / +fo.getAttribute('width');
             const px = canvas.getContext('2d').getImageData(
               Math.floor((ox + (c + at) * cell) * k), Math.floor((oy + (r + at) * cell) * k), 1, 1).data;
             return [px[0], px[1], px[2]];
           }""",
        [fo, r, c, *origin, at],
    )


def css_rgb(page, color: str) -> list[int]:
    """A CSS colour ("#rrggbb", "rgb(…)") as [r, g, b], parsed by the browser."""
    return page.evaluate(
        """s => { const ctx = document.createElement('canvas').getContext('2d'); ctx.fillStyle = s;
                  const h = ctx.fillStyle; return [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)); }""",
        color,
    )


def tooltip_html(page) -> str:
    return page.evaluate(
        "() => [...document.querySelectorAll('.tooltip')].filter(t => !t.hidden).map(t => t.innerHTML).join('|')"
    )


def wait_tooltip(page, expect: str, timeout: float = 5_000) -> str:
    """Wait for a shown tooltip whose text contains ``expect``; its text. Chromium hands mouse moves to
    the page with the next animation frame, after Playwright's move has returned."""
    wait_js(
        page,
        "t => [...document.querySelectorAll('.tooltip')].some(e => !e.hidden && e.innerText.includes(t))",
        expect,
        timeout,
    )
    return page.evaluate(
        "t => [...document.querySelectorAll('.tooltip')].find(e => !e.hidden && e.innerText.includes(t)).innerText",
        expect,
    )


def hover_canvas(
    page, fo: str, r: int, c: int, expect: str, origin=(0, 0), click: bool = False, timeout: float = 30_000
) -> str:
    """Point at (or click) cell (r, c) of a canvas grid; wait for the tooltip that names ``expect``.

    Waits on the tooltip itself, not a fixed time: under load the page may still be painting (or the
    grid still settling) when the first move arrives, so the pointer is moved to the cell again, found
    afresh, every second until the tooltip shows or ``timeout`` passes. A click is sent once."""
    deadline = time.monotonic() + timeout / 1000
    x, y = canvas_point(page, fo, r, c, origin)
    (page.mouse.click if click else page.mouse.move)(x, y)
    nudge = 0.5  # a move to the same point fires no mousemove: alternate by half a pixel (the same cell)
    while True:
        try:
            return wait_tooltip(page, expect, timeout=1_000)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
        x, y = canvas_point(page, fo, r, c, origin)
        page.mouse.move(x + nudge, y)
        nudge = 0.5 - nudge
