"""Planning from a skeleton (one meta module per distinct layer config, shared by every path with that
config) gives what planning from the whole meta module gives: the same shapes, trace, memory estimate,
parameter counts, notes and answers, for every preset and for deep networks of repeated blocks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from app.core import service
from app.core.errors import ShapeMismatch
from app.core.networks import tree
from app.core.networks.trace import tracing
from app.core.networks.tree import Skeleton, build_skeleton, resolve, subtree_ids
from app.core.presets import CLASSICS, PRESETS
from app.core.running import plan as plan_mod
from app.core.running.execute import execute
from app.core.schema import RunRequest, parse
from benchmarks.scale import conv_net, linear_net


def _whole(node: tree.LayerNode, keys: Any = None) -> Skeleton:
    """The planning module as it was before skeletons: every layer built, nothing shared."""
    module = tree.build(node)
    return Skeleton(module, [(module, 1)], [])


@pytest.fixture
def whole(monkeypatch):
    """Plan as before skeletons inside the ``with`` (the reference path): the whole meta module, and every
    block predicted by its layers' rules (no block answered from an identical one's prediction)."""

    class Whole:
        def __enter__(self) -> None:
            monkeypatch.setattr(plan_mod, "build_skeleton", _whole)
            monkeypatch.setattr(plan_mod, "subtree_ids", lambda node: {})

        def __exit__(self, *exc: Any) -> None:
            monkeypatch.setattr(plan_mod, "build_skeleton", build_skeleton)
            monkeypatch.setattr(plan_mod, "subtree_ids", subtree_ids)

    return Whole()


def _block(*layers: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Sequential", "layers": list(layers)}


RESIDUAL = {
    "type": "Residual",
    "body": [
        {"type": "Conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "BatchNorm2d", "num_features": 8},
        {"type": "ReLU"},
    ],
}
OPAQUE = {
    "type": "Opaque",
    "type_name": "MyBlock",
    "input_shapes": [[2, 8]],
    "output_shapes": [[2, 8]],
    "parameter_shapes": {"w": [8, 8]},
}
STRIDED = {"type": "Conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}
ENCODER = {"type": "TransformerEncoderLayer", "d_model": 16, "nhead": 2, "dim_feedforward": 32, "batch_first": True}

# deep networks of repeated blocks: where a skeleton shares its modules
REPEATED = {
    "linear": linear_net(40, 8),
    "conv": conv_net(12, 4, 6),
    "residual": {"layer": _block(*[RESIDUAL] * 6), "inputs": [{"shape": [1, 8, 5, 5]}], "seed": 3},
    "opaque": {"layer": _block(OPAQUE, {"type": "ReLU"}, OPAQUE), "inputs": [{"shape": [2, 8]}], "seed": 0},
    "encoder": {"layer": _block(*[ENCODER] * 3), "inputs": [{"shape": [2, 5, 16]}], "seed": 1},
    "float64": {**linear_net(6, 4), "dtype": "float64"},
    # one block config on shrinking inputs: a block met before answers only for the same input shapes
    "strided": {
        "layer": _block(*[_block(STRIDED, {"type": "ReLU"})] * 4, _block({"type": "ReLU", "name": "a"})),
        "inputs": [{"shape": [1, 4, 16, 16]}],
        "seed": 0,
    },
    "text": {
        "layer": _block(
            {"type": "Embedding", "num_embeddings": 8, "embedding_dim": 16}, ENCODER, ENCODER, {"type": "Dropout"}
        ),
        "inputs": [{"text": "a b c a", "tokenize": "whitespace"}],
        "seed": 2,
        "train": True,
    },
    "given parameters": {
        "layer": _block(*[{"type": "Linear", "in_features": 3, "out_features": 3}] * 3),
        "inputs": [{"shape": [1, 3]}],
        "parameters": {"1.bias": [1.0, 2.0, 3.0]},
        "seed": 0,
    },
}
REQUESTS = (
    {p["id"]: p["request"] for p in PRESETS}
    | {
        # the classics at a small input: their plans, not their arithmetic
        p["id"]: {**p["request"], "inputs": [{"shape": [1, 3, 64, 64]}]}
        for p in CLASSICS
        if p["id"] in ("resnet18", "resnet50", "mobilenet-v2", "densenet121", "unet")
    }
    | REPEATED
)


def _plan_facts(registry, settings, body: dict[str, Any], *, inner_trace: bool) -> dict[str, Any]:
    plan = plan_mod.plan_request(
        registry, parse(RunRequest, copy.deepcopy(body)), settings, enforce_limit=False, inner_trace=inner_trace
    )
    return {
        "predicted": plan.predicted_shapes,
        "trace": plan.predicted_trace,
        "meta_shapes": plan.meta_shapes,
        "meta_trace": plan.meta_trace,
        "estimate": plan.estimate_bytes,
        "warnings": plan.warnings,
        "param_count": sum(p.numel() for p in plan.meta.parameters()),
        "numels": sorted(plan.param_numels or []),
        "repr": repr(plan.meta),
        "highs": [p.high for p in plan.inputs],
        "submodules": plan_mod.builds_submodules(plan),
        "parameters": {k: v.tolist() for k, v in plan.parameters.items()},
    }


@pytest.mark.parametrize("inner_trace", [False, True])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_skeleton_plans_what_the_whole_module_plans(registry, settings, whole, name, inner_trace):
    body = REQUESTS[name]
    got = _plan_facts(registry, settings, body, inner_trace=inner_trace)
    with whole:
        want = _plan_facts(registry, settings, body, inner_trace=inner_trace)
    assert got == want
    assert got["param_count"] == sum(got["numels"])


@pytest.mark.parametrize("name", list(REPEATED))
def test_shape_and_run_answers_are_those_of_the_whole_module(registry, settings, whole, name):
    body = REPEATED[name]
    got = [service.shape(registry, copy.deepcopy(body), settings, detail=d) for d in ("full", "shapes")]
    got.append(service.run(registry, copy.deepcopy(body), settings))
    with whole:
        want = [service.shape(registry, copy.deepcopy(body), settings, detail=d) for d in ("full", "shapes")]
        want.append(service.run(registry, copy.deepcopy(body), settings))
    assert got == want


def test_repeated_blocks_build_one_module_per_distinct_layer(registry, settings):
    body = linear_net(64, 8)
    node = resolve(registry, body["layer"])
    with torch.device("meta"):
        skeleton = build_skeleton(node)
    assert skeleton.shared
    assert sorted((type(m).__name__, n) for m, n in skeleton.leaves) == [("Linear", 64), ("ReLU", 64)]
    # the stages, the blocks and the root: every container once
    assert len(skeleton.containers) == 1 + 1 + 64
    # a run plans without the whole meta module
    ex = execute(registry, parse(RunRequest, body), settings)
    assert ex.plan.shared and ex.plan.built_meta is None
    modules = dict(ex.plan.meta.named_modules())
    assert len(modules) == 1 + 1 + 64 * 3 and len({id(m) for m in modules.values()}) == len(modules)


def test_layers_that_differ_in_any_argument_are_not_shared(registry):
    layers = [
        {"type": "Dropout", "p": 0.0},
        {"type": "Dropout", "p": -0.0},  # a different repr: torch prints p=-0.0
        {"type": "Linear", "in_features": 2, "out_features": 2},
        {"type": "Linear", "in_features": 2, "out_features": 2, "bias": False},
        {"type": "Linear", "in_features": 2, "out_features": 2},
    ]
    node = resolve(registry, _block(*layers))
    with torch.device("meta"):
        skeleton = build_skeleton(node)
    uses = [(type(m).__name__, n) for m, n in skeleton.leaves]
    assert sorted(uses) == [("Dropout", 1), ("Dropout", 1), ("Linear", 1), ("Linear", 2)]
    assert repr(skeleton.module) == repr(tree.build(node))


def test_a_predicted_trace_sizes_activations_in_the_run_dtype(registry, settings):
    """The predicted trace's activation bytes are the real run's, a parameter-free layer's too (float64:
    8 bytes an element, as the run's ReLU outputs hold)."""
    body = {**linear_net(3, 4), "dtype": "float64"}
    shape = service.shape(registry, copy.deepcopy(body), settings, detail="shapes")
    run = service.run(registry, copy.deepcopy(body), settings)
    keys = ("path", "type", "input_shapes", "output_shapes", "param_count", "macs", "activation_bytes")
    # by path: a chain's predicted trace lists a block after its layers, a run as it enters it
    predicted = {e["path"]: {k: e[k] for k in keys} for e in shape["trace"]}
    ran = {e["path"]: {k: e[k] for k in keys} for e in run["trace"]}
    assert predicted == ran and len(ran) == 1 + 3 + 3 * 2
    assert {e["activation_bytes"] for e in run["trace"]} == {8 * 4 * 8}
    assert shape["totals"] == run["totals"]


def test_the_run_trace_counts_a_module_at_two_paths_once_in_its_container():
    """One Linear called twice inside a block: the block's count is what ``parameters()`` gives (once)."""
    linear = torch.nn.Linear(3, 3)
    net = torch.nn.Sequential(torch.nn.Sequential(linear, torch.nn.ReLU(), linear), torch.nn.Linear(3, 2))
    sink: dict[str, Any] = {}
    with torch.no_grad(), tracing(net, sink):
        net(torch.randn(1, 3))
    counts = {e["path"]: e["param_count"] for e in sink["trace"]}
    assert counts == {p: sum(x.numel() for x in net.get_submodule(p).parameters()) for p in counts}
    assert counts["0"] == 12 and [e["path"] for e in sink["trace"]] == ["0", "0.0", "0.1", "0.0", "1"]


def test_a_repeated_block_that_cannot_take_its_input_is_named_as_before(registry, settings, whole):
    """The fifth of one block config shrinks 16x16 to nothing: the refusal names it, as without sharing."""
    conv = {**STRIDED, "padding": 0}
    body = {"layer": _block(*[_block(conv, {"type": "ReLU"})] * 5), "inputs": [{"shape": [1, 4, 20, 20]}]}

    def refusal() -> dict[str, Any]:
        with pytest.raises(ShapeMismatch) as info:
            plan_mod.plan_request(registry, parse(RunRequest, copy.deepcopy(body)), settings)
        return {"message": info.value.detail, **info.value.extra}

    got = refusal()
    with whole:
        want = refusal()
    assert got == want
    assert got["path"] == "3.0" and len(got["trace"]) == 3 * 3


def _layer(width: int) -> st.SearchStrategy[dict[str, Any]]:
    """A layer that maps (N, width) to (N, width), from a small palette whose members repeat often."""
    return st.sampled_from(
        [
            {"type": "Linear", "in_features": width, "out_features": width},
            {"type": "Linear", "in_features": width, "out_features": width, "bias": False},
            {"type": "ReLU"},
            {"type": "Tanh"},
            {"type": "Dropout", "p": 0.25},
            {"type": "LayerNorm", "normalized_shape": width},
            {"type": "BatchNorm1d", "num_features": width},
        ]
    )


def _network(width: int) -> st.SearchStrategy[dict[str, Any]]:
    """Sequentials and Residuals of those layers, nested, each block often repeated whole."""

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        blocks = st.lists(inner, min_size=1, max_size=3)
        repeated = st.tuples(blocks, st.integers(1, 4)).map(lambda bk: bk[0] * bk[1])
        return st.one_of(
            repeated.map(lambda layers: _block(*layers)),
            repeated.map(lambda layers: {"type": "Residual", "body": layers}),
        )

    return st.recursive(_layer(width), extend, max_leaves=12)


@examples(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.integers(1, 5).flatmap(lambda w: st.tuples(st.just(w), _network(w))), st.sampled_from(["float32", "float64"]))
def test_any_network_of_repeated_blocks_plans_as_the_whole_module(registry, settings, whole, case, dtype):
    width, layer = case
    body = {"layer": _block(layer), "inputs": [{"shape": [3, width]}], "seed": 0, "dtype": dtype}
    got = _plan_facts(registry, settings, body, inner_trace=True)
    with whole:
        want = _plan_facts(registry, settings, body, inner_trace=True)
    assert got == want


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_the_plan_converts_dtypes_as_module_to_does(dtype):
    """Each module converted once, skipping those with nothing to change: the tensors ``Module.to`` gives."""

    def net() -> torch.nn.Module:
        with torch.device("meta"):
            m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.ReLU())
            m[2].register_buffer("f64", torch.zeros(2, dtype=torch.float64))
            m.register_buffer("steps", torch.zeros(1, dtype=torch.int32))
        return m

    ours, torchs = net(), net().to(dtype=dtype)
    plan_mod._to_dtype(ours.modules(), dtype)

    def dtypes(m: torch.nn.Module) -> dict[str, torch.dtype]:
        return {n: t.dtype for n, t in [*m.named_parameters(), *m.named_buffers()]}

    assert dtypes(ours) == dtypes(torchs)
    assert dtypes(ours)["steps"] == torch.int32 and dtypes(ours)["0.weight"] == dtype
