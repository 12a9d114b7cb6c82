"""The browser section of ``python -m benchmarks``: what a user waits for after an edit.

A real uvicorn server on 127.0.0.1 (a random free port, started as its own process) and Debian's
headless Chromium driven by Playwright. Every figure is a median over several edits, each with a peer
measured in the same run in the same page:

- Linear edit -> shape diagram drawn, against the page's own raw ``fetch`` of ``/api/shape`` with the
  same body (the network and server floor); and against the 50 ms target.
- Linear edit -> values drawn, against the raw ``fetch`` of ``/api/run``; target 150 ms.
- Conv2d(3, 8, 3) on [1, 3, 64, 64]: how many long tasks (PerformanceObserver ``longtask``, > 50 ms)
  follow an edit and the longest of them, against the 50 ms target, with the raw ``/api/run`` fetch.

"Drawn" is the first frame after the view marks the drawing done (``data-shapes`` / ``data-renders``
on ``#layer-view``): a ``requestAnimationFrame`` and then a message-channel task, which runs after that
frame's paint. Without Chromium the section is skipped with a printed note.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/lib/chromium/chromium"
ROOT = Path(__file__).resolve().parent.parent

LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}
CONV64 = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 64, 64]}],
    "seed": 1,
}
LONG_TASK_MS = 50

# Installed once per page (through the DevTools protocol, so the page's CSP does not apply): records
# long tasks, the time of each edit (the `input` event) and when each drawing was marked done.
PROBE = """() => {
  if (window.__probe) return;
  const p = window.__probe = {longtasks: [], edits: [], shapes: [], renders: []};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) p.longtasks.push({start: e.startTime, duration: e.duration});
  }).observe({type: 'longtask', buffered: true});
  document.addEventListener('input', (e) => p.edits.push(e.timeStamp), true);
  const afterPaint = (fn) => requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => fn(performance.now());
    ch.port2.postMessage(null);
  });
  const view = document.querySelector('#layer-view');
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.attributeName === 'data-shapes') afterPaint((t) => p.shapes.push(t));
      if (r.attributeName === 'data-renders') afterPaint((t) => p.renders.push(t));
    }
  }).observe(view, {attributes: true, attributeFilter: ['data-shapes', 'data-renders']});
}"""

FETCH = """async ([path, body]) => {
  const t0 = performance.now();
  const r = await fetch(path, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
  await r.json();
  return performance.now() - t0;
}"""


def chromium() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    # a random port in 20000-29999 that nothing listens on (the shared machine's convention)
    import random

    for _ in range(50):
        port = random.randint(20000, 29999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


@contextlib.contextmanager
def server() -> Iterator[str]:
    """A real uvicorn process serving the app; yields its base URL and stops it afterwards."""
    port = _free_port()
    env = {**os.environ, "LAYER_EXPLORER_WORKERS": os.environ.get("LAYER_EXPLORER_WORKERS", "2")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 120 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open(page, url: str, config: dict) -> None:
    page.goto(f"{url}/?config={urllib.parse.quote(json.dumps(config))}")
    _wait(page, "() => Number(document.querySelector('#layer-view')?.dataset.renders || 0) > 0")
    page.evaluate(PROBE)


def _wait(page, expression: str, arg=None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        page.wait_for_timeout(20)


def _edit(page, field: str, value: int) -> dict:
    """Types ``value`` into the form field; waits until the values are drawn; returns the timings."""
    before = page.evaluate("() => ({r: window.__probe.renders.length, s: window.__probe.shapes.length})")
    page.locator(f'[data-field="{field}"] input').fill(str(value))
    _wait(page, "n => window.__probe.renders.length > n", before["r"])
    return page.evaluate(
        """(b) => { const p = window.__probe; const t0 = p.edits[p.edits.length - 1];
           return {t0, shape: p.shapes.length > b.s ? p.shapes[p.shapes.length - 1] - t0 : null,
                   values: p.renders[p.renders.length - 1] - t0}; }""",
        before,
    )


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def measure(quick: bool = False) -> list[tuple[str, str, str, str, str]] | str:
    """The browser rows, or a note saying why the section was skipped."""
    exe = chromium()
    if exe is None:
        return f"browser section skipped: no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "browser section skipped: Playwright is not installed (pip install -e '.[test]')"
    edits = 5 if quick else 11
    rows: list[tuple[str, str, str, str, str]] = []
    with server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # Linear: edit -> shapes, edit -> values; peers: raw fetches from the same page
            _open(page, url, LINEAR)
            shape_ms, values_ms, fetch_shape, fetch_run = [], [], [], []
            for i in range(edits + 2):
                t = _edit(page, "layer.out_features", 6 + i % 5)
                body = {**LINEAR, "layer": {**LINEAR["layer"], "out_features": 6 + i % 5}}
                fs = page.evaluate(FETCH, ["/api/shape", body])
                fr = page.evaluate(FETCH, ["/api/run", body])
                if i < 2:
                    continue  # warm-up: first JIT of the drawing code
                if t["shape"] is not None:
                    shape_ms.append(t["shape"])
                values_ms.append(t["values"])
                fetch_shape.append(fs)
                fetch_run.append(fr)
            s, v = _median(shape_ms), _median(values_ms)
            rows.append(
                (
                    "browser: Linear edit -> shape diagram drawn",
                    f"{s:.1f} ms",
                    "raw fetch /api/shape from the page",
                    f"{_median(fetch_shape):.1f} ms",
                    f"{s / _median(fetch_shape):.1f}×; {s / 50:.2f}× of the 50 ms target "
                    f"({len(shape_ms)} of {edits} edits drew shapes first)",
                )
            )
            rows.append(
                (
                    "browser: Linear edit -> values drawn",
                    f"{v:.1f} ms",
                    "raw fetch /api/run from the page",
                    f"{_median(fetch_run):.1f} ms",
                    f"{v / _median(fetch_run):.1f}×; {v / 150:.2f}× of the 150 ms target",
                )
            )

            # Conv2d on 64×64: long tasks after the first load and after each edit
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            t_open = time.perf_counter()
            _open(page, url, CONV64)
            load_wall = (time.perf_counter() - t_open) * 1e3
            page.wait_for_timeout(1500)
            # split at the first /api/run answer: before it the page itself loads (HTML, modules, the first
            # style and layout), after it the layer is drawn
            answered = page.evaluate(
                "() => Math.min(...performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/api/run')).map(e => e.responseEnd))"
            )
            tasks = page.evaluate("() => window.__probe.longtasks")
            first = [t["duration"] for t in tasks if t["start"] + t["duration"] >= answered]
            before = [t["duration"] for t in tasks if t["start"] + t["duration"] < answered]
            counts, longest, values_ms, fetch_run = [], [], [], []
            for i in range(max(3, edits // 2) + 1):
                seen = page.evaluate("() => window.__probe.longtasks.length")
                t = _edit(page, "layer.out_channels", 8 + (i % 2))
                page.wait_for_timeout(1000)  # the animation keeps playing: its steps count too
                tasks = page.evaluate(
                    "([n, t0]) => window.__probe.longtasks.slice(n).filter(t => t.start + t.duration >= t0)"
                    ".map(t => t.duration)",
                    [seen, t["t0"]],
                )
                body = {**CONV64, "layer": {**CONV64["layer"], "out_channels": 8 + (i % 2)}}
                fr = page.evaluate(FETCH, ["/api/run", {**body, "window_slice": {"batch": 0, "channel": 0}}])
                if i == 0:
                    continue  # warm-up
                counts.append(len(tasks))
                longest.append(max(tasks, default=0.0))
                values_ms.append(t["values"])
                fetch_run.append(fr)
            rows.append(
                (
                    "browser: Conv2d 64×64 first load, long tasks once /api/run answered",
                    f"{len(first)}, longest {max(first, default=0):.0f} ms",
                    "page loading before that answer (HTML, modules, first layout)",
                    f"{len(before)}, longest {max(before, default=0):.0f} ms",
                    f"{max(first, default=0) / LONG_TASK_MS:.2f}× of the {LONG_TASK_MS} ms target "
                    f"(page open to values: {load_wall:.0f} ms)",
                )
            )
            rows.append(
                (
                    "browser: Conv2d 64×64 edit, long tasks (median per edit)",
                    f"{_median(counts):g}, longest {_median(longest):.0f} ms (worst {max(longest):.0f} ms)",
                    "target",
                    f"none over {LONG_TASK_MS} ms",
                    f"{_median(longest) / LONG_TASK_MS:.2f}×",
                )
            )
            rows.append(
                (
                    "browser: Conv2d 64×64 edit -> values drawn",
                    f"{_median(values_ms):.0f} ms",
                    "raw fetch /api/run from the page",
                    f"{_median(fetch_run):.0f} ms",
                    f"{_median(values_ms) / _median(fetch_run):.1f}×",
                )
            )
        finally:
            browser.close()
    return rows


if __name__ == "__main__":
    out = measure(quick="--quick" in sys.argv)
    if isinstance(out, str):
        print(out)
    else:
        for row in out:
            print("| " + " | ".join(row) + " |")
