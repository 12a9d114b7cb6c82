"""Typed clients for the Layer Explorer REST API (docs/API.md), on httpx: :class:`Client` and :class:`AsyncClient`.

Every endpoint has a method. JSON answers come back as dicts, ``format="npy"`` answers as numpy arrays
(read with ``allow_pickle=False``), animations as bytes. A refused request raises :class:`ApiError`
with the server's ``error`` code, ``field`` and ``detail``. A 503 (the server is busy) is retried after
its ``Retry-After``, a bounded number of times.

    >>> from layer_explorer.client import Client
    >>> with Client("http://127.0.0.1:8000") as api:
    ...     out = api.run({"layer": {"type": "Linear", "in_features": 4, "out_features": 2}, "inputs": [{"shape": [1, 4]}]})
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any, Literal
from urllib.parse import quote

import httpx
import numpy as np

__all__ = ["DEFAULT_TIMEOUT", "ApiError", "AsyncClient", "Client"]

#: seconds: connecting, and waiting for an answer (a big network's first run takes a while)
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
#: how many times a 503 is retried, and the longest Retry-After honoured (seconds)
DEFAULT_RETRIES = 3
MAX_RETRY_WAIT_S = 30.0

Body = dict[str, Any]
AnimationFormat = Literal["gif", "webm", "mp4"]


class ApiError(Exception):
    """The server refused a request: its HTTP ``status`` and JSON body's ``error``, ``field`` and ``detail``."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.error: str | None = self.body.get("error")
        self.field: str | None = self.body.get("field")
        detail = self.body.get("detail")
        if isinstance(detail, list):  # FastAPI's own validation answer: a list of {"loc", "msg"}
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        self.detail: str = str(detail) if detail else f"the server answered HTTP {status}"
        where = f" ({self.field})" if self.field else ""
        super().__init__(f"{self.error or status}{where}: {self.detail}")


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:  # a proxy's HTML page: the status is all there is
        body = None
    raise ApiError(response.status_code, body)


def _retry_wait(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "1")
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_WAIT_S)
    except ValueError:  # an HTTP date: not sent by this server; wait a second
        return 1.0


def _npy(response: httpx.Response) -> np.ndarray:
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def _with_path(body: Body, path: str | None) -> Body:
    return {**body, "path": path} if path is not None else body


def _field_body(body: Body, index: list[int], path: str | None, node: str | None, effective: bool) -> Body:
    full = {**_with_path(body, path), "index": list(index), "effective": effective}
    if node is not None:
        full["node"] = node
    return full


def _run_params(format: str, tensor: str | None) -> dict[str, str]:
    params = {"format": format}
    if tensor is not None:
        params["tensor"] = tensor
    return params


class Client:
    """Synchronous client: ``Client("http://host:8000")``, or over any httpx transport (``transport=``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport, headers=headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            response = self._http.request(method, url, **kw)
            if response.status_code != 503 or attempt == self.retries:
                break
            time.sleep(_retry_wait(response))
        _raise_for(response)
        return response

    def _get(self, url: str) -> Any:
        return self._request("GET", url).json()

    def _post(self, url: str, body: Body, params: dict[str, str] | None = None) -> httpx.Response:
        return self._request("POST", url, json=body, params=params)

    # --- health and catalog ---
    def healthz(self) -> dict[str, Any]:
        """``GET /healthz``: the process answers."""
        return self._get("/healthz")

    def readyz(self) -> dict[str, Any]:
        """``GET /readyz``: the workers can serve (a 503 while they start raises after the retries)."""
        return self._get("/readyz")

    def openapi(self) -> dict[str, Any]:
        """``GET /openapi.json``: the API's schema."""
        return self._get("/openapi.json")

    def devices(self) -> dict[str, Any]:
        """``GET /api/devices``: the devices and dtypes this server can run on."""
        return self._get("/api/devices")

    def layers(self) -> dict[str, Any]:
        """``GET /api/layers``: the catalog (families, layer specs, types the installed torch lacks)."""
        return self._get("/api/layers")

    def layer(self, type_name: str) -> dict[str, Any]:
        """``GET /api/layers/{type}``: one layer's spec."""
        return self._get(f"/api/layers/{quote(type_name, safe='')}")

    def presets(self) -> dict[str, Any]:
        """``GET /api/presets``: the network presets."""
        return self._get("/api/presets")

    def lesson(self) -> dict[str, Any]:
        """``GET /api/lesson``: the tutorial's steps."""
        return self._get("/api/lesson")

    # --- the torch work ---
    def run(self, body: Body, *, path: str | None = None) -> dict[str, Any]:
        """``POST /api/run``: build, run a real forward pass; ``path`` reports that child as it ran in the network."""
        return self._post("/api/run", _with_path(body, path)).json()

    def run_npy(self, body: Body, *, tensor: str | None = None, path: str | None = None) -> np.ndarray:
        """``POST /api/run?format=npy``: an output tensor (``tensor``: which output) whole, as a numpy array."""
        return _npy(self._post("/api/run", _with_path(body, path), _run_params("npy", tensor)))

    def shape(self, body: Body, *, detail: Literal["full", "shapes"] = "full") -> dict[str, Any]:
        """``POST /api/shape``: shapes, parameter shapes and formulas without allocating (meta device)."""
        return self._post("/api/shape", body, {"detail": detail}).json()

    def explain(
        self, body: Body, index: list[int], *, output: str | None = None, path: str | None = None
    ) -> dict[str, Any]:
        """``POST /api/explain``: output element ``index`` recomputed by hand."""
        full = {**_with_path(body, path), "index": list(index)}
        if output is not None:
            full["output"] = output
        return self._post("/api/explain", full).json()

    def import_code(self, code: str) -> dict[str, Any]:
        """``POST /api/import``: PyTorch code (parsed, never run) turned into a network config."""
        return self._post("/api/import", {"code": code}).json()

    def receptive_field(
        self,
        body: Body,
        index: list[int],
        *,
        path: str | None = None,
        node: str | None = None,
        effective: bool = True,
    ) -> dict[str, Any]:
        """``POST /api/receptive-field``: which input elements output element ``index`` depends on.

        ``path`` (a module) or ``node`` (a graph node id) chooses whose output; ``effective=False``
        answers the structural field alone, without running the network.
        """
        return self._post("/api/receptive-field", _field_body(body, index, path, node, effective)).json()

    def animate(self, body: Body, *, format: AnimationFormat = "gif") -> bytes:
        """``POST /api/animate``: the sliding window as a GIF, WebM or MP4 file's bytes."""
        return self._post("/api/animate", body, {"format": format}).content


class AsyncClient:
    """The same methods as :class:`Client`, awaited: ``async with AsyncClient(url) as api: await api.run(body)``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport, headers=headers)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            response = await self._http.request(method, url, **kw)
            if response.status_code != 503 or attempt == self.retries:
                break
            await asyncio.sleep(_retry_wait(response))
        _raise_for(response)
        return response

    async def _get(self, url: str) -> Any:
        return (await self._request("GET", url)).json()

    async def _post(self, url: str, body: Body, params: dict[str, str] | None = None) -> httpx.Response:
        return await self._request("POST", url, json=body, params=params)

    async def healthz(self) -> dict[str, Any]:
        return await self._get("/healthz")

    async def readyz(self) -> dict[str, Any]:
        return await self._get("/readyz")

    async def openapi(self) -> dict[str, Any]:
        return await self._get("/openapi.json")

    async def devices(self) -> dict[str, Any]:
        return await self._get("/api/devices")

    async def layers(self) -> dict[str, Any]:
        return await self._get("/api/layers")

    async def layer(self, type_name: str) -> dict[str, Any]:
        return await self._get(f"/api/layers/{quote(type_name, safe='')}")

    async def presets(self) -> dict[str, Any]:
        return await self._get("/api/presets")

    async def lesson(self) -> dict[str, Any]:
        return await self._get("/api/lesson")

    async def run(self, body: Body, *, path: str | None = None) -> dict[str, Any]:
        return (await self._post("/api/run", _with_path(body, path))).json()

    async def run_npy(self, body: Body, *, tensor: str | None = None, path: str | None = None) -> np.ndarray:
        return _npy(await self._post("/api/run", _with_path(body, path), _run_params("npy", tensor)))

    async def shape(self, body: Body, *, detail: Literal["full", "shapes"] = "full") -> dict[str, Any]:
        return (await self._post("/api/shape", body, {"detail": detail})).json()

    async def explain(
        self, body: Body, index: list[int], *, output: str | None = None, path: str | None = None
    ) -> dict[str, Any]:
        full = {**_with_path(body, path), "index": list(index)}
        if output is not None:
            full["output"] = output
        return (await self._post("/api/explain", full)).json()

    async def import_code(self, code: str) -> dict[str, Any]:
        return (await self._post("/api/import", {"code": code})).json()

    async def receptive_field(
        self,
        body: Body,
        index: list[int],
        *,
        path: str | None = None,
        node: str | None = None,
        effective: bool = True,
    ) -> dict[str, Any]:
        return (await self._post("/api/receptive-field", _field_body(body, index, path, node, effective))).json()

    async def animate(self, body: Body, *, format: AnimationFormat = "gif") -> bytes:
        return (await self._post("/api/animate", body, {"format": format})).content
