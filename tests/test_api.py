"""The REST API through the ASGI app: contract fields and every error class."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

LINEAR = {"type": "Linear", "in_features": 10, "out_features": 5}


def body(layer=None, inputs=None, **kw):
    return {"layer": layer or LINEAR, "inputs": inputs or [{"shape": [5, 10]}], **kw}


def test_healthz(api):
    assert api.get("/healthz").json() == {"status": "ok"}


def test_devices_lists_cpu(api):
    d = api.get("/api/devices").json()
    assert d["default"] == "cpu"
    assert d["devices"][0] == {"id": "cpu", "kind": "cpu", "name": "CPU"}


def test_layers_catalog_shape(api):
    d = api.get("/api/layers").json()
    assert len(d["layers"]) >= 90
    conv = next(layer for layer in d["layers"] if layer["type"] == "Conv2d")
    assert conv["family"] == "conv" and conv["windows"] and conv["explainable"]
    params = {p["name"]: p for p in conv["params"]}
    assert params["kernel_size"]["required"] and params["kernel_size"]["length"] == 2
    assert params["padding_mode"]["choices"] == ["zeros", "reflect", "replicate", "circular"]
    assert params["bias"]["default"] is True
    assert conv["inputs"][0]["convention"] == "(N, C_in, H_in, W_in)"
    assert "linear" in d["families"] and "loss" in d["families"]


def test_issue_example_conv1d(api):
    r = api.post(
        "/api/run",
        json={
            "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
            "inputs": [{"shape": [6, 3, 8]}],
            "seed": 42,
        },
    )
    assert r.status_code == 200
    d = r.json()
    assert d["output"]["shape"] == d["predicted_shape"] == [6, 5, 5]
    assert np.array(d["output"]["data"]).shape == (6, 5, 5)
    assert [(p["name"], p["shape"], p["numel"]) for p in d["params"]] == [("weight", [5, 3, 4], 60), ("bias", [5], 5)]
    assert d["repr"] == "Conv1d(3, 5, kernel_size=(4,), stride=(1,))"
    assert d["device"] == "cpu" and d["shape_check"] is True
    w = d["windows"]
    assert w["kind"] == "conv" and w["output_spatial"] == [5] and w["window_step"] == [1]
    # compact: per-dimension frame→input maps, not one entry per window position
    assert w["frame_map"] == [list(range(8))] and "at" not in w and "src" not in w


def test_response_is_reproducible_by_its_code(api):
    import torch

    d = api.post("/api/run", json=body(seed=7)).json()
    namespace: dict = {}
    code = d["code"].replace("print(output)", "")
    exec(compile(code, "<snippet>", "exec"), namespace)  # the server's own generated script
    assert torch.allclose(namespace["output"], torch.tensor(d["output"]["data"]))


def test_large_output_is_summarised_and_npy_has_it_all(api):
    req = body({"type": "Linear", "in_features": 10, "out_features": 100}, [{"shape": [100, 10]}])
    d = api.post("/api/run", json=req).json()
    out = d["output"]
    assert out["data"] is None and out["numel"] == 10000
    assert set(out["summary"]) == {"min", "max", "mean", "std", "nonfinite"}
    assert np.array(out["preview"]).shape == (25, 25) and out["preview_step"] == [4, 4]
    r = api.post("/api/run?format=npy", json=req)
    arr = np.load(io.BytesIO(r.content))
    assert arr.shape == (100, 100)
    assert abs(float(arr.min()) - out["summary"]["min"]) < 1e-6


def test_npy_named_output(api):
    req = body({"type": "LSTM", "input_size": 4, "hidden_size": 3}, [{"shape": [2, 1, 4]}])
    r = api.post("/api/run?format=npy&tensor=c_n", json=req)
    assert r.status_code == 200 and np.load(io.BytesIO(r.content)).shape == (1, 1, 3)
    r = api.post("/api/run?format=npy&tensor=nope", json=req)
    assert r.status_code == 422 and "h_n" in r.json()["detail"]


def test_tuple_outputs_are_named(api):
    d = api.post(
        "/api/run", json=body({"type": "LSTM", "input_size": 4, "hidden_size": 3}, [{"shape": [2, 1, 4]}])
    ).json()
    assert [o["name"] for o in d["outputs"]] == ["output", "h_n", "c_n"]
    assert d["predicted_shapes"] == [o["shape"] for o in d["outputs"]]


def test_non_finite_values_are_strings(api):
    d = api.post(
        "/api/run",
        json=body({"type": "Linear", "in_features": 2, "out_features": 1}, [{"data": [[1e38, 1e38], ["inf", "nan"]]}]),
    ).json()
    text = json.dumps(d)  # valid JSON: json.dumps would write Infinity/NaN for float values
    assert "Infinity" not in text and "NaN" not in text
    flat = [v for row in d["output"]["data"] for v in row]
    assert "nan" in flat or "inf" in flat or "-inf" in flat
    assert d["output"]["summary"]["nonfinite"] >= 1


def test_shape_endpoint_does_not_allocate(api):
    r = api.post(
        "/api/shape",
        json=body(
            {"type": "Conv2d", "in_channels": 512, "out_channels": 512, "kernel_size": 3},
            [{"shape": [64, 512, 224, 224]}],
        ),
    )
    d = r.json()
    assert r.status_code == 200
    assert d["output_shape"] == [64, 512, 222, 222]
    assert d["source"] == "formula"
    assert d["estimate_bytes"] > 10 * 1024**3  # tens of GB described, none allocated
    assert d["params"][0] == {"name": "weight", "shape": [512, 512, 3, 3], "numel": 2359296, "dtype": "float32"}


@pytest.mark.parametrize(
    "req, status, error, field, words",
    [
        (body({"type": "Linaer"}), 404, "unknown_layer", "layer.type", "Did you mean 'Linear'"),
        (body({"type": "os.system"}), 404, "unknown_layer", "layer.type", "Unknown layer type"),
        (
            body({**LINEAR, "out_feature": 5}),
            422,
            "invalid_argument",
            "layer.out_feature",
            "Did you mean 'out_features'",
        ),
        (body({**LINEAR, "in_features": "ten"}), 422, "invalid_argument", "layer.in_features", "integer"),
        (body({**LINEAR, "in_features": 0}), 422, "invalid_argument", "layer.in_features", ">= 1"),
        (
            body({"type": "Linear", "in_features": 10}),
            422,
            "invalid_argument",
            "layer.out_features",
            "needs out_features",
        ),
        (body({"type": "Dropout", "p": 1.5}, [{"shape": [2]}]), 422, "invalid_argument", "layer.p", "between 0 and 1"),
        (
            body(
                {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding_mode": "mirror"},
                [{"shape": [1, 3, 5, 5]}],
            ),
            422,
            "invalid_argument",
            "layer.padding_mode",
            "one of",
        ),
        (
            body(inputs=[{"shape": [5, 7]}]),
            422,
            "shape_mismatch",
            "inputs[0].shape",
            "Linear expects the last dimension of input 0 to be in_features=10, got 7",
        ),
        (
            body({"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 10}, [{"shape": [6, 3, 8]}]),
            422,
            "shape_mismatch",
            "inputs[0].shape",
            "kernel",
        ),
        (
            body(
                {"type": "Conv1d", "in_channels": 3, "out_channels": 6, "kernel_size": 3, "groups": 2},
                [{"shape": [6, 3, 8]}],
            ),
            422,
            "invalid_argument",
            "layer.in_channels",
            "divisible by groups",
        ),
        (
            body({"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 3}, [{"shape": [6, 4, 8]}]),
            422,
            "shape_mismatch",
            "inputs[0].shape",
            "in_channels=3",
        ),
        (body(device="cuda"), 422, "device_unavailable", "device", "no CUDA device"),
        (body(device="tpu"), 422, "device_unavailable", "device", "not a device name"),
        (body(seed=-1), 422, "invalid_request", "seed", "seed must be an integer"),
        (body(seed=2**64), 422, "invalid_request", "seed", "seed: 18446744073709551616 is out of range"),
        (body(dtype="int8"), 422, "invalid_request", "dtype", "float32"),
        (body(extra=1), 422, "invalid_request", "extra", "unknown field"),
        (body(inputs=[{"shape": [5, 10]}, {"shape": [5, 10]}]), 422, "invalid_request", "inputs", "takes 1 input"),
        (body(inputs=[{"shape": [5, 0]}]), 422, "invalid_request", "inputs[0].shape[1]", "greater than or equal to 1"),
        (body(inputs=[{"data": [[1, 2], [3]]}]), 422, "invalid_argument", "inputs[0].data", "ragged"),
        (body(inputs=[{"data": [["a"]]}]), 422, "invalid_argument", "inputs[0].data", "only numbers"),
        (body(inputs=[{"shape": [200000, 200000]}]), 413, "too_large", "inputs", "limit"),
        (
            body({"type": "Linear", "in_features": 10**6, "out_features": 10**6}, [{"shape": [1, 10**6]}]),
            413,
            "too_large",
            "layer",
            "parameters would take",
        ),
    ],
)
def test_errors_are_clear_4xx(api, req, status, error, field, words):
    r = api.post("/api/run", json=req)
    assert r.status_code == status, r.text
    d = r.json()
    assert d["error"] == error
    assert d["field"] == field
    assert words in d["detail"]
    assert "Traceback" not in d["detail"]


def test_413_names_estimate_and_limit(api):
    d = api.post("/api/run", json=body(inputs=[{"shape": [200000, 200000]}])).json()
    assert "149.0 GiB" in d["detail"] and "512.0 MiB" in d["detail"]
    assert d["estimate_bytes"] == 200000 * 200000 * 4 and d["limit_bytes"] == 512 * 1024**2


@pytest.mark.parametrize(
    "raw, status, words",
    [
        (b"[" * 100000, 400, "nested deeper"),
        (b'{"layer": ', 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b'"just a string"', 422, "JSON object"),
    ],
)
def test_malformed_bodies(api, raw, status, words):
    r = api.post("/api/run", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert words in r.json()["detail"]


def test_oversized_body(api):
    r = api.post("/api/run", content=b" " * (9 * 1024 * 1024), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_explain_errors(api):
    req = body(index=[9, 0])
    r = api.post("/api/explain", json=req)
    assert r.status_code == 422 and "out of range at dimension 0" in r.json()["detail"]
    r = api.post("/api/explain", json=body(index=[0]))
    assert r.status_code == 422 and "has 1 entries" in r.json()["detail"]
    r = api.post("/api/explain", json=body({"type": "ReLU"}, [{"shape": [2]}], index=[0]))
    assert r.status_code == 422 and r.json()["error"] == "not_explainable"


def test_half_precision_on_cpu_is_clear(api):
    r = api.post("/api/run", json=body(dtype="float64"))
    assert r.status_code == 200 and r.json()["output"]["dtype"] == "float64"


def test_torch_warnings_are_reported_not_raised(api):
    r = api.post(
        "/api/run",
        json=body(
            {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 2, "padding": "same"},
            [{"shape": [1, 1, 5]}],
        ),
    )
    assert r.status_code == 200
    d = r.json()
    assert d["output"]["shape"] == [1, 1, 5]
    assert any("even kernel lengths" in w for w in d["warnings"])


def test_index_data_must_be_whole_numbers(api):
    req = body({"type": "Embedding", "num_embeddings": 10, "embedding_dim": 3}, [{"data": [[1, 2.5]]}])
    r = api.post("/api/run", json=req)
    assert r.status_code == 422 and "whole numbers" in r.json()["detail"]
    r = api.post(
        "/api/run", json=body({"type": "Embedding", "num_embeddings": 10, "embedding_dim": 3}, [{"data": [[1, 12]]}])
    )
    assert r.status_code == 422 and "between 0 and 9" in r.json()["detail"]


def test_lstm_with_state_snippet_reproduces(api):
    import torch

    req = body(
        {"type": "LSTM", "input_size": 4, "hidden_size": 3},
        [{"shape": [2, 1, 4]}, {"shape": [1, 1, 3]}, {"shape": [1, 1, 3]}],
    )
    d = api.post("/api/run", json=req).json()
    assert "layer(x1.to(" in d["code"] and ", (x2.to(" in d["code"]
    ns: dict = {}
    exec(compile(d["code"].replace("print(output)", ""), "<snippet>", "exec"), ns)
    assert torch.allclose(ns["output"][0], torch.tensor(d["output"]["data"]))


def test_auto_device_falls_back_to_cpu_and_half_precision_runs(api):
    d = api.post("/api/run", json=body(device="auto", dtype="bfloat16")).json()
    assert d["device"] == "cpu" and d["output"]["dtype"] == "bfloat16"
    ex = api.post("/api/explain", json=body(device="auto", dtype="bfloat16", index=[0, 0])).json()
    assert ex["match"] is True  # tolerance follows the dtype


def test_absurd_sizes_are_answered_from_the_formula_or_refused(api):
    huge = {"type": "Bilinear", "in1_features": 10, "in2_features": 20, "out_features": 10**9}
    req = body(huge, [{"shape": [5, 10]}, {"shape": [5, 20]}])
    d = api.post("/api/shape", json=req).json()
    assert d["output_shape"] == [5, 10**9] and d["source"] == "formula"
    assert api.post("/api/run", json=req).status_code == 413
    # stacked copies are built one by one, so their count is bounded before anything is built
    r = api.post(
        "/api/shape",
        json=body({"type": "LSTM", "input_size": 4, "hidden_size": 4, "num_layers": 10**9}, [{"shape": [2, 1, 4]}]),
    )
    assert r.status_code == 422 and r.json()["field"] == "layer.num_layers" and "between 1 and 64" in r.json()["detail"]


def test_shape_detail_shapes_is_the_formulas_answer_alone(api):
    body = {
        "layer": {"type": "TransformerEncoderLayer", "d_model": 8, "nhead": 2, "dim_feedforward": 16},
        "inputs": [{"shape": [5, 2, 8]}],
    }
    full = api.post("/api/shape", json=body).json()
    lean = api.post("/api/shape?detail=shapes", json=body).json()
    assert lean["output_shapes"] == full["output_shapes"] == [[5, 2, 8]] and lean["source"] == "formula"
    assert lean["param_count"] == full["param_count"]
    # the full answer traces the attention and feed-forward the layer builds inside itself, and the graph
    assert {"self_attn", "linear1", "linear2"} <= {e["path"] for e in full["trace"]} and "graph" in full
    assert "trace" not in lean and "graph" not in lean
    bad = api.post("/api/shape?detail=everything", json=body)
    assert bad.status_code == 422 and "detail" in bad.text


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_explain_says_which_value_is_torchs_and_which_is_by_hand(api, dtype):
    """The headline text carries torch's value in the run's dtype; the hand computation is float64."""
    req = body(
        {"type": "Bilinear", "in1_features": 3, "in2_features": 4, "out_features": 2},
        [{"shape": [2, 3]}, {"shape": [2, 4]}],
        dtype=dtype,
        index=[1, 0],
    )
    ex = api.post("/api/explain", json=req).json()
    assert ex["dtype"] == dtype and ex["manual_dtype"] == "float64"
    assert ex["text"].endswith(f"(torch, {dtype})")
    value = ex["text"].split(" = ")[1].split(" (torch")[0].replace("\u2212", "-")
    assert float(value) == pytest.approx(ex["value"], rel=1e-5)
    assert "-" not in ex["text"]  # one minus sign, U+2212
