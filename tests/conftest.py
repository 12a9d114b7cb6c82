"""Shared fixtures: the ASGI app, an httpx client bound to it, and the default catalog."""

from __future__ import annotations

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
    """httpx through the ASGI app (no server, no network), driven synchronously: api.post(path, json=...)."""
    import asyncio

    class Sync:
        def __init__(self) -> None:
            self.loop = asyncio.new_event_loop()

        def request(self, method: str, path: str, **kw):
            async def go():
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                    return await c.request(method, path, **kw)

            return self.loop.run_until_complete(go())

        def get(self, path: str, **kw):
            return self.request("GET", path, **kw)

        def post(self, path: str, json=None, **kw):
            return self.request("POST", path, json=json, **kw)

    s = Sync()
    yield s
    s.loop.close()
