"""Any torch from 2.11 up: the catalog registers what the installed torch has, and says why a type is missing.

``nn.LinearCrossEntropyLoss`` arrived in torch 2.13; on 2.11 or 2.12 the server must still start, and a
request for that type must be a 4xx naming the installed version. The tests remove the class from
``torch.nn`` before the catalog is built, as an older torch would lack it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import torch
from torch import nn

from app.core import service, tasks
from app.core.config import Settings
from app.core.errors import UnknownLayer
from app.core.registry import default_registry
from app.main import create_app
from app.server import check


def _get(app, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            return await c.get(path)

    return asyncio.run(go())


@pytest.fixture
def older_torch(monkeypatch):
    """torch.nn as torch 2.11 has it: no LinearCrossEntropyLoss (a fresh catalog, built without it)."""
    monkeypatch.delattr(nn, "LinearCrossEntropyLoss")
    monkeypatch.setattr(torch, "__version__", "2.11.0")
    default_registry.cache_clear()
    yield
    default_registry.cache_clear()


def test_the_server_starts_without_a_class_and_says_which_torch_it_needs(older_torch, monkeypatch):
    settings = Settings(workers=1)
    registry = default_registry()
    assert "LinearCrossEntropyLoss" not in registry
    assert "CrossEntropyLoss" in registry and len(registry) > 100
    # what a worker on that torch reports at start (the web process serves the catalog as that data);
    # computed here, where torch.nn lacks the class (a real worker is forked from an unpatched torch)
    facts = tasks.hello(settings)
    app = create_app(settings)

    async def reported():
        return facts

    monkeypatch.setattr(app.state.pool, "facts", reported)
    listed = _get(app, "/api/layers").json()
    assert "LinearCrossEntropyLoss" not in {layer["type"] for layer in listed["layers"]}
    why = "LinearCrossEntropyLoss needs torch ≥ 2.13; this server runs torch 2.11.0"
    assert listed["unavailable"] == {"LinearCrossEntropyLoss": why}
    r = _get(app, "/api/layers/LinearCrossEntropyLoss")
    assert r.status_code == 404
    assert r.json()["detail"].startswith(why) and r.json()["field"] == "layer.type"


@pytest.mark.parametrize("call", ["run", "shape"])
def test_a_request_for_the_missing_class_is_a_404_naming_the_version(older_torch, call):
    registry = default_registry()
    body = {"layer": {"type": "LinearCrossEntropyLoss", "in_features": 8, "num_classes": 5}, "inputs": []}
    with pytest.raises(UnknownLayer) as caught:
        getattr(service, call)(registry, body, Settings())
    assert caught.value.status == 404
    assert "needs torch ≥ 2.13; this server runs torch 2.11.0" in caught.value.detail
    # inside a network too
    nested = {"layer": {"type": "Sequential", "layers": [body["layer"]]}, "inputs": [{"shape": [4, 8]}]}
    with pytest.raises(UnknownLayer, match=r"needs torch ≥ 2\.13"):
        getattr(service, call)(registry, nested, Settings())


def test_the_startup_check_passes_without_the_class(older_torch):
    check(Settings())  # raises StartupError if the catalog cannot be built


def test_the_installed_torch_has_the_class_and_serves_it():
    registry = default_registry()
    if hasattr(nn, "LinearCrossEntropyLoss"):
        assert "LinearCrossEntropyLoss" in registry
        assert registry.absent_types() == {}
    else:  # an older torch: the catalog says so instead
        assert "LinearCrossEntropyLoss" in registry.absent_types()
