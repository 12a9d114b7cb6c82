"""``explore(module, *example_inputs)``: your model in Layer Explorer, from a notebook or a script.

- In Jupyter, VS Code or marimo it is drawn inline, as a widget whose requests the kernel answers
  (:mod:`layer_explorer.widget`): no server, no port.
- In a plain script it starts the web app on a free loopback port (once per process) and opens the
  browser on the network view, with the network in the link.
- With ``server="http://host:8000"`` it opens that running instance instead.

``weights=True`` makes the layers compute with the module's own parameters (``.npy`` in base64, never
pickle) on the example's own input values. In the widget the kernel adds them to each request for the
network (above the request limit the network is drawn with a seeded random initialisation instead, and
the note says so); on the local server an ASGI layer in this process adds them
(:class:`layer_explorer.weighted.AddsWeights`). A link to another server cannot carry them: there the
layers use the seeded initialisation, and the note says what to do.
"""

from __future__ import annotations

import html
import importlib
import json
import multiprocessing
import os
import socket
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np
import uvicorn

from app.core.config import Settings
from app.main import create_app
from layer_explorer.convert import to_config
from layer_explorer.weighted import AddsWeights, Explored

__all__ = ["Explorer", "by_shape", "explore", "network_url", "weights_note"]

#: the browser is not opened when this is set (tests, headless machines): the URL is printed instead
NO_BROWSER_ENV = "LAYER_EXPLORER_NO_BROWSER"


def _mb(n: int) -> str:
    return f"{n / 1024**2:.1f} MB"


def weights_note(body: dict[str, Any], limit: int) -> tuple[dict[str, Any] | None, str]:
    """The parameters to send with ``body`` and a note for the reader: the module's own, or none and why.

    ``body`` is ``to_config(..., weights=True)``'s answer; its request, parameters included, must fit in
    ``limit`` bytes (the server's ``LAYER_EXPLORER_MAX_BODY``).
    """
    parameters = body.get("parameters")
    if not parameters:
        return None, ""
    size = len(json.dumps(body, separators=(",", ":")).encode())
    if size > limit:
        return None, (
            f"weights=True: the module's parameters (with the example's values) make a request of {_mb(size)}, above this server's limit of "
            f"{_mb(limit)} (LAYER_EXPLORER_MAX_BODY), so the layers use a seeded random initialisation instead "
            "of the trained values. Shapes, parameter counts and the drawing are the same."
        )
    n = len(parameters)
    return (
        parameters,
        f"weights=True: the layers compute with the module's own parameters ({n} tensor{'' if n == 1 else 's'}).",
    )


def oversized_tensor(module: Any, example_inputs: tuple[Any, ...], max_elements: int) -> str:
    """A note naming the module's first parameter, buffer or example input with more than ``max_elements``
    elements (the server takes no bigger tensor given as data: ``Settings.max_data_elements``), or ""."""
    named = [(name, t) for name, t in module.state_dict().items()]
    named += [(f"example input {i}", t) for i, t in enumerate(example_inputs)]
    for name, t in named:
        n = int(np.prod(np.shape(t)))
        if n > max_elements:
            return (
                f"weights=True: {name} has {n:,} elements, above the {max_elements:,} the server takes for one tensor "
                "given as data, so the layers use a seeded random initialisation instead of the trained values. "
                "Shapes, parameter counts and the drawing are the same."
            )
    return ""


def by_shape(body: dict[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """``body`` without its parameters, each input given by values (``{"data": ...}``) given by its shape
    instead; and the inputs as they were (None where none had values)."""
    config = {k: v for k, v in body.items() if k != "parameters"}
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not any(isinstance(i, dict) and "data" in i for i in inputs):
        return config, None
    config["inputs"] = [
        {**{k: v for k, v in i.items() if k != "data"}, "shape": list(np.shape(i["data"]))}
        if isinstance(i, dict) and "data" in i
        else i
        for i in inputs
    ]
    return config, inputs


#: longest query sent as such: the server refuses a request head over 16 KiB (h11), and the page's own
#: address, its headers and the browser's come with it
QUERY_LIMIT = 8 * 1024


def network_url(base: str, body: dict[str, Any]) -> str:
    """The web app's address that opens ``body`` (an /api/run request, without parameters) in the network view.

    A big network's state goes after ``#`` instead of ``?`` (the page reads either): a fragment is never
    sent to the server, so no request head limit applies to it.
    """
    query = urlencode({"config": json.dumps(body, separators=(",", ":")), "ui": json.dumps({"view": "network"})})
    return f"{base.rstrip('/')}/{'?' if len(query) <= QUERY_LIMIT else '#'}{query}"


def in_notebook() -> str | None:
    """Which notebook this runs in: "marimo", "jupyter" (Jupyter, VS Code, anything on ipykernel) or None."""
    marimo = sys.modules.get("marimo")
    if marimo is not None and getattr(marimo, "running_in_notebook", lambda: False)():
        return "marimo"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and "IPKernelApp" in getattr(shell, "config", {}):
        return "jupyter"
    return None


def _loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, handed to uvicorn as it is (no window for another to take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Explorer:
    """A network opened in the browser: its ``url``; ``wait()`` serves until Ctrl+C, ``stop()`` ends a local server."""

    url: str
    note: str = ""
    server: Any = field(default=None, repr=False)

    def _repr_html_(self) -> str:
        # in a notebook given server=...: a link, for a kernel whose machine has no browser to open
        link = (
            f'<a href="{html.escape(self.url)}" target="_blank" rel="noopener">Open the network in Layer Explorer</a>'
        )
        return link + (f"<br><small>{html.escape(self.note)}</small>" if self.note else "")

    def wait(self) -> None:
        if self.server is None:
            return
        print(f"Layer Explorer is serving the network at {self.url} (Ctrl+C stops it)", file=sys.stderr)
        try:
            while not self.server.should_exit:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        _LocalServer.stop()

    def stop(self) -> None:
        if self.server is not None:
            _LocalServer.stop()


class _LocalServer:
    """The web app as it is (``app.main.create_app``) on a free loopback port, in a thread, once per process;
    wrapped in :class:`AddsWeights`, which adds an explored network's parameters to the page's requests."""

    _lock = threading.Lock()
    _server: Any = None
    app: AddsWeights | None = None
    _thread: threading.Thread | None = None
    base = ""

    @classmethod
    def start(cls, timeout_s: float = 180.0) -> tuple[str, Any]:
        with cls._lock:
            if cls._server is not None and not cls._server.should_exit and cls._thread and cls._thread.is_alive():
                return cls.base, cls._server
            sock = _loopback_socket()
            port = sock.getsockname()[1]
            app = AddsWeights(create_app())
            config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
            server = uvicorn.Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name="layer-explorer-server", daemon=True
            )
            thread.start()
            deadline = time.monotonic() + timeout_s
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    raise RuntimeError(f"the local Layer Explorer server did not start on 127.0.0.1:{port}")
                time.sleep(0.05)
            cls._server, cls._thread, cls.base, cls.app = server, thread, f"http://127.0.0.1:{port}", app
            return cls.base, server

    @classmethod
    def explored(cls, explored: Explored) -> None:
        """Requests for ``explored``'s network get its parameters and values (or, given none, nothing)."""
        with cls._lock:
            if cls.app is not None:
                cls.app.add(explored)

    @classmethod
    def stop(cls) -> None:
        with cls._lock:
            if cls._server is not None:
                cls._server.should_exit = True
                if cls._thread is not None:
                    cls._thread.join(timeout=30)
            cls._server = cls._thread = cls.app = None
            cls.base = ""


def _open_browser(url: str) -> None:
    if os.environ.get(NO_BROWSER_ENV):
        print(f"Layer Explorer: {url}", file=sys.stderr)
        return
    if not webbrowser.open(url):
        print(f"Layer Explorer: open {url} in a browser", file=sys.stderr)


def explore(
    module: Any,
    *example_inputs: Any,
    weights: bool = False,
    server: str | None = None,
    block: bool | None = None,
) -> Any:
    """Show ``module``, run on ``example_inputs``, in Layer Explorer.

    In Jupyter or VS Code the widget is displayed inline (None is returned); in marimo it is returned,
    wrapped in ``mo.ui.anywidget``, for the cell to show. Elsewhere the network opens in the browser, on ``server`` or on a local server started here; an :class:`Explorer` is returned.
    ``block`` (default: in a plain script, not in an interactive session) keeps a local server
    serving until Ctrl+C, as the script would otherwise end and take the server with it.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # a worker of the local server importing the user's script as __mp_main__ while it starts (a
        # forkserver's child does; multiprocessing's own check reads the same flag): the call is the
        # parent's to serve, and a server started here could not start its own workers
        return Explorer(url="", note="a worker of the local Layer Explorer server: nothing is opened here")
    body = to_config(module, *example_inputs, weights=weights)
    title = type(module).__name__
    host = in_notebook() if server is None else None
    if host is not None:
        try:
            # loaded here: the widget needs anywidget, an optional dependency (the "notebook" extra)
            ExplorerWidget = importlib.import_module("layer_explorer.widget").ExplorerWidget
        except ModuleNotFoundError as exc:
            if exc.name != "anywidget":
                raise
            raise ImportError(
                "explore() draws inline in a notebook with anywidget: pip install 'layer-explorer[notebook]' "
                "(or give server='http://host:port' to open the network on a running Layer Explorer)"
            ) from None
        settings = Settings.from_env()
        parameters, note = weights_note(body, settings.max_body_bytes)
        oversized = oversized_tensor(module, example_inputs, settings.max_data_elements) if parameters else ""
        if oversized:
            parameters, note = None, oversized
        config, inputs = by_shape(body)
        if parameters is None:
            inputs = None  # above the limit: the example's values go too (random inputs of the same shapes)
        widget = ExplorerWidget(config, title=title, note=note, parameters=parameters, inputs=inputs)
        if host == "marimo":
            return importlib.import_module("marimo").ui.anywidget(widget)
        display = importlib.import_module("IPython.display").display

        # shown here, wherever the call is in the cell; returning it too would show it twice as the cell's value
        display(widget)
        return None
    # the link carries the network and its input shapes: values would make it megabytes long
    config, inputs = by_shape(body)
    note = ""
    running = None
    if server is None:
        base, running = _LocalServer.start()
        parameters = body.get("parameters")
        note = oversized_tensor(module, example_inputs, Settings.from_env().max_data_elements) if parameters else ""
        if note:
            parameters = None
        # this process serves the page: its requests for the network get the parameters and values here
        # (weights=False: none, even where an earlier call explored the same network with them)
        _LocalServer.explored(Explored(config, parameters, inputs if parameters else None))
        if parameters:
            n = len(parameters)
            note = (
                f"weights=True: the layers compute with the module's own parameters ({n} tensor{'' if n == 1 else 's'})"
                " on the example's input values, which this local server adds to the page's requests for the network "
                "(the link carries only the architecture and the input shapes)."
            )
    else:
        base = server
        if weights:
            note = (
                f"weights=True: {server} is opened from a link, which carries the network but not its parameters, so "
                "its layers use a seeded random initialisation. For the trained values call explore() without "
                "server= (a local server in this process adds them), or in a notebook (the widget); or send them "
                "yourself: layer_explorer.Client(url).run(body, path=...)."
            )
    if note:
        print(note, file=sys.stderr)
    explorer = Explorer(network_url(base, config), note=note, server=running)
    _open_browser(explorer.url)
    if running is not None and (block if block is not None else not _interactive()):
        explorer.wait()
    return explorer


def _interactive() -> bool:
    return bool(getattr(sys, "ps1", None)) or sys.flags.interactive or in_notebook() is not None
