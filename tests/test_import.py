"""POST /api/import: pasted PyTorch code becomes a config that runs; nothing in it is ever run."""

from __future__ import annotations

import builtins
import gc
import sys
import threading
from pathlib import Path

import pytest

from app.core.errors import LayerExplorerError
from app.core.graphs import importer
from app.core.graphs.importer import MAX_CODE_CHARS, PASTE_NAME, parse_model
from app.core.presets import PRESETS

LENET = """
import torch
from torch import nn

model = nn.Sequential(
    nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
    nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Tanh(),
    nn.Linear(120, 84), nn.Tanh(),
    nn.Linear(84, 10),
)
"""

# the tutorial's networks, spelled as its code spells the layers
TUTORIAL_NET = (
    "nn.Sequential(OrderedDict([('layer1', BasicLinear(input_features=10, output_features=15)), "
    "('layer2', BasicLinear(input_features=15, output_features=20))]))"
)
TUTORIAL_BLOCKS = (
    "torch.nn.Sequential(collections.OrderedDict({'block1': SimpleResidualBlock(10, 50), "
    "'block2': SimpleResidualBlock(in_features=50, out_features=50)}))"
)

PRINTOUT = """Sequential(
  (0): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (2): ReLU(inplace=True)
  (head): Sequential(
    (0): AdaptiveAvgPool2d(output_size=1)
    (1): Flatten(start_dim=1, end_dim=-1)
  )
  (3): Linear(in_features=16, out_features=10, bias=True)
)"""

VALID = {
    "issue example": "nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(864, 10))",
    "lenet5": LENET,
    "tutorial basic linear": "BasicLinear(input_features=10, output_features=5)",
    "tutorial net": TUTORIAL_NET,
    "tutorial residual block": "block = SimpleResidualBlock(in_features=10, out_features=20)",
    "tutorial two blocks": TUTORIAL_BLOCKS,
    "transformer": "nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)",
    "conv1d signal": "nn.Sequential(nn.Conv1d(3, 8, 3, stride=2, dilation=1 + 1), nn.GELU(), nn.Conv1d(8, 4, 1))",
    "lstm": "torch.nn.LSTM(8, 16, num_layers=2, batch_first=True)",
    "printout": PRINTOUT,
    # what the corpus was refused for, one construct each
    "list comprehension": "nn.Sequential(*[nn.ReLU() for _ in range(3)])",
    "comprehension argument": "nn.Conv2d(1, 2, [k for k in (3, 3)])",
    "subscript and variables": "hidden_sizes = [16, 8]\nnn.Sequential(nn.Linear(4, hidden_sizes[0]), nn.Linear(16, hidden_sizes[-1]))",
    "conditional": "nn.Linear(1 if True else 2, 2)",
    "two statements": "x = 1\nnn.Linear(x, 2)",
    "unrelated import": "import os\nimport numpy as np\nnn.Linear(1, 2)",
    "trailing statements": "net = nn.Linear(1, 2)\nnet = net.to('cpu')\nnet.cuda()\nprint(net)",
    "positional inplace": "nn.Sequential(nn.ReLU(True), nn.LeakyReLU(0.2, True))",
    "helper def": "def block(c):\n    return nn.Sequential(nn.Linear(c, c), nn.ReLU())\nmodel = block(4)",
    "literals": "nn.Sequential(nn.Linear(2 ** 4, (64 // 2) % 20 - -1, bias=False), nn.Dropout(p=0.25), "
    "nn.LeakyReLU(negative_slope=-0.01), nn.Linear(13, 1 << 2))",
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_models_round_trip_through_run(api, name):
    r = api.post("/api/import", json={"code": VALID[name]})
    assert r.status_code == 200, r.text
    body = r.json()
    run = api.post("/api/run", json={"layer": body["layer"], "inputs": body["inputs"], "seed": 0})
    assert run.status_code == 200, (name, run.text)


def test_lenet_is_the_preset(api):
    preset = next(p for p in PRESETS if p["id"] == "lenet5")["request"]
    body = api.post("/api/import", json={"code": LENET}).json()
    assert body["layer"] == preset["layer"]
    # 16 * 5 * 5 features after two conv/pool stages: the first square input that fits is 28×28
    assert body["inputs"] == [{"shape": [1, 1, 28, 28]}]


def test_named_children_and_positional_arguments(api):
    body = api.post("/api/import", json={"code": TUTORIAL_BLOCKS}).json()
    assert body["layer"] == {
        "type": "Sequential",
        "layers": [
            {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 50, "name": "block1"},
            {"type": "SimpleResidualBlock", "in_features": 50, "out_features": 50, "name": "block2"},
        ],
    }
    assert body["inputs"] == [{"shape": [5, 10]}]


def test_printout_of_a_sequential(api):
    body = api.post("/api/import", json={"code": PRINTOUT}).json()
    layer = body["layer"]
    assert body["warnings"] == [
        "line 4, column 21: ReLU's inplace is ignored (it changes where the result is stored, not the result)"
    ]
    assert [c.get("name") for c in layer["layers"]] == [None, None, None, "head", "3"]
    assert layer["layers"][0] == {
        "type": "Conv2d",
        "in_channels": 3,
        "out_channels": 16,
        "kernel_size": [3, 3],
        "stride": [1, 1],
        "padding": [1, 1],
    }
    assert layer["layers"][3]["layers"][1] == {"type": "Flatten", "start_dim": 1, "end_dim": -1}


def test_folded_arithmetic(registry):
    layer = parse_model(registry, "nn.Linear(16 * 5 * 5, 2 ** 6 - (7 // 2) + 10 % 3 + (1 << 3))").layer
    assert layer == {"type": "Linear", "in_features": 400, "out_features": 64 - 3 + 1 + 8}


CLASS_HEAD = "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
FORWARD_HEAD = (
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 2)\n"
    "    def forward(self, x):\n"
)

HOSTILE = {
    "dunder import": ("__import__('os').system('echo hi')", 1, 1),
    "import call in arg": ("nn.Linear(__import__('os').getpid(), 3)", 1, 11),
    "os attribute": ("os.system('rm -rf /')", 1, 1),
    "torch attribute outside nn": ("torch.load('model.pt')", 1, 1),
    "nested attribute": ("nn.Linear.__subclasses__()", 1, 1),
    "attribute argument": ("nn.Linear(torch.nn.Linear.__init__, 2)", 1, 11),
    "eval": ("eval('1+1')", 1, 1),
    "exec in argument": ("nn.Linear(exec('x=1'), 2)", 1, 11),
    "name argument": ("nn.Linear(in_features, 2)", 1, 11),
    "generator": ("nn.Sequential(nn.Linear(1, 2), (x for x in ()))", 1, 32),
    "lambda": ("nn.Linear((lambda: 3)(), 2)", 1, 12),
    "lambda layer": ("nn.Sequential(lambda x: x)", 1, 15),
    "f-string": ("nn.Conv2d(1, 2, 3, padding_mode=f'{1}')", 1, 33),
    "huge power": ("nn.Linear(10 ** 10 ** 10, 2)", 1, 11),
    "huge power 2": ("nn.Linear(9 ** 64, 2)", 1, 11),
    "huge product": ("nn.Linear(2**62 * 2**62 * 2**62, 2)", 1, 11),
    "huge literal": ("nn.Linear(99999999999999999999999999, 2)", 1, 11),
    "negative exponent": ("nn.Linear(2 ** -1, 2)", 1, 11),
    "division by zero": ("nn.Linear(1 // 0, 2)", 1, 11),
    "true division": ("nn.Linear(10 / 2, 2)", 1, 11),
    "string arithmetic": ("nn.Linear('a' * 10, 2)", 1, 11),
    "string repetition blowup": ("nn.Conv2d(1, 2, 3, padding_mode='x' * 10**9)", 1, 33),
    "walrus": ("nn.Linear((x := 3), 2)", 1, 12),
    "function def": ("def f():\n    return nn.Linear(1, 2)", 1, 1),
    "class def": ("class M(nn.Module):\n    pass", 1, 1),
    "unknown type": ("nn.Frobnicate(3)", 1, 1),
    "Module base class": ("nn.Module()", 1, 1),
    "kwargs unpacking": ("nn.Linear(**{'in_features': 1, 'out_features': 2})", 1, 13),
    "dict literal argument": ("nn.Linear({}, 2)", 1, 11),
    "bytes literal": ("nn.Linear(b'1', 2)", 1, 11),
    "complex literal": ("nn.Linear(1j, 2)", 1, 11),
    "ellipsis": ("nn.Linear(..., 2)", 1, 11),
    "getattr": ("getattr(nn, 'Linear')(1, 2)", 1, 1),
    "syntax error": ("nn.Linear(1, 2", 1, 10),
    "unknown keyword": ("nn.Linear(1, 2, device='cuda')", 1, 24),
    "bad value from the catalog": ("nn.Sequential(nn.Linear(4, 3),\n    nn.Conv2d(1, 2, kernel_size=-3))", 2, 33),
    "layer as plain argument": ("nn.Linear(nn.ReLU(), 2)", 1, 11),
    "second line position": ("nn.Sequential(\n  nn.ReLU(),\n  open('/etc/passwd'))", 3, 3),
    "while loop": (CLASS_HEAD + "        while True:\n            pass\n", 4, 9),
    "helper call": (CLASS_HEAD + "        self.fc = my_helper(3)\n", 4, 19),
    "try block": (CLASS_HEAD + "        try:\n            pass\n        except Exception:\n            pass\n", 4, 9),
    "with block": (FORWARD_HEAD + "        with torch.no_grad():\n            return x\n", 6, 9),
    "if on a tensor": (FORWARD_HEAD + "        if x.sum() > 0:\n            return x\n        return x\n", 6, 12),
    "loop over a tensor": (FORWARD_HEAD + "        for row in x:\n            pass\n        return x\n", 6, 20),
    "unknown tensor method": (FORWARD_HEAD + "        return x.frobnicate()\n", 6, 16),
    "torch function outside the table": (FORWARD_HEAD + "        return torch.fft.fft(x)\n", 6, 16),
    "weights used twice": (
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n        return self.fc(self.fc(x))\n",
        6,
        16,
    ),
    "layer made in forward": (FORWARD_HEAD + "        return nn.Linear(2, 2)(x)\n", 6, 16),
    "huge loop": ("layers = []\nfor i in range(10 ** 6):\n    layers.append(nn.ReLU())\n", 2, 10),
    "runaway recursion": ("def f(n):\n    return f(n + 1)\nmodel = f(0)\n", 2, 12),
    "list blowup": ("x = [1] * 10 ** 8\nnn.ReLU()", 1, 5),
    "no model": ("def f():\n    return 1\n", 1, 1),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_code_is_refused_with_its_place(api, name):
    code, line, column = HOSTILE[name]
    r = api.post("/api/import", json={"code": code})
    assert r.status_code == 422, (name, r.text)
    body = r.json()
    assert body["field"] == "code"
    assert (body["line"], body["column"]) == (line, column), body
    assert body["detail"].startswith(f"line {line}, column {column}: ")


@pytest.mark.parametrize(
    "code",
    [
        "(" * 200 + "1" + ")" * 200,
        "nn.Linear(" + "-" * 15000 + "1, 2)",
        "nn.Linear(" + "+".join(["1"] * 3000) + ", 2)",
        "nn.Sequential(" + "nn.Sequential(" * 60 + "nn.ReLU()" + ")" * 61,
        "nn.Linear(1, 2)" + " " * MAX_CODE_CHARS,
        "nn.Linear(1,\x00 2)",
        "",
    ],
)
def test_oversized_or_deep_code_gets_a_4xx(api, code):
    r = api.post("/api/import", json={"code": code})
    assert r.status_code in (413, 422), r.text
    assert r.json()["field"] == "code"


@pytest.mark.parametrize("body", [{"code": 3}, {"code": None}, {"code": "nn.ReLU()", "extra": 1}, ["nn.ReLU()"]])
def test_bad_bodies(api, body):
    r = api.post("/api/import", json=body)
    assert r.status_code == 422
    assert r.json()["error"] in ("invalid_request", "invalid_argument")


def test_nothing_is_imported_evaluated_or_called(registry, monkeypatch):
    """Every hostile snippet is only read: no import, no eval/exec, no open, no new module."""
    events: list[str] = []
    watching = {"on": False}
    parser = threading.get_ident()

    def hook(event, args):
        # ast.parse itself raises "compile" (with the AST-only flag), and reading a catalog constructor's
        # signature reads its __code__/__defaults__; a SyntaxError looks for the source "file" by the name ast
        # was given (not a path from the request); anything else would be the pasted code at work
        benign = (
            event in ("compile", "builtins.id")
            or (event == "open" and args[0] == PASTE_NAME)
            or (event == "object.__getattr__" and args[1] in ("__code__", "__defaults__", "__kwdefaults__"))
        )
        # only the thread parsing: another thread of the test process (a pool's result handler unpickling a
        # late answer of an earlier test, which imports by name) is no part of the code at work
        if watching["on"] and not benign and threading.get_ident() == parser:
            events.append(event)

    sys.addaudithook(hook)
    called: list[str] = []

    def forbid(name):
        real = getattr(builtins, name)

        def guard(*a, **k):
            if threading.get_ident() == parser:
                called.append(name)
            return real(*a, **k)

        monkeypatch.setattr(builtins, name, guard)

    for name in ("__import__", "eval", "exec", "open"):
        forbid(name)
    parse_model(registry, "nn.ReLU()")  # the catalog's constructor signatures are read once per registry
    called.clear()  # monkeypatch.setattr itself imports inspect
    before = set(sys.modules)
    snippets = [code for code, _, _ in HOSTILE.values()] + list(VALID.values())
    outcomes = []
    # a garbage collection inside the loop may run other objects' finalizers (which import); not the code at work
    gc.disable()
    watching["on"] = True
    try:
        for code in snippets:
            try:
                outcomes.append(parse_model(registry, code).layer["type"])
            except LayerExplorerError as exc:
                outcomes.append(exc.status)
    finally:
        watching["on"] = False
        gc.enable()
    monkeypatch.undo()
    assert events == []
    assert called == []
    assert set(sys.modules) == before
    # the corpus was really read: every hostile snippet refused, every valid one parsed
    # the catalog's own check runs later for two: a negative kernel size and the string "a" * 10 as a size
    assert outcomes[: len(HOSTILE)].count(422) >= len(HOSTILE) - 2
    assert all(isinstance(o, str) for o in outcomes[len(HOSTILE) :])


def test_the_importer_needs_no_torch_and_the_graphs_package_no_web_framework():
    import ast as pyast
    from pathlib import Path

    import app.core.graphs as graphs

    def imports(path):
        names = set()
        for node in pyast.walk(pyast.parse(path.read_text())):
            if isinstance(node, pyast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, pyast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
        return names

    folder = Path(graphs.__file__).parent
    assert "torch" not in imports(folder / "importer.py")
    for path in folder.glob("*.py"):
        assert not imports(path) & {"fastapi", "starlette", "uvicorn"}, path.name


@pytest.mark.parametrize("preset", [p["id"] for p in PRESETS])
def test_every_reproduction_script_imports_back(api, preset):
    """The reverse direction: the model line of each response's script is read back into the same config."""
    request = next(p for p in PRESETS if p["id"] == preset)["request"]
    code = api.post("/api/run", json=request).json()["code"]
    line = next(x for x in code.splitlines() if x.startswith("layer = "))
    r = api.post("/api/import", json={"code": line})
    assert r.status_code == 200, r.text
    assert r.json()["layer"] == request["layer"]


# ---------------------------------------------------------------------------------------------
# classes, as people write them (issue 17): through the API, into a Graph that runs
# ---------------------------------------------------------------------------------------------

CORPUS = Path(__file__).parent / "corpus" / "models"


def test_the_tutorials_basic_linear_as_written_is_a_graph_of_parameters_and_matmul(api):
    code = (CORPUS / "tutorial_basic_linear.py").read_text() + "\ndata = torch.randn(size=(5, 10))\nlayer(data)\n"
    body = api.post("/api/import", json={"code": code}).json()
    layer = body["layer"]
    assert layer["type"] == "Graph" and layer["inputs"] == ["x"]
    kinds = [(n["name"], n.get("op") or next(k for k in ("parameter", "module") if k in n)) for n in layer["nodes"]]
    assert kinds == [
        ("weights", "parameter"),
        ("transpose", "transpose"),
        ("bias", "parameter"),
        ("matmul", "matmul"),
        ("add", "add"),
    ]
    assert layer["nodes"][0]["parameter"] == {"shape": [5, 10], "init": "randn"}
    # the code's own call of the layer gives the input; the seeding, the imports and the call are skipped
    assert body["inputs"] == [{"shape": [5, 10]}]
    assert any("import lines are skipped" in w for w in body["warnings"])
    assert any("torch.manual_seed" in w for w in body["warnings"])
    run = api.post("/api/run", json={"layer": layer, "inputs": body["inputs"], "seed": 42})
    assert run.status_code == 200, run.text
    assert run.json()["outputs"][0]["shape"] == [5, 5]


def test_a_graph_of_parameters_gets_an_input_as_wide_as_its_weights(api):
    code = (CORPUS / "tutorial_neuralnet.py").read_text()
    body = api.post("/api/import", json={"code": code}).json()
    assert body["inputs"] == [{"shape": [1, 10]}]  # BasicLinear(10 -> 15) first: x @ weights.t() with (15, 10)


def test_simple_residual_block_keeps_its_in_place_add_and_its_decided_if(api):
    code = (CORPUS / "tutorial_residual_block.py").read_text()
    layer = api.post("/api/import", json={"code": code}).json()["layer"]
    names = [n["name"] for n in layer["nodes"]]
    # in_features != out_features: the downsample exists, so the `if` took its branch
    assert names == ["fc1", "relu", "fc2", "downsample", "add"]
    assert layer["nodes"][-1]["args"] == ["fc2", "downsample"]
    same = code.replace("in_features=10, out_features=20)", "in_features=20, out_features=20)")
    layer = api.post("/api/import", json={"code": same}).json()["layer"]
    assert [n["name"] for n in layer["nodes"]] == ["fc1", "relu", "fc2", "add"]
    assert layer["nodes"][-1]["args"] == ["fc2", "x"]


def test_entry_picks_the_class_and_its_arguments(api):
    code = (CORPUS / "d2l_inception.py").read_text().replace("blk = Inception(192, 64, (96, 128), (16, 32), 32)", "")
    r = api.post("/api/import", json={"code": code, "entry": "Inception(64, 8, (4, 8), (2, 4), 4)"})
    assert r.status_code == 200, r.text
    body = r.json()
    cat = body["layer"]["nodes"][-1]
    assert cat["op"] == "cat" and cat["kwargs"] == {"dim": 1}
    assert body["layer"]["nodes"][0]["module"]["in_channels"] == 64
    shape = api.post("/api/shape", json={"layer": body["layer"], "inputs": [{"shape": [1, 64, 8, 8]}]}).json()
    assert shape["output_shapes"] == [[1, 8 + 8 + 4 + 4, 8, 8]]
    # without an instantiation line or entry, a class that needs arguments is refused where it is defined
    r = api.post("/api/import", json={"code": code})
    assert r.status_code == 422 and "needs the argument" in r.json()["detail"]
    r = api.post("/api/import", json={"code": code, "entry": "Nope(1)"})
    assert r.status_code == 422 and "`Nope` is not defined" in r.json()["detail"]


def test_printout_of_a_modulelist_and_unquoted_strings(api):
    body = api.post("/api/import", json={"code": (CORPUS / "modulelist_printout.py").read_text()}).json()
    layers = body["layer"]["layers"]
    assert [c.get("name") for c in layers] == ["layers", "act", "out"]
    assert [c["type"] for c in layers[0]["layers"]] == ["Linear"] * 3
    assert body["warnings"] == [
        "line 4, column 1: a printout does not show Net's forward; its children are read as a chain, in the order "
        "printed",
        "line 5, column 1: a printout does not show ModuleList's forward; its children are read as a chain, in the "
        "order printed",
    ]
    body = api.post("/api/import", json={"code": (CORPUS / "printout_same_padding.py").read_text()}).json()
    assert body["layer"]["layers"][2]["padding"] == "same"
    assert body["layer"]["layers"][2]["padding_mode"] == "reflect"


def test_skipped_lines_are_each_named_in_the_warnings(api):
    code = (CORPUS / "dcgan_generator.py").read_text()
    warnings = api.post("/api/import", json={"code": code}).json()["warnings"]
    text = "\n".join(warnings)
    assert "`print(...)` is skipped" in text
    assert "`.to(...)` is skipped" in text
    assert "`torch.device(...)` is skipped" in text
    assert "ReLU's positional inplace is ignored" in text


def test_reading_is_bounded_in_time(registry, monkeypatch):
    monkeypatch.setattr(importer, "MAX_SECONDS", 0.0)
    with pytest.raises(LayerExplorerError) as info:
        parse_model(registry, "layers = []\nfor i in range(100):\n    layers.append(nn.ReLU())\nnn.Sequential(*layers)")
    assert info.value.status == 413 and "took longer than" in info.value.detail


def test_layers_forward_never_uses_are_left_out_with_a_warning(registry):
    code = (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(4, 2)\n"
        "        self.spare = nn.Linear(4, 4)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
        "model = Net()\n"
    )
    imported = parse_model(registry, code)
    assert [n["name"] for n in imported.layer["nodes"]] == ["fc"]
    assert imported.warnings == [
        "line 5, column 22: `Net.spare` is built but forward never uses it; it is left out",
    ]


def test_a_stateless_layer_called_twice_is_two_nodes(registry):
    code = (CORPUS / "pytorch_blitz_cnn.py").read_text()
    nodes = parse_model(registry, code).layer["nodes"]
    pools = [n for n in nodes if n.get("module", {}).get("type") == "MaxPool2d"]
    assert [n["name"] for n in pools] == ["pool", "pool_1"]
