"""The 5xx the hostile run found (issue 22): each class of request is a clear 4xx naming its field, or an answer."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from app.api.middleware import CancelledAsJSON
from app.core.config import Settings
from app.core.errors import LayerExplorerError
from app.core.graphs.importer import parse_model
from app.core.graphs.receptive import receptive_field
from app.core.registry import default_registry
from app.core.running.requests import run

JSON = {"content-type": "application/json"}
HUGE = (2**1024, -(2**1024), 10**400, 2**63)


def _post(api, path: str, raw: str):
    return api.post(path, content=raw.encode(), headers=JSON)


@pytest.mark.parametrize("number", HUGE, ids=["2^1024", "-2^1024", "10^400", "2^63"])
@pytest.mark.parametrize(
    ("path", "template", "field"),
    [
        (
            "/api/run",
            '{"layer": {"type": "Linear", "in_features": %s, "out_features": 2}, "inputs": [{"shape": [1, 2]}]}',
            "layer.in_features",
        ),
        (
            "/api/shape",
            '{"layer": {"type": "LeakyReLU", "negative_slope": %s}, "inputs": [{"shape": [1, 2]}]}',
            "layer.negative_slope",
        ),
        ("/api/run", '{"layer": {"type": "ReLU"}, "inputs": [{"shape": [1, %s]}]}', "inputs[0].shape[1]"),
        (
            "/api/explain",
            '{"layer": {"type": "ReLU"}, "inputs": [{"data": [[1, %s]]}], "index": [0, 0]}',
            "inputs[0].data[0][1]",
        ),
        ("/api/run", '{"layer": {"type": "ReLU"}, "inputs": [{"shape": [1, 2]}], "seed": %s}', "seed"),
        (
            "/api/receptive-field",
            '{"layer": {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 1}, "inputs": [{"shape": [1, 1, 4]}], "index": [0, 0, %s]}',
            "index[2]",
        ),
    ],
)
def test_an_integer_past_int64_is_a_422_naming_its_field(api, number, path, template, field):
    r = _post(api, path, template % number)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == field
    assert body["detail"].startswith(f"{field}: ") and "2**63 - 1" in body["detail"]


def test_wide_numbers_inside_strings_are_only_text(api):
    r = api.post("/api/run", json={"layer": {"type": "ReLU", "name": "9" * 40}, "inputs": [{"shape": [1, 2]}]})
    assert r.status_code in (200, 422) and "out of range" not in r.text


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ([{"shape": [True, True]}], "inputs[0].shape[0]"),
        ([{"shape": [2, 2.0]}], "inputs[0].shape[1]"),
        ([{"shape": [2, 0]}], "inputs[0].shape[1]"),
    ],
)
def test_shape_sizes_are_whole_numbers_not_booleans(api, inputs, field):
    r = api.post("/api/run", json={"layer": {"type": "ReLU"}, "inputs": inputs})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize("device", ["", "  "])
def test_an_empty_device_is_refused(api, device):
    r = api.post("/api/run", json={"layer": {"type": "ReLU"}, "inputs": [{"shape": [2]}], "device": device})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "device"


def test_openapi_says_exactly_one_of_shape_and_data(api):
    doc = api.get("/openapi.json").json()
    schema = {**doc["components"]["schemas"]["TensorInput"], "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"shape": [2, 3]})
    assert validator.is_valid({"data": [[1, 2]]})
    assert validator.is_valid({"shape": None, "data": [1]})
    assert not validator.is_valid({"shape": None, "data": None})
    assert not validator.is_valid({})
    assert not validator.is_valid({"shape": [1], "data": [1]})
    # the server agrees with the schema on each
    for body, ok in (({"shape": None, "data": None}, False), ({}, False), ({"shape": None, "data": [1.0]}, True)):
        r = api.post("/api/run", json={"layer": {"type": "ReLU"}, "inputs": [body]})
        assert (r.status_code == 200) == ok, r.text


@pytest.mark.parametrize("path", ["/api/run", "/api/shape", "/api/explain"])
def test_an_input_too_large_for_any_memory_is_the_memory_413(api, path):
    body = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [2**63 - 1, 2**63 - 1]}], "index": [0, 0]}
    r = api.post(path, json=body if path == "/api/explain" else {k: v for k, v in body.items() if k != "index"})
    assert r.status_code == 413, r.text
    assert r.json()["field"] == "inputs" and r.json()["detail"].startswith("the inputs would take ")


@pytest.mark.parametrize("path", ["/api/run", "/api/shape"])
def test_a_parameter_too_large_for_any_memory_is_the_memory_413(api, path):
    body = {"layer": {"type": "Linear", "in_features": 2**40, "out_features": 2**40}, "inputs": [{"shape": [1, 4]}]}
    r = api.post(path, json=body)
    assert r.status_code == 413, r.text
    got = r.json()
    assert got["error"] == "too_large" and got["field"] == "layer"
    assert got["detail"].startswith("Linear's parameters would take ") and "this server's limit is" in got["detail"]
    assert got["estimate_bytes"] >= 2**80 * 4


def test_explain_answers_inf_where_the_power_overflows(api):
    body = {"layer": {"type": "LPPool1d", "norm_type": 400, "kernel_size": 2}, "inputs": [{"data": [[[10, 10]]]}]}
    ran = api.post("/api/run", json=body)
    assert ran.status_code == 200
    r = api.post("/api/explain", json={**body, "index": [0, 0, 0]})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["value"] == "inf" and got["manual"] == "inf" and got["match"] is True


REGISTRY = default_registry()
_SETTINGS = Settings()


def _output_rank(spec) -> int:
    return len(run(REGISTRY, spec.example, _SETTINGS)["outputs"][0]["shape"])


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda s: s.type)
def test_receptive_field_of_every_catalog_example_is_an_answer_or_a_4xx(spec):
    body = {**spec.example, "index": [0] * _output_rank(spec)}
    try:
        got = receptive_field(REGISTRY, body, _SETTINGS)
    except LayerExplorerError as exc:
        assert exc.status < 500, exc.detail
        return
    assert got["nodes"]


@pytest.mark.parametrize("name", ["BCELoss", "GaussianNLLLoss", "SoftMarginLoss"])
def test_losses_with_input_rules_have_a_receptive_field(name):
    spec = REGISTRY.get(name)
    got = receptive_field(REGISTRY, {**spec.example, "index": []}, _SETTINGS)
    # a mean loss reads every element of its prediction (input 0): all of them are in the structural field
    assert got["input"]["numel"] == 15
    assert got["input"]["count"] == 15


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("2**33", 2**33),
        ("2 ** 62", 2**62),
        ("8589934592", 2**33),
        ("1 << 40", 2**40),
        ("2**62 + (2**62 - 1)", 2**63 - 1),
    ],
)
def test_import_bounds_the_value_whatever_the_expression(code, value):
    assert parse_model(REGISTRY, f"nn.Linear(2, {code})").layer["out_features"] == value


@pytest.mark.parametrize("code", ["2**63", "9223372036854775808", "1 << 63", "2**62 * 2", "3**40", "2**64"])
def test_import_refuses_every_integer_past_int64_alike(code):
    with pytest.raises(LayerExplorerError) as caught:
        parse_model(REGISTRY, f"nn.Linear(2, {code})")
    assert "the integer is too large (|value| must be below 2**63)" in caught.value.detail


def test_a_request_cancelled_before_its_answer_gets_a_json_503():
    sent: list[dict] = []

    async def slow(scope, receive, send):
        await asyncio.sleep(60)

    async def send(message):
        sent.append(message)

    async def go():
        task = asyncio.ensure_future(CancelledAsJSON(slow)({"type": "http", "path": "/api/run"}, None, send))
        await asyncio.sleep(0.01)
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")  # what uvicorn does past the grace
        await task

    asyncio.run(go())
    start, body = sent
    assert start["status"] == 503
    assert (b"content-type", b"application/json") in start["headers"]
    got = json.loads(body["body"])
    assert got["error"] == "server_busy" and "shutting down" in got["detail"]


def test_a_request_cancelled_mid_answer_is_not_answered_twice():
    sent: list[dict] = []

    async def half(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(60)

    async def send(message):
        sent.append(message)

    async def go():
        task = asyncio.ensure_future(CancelledAsJSON(half)({"type": "http"}, None, send))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert [m["type"] for m in sent] == ["http.response.start"]
