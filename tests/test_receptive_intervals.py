"""Structural receptive fields by index propagation (app.core.graphs.intervals) equal autograd's through the
dependency-equivalent twin, node by node: on the presets, on ResNet-18- and ResNet-50-shaped networks written
as Graph configs and as today's Sequential/Residual configs, on operations' edge cases, in training and eval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from app.core.config import Settings
from app.core.graphs import intervals, receptive, wire
from app.core.networks import graph as dataflow
from app.core.presets import CLASSICS, PRESETS
from app.core.running.execute import execute
from app.core.schema import RunRequest


def conv(cin: int, cout: int, k: int, stride: int = 1, **kw: Any) -> dict[str, Any]:
    return {
        "type": "Conv2d",
        "in_channels": cin,
        "out_channels": cout,
        "kernel_size": k,
        "stride": stride,
        "padding": k // 2,
        "bias": False,
        **kw,
    }


def bn(c: int) -> dict[str, Any]:
    return {"type": "BatchNorm2d", "num_features": c}


def resnet_graph(blocks: list[int], bottleneck: bool, width: int = 4, classes: int = 5) -> dict[str, Any]:
    """A ResNet (He et al. 2016) as a Graph config: the torchvision layout (stem 7x7/2 + max pool 3/2, four
    stages, stride on the 3x3 convolution, a 1x1 projection where the shape changes), at a small width."""
    nodes: list[dict[str, Any]] = []

    def mod(name: str, config: dict[str, Any], arg: str) -> str:
        nodes.append({"name": name, "module": config, "args": [arg]})
        return name

    def op(name: str, op_name: str, *args: Any, **kwargs: Any) -> str:
        nodes.append({"name": name, "op": op_name, "args": list(args), "kwargs": kwargs})
        return name

    x = op("relu", "relu", mod("bn1", bn(width), mod("conv1", conv(3, width, 7, 2), "x")))
    x = op("maxpool", "max_pool2d", x, 3, stride=2, padding=1)
    cin, expansion = width, 4 if bottleneck else 1
    for stage, n in enumerate(blocks, 1):
        w = width * 2 ** (stage - 1)
        for b in range(n):
            p, s = f"layer{stage}_{b}", (1 if stage == 1 or b else 2)
            if bottleneck:
                h = op(f"{p}_relu1", "relu", mod(f"{p}_bn1", bn(w), mod(f"{p}_conv1", conv(cin, w, 1), x)))
                h = op(f"{p}_relu2", "relu", mod(f"{p}_bn2", bn(w), mod(f"{p}_conv2", conv(w, w, 3, s), h)))
                h = mod(f"{p}_bn3", bn(w * 4), mod(f"{p}_conv3", conv(w, w * 4, 1), h))
            else:
                h = op(f"{p}_relu1", "relu", mod(f"{p}_bn1", bn(w), mod(f"{p}_conv1", conv(cin, w, 3, s), x)))
                h = mod(f"{p}_bn2", bn(w), mod(f"{p}_conv2", conv(w, w, 3), h))
            short = x
            if s != 1 or cin != w * expansion:
                short = mod(f"{p}_downbn", bn(w * expansion), mod(f"{p}_down", conv(cin, w * expansion, 1, s), x))
            x = op(f"{p}_relu", "relu", op(f"{p}_add", "add", h, short))
            cin = w * expansion
    x = op("flat", "flatten", op("avgpool", "adaptive_avg_pool2d", x, 1), 1)
    mod("fc", {"type": "Linear", "in_features": cin, "out_features": classes}, x)
    return {"type": "Graph", "nodes": nodes}


def resnet_sequential(blocks: list[int], bottleneck: bool, width: int = 4, classes: int = 5) -> dict[str, Any]:
    """The same network as today's Sequential of Residual blocks."""
    layers: list[dict[str, Any]] = [
        conv(3, width, 7, 2),
        bn(width),
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
    ]
    cin, expansion = width, 4 if bottleneck else 1
    for stage, n in enumerate(blocks, 1):
        w = width * 2 ** (stage - 1)
        for b in range(n):
            s = 1 if stage == 1 or b else 2
            if bottleneck:
                body = [conv(cin, w, 1), bn(w), {"type": "ReLU"}, conv(w, w, 3, s), bn(w), {"type": "ReLU"}]
                body += [conv(w, w * 4, 1), bn(w * 4)]
            else:
                body = [conv(cin, w, 3, s), bn(w), {"type": "ReLU"}, conv(w, w, 3), bn(w)]
            short = None
            if s != 1 or cin != w * expansion:
                short = {"type": "Sequential", "layers": [conv(cin, w * expansion, 1, s), bn(w * expansion)]}
            layers += [{"type": "Residual", "body": body, "shortcut": short}, {"type": "ReLU"}]
            cin = w * expansion
    layers += [
        {"type": "AdaptiveAvgPool2d", "output_size": 1},
        {"type": "Flatten"},
        {"type": "Linear", "in_features": cin, "out_features": classes},
    ]
    return {"type": "Sequential", "layers": layers}


def compare(registry, layer: dict[str, Any], shape: list[int], picks: int = 6, train: bool = False, seed: int = 0):
    """For several nodes and elements: propagation's product sets equal autograd's masks on every node that feeds
    the chosen one, and the rules prepared once from the plan's meta module (a kept trace's) give the same
    sets as each layer's rule read from the real module. Returns how many (node, element) pairs were checked."""
    ex = execute(registry, RunRequest(layer=layer, inputs=[{"shape": shape}], train=train, seed=seed), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    ex.plan.meta.train(train)
    kept = dataflow.traced_graph(ex.plan.meta, 1)
    rules = intervals.prepare(kept, ex.plan.meta)
    candidates = [n for n in graph["nodes"] if n["op"] not in ("input", "attribute") and n["shape"]]
    rng = np.random.default_rng(seed)
    chosen = [candidates[-1]] + [candidates[i] for i in rng.choice(len(candidates), picks - 1, replace=False)]
    checked = 0
    for node in chosen:
        target = node["id"]
        index = tuple(int(rng.integers(0, n)) for n in node["shape"])
        sets = receptive.structural_intervals(ex.module, graph, 1, target, index)
        assert sets is not None, f"no index rule on the way to {target}"
        prepared = receptive.structural_intervals(ex.module, graph, 1, target, index, kept, rules)
        assert prepared is not None and prepared.keys() == sets.keys()
        for nid, want in sets.items():
            assert [a.tolist() for a in prepared[nid]] == [a.tolist() for a in want], (target, nid)
        masks = receptive.structural_autograd(ex.module, ex.inputs, target, index, seed)
        feeds = receptive._ancestors(graph, target)
        for nid in feeds:
            if nid not in masks:
                continue
            got = torch.from_numpy(intervals.dense(sets[nid]))
            assert torch.equal(got, masks[nid]), (target, index, nid, int(got.sum()), int(masks[nid].sum()))
            checked += 1
    return checked


@pytest.mark.parametrize("bottleneck", [False, True], ids=["resnet18", "resnet50"])
def test_resnet_graph_fields_equal_autograd(registry, bottleneck):
    blocks = [3, 4, 6, 3] if bottleneck else [2, 2, 2, 2]
    assert compare(registry, resnet_graph(blocks, bottleneck), [1, 3, 64, 64]) > 50


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_resnet_sequential_fields_equal_autograd(registry, train):
    # batch statistics (train) couple a channel's elements across the batch and the image
    assert compare(registry, resnet_sequential([1, 1, 1, 1], True), [2, 3, 48, 40], train=train) > 30


# the text preset's input is token ids: integers, which carry no gradient to compare against
@pytest.mark.parametrize(
    "preset",
    [p for p in PRESETS if p["id"] not in ("tiny-transformer-encoder", "text-self-attention")],
    ids=lambda p: p["id"],
)
def test_presets_fields_equal_autograd(registry, preset):
    req = preset["request"]
    shape = req["inputs"][0]["shape"]
    ex = execute(registry, RunRequest.model_validate({**req, "train": False}), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    if graph["method"] != "fx":
        # a graph recorded with hooks (fx cannot trace it) has no fx nodes to propagate over: autograd answers
        assert (
            receptive.structural_intervals(ex.module, graph, 1, "output", (0,) * len(graph["nodes"][-1]["shape"]))
            is None
        )
        return
    assert compare(registry, req["layer"], shape, picks=4) > 5


OPS_NET = {
    "type": "Graph",
    "nodes": [
        {"name": "a", "module": conv(2, 4, 3, groups=2, dilation=2, padding=2), "args": ["x"]},
        {"name": "b", "module": {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1}, "args": ["x"]},
        {"name": "bu", "op": "interpolate", "args": ["b"], "kwargs": {"scale_factor": 2, "mode": "nearest"}},
        {"name": "j", "op": "cat", "args": [["a", "x"]], "kwargs": {"dim": 1}},
        {"name": "p", "op": "max_pool2d", "args": ["j", 2], "kwargs": {"stride": 2, "ceil_mode": True}},
        {"name": "q", "op": "adaptive_avg_pool2d", "args": ["p", [3, 3]]},
        {"name": "m", "op": "amax", "args": ["q"], "kwargs": {"dim": [2], "keepdim": True}},
        {"name": "s", "op": "mul", "args": ["q", "m"]},
        {"name": "f", "op": "flatten", "args": ["s"], "kwargs": {"start_dim": 1}},
        {"name": "sm", "op": "softmax", "args": ["f"], "kwargs": {"dim": 1}},
    ],
    "outputs": "sm",
}


def test_operation_rules_equal_autograd(registry):
    """Grouped dilated convolution, average and ceil-mode max pooling, cat, adaptive pooling, a reduction,
    broadcasting mul, flatten and softmax — where an operation has no rule (interpolate) nothing is answered."""
    ex = execute(registry, RunRequest(layer=OPS_NET, inputs=[{"shape": [1, 2, 9, 7]}], seed=1), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    assert receptive.structural_intervals(ex.module, graph, 1, "bu", (0, 0, 0, 0)) is None  # interpolate
    for target, index in [("s", (0, 3, 1, 0)), ("sm", (0, 7)), ("q", (0, 5, 2, 1)), ("p", (0, 1, 4, 3))]:
        sets = receptive.structural_intervals(ex.module, graph, 1, target, index)
        masks = receptive.structural_autograd(ex.module, ex.inputs, target, index, 0)
        for nid in receptive._ancestors(graph, target):
            if nid in masks:
                assert torch.equal(torch.from_numpy(intervals.dense(sets[nid])), masks[nid]), (target, nid)


def test_flatten_of_a_partial_set_falls_back(api, registry):
    """A flat run that is not a product of per-dimension sets (average pooling over a flattened image) has no
    product form: autograd answers, exactly, and the answer says so."""
    layer = {
        "type": "Graph",
        "nodes": [
            {"name": "c", "module": conv(1, 2, 3, padding=0), "args": ["x"]},
            {"name": "f", "op": "flatten", "args": ["c"], "kwargs": {"start_dim": 2}},
            {"name": "p", "op": "adaptive_avg_pool1d", "args": ["f", 2]},
        ],
    }
    ex = execute(registry, RunRequest(layer=layer, inputs=[{"shape": [1, 1, 5, 5]}]), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    assert receptive.structural_intervals(ex.module, graph, 1, "p", (0, 1, 0)) is None
    r = api.post("/api/receptive-field", json={"layer": layer, "inputs": [{"shape": [1, 1, 5, 5]}], "index": [0, 1, 0]})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["structural"] == "autograd"
    c = next(n for n in d["nodes"] if n["id"] == "c")
    # output 0 of 2 averages flat positions 0..4 of 9: rows 0 (3) and 1 (2) of channel 1, not a product set
    assert c["count"] == 5 and c["runs"] is None
    assert wire.mask(c)[0][1].astype(int).tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    # their 3x3 windows: rows 0..2 x columns 0..4, and row 3 x columns 0..3
    assert d["input"]["count"] == 3 * 5 + 4


def test_api_answers_without_running(api, registry):
    """effective=false: the structural field from the plan alone (nothing runs), with the runs of each node."""
    layer = resnet_graph([1, 1, 1, 1], True)
    body = {"layer": layer, "inputs": [{"shape": [1, 3, 64, 64]}], "index": [0, 2, 1, 1], "node": "layer2_0_relu"}
    r = api.post("/api/receptive-field", json={**body, "effective": False})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["structural"] == "intervals" and d["target"]["value"] is None  # nothing ran
    full = api.post("/api/receptive-field", json=body).json()
    assert isinstance(full["target"]["value"], float)
    assert full["structural"] == "intervals"
    for a, b in zip(d["nodes"], full["nodes"]):
        assert (a["id"], a["count"], a["runs"], a["grid"], a["bbox"]) == (
            b["id"],
            b["count"],
            b["runs"],
            b["grid"],
            b["bbox"],
        )
        assert a["effective"] is None
    x = d["input"]
    assert x["count"] == 3 * (x["runs"][2][0][1] - x["runs"][2][0][0] + 1) * (
        x["runs"][3][0][1] - x["runs"][3][0][0] + 1
    )
    assert full["input"]["effective"] is not None  # (its count may be 0: a ReLU off at that element)


RESHAPING_NET = {
    "type": "Graph",
    "nodes": [
        {
            "name": "up",
            "module": {
                "type": "ConvTranspose2d",
                "in_channels": 2,
                "out_channels": 4,
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
                "output_padding": 1,
                "groups": 2,
                "dilation": 2,
            },
            "args": ["x"],
        },
        {"name": "t", "op": "transpose", "args": ["up", 2, 3]},
        {"name": "pm", "op": "permute", "args": ["t", [0, 2, 3, 1]]},
        {"name": "u", "op": "unsqueeze", "args": ["pm", 1]},
        {"name": "sq", "op": "squeeze", "args": ["u", 1]},
        {"name": "st", "op": "stack", "args": [["sq", "pm"]], "kwargs": {"dim": 2}},
    ],
}


def test_transposed_convolution_and_reshaping_rules_equal_autograd(registry):
    ex = execute(registry, RunRequest(layer=RESHAPING_NET, inputs=[{"shape": [1, 2, 4, 5]}], seed=2), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    shapes = {n["id"]: n["shape"] for n in graph["nodes"]}
    assert shapes["st"] == [1, 12, 2, 10, 4]
    rng = np.random.default_rng(0)
    for target in ("st", "pm", "up"):
        for _ in range(3):
            index = tuple(int(rng.integers(0, n)) for n in shapes[target])
            sets = receptive.structural_intervals(ex.module, graph, 1, target, index)
            assert sets is not None
            masks = receptive.structural_autograd(ex.module, ex.inputs, target, index, 0)
            for nid in receptive._ancestors(graph, target):
                if nid in masks:
                    got = torch.from_numpy(intervals.dense(sets[nid]))
                    assert torch.equal(got, masks[nid]), (target, index, nid)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (conv(3, 4, 5, 2, dilation=2, padding=3), [2, 3, 11, 9]),
        (
            {"type": "Conv1d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2, "padding": "same"},
            [4, 10],
        ),
        ({"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [1, 2, 8, 7]),
        ({"type": "AvgPool1d", "kernel_size": 2}, [1, 3, 9]),
        ({"type": "AdaptiveAvgPool2d", "output_size": [3, 4]}, [1, 2, 7, 9]),
        ({"type": "ConvTranspose1d", "in_channels": 2, "out_channels": 2, "kernel_size": 4, "stride": 3}, [1, 2, 5]),
        ({"type": "Linear", "in_features": 6, "out_features": 3}, [2, 4, 6]),
        ({"type": "Softmax", "dim": 1}, [2, 5, 3]),
        # no rule of its own: the rules of what its forward calls (matmul with its weights, add its bias)
        ({"type": "BasicLinear", "input_features": 5, "output_features": 3}, [2, 4, 5]),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else "x".join(map(str, v)),
)
def test_single_layers_equal_autograd(registry, layer, shape):
    """A layer on its own (the dataflow view's input → layer → output) answers by the same rules."""
    ex = execute(registry, RunRequest(layer=layer, inputs=[{"shape": shape}], seed=3), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    assert graph["method"] == "module"
    out_shape = next(n for n in graph["nodes"] if n["id"] == "layer")["shape"]
    rng = np.random.default_rng(1)
    for _ in range(4):
        index = tuple(int(rng.integers(0, n)) for n in out_shape)
        sets = receptive.structural_intervals(ex.module, graph, 1, "output", index)
        assert sets is not None
        masks = receptive.structural_autograd(ex.module, ex.inputs, "output", index, 0)
        assert torch.equal(torch.from_numpy(intervals.dense(sets["input"])), masks["input"]), index


CNN_CLASSICS = ["resnet18", "resnet50", "vgg16", "mobilenet-v2", "densenet121", "inception-v3"]


@pytest.mark.parametrize("preset_id", CNN_CLASSICS)
def test_classic_presets_answer_by_index_propagation(api, preset_id):
    """The classic CNNs at their full input size: the structural field of an output element, from the plan
    alone (nothing runs), is the whole input — their receptive fields outgrow 224×224 / 299×299."""
    preset = next(p for p in CLASSICS if p["id"] == preset_id)
    body = {**preset["request"], "index": [0, 7], "effective": False}
    if isinstance(preset["request"]["layer"].get("outputs"), list):
        # a network of two outputs (Inception-v3's logits and auxiliary logits): the field of the logits
        body["node"] = preset["request"]["layer"]["outputs"][0]
    r = api.post("/api/receptive-field", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["structural"] == "intervals"
    shape = preset["request"]["inputs"][0]["shape"]
    assert d["input"]["count"] == d["input"]["numel"] == int(np.prod(shape))
    assert d["input"]["runs"] == [[[0, n - 1]] for n in shape]


@pytest.mark.parametrize("preset_id, size", [("resnet18", 64), ("mobilenet-v2", 64), ("densenet121", 32)])
def test_classic_presets_equal_autograd_on_a_small_input(registry, preset_id, size):
    """Depthwise convolutions (MobileNetV2), dense concatenation (DenseNet-121), the residual stages
    (ResNet-18): propagation equals autograd node by node, on a small input where the early fields do not
    cover it (and autograd through the float64 twin stays quick)."""
    preset = next(p for p in CLASSICS if p["id"] == preset_id)
    assert compare(registry, preset["request"]["layer"], [1, 3, size, size], picks=3) > 10


RULES_NET = {
    "type": "Graph",
    "nodes": [
        {"name": "c", "module": conv(2, 4, 3, padding=0), "args": ["x"]},  # (1, 4, 7, 7)
        {"name": "pd", "op": "pad", "args": ["c", [1, 2, 0, 1]]},  # (1, 4, 8, 10)
        {
            "name": "g",
            "op": "getitem",
            "args": [
                "pd",
                [{"slice": [None, None, None]}, {"slice": [1, 3, 1]}, {"slice": [None, None, 2]}, {"slice": [2, 8, 1]}],
            ],
        },  # (1, 2, 4, 6)
        {"name": "v", "op": "reshape", "args": ["g", [1, 2, 24]]},
        {"name": "tr", "op": "transpose", "args": ["v", 1, 2]},  # (1, 24, 2)
        {"name": "mm", "op": "matmul", "args": ["v", "tr"]},  # (1, 2, 2): a Gram matrix
        {"name": "ch", "op": "chunk", "args": ["mm", 2], "kwargs": {"dim": 2}},
        {"name": "h", "op": "getitem", "args": ["ch", 1]},  # (1, 2, 1)
        {"name": "r", "op": "view", "args": ["h", [1, 2]]},
    ],
    "outputs": "r",
}


def test_indexing_padding_matmul_and_split_rules_equal_autograd(registry):
    """pad, view, basic indexing (ints and stepped slices), matmul, a piece of chunk, reshape: exact rules,
    equal to autograd node by node (issue 18: no fall-back to autograd where a rule is exact)."""
    ex = execute(registry, RunRequest(layer=RULES_NET, inputs=[{"shape": [1, 2, 9, 9]}], seed=4), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    shapes = {n["id"]: n["shape"] for n in graph["nodes"]}
    assert shapes["r"] == [1, 2] and shapes["g"] == [1, 2, 4, 6]
    rng = np.random.default_rng(5)
    checked = 0
    for target in ("r", "mm", "v", "g"):
        for _ in range(3):
            index = tuple(int(rng.integers(0, n)) for n in shapes[target])
            sets = receptive.structural_intervals(ex.module, graph, 1, target, index)
            assert sets is not None, (target, index)
            masks = receptive.structural_autograd(ex.module, ex.inputs, target, index, 0)
            for nid in receptive._ancestors(graph, target):
                if nid in masks and nid in sets:
                    got = torch.from_numpy(intervals.dense(sets[nid]))
                    assert torch.equal(got, masks[nid]), (target, index, nid, int(got.sum()), int(masks[nid].sum()))
                    checked += 1
    assert checked > 30


class _Pooling(torch.nn.MaxPool2d):
    """A plugin's subclass of a torch layer whose name does not end in its dimensions."""


def test_prepare_leaves_a_layer_it_cannot_read_to_each_walk():
    """prepare keeps a rule for each layer it reads, and None (read from the module at each walk, as
    without a kept trace) for a batch norm and for a layer whose settings it cannot read."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), _Pooling(2), torch.nn.ReLU(), torch.nn.Flatten()
    )
    rules = intervals.prepare(dataflow.traced_graph(net, 1), net)
    assert list(rules) == ["0", "1", "2", "3", "4"]
    assert [rules[k] is None for k in rules] == [False, True, True, False, False]
