"""Sequential and Residual are sugar over the dataflow graph: they lower to a graph, and the graph's
one engine predicts their shapes, records their trace and words their shape errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from app.core.errors import ShapeMismatch
from app.core.networks import graph as dataflow
from app.core.networks import graphnet
from app.core.networks.graphnet import Ref
from app.core.networks.lower import SUM, lower
from app.core.networks.tree import build, resolve, walk
from app.core.presets import presets
from app.core.running import requests
from app.core.running.plan import plan_request
from app.core.schema import RunRequest, parse

LIN = {"type": "Linear", "in_features": 8, "out_features": 8}
NET = {
    "type": "Sequential",
    "layers": [
        {**LIN, "name": "stem"},
        {
            "type": "Residual",
            "name": "block",
            "body": [LIN, {"type": "ReLU"}, LIN],
            "shortcut": {"type": "Linear", "in_features": 8, "out_features": 8},
        },
        {"type": "Residual", "body": [LIN]},
    ],
}


def test_sequential_lowers_to_a_chain_of_module_nodes_named_by_path(registry):
    gdef = lower(resolve(registry, NET))
    assert [(n.name, n.kind, n.args) for n in gdef.nodes] == [
        ("stem", "module", [Ref("x")]),
        ("block", "module", [Ref("stem")]),
        ("2", "module", [Ref("block")]),
    ]
    assert gdef.inputs == ["x"] and gdef.outputs == ["2"]
    assert [n.field for n in gdef.nodes] == ["layer.layers[0]", "layer.layers[1]", "layer.layers[2]"]


def test_residual_lowers_to_body_shortcut_and_an_add(registry):
    block = resolve(registry, NET).slots["layers"][1]
    gdef = lower(block)
    assert [(n.name, n.kind) for n in gdef.nodes] == [
        ("body.0", "module"),
        ("body.1", "module"),
        ("body.2", "module"),
        ("shortcut", "module"),
        (SUM, "op"),
    ]
    assert gdef.nodes[3].args == [Ref("x")]  # the shortcut takes the block's input
    assert gdef.nodes[-1].op == "add" and gdef.nodes[-1].bound == {"input": Ref("body.2"), "other": Ref("shortcut")}
    identity = lower(resolve(registry, NET).slots["layers"][2])
    assert identity.nodes[-1].bound == {"input": Ref("body.0"), "other": Ref("x")}


@pytest.fixture
def engine_calls(monkeypatch) -> list[tuple[str, str]]:
    """Every call of the graph engine: (path prefix, dialect class)."""
    calls: list[tuple[str, str]] = []
    real = graphnet.run

    def spy(gdef, children, module, shapes, prefix, trace, dialect, **kw: Any):
        calls.append((prefix, type(dialect).__name__))
        return real(gdef, children, module, shapes, prefix, trace, dialect, **kw)

    monkeypatch.setattr(graphnet, "run", spy)
    return calls


def test_sequential_and_residual_shapes_come_from_the_graph_engine(registry, settings, engine_calls):
    """A parallel code path for chains or residuals would predict without calling the engine."""
    plan = plan_request(registry, parse(RunRequest, {"layer": NET, "inputs": [{"shape": [4, 8]}]}), settings)
    assert [d.expr.int_value() for d in plan.predicted[0]] == [4, 8]
    assert engine_calls == [("", "Chain"), ("block", "ResidualSum"), ("2", "ResidualSum")]
    # a chain lists a container's entry after the layers inside it; the shortcut is a call of its own
    # (its parameters and multiply-adds count in the totals, as a forward pass records them)
    assert [e["path"] for e in plan.predicted_trace] == [
        "stem",
        "block.body.0",
        "block.body.1",
        "block.body.2",
        "block.shortcut",
        "block",
        "2.body.0",
        "2",
    ]
    recorded = requests.shape(registry, {"layer": NET, "inputs": [{"shape": [4, 8]}]}, settings, detail="full")
    leaves = {e["path"]: e for e in recorded["trace"] if e["leaf"]}
    predicted = {e["path"]: e for e in plan.predicted_trace if e["leaf"]}
    assert predicted == leaves


def test_a_chains_shape_error_is_found_by_the_engine_in_the_chains_words(registry, settings, engine_calls):
    bad = {"type": "Sequential", "layers": [{"type": "Linear", "in_features": 8, "out_features": 5}, LIN]}
    with pytest.raises(ShapeMismatch) as caught:
        requests.shape(registry, {"layer": bad, "inputs": [{"shape": [4, 8]}]}, settings)
    assert engine_calls == [("", "Chain")]
    assert "layer 1 (Linear)" in caught.value.detail
    assert caught.value.detail.endswith("; layer 0 (Linear) outputs (4, 5)")
    assert caught.value.field == "layer.layers[1]"


def test_a_residuals_mismatch_is_found_by_the_engine(registry, settings, engine_calls):
    bad = {"type": "Residual", "body": [{"type": "Linear", "in_features": 8, "out_features": 5}]}
    with pytest.raises(ShapeMismatch) as caught:
        requests.shape(registry, {"layer": bad, "inputs": [{"shape": [4, 8]}]}, settings)
    assert engine_calls == [("", "ResidualSum")]
    assert caught.value.detail.startswith("Residual: the body outputs (4, 5) but the shortcut is the identity")
    assert caught.value.field == "layer"


LOWERED = [p for p in presets() if any(c in json.dumps(p["request"]) for c in ('"Sequential"', '"Residual"'))]


@pytest.mark.parametrize("preset", LOWERED, ids=[p["id"] for p in LOWERED])
def test_every_lowered_node_is_the_module_built_at_its_path(registry, preset):
    """The lowered graph names each layer by the path the built module has it under, in build order."""
    node = resolve(registry, preset["request"]["layer"])
    with torch.device("meta"):
        module = build(node)
    lowered = 0
    for path, sub in walk(node):
        if sub.spec.container is None or sub.spec.container.lower is None:
            continue
        gdef = lower(sub)
        owner = module.get_submodule(path)
        names = [n.name for n in gdef.nodes if n.kind == "module"]
        built = [name for name, _ in owner.named_modules() if name in names]
        assert built == names  # every node is a built submodule, in the order they were built
        lowered += 1
    assert lowered


@pytest.mark.parametrize(
    "preset",
    [p for p in presets() if p["id"] in ("lenet5", "resnet-basic-block", "small-cnn-batchnorm", "resnet18", "unet")],
    ids=lambda p: p["id"],
)
def test_the_dataflow_graph_takes_the_formulas_shapes_and_they_equal_a_meta_run(
    registry, settings, preset, monkeypatch
):
    """Leaf layers whose formula answered are not run again on meta for the dataflow graph; the graph
    is the one a full meta pass gives, shape for shape. A chain of Sequentials (LeNet-5) takes its graph
    straight from the formulas' trace (the chain view); other networks stand the formulas' shapes in
    for their layers in the meta pass."""
    req = {**preset["request"], "seed": 0}
    fast = requests.shape(registry, req, settings, detail="full")["graph"]
    dataflow._CACHE.clear()
    stood_in: list[str] = []
    chained: list[bool] = []
    real_call = dataflow._KnownShapes.call_module
    real_chain = dataflow._planned_chain_graph

    def spy(self, target, args, kwargs):
        stood_in.append(target)
        return real_call(self, target, args, kwargs)

    def chain_spy(plan, registry):
        out = real_chain(plan, registry)
        chained.append(out is not None)
        return out

    monkeypatch.setattr(dataflow._KnownShapes, "call_module", spy)
    monkeypatch.setattr(dataflow, "_planned_chain_graph", chain_spy)
    dataflow._CACHE.clear()
    assert requests.shape(registry, req, settings, detail="full")["graph"] == fast
    assert stood_in or any(chained)  # the formulas' shapes were used, by the meta pass or the chain view
    # a plain meta pass over the fx trace agrees: no chain view, no formulas' shapes
    monkeypatch.setattr(dataflow, "_planned_chain_graph", lambda plan, registry: None)
    monkeypatch.setattr(dataflow, "_KnownShapes", lambda gm, known: dataflow.ShapeProp(gm))
    dataflow._CACHE.clear()
    assert requests.shape(registry, req, settings, detail="full")["graph"] == fast
