"""Helpers shared by the hardening tests: an async httpx client on an ASGI app, run off the main thread."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

PLUGIN = str(Path(__file__).parent / "plugins" / "hardening_layers.py")
LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}


def spin(seconds: float, shape: list[int] | None = None) -> dict[str, Any]:
    return {"layer": {"type": "Spin", "seconds": seconds}, "inputs": [{"shape": shape or [2, 4]}]}


def run_async(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine in a fresh event loop on its own thread (Playwright may own the main thread's loop)."""
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: asyncio.run(make())).result(timeout=300)


def client(app: Any, **kw: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=120, **kw)
