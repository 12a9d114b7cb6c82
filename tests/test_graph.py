"""Graph networks: every operation's shape rule against torch, the classic patterns (Inception, DenseNet, U-Net,
ViT, LSTM) through the API, errors at the node where they happen, drill-down, receptive fields and the script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import ShapeMismatch
from app.core.graphs import wire
from app.core.networks.ops import OPS
from app.core.networks.tree import build, predict, resolve
from tests.test_receptive_field import brute_force


def conv(cin, cout, k, **kw):
    return {"type": "Conv2d", "in_channels": cin, "out_channels": cout, "kernel_size": k, **kw}


def graph(nodes, outputs=None, inputs=("x",)):
    g = {"type": "Graph", "inputs": list(inputs), "nodes": nodes}
    if outputs is not None:
        g["outputs"] = outputs
    return g


def op(name, op_name, *args, **kwargs):
    node = {"name": name, "op": op_name, "args": list(args)}
    if kwargs:
        node["kwargs"] = kwargs
    return node


def mod(name, config, *args):
    return {"name": name, "module": config, "args": list(args)}


def predicted_and_real(registry, layer, shapes):
    """(predicted output shapes, real output shapes) of a graph config on random inputs."""
    node = resolve(registry, layer)
    with torch.device("meta"):
        meta = build(node)
    dims = predict(node, meta, [tuple(s) for s in shapes])
    torch.manual_seed(0)
    module = build(node).eval()
    with torch.no_grad():
        out = module(*[torch.randn(s) for s in shapes])
    leaves = []

    def walk(v):
        if isinstance(v, torch.Tensor):
            leaves.append(list(v.shape))
        elif isinstance(v, (tuple, list)):
            for item in v:
                walk(item)

    walk(out)
    return [[d.expr.int_value() for d in ds] for ds in dims], leaves


# One graph per operation of the table (several ops share a graph): the rule's shape equals torch's.
OP_CASES = {
    "arithmetic": (
        [
            op("a", "add", "x", "y"),
            op("s", "sub", "a", 2.0),
            op("m", "mul", "s", "y"),
            op("d", "div", "m", 3),
            op("n", "neg", "d"),
            op("size", "size", "x", 0),
            op("half", "floordiv", "size", 2),
            op("big", "mul", "half", 3),
            op("r", "reshape", "n", ["big", -1]),
        ],
        "r",
        [[4, 3, 5], [3, 1]],
    ),
    "matmul and bmm": (
        [
            op("t", "transpose", "x", 1, 2),
            op("mm", "matmul", "x", "t"),
            op("b", "bmm", "mm", "x"),
            op("v", "matmul", "b", "y"),
        ],
        "v",
        [[2, 3, 4], [4]],
    ),
    "joining and splitting": (
        [
            op("c", "cat", ["x", "x", "y"], dim=1),
            op("st", "stack", ["c", "c"], dim=-1),
            op("ch", "chunk", "st", 3, dim=1),
            op("c0", "getitem", "ch", 0),
            op("sp", "split", "c0", [1, 2], dim=1),
            op("s1", "getitem", "sp", 1),
            op("sp2", "split", "x", 2, dim=1),
            op("last", "getitem", "sp2", -1),
        ],
        ["s1", "last"],
        [[2, 3, 4], [2, 1, 4]],
    ),
    "reshaping": (
        [
            op("f", "flatten", "x", start_dim=1),
            op("v", "view", "f", [2, 3, -1]),
            op("p", "permute", "v", [2, 0, 1]),
            op("c", "contiguous", "p"),
            op("u", "unsqueeze", "c", -1),
            op("e", "expand", "u", [5, -1, -1, -1, 2]),
            op("q", "squeeze", "y"),
            op("q1", "squeeze", "y", dim=1),
        ],
        ["e", "q", "q1"],
        [[2, 3, 2, 2], [4, 1, 3, 1]],
    ),
    "indexing": (
        [
            op("a", "getitem", "x", [{"slice": [None, None, None]}, 0]),
            op("b", "getitem", "x", [0, {"slice": [1, None, 2]}, None, -1]),
            op("c", "getitem", "x", ["...", {"slice": [None, 2]}]),
            op("d", "getitem", "x", -1),
            op("n", "size", "x", -1),
            op("e", "getitem", "x", [{"slice": [None, None]}, {"slice": [None, None]}, {"slice": [None, "n"]}]),
            op("shape", "size", "x"),
            op("h", "getitem", "shape", 1),
            op("r", "reshape", "x", ["h", -1]),
        ],
        ["a", "b", "c", "d", "e", "r"],
        [[2, 5, 3]],
    ),
    "reductions": (
        [
            op("m", "mean", "x", dim=[1, 2]),
            op("s", "sum", "x", dim=-1, keepdim=True),
            op("a", "amax", "x", dim=1),
            op("all", "mean", "x"),
        ],
        ["m", "s", "a", "all"],
        [[2, 3, 4]],
    ),
    "activations": (
        [
            op("a1", "relu", "x"),
            op("a2", "relu6", "a1"),
            op("a3", "elu", "a2", alpha=0.5),
            op("a4", "selu", "a3"),
            op("a5", "celu", "a4"),
            op("a6", "leaky_relu", "a5", 0.2),
            op("a7", "gelu", "a6", approximate="tanh"),
            op("a8", "silu", "a7"),
            op("a9", "mish", "a8"),
            op("a10", "hardswish", "a9"),
            op("a11", "hardsigmoid", "a10"),
            op("a12", "hardtanh", "a11"),
            op("a13", "softplus", "a12"),
            op("a14", "sigmoid", "a13"),
            op("a15", "tanh", "a14"),
            op("a16", "softmax", "a15", dim=1),
            op("a17", "log_softmax", "a16", dim=-1),
            op("a18", "dropout", "a17", p=0.3),
        ],
        "a18",
        [[2, 3, 4]],
    ),
    "pooling 1d and 3d": (
        [
            op("m1", "max_pool1d", "x", 2),
            op("a1", "avg_pool1d", "m1", 2, stride=1, padding=1),
            op("ad1", "adaptive_avg_pool1d", "a1", 3),
            op("am1", "adaptive_max_pool1d", "a1", 2),
            op("u", "unsqueeze", "y", 0),
            op("m3", "max_pool3d", "u", 2, ceil_mode=True),
            op("a3", "avg_pool3d", "u", [1, 2, 2]),
            op("ad3", "adaptive_avg_pool3d", "u", [1, 2, 2]),
            op("am3", "adaptive_max_pool3d", "u", 1),
        ],
        ["ad1", "am1", "m3", "a3", "ad3", "am3"],
        [[2, 3, 9], [3, 5, 6, 7]],
    ),
    "pooling 2d, padding, interpolation": (
        [
            op("m", "max_pool2d", "x", 3, stride=2, padding=1, dilation=1),
            op("a", "avg_pool2d", "m", 2, count_include_pad=False),
            op("ad", "adaptive_avg_pool2d", "x", [3, None]),
            op("am", "adaptive_max_pool2d", "x", 2),
            op("p", "pad", "x", [1, 2, 0, 3]),
            op("pr", "pad", "x", [1, 1, 1, 1], mode="reflect"),
            op("i", "interpolate", "x", size=[5, 7], mode="bilinear", align_corners=False),
            op("i2", "interpolate", "x", scale_factor=1.5),
        ],
        ["a", "ad", "am", "p", "pr", "i", "i2"],
        [[2, 3, 9, 10]],
    ),
}


def test_every_operation_has_a_case():
    used = {n["op"] for nodes, _, _ in OP_CASES.values() for n in nodes}
    assert used == set(OPS)


@pytest.mark.parametrize("case", list(OP_CASES))
def test_operation_rules_equal_torch(registry, case):
    nodes, outputs, shapes = OP_CASES[case]
    inputs = ["x", "y"][: len(shapes)]
    predicted, real = predicted_and_real(registry, graph(nodes, outputs, inputs), shapes)
    assert predicted == real


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    other=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    dim=st.integers(-4, 3),
    start=st.integers(-5, 5) | st.none(),
    stop=st.integers(-5, 5) | st.none(),
    step=st.integers(1, 3) | st.none(),
)
def test_rules_equal_torch_on_random_shapes(registry, shape, other, dim, start, stop, step):
    """Broadcasting, cat, flatten, unsqueeze, getitem with slices, reductions: the rule is torch's, and where
    torch refuses, the rule refuses too (with a ShapeMismatch naming the node)."""
    x, y = torch.randn(shape), torch.randn(other)
    cases = [
        ([op("o", "add", "x", "y")], lambda: x + y),
        ([op("o", "cat", ["x", "y"], dim=dim)], lambda: torch.cat([x, y], dim=dim)),
        ([op("o", "flatten", "x", start_dim=dim)], lambda: torch.flatten(x, start_dim=dim)),
        ([op("o", "unsqueeze", "x", dim)], lambda: x.unsqueeze(dim)),
        ([op("o", "getitem", "x", [{"slice": [start, stop, step]}, 0])], lambda: x[start:stop:step, 0]),
        ([op("o", "sum", "x", dim=dim, keepdim=True)], lambda: x.sum(dim=dim, keepdim=True)),
        ([op("o", "transpose", "x", dim, 0)], lambda: x.transpose(dim, 0)),
        ([op("o", "matmul", "x", "y")], lambda: x @ y),
    ]
    for nodes, real in cases:
        layer = graph(nodes, "o", ["x", "y"])
        try:
            want = list(real().shape)
        except (RuntimeError, IndexError):
            want = None
        try:
            got, _ = predicted_and_real(registry, layer, [shape, other])
        except ShapeMismatch as exc:
            assert want is None, (nodes, shape, other, exc.detail)
            assert exc.extra["path"] == "o" and exc.field == "layer.nodes[0]"
            continue
        assert got == [want], (nodes, shape, other)


INCEPTION = {
    "layer": graph(
        [
            mod("stem", conv(3, 8, 3, padding=1), "x"),
            op("act", "relu", "stem"),
            mod("b1", conv(8, 4, 1), "act"),
            mod(
                "b3",
                {"type": "Sequential", "layers": [conv(8, 4, 1), {"type": "ReLU"}, conv(4, 6, 3, padding=1)]},
                "act",
            ),
            mod(
                "b5",
                {"type": "Sequential", "layers": [conv(8, 2, 1), {"type": "ReLU"}, conv(2, 3, 5, padding=2)]},
                "act",
            ),
            op("pool", "max_pool2d", "act", 3, stride=1, padding=1),
            mod("bp", conv(8, 3, 1), "pool"),
            op("cat", "cat", ["b1", "b3", "b5", "bp"], dim=1),
        ]
    ),
    "inputs": [{"shape": [2, 3, 12, 12]}],
    "seed": 3,
}


def test_inception_block_shapes_trace_and_graph(api):
    shape = api.post("/api/shape?detail=shapes", json=INCEPTION).json()
    assert shape["source"] == "formula" and shape["output_shape"] == [2, 16, 12, 12]
    assert [e["path"] for e in shape["trace"]] == [
        "stem", "b1", "b3", "b3.0", "b3.1", "b3.2", "b5", "b5.0", "b5.1", "b5.2", "bp",
    ]  # fmt: skip
    run = api.post("/api/run", json=INCEPTION).json()
    assert run["shape_check"] is True and run["output"]["shape"] == [2, 16, 12, 12]
    # the real run's trace is the predicted one, entry for entry
    assert [(e["path"], e["output_shape"]) for e in run["trace"]] == [
        (e["path"], e["output_shape"]) for e in shape["trace"]
    ]
    assert run["totals"]["param_count"] == run["param_count"] == shape["param_count"]
    full = api.post("/api/shape", json=INCEPTION).json()
    nodes = {n["id"]: n for n in full["graph"]["nodes"]}
    cat = next(n for n in full["graph"]["nodes"] if n["label"] == "cat")
    assert cat["shape"] == [2, 16, 12, 12]
    into = sorted(e["shape"][1] for e in full["graph"]["edges"] if e["to"] == cat["id"])
    assert into == [3, 3, 4, 6]  # one edge per concatenated branch, with its channels
    assert nodes["b1"]["path"] == "b1" and nodes["b1"]["type"] == "Conv2d"


def test_densenet_concat(api):
    # two dense layers: each sees the concatenation of every earlier feature map
    layer = graph(
        [
            mod("bn1", {"type": "BatchNorm2d", "num_features": 4}, "x"),
            op("r1", "relu", "bn1"),
            mod("c1", conv(4, 2, 3, padding=1), "r1"),
            op("cat1", "cat", ["x", "c1"], dim=1),
            mod("bn2", {"type": "BatchNorm2d", "num_features": 6}, "cat1"),
            op("r2", "relu", "bn2"),
            mod("c2", conv(6, 2, 3, padding=1), "r2"),
            op("cat2", "cat", ["cat1", "c2"], dim=1),
        ]
    )
    req = {"layer": layer, "inputs": [{"shape": [1, 4, 6, 6]}]}
    run = api.post("/api/run", json=req).json()
    assert run["output"]["shape"] == [1, 8, 6, 6] and run["shape_check"] is True
    assert run["param_count"] == 8 + 4 * 2 * 9 + 2 + 12 + 6 * 2 * 9 + 2


def test_unet_skip_concat(api):
    layer = graph(
        [
            mod("enc", conv(1, 4, 3, padding=1), "x"),
            op("down", "max_pool2d", "enc", 2),
            mod("mid", conv(4, 8, 3, padding=1), "down"),
            mod(
                "up",
                {"type": "ConvTranspose2d", "in_channels": 8, "out_channels": 4, "kernel_size": 2, "stride": 2},
                "mid",
            ),
            op("skip", "cat", ["enc", "up"], dim=1),
            mod("dec", conv(8, 2, 1), "skip"),
            op("big", "interpolate", "dec", scale_factor=2.0, mode="bilinear", align_corners=False),
        ]
    )
    req = {"layer": layer, "inputs": [{"shape": [1, 1, 8, 8]}]}
    shape = api.post("/api/shape?detail=shapes", json=req).json()
    assert shape["output_shape"] == [1, 2, 16, 16] and shape["source"] == "formula"
    run = api.post("/api/run", json=req).json()
    assert run["shape_check"] is True


VIT = {
    "layer": graph(
        [
            mod("patch", conv(3, 8, 4, stride=4), "x"),
            op("tokens", "flatten", "patch", 2),
            op("seq", "transpose", "tokens", 1, 2),
            {"name": "cls_token", "parameter": {"shape": [1, 1, 8], "init": "zeros"}},
            {"name": "pos", "parameter": {"shape": [1, 5, 8], "init": "randn"}},
            op("n", "size", "x", 0),
            op("cls", "expand", "cls_token", ["n", -1, -1]),
            op("joined", "cat", ["cls", "seq"], dim=1),
            op("embedded", "add", "joined", "pos"),
            mod(
                "encoder",
                {
                    "type": "TransformerEncoderLayer",
                    "d_model": 8,
                    "nhead": 2,
                    "dim_feedforward": 16,
                    "batch_first": True,
                },
                "embedded",
            ),
            op("first", "getitem", "encoder", [{"slice": [None, None, None]}, 0]),
            mod("head", {"type": "Linear", "in_features": 8, "out_features": 3}, "first"),
        ]
    ),
    "inputs": [{"shape": [2, 3, 8, 8]}],
    "seed": 1,
}


def test_vit_class_token_and_position_embedding(api):
    shape = api.post("/api/shape?detail=shapes", json=VIT).json()
    assert shape["output_shape"] == [2, 3]
    params = {p["name"]: p["shape"] for p in shape["params"]}
    assert params["cls_token"] == [1, 1, 8] and params["pos"] == [1, 5, 8]
    run = api.post("/api/run", json={**VIT, "train": False}).json()
    assert run["shape_check"] is True and run["output"]["shape"] == [2, 3]
    cls = next(p for p in run["params"] if p["name"] == "cls_token")
    assert cls["summary"]["max"] == cls["summary"]["min"] == 0  # "init": "zeros"


def test_lstm_tuple_output_and_last_step(api):
    layer = graph(
        [
            mod("lstm", {"type": "LSTM", "input_size": 4, "hidden_size": 6, "batch_first": True}, "x"),
            op("seq", "getitem", "lstm", 0),
            op("state", "getitem", "lstm", 1),
            op("h", "getitem", "state", 0),
            op("last", "getitem", "seq", [{"slice": [None, None, None]}, -1]),
            mod("fc", {"type": "Linear", "in_features": 6, "out_features": 2}, "last"),
        ],
        outputs=["fc", "h"],
    )
    req = {"layer": layer, "inputs": [{"shape": [3, 5, 4]}]}
    shape = api.post("/api/shape?detail=shapes", json=req).json()
    assert shape["output_shapes"] == [[3, 2], [1, 3, 6]] and shape["output_names"] == ["fc", "h"]
    run = api.post("/api/run", json=req).json()
    assert run["shape_check"] is True
    # a layer called with the whole tuple is refused at that node
    bad = graph(
        [mod("lstm", {"type": "LSTM", "input_size": 4, "hidden_size": 6}, "x"), mod("fc", {"type": "ReLU"}, "lstm")]
    )
    r = api.post("/api/shape", json={"layer": bad, "inputs": [{"shape": [3, 5, 4]}]})
    assert r.status_code == 422 and r.json()["path"] == "fc" and "a tuple" in r.json()["detail"]


def test_shape_error_at_the_edge(api):
    layer = graph(
        [
            mod("a", conv(3, 4, 3), "x"),
            mod("b", conv(3, 4, 1), "x"),
            op("join", "cat", ["a", "b"], dim=1),
        ]
    )
    r = api.post("/api/shape", json={"layer": layer, "inputs": [{"shape": [1, 3, 8, 8]}]})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "shape_mismatch" and body["path"] == "join" and body["field"] == "layer.nodes[2]"
    assert "node join (cat)" in body["detail"] and "a (1, 4, 6, 6), b (1, 4, 8, 8)" in body["detail"]
    assert body["input_shapes"] == {"a": [1, 4, 6, 6], "b": [1, 4, 8, 8]}
    assert [e["path"] for e in body["trace"]] == ["a", "b"]  # what ran before the edge
    # a layer that rejects what it receives is named with the node that fed it
    layer = graph([mod("a", conv(3, 4, 3), "x"), mod("b", conv(5, 4, 1), "a")])
    body = api.post("/api/shape", json={"layer": layer, "inputs": [{"shape": [1, 3, 8, 8]}]}).json()
    assert body["path"] == "b" and body["field"] == "layer.nodes[1].module" and "a (1, 4, 6, 6)" in body["detail"]


@pytest.mark.parametrize(
    ("nodes", "field", "words"),
    [
        ([op("o", "nope", "x")], "layer.nodes[0].op", "unknown operation 'nope'"),
        ([op("o", "relu", "y")], "layer.nodes[0].args[0]", "'y' is not an input or a node defined before"),
        ([op("o", "relu", "x"), op("o", "relu", "x")], "layer.nodes[1].name", "used twice"),
        ([op("1o", "relu", "x")], "layer.nodes[0].name", "Python identifier"),
        ([op("o", "cat", "x")], "layer.nodes[0].args[0]", "non-empty list of node names"),
        ([op("o", "relu", "x", bogus=1)], "layer.nodes[0].kwargs", "no argument 'bogus'"),
        ([op("o", "interpolate", "x", mode="magic")], "layer.nodes[0].kwargs.mode", "one of"),
        ([{"name": "p", "parameter": {"shape": [0]}}], "layer.nodes[0].parameter.shape", "positive integers"),
        ([{"name": "m", "module": {"type": "Nope"}, "args": ["x"]}], "layer.nodes[0].module.type", "Unknown layer"),
        ([op("o", "getitem", "x", {"slice": "a"})], "layer.nodes[0].args[1]", "slice"),
    ],
)
def test_bad_configs_name_the_node(api, nodes, field, words):
    r = api.post("/api/shape", json={"layer": graph(nodes), "inputs": [{"shape": [1, 3, 8, 8]}]})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["field"] == field and words in r.json()["detail"]


def test_drill_down_into_a_module_node(api):
    d = api.post("/api/run", json={**INCEPTION, "path": "b3.2"}).json()
    assert d["path"] == "b3.2" and d["type"] == "Conv2d" and d["network_type"] == "Graph"
    assert d["inputs"][0]["shape"] == [2, 4, 12, 12] and d["output"]["shape"] == [2, 6, 12, 12]
    assert d["windows"]["kind"] == "conv"
    ex = api.post("/api/explain", json={**INCEPTION, "path": "b1", "index": [0, 1, 2, 3]}).json()
    assert ex["match"] and ex["input_shapes"] == [[2, 8, 12, 12]]


def test_receptive_field_through_cat_and_add(api, registry):
    layer = graph(
        [
            mod("a", conv(1, 1, 3, padding=1), "x"),
            mod("b", conv(1, 1, 1), "x"),
            op("j", "cat", ["a", "b"], dim=1),
            mod("c", conv(2, 1, 3, padding=1), "j"),
            op("s", "add", "c", "x"),
        ]
    )
    shape = [1, 1, 7, 7]
    moved, _ = brute_force(registry, layer, shape)
    r = api.post("/api/receptive-field", json={"layer": layer, "inputs": [{"shape": shape}], "index": [0, 0, 3, 3]})
    assert r.status_code == 200, r.text
    got = torch.from_numpy(wire.mask(r.json()["input"]))
    flat = 3 * 7 + 3
    assert torch.equal(got, moved[:, flat].reshape(shape))
    assert r.json()["input"]["count"] == 25  # 3x3 then 3x3: 5x5


@pytest.mark.parametrize("req", [INCEPTION, VIT], ids=["inception", "vit"])
def test_script_reproduces_the_numbers(api, req):
    run = api.post("/api/run", json={**req, "train": False}).json()
    code = run["code"]
    assert "class Graph(torch.nn.Module):" in code and "def forward(self, x):" in code
    code = code.replace("print(output)", "import json; print(json.dumps(output.tolist()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    got = torch.tensor(json.loads(done.stdout))
    assert list(got.shape) == run["output"]["shape"]
    if run["output"]["data"] is not None:
        assert torch.allclose(got, torch.tensor(run["output"]["data"]), atol=1e-6)
    summary = run["output"]["summary"]  # the whole tensor, where the response lists only a summary
    assert float(got.mean()) == pytest.approx(summary["mean"], abs=1e-6)
    assert float(got.min()) == pytest.approx(summary["min"], abs=1e-6)
    assert float(got.max()) == pytest.approx(summary["max"], abs=1e-6)


def test_catalog_lists_graph(api):
    layers = {entry["type"]: entry for entry in api.get("/api/layers").json()["layers"]}
    g = layers["Graph"]
    assert g["container"] and g["slots"] == {"nodes": ""}
    example = api.post("/api/run", json=g["example"]).json()
    assert example["shape_check"] is True and example["output"]["shape"] == [1, 8, 8, 8]


def test_dataflow_graph_uses_the_config_names(api):
    """The dataflow view names a Graph config's operation nodes as the config does (not fx's ``relu``/``add``),
    with the operation as their type, the nested containers' layers by module path, and a shape on every edge."""
    layer = graph(
        [
            mod("conv1", conv(3, 8, 3, padding=1), "x"),
            op("act", "relu", "conv1"),
            mod("blk", {"type": "Sequential", "layers": [{"type": "ReLU"}, conv(8, 8, 1)]}, "act"),
            op("total", "add", "blk", "act"),
            op("both", "cat", ["total", "act"], dim=1),
            op("pooled", "max_pool2d", "both", 2),
            op("flat", "flatten", "pooled", start_dim=1),
            op("first", "getitem", "flat", [{"slice": [None, None, None]}, {"slice": [0, 4, None]}]),
        ]
    )
    req = {"layer": layer, "inputs": [{"shape": [1, 3, 8, 8]}]}
    for url in ("/api/shape", "/api/run"):
        g = api.post(url, json=req).json()["graph"]
        nodes = {n["id"]: n for n in g["nodes"]}
        assert list(nodes) == [
            "x",
            "conv1",
            "act",
            "blk_0",
            "blk_1",
            "total",
            "both",
            "pooled",
            "flat",
            "first",
            "output",
        ]
        ops = {n["id"]: n["type"] for n in g["nodes"] if n["op"] in ("function", "method")}
        assert ops == {
            "act": "relu",
            "total": "add",
            "both": "cat",
            "pooled": "max_pool2d",
            "flat": "flatten",
            "first": "getitem",
        }
        assert nodes["blk_1"]["path"] == "blk.1" and nodes["both"]["shape"] == [1, 16, 8, 8]
        assert all(e["shape"] is not None for e in g["edges"]), g["edges"]
        assert {(e["from"], e["to"]) for e in g["edges"]} >= {("blk_1", "total"), ("act", "total"), ("total", "both")}
    # the receptive field answers by those ids too
    r = api.post("/api/receptive-field", json={**req, "node": "total", "index": [0, 0, 4, 4]})
    assert r.status_code == 200, r.text
    assert r.json()["target"]["id"] == "total" and r.json()["input"]["count"] == 3 * 3 * 3  # conv1: 3 channels, 3x3
