"""Networks of layers: trace, totals, mismatch errors naming the child, explain by path, presets, plugins."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from app.core import service
from app.core.config import Settings
from app.core.errors import ShapeMismatch
from app.core.networks.trace import macs
from app.core.presets import PRESETS
from app.core.registry import default_registry

LENET = next(p for p in PRESETS if p["id"] == "lenet5")["request"]


def torch_lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.Tanh(),
        nn.Linear(84, 10),
    )


def test_lenet5_trace_matches_torch(api):
    out = api.post("/api/run", json=LENET).json()
    model = torch_lenet()
    shapes = []
    x = torch.randn(1, 1, 28, 28)
    for layer in model:
        x = layer(x)
        shapes.append(list(x.shape))
    assert [e["output_shape"] for e in out["trace"]] == shapes
    assert [e["path"] for e in out["trace"]] == [str(i) for i in range(12)]
    assert out["totals"]["param_count"] == sum(p.numel() for p in model.parameters()) == 61706
    assert out["param_count"] == 61706
    assert [p["name"] for p in out["params"]][:2] == ["0.weight", "0.bias"]
    conv0 = out["trace"][0]
    assert conv0["macs"] == 6 * 28 * 28 * 1 * 25 and conv0["activation_bytes"] == 6 * 28 * 28 * 4
    # the same trace without running anything
    shaped = api.post("/api/shape", json=LENET).json()
    assert [e["output_shape"] for e in shaped["trace"]] == shapes
    assert shaped["output_shape"] == [1, 10]


def test_mismatch_names_the_child_and_returns_the_trace_so_far(api):
    req = {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "Linear", "in_features": 10, "out_features": 5},
                {"type": "Linear", "in_features": 6, "out_features": 3},
            ],
        },
        "inputs": [{"shape": [4, 10]}],
    }
    for path in ("/api/run", "/api/shape"):
        r = api.post(path, json=req)
        assert r.status_code == 422
        d = r.json()
        assert d["detail"].startswith(
            "layer 1 (Linear) expects the last dimension of its input to be in_features=6, got 5"
        )
        assert "layer 0 (Linear) outputs (4, 5)" in d["detail"]
        assert d["path"] == "1" and d["field"] == "layer.layers[1]"
        assert [e["path"] for e in d["trace"]] == ["0"] and d["trace"][0]["output_shape"] == [4, 5]


def test_nested_mismatch_path(api):
    req = {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": 8, "name": "inp"},
                {
                    "type": "Sequential",
                    "name": "stage",
                    "layers": [
                        {"type": "ReLU"},
                        {"type": "Linear", "in_features": 9, "out_features": 2, "name": "head"},
                    ],
                },
            ],
        },
        "inputs": [{"shape": [2, 4]}],
    }
    d = api.post("/api/run", json=req).json()
    assert d["path"] == "stage.head" and d["field"] == "layer.layers[1].layers[1]"
    assert "layer stage.0 (ReLU) outputs (2, 8)" in d["detail"]


def test_residual_mismatch_explains_the_fix(api):
    req = {
        "layer": {
            "type": "Residual",
            "body": [{"type": "Linear", "in_features": 10, "out_features": 20}],
            "shortcut": None,
        },
        "inputs": [{"shape": [4, 10]}],
    }
    d = api.post("/api/run", json=req).json()
    assert "body outputs (4, 20)" in d["detail"] and "identity" in d["detail"]
    req["layer"]["shortcut"] = {"type": "Linear", "in_features": 10, "out_features": 20}
    ok = api.post("/api/run", json=req).json()
    assert ok["output"]["shape"] == [4, 20]
    assert [e["path"] for e in ok["trace"]] == ["body", "body.0", "shortcut"]


def test_explain_a_child_on_the_input_it_received(api):
    req = {**PRESETS[0]["request"], "path": "layer2", "index": [1, 3]}
    ex = api.post("/api/explain", json=req).json()
    run = api.post("/api/run", json=PRESETS[0]["request"]).json()
    assert ex["match"] and ex["path"] == "layer2"
    assert ex["value"] == pytest.approx(run["output"]["data"][1][3], abs=1e-5)
    assert ex["input_shapes"] == [[5, 15]]
    assert [t["weight_index"] for t in ex["terms"]][:2] == [[3, 0], [3, 1]]
    conv = api.post("/api/explain", json={**LENET, "path": "3", "index": [0, 2, 4, 4]}).json()
    assert conv["match"] and conv["input_shapes"] == [[1, 6, 14, 14]]
    r = api.post("/api/explain", json={**LENET, "path": "99", "index": [0]})
    assert r.status_code == 422 and "no layer at path '99'" in r.json()["detail"]


def test_custom_layers_in_catalog(api):
    layers = {layer["type"]: layer for layer in api.get("/api/layers").json()["layers"]}
    assert layers["BasicLinear"]["family"] == "custom"
    assert [p["name"] for p in layers["BasicLinear"]["params"]] == ["input_features", "output_features"]
    assert layers["SimpleResidualBlock"]["family"] == "custom"
    assert layers["Sequential"]["params"][0]["type"] == "layers"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p["id"])
def test_presets_run(api, preset):
    r = api.post("/api/run", json=preset["request"])
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["shape_check"] is True


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p["id"])
def test_network_code_snippet_reproduces(api, preset):
    d = api.post("/api/run", json=preset["request"]).json()
    ns: dict = {}
    exec(compile(d["code"].replace("print(output)", ""), "<snippet>", "exec"), ns)
    assert torch.allclose(ns["output"], torch.tensor(d["output"]["data"]), atol=1e-5)


def test_example_plugin_loads_and_runs():
    registry = default_registry(("examples/my_layers.py",))
    assert "ScaledTanh" in registry and "GatedLinear" in registry
    for name in ("ScaledTanh", "GatedLinear"):
        spec = registry.get(name)
        out = service.run(registry, spec.example, Settings())
        assert out["shape_check"] is True
    with pytest.raises(ShapeMismatch, match="in_features=8, got 5"):
        service.run(
            registry,
            {"layer": {"type": "GatedLinear", "in_features": 8, "out_features": 2}, "inputs": [{"shape": [2, 5]}]},
            Settings(),
        )
    # the default catalog is untouched: plugins are chosen at start-up, per server
    assert "ScaledTanh" not in default_registry()


def test_plugin_errors_are_start_up_errors():
    from app.core.catalog.plugins import PluginError, load
    from app.core.catalog.spec import Registry

    with pytest.raises(PluginError, match="cannot import"):
        load(Registry(), ("no_such_module_xyz",))
    with pytest.raises(PluginError, match="does not exist"):
        load(Registry(), ("missing_file.py",))


def test_sequential_equivalent_to_torch():
    registry = default_registry()
    req = {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "Linear", "in_features": 3, "out_features": 4, "name": "fc"},
                {"type": "ReLU", "name": "act"},
            ],
        },
        "inputs": [{"shape": [2, 3]}],
        "seed": 5,
    }
    out = service.run(registry, req, Settings())
    torch.manual_seed(5)
    model = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 4)), ("act", nn.ReLU())]))
    x = torch.randn(2, 3)
    assert torch.allclose(model(x), torch.tensor(out["output"]["data"]))


def test_run_a_child_as_it_ran_inside_the_network(api):
    d = api.post("/api/run", json={**LENET, "path": "3"}).json()
    assert d["path"] == "3" and d["type"] == "Conv2d" and d["network_type"] == "Sequential"
    assert d["inputs"][0]["shape"] == [1, 6, 14, 14]
    assert d["output"]["shape"] == d["predicted_shape"] == [1, 16, 10, 10] and d["shape_check"]
    assert d["windows"]["kind"] == "conv" and d["windows"]["input_spatial"] == [14, 14]
    assert [p["name"] for p in d["params"]] == ["weight", "bias"]
    # the child's input is the network's real intermediate tensor, its weights the network's own
    net = api.post("/api/run", json={**LENET, "path": "2"}).json()
    assert net["output"]["summary"] == d["inputs"][0]["summary"]
    whole = api.post("/api/run", json=LENET).json()
    whole_w = next(p for p in whole["params"] if p["name"] == "3.weight")
    assert whole_w["summary"] == d["params"][0]["summary"]
    # its script prints the child's output
    ns: dict = {}
    exec(compile(d["code"].replace("print(captured['output'])", ""), "<snippet>", "exec"), ns)
    import numpy as np

    got = ns["captured"]["output"]
    assert got.shape == (1, 16, 10, 10)
    assert abs(float(got.mean()) - d["output"]["summary"]["mean"]) < 1e-5
    assert np.isfinite(got.numpy()).all()


def test_run_child_inside_custom_block_and_errors(api):
    req = next(p for p in PRESETS if p["id"] == "tutorial-residual-net")["request"]
    d = api.post("/api/run", json={**req, "path": "block1.fc2"}).json()
    assert d["type"] == "Linear" and d["inputs"][0]["shape"] == [5, 50] and d["shape_check"]
    r = api.post("/api/run", json={**req, "path": "nope"})
    assert r.status_code == 422 and r.json()["field"] == "path" and "block1.fc1" in r.json()["detail"]


PRESET_REQUESTS = {p["id"]: p["request"] for p in PRESETS}


@pytest.mark.parametrize("preset", list(PRESET_REQUESTS))
@pytest.mark.parametrize("endpoint", ["/api/run", "/api/shape"])
def test_totals_count_every_layer_the_graph_draws(api, preset, endpoint):
    """One counted layer per module node of the dataflow graph: attention counts though it holds out_proj."""
    body = api.post(endpoint, json=PRESET_REQUESTS[preset]).json()
    graph_modules = sorted(n["path"] for n in body["graph"]["nodes"] if n["op"] == "module")
    if "trace" not in body:  # a single layer: no trace, no totals
        assert graph_modules == [""]
        return
    leaves = [e for e in body["trace"] if e["leaf"]]
    assert body["totals"]["layers"] == len(leaves) == len(graph_modules)
    assert sorted(e["path"] for e in leaves) == graph_modules
    assert body["totals"]["macs"] == sum(e["macs"] or 0 for e in leaves)
    assert body["totals"]["activation_bytes"] == sum(e["activation_bytes"] for e in leaves)
    # every container's own totals (a collapsed block in the graph): the leaves below it, each call once
    containers = {e["path"]: e for e in body["trace"] if not e["leaf"]}
    assert set(body["subtotals"]) == set(containers)
    for path, sub in body["subtotals"].items():
        below = [e for e in leaves if e["path"].startswith(f"{path}.")]
        assert sub["type"] == containers[path]["type"]
        assert sub["param_count"] == containers[path]["param_count"]
        assert sub["layers"] == len(below) > 0
        assert sub["macs"] == sum(e["macs"] or 0 for e in below)
        assert sub["macs_complete"] == all(e["macs"] is not None for e in below)
        assert sub["activation_bytes"] == sum(e["activation_bytes"] for e in below)


def test_tiny_transformer_totals_include_attention(api):
    body = api.post("/api/run", json=PRESET_REQUESTS["tiny-transformer-encoder"]).json()
    graph_modules = [n for n in body["graph"]["nodes"] if n["op"] == "module"]
    assert len(graph_modules) == 8 and body["totals"]["layers"] == 8
    attn = next(e for e in body["trace"] if e["path"] == "self_attn")
    assert attn["leaf"] is True and attn["type"] == "MultiheadAttention"
    # torch's own count of the attention's matrix products (FLOPs are two per multiply-add); with
    # need_weights the products run as bmm, which the counter sees (CPU's fused attention it does not)
    model = nn.MultiheadAttention(16, 2, batch_first=True)
    x = torch.randn(2, 5, 16)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, x, x, need_weights=True)
    assert attn["macs"] * 2 == counter.get_total_flops() == 2 * 11840
    others = [e for e in body["trace"] if e["leaf"] and e["path"] != "self_attn"]
    assert body["totals"]["macs"] == attn["macs"] + sum(e["macs"] or 0 for e in others)
    assert attn["activation_bytes"] == 2 * 5 * 16 * 4
    assert body["totals"]["activation_bytes"] == sum(e["activation_bytes"] for e in others) + 640
    assert not any(e["path"].endswith("out_proj") for e in body["trace"])  # counted inside the attention


@pytest.mark.parametrize(
    ("kwargs", "q", "kv"),
    [
        ({"embed_dim": 12, "num_heads": 3}, [7, 2, 12], [4, 2, 12]),
        ({"embed_dim": 8, "num_heads": 2, "kdim": 5, "vdim": 3, "batch_first": True}, [2, 6, 8], [2, 9, None]),
        ({"embed_dim": 8, "num_heads": 4}, [6, 8], [3, 8]),
    ],
)
def test_attention_macs_are_torchs_flops(kwargs, q, kv):
    """Cross-attention with its own key and value sizes, batch-first or not, unbatched: macs = FLOPs / 2."""
    model = nn.MultiheadAttention(**kwargs)
    key_shape = [d if d is not None else model.kdim for d in kv]
    value_shape = [d if d is not None else model.vdim for d in kv]
    query, key, value = torch.randn(q), torch.randn(key_shape), torch.randn(value_shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out, _ = model(query, key, value, need_weights=True)
    assert 2 * macs(model, [q, key_shape, value_shape], [list(out.shape)]) == counter.get_total_flops()
