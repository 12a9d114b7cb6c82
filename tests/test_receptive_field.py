"""POST /api/receptive-field: the structural receptive field equals brute force on small nets.

Brute force: for each input element, add ±1000 to it and see which output elements move; the union over
several random weight and input draws is every output an input element can change, i.e. the exact
structural dependency that the API computes with autograd through a dependency-equivalent copy.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from app.core.graphs import wire
from app.core.networks.tree import build, resolve
from app.core.presets import PRESETS

DRAWS = 8


def conv(cin, cout, k, **kw):
    return {"type": "Conv2d", "in_channels": cin, "out_channels": cout, "kernel_size": k, **kw}


NETS = {
    "stacked conv": (
        {
            "type": "Sequential",
            "layers": [conv(1, 2, 3), {"type": "ReLU"}, conv(2, 2, 3, stride=2), {"type": "Tanh"}, conv(2, 1, 2)],
        },
        [1, 1, 12, 12],
    ),
    "max pooling and dilation": (
        {
            "type": "Sequential",
            "layers": [
                conv(1, 2, 3, dilation=2),
                {"type": "MaxPool2d", "kernel_size": 2},
                {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True},
                conv(2, 1, 2),
            ],
        },
        [1, 1, 16, 15],
    ),
    "conv1d dilation, reflect padding": (
        {
            "type": "Sequential",
            "layers": [
                {
                    "type": "Conv1d",
                    "in_channels": 2,
                    "out_channels": 2,
                    "kernel_size": 3,
                    "dilation": 3,
                    "padding": 2,
                    "padding_mode": "reflect",
                },
                {"type": "ReLU"},
                {"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "ceil_mode": True},
                {"type": "Conv1d", "in_channels": 2, "out_channels": 1, "kernel_size": 2},
            ],
        },
        [1, 2, 17],
    ),
    "residual block": (
        {
            "type": "Residual",
            "body": [conv(2, 2, 3, padding=1), {"type": "ReLU"}, conv(2, 2, 3, padding=1)],
            "shortcut": None,
        },
        [1, 2, 6, 6],
    ),
    "tutorial residual block": ({"type": "SimpleResidualBlock", "in_features": 4, "out_features": 3}, [2, 4]),
    "dense layer": (
        {
            "type": "Sequential",
            "layers": [
                conv(1, 2, 3),
                {"type": "ReLU"},
                {"type": "Flatten"},
                {"type": "Linear", "in_features": 32, "out_features": 3},
            ],
        },
        [1, 1, 6, 6],
    ),
}


def brute_force(registry, layer, shape):
    """dep[out_index] = set of input indices that move it, over DRAWS draws of weights and inputs."""
    node = resolve(registry, layer, field="layer")
    numel = int(np.prod(shape))
    moved = None
    for seed in range(DRAWS):
        torch.manual_seed(1000 + seed)
        module = build(node).double()
        x = torch.randn(shape, dtype=torch.float64)
        with torch.no_grad():
            base = module(x)
            for delta in (1e3, -1e3):
                # one perturbed copy per input element, stacked along the batch dimension (samples are independent);
                # a batched kernel may round differently, so "moved" means by more than rounding
                xs = x.reshape(1, -1).repeat(numel, 1)
                xs[torch.arange(numel), torch.arange(numel)] += delta
                out = module(xs.reshape(numel * shape[0], *shape[1:]))
                out = out.reshape(numel, *base.shape)
                hit = ((out - base.unsqueeze(0)).abs() > 1e-9 * (1 + base.abs().unsqueeze(0))).reshape(numel, -1)
                moved = hit if moved is None else moved | hit
    return moved, tuple(base.shape)


@pytest.mark.parametrize("name", list(NETS))
def test_structural_field_equals_brute_force(api, registry, name):
    layer, shape = NETS[name]
    moved, out_shape = brute_force(registry, layer, shape)
    indices = list(itertools.product(*[range(n) for n in out_shape]))
    # every output element of the small nets, or an even sample of the larger ones
    for flat, index in list(enumerate(indices))[:: max(1, len(indices) // 12)]:
        r = api.post(
            "/api/receptive-field",
            json={"layer": layer, "inputs": [{"shape": shape}], "index": list(index), "train": False},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        field = body["input"]
        want = moved[:, flat].reshape(shape)
        got = torch.from_numpy(wire.mask(field))
        assert torch.equal(got, want), (name, index, got.int(), want.int())
        assert field["count"] == int(want.sum())
        if field["count"]:
            nz = want.nonzero()
            assert field["bbox"] == [[int(a), int(b)] for a, b in zip(nz.min(0).values, nz.max(0).values)]
        # the effective field (real weights and input) never reaches outside the structural one
        heat = torch.from_numpy(wire.heat(field))
        assert not ((heat > 0) & ~got).any()


def test_dense_layer_depends_on_everything(api):
    layer, shape = NETS["dense layer"]
    body = api.post("/api/receptive-field", json={"layer": layer, "inputs": [{"shape": shape}], "index": [0, 1]}).json()
    assert body["input"]["count"] == body["input"]["numel"] == 36
    assert body["formula"] is None  # no window arithmetic through a dense layer
    by_id = {n["id"]: n for n in body["nodes"]}
    assert by_id["_3"]["count"] == 1 and by_id["_2"]["count"] == 32


def test_lenet_intermediate_node_and_formula(api):
    lenet = next(p for p in PRESETS if p["id"] == "lenet5")["request"]
    body = api.post("/api/receptive-field", json={**lenet, "index": [0, 0, 5, 5], "path": "3"}).json()
    assert {k: v for k, v in body["target"].items() if k != "value"} == {
        "id": "_3",
        "path": "3",
        "shape": [1, 16, 10, 10],
    }
    f = body["formula"]
    # conv 5 (r = 5), pool 2 (r = 6, jump 2), conv 5: r = 6 + (5 − 1)·1·2 = 14
    assert f["size"] == [14, 14]
    assert [s["r"] for s in f["steps"]] == [[5, 5], [6, 6], [14, 14]]
    assert f["steps"][2]["text"] == "6 + (5 − 1)·1·2 = 14, 6 + (5 − 1)·1·2 = 14"
    field = body["input"]
    (_, _), (_, _), (h0, h1), (w0, w1) = field["bbox"]
    assert (h1 - h0 + 1, w1 - w0 + 1) == (14, 14)  # the formula agrees with the structural field
    assert field["count"] == 14 * 14
    later = {n["id"]: n for n in body["nodes"]}["_7"]
    assert (
        later["count"] == 0 and later["shape"] is None and later["grid"] is None
    )  # layers after the chosen one do not take part
    # the whole output: a dense layer, so every pixel
    full = api.post("/api/receptive-field", json={**lenet, "index": [0, 3]}).json()
    assert full["input"]["count"] == 784 and full["formula"] is None


def test_max_pooling_depends_on_its_whole_window(api):
    layer = {"type": "MaxPool2d", "kernel_size": 3, "stride": 2}
    body = api.post(
        "/api/receptive-field", json={"layer": layer, "inputs": [{"shape": [1, 1, 7, 7]}], "index": [0, 0, 1, 2]}
    ).json()
    assert body["method"] == "module"
    assert body["input"]["bbox"] == [[0, 0], [0, 0], [2, 4], [4, 6]] and body["input"]["count"] == 9
    assert body["input"]["effective"]["count"] == 1  # the gradient reaches only the element max picked


def test_transformer_encoder_mixes_the_sequence_but_not_the_batch(api):
    req = next(p for p in PRESETS if p["id"] == "tiny-transformer-encoder")["request"]
    body = api.post("/api/receptive-field", json={**req, "index": [1, 2, 3]}).json()
    assert body["method"] == "hooks"
    assert body["input"]["bbox"] == [[1, 1], [0, 4], [0, 15]] and body["input"]["count"] == 80


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"index": [0, 99]}, "index"),
        ({"index": [0]}, "index"),
        ({"index": [0, 0], "path": "nope"}, "path"),
        ({"index": [0, 0], "node": "nope"}, "node"),
        ({"index": [0, 0], "bogus": 1}, "bogus"),
    ],
)
def test_bad_requests(api, extra, field):
    body = {"layer": {"type": "Linear", "in_features": 3, "out_features": 2}, "inputs": [{"shape": [4, 3]}], **extra}
    r = api.post("/api/receptive-field", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    if field == "bogus":
        assert r.json()["detail"].endswith("train, path, window_slice, parameters, index, node, effective")


def test_integer_inputs_have_no_field(api):
    r = api.post(
        "/api/receptive-field",
        json={
            "layer": {"type": "Embedding", "num_embeddings": 5, "embedding_dim": 3},
            "inputs": [{"shape": [2, 4]}],
            "index": [0, 0, 0],
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "inputs"


def test_nodes_after_the_chosen_one_take_no_part_and_large_nodes_come_folded(api):
    lenet = next(p for p in PRESETS if p["id"] == "lenet5")["request"]
    body = api.post("/api/receptive-field", json={**lenet, "index": [0, 2, 5, 5], "path": "3"}).json()
    by_id = {n["id"]: n for n in body["nodes"]}
    assert by_id["_4"]["count"] == 0  # the Tanh after the chosen conv
    conv1 = by_id["_0"]  # (1, 6, 28, 28): 4704 elements, too many to send whole
    assert conv1["count"] == 6 * 10 * 10 and conv1["runs"][1] == [[0, 5]]
    grid = torch.from_numpy(wire.grid(conv1))  # folded over N and C: the 10 × 10 square of rows and columns 10–19
    assert grid.shape == (28, 28) and int(grid.sum()) == 100 and int(grid[10:20, 10:20].sum()) == 100


def test_too_large_for_autograd_is_a_413(api, settings):
    # fits a no-grad run under the test server's limit, not every intermediate tensor and gradient in float64
    side = 1024
    body = {
        "layer": {
            "type": "Sequential",
            "layers": [conv(3, 8, 3, padding=1), {"type": "ReLU"}, conv(8, 8, 3, padding=1)],
        },
        "inputs": [{"shape": [1, 3, side, side]}],
    }
    assert api.post("/api/shape", json=body).json()["estimate_bytes"] < settings.memory_limit_bytes
    r = api.post("/api/receptive-field", json={**body, "index": [0, 0, 5, 5]})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large" and r.json()["estimate_bytes"] > settings.memory_limit_bytes


BN_NET = {
    "type": "Sequential",
    "layers": [conv(1, 2, 3), {"type": "BatchNorm2d", "num_features": 2}, {"type": "ReLU"}, conv(2, 1, 3)],
}


def test_batch_norm_in_training_mode_says_why_the_field_is_everything(api):
    # issue 16: with train: true (the default) batch statistics couple every position, and the field
    # silently covered the whole input; the answer now says so, and that eval mode changes it
    req = {"layer": BN_NET, "inputs": [{"shape": [2, 1, 9, 9]}], "index": [0, 0, 2, 2]}
    train = api.post("/api/receptive-field", json=req).json()
    assert train["train"] is True
    assert train["input"]["count"] == train["input"]["numel"] == 2 * 81
    assert [n["code"] for n in train["notes"]] == ["batch_statistics"]
    note = train["notes"][0]
    assert note["paths"] == ["1"] and note["eval_fixes"] is True
    assert "training mode" in note["message"] and "eval mode" in note["message"]
    evaluated = api.post("/api/receptive-field", json={**req, "train": False}).json()
    assert evaluated["train"] is False and evaluated["notes"] == []
    assert evaluated["input"]["count"] == 5 * 5  # two 3×3 convolutions: the windows' own field
    assert evaluated["formula"]["size"] == [5, 5]


def test_normalisation_notes_name_only_layers_that_feed_the_element(api):
    # a BatchNorm after the chosen node takes no part; one without running statistics is not fixed by eval
    req = {"layer": BN_NET, "inputs": [{"shape": [2, 1, 9, 9]}], "index": [0, 0, 2, 2], "path": "0"}
    assert api.post("/api/receptive-field", json=req).json()["notes"] == []
    plain = {
        "type": "Sequential",
        "layers": [conv(1, 2, 3), {"type": "BatchNorm2d", "num_features": 2, "track_running_stats": False}],
    }
    body = api.post(
        "/api/receptive-field",
        json={"layer": plain, "inputs": [{"shape": [2, 1, 6, 6]}], "index": [0, 0, 1, 1], "train": False},
    ).json()
    assert [(n["code"], n["eval_fixes"]) for n in body["notes"]] == [("batch_statistics", False)]
    group = {"type": "Sequential", "layers": [conv(1, 2, 3), {"type": "GroupNorm", "num_groups": 1, "num_channels": 2}]}
    body = api.post(
        "/api/receptive-field", json={"layer": group, "inputs": [{"shape": [1, 1, 6, 6]}], "index": [0, 0, 1, 1]}
    ).json()
    assert [n["code"] for n in body["notes"]] == ["sample_statistics"]
    assert body["input"]["count"] == 36


def test_the_target_carries_its_own_value(api):
    lenet = next(p for p in PRESETS if p["id"] == "lenet5")["request"]
    body = api.post("/api/receptive-field", json={**lenet, "index": [0, 0, 5, 5], "path": "3"}).json()
    assert isinstance(body["target"]["value"], float)
    # the same number the forward pass gives: /api/run with path answers it too
    by_path = api.post("/api/run", json={**lenet, "path": "3"}).json()
    assert by_path["output"]["data"][0][0][5][5] == pytest.approx(body["target"]["value"], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("preset", ["resnet-basic-block", "small-cnn-batchnorm"])
def test_presets_with_batch_norm_explain_their_field_and_eval_narrows_it(api, preset):
    req = next(p for p in PRESETS if p["id"] == preset)["request"]
    shape = api.post("/api/shape", json=req).json()["output_shape"]
    index = [0] * len(shape)
    train = api.post("/api/receptive-field", json={**req, "index": index}).json()
    assert [n["code"] for n in train["notes"]] == ["batch_statistics"]
    assert train["notes"][0]["eval_fixes"] is True
    evaluated = api.post("/api/receptive-field", json={**req, "index": index, "train": False}).json()
    assert evaluated["notes"] == []
    if len(shape) == 4:  # a convolutional output: the field is the windows' own, smaller than the input
        assert evaluated["input"]["count"] < train["input"]["count"] == train["input"]["numel"]
