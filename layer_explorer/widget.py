"""The notebook widget: the page's own network drawing inline in Jupyter, VS Code or marimo (an anywidget).

The front end (``static/widget.js``) loads the web page's ES modules, sent as the ``_modules`` trait,
and hands the page's API module (``static/js/api.js``) a transport that posts each request to this
kernel as a widget message. :class:`LocalApi` answers it with the functions the server's worker
processes call (``app.core.service``): no server and no port.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anywidget
import traitlets

from app.api.delivery import module_graph
from app.core import service
from app.core.body import decode_json, encode_json
from app.core.errors import InternalError
from app.paths import STATIC_DIR
from layer_explorer.weighted import Explored, completed

__all__ = ["ExplorerWidget", "LocalApi", "page_modules", "widget_css"]

HERE = Path(__file__).resolve().parent

#: the page modules the widget draws with (and everything they import)
ENTRIES = (
    "js/api.js",
    "js/net/model.js",
    "js/draw/network.js",
    "js/net/graph-panel.js",
    "js/ui/net-table.js",
    # a clicked layer's output channels drawn as images, as the network view's activations panel does
    "js/util/npy.js",
    "js/geometry/kernels.js",
    "js/draw/samples.js",
)
#: the page reads d3 from a global set by a classic <script>; the widget gets it from this module instead,
#: built around the same vendored file (no global is touched in the notebook's page)
VENDOR = "js/vendor.js"


@cache
def page_modules() -> dict[str, str]:
    """The page's ES modules the widget imports, by path under static/ (``js/…``, ``vendor/…``)."""
    paths: list[str] = []
    for entry in ENTRIES:
        paths += [p for p in module_graph(STATIC_DIR, entry) if p not in paths]
    sources = {p: (STATIC_DIR / p).read_text(encoding="utf-8") for p in paths}
    if VENDOR in sources:
        sources[VENDOR] = _vendor_shim()
    return sources


def _vendor_shim() -> str:
    """``vendor.js`` for the widget: d3's UMD build run with a CommonJS ``module`` of its own."""
    d3 = sorted(STATIC_DIR.glob("vendor/d3-*.min.js"))[-1].read_text(encoding="utf-8")
    return (
        f"// {d3.splitlines()[0][:80] if d3.startswith('//') else 'd3 (vendored)'}\n"
        "const module = { exports: {} };\n"
        "(function (module, exports, define) {\n"
        f"{d3}\n"
        "}).call(globalThis, module, module.exports, undefined);\n"
        "export const d3 = module.exports;\n"
        "export const katex = globalThis.katex;\n"
    )


@cache
def widget_css() -> str:
    """The page's own styles (app.css, graphs.css, data.css), scoped to the widget's shadow root, then the widget's."""
    parts = [(STATIC_DIR / "css" / name).read_text(encoding="utf-8") for name in ("app.css", "graphs.css", "data.css")]
    # custom properties live on :root in the page; in a shadow root the host element plays that part
    page = re.sub(r":root\b", ":host", "\n".join(parts))
    return page + "\n" + (HERE / "static" / "widget.css").read_text(encoding="utf-8")


class LocalApi:
    """The REST API's answers computed in this process: ``answer(method, url, body)`` -> (status, type, bytes).

    The same ``app.core.service`` functions the server's workers call, with the same JSON encoding, so
    the page's modules read the answers as they read the server's.
    """

    def __init__(self, settings: service.Settings | None = None) -> None:
        self.settings = settings or service.Settings.from_env()
        self.registry = service.default_registry(self.settings.plugins)

    @cache  # noqa: B019 - one LocalApi per widget; the catalog is built once for it
    def _catalog(self) -> bytes:
        return json.dumps(
            {
                "families": self.registry.families(),
                "layers": [spec.to_dict() for spec in self.registry],
                "unavailable": self.registry.absent_types(),
            }
        ).encode()

    def answer(self, method: str, url: str, body: bytes | None) -> tuple[int, str, bytes]:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            return self._route(method.upper(), parts.path, query, body)
        except service.LayerExplorerError as exc:
            return exc.status, "application/json", json.dumps(exc.to_dict()).encode()
        except Exception:  # noqa: BLE001 - a bug: the traceback goes to the kernel's log, the widget gets a 500
            traceback.print_exc(file=sys.stderr)
            error = InternalError(f"{method} {parts.path} failed in the kernel (the traceback is in its log)")
            return 500, "application/json", json.dumps(error.to_dict()).encode()

    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes | None) -> tuple[int, str, bytes]:
        ok = (200, "application/json")
        if method == "GET":
            if path == "/api/layers":
                return *ok, self._catalog()
            if path.startswith("/api/layers/"):
                name = path.removeprefix("/api/layers/")
                spec = next((s for s in self.registry if s.type == name), None)
                if spec is None:
                    return (
                        404,
                        "application/json",
                        json.dumps(
                            {"error": "unknown_layer", "field": None, "detail": f"no layer type {name!r}"}
                        ).encode(),
                    )
                return *ok, json.dumps(spec.to_dict()).encode()
            plain = {
                "/api/presets": lambda: {"presets": service.presets()},
                "/api/lesson": service.lesson,
                "/api/devices": lambda: service.list_devices(self.settings),
                "/healthz": lambda: {"status": "ok"},
            }
            if path in plain:
                return *ok, json.dumps(plain[path]()).encode()
        elif method == "POST":
            if raw is None or not raw.strip():
                raise service.BadRequest("the request body is empty; send a JSON object with 'layer' and 'inputs'")
            if len(raw) > self.settings.max_body_bytes:
                raise service.TooLarge(
                    f"the request body is {len(raw)} bytes; the limit is {self.settings.max_body_bytes}"
                )
            body = decode_json(raw)
            reg, settings = self.registry, self.settings
            if path == "/api/run" and query.get("format") == "npy":
                _, data = service.npy(reg, body, settings, tensor=query.get("tensor"))
                return 200, "application/octet-stream", data
            if path == "/api/animate":
                data, media_type = service.animate(reg, body, settings, query.get("format", "gif"))
                return 200, media_type, data
            tasks = {
                "/api/run": lambda: service.run(reg, body, settings),
                "/api/shape": lambda: service.shape(reg, body, settings, detail=query.get("detail", "full")),
                "/api/explain": lambda: service.explain(reg, body, settings),
                "/api/import": lambda: service.import_model(reg, body, settings),
                "/api/receptive-field": lambda: service.receptive_field(reg, body, settings),
            }
            if path in tasks:
                return *ok, bytes(encode_json(tasks[path]()))
        detail = f"{method} {path} is not an endpoint of the Layer Explorer API"
        return 404, "application/json", json.dumps({"error": "not_found", "field": None, "detail": detail}).encode()


class ExplorerWidget(anywidget.AnyWidget):
    """A network drawn inline: its flow, dataflow graph and summary; a click shows a layer as it ran."""

    _esm = HERE / "static" / "widget.js"
    _css = traitlets.Unicode("").tag(sync=True)
    #: the page's ES modules by path (see page_modules)
    _modules = traitlets.Dict().tag(sync=True)
    #: the /api/run body drawn (without the parameters, which stay in the kernel)
    config = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    #: what the parameters are: the module's own, or a seeded initialisation (and why)
    note = traitlets.Unicode("").tag(sync=True)
    #: the /api/shape answer computed when the widget was made, so it draws at once (and in a saved notebook)
    result = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        config: dict[str, Any],
        *,
        title: str = "",
        note: str = "",
        parameters: dict[str, Any] | None = None,
        inputs: list[Any] | None = None,
        api: LocalApi | None = None,
    ) -> None:
        """``config``: the /api/run body the front end sees (inputs by shape); ``parameters`` and ``inputs``
        (the example's values): what the kernel puts into every request for that network, kept here."""
        self._api = api or LocalApi()
        self._parameters = parameters
        self._inputs = inputs
        status, _, data = self._api.answer("POST", "/api/shape", json.dumps(config).encode())
        result = json.loads(data) if status == 200 else {"error": json.loads(data)}
        super().__init__(
            config=config,
            title=title,
            note=note,
            result=result,
            _modules=page_modules(),
            _css=widget_css(),
        )
        self.on_msg(self._on_request)

    def _completed(self, raw: bytes | None) -> bytes | None:
        """A request for the network drawn (or one of its layers) gets the module's own parameters and the
        example's input values, which stay in the kernel (a notebook's widget state would hold megabytes)."""
        return completed(raw, [Explored(dict(self.config), self._parameters, self._inputs)])

    def _on_request(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        if not isinstance(content, dict) or content.get("kind") != "request":
            return
        body = content.get("body")
        raw = body.encode() if isinstance(body, str) else None
        status, media_type, data = self._api.answer(
            str(content.get("method", "GET")), str(content.get("url", "")), self._completed(raw)
        )
        self.send({"kind": "response", "id": content.get("id"), "status": status, "type": media_type}, [data])
