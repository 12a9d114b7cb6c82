"""The dataflow graph in /api/run and /api/shape: exact nodes and edges for the tutorial's blocks and every preset."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from app.core import service
from app.core.networks import graph as dataflow
from app.core.presets import PRESETS
from app.core.registry import default_registry

REQUESTS = {p["id"]: p["request"] for p in PRESETS}


def compact(graph):
    nodes = [(n["id"], n["op"], n["label"], n["path"], n["shape"]) for n in graph["nodes"]]
    edges = [(e["from"], e["to"], e["shape"]) for e in graph["edges"]]
    return nodes, edges


def chain(ids, shapes):
    return [(a, b, s) for a, b, s in zip(ids, ids[1:], shapes)]


EXPECTED = {
    "tutorial-neuralnet": (
        "fx",
        [
            ("input_1", "input", "input", None, [5, 10]),
            ("layer1", "module", "BasicLinear", "layer1", [5, 15]),
            ("layer2", "module", "BasicLinear", "layer2", [5, 20]),
            ("output", "output", "output", None, [5, 20]),
        ],
        chain(["input_1", "layer1", "layer2", "output"], [[5, 10], [5, 15], [5, 20]]),
    ),
    "tutorial-residual-block": (
        "fx",
        [
            ("x", "input", "x", None, [5, 10]),
            ("fc1", "module", "Linear", "fc1", [5, 20]),
            ("relu", "module", "ReLU", "relu", [5, 20]),
            ("fc2", "module", "Linear", "fc2", [5, 20]),
            ("downsample", "module", "Linear", "downsample", [5, 20]),
            ("add", "function", "+", None, [5, 20]),
            ("output", "output", "output", None, [5, 20]),
        ],
        [
            ("x", "fc1", [5, 10]),
            ("fc1", "relu", [5, 20]),
            ("relu", "fc2", [5, 20]),
            ("x", "downsample", [5, 10]),
            ("fc2", "add", [5, 20]),
            ("downsample", "add", [5, 20]),
            ("add", "output", [5, 20]),
        ],
    ),
    "tutorial-residual-net": (
        "fx",
        [
            ("input_1", "input", "input", None, [5, 10]),
            ("block1_fc1", "module", "Linear", "block1.fc1", [5, 50]),
            ("block1_relu", "module", "ReLU", "block1.relu", [5, 50]),
            ("block1_fc2", "module", "Linear", "block1.fc2", [5, 50]),
            ("block1_downsample", "module", "Linear", "block1.downsample", [5, 50]),
            ("add", "function", "+", None, [5, 50]),
            ("block2_fc1", "module", "Linear", "block2.fc1", [5, 50]),
            ("block2_relu", "module", "ReLU", "block2.relu", [5, 50]),
            ("block2_fc2", "module", "Linear", "block2.fc2", [5, 50]),
            ("add_1", "function", "+", None, [5, 50]),
            ("output", "output", "output", None, [5, 50]),
        ],
        [
            ("input_1", "block1_fc1", [5, 10]),
            ("block1_fc1", "block1_relu", [5, 50]),
            ("block1_relu", "block1_fc2", [5, 50]),
            ("input_1", "block1_downsample", [5, 10]),
            ("block1_fc2", "add", [5, 50]),
            ("block1_downsample", "add", [5, 50]),
            ("add", "block2_fc1", [5, 50]),
            ("block2_fc1", "block2_relu", [5, 50]),
            ("block2_relu", "block2_fc2", [5, 50]),
            # block2 has no downsample: its input itself is the skip path
            ("block2_fc2", "add_1", [5, 50]),
            ("add", "add_1", [5, 50]),
            ("add_1", "output", [5, 50]),
        ],
    ),
    "lenet5": (
        "fx",
        [
            ("input_1", "input", "input", None, [1, 1, 28, 28]),
            ("_0", "module", "Conv2d", "0", [1, 6, 28, 28]),
            ("_1", "module", "Tanh", "1", [1, 6, 28, 28]),
            ("_2", "module", "AvgPool2d", "2", [1, 6, 14, 14]),
            ("_3", "module", "Conv2d", "3", [1, 16, 10, 10]),
            ("_4", "module", "Tanh", "4", [1, 16, 10, 10]),
            ("_5", "module", "AvgPool2d", "5", [1, 16, 5, 5]),
            ("_6", "module", "Flatten", "6", [1, 400]),
            ("_7", "module", "Linear", "7", [1, 120]),
            ("_8", "module", "Tanh", "8", [1, 120]),
            ("_9", "module", "Linear", "9", [1, 84]),
            ("_10", "module", "Tanh", "10", [1, 84]),
            ("_11", "module", "Linear", "11", [1, 10]),
            ("output", "output", "output", None, [1, 10]),
        ],
        chain(
            ["input_1", *[f"_{i}" for i in range(12)], "output"],
            [
                [1, 1, 28, 28],
                [1, 6, 28, 28],
                [1, 6, 28, 28],
                [1, 6, 14, 14],
                [1, 16, 10, 10],
                [1, 16, 10, 10],
                [1, 16, 5, 5],
                [1, 400],
                [1, 120],
                [1, 120],
                [1, 84],
                [1, 84],
                [1, 10],
            ],
        ),
    ),
    "small-cnn-batchnorm": (
        "fx",
        [
            ("input_1", "input", "input", None, [2, 3, 32, 32]),
            ("_0", "module", "Conv2d", "0", [2, 16, 32, 32]),
            ("_1", "module", "BatchNorm2d", "1", [2, 16, 32, 32]),
            ("_2", "module", "ReLU", "2", [2, 16, 32, 32]),
            ("_3", "module", "MaxPool2d", "3", [2, 16, 16, 16]),
            ("_4", "module", "Conv2d", "4", [2, 32, 16, 16]),
            ("_5", "module", "BatchNorm2d", "5", [2, 32, 16, 16]),
            ("_6", "module", "ReLU", "6", [2, 32, 16, 16]),
            ("_7", "module", "AdaptiveAvgPool2d", "7", [2, 32, 1, 1]),
            ("_8", "module", "Flatten", "8", [2, 32]),
            ("_9", "module", "Linear", "9", [2, 10]),
            ("output", "output", "output", None, [2, 10]),
        ],
        chain(
            ["input_1", *[f"_{i}" for i in range(10)], "output"],
            [
                [2, 3, 32, 32],
                [2, 16, 32, 32],
                [2, 16, 32, 32],
                [2, 16, 32, 32],
                [2, 16, 16, 16],
                [2, 32, 16, 16],
                [2, 32, 16, 16],
                [2, 32, 16, 16],
                [2, 32, 1, 1],
                [2, 32],
                [2, 10],
            ],
        ),
    ),
    "resnet-basic-block": (
        "fx",
        [
            ("input_1", "input", "input", None, [1, 16, 8, 8]),
            ("block_body_0", "module", "Conv2d", "block.body.0", [1, 16, 8, 8]),
            ("block_body_1", "module", "BatchNorm2d", "block.body.1", [1, 16, 8, 8]),
            ("block_body_2", "module", "ReLU", "block.body.2", [1, 16, 8, 8]),
            ("block_body_3", "module", "Conv2d", "block.body.3", [1, 16, 8, 8]),
            ("block_body_4", "module", "BatchNorm2d", "block.body.4", [1, 16, 8, 8]),
            ("add", "function", "+", None, [1, 16, 8, 8]),
            ("relu", "module", "ReLU", "relu", [1, 16, 8, 8]),
            ("output", "output", "output", None, [1, 16, 8, 8]),
        ],
        [
            *chain(
                ["input_1", "block_body_0", "block_body_1", "block_body_2", "block_body_3", "block_body_4", "add"],
                [[1, 16, 8, 8]] * 6,
            ),
            ("input_1", "add", [1, 16, 8, 8]),  # the identity shortcut
            ("add", "relu", [1, 16, 8, 8]),
            ("relu", "output", [1, 16, 8, 8]),
        ],
    ),
    # a text's token ids (1, L) into an Embedding, then the encoder layer (recorded: fx cannot trace it)
    "text-self-attention": (
        "hooks",
        [
            ("input", "input", "input", None, [1, 6]),
            ("embed", "module", "Embedding", "embed", [1, 6, 16]),
            ("encoder_self_attn", "module", "MultiheadAttention", "encoder.self_attn", [1, 6, 16]),
            ("encoder_dropout1", "module", "Dropout", "encoder.dropout1", [1, 6, 16]),
            ("add", "method", "+", None, [1, 6, 16]),
            ("encoder_norm1", "module", "LayerNorm", "encoder.norm1", [1, 6, 16]),
            ("encoder_linear1", "module", "Linear", "encoder.linear1", [1, 6, 32]),
            ("relu", "function", "relu", None, [1, 6, 32]),
            ("encoder_dropout", "module", "Dropout", "encoder.dropout", [1, 6, 32]),
            ("encoder_linear2", "module", "Linear", "encoder.linear2", [1, 6, 16]),
            ("encoder_dropout2", "module", "Dropout", "encoder.dropout2", [1, 6, 16]),
            ("add_1", "method", "+", None, [1, 6, 16]),
            ("encoder_norm2", "module", "LayerNorm", "encoder.norm2", [1, 6, 16]),
            ("output", "output", "output", None, [1, 6, 16]),
        ],
        [
            ("input", "embed", [1, 6]),
            ("embed", "encoder_self_attn", [1, 6, 16]),
            ("encoder_self_attn", "encoder_dropout1", [1, 6, 16]),
            ("embed", "add", [1, 6, 16]),
            ("encoder_dropout1", "add", [1, 6, 16]),
            ("add", "encoder_norm1", [1, 6, 16]),
            ("encoder_norm1", "encoder_linear1", [1, 6, 16]),
            ("encoder_linear1", "relu", [1, 6, 32]),
            ("relu", "encoder_dropout", [1, 6, 32]),
            ("encoder_dropout", "encoder_linear2", [1, 6, 32]),
            ("encoder_linear2", "encoder_dropout2", [1, 6, 16]),
            ("encoder_norm1", "add_1", [1, 6, 16]),
            ("encoder_dropout2", "add_1", [1, 6, 16]),
            ("add_1", "encoder_norm2", [1, 6, 16]),
            ("encoder_norm2", "output", [1, 6, 16]),
        ],
    ),
    # fx cannot trace its forward (it branches on tensor properties): recorded while it runs on meta tensors
    "tiny-transformer-encoder": (
        "hooks",
        [
            ("input", "input", "input", None, [2, 5, 16]),
            ("self_attn", "module", "MultiheadAttention", "self_attn", [2, 5, 16]),
            ("dropout1", "module", "Dropout", "dropout1", [2, 5, 16]),
            ("add", "method", "+", None, [2, 5, 16]),
            ("norm1", "module", "LayerNorm", "norm1", [2, 5, 16]),
            ("linear1", "module", "Linear", "linear1", [2, 5, 32]),
            ("relu", "function", "relu", None, [2, 5, 32]),
            ("dropout", "module", "Dropout", "dropout", [2, 5, 32]),
            ("linear2", "module", "Linear", "linear2", [2, 5, 16]),
            ("dropout2", "module", "Dropout", "dropout2", [2, 5, 16]),
            ("add_1", "method", "+", None, [2, 5, 16]),
            ("norm2", "module", "LayerNorm", "norm2", [2, 5, 16]),
            ("output", "output", "output", None, [2, 5, 16]),
        ],
        [
            ("input", "self_attn", [2, 5, 16]),
            ("self_attn", "dropout1", [2, 5, 16]),
            ("input", "add", [2, 5, 16]),
            ("dropout1", "add", [2, 5, 16]),  # first residual
            ("add", "norm1", [2, 5, 16]),
            ("norm1", "linear1", [2, 5, 16]),
            ("linear1", "relu", [2, 5, 32]),
            ("relu", "dropout", [2, 5, 32]),
            ("dropout", "linear2", [2, 5, 32]),
            ("linear2", "dropout2", [2, 5, 16]),
            ("norm1", "add_1", [2, 5, 16]),
            ("dropout2", "add_1", [2, 5, 16]),  # second residual
            ("add_1", "norm2", [2, 5, 16]),
            ("norm2", "output", [2, 5, 16]),
        ],
    ),
}


def test_every_preset_has_an_expected_graph():
    assert set(EXPECTED) == set(REQUESTS)


@pytest.mark.parametrize("endpoint", ["/api/run", "/api/shape"])
@pytest.mark.parametrize("preset", list(EXPECTED))
def test_preset_graphs(api, preset, endpoint):
    r = api.post(endpoint, json=REQUESTS[preset])
    assert r.status_code == 200, r.text
    graph = r.json()["graph"]
    method, nodes, edges = EXPECTED[preset]
    assert graph["method"] == method
    assert compact(graph) == (nodes, edges)
    if method != "fx":
        assert graph["note"].startswith("torch.fx could not trace")


@pytest.mark.parametrize("preset", list(EXPECTED))
def test_module_nodes_link_to_trace_entries(api, preset):
    body = api.post("/api/run", json=REQUESTS[preset]).json()
    trace = {e["path"]: e for e in body["trace"]}
    for node in body["graph"]["nodes"]:
        if node["op"] == "module":
            entry = trace[node["path"]]
            # a graph node is a leaf of the trace, or attention (its out_proj is read, never called)
            assert entry["type"] == node["type"] and (entry["leaf"] or node["type"] == "MultiheadAttention")
            assert entry["output_shape"] == node["shape"]


def test_a_single_layer_is_one_node(api):
    body = api.post(
        "/api/shape",
        json={"layer": {"type": "LSTM", "input_size": 3, "hidden_size": 4}, "inputs": [{"shape": [2, 5, 3]}]},
    ).json()
    graph = body["graph"]
    assert graph["method"] == "module"
    assert compact(graph) == (
        [
            ("input", "input", "input", None, [2, 5, 3]),
            ("layer", "module", "LSTM", "", None),
            ("output", "output", "output", None, None),
        ],
        [
            ("input", "layer", [2, 5, 3]),
            ("layer", "output", [2, 5, 4]),
            ("layer", "output", [1, 5, 4]),
            ("layer", "output", [1, 5, 4]),
        ],
    )
    assert graph["nodes"][1]["shapes"] == [[2, 5, 4], [1, 5, 4], [1, 5, 4]]


def test_plugins_get_graphs_for_free(settings):
    """The example plugin GatedLinear, (x·Wᵀ + b) ⊙ σ(x·Vᵀ + c), is traced like any other module."""
    registry = default_registry(("examples/my_layers.py",))
    example = registry.get("GatedLinear").example
    graph = service.shape(registry, example, settings)["graph"]
    assert graph["method"] == "fx"
    ops = [(n["op"], n["label"], n["path"], n["shape"]) for n in graph["nodes"]]
    assert ops[0] == ("input", "x", None, [2, 8]) and ops[-1] == ("output", "output", None, [2, 4])
    assert ("module", "Linear", "value", [2, 4]) in ops and ("module", "Linear", "gate", [2, 4]) in ops
    assert any(op in ("function", "method") and label == "×" for op, label, _, _ in ops)


def test_nodes_name_the_modules_whose_forward_made_them(api):
    graph = api.post("/api/shape", json=REQUESTS["resnet-basic-block"]).json()["graph"]
    scopes = {n["id"]: [(s["path"], s["type"]) for s in n["scope"]] for n in graph["nodes"]}
    assert scopes["block_body_0"] == [("block", "Residual"), ("block.body", "Sequential")]
    assert scopes["add"] == [("block", "Residual")]  # the ⊕ is Residual.forward's own addition
    assert scopes["relu"] == [] and scopes["input_1"] == []
    graph = api.post("/api/shape", json=REQUESTS["tiny-transformer-encoder"]).json()["graph"]
    assert all(n["scope"] == [] for n in graph["nodes"])  # the root's own forward


def test_module_nodes_carry_the_config_read_back_from_the_module(api):
    graph = api.post("/api/shape", json=REQUESTS["tutorial-residual-block"]).json()["graph"]
    configs = {n["id"]: n["config"] for n in graph["nodes"] if n["op"] == "module"}
    assert configs == {
        "fc1": {"type": "Linear", "in_features": 10, "out_features": 20},
        "relu": {"type": "ReLU"},
        "fc2": {"type": "Linear", "in_features": 20, "out_features": 20},
        "downsample": {"type": "Linear", "in_features": 10, "out_features": 20},
    }
    graph = api.post("/api/shape", json=REQUESTS["tiny-transformer-encoder"]).json()["graph"]
    configs = {n["id"]: n["config"] for n in graph["nodes"] if n["op"] == "module"}
    assert configs["linear1"] == {"type": "Linear", "in_features": 16, "out_features": 32}
    assert configs["norm1"] == {"type": "LayerNorm", "normalized_shape": [16]}
    # each config runs on the input the module received, giving the shape the graph reports
    trace = {e["path"]: e for e in api.post("/api/run", json=REQUESTS["tiny-transformer-encoder"]).json()["trace"]}
    for node in graph["nodes"]:
        if node["op"] == "module" and node["config"]:
            entry = trace[node["path"]]
            inputs = [{"shape": s} for s in entry["input_shapes"]]
            r = api.post("/api/shape", json={"layer": node["config"], "inputs": inputs})
            assert r.status_code == 200, (node["id"], r.text)
            assert r.json()["output_shapes"][0] == node["shape"]


def test_graphs_are_kept_per_network_and_shape(monkeypatch):
    # the cache lives in each worker process: exercise it in this one, through the service
    monkeypatch.setattr(dataflow, "_CACHE", OrderedDict())  # earlier tests may have filled it
    registry, settings = service.default_registry(), service.Settings()

    def shape(body):
        return service.shape(registry, body, settings)["graph"]

    body = REQUESTS["tutorial-residual-block"]
    first = shape(body)
    size = len(dataflow._CACHE)
    assert size == 1
    again = shape({**body, "seed": 7})
    assert again == first and len(dataflow._CACHE) == size  # the seed does not change the graph
    other = shape({**body, "inputs": [{"shape": [3, 7, 10]}]})
    assert other["nodes"][0]["shape"] == [3, 7, 10] and len(dataflow._CACHE) == size + 1
    wider = shape({**body, "layer": {**body["layer"], "out_features": 30}})
    assert wider["nodes"][-1]["shape"] == [5, 30]


def test_far_past_the_memory_limit_the_graph_still_has_its_shapes(api):
    """/api/shape answers absurd sizes from the formula; the graph's shapes come from a meta pass over the
    traced graph, which allocates nothing."""
    body = {
        "layer": {
            "type": "Sequential",
            "layers": [{"type": "Linear", "in_features": 200_000, "out_features": 200_000}, {"type": "ReLU"}],
        },
        "inputs": [{"shape": [4, 200_000]}],
    }
    r = api.post("/api/shape", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "formula"
    graph = r.json()["graph"]
    assert graph["method"] == "fx"
    assert [(n["id"], n["shape"]) for n in graph["nodes"]] == [
        ("input_1", [4, 200_000]),
        ("_0", [4, 200_000]),
        ("_1", [4, 200_000]),
        ("output", [4, 200_000]),
    ]


def test_a_long_recurrent_network_is_traced_without_a_meta_pass(api):
    """Recurrent meta kernels take time that grows with the sequence: until the real run, such a graph is
    answered from tracing alone (no shapes), and the shapes from the formulas."""
    body = {
        "layer": {
            "type": "Sequential",
            "layers": [{"type": "LSTM", "input_size": 8, "hidden_size": 8, "num_layers": 64}],
        },
        "inputs": [{"shape": [100_000, 1, 8]}],
    }
    r = api.post("/api/shape", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["source"] == "formula" and d["output_shapes"][0] == [100_000, 1, 8]
    assert [n["shape"] for n in d["graph"]["nodes"]] == [None] * len(d["graph"]["nodes"])
