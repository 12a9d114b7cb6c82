"""Shared fixtures: the ASGI app, an httpx client bound to it, and the default catalog."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from app.core.config import Settings
from app.core.registry import default_registry
from app.main import create_app


@pytest.fixture(scope="session")
def settings() -> Settings:
    # two worker processes are enough for the suite (and for the concurrency tests) on a small machine
    return Settings(memory_limit_bytes=512 * 1024**2, workers=2, timeout_s=120)


@pytest.fixture(scope="session")
def registry():
    return default_registry()


@pytest.fixture(scope="session")
def app(settings):
    """The app with its worker pool started once for the session (ASGITransport runs no lifespan)."""
    application = create_app(settings)
    application.state.pool.start(wait=120)
    yield application
    application.state.pool.close()


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
                async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
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


@pytest.fixture(scope="session")
def live_url(app):
    """The session's app served by uvicorn on a free loopback port (for clients that need a real socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-live", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
