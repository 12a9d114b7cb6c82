"""Every picture in the README and the user guide, made by the project of itself.

``python -m docs.pictures`` starts the app on a free loopback port, drives headless Chromium through
named states of the page (each reached through the link state, the page's own controls and waits on
conditions, never on fixed times), writes one PNG per state into ``docs/images/``, and asks the app's
own ``POST /api/animate`` for the README's animated GIF. A state that cannot be reached stops the run
with a non-zero exit status naming it.

``--fast`` takes only the states marked fast (what the test suite runs, into a temporary folder);
``--only NAME`` takes the named ones; ``--out DIR`` writes elsewhere than ``docs/images``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from app.core.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
CHROMIUM = "/usr/lib/chromium/chromium"
# The flags the browser tests use (tests/browser/conftest.py): a container without a GPU or network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 420, "height": 900}
#: README pictures must stay small enough to load at once on GitHub
MAX_BYTES = 1_000_000
TIMEOUT_MS = 120_000


class StateError(RuntimeError):
    """A state of the page could not be reached."""


# ---------------------------------------------------------------------------------------------
# The app on a free loopback port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve() -> Iterator[str]:
    """The app (app.main.create_app) served by uvicorn in a thread; yields its base URL."""
    # a busy machine (a CI runner, a laptop compiling) must not turn a picture into a 504: the deadline
    # that guards a public server is lifted here, where the only client is this script
    settings = dataclasses.replace(Settings.from_env(), timeout_s=120.0)
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="docs-pictures-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the worker processes start before the server answers
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise StateError("the app did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    # the first request waits for the workers; asking /readyz here keeps that wait out of the states
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=10).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# ---------------------------------------------------------------------------------------------
# A state: where to go, what to wait for, what to photograph


@dataclass
class Shot:
    """What a state gets: the page, the app's address and where pictures go."""

    page: Any
    base: str
    out: Path
    timeout_ms: float = TIMEOUT_MS

    def wait(self, expression: str, arg: Any = None, what: str = "", timeout: float | None = None) -> None:
        """Poll a JS expression until it is truthy (the app's CSP forbids eval, so no wait_for_function)."""
        deadline = time.monotonic() + (timeout or self.timeout_ms) / 1000
        while not self.page.evaluate(expression, arg):
            if time.monotonic() > deadline:
                seen = self.page.evaluate(
                    "() => ({url: location.search.slice(0, 120), status: document.querySelector('#status')?.textContent,"
                    " error: document.querySelector('#form-error:not([hidden]), #net-error:not([hidden])')?.textContent})"
                )
                raise StateError(f"timed out waiting for {what or expression}; the page: {seen}")
            self.page.wait_for_timeout(50)

    def open(self, config: dict | None = None, ui: dict | None = None, view: str = "layer") -> None:
        """Open the page on a link's state and wait until its view has drawn."""
        url = "/"
        if config is not None:
            url += "?config=" + urllib.parse.quote(json.dumps(config))
            if ui:
                url += "&ui=" + urllib.parse.quote(json.dumps(ui))
        self.page.goto(self.base + url)
        self.settled(view)

    def settled(self, view: str = "layer", after: int = 0) -> None:
        self.wait("() => document.body.dataset.ready === 'true'", what="the page to start")
        self.wait(
            """([v, n]) => { const r = document.querySelector(`#${v}-view`);
                 return r && !r.hidden && Number(r.dataset.renders || 0) > n && r.getAttribute('aria-busy') !== 'true'; }""",
            [view, after],
            what=f"the {view} view to draw",
        )
        self.idle()

    def renders(self, view: str = "layer") -> int:
        return int(self.page.evaluate("v => Number(document.querySelector(`#${v}-view`).dataset.renders || 0)", view))

    def idle(self) -> None:
        """Fonts loaded and every canvas-painted drawing finished (draw/canvas.js sets data-painted)."""
        self.page.evaluate("() => document.fonts.ready.then(() => true)")
        self.wait(
            "() => [...document.querySelectorAll('svg.drawing[data-cells=\"canvas\"]')]"
            "  .filter(s => !s.closest('.fold[data-folded], [hidden]')).every(s => s.dataset.painted === 'true')",
            what="the canvas drawings to be painted",
        )
        # moving parts come to rest: CSS transitions ended, and the drawings' markup the same twice
        # running (d3 moves the window by timers); an autoplaying animation never rests, so this
        # gives up after a few seconds rather than failing
        snapshot = """() => document.getAnimations().some(a => a.playState === 'running') ? Math.random()
            : ['#win-drawing', '#diagram', '#net-graph'].map(s => document.querySelector(s)?.innerHTML ?? '').join('|')"""
        before, deadline = self.page.evaluate(snapshot), time.monotonic() + 5
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(150)
            now = self.page.evaluate(snapshot)
            if now == before:
                break
            before = now
        # two frames, so the last layout and paint are on screen
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")

    def pause(self) -> None:
        """Stop the sliding window's autoplay, so the picture shows one chosen frame."""
        if self.page.locator("#win-play[aria-pressed='true']").count():
            self.page.click("#win-play")
            self.wait(
                "() => document.querySelector('#win-play').getAttribute('aria-pressed') !== 'true'",
                what="the animation to pause",
            )

    def visible(self, selector: str) -> Any:
        loc = self.page.locator(selector).first
        try:
            loc.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightError as e:  # its TimeoutError
            raise StateError(f"{selector} did not appear") from e
        return loc

    def save(self, name: str, selector: str | None = None, region: list[str] | None = None) -> Path:
        """The viewport; or one element (``selector``); or the box around several (``region``)."""
        path = self.out / name
        if selector or region:
            # the sticky top bar stays at the top of the page instead of lying over the part (set
            # through the CSSOM: the app's CSP refuses an injected stylesheet)
            self.page.evaluate("() => { document.querySelector('.topbar').style.position = 'static'; }")
        if selector:
            self.visible(selector).screenshot(path=str(path))
        elif region:
            box = self.page.evaluate(
                """sels => { const rs = sels.map(s => document.querySelector(s).getBoundingClientRect());
                     const x = Math.min(...rs.map(r => r.left)), y = Math.min(...rs.map(r => r.top));
                     return {x: x + scrollX, y: y + scrollY, width: Math.max(...rs.map(r => r.right)) - x,
                             height: Math.max(...rs.map(r => r.bottom)) - y}; }""",
                region,
            )
            self.page.screenshot(path=str(path), full_page=True, clip=box)
        else:
            self.page.screenshot(path=str(path))
        if selector or region:
            self.page.evaluate("() => { document.querySelector('.topbar').style.position = ''; }")
        return path


@dataclass(frozen=True)
class State:
    name: str
    file: str
    take: Callable[[Shot], Any]
    viewport: dict[str, int]
    fast: bool = False


# ---------------------------------------------------------------------------------------------
# The states


def _lesson(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/api/lesson", timeout=30).json()


def _step(base: str, step_id: str) -> dict[str, Any]:
    steps = {s["id"]: s for s in _lesson(base)["steps"]}
    if step_id not in steps:
        raise StateError(f"the lesson has no step {step_id!r}")
    return steps[step_id]


def animation(shot: Shot) -> Path:
    """The README's animation: the lesson's MaxPool1d, whose windows overhang into −∞ padding."""
    step = _step(shot.base, "maxpool1d")
    r = httpx.post(f"{shot.base}/api/animate?format=gif", json=step["request"], timeout=120)
    if r.status_code != 200:
        raise StateError(f"POST /api/animate answered {r.status_code}: {r.text[:200]}")
    path = shot.out / "maxpool-window.gif"
    path.write_bytes(r.content)
    return path


CONV2D = {
    "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": 1, "stride": 2},
    "inputs": [{"shape": [1, 1, 7, 7]}],
    "seed": 0,
}


def layer_explained(shot: Shot) -> Path:
    """A layer view with one output element pinned and explained, and its window on the input."""
    shot.open(CONV2D, {"pinned": {"output": None, "index": [0, 0, 1, 2]}})
    shot.visible("#explain-body .match")
    shot.visible("#win-drawing svg.drawing")
    shot.idle()
    return shot.save("layer-explained.png")


def _preset(base: str, preset_id: str) -> dict[str, Any]:
    presets = {p["id"]: p for p in httpx.get(f"{base}/api/presets", timeout=30).json()["presets"]}
    if preset_id not in presets:
        raise StateError(f"no preset {preset_id!r}")
    return presets[preset_id]["request"]


def _network(shot: Shot, preset_id: str, **changes: Any) -> None:
    shot.open({**_preset(shot.base, preset_id), **changes}, {"view": "network"}, view="network")
    shot.visible("#net-graph svg")


def network_receptive_field(shot: Shot) -> Path:
    """The ResNet basic block's dataflow graph (skip path, ⊕) lit by the field of one output element."""
    # eval mode: in training mode BatchNorm's batch statistics tie every position to every other
    _network(shot, "resnet-basic-block", train=False)
    _pick_field(shot, "network output", 3, 4)
    shot.idle()
    return shot.save("network-receptive-field.png", region=["#net-graph-panel", '#rf-nodes figure[data-id="input_1"]'])


def _pick_field(shot: Shot, option: str, r: int, c: int) -> None:
    """Pick the element (r, c) of the node whose option in the picker starts with ``option``."""
    page = shot.page
    shot.visible("#rf-target svg")
    node = page.evaluate(
        "t => [...document.querySelectorAll('#rf-node option')].find(o => o.textContent.startsWith(t))?.value", option
    )
    if not node:
        raise StateError(f"the receptive-field picker offers no {option!r}")
    page.select_option("#rf-node", node)
    shot.visible(f'#rf-target rect[data-r="{r}"][data-c="{c}"]').click()
    shot.visible('#rf-nodes figure[data-id="input_1"]')
    shot.wait("() => document.querySelectorAll('#net-graph g.df-node.rf-hit').length > 2", what="the graph to light up")


def receptive_field_panel(shot: Shot) -> Path:
    _network(shot, "lenet5")
    _pick_field(shot, "3 ", 5, 5)  # the second Conv2d, (1, 16, 10, 10)
    shot.idle()
    return shot.save("guide-receptive-field.png", "#net-rf-panel")


def _open_step(shot: Shot, step_id: str, pin: bool = True) -> None:
    step = _step(shot.base, step_id)
    if not pin:
        step["pinned"] = None
    shot.open(step["request"], {"view": step["view"], "lesson": step_id, "pinned": step["pinned"]}, view=step["view"])
    shot.wait(
        "id => document.querySelector('#lesson')?.dataset.step === id && !document.querySelector('#lesson').hidden",
        step_id,
        what=f"lesson step {step_id}",
    )
    if step["pinned"]:
        shot.visible("#explain-body .match")
    shot.idle()


def lesson_first(shot: Shot) -> Path:
    _open_step(shot, "basic-linear")
    return shot.save("lesson-first.png")


def lesson_last(shot: Shot) -> Path:
    _open_step(shot, "maxpool1d")
    return shot.save("lesson.png")


def lesson_phone(shot: Shot) -> Path:
    # no pinned element: the page would bring its explanation into view as it arrives
    _open_step(shot, "conv1d", pin=False)
    # the phone layout: the picture stays on screen while an argument is edited
    shot.visible("#config-form input").focus()
    # docked, the diagram is redrawn for the dock's width (side by side)
    shot.wait(
        """() => { const host = document.querySelector('#diagram'), svg = host.querySelector('svg.drawing');
                   return getComputedStyle(document.querySelector('#diagram-panel')).position === 'fixed'
                     && svg && Number(svg.getAttribute('viewBox')?.split(' ')[2]) === host.clientWidth; }""",
        what="the docked diagram",
    )
    shot.wait(
        """() => { const f = document.activeElement.getBoundingClientRect();
                   const dock = document.querySelector('#diagram-panel').getBoundingClientRect();
                   return f.top >= 48 && f.bottom <= dock.top; }""",
        what="the edited field above the docked diagram",
    )
    shot.idle()
    return shot.save("lesson-phone.png")


def shape_diagram(shot: Shot) -> Path:
    """Pick a layer in the catalog and read its shape diagram."""
    shot.open()
    page = shot.page
    page.fill("#catalog-search", "Conv2d")
    before = shot.renders()
    shot.visible('#catalog-list button.cat-item:text-is("Conv2d")').click()
    shot.settled(after=before)
    shot.visible("#diagram svg.drawing")
    shot.pause()
    shot.idle()
    return shot.save("guide-shape-diagram.png")


def sliding_window(shot: Shot) -> Path:
    shot.open(CONV2D, {"pinned": {"output": None, "index": [0, 0, 1, 2]}})
    shot.visible("#explain-body .match")
    shot.page.evaluate("() => document.querySelector('#window-panel').scrollIntoView({block: 'start'})")
    shot.page.evaluate("() => window.scrollBy(0, -56)")
    shot.idle()
    return shot.save("guide-sliding-window.png")


BROKEN_CODE = """nn.Sequential(
    nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10))"""


def shape_error(shot: Shot) -> Path:
    """Import PyTorch code, then give it an image of another size, and see where the shapes stop fitting."""
    _network(shot, "lenet5")
    page = shot.page
    page.locator("#net-paste summary").click()
    page.fill("#net-paste-code", BROKEN_CODE)
    before = shot.renders("network")
    page.click("#net-paste-open")
    shot.settled("network", after=before)
    # the import picks an input that fits (1×32×32); a 28×28 image does not reach Linear(400, …) whole
    before = shot.renders("network")
    shape = shot.visible('#net-form [data-part="inputs"] input[type="text"]')
    shape.fill("1, 1, 28, 28")
    shape.press("Enter")
    shot.settled("network", after=before)
    shot.wait("() => document.querySelector('#network-view').dataset.state === 'error'", what="the shape error")
    shot.visible("#net-error")
    shot.idle()
    return shot.save("guide-shape-error.png")


def drill(shot: Shot) -> Path:
    """A layer of a network opened on the input it receives there."""
    net = _preset(shot.base, "lenet5")
    shot.open(net, {"view": "network"}, view="network")
    shot.visible("#net-tree")
    before = shot.renders("layer")
    # the fourth layer, the second Conv2d, as the builder lists it
    shot.visible('#net-tree [data-field="layer.layers[3]"] .nt-pick, #net-tree li:nth-child(4) .nt-pick').click()
    shot.visible("#net-open").click()
    shot.settled("layer", after=before)
    shot.visible("#drill-bar")
    shot.pause()
    shot.idle()
    return shot.save("guide-drill.png")


def export_menu(shot: Shot) -> Path:
    step = _step(shot.base, "conv1d")
    shot.open(step["request"], {"pinned": {"output": None, "index": [0, 0, 2]}})
    shot.visible("#explain-body .match")
    page = shot.page
    page.evaluate("() => document.querySelector('#window-panel').scrollIntoView({block: 'start'})")
    page.evaluate("() => window.scrollBy(0, -56)")
    page.locator("#win-export summary").click()
    shot.visible('#win-export button[data-format="gif"]')
    shot.idle()
    return shot.save("guide-export.png", "#window-panel")


def share_link(shot: Shot) -> Path:
    shot.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=shot.base)
    step = _step(shot.base, "bilinear")
    shot.open(step["request"], {"pinned": step["pinned"]})
    shot.page.click("#share-btn")
    shot.wait("() => document.querySelector('.top-actions .copy-status')?.textContent.trim()", what="the copy status")
    shot.idle()
    return shot.save("guide-share.png", "header.topbar")


STATES = [
    State("animation", "maxpool-window.gif", animation, DESKTOP, fast=True),
    State("layer-explained", "layer-explained.png", layer_explained, DESKTOP),
    State("network-receptive-field", "network-receptive-field.png", network_receptive_field, DESKTOP),
    State("lesson", "lesson.png", lesson_last, DESKTOP, fast=True),
    State("lesson-first", "lesson-first.png", lesson_first, DESKTOP),
    State("lesson-phone", "lesson-phone.png", lesson_phone, PHONE),
    State("shape-diagram", "guide-shape-diagram.png", shape_diagram, DESKTOP),
    State("sliding-window", "guide-sliding-window.png", sliding_window, DESKTOP),
    State("shape-error", "guide-shape-error.png", shape_error, DESKTOP),
    State("drill", "guide-drill.png", drill, DESKTOP),
    State("receptive-field", "guide-receptive-field.png", receptive_field_panel, DESKTOP),
    State("export", "guide-export.png", export_menu, DESKTOP),
    State("share", "guide-share.png", share_link, DESKTOP),
]


# ---------------------------------------------------------------------------------------------


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise StateError(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    return found


def take(
    states: list[State], out: Path, log: Callable[[str], None] = print, timeout_ms: float = TIMEOUT_MS
) -> list[str]:
    """Take ``states`` into ``out``; returns the names of those that failed (each logged with why)."""
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with serve() as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            for state in states:
                context = browser.new_context(viewport=state.viewport, device_scale_factor=1)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                try:
                    path = state.take(Shot(page, base, out, timeout_ms))
                    if errors:
                        raise StateError(f"the page threw: {errors[0]}")
                    size = path.stat().st_size
                    if size > MAX_BYTES:
                        raise StateError(f"{path.name} is {size:,} bytes, over {MAX_BYTES:,}")
                    log(f"ok   {state.name:26} {path.relative_to(out)}  {size / 1024:.0f} KB")
                except (StateError, PlaywrightError, httpx.HTTPError, OSError) as e:
                    failed.append(state.name)
                    # what the page showed instead, to see why (outside the pictures' folder)
                    seen = Path(tempfile.gettempdir()) / f"docs-pictures-failed-{state.name}.png"
                    try:
                        page.screenshot(path=str(seen))
                    except PlaywrightError:
                        seen = None
                    log(f"FAIL {state.name:26} could not be reached: {e}" + (f" (the page: {seen})" if seen else ""))
                finally:
                    context.close()
        finally:
            browser.close()
    return failed


def main(argv: list[str] | None = None, states: list[State] = STATES) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.pictures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the pictures (default docs/images)")
    parser.add_argument("--fast", action="store_true", help="only the states marked fast (a quick check)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these states")
    parser.add_argument("--list", action="store_true", help="list the states and exit")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_MS / 1000, help="seconds to wait for each condition")
    args = parser.parse_args(argv)
    if args.list:
        for s in states:
            print(f"{s.name:26} {s.file}{'  (fast)' if s.fast else ''}")
        return 0
    names = {s.name for s in states}
    unknown = sorted(set(args.only or []) - names)
    if unknown:
        print(f"unknown state(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    chosen = [s for s in states if (not args.fast or s.fast) and (not args.only or s.name in args.only)]
    try:
        failed = take(chosen, args.out, timeout_ms=args.timeout * 1000)
    except StateError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    if failed:
        print(f"{len(failed)} state(s) could not be reached: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
