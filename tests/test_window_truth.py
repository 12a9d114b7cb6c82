"""Issue 11 (server side): padding shows what the operation reads, and the sliding window always
gets real values for the planes it draws, however large the tensors are."""

import itertools
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


# --- what padding, overhang and inserted zeros are called (issue 16) ------------------------------


def _run_explain(api, layer, inputs, index):
    body = {"layer": layer, "inputs": inputs}
    r = api.post("/api/explain", json={**body, "index": index})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("dims", [1, 2])
def test_transposed_convolution_says_inserted_zeros_not_padding(api, dims):
    """The zeros the stride inserts between the inputs are marked ``inserted``; the border is padding."""
    layer = {"type": f"ConvTranspose{dims}d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2}
    shape = [1, 1] + [3] * dims
    win = api.post("/api/run", json={"layer": layer, "inputs": [{"shape": shape}]}).json()["windows"]
    origin, step, span = win["frame"]["input_origin"], win["frame"]["input_step"], win["input_spatial"]
    out_spatial = win["output_spatial"]
    seen_inserted = seen_padding = 0
    for o in itertools.product(*map(range, out_spatial)):
        ex = _run_explain(api, layer, [{"shape": shape}], [0, 0, *o])
        for t in ex["terms"]:
            f = t["at"]
            inside = all(0 <= f[j] - origin[j] <= (span[j] - 1) * step[j] for j in range(dims))
            off_grid = any((f[j] - origin[j]) % step[j] for j in range(dims))
            assert t.get("inserted", False) == (inside and off_grid), (o, t)
            if t.get("inserted"):
                assert t["padding"] and t["input"] == 0 and t["product"] == 0
            seen_inserted += bool(t.get("inserted"))
            seen_padding += t["padding"] and not t.get("inserted")
        if any(t.get("inserted") for t in ex["terms"]):
            assert "zeros the stride inserts" in ex["padding_note"]
    assert seen_inserted and seen_padding


def test_ceil_mode_overhang_is_outside_and_excluded(api):
    layer = {"type": "AvgPool2d", "kernel_size": 2, "stride": 2, "ceil_mode": True}
    inputs = [{"data": [[[[10, 20, 15], [30, 40, 20], [15, 20, 17.5]]]]}]
    ex = _run_explain(api, layer, inputs, [0, 0, 1, 1])
    assert ex["value"] == 17.5 and ex["divisor"] == 1
    outside = [t for t in ex["terms"] if t.get("outside")]
    assert len(outside) == 3 and all(t["excluded"] for t in outside)
    assert "outside the input (ceil_mode)" in ex["padding_note"] and "padding" not in ex["padding_note"]
    ex = _run_explain(api, {**layer, "type": "MaxPool2d"}, inputs, [0, 0, 1, 0])
    assert ex["value"] == 20 and "of the max" in ex["padding_note"]


def test_count_include_pad_false_excludes_padding_from_the_mean(api):
    layer = {"type": "AvgPool2d", "kernel_size": 3, "padding": 1, "stride": 1, "count_include_pad": False}
    data = [[[[-1.1, 0.5, 2.0, 1.0], [0.25, -0.75, 1.5, 2.5], [3.5, -0.2, -1.1, -0.4], [0.9, 1.2, -0.6, -1.3]]]]
    ex = _run_explain(api, layer, [{"data": data}], [0, 0, 0, 0])
    counted = [t for t in ex["terms"] if not t.get("excluded")]
    assert [t["input"] for t in counted] == pytest.approx([-1.1, 0.5, 0.25, -0.75])
    assert ex["divisor"] == 4 and ex["value"] == pytest.approx((-1.1 + 0.5 + 0.25 - 0.75) / 4)
    assert all(t["padding"] for t in ex["terms"] if t.get("excluded"))
