"""Shared fixtures: the ASGI app, an httpx client bound to it, and the default catalog."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from app.core.config import Settings
from app.core.registry import default_registry
from app.main import create_app


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(memory_limit_bytes=512 * 1024**2)


@pytest.fixture(scope="session")
def registry():
    return default_registry()


@pytest.fixture(scope="session")
def app(settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def api(app):
    """httpx through the ASGI app (no server, no network), driven synchronously: api.post(path, json=...).

    The event loop runs in its own thread: Playwright's sync API keeps a loop running in the main
    thread while browser tests are collected in the same session.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="asgi-test-loop", daemon=True)
    thread.start()

    class Sync:
        def request(self, method: str, path: str, **kw):
            async def go():
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                    return await c.request(method, path, **kw)

            return asyncio.run_coroutine_threadsafe(go(), loop).result(timeout=120)

        def get(self, path: str, **kw):
            return self.request("GET", path, **kw)

        def post(self, path: str, json=None, **kw):
            return self.request("POST", path, json=json, **kw)

    yield Sync()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
