"""Planning a network costs per distinct config, not per layer: each distinct leaf config is validated
once, subtree ids are found while resolving, a repeated block's structure is checked once and the
skeleton builds each distinct subtree once. Every answer stays the one the per-layer way gives."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import pickle
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from app.core.errors import LayerExplorerError
from app.core.networks import tree
from app.core.networks.containers import check_structure
from app.core.networks.tree import build_skeleton, resolve, subtree_ids, walk, walked_subtree_ids
from app.core.presets import CLASSICS, PRESETS
from app.core.running import plan as plan_mod
from app.core.schema import RunRequest, parse
from benchmarks.scale import conv_net, linear_net


def _block(*layers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "Sequential", "layers": list(layers), **extra}


LINEAR = {"type": "Linear", "in_features": 4, "out_features": 4}
ENCODER = {"type": "TransformerEncoderLayer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "batch_first": True}
OPAQUE = {"type": "Opaque", "type_name": "B", "input_shapes": [[2, 4]], "output_shapes": [[2, 4]]}
# leaves met again with lists, dicts, nested layer configs and tensors among their arguments
MIXED = _block(
    *[{"type": "Unflatten", "dim": 1, "unflattened_size": [2, 2]}] * 2,
    *[OPAQUE] * 2,
    *[{**OPAQUE, "parameter_shapes": {"w": [2, 2]}}] * 2,
    *[{"type": "TransformerEncoder", "encoder_layer": ENCODER, "num_layers": 2}] * 2,
    ENCODER,
    *[{"type": "CrossEntropyLoss", "weight": [1.0, 2.0]}] * 2,
    *[LINEAR] * 3,
)
MHA = {"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 2}
ATTENTION = {
    "type": "Graph",
    "inputs": ["x"],
    "nodes": [
        {"name": "a", "module": MHA, "args": ["x", "x", "x"]},
        {"name": "y", "op": "getitem", "args": ["a", 0]},
        {"name": "b", "module": MHA, "args": ["y", "y", "y"]},
        {"name": "z", "op": "getitem", "args": ["b", 0]},
        {"name": "c", "module": {"type": "Sequential", "layers": [{"type": "ReLU"}] * 3}, "args": ["z"]},
    ],
}
CONFIGS = (
    {p["id"]: p["request"]["layer"] for p in PRESETS}
    | {p["id"]: p["request"]["layer"] for p in CLASSICS}
    | {
        "linear": linear_net(24, 8)["layer"],
        "conv": conv_net(12, 4, 6)["layer"],
        "mixed": MIXED,
        "residuals": _block(*[{"type": "Residual", "body": [LINEAR, {"type": "ReLU"}]}] * 4),
        # a graph met twice: resolved each time (its nodes' fields are its own), its layers kept
        "graphs": _block(ATTENTION, ATTENTION, _block(ATTENTION), _block(ATTENTION)),
        "stages": {"type": "Sequential", "layers": [_block(*[_block(LINEAR, {"type": "ReLU"})] * 3)] * 3},
    }
)


def _no_kept_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every leaf validated on its own: the per-layer way, the reference."""
    monkeypatch.setattr(tree, "_json_key", lambda config: None)


def _same_nodes(a: tree.LayerNode, b: tree.LayerNode) -> None:
    """Node for node the same specs, arguments (tensors equal, none shared), names and fields."""
    pairs_a, pairs_b = list(walk(a)), list(walk(b))
    assert [p for p, _ in pairs_a] == [p for p, _ in pairs_b]
    for (_, x), (_, y) in zip(pairs_a, pairs_b):
        assert (x.spec, x.name, x.field, list(x.slots)) == (y.spec, y.name, y.field, list(y.slots))
        assert list(x.args) == list(y.args)
        for k, v in x.args.items():
            w = y.args[k]
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, w) and v.dtype == w.dtype
            else:
                assert type(v) is type(w) and repr(v) == repr(w)


def _groups(root: tree.LayerNode, ids: dict[int, int]) -> dict[str, str | None]:
    """Each node's path -> the first path with its id (None: no id): the partition the ids make."""
    first: dict[int, str] = {}
    out: dict[str, str | None] = {}
    for path, node in walk(root):
        sid = ids.get(id(node))
        out[path] = None if sid is None else first.setdefault(sid, path)
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_resolving_each_distinct_leaf_once_gives_the_per_layer_tree(registry, monkeypatch, name):
    config = CONFIGS[name]
    got = resolve(registry, copy.deepcopy(config))
    with monkeypatch.context() as m:
        _no_kept_leaves(m)
        want = resolve(registry, copy.deepcopy(config))
    _same_nodes(got, want)
    # the ids found while resolving split the tree as the walk over it does
    assert _groups(got, subtree_ids(got)) == _groups(got, walked_subtree_ids(got))
    assert got.subtrees is subtree_ids(got)


def test_a_copied_tree_finds_its_own_ids(registry):
    """The ids found while resolving are keyed by the tree's nodes: a copy's are found by a walk."""
    node = resolve(registry, CONFIGS["residuals"])
    for twin in (copy.deepcopy(node), pickle.loads(pickle.dumps(node))):
        assert twin.subtrees is None
        assert _groups(twin, subtree_ids(twin)) == _groups(node, subtree_ids(node))
    assert node.subtrees is not None


def test_layers_resolved_from_one_config_share_no_argument(registry):
    node = resolve(registry, MIXED)
    layers = [n for _, n in walk(node) if n is not node]
    for x, y in itertools.combinations(layers, 2):
        assert x.args is not y.args
        for k, v in x.args.items():
            if isinstance(v, (list, dict, torch.Tensor)) and k in y.args:
                assert v is not y.args[k]
    # a tensor argument is decoded for each layer (a module would hold it as its own buffer)
    weights = [n.args["weight"] for n in layers if n.spec.type == "CrossEntropyLoss"]
    assert len(weights) == 2 and weights[0] is not weights[1]


# configs that JSON or Python equality alone would confuse: each must be resolved (or refused) as itself
LOOKALIKES = [
    ({"type": "Dropout", "p": 0.0}, {"type": "Dropout", "p": -0.0}),
    ({"type": "Linear", "in_features": 2, "out_features": 2, "bias": True}, {**LINEAR, "bias": 1}),
    (
        {"type": "Linear", "in_features": 2, "out_features": 2},
        {"type": "Linear", "in_features": 2.0, "out_features": 2},
    ),
    ({"type": "MaxPool2d", "kernel_size": [2, 2]}, {"type": "MaxPool2d", "kernel_size": (2, 2)}),
    ({"type": "LeakyReLU", "negative_slope": 0.5}, {"type": "LeakyReLU", "negative_slope": math.nan}),
    ({"type": "LeakyReLU", "negative_slope": math.inf}, {"type": "LeakyReLU", "negative_slope": math.inf}),
    # NaN and null write alike as JSON
    ({"type": "Softmax", "dim": None}, {"type": "Softmax", "dim": math.nan}),
    ({"type": "Identity"}, {"type": "Identity", "name": "skip"}),
    # blocks: the same text, told apart by equality, or a name inside
    (_block({"type": "MaxPool2d", "kernel_size": [2, 2]}), _block({"type": "MaxPool2d", "kernel_size": (2, 2)})),
    (_block({"type": "Softmax", "dim": None}), _block({"type": "Softmax", "dim": math.nan})),
    (_block(LINEAR, {"type": "ReLU"}), _block(LINEAR, {"type": "ReLU", "name": "act"})),
    (
        {"type": "Linear", "in_features": 2, "out_features": 2},
        {"type": "Linear", "in_features": 2**70, "out_features": 2},
    ),
]


def _outcome(registry, config: Any) -> Any:
    try:
        node = resolve(registry, config)
    except LayerExplorerError as exc:
        return ("refused", type(exc).__name__, exc.detail, exc.field)
    return node


@pytest.mark.parametrize("pair", LOOKALIKES, ids=[f"{a}|{b}" for a, b in LOOKALIKES])
def test_configs_that_look_alike_are_resolved_each_as_itself(registry, monkeypatch, pair):
    first, second = pair
    for order in ([first, second, first], [second, first, second]):
        config = _block(*order)
        got = _outcome(registry, config)
        with monkeypatch.context() as m:
            _no_kept_leaves(m)
            want = _outcome(registry, config)
        if isinstance(want, tuple):
            assert got == want
        else:
            _same_nodes(got, want)


def test_a_repeated_block_builds_once_in_the_skeleton(registry):
    node = resolve(registry, linear_net(64, 8)["layer"])
    with torch.device("meta"):
        skeleton = build_skeleton(node, subtree_ids(node))
    assert sorted((type(m).__name__, n) for m, n in skeleton.leaves) == [("Linear", 64), ("ReLU", 64)]
    # the root, the one stage and one block, standing at 64 paths
    assert [n for _, n in skeleton.containers] == [1, 1, 64]
    assert skeleton.shared
    paths = dict(skeleton.module.named_modules(remove_duplicate=False))
    assert len(paths) == 1 + 1 + 64 * 3 and repr(skeleton.module) == repr(tree.build(node))


def test_a_block_at_several_depths_counts_its_paths(registry):
    """One block config inside two different containers and on its own: paths multiply along the way."""
    block = _block(LINEAR, {"type": "ReLU"})
    config = _block(_block(block, block, block), _block(block, LINEAR), block, _block(block, block, block))
    node = resolve(registry, config)
    with torch.device("meta"):
        skeleton = build_skeleton(node, subtree_ids(node))
    paths = list(skeleton.module.named_modules(remove_duplicate=False))
    for m, n in [*skeleton.leaves, *skeleton.containers]:
        assert n == sum(1 for _, x in paths if x is m)
    assert len(skeleton.containers) == 4  # the root, the triple (twice), the pair, the block


def _checked(root: tree.LayerNode, ids: dict[int, int]) -> Any:
    try:
        check_structure(root, ids)
    except LayerExplorerError as exc:
        return (exc.detail, exc.field)
    return None


def test_a_repeated_block_with_a_layer_of_two_inputs_is_refused_as_before(registry):
    loss = {"type": "MSELoss"}
    bad = _block(LINEAR, loss)
    for config in (
        _block(_block(LINEAR), _block(LINEAR), bad, bad),
        _block(*[_block(_block(LINEAR), bad)] * 3),
        _block(_block(LINEAR, _block(LINEAR)), _block(LINEAR, _block(LINEAR, loss))),
    ):
        node = resolve(registry, config)
        got = _checked(node, subtree_ids(node))
        assert got is not None and got == _checked(node, {})


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            LINEAR,
            {**LINEAR, "bias": False},
            {"type": "ReLU"},
            {"type": "Dropout", "p": 0.0},
            {"type": "Dropout", "p": -0.0},
            {"type": "LayerNorm", "normalized_shape": [4]},
            {"type": "Unflatten", "dim": 1, "unflattened_size": [2, 2]},
            {"type": "Flatten"},
            {"type": "MSELoss"},
        ]
    )


def _network() -> st.SearchStrategy[dict[str, Any]]:
    """Sequentials and Residuals of those layers, two levels deep, each block often repeated whole."""

    def level(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        repeated = st.tuples(st.lists(inner, min_size=1, max_size=3), st.integers(1, 3)).map(lambda bk: bk[0] * bk[1])
        return st.one_of(
            repeated.map(lambda layers: _block(*layers)),
            repeated.map(lambda layers: {"type": "Residual", "body": layers}),
            st.tuples(repeated, inner).map(lambda x: {"type": "Residual", "body": x[0], "shortcut": x[1]}),
        )

    one = level(_leaf())
    return st.one_of(_leaf(), one, level(st.one_of(_leaf(), one)))


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_network())
def test_any_network_resolves_checks_and_builds_per_distinct_config_as_per_layer(registry, monkeypatch, layer):
    # and two blocks of one Linear that differ only in the Linear's name: ids tell them apart
    config = _block(layer, _block(LINEAR, name="a"), _block({**LINEAR, "name": "x"}, name="b"))
    got = resolve(registry, copy.deepcopy(config))
    with monkeypatch.context() as m:
        _no_kept_leaves(m)
        want = resolve(registry, copy.deepcopy(config))
    _same_nodes(got, want)
    ids = subtree_ids(got)
    assert _groups(got, ids) == _groups(got, walked_subtree_ids(got))
    assert _checked(got, ids) == _checked(got, {})
    with torch.device("meta"):
        skeleton = build_skeleton(got, ids)
    paths = list(skeleton.module.named_modules(remove_duplicate=False))
    assert repr(skeleton.module) == repr(tree.build(got))
    for m, n in [*skeleton.leaves, *skeleton.containers]:
        assert n == sum(1 for _, x in paths if x is m)


# requests whose estimates must not move: presets, classics at a small input, deep nets of repeated blocks,
# attention inside a repeated block, a layer without a formula in a network (the meta trace answers)
ESTIMATED = (
    {p["id"]: p["request"] for p in PRESETS}
    | {
        p["id"]: {**p["request"], "inputs": [{"shape": [1, 3, 64, 64]}]}
        for p in CLASSICS
        if p["id"] in ("resnet18", "mobilenet-v2", "unet")
    }
    | {
        "linear": linear_net(40, 8),
        "conv": conv_net(12, 4, 6),
        "encoders": {"layer": _block(*[ENCODER] * 3), "inputs": [{"shape": [2, 5, 8]}]},
        # attention weights sent for each MultiheadAttention call of a graph, one module called twice
        "attention": {"layer": ATTENTION, "inputs": [{"shape": [3, 8]}]},
        "half": {**linear_net(6, 4), "dtype": "float16"},
        "strided": {
            "layer": _block(*[_block({**ENCODER, "d_model": 4, "nhead": 1}, {"type": "Flatten"})] * 1),
            "inputs": [{"shape": [1, 2, 4]}],
        },
    }
)


@pytest.mark.parametrize("name", list(ESTIMATED))
def test_the_estimate_from_distinct_calls_is_the_estimate_from_every_call(registry, settings, name):
    plan = plan_mod.plan_request(
        registry, parse(RunRequest, copy.deepcopy(ESTIMATED[name])), settings, enforce_limit=False
    )
    sizes = {"param_bytes": 1000, "input_bytes": 24}
    got = plan_mod.estimate(plan, registry, settings, **sizes)
    # every call of the trace, one by one: the way without counted calls
    want = plan_mod.estimate(dataclasses.replace(plan, calls=None), registry, settings, **sizes)
    assert got == want
    if plan.node.is_container and plan.predicted is not None:
        assert plan.calls is not None
        assert sum(c[4] for c in plan.calls) == len(plan.predicted_trace)


def test_a_deep_network_estimates_a_handful_of_calls(registry, settings):
    plan = plan_mod.plan_request(registry, parse(RunRequest, linear_net(512, 8)), settings, enforce_limit=False)
    assert plan.calls is not None and len(plan.predicted_trace) == 2 + 512 * 3
    # the stage (one module, at two paths), the block, its Linear and its ReLU
    assert sorted(c[4] for c in plan.calls) == [2, 512, 512, 512]


@pytest.mark.parametrize("name", [n for n in ESTIMATED if n != "half"])
def test_the_predicted_trace_is_every_layers_own_entry(registry, settings, name):
    """Entries copied from an identical call's (and blocks replayed) equal each layer's own entry, made
    by trace_entry from the whole meta module (every layer its own module, nothing counted ahead)."""
    plan = plan_mod.plan_request(
        registry, parse(RunRequest, copy.deepcopy(ESTIMATED[name])), settings, enforce_limit=False
    )
    assert plan.predicted is not None
    ref: list[dict[str, Any]] = []
    tree.predict(plan.node, plan.meta, [p.shape for p in plan.inputs], trace=ref)
    assert plan.predicted_trace == ref
