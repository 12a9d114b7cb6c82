"""A network of Sequential containers planned and traced once for its first receptive field (issue 18).

Its graph comes from the plan alone (the skeleton and the formulas' trace: no meta module built, no fx
tracing, no meta pass) and its kept trace is fx's chain graph recorded by a loop over its layers (no code
generated). These tests check that the answers are the ones the general path gives: capture of the
plan's meta module for the graph, fx's traced graph and generated recorder for the field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from app.core.config import Settings
from app.core.errors import LayerExplorerError
from app.core.graphs import receptive
from app.core.networks import graph as dataflow
from app.core.networks.trace import named_modules
from app.core.presets import PRESETS
from app.core.running.execute import materialise, planned
from app.core.running.plan import Plan, plan_request
from app.core.schema import RunRequest, parse
from benchmarks.scale import conv_net, linear_net
from tests.test_plan_skeleton import REPEATED

#: the graph view as it is, for a test that takes away the trace lent to it
_GRAPH_FIELDS = dataflow.graph_fields

MIXED = {
    "type": "Sequential",
    "layers": [
        {"type": "Conv1d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
        {"type": "MaxPool1d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Sequential", "layers": [{"type": "LayerNorm", "normalized_shape": 27}, {"type": "Dropout"}]},
        {"type": "Linear", "in_features": 27, "out_features": 2},
        {"type": "Softmax", "dim": 1},
    ],
}
#: networks of every kind the chain path meets or turns away (a residual block, an opaque layer, a
#: transformer layer: not chains of torch's own layers)
NETWORKS: dict[str, dict[str, Any]] = (
    {p["id"]: p["request"] for p in PRESETS}
    | REPEATED
    | {
        "mixed": {"layer": MIXED, "inputs": [{"shape": [2, 2, 20]}], "seed": 4},
        "linear-eval": {**linear_net(5, 3), "train": False},
        # a recurrent layer's graph has no shapes until the real run (its meta kernels are slow): capture's
        "lstm": {
            "layer": {"type": "Sequential", "layers": [{"type": "LSTM", "input_size": 4, "hidden_size": 4}]},
            "inputs": [{"shape": [50, 1, 4]}],
        },
    }
)


def _plan(registry, body: dict[str, Any]) -> Plan:
    return plan_request(registry, parse(RunRequest, copy.deepcopy(body)), Settings(), enforce_limit=False)


def _capture(plan: Plan, registry) -> dict[str, Any]:
    """The graph as the plan's meta module gives it (fx's trace, a meta pass with the formulas' shapes)."""
    return dataflow._planned_graph(plan, None, registry)["graph"]


@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_planned_chain_has_the_meta_modules_graph(registry, name, monkeypatch):
    plan = _plan(registry, NETWORKS[name])
    links = dataflow.planned_chain(plan)
    chained = type(plan.skeleton) is torch.nn.Sequential and all(
        type(m) is torch.nn.Sequential or dataflow.is_leaf(m) for m in plan.skeleton.modules()
    )
    assert (links is not None) == chained, name
    # the chain's graph is read from the skeleton: the property that builds the meta module fails if asked
    meta = Plan.meta
    recurrent = any(isinstance(m, torch.nn.RNNBase) for m in plan.skeleton.modules())
    if links is not None and not recurrent:
        monkeypatch.setattr(Plan, "meta", property(lambda self: pytest.fail("the chain's graph built the meta module")))
        monkeypatch.setattr(dataflow, "_leaf_trace", lambda *a: pytest.fail("traced with fx"))
    got = dataflow._graph_fields(plan, None, registry)["graph"]
    monkeypatch.undo()
    assert Plan.meta is meta
    if recurrent:
        assert all(n["shape"] is None for n in got["nodes"])
    if links is not None:
        assert got["method"] == "fx" and len(got["nodes"]) == len(links) + 2
        assert all("config" in n for n in got["nodes"] if n["op"] == "module")
    assert got == _capture(_plan(registry, NETWORKS[name]), registry), name


@pytest.mark.parametrize("name", ["linear", "conv", "mixed"])
def test_a_chains_kept_trace_is_fxs_with_the_generated_recorders_values(registry, name):
    """The loop over a chain's layers keeps the values fx's generated code keeps, under the same names and
    in the same order, bit for bit; fx's chain graph is the one fx traces from the meta module."""
    body = NETWORKS[name]
    plan = _plan(registry, body)
    links = dataflow.planned_chain(plan)
    assert links is not None
    graph = dataflow.chain_graph(links)
    traced = dataflow.traced_graph(plan.meta, 1)
    assert [(n.op, n.name, str(n.target)) for n in graph.nodes] == [(n.op, n.name, str(n.target)) for n in traced.nodes]
    loop = dataflow.chain_recorder(plan.skeleton, graph, {p: m for p, _, m in links})
    generated = dataflow.recorder(plan.meta, traced, dict(named_modules(plan.meta)))
    assert loop is not None and generated is not None
    module, xs = materialise(plan)
    x = xs[0].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        # the same draws for a dropout in training mode
        torch.manual_seed(1)
        got = loop(module, [x])
        torch.manual_seed(1)
        want = generated(module, [x])
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    # autograd follows both the same way
    (g1,) = torch.autograd.grad(got["output"].sum(), x, retain_graph=True)
    (g2,) = torch.autograd.grad(want["output"].sum(), x)
    assert torch.equal(g1, g2)


def test_chain_recorder_turns_away_what_is_not_a_chain_of_torchs_own_layers(registry):
    plan = _plan(registry, NETWORKS["tutorial-residual-block"])
    # a residual block's graph (an add): not a chain
    assert dataflow.chain_recorder(plan.meta, dataflow.traced_graph(plan.meta, 1)) is None
    opaque = _plan(registry, REPEATED["opaque"])
    links = dataflow.planned_chain(opaque)
    assert links is not None
    # an opaque layer is not one of torch's own: what its forward changes in place is unknown (the
    # interpreter's copies are needed)
    assert dataflow.chain_recorder(opaque.skeleton, dataflow.chain_graph(links)) is None


def _field(registry, body: dict[str, Any]) -> str:
    """The answer as JSON, or the error's class and message (an opaque layer computes nothing to trace)."""
    try:
        return json.dumps(receptive.receptive_field(registry, copy.deepcopy(body), Settings()))
    except LayerExplorerError as exc:
        return f"{type(exc).__name__}: {exc}"


FIELDS = [
    ("linear", {**linear_net(12, 6), "index": [3, 4]}),
    ("linear-structural", {**linear_net(12, 6), "index": [1, 2], "effective": False}),
    ("conv-eval", {**conv_net(4, 2, 6), "index": [0, 1, 2, 3], "train": False}),
    ("mixed", {"layer": MIXED, "inputs": [{"shape": [2, 2, 20]}], "index": [1, 1], "seed": 4}),
    ("mixed-structural", {"layer": MIXED, "inputs": [{"shape": [2, 2, 20]}], "index": [1, 0], "effective": False}),
    ("opaque", {**REPEATED["opaque"], "index": [1, 3]}),
]


@pytest.mark.parametrize(("name", "body"), FIELDS, ids=[n for n, _ in FIELDS])
def test_a_chains_first_field_is_the_general_paths(registry, name, body, monkeypatch):
    """A chain's first field, traced once from its plan, answers as tracing the meta module for the graph
    and for the run (fx's trace, fx's generated recorder) did, every byte; it builds no meta module and
    traces nothing with fx."""
    receptive._TRACES.clear()
    dataflow._CACHE.clear()
    leaf_trace = dataflow._leaf_trace
    # a field that runs builds no meta module (a structural one reads its layers' state from it, as before;
    # an opaque layer's field is recorded by the interpreter, its graph the chain's still)
    if body.get("effective", True) and name != "opaque":
        monkeypatch.setattr(Plan, "meta", property(lambda self: pytest.fail("the first field built the meta module")))
    monkeypatch.setattr(dataflow, "_leaf_trace", lambda *a: pytest.fail("traced with fx"))
    first = _field(registry, body)
    monkeypatch.undo()
    assert _field(registry, body) == first  # from the kept graph and trace
    # the general path: the meta module's captured graph and fx's trace of it
    receptive._TRACES.clear()
    dataflow._CACHE.clear()
    monkeypatch.setattr(dataflow, "planned_chain", lambda plan: None)
    traced: list[str] = []

    def spy(module: torch.nn.Module, n: int) -> Any:
        traced.append(type(module).__name__)
        return leaf_trace(module, n)

    monkeypatch.setattr(dataflow, "_leaf_trace", spy)
    assert _field(registry, body) == first, name
    assert traced  # the general path did trace
    assert first.startswith("{") or name == "opaque", first
    receptive._TRACES.clear()
    dataflow._CACHE.clear()


def test_the_deep_benchmark_nets_first_field_takes_the_chain(registry, monkeypatch):
    """The benchmark's 512-block shape (fewer blocks): its first field from the plan, as its run's plan
    keeps it (/api/run's, seed aside)."""
    body = {**linear_net(64, 8), "index": [0, 0]}
    receptive._TRACES.clear()
    dataflow._CACHE.clear()
    plan = planned(registry, parse(RunRequest, linear_net(64, 8)), Settings())
    links = dataflow.planned_chain(plan)
    assert plan.shared and links is not None and len(links) == 64 * 2
    monkeypatch.setattr(dataflow, "_leaf_trace", lambda *a: pytest.fail("traced with fx"))
    monkeypatch.setattr(dataflow, "recorder", lambda *a: pytest.fail("generated code"))
    got = json.loads(_field(registry, body))
    assert got["method"] == "fx" and got["structural"] == "intervals"
    assert len(got["graph"]["nodes"]) == 64 * 2 + 2  # every Linear and ReLU, the input and the output
    receptive._TRACES.clear()
    dataflow._CACHE.clear()


_SHAPELESS = st.sampled_from(
    [{"type": "ReLU"}, {"type": "Tanh"}, {"type": "Identity"}, {"type": "Linear", "in_features": 3, "out_features": 3}]
)
_LAYERS = st.recursive(
    _SHAPELESS,
    lambda inner: st.lists(inner, min_size=1, max_size=3).map(lambda ls: {"type": "Sequential", "layers": ls}),
    max_leaves=10,
)


@given(layers=st.lists(_LAYERS, min_size=1, max_size=4))
@examples(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
def test_any_planned_chain_has_the_meta_modules_graph(registry, layers):
    """Nested Sequentials of any shape, repeated layers among them (a skeleton shares those)."""
    body = {"layer": {"type": "Sequential", "layers": layers}, "inputs": [{"shape": [2, 3]}], "seed": 0}
    plan = _plan(registry, body)
    assert dataflow.planned_chain(plan) is not None
    got = dataflow._graph_fields(plan, None, registry)["graph"]
    assert got == _capture(_plan(registry, body), registry)


GENERAL = [
    (
        "residual-block",
        {**next(p for p in PRESETS if p["id"] == "tutorial-residual-block")["request"], "index": [0, 1]},
    ),
    ("residual-net", {**next(p for p in PRESETS if p["id"] == "tutorial-residual-net")["request"], "index": [0, 1]}),
    ("repeated-residual", {**REPEATED["residual"], "index": [0, 1, 2, 2]}),
    ("residual-structural", {**REPEATED["residual"], "index": [0, 1, 2, 2], "effective": False}),
]


@pytest.mark.parametrize(("name", "body"), GENERAL, ids=[n for n, _ in GENERAL])
def test_a_networks_first_field_traces_it_once(registry, name, body, monkeypatch):
    """A network that is not a chain: its first field traces the plan's meta module once, for the graph
    view and the recorded run both, and answers as tracing it for each did, every byte."""
    receptive._TRACES.clear()
    dataflow._CACHE.clear()
    leaf_trace = dataflow._leaf_trace
    traced: list[str] = []

    def spy(module: torch.nn.Module, n: int) -> Any:
        traced.append(type(module).__name__)
        return leaf_trace(module, n)

    monkeypatch.setattr(dataflow, "_leaf_trace", spy)
    once = _field(registry, body)
    assert once.startswith("{"), once
    assert len(traced) == 1, traced
    # each traces its own: the graph view without the field's trace, then the field's trace afresh
    receptive._TRACES.clear()
    dataflow._CACHE.clear()
    monkeypatch.setattr(dataflow, "graph_fields", lambda *a, trace=None, **k: _GRAPH_FIELDS(*a, **k))
    traced.clear()
    assert _field(registry, body) == once, name
    assert len(traced) == 2, traced
    receptive._TRACES.clear()
    dataflow._CACHE.clear()
