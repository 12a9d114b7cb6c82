"""The browser section of ``python -m benchmarks``: what a user waits for after an edit.

A real uvicorn server on 127.0.0.1 (a random free port, started as its own process) and Debian's
headless Chromium driven by Playwright. Every figure is a median over several edits, each with a peer
measured in the same run in the same page:

- Linear edit -> shape diagram drawn, against the page's own raw ``fetch`` of ``/api/shape`` with the
  same body (the network and server floor); and against the 50 ms target.
- Linear edit -> values drawn, against the raw ``fetch`` of ``/api/run``; target 150 ms.
- Conv2d(3, 8, 3) on [1, 3, 64, 64]: how many long tasks (PerformanceObserver ``longtask``, > 50 ms)
  follow an edit and the longest of them, against the 50 ms target, with the raw ``/api/run`` fetch.
- ResNet-50's dataflow graph (issue 19): the first drawing after ``/api/shape`` answered (the graph
  opens collapsed to its top-level blocks), against the page's own ``JSON.parse`` of that answer (its
  text fetched again) and the 200 ms target; the longest task in between; "Expand all" (the graph
  panel's ``#net-graph-expand-all``) laid out and drawn, against the 1 s target, and the longest task
  while expanding everything and collapsing it again ("Collapse all"), against 100 ms. Without those
  buttons the expand/collapse rows say so.

"Drawn" is the first frame after the view marks the drawing done (``data-shapes`` / ``data-renders``
on ``#layer-view``): a ``requestAnimationFrame`` and then a message-channel task, which runs after that
frame's paint. Without Chromium the section is skipped with a printed note.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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


RESNET50_MS = {"first": 200, "expand": 1000, "task": 100}

# Installed before the page's own scripts (an init script): the time each /api/shape answer ended, the
# first frame painted after the dataflow graph's drawing appeared or changed, and long tasks.
GRAPH_PROBE = """() => {
  const p = window.__graph = {longtasks: [], drawn: [], answers: []};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) p.longtasks.push({start: e.startTime, duration: e.duration});
  }).observe({type: 'longtask', buffered: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name.includes('/api/shape')) p.answers.push(e.responseEnd);
  }).observe({type: 'resource', buffered: true});
  const afterPaint = (fn) => requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => fn(performance.now());
    ch.port2.postMessage(null);
  });
  const watch = () => {
    const host = document.querySelector('#net-graph');
    if (!host) return setTimeout(watch, 5);
    new MutationObserver(() => {
      const n = host.querySelectorAll('g.df-node').length;
      if (n) afterPaint((t) => p.drawn.push({t, n: host.querySelectorAll('g.df-node').length}));
    }).observe(host, {childList: true, subtree: true});
  };
  watch();
}"""

PARSE = """async () => {
  const text = await (await fetch(performance.getEntriesByType('resource').find(e => e.name.includes('/api/shape')).name, {
    method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify(window.__body)})).text();
  // parsed several times: one parse of a few hundred KB is under the timer's resolution
  const times = 5;
  const t0 = performance.now();
  for (let i = 0; i < times; i++) JSON.parse(text);
  return {ms: (performance.now() - t0) / times, bytes: text.length};
}"""


# The graph's own flat layout and drawing (every leaf a box), alone, on a host outside the view: the
# share of the first drawing that is the dataflow graph's, the rest being the view's other panels.
FLAT = """async () => {
  const m = await import('/static/js/draw/dataflow.js');
  const r = await fetch('/api/shape', {method: 'POST', headers: {'content-type': 'application/json'},
                                       body: JSON.stringify(window.__body)});
  const graph = (await r.json()).graph;
  const host = document.createElement('div');
  document.body.append(host);
  const t0 = performance.now();
  m.drawDataflow(host, graph);
  host.getBoundingClientRect();
  const ms = performance.now() - t0;
  host.remove();
  return ms;
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
            rows.extend(_resnet50_graph(browser, url, quick))
        finally:
            browser.close()
    return rows


def _button(page, name: str):
    """The graph panel's button whose text is ``name`` (case-insensitive), or None."""
    loc = page.locator("#net-graph-panel button", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$", re.I))
    return loc.first if loc.count() else None


def _settle(page, key: str, since: float, quiet_ms: float = 400, timeout: float = 60) -> float:
    """Waits until no drawing has been recorded for ``quiet_ms``; the time of the last one after ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = page.evaluate(f"(s) => Math.max(s, ...window.__graph.{key}.map(d => d.t ?? d))", since)
        page.wait_for_timeout(quiet_ms)
        if page.evaluate(f"(s) => Math.max(s, ...window.__graph.{key}.map(d => d.t ?? d))", since) == last:
            return last
    raise TimeoutError(key)


def _resnet50_graph(browser, url: str, quick: bool) -> list[tuple[str, str, str, str, str]]:
    """ResNet-50's dataflow graph: first drawing after the answer, expand all, long tasks (issue 19)."""
    import httpx

    presets = httpx.get(f"{url}/api/presets", timeout=60).json()["presets"]
    body = next(p for p in presets if p["id"] == "resnet50")["request"]
    query = urllib.parse.quote(json.dumps(body))
    ui = urllib.parse.quote(json.dumps({"view": "network"}))
    first, parse, first_tasks, nodes, flat = [], [], [], [], []
    expand, expand_nodes, tasks_ec = [], [], []
    has_expand = False
    for i in range((2 if quick else 4) + 1):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.add_init_script(f"({GRAPH_PROBE})()")
        page.goto(f"{url}/?config={query}&ui={ui}")
        _wait(page, "() => window.__graph && window.__graph.answers.length && window.__graph.drawn.length", timeout=300)
        page.wait_for_timeout(300)
        got = page.evaluate(
            """() => { const g = window.__graph; const a = g.answers[0];
                 const d = g.drawn.find(x => x.t >= a);
                 return {ms: d.t - a, n: d.n, end: d.t,
                         tasks: g.longtasks.filter(t => t.start + t.duration >= a && t.start <= d.t).map(t => t.duration)}; }"""
        )
        page.evaluate("(b) => { window.__body = b; }", body)
        parsed = page.evaluate(PARSE)
        p_ms, p_bytes = parsed["ms"], parsed["bytes"]
        flat_ms = page.evaluate(FLAT)
        # expand everything and collapse it again, where the page offers it
        ex, co = _button(page, "expand all"), _button(page, "collapse all")
        has_expand = bool(ex and co)
        ec = None
        if has_expand:
            page.wait_for_timeout(300)
            seen = page.evaluate("() => window.__graph.longtasks.length")
            t0 = page.evaluate("() => performance.now()")
            ex.click()
            t_exp = _settle(page, "drawn", t0)
            n_exp = page.evaluate("() => document.querySelectorAll('#net-graph g.df-node').length")
            t1 = page.evaluate("() => performance.now()")
            co.click()
            _settle(page, "drawn", t1)
            ec = {
                "ms": t_exp - t0,
                "n": n_exp,
                "tasks": page.evaluate("(n) => window.__graph.longtasks.slice(n).map(t => t.duration)", seen),
            }
        page.close()
        if i == 0:
            continue  # warm-up: the server's graph cache and the first JIT of the drawing code
        first.append(got["ms"])
        nodes.append(got["n"])
        first_tasks.append(max(got["tasks"], default=0.0))
        parse.append(p_ms)
        flat.append(flat_ms)
        if ec:
            expand.append(ec["ms"])
            expand_nodes.append(ec["n"])
            tasks_ec.append(max(ec["tasks"], default=0.0))
    f, pj, fl = _median(first), _median(parse), _median(flat)
    rows = [
        (
            f"browser: ResNet-50 view, collapsed graph drawn after /api/shape answered ({_median(nodes):g} boxes)",
            f"{f:.0f} ms",
            f"JSON.parse of that answer in the page ({p_bytes / 1e3:.0f} KB)",
            f"{pj:.1f} ms",
            f"{f / pj:.0f}×; {f / RESNET50_MS['first']:.2f}× of the {RESNET50_MS['first']} ms target",
        ),
        (
            "browser: ResNet-50 graph alone, flat layout and drawing (drawDataflow, every leaf a box)",
            f"{fl:.0f} ms",
            "JSON.parse of the answer",
            f"{pj:.1f} ms",
            f"{fl / pj:.0f}×; {fl / f:.2f} of the view's first drawing",
        ),
        (
            "browser: ResNet-50 graph, longest task from the answer to the drawing",
            f"{_median(first_tasks):.0f} ms (worst {max(first_tasks, default=0):.0f} ms)",
            "target",
            f"{RESNET50_MS['task']} ms",
            f"{_median(first_tasks) / RESNET50_MS['task']:.2f}×",
        ),
    ]
    if has_expand and expand:
        e = _median(expand)
        rows.append(
            (
                f"browser: ResNet-50 graph, expand all laid out and drawn ({_median(expand_nodes):g} boxes)",
                f"{e:.0f} ms",
                "the first drawing after the answer",
                f"{f:.0f} ms",
                f"{e / f:.1f}×; {e / RESNET50_MS['expand']:.2f}× of the {RESNET50_MS['expand']} ms target",
            )
        )
        rows.append(
            (
                "browser: ResNet-50 graph, longest task while expanding all and collapsing all",
                f"{_median(tasks_ec):.0f} ms (worst {max(tasks_ec, default=0):.0f} ms)",
                "JSON.parse of the answer",
                f"{pj:.1f} ms",
                f"{_median(tasks_ec) / RESNET50_MS['task']:.2f}× of the {RESNET50_MS['task']} ms target",
            )
        )
    else:
        rows.append(
            (
                "browser: ResNet-50 graph, expand all / collapse all",
                "not measured",
                "the page has no Expand all / Collapse all button",
                "—",
                "the graph is drawn flat (every leaf a box)",
            )
        )
    return rows


if __name__ == "__main__":
    out = measure(quick="--quick" in sys.argv)
    if isinstance(out, str):
        print(out)
    else:
        for row in out:
            print("| " + " | ".join(row) + " |")
