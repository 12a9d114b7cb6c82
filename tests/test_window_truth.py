"""Issue 11 (server side): padding shows what the operation reads, and the sliding window always
gets real values for the planes it draws, however large the tensors are."""

import math

import numpy as np
import pytest
import torch

POOL = {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}


def _negative(shape):
    return (-(torch.arange(math.prod(shape), dtype=torch.float32) + 1).reshape(shape)).tolist()


def test_max_pool_padding_reads_minus_infinity(api):
    body = {"layer": POOL, "inputs": [{"data": _negative([1, 1, 4, 4])}], "index": [0, 0, 0, 0]}
    r = api.post("/api/explain", json=body).json()
    assert r["value"] == -1.0 and r["match"]
    pads = [t for t in r["terms"] if t["padding"]]
    assert len(pads) == 5 and all(t["input"] == "-inf" for t in pads)
    assert r["pad_value"] == "-inf"
    assert "−∞" in r["padding_note"] and "add 0" not in r["padding_note"]
    run = api.post("/api/run", json={"layer": POOL, "inputs": [{"shape": [1, 1, 4, 4]}]}).json()
    assert run["windows"]["pad_value"] == "-inf"


@pytest.mark.parametrize("include, reads, divisor", [(True, "0", 9), (False, "excluded", 4)])
def test_avg_pool_padding_counted_or_excluded(api, include, reads, divisor):
    layer = {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": include}
    r = api.post(
        "/api/explain", json={"layer": layer, "inputs": [{"shape": [1, 1, 4, 4]}], "index": [0, 0, 0, 0]}
    ).json()
    assert r["match"] and r["divisor"] == divisor and r["pad_value"] == reads
    pads = [t for t in r["terms"] if t["padding"]]
    assert all(t.get("excluded", False) is (not include) for t in pads)
    assert ("count_include_pad=False" in r["padding_note"]) is (not include)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_copy_padding_reads_input_values(api, mode):
    layer = {
        "type": "Conv2d",
        "in_channels": 1,
        "out_channels": 1,
        "kernel_size": 3,
        "padding": 1,
        "padding_mode": mode,
    }
    r = api.post(
        "/api/explain", json={"layer": layer, "inputs": [{"shape": [1, 1, 5, 5]}], "index": [0, 0, 0, 0]}
    ).json()
    assert r["match"] and r["pad_value"] == "copy"
    copies = [t for t in r["terms"] if t.get("pad_copy")]
    assert len(copies) == 5 and all(t["input_index"] is not None for t in copies)
    assert mode in r["padding_note"]
    run = api.post("/api/run", json={"layer": layer, "inputs": [{"shape": [1, 1, 5, 5]}]}).json()
    assert run["windows"]["pad_value"] == "copy" and run["windows"]["padding_mode"] == mode


def test_zero_padding_adds_zero(api):
    layer = {"type": "Conv1d", "in_channels": 2, "out_channels": 1, "kernel_size": 3, "padding": 1}
    r = api.post("/api/explain", json={"layer": layer, "inputs": [{"shape": [1, 2, 5]}], "index": [0, 0, 0]}).json()
    assert r["pad_value"] == "0" and r["padding_note"].startswith("2 of 6 positions fall on zero padding")


def test_large_input_still_sends_the_drawn_planes(api):
    layer = {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3}
    body = {
        "layer": layer,
        "inputs": [{"shape": [2, 3, 64, 64]}],
        "seed": 1,
        "window_slice": {"batch": 1, "channel": 2},
    }
    r = api.post("/api/run", json=body).json()
    assert r["inputs"][0]["data"] is None  # too large for the full listing
    v = r["windows"]["values"]
    assert (v["batch"], v["channel"], v["input_channels"]) == (1, 2, [0, 1, 2])
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = conv(x)
    np.testing.assert_allclose(np.array(v["input"][2]), x[1, 2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.array(v["output"]), y[1, 2].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(v["kernel"][1]), conv.weight[2, 1].detach().numpy(), rtol=1e-6)


def test_grouped_conv_sends_only_the_group(api):
    layer = {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2}
    body = {"layer": layer, "inputs": [{"shape": [1, 4, 6, 6]}], "window_slice": {"channel": 4}}
    v = api.post("/api/run", json=body).json()["windows"]["values"]
    assert v["input_channels"] == [2, 3] and v["input_channels_total"] == 2 and len(v["kernel"]) == 2


def test_window_slice_is_clamped_and_checked(api):
    body = {"layer": POOL, "inputs": [{"shape": [1, 2, 4, 4]}], "window_slice": {"channel": 99}}
    assert api.post("/api/run", json=body).json()["windows"]["values"]["channel"] == 1
    bad = {**body, "window_slice": {"channel": -1}}
    r = api.post("/api/run", json=bad)
    assert r.status_code == 422 and r.json()["field"] == "window_slice.channel"
