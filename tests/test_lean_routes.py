"""The torch routes served by lean handlers (app.api.deps.LeanRoute): no FastAPI dependency resolution per
request, the same answers as FastAPI's own handling of the same signatures, and the same documentation."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import fastapi.routing
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from app.api import errors, run
from app.api.deps import LeanRoute
from app.api.middleware import GZip

LINEAR = {"layer": {"type": "Linear", "in_features": 3, "out_features": 2}, "inputs": [{"shape": [2, 3]}], "seed": 1}
#: (path, query parameter, its choices) of every lean route with a query parameter
CHOICES = [("/api/run", "format", ("json", "npy")), ("/api/shape", "detail", ("full", "shapes"))]


def plain_twin(app: FastAPI) -> FastAPI:
    """The same endpoints as FastAPI routes of their own (dependencies resolved by FastAPI), on the same state."""
    twin = FastAPI()
    twin.state = app.state
    errors.install(twin)
    for route in run.router.routes:
        assert isinstance(route, LeanRoute)
        twin.add_api_route(route.path, route.endpoint, methods=list(route.methods))
    return twin


def post(app: Any, url: str, **kw: Any) -> httpx.Response:
    """One request through ``app``; an exception in the app is its JSON 500, as a server would send it."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return await c.post(url, **kw)

    return asyncio.run(go())


def test_lean_routes_skip_dependency_resolution(app, api, monkeypatch):
    """With FastAPI's dependency resolution broken, the lean routes still answer (a FastAPI route does not)."""

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("dependency resolution was used")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", broken)
    r = api.post("/api/run", json=LINEAR)
    assert r.status_code == 200, r.text
    assert len(r.json()["output"]["data"]) == 2
    assert api.post("/api/shape?detail=shapes", json=LINEAR).status_code == 200
    assert api.post("/api/explain", json={**LINEAR, "index": [0, 1]}).status_code == 200
    r = api.post("/api/run?format=npy", json=LINEAR)
    assert r.status_code == 200 and np.load(io.BytesIO(r.content)).shape == (2, 2)
    # the control: a route FastAPI serves itself fails under the same patch
    rf = {**LINEAR, "output": "output", "index": [0, 0]}
    refused = post(app, "/api/receptive-field", json=rf)
    assert refused.status_code == 500 and refused.json()["error"] == "internal_error"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from(CHOICES),
    values=st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=3),
)
def test_bad_query_answered_as_fastapi_does(app, which, values):
    """A query value outside the choices (the last one counts when repeated): the same 422, word for word."""
    path, name, choices = which
    values[-1] = values[-1] if values[-1] not in choices else values[-1] + "x"
    params = [(name, v) for v in values]
    lean = post(app, path, json=LINEAR, params=params)
    twin = post(plain_twin(app), path, json=LINEAR, params=params)
    assert lean.status_code == twin.status_code == 422
    assert lean.json() == twin.json()
    assert lean.json()["field"] == name


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 415),
        ({"content": b"  ", "headers": {"content-type": "application/json"}}, 400),
    ],
)
@pytest.mark.parametrize("path", ["/api/run?format=xml", "/api/shape?detail=x", "/api/explain"])
def test_body_refused_before_the_query(app, path, kw, status):
    """The body is read and checked before the query, as the dependency was: the same refusal as FastAPI's."""
    lean = post(app, path, **kw)
    twin = post(plain_twin(app), path, **kw)
    assert lean.status_code == twin.status_code == status
    assert lean.json() == twin.json()


def test_repeated_query_last_value_wins(app):
    lean = post(app, "/api/run?format=xml&format=npy", json=LINEAR)
    twin = post(plain_twin(app), "/api/run?format=xml&format=npy", json=LINEAR)
    assert lean.status_code == twin.status_code == 200
    assert lean.headers["content-type"] == twin.headers["content-type"] == "application/octet-stream"
    assert lean.content == twin.content


@pytest.mark.parametrize(
    "url", ["/api/run", "/api/run?format=npy&tensor=output", "/api/shape", "/api/shape?detail=shapes", "/api/explain"]
)
def test_same_answer_as_fastapi_handling(app, url):
    """The lean handler and FastAPI's handling of the same endpoint give the same bytes (the run is seeded)."""
    req = {**LINEAR, "index": [1, 0]} if url == "/api/explain" else LINEAR
    lean = post(app, url, json=req)
    twin = post(plain_twin(app), url, json=req)
    assert lean.status_code == twin.status_code == 200, lean.text
    assert lean.headers.get("content-type") == twin.headers.get("content-type")
    assert lean.content == twin.content


def test_lean_routes_documented(api):
    paths = api.get("/openapi.json").json()["paths"]
    run_params = {p["name"]: p for p in paths["/api/run"]["post"]["parameters"]}
    assert run_params["format"]["schema"]["enum"] == ["json", "npy"]
    assert "tensor" in run_params
    shape_params = {p["name"]: p for p in paths["/api/shape"]["post"]["parameters"]}
    assert shape_params["detail"]["schema"]["enum"] == ["full", "shapes"]
    assert "/api/explain" in paths


@pytest.mark.parametrize(
    ("media", "compressed"),
    [("application/json", True), ("image/png", False), ("application/octet-stream", False), ("font/woff2", False)],
)
@pytest.mark.parametrize("accept", ["gzip", "identity"])
def test_gzip_layer_keeps_its_exclusions(media, compressed, accept):
    """The exclusions normalised once by app.api.middleware.GZip still hold for every responder."""

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", media.encode())]})
        await send({"type": "http.response.body", "body": b"0" * 4096})

    layer = GZip(
        answer, minimum_size=500, exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream")
    )
    r = post(layer, "/", headers={"accept-encoding": accept})  # type: ignore[arg-type]
    assert r.status_code == 200 and r.content == b"0" * 4096
    assert r.headers.get("content-encoding") == ("gzip" if compressed and accept == "gzip" else None)
