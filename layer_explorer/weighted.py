"""The explored network's trained parameters and example values, added to the page's requests for it.

The page holds the network as its link carries it: the architecture and the inputs by shape. Its
requests for that network (or a layer inside it, ``"path"``) get the module's own ``parameters`` and
the example's input values here, in the user's process, from one function (:func:`completed`) used by:

- the notebook widget (:class:`layer_explorer.widget.ExplorerWidget`), whose requests the kernel answers;
- the local server ``explore()`` starts in a plain script (:class:`AddsWeights`, an ASGI layer around
  the app as it is).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.core.errors import LayerExplorerError, RequestTimeout, TooLarge

__all__ = ["AddsWeights", "Explored", "completed"]

#: requests the page has in flight at once for one network (the view, the drill-down, explain, activations):
#: the app's cap on the bodies it holds at once grows by this many copies of what is added
PAGE_REQUESTS = 8


@dataclass(frozen=True)
class Explored:
    """A network shown from Python: ``config`` as the page holds it (no parameters, inputs by shape), the
    module's ``parameters`` and the example's ``inputs`` (values), or None for each that is not added."""

    config: dict[str, Any]
    parameters: dict[str, Any] | None = None
    inputs: list[Any] | None = None

    def added_bytes(self) -> int:
        """About how many bytes :func:`completed` adds to one request for this network."""
        return sum(len(json.dumps(part, separators=(",", ":"))) for part in (self.parameters, self.inputs) if part)


def completed(raw: bytes | None, explored: Iterable[Explored]) -> bytes | None:
    """``raw`` (a JSON request body) with the parameters and input values of the network it asks about.

    A request is for an explored network when its ``layer`` is that network's (a drill-down names a
    layer inside it with ``path``, the same ``layer``). Parameters the request gives itself are kept;
    the example's values replace its inputs only where they are the network's inputs by shape. Any
    other body, or one that is not JSON, is returned as it is (the API answers it as it would).
    """
    explored = [e for e in explored if e.parameters is not None or e.inputs is not None]
    if not raw or not explored:
        return raw
    try:
        body = json.loads(raw)
    except ValueError:
        return raw  # answered as the server would answer it: a 400 from decode_json
    if not isinstance(body, dict):
        return raw
    match = next((e for e in explored if body.get("layer") == e.config.get("layer")), None)
    if match is None:
        return raw
    if match.parameters is not None and "parameters" not in body:
        body["parameters"] = match.parameters
    if match.inputs is not None and body.get("inputs") == match.config.get("inputs"):
        body["inputs"] = match.inputs
    return json.dumps(body).encode()


async def _answer(send: Any, error: LayerExplorerError) -> None:
    data = json.dumps(error.to_dict()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class AddsWeights:
    """ASGI layer around the app ``explore()`` serves on loopback: JSON POSTs to the API for an explored
    network reach the app with its parameters and example values (see :func:`completed`).

    What the client sends is held to the app's own limits (``LAYER_EXPLORER_MAX_BODY``, the body timeout);
    what is added here comes from this process, so the app's limit on one body, and on all bodies held at
    once, grows by it. Every other check of the app (Host, content type, memory, shapes) applies unchanged.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.base = app.state.settings
        self.base_total = app.state.bodies.limit
        self.explored: list[Explored] = []

    def add(self, explored: Explored) -> None:
        """Add ``explored``'s values to requests for its network from now on, replacing what an earlier call
        added for the same network (``explored`` without parameters or inputs: nothing is added)."""
        # the same network: the same layer (the one thing completed() matches on)
        layer = explored.config.get("layer")
        self.explored = [explored, *(e for e in self.explored if e.config.get("layer") != layer)]
        extra = max(e.added_bytes() for e in self.explored)  # 0 where none adds anything
        # json.dumps of the body with "path" and the like: a little over the parts; a margin of 1 KiB each
        self.app.state.settings = dataclasses.replace(self.base, max_body_bytes=self.base.max_body_bytes + extra + 1024)
        self.app.state.bodies.limit = self.base_total + PAGE_REQUESTS * (extra + 1024)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not scope.get("path", "").startswith("/api/")
            or not self.explored
            or _content_type(scope) != "application/json"  # anything else: the app refuses it (415)
        ):
            await self.app(scope, receive, send)
            return
        limit = self.base.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.base.body_timeout_s):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # nobody to answer
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        await _answer(send, TooLarge(f"the request body is larger than the limit of {limit} bytes"))
                        return
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await _answer(
                send, RequestTimeout(f"the request body did not arrive within {self.base.body_timeout_s:g} s")
            )
            return
        body = completed(b"".join(chunks), self.explored) or b""
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the disconnect the app waits for

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)


def _content_type(scope: Any) -> str:
    value = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-type"), b"")
    return value.decode("latin-1").split(";", 1)[0].strip().lower()
