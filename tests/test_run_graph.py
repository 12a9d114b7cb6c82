"""The dataflow graph of a real run comes from that run alone: its own module traced (no meta module
built), every layer's shapes from the run's own trace, no layer called again. It is the graph the plan's
meta module gives (the path /api/shape still takes), node for node and edge for edge, for every preset,
every classic and the deep networks of repeated blocks."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from torch.nn.modules.module import register_module_forward_pre_hook

from app.core.config import Settings
from app.core.networks import graph as dataflow
from app.core.networks.trace import named_modules, tracing
from app.core.presets import CLASSICS, PRESETS
from app.core.running import requests
from app.core.running.execute import execute
from app.core.running.plan import Plan
from app.core.schema import RunRequest, parse
from app.core.tensors import tensors_in
from tests.test_graph import graph, mod, op
from tests.test_plan_skeleton import REPEATED

#: the smallest input each classic takes (the arithmetic is not what is checked; the graph is)
SMALL = {
    "resnet18": [2, 3, 64, 64],
    "resnet50": [2, 3, 64, 64],
    "vgg16": [1, 3, 32, 32],
    "mobilenet-v2": [2, 3, 64, 64],
    "densenet121": [2, 3, 32, 32],
    "inception-v3": None,  # its auxiliary head takes nothing smaller than 299×299
    "unet": [1, 3, 32, 32],
    "vit-b16": None,  # its position embedding fixes the input at 224×224
    "vit-tiny": None,
}
LSTM = {
    "layer": graph(
        [
            mod("lstm", {"type": "LSTM", "input_size": 4, "hidden_size": 6, "batch_first": True}, "x"),
            op("seq", "getitem", "lstm", 0),
            op("state", "getitem", "lstm", 1),
            op("h", "getitem", "state", 0),
            op("last", "getitem", "seq", [{"slice": [None, None, None]}, -1]),
            mod("fc", {"type": "Linear", "in_features": 6, "out_features": 2}, "last"),
        ],
        outputs=["fc", "h"],
    ),
    "inputs": [{"shape": [3, 5, 4]}],
    "seed": 0,
}
REQUESTS: dict[str, dict[str, Any]] = (
    {p["id"]: p["request"] for p in PRESETS}
    | {
        p["id"]: {**p["request"], "inputs": [{"shape": SMALL[p["id"]]}]} if SMALL[p["id"]] else p["request"]
        for p in CLASSICS
    }
    | REPEATED
    | {"lstm": LSTM, "eval": {**REPEATED["conv"], "train": False}}
)


@pytest.fixture(scope="module")
def roomy() -> Settings:
    # VGG-16's parameters alone are 528 MiB
    return Settings(memory_limit_bytes=4 * 1024**3)


def _run(registry, settings, body):
    return execute(registry, parse(RunRequest, copy.deepcopy(body)), settings, hooks=requests._tracing_and_attention)


def _traceable(ex: Any) -> bool:
    try:
        dataflow.traced_graph(ex.module, len(ex.inputs))
    except Exception:  # noqa: BLE001 - fx refuses control flow on a traced value (a transformer layer's checks)
        return False
    return True


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_runs_graph_is_the_meta_modules_graph(registry, roomy, name, monkeypatch):
    ex = _run(registry, roomy, REQUESTS[name])
    module_ids = {id(m) for _, m in named_modules(ex.module)}
    called: list[str] = []

    def count(mod: torch.nn.Module, args: Any) -> None:
        # fx's symbolic tracing calls the containers too, with proxies (no tensor): that is no run
        if id(mod) in module_ids and any(not t.is_meta for t in tensors_in(args)):
            called.append(type(mod).__name__)

    stood_in: list[str] = []
    run_shapes = dataflow._run_shapes

    def spy(module, modules, g, inputs, calls, stand_in):
        def recorded(path: str) -> torch.nn.Module:
            twin = stand_in(path)
            stood_in.append(path)
            assert twin.weight.is_meta if hasattr(twin, "weight") and twin.weight is not None else True
            return twin

        return run_shapes(module, modules, g, inputs, calls, recorded)

    monkeypatch.setattr(dataflow, "_run_shapes", spy)
    # the run's graph reads no meta module: the property that builds it fails the test if asked (where fx
    # can trace the network; a forward fx cannot trace is recorded in a meta run, as before)
    traceable = _traceable(ex)
    meta = Plan.meta
    if traceable:
        monkeypatch.setattr(Plan, "meta", property(lambda self: pytest.fail("the run's graph built the meta module")))
    handle = register_module_forward_pre_hook(count)
    try:
        got = dataflow._graph_fields(ex.plan, ex, registry)["graph"]
    finally:
        handle.remove()
    monkeypatch.setattr(Plan, "meta", meta)
    assert called == []  # no layer of the real module ran again
    assert got["method"] == ("fx" if traceable else "hooks") or dataflow.is_leaf(ex.module)
    assert got["nodes"]
    # only the layers whose output is not one tensor were called on meta: every other shape is the run's
    for path in stood_in:
        assert not dataflow._returns_tensor(ex.module.get_submodule(path)), path
    want = dataflow._planned_graph(ex.plan, ex, registry)["graph"]
    assert got == want


class _SharedReLU(torch.nn.Module):
    """One ReLU called twice, on two shapes (as ResNet's blocks do in torchvision)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.fc2 = torch.nn.Linear(8, 3)
        self.relu = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc2(self.relu(self.fc1(x)))).flatten()


def test_a_layer_called_twice_takes_each_calls_shape():
    module, x = _SharedReLU(), torch.randn(2, 4)
    sink: dict[str, Any] = {}
    with torch.no_grad(), tracing(module, sink):
        out = module(x)
    plan = SimpleNamespace(skeleton=None, train=True)  # no layer needs a stand-in here
    ex = SimpleNamespace(module=module, inputs=[x], outputs=[("output", out)], extra=sink)
    got = dataflow._run_graph(plan, ex)
    relu = [n["shape"] for n in got["nodes"] if n["path"] == "relu"]
    assert relu == [[2, 8], [2, 3]] == [e["output_shape"] for e in sink["trace"] if e["path"] == "relu"]
    twin = copy.deepcopy(module).to("meta")
    assert got == dataflow.capture(twin, [torch.empty(2, 4, device="meta")])


def test_a_run_without_a_trace_takes_the_planned_path(registry, settings):
    """A run that kept no trace (the receptive field's, hooks=None) is answered as before, from the meta module."""
    ex = execute(registry, parse(RunRequest, copy.deepcopy(REPEATED["linear"])), settings, hooks=None)
    got = dataflow._graph_fields(ex.plan, ex, registry)["graph"]
    assert ex.plan.built_meta is not None  # the planned path built it
    assert got == dataflow._planned_graph(ex.plan, ex, registry)["graph"]


def test_the_run_answer_carries_the_runs_graph(registry, settings):
    """Through /api/run's own function: the answer's graph is the run's (cache cleared), and the deep
    network's meta module is never built."""
    dataflow._CACHE.clear()
    body = copy.deepcopy(REPEATED["linear"])
    answer = requests.run(registry, body, settings)
    ex = _run(registry, settings, REPEATED["linear"])
    assert answer["graph"] == dataflow._planned_graph(ex.plan, ex, registry)["graph"]
    fresh = _run(registry, settings, {**REPEATED["linear"], "seed": 5})
    dataflow._graph_fields(fresh.plan, fresh, registry)
    assert fresh.plan.shared and fresh.plan.built_meta is None


def _fx_view(g: torch.fx.Graph) -> list[tuple[Any, ...]]:
    """What the dataflow view reads of a graph: each node's op, name, target, inputs and module stack."""
    return [
        (n.op, n.name, n.target, [a.name for a in n.all_input_nodes], list(n.meta.get("nn_module_stack", {}).items()))
        for n in g.nodes
    ]


def _chain_trace(module: torch.nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    sink: dict[str, Any] = {}
    with torch.no_grad(), tracing(module, sink):
        module(x)
    return sink["trace"]


@pytest.mark.parametrize(
    "name",
    [n for n, body in REQUESTS.items() if body["layer"]["type"] == "Sequential" and n not in SMALL],
)
def test_a_chain_of_sequentials_is_fxs_own_graph(registry, roomy, name):
    """A network of Sequential containers is drawn from the run's trace without fx tracing: the same
    graph node for node (names, targets, inputs, module stacks), or None where it is not such a chain."""
    ex = _run(registry, roomy, REQUESTS[name])
    modules = dict(named_modules(ex.module))
    links = dataflow._chain(ex.module, ex.extra["trace"])
    traced = dataflow.traced_graph(ex.module, 1) if _traceable(ex) else None
    chained = all(type(m) is torch.nn.Sequential or dataflow.is_leaf(m) for m in modules.values())
    assert (links is not None) == chained
    if links is not None:
        assert _fx_view(dataflow._chain_graph(links)) == _fx_view(traced)


def test_the_deep_benchmark_nets_take_the_chain(registry, settings, monkeypatch):
    """The 512-block benchmark nets' shape: no fx tracing for a run of Sequential blocks."""
    monkeypatch.setattr(dataflow, "_leaf_trace", lambda *a: pytest.fail("traced with fx"))
    for body in (REPEATED["linear"], REPEATED["conv"]):
        ex = _run(registry, settings, body)
        got = dataflow._run_graph(ex.plan, ex)
        assert (
            got["method"] == "fx"
            and len(got["nodes"]) == len(ex.extra["trace"]) - sum(1 for e in ex.extra["trace"] if not e["leaf"]) + 2
        )  # every leaf call, the input and the output


def _random_chain(draw_layers: list[Any]) -> torch.nn.Module:
    def make(item: Any) -> torch.nn.Module:
        if isinstance(item, list):
            return torch.nn.Sequential(*[make(i) for i in item])
        return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "id": torch.nn.Identity}[item]()

    return make(draw_layers)


_LAYERS = st.recursive(
    st.sampled_from(["relu", "tanh", "id"]), lambda inner: st.lists(inner, max_size=4), max_leaves=12
)


@given(layers=st.lists(_LAYERS, max_size=5))
@examples(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_chain_of_sequentials_is_fxs_own_graph(layers):
    """Nested Sequentials of any shape, empty ones included (each a leaf: fx calls it as one module)."""
    module = _random_chain(layers)
    x = torch.randn(2, 3)
    trace = _chain_trace(module, x)
    links = dataflow._chain(module, trace)
    assert links is not None
    assert _fx_view(dataflow._chain_graph(links)) == _fx_view(dataflow.traced_graph(module, 1))
    # the view made straight from the chain is the graph the meta module gives (None where a leaf is an
    # empty Sequential, whose forward() does not say it returns a tensor: the fx graph's path takes it)
    view = dataflow._chain_view(links, trace, x)
    assert (view is None) == any(isinstance(m, torch.nn.Sequential) for _, _, m in links)
    if view is not None and not dataflow.is_leaf(module):
        twin = copy.deepcopy(module).to("meta")
        want = dataflow.capture(twin, [torch.empty(2, 3, device="meta")])
        assert {"method": "fx", "nodes": view[0], "edges": view[1]} == want
    # a trace that is not the chain's calls (one leaf call missing) is refused: fx traces then
    leaves = [e for e in trace if e["leaf"]]
    if leaves:
        assert dataflow._chain(module, [e for e in trace if e is not leaves[-1]]) is None


def test_a_network_fx_cannot_trace_is_traced_once(registry, settings, monkeypatch):
    """A transformer layer's forward stops fx (control flow on the input's rank): the run's module is
    tried once, and the meta module, built from the same config, is recorded without a second try."""
    ex = _run(registry, settings, REQUESTS["tiny-transformer-encoder"])
    traced: list[str] = []
    leaf_trace = dataflow._leaf_trace

    def spy(module, n):
        traced.append(type(module).__name__)
        return leaf_trace(module, n)

    monkeypatch.setattr(dataflow, "_leaf_trace", spy)
    got = dataflow._graph_fields(ex.plan, ex, registry)["graph"]
    assert got["method"] == "hooks" and got["note"].startswith("torch.fx could not trace")
    assert len(traced) == 1
    monkeypatch.setattr(dataflow, "_leaf_trace", leaf_trace)
    assert got == dataflow._planned_graph(ex.plan, ex, registry)["graph"]  # tried and refused again there


def test_a_chains_node_names_are_fxs_whichever_chain_came_before():
    """The chain view's node names are kept by the chain's paths (a first run with a new config has the
    last run's paths): each chain, met first, again, or after another, is named as fx names its graph."""
    chains = [
        torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU()) for _ in range(12)]),
        # "input" and paths such as "1" whose fx names could meet: fx's namer decides, in order
        torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Tanh(), torch.nn.ReLU()), torch.nn.ReLU()),
        torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU()) for _ in range(11)]),
    ]
    x = torch.randn(2, 3)
    for module in [chains[0], chains[0], chains[1], chains[0], chains[2], chains[1], chains[1]]:
        trace = _chain_trace(module, x)
        links = dataflow._chain(module, trace)
        view = dataflow._chain_view(links, trace, x)
        want = [n.name for n in dataflow.traced_graph(module, 1).nodes]
        assert [n["id"] for n in view[0]] == want
        twin = copy.deepcopy(module).to("meta")
        assert {"method": "fx", "nodes": view[0], "edges": view[1]} == dataflow.capture(
            twin, [torch.empty(2, 3, device="meta")]
        )
