"""Every catalog entry: its example runs as it is, and the predicted shape is the real one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from torch import nn

from app.core import service
from app.core.config import Settings
from app.core.registry import default_registry
from app.core.running import plan as plan_module

REGISTRY = default_registry()
SPECS = list(REGISTRY)
SETTINGS = Settings()
META_CHECK = Settings(meta_check=True)

# torch.nn classes deliberately not in the catalog, each with the reason.
EXCLUDED = {
    "Module": "the base class",
    "Container": "deprecated container base",
    "Sequential": "a container: see the Sequential layer config",
    "ModuleList": "a container without forward()",
    "ModuleDict": "a container without forward()",
    "ParameterList": "a container without forward()",
    "ParameterDict": "a container without forward()",
    "DataParallel": "a parallel wrapper",
    "RNNBase": "the base class of RNN/LSTM/GRU",
    "RNNCellBase": "the base class of the RNN cells",
    "SyncBatchNorm": "needs a distributed process group",
    "NLLLoss2d": "deprecated alias of NLLLoss",
}


def test_catalog_covers_torch_nn():
    names = {n for n in dir(nn) if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)}
    buildable = {n for n in names if not n.startswith("Lazy") and n not in EXCLUDED}
    missing = sorted(buildable - {s.type for s in SPECS})
    assert not missing, f"torch.nn types missing from the catalog: {missing}"
    assert len(SPECS) >= 90


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_example_runs_and_shape_is_predicted(spec):
    response = service.run(REGISTRY, spec.example, SETTINGS)
    real = [o["shape"] for o in response["outputs"]]
    assert response["predicted_shapes"] is not None, f"{spec.type} has no shape rule"
    assert response["predicted_shapes"] == real
    assert response["shape_check"] is True
    for dims, shape in zip(response["formulas"], real):
        assert [d["value"] for d in dims] == shape


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_shape_endpoint_agrees_without_allocating(spec):
    response = service.shape(REGISTRY, spec.example, SETTINGS)
    run = service.run(REGISTRY, spec.example, SETTINGS)
    assert response["output_shapes"] == [o["shape"] for o in run["outputs"]]
    assert response["param_count"] == run["param_count"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_formula_meta_and_real_agree(spec):
    # /api/shape answers from the formula; with meta_check the meta pass runs beside it
    response = service.shape(REGISTRY, spec.example, META_CHECK)
    run = service.run(REGISTRY, spec.example, SETTINGS)
    real = [o["shape"] for o in run["outputs"]]
    assert response["source"] == "formula"
    assert response["output_shapes"] == real
    if "meta_shapes" in response:  # absent only where torch has no meta kernel for the layer
        assert response["meta_shapes"] == real and response["shape_check"] is True


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_formula_first_means_no_meta_pass(spec, monkeypatch):
    """Where a formula answers, neither /api/shape?detail=shapes nor /api/run does a meta forward pass
    (the real forward records a transformer layer's inner calls itself; the formula gives the shapes)."""
    passes = []
    real_pass = plan_module._meta_forward
    monkeypatch.setattr(plan_module, "_meta_forward", lambda plan: passes.append(1) or real_pass(plan))
    shaped = service.shape(REGISTRY, spec.example, SETTINGS, detail="shapes")
    assert "graph" not in shaped
    if shaped["source"] == "formula":
        assert passes == []
    passes.clear()
    run = service.run(REGISTRY, spec.example, SETTINGS)
    if shaped["source"] == "formula":
        assert passes == []
    assert shaped["output_shapes"] == [o["shape"] for o in run["outputs"]]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_entry_is_documented(spec):
    d = spec.to_dict()
    assert d["doc"], f"{spec.type} has no summary"
    assert d["inputs"] and all(i["convention"].startswith("(") for i in d["inputs"])
    assert d["example"]["layer"]["type"] == spec.type
    for p in d["params"]:
        assert p["type"] in {
            "int",
            "float",
            "bool",
            "str",
            "ints",
            "floats",
            "int_list",
            "float_list",
            "tensor",
            "layer",
            "layers",
            "names",  # a Graph's inputs and outputs: node names
            "graph_nodes",  # a Graph's nodes (docs/API.md, "Graph networks")
            "tied",  # a Graph's tied parameters: {"head.weight": "embed.weight"}
            "shapes",  # an Opaque layer's recorded input and output shapes
            "named_shapes",  # an Opaque layer's parameter shapes by name
        }


# ---------------------------------------------------------------------------------------------
# facts the client reads instead of matching type names
# ---------------------------------------------------------------------------------------------

FACTS = {"explain", "container", "slots", "chain", "spatial_rank", "dtypes", "diagram", "fit_to_input", "fit_to_output"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_entry_publishes_the_facts_the_client_needs(spec):
    d = spec.to_dict()
    assert set(d) >= FACTS
    assert d["explain"] in (None, "linear", "bilinear", "conv", "transposed", "pool")
    assert d["diagram"] in ("linear", "bilinear", "blocks", "generic")
    assert set(d["dtypes"]) == {"float32", "float64", "float16", "bfloat16"}
    names = {p["name"] for p in d["params"]}
    for fit in d["fit_to_input"] + d["fit_to_output"]:
        assert fit["param"] in names and isinstance(fit["dim"], int)


@pytest.mark.parametrize(
    "type_name, param, dim",
    [
        ("Linear", "in_features", -1),
        ("Bilinear", "in1_features", -1),
        ("BasicLinear", "input_features", -1),
        ("Conv1d", "in_channels", -2),
        ("Conv2d", "in_channels", -3),
        ("ConvTranspose3d", "in_channels", -4),
        ("BatchNorm1d", "num_features", 1),
        ("BatchNorm2d", "num_features", -3),
        ("GroupNorm", "num_channels", 1),
        ("LayerNorm", "normalized_shape", -1),
        ("LSTM", "input_size", -1),
    ],
)
def test_fit_to_input_follows_the_input_shape(type_name, param, dim):
    fits = {f["param"]: f for f in REGISTRY.get(type_name).to_dict()["fit_to_input"]}
    assert fits[param]["dim"] == dim


def test_fits_agree_with_torch():
    # a layer set by fit_to_input from its example input builds and runs on that input
    for spec in SPECS:
        d = spec.to_dict()
        shapes = [i.get("shape") for i in d["example"]["inputs"]]
        if not d["fit_to_input"] or not shapes or shapes[0] is None:
            continue
        layer = dict(d["example"]["layer"])
        for fit in d["fit_to_input"]:
            size = shapes[0][fit["dim"]]
            layer[fit["param"]] = [size] if fit["as"] == "list" else size
        assert layer == {**d["example"]["layer"], **{k: layer[k] for k in layer}}
        service.run(REGISTRY, {**d["example"], "layer": layer}, SETTINGS)


def test_spatial_rank_and_containers():
    assert REGISTRY.get("Conv3d").to_dict()["spatial_rank"] == 3
    assert REGISTRY.get("MaxPool1d").to_dict()["spatial_rank"] == 1
    assert REGISTRY.get("Linear").to_dict()["spatial_rank"] is None
    seq, res = REGISTRY.get("Sequential").to_dict(), REGISTRY.get("Residual").to_dict()
    assert seq["container"] and seq["chain"] and seq["slots"] == {"layers": ""}
    assert res["container"] and not res["chain"] and res["slots"] == {"body": "body", "shortcut": "shortcut"}
    assert not REGISTRY.get("SimpleResidualBlock").to_dict()["container"]
    assert REGISTRY.get("Conv2d").to_dict()["diagram"] == "blocks"
    assert REGISTRY.get("MaxPool2d").to_dict()["explain"] == "pool"
    assert REGISTRY.get("LSTM").to_dict()["diagram"] == "generic"


def test_client_matches_no_layer_type_names():
    # the client decides by catalog facts (container, chain, diagram, explain, spatial_rank, fits); a
    # comparison with a type name, a set of names or a pattern over names would be a second copy of one
    static = Path(__file__).parent.parent / "static" / "js"
    types = {spec.type for spec in SPECS}
    literal = re.compile(r"""["'`]([A-Za-z0-9]+)["'`]""")
    decides = re.compile(r"""[!=]==?|\.has\(|new Set\(|\bcase\b|\.includes\(""")
    name_pattern = re.compile(
        r"""/[^/\n]*(Conv|Pool|Linear|Norm|LSTM|Sequential|Residual)[^/\n]*/\.test\(|\[123\]\)?d"""
    )
    found = []
    for path in static.rglob("*.js"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            named = [w for w in literal.findall(code) if w in types]
            if (named and decides.search(code)) or name_pattern.search(code):
                found.append(f"{path.relative_to(static)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_same_units_is_catalog_data(registry):
    """Which layers' outputs are in their input's units (one colour scale by default): read from the
    family, with the exceptions written where the layer is registered."""
    facts = {spec.type: spec.to_dict()["same_units"] for spec in registry}
    for shared in ("MaxPool2d", "AvgPool1d", "ReLU", "Sigmoid", "Dropout", "ZeroPad2d", "Flatten", "Identity"):
        assert facts[shared] is True, shared
    for own in ("Conv2d", "Linear", "BatchNorm2d", "Softmax", "LogSoftmax", "MSELoss", "Embedding", "LSTM"):
        assert facts[own] is False, own
