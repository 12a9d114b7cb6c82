"""A notebook-like host page for the explore() widget: anywidget's model API stubbed, the kernel in this process.

The page imports the widget's real ES module (layer_explorer/static/widget.js) and calls its
``render({model, el})`` as anywidget does. The stub model's ``send`` goes to a Playwright binding that
answers with the widget's own kernel handler (:meth:`ExplorerWidget._on_request`), so every request
the page's modules make is served by the same code as in Jupyter, just without the comm.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

ORIGIN = "http://notebook.test"
WIDGET_JS = Path(__file__).resolve().parents[2] / "layer_explorer" / "static" / "widget.js"

HOST_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>explore — notebook</title>
<style>
  body { margin: 0; background: #fff; font: 13px/1.4 system-ui, sans-serif; color: #1f2937; }
  .nb { max-width: 1180px; margin: 0 auto; padding: 16px 20px; }
  .cell { display: grid; grid-template-columns: 64px minmax(0, 1fr); gap: 6px; margin-bottom: 10px; }
  .prompt { color: #307fc1; font: 12px/1.6 monospace; text-align: right; padding-top: 6px; }
  .prompt.out { color: #bf5b3d; }
  .src { background: #f5f5f5; border: 1px solid #e0e0e0; border-radius: 2px; padding: 6px 8px; font: 13px/1.5 monospace; white-space: pre; }
</style></head>
<body><div class="nb">
  <div class="cell"><div class="prompt">[1]:</div><div class="src">import torch
from torch import nn
from layer_explorer import explore</div></div>
  <div class="cell"><div class="prompt">[2]:</div><div class="src" id="code"></div></div>
  <div class="cell"><div class="prompt out"></div><div id="out"></div></div>
</div>
<script type="module">
  const state = window.__widgetState;
  const listeners = new Map();
  const model = {
    get: (name) => state[name],
    set: (name, value) => { state[name] = value; },
    save_changes: () => {},
    on: (event, fn) => { if (!listeners.has(event)) listeners.set(event, new Set()); listeners.get(event).add(fn); },
    off: (event, fn) => { listeners.get(event)?.delete(fn); },
    send: async (content) => {
      const reply = await window.kernel(content);
      if (!reply) return;
      const raw = Uint8Array.from(atob(reply.data), (c) => c.charCodeAt(0));
      for (const fn of listeners.get("msg:custom") || []) fn(reply.content, [new DataView(raw.buffer)]);
    },
  };
  document.querySelector("#code").textContent = state.__code || "explore(model, x)";
  const mod = await import("/widget.js");
  window.__cleanup = await mod.default.render({ model, el: document.querySelector("#out") });
  window.__rendered = true;
</script></body></html>"""


def open_widget(page: Any, widget: Any, code: str = "explore(model, x)") -> None:
    """Serve the host page and the widget's module, wire the stub's messages to ``widget``'s kernel handler."""
    state = {name: getattr(widget, name) for name in ("_css", "_modules", "config", "title", "note", "result")}
    state["__code"] = code

    def kernel(content: dict[str, Any]) -> dict[str, Any] | None:
        sent: list[tuple[Any, list[bytes]]] = []
        widget.send = lambda msg, buffers=None: sent.append((msg, list(buffers or [])))
        widget._on_request(widget, content, [])
        if not sent:
            return None
        msg, buffers = sent[-1]
        return {"content": msg, "data": base64.b64encode(bytes(buffers[0]) if buffers else b"").decode()}

    page.expose_function("kernel", kernel)
    page.add_init_script(f"window.__widgetState = {json.dumps(state)};")
    page.route(f"{ORIGIN}/", lambda route: route.fulfill(body=HOST_HTML, content_type="text/html"))
    page.route(
        f"{ORIGIN}/widget.js",
        lambda route: route.fulfill(body=WIDGET_JS.read_text(encoding="utf-8"), content_type="text/javascript"),
    )
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("window.__rendered === true", timeout=60_000)
