"""layer_explorer.Client / AsyncClient against a live server: every endpoint, errors, npy, bytes, retries."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pytest

from layer_explorer.client import ApiError, AsyncClient, Client

CONV = {
    "layer": {
        "type": "Sequential",
        "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3}, {"type": "ReLU"}],
    },
    "inputs": [{"shape": [1, 1, 5, 5]}],
    "seed": 3,
}
CONV_LAYER = {
    "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 2},
    "inputs": [{"shape": [1, 1, 3, 3]}],
}

#: (method, path) -> the client method that calls it; a new endpoint without one fails test_every_endpoint_has_a_method
ENDPOINTS = {
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/api/devices"): "devices",
    ("get", "/api/layers"): "layers",
    ("get", "/api/layers/{type_name}"): "layer",
    ("get", "/api/presets"): "presets",
    ("get", "/api/lesson"): "lesson",
    ("post", "/api/run"): "run",
    ("post", "/api/shape"): "shape",
    ("post", "/api/explain"): "explain",
    ("post", "/api/import"): "import_code",
    ("post", "/api/receptive-field"): "receptive_field",
    ("post", "/api/animate"): "animate",
}


@pytest.fixture(scope="module")
def client(live_url):
    with Client(live_url) as c:
        yield c


def test_every_endpoint_has_a_method(client):
    paths = {(m, p) for p, ops in client.openapi()["paths"].items() for m in ops}
    assert paths == set(ENDPOINTS)
    for name in ENDPOINTS.values():
        assert callable(getattr(Client, name)) and asyncio.iscoroutinefunction(getattr(AsyncClient, name))


def test_catalog_endpoints(client):
    assert client.healthz() == {"status": "ok"}
    assert client.readyz()["status"] == "ready"
    assert "cpu" in str(client.devices())
    layers = client.layers()
    assert any(spec["type"] == "Conv2d" for spec in layers["layers"])
    assert client.layer("Conv2d")["type"] == "Conv2d"
    assert client.presets()["presets"]
    assert client.lesson()["steps"]


def test_torch_endpoints(client):
    run = client.run(CONV)
    assert run["output"]["shape"] == [1, 2, 3, 3]
    child = client.run(CONV, path="0")
    assert child["output"]["shape"] == [1, 2, 3, 3]
    # the npy answer is the same tensor as the JSON one, whole and as an array
    arr = client.run_npy(CONV)
    assert isinstance(arr, np.ndarray) and arr.shape == (1, 2, 3, 3)
    np.testing.assert_allclose(arr, np.asarray(run["output"]["data"], dtype=np.float32), rtol=1e-6)
    assert client.run_npy(CONV, path="0").shape == (1, 2, 3, 3)
    assert client.shape(CONV)["output_shape"] == [1, 2, 3, 3]
    assert client.shape(CONV, detail="shapes")["output_shape"] == [1, 2, 3, 3]
    explained = client.explain(CONV_LAYER, [0, 0, 1, 1])
    assert explained["value"] == pytest.approx(client.run(CONV_LAYER)["output"]["data"][0][0][1][1], rel=1e-5)
    assert client.explain(CONV, [0, 1, 0, 0], path="0")["index"] == [0, 1, 0, 0]
    imported = client.import_code("nn.Sequential(nn.Linear(10, 5), nn.ReLU())")
    assert imported["layer"]["type"] == "Sequential"
    field = client.receptive_field(CONV, [0, 0, 1, 1], effective=False)
    assert field["nodes"]
    gif = client.animate(CONV_LAYER)
    assert isinstance(gif, bytes) and gif[:6] == b"GIF89a"


def test_errors_carry_the_servers_words(client):
    bad = {"layer": {"type": "Linear", "in_features": 4, "out_features": 2}, "inputs": [{"shape": [1, 5]}]}
    with pytest.raises(ApiError) as info:
        client.run(bad)
    assert info.value.status == 422
    assert info.value.error == "shape_mismatch"
    assert info.value.detail and "4" in info.value.detail
    with pytest.raises(ApiError) as info:
        client.layer("NoSuchLayer")
    assert info.value.status == 404 and info.value.error == "unknown_layer"
    with pytest.raises(ApiError) as info:
        client.run({"layer": {"type": "Linear", "in_features": -1, "out_features": 2}, "inputs": [{"shape": [1, 5]}]})
    assert info.value.field == "layer.in_features"


def test_async_client_round_trips(live_url):
    async def go():
        async with AsyncClient(live_url) as api:
            layers, run, arr = await asyncio.gather(api.layers(), api.run(CONV), api.run_npy(CONV))
            shape = await api.shape(CONV)
            explained = await api.explain(CONV_LAYER, [0, 0, 0, 0])
            gif = await api.animate(CONV_LAYER)
            with pytest.raises(ApiError) as info:
                await api.layer("NoSuchLayer")
            return layers, run, arr, shape, explained, gif, info.value

    layers, run, arr, shape, explained, gif, error = asyncio.run(go())
    assert layers["layers"] and shape["output_shape"] == [1, 2, 3, 3]
    np.testing.assert_allclose(arr, np.asarray(run["output"]["data"], dtype=np.float32), rtol=1e-6)
    assert "value" in explained and gif[:6] == b"GIF89a"
    assert error.error == "unknown_layer"


def _busy_then_ok(times: int):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) <= times:
            return httpx.Response(
                503, headers={"retry-after": "0"}, json={"error": "server_busy", "field": None, "detail": "busy"}
            )
        buf = io.BytesIO()
        np.save(buf, np.arange(3, dtype=np.float32))
        return httpx.Response(200, content=buf.getvalue())

    return handler, calls


def test_503_is_retried_after_retry_after_and_bounded():
    handler, calls = _busy_then_ok(2)
    with Client("http://x", transport=httpx.MockTransport(handler), retries=3) as c:
        np.testing.assert_array_equal(c.run_npy(CONV), np.arange(3, dtype=np.float32))
    assert len(calls) == 3
    handler, calls = _busy_then_ok(10)
    with Client("http://x", transport=httpx.MockTransport(handler), retries=2) as c, pytest.raises(ApiError) as info:
        c.run_npy(CONV)
    assert len(calls) == 3 and info.value.status == 503 and info.value.error == "server_busy"


def test_async_503_retry_and_timeout():
    handler, calls = _busy_then_ok(1)

    async def go():
        async with AsyncClient("http://x", transport=httpx.MockTransport(handler), timeout=5.0) as api:
            return await api.run_npy(CONV), api._http.timeout

    arr, timeout = asyncio.run(go())
    assert arr.shape == (3,) and len(calls) == 2 and timeout.read == 5.0

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer in time", request=request)

    with Client("http://x", transport=httpx.MockTransport(slow)) as c, pytest.raises(httpx.TimeoutException):
        c.healthz()


def test_npy_answers_refuse_pickles():
    def pickled(request: httpx.Request) -> httpx.Response:
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return httpx.Response(200, content=buf.getvalue())

    with Client("http://x", transport=httpx.MockTransport(pickled)) as c, pytest.raises(ValueError, match="pickle"):
        c.run_npy(CONV)
