"""Lean /api/run answers: every tensor summarised once, the first output's numbers sent once."""

from __future__ import annotations

import asyncio
import gc
import json

from app.core import service
from app.core.body import JSONBytes, encode_json

CONV = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
    "inputs": [{"shape": [2, 3, 64, 64]}],
    "seed": 1,
}
LSTM = {"layer": {"type": "LSTM", "input_size": 4, "hidden_size": 6}, "inputs": [{"shape": [5, 3, 4]}], "seed": 2}


def test_first_output_is_not_sent_twice(api):
    d = api.post("/api/run", json=CONV).json()
    first = d["outputs"][0]
    assert first == {
        "name": "output",
        "shape": [2, 8, 62, 62],
        "dtype": "float32",
        "numel": 2 * 8 * 62 * 62,
        "same_as": "output",
    }
    assert d["output"]["shape"] == [2, 8, 62, 62]
    assert d["output"]["preview"] is not None and d["output"]["summary"]
    # the preview's numbers appear once in the whole answer
    preview = json.dumps(d["output"]["preview"])
    assert json.dumps(d).count(preview) == 1


def test_later_outputs_keep_their_data(api):
    d = api.post("/api/run", json=LSTM).json()
    assert [o["name"] for o in d["outputs"]] == ["output", "h_n", "c_n"]
    assert d["outputs"][0]["same_as"] == "output" and "data" not in d["outputs"][0]
    assert d["output"]["data"] is not None
    for o in d["outputs"][1:]:
        assert "same_as" not in o and o["data"] is not None and o["summary"] is not None


def test_workers_freeze_what_warm_up_left(app):
    # gc.freeze() after warm-up: torch, the catalog and warmed kernels are out of every later collection
    frozen = app.state.pool._pool.schedule(gc.get_freeze_count).result(timeout=60)
    assert frozen > 10_000, frozen


def test_answers_are_encoded_once_in_the_worker(app, api, registry, settings):
    """The worker sends /api/run's JSON as bytes; the web process sends those bytes as they are."""
    body = {"layer": {"type": "Linear", "in_features": 4, "out_features": 3}, "inputs": [{"shape": [2, 4]}], "seed": 5}
    answer = asyncio.run(app.state.pool.call("run", json.dumps(body).encode()))
    assert isinstance(answer, JSONBytes)  # encoded in the worker, not a tree of lists to pickle and re-encode
    expected = encode_json(service.run(registry, body, settings))
    assert bytes(answer) == bytes(expected)
    r = api.post("/api/run", json=body, headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == bytes(expected)  # byte for byte what the worker encoded
