"""Receptive fields' fast paths (issue 18) give exactly the general path's answers.

- The kept fx trace (one per network config, traced from the plan's meta module) answers as each step
  tracing the module itself did, and two configs that differ only in their wiring never share one.
- One encoder per answer (each distinct set and picture encoded once) gives the entries that encoding
  each on its own gives, and no two entries share a list.
- The effective field's statistics read from ∂y/∂x (|g| folded as max(max g, −min g), the count as
  g ≠ 0) equal those of |g| itself, NaN and −0.0 included.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from app.core.config import Settings
from app.core.graphs import intervals, receptive, wire
from app.core.networks import graph as dataflow
from app.core.networks.trace import named_modules
from app.core.presets import CLASSICS, PRESETS
from app.core.registry import default_registry
from app.core.running import execute as execute_mod
from app.core.running import requests
from app.core.running.execute import materialise
from app.core.running.plan import plan_request
from app.core.schema import RunRequest
from benchmarks.scale import conv_net, linear_net


def _json(registry, body: dict[str, Any]) -> str:
    return json.dumps(receptive.receptive_field(registry, body, Settings()))


#: the test plugin's networks change tensors in place (``out += x``, ReLU(inplace=True)): the recorded
#: run copies them first, so there is no generated recorder
PLUGINS = tuple(str(Path(__file__).parent / "plugins" / name) for name in ("in_place_layers.py", "mode_branch.py"))
IN_PLACE = {"layer": {"type": "InPlaceResidual"}, "inputs": [{"shape": [2, 6]}], "seed": 7}


@pytest.fixture(scope="module")
def plugged():
    return default_registry(PLUGINS)


def _requests() -> list[tuple[str, dict[str, Any]]]:
    """Networks through every path: index rules (fx), autograd through the twin (an Upsample has no rule),
    recorded by the interpreter with copies (a ReLU in place) or by the generated recorder, eval mode,
    float64."""
    upsample = {
        "type": "Sequential",
        "layers": [
            {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
            {"type": "ReLU"},
            {"type": "Upsample", "scale_factor": 2},
            {"type": "Conv2d", "in_channels": 2, "out_channels": 1, "kernel_size": 3},
        ],
    }
    block = next(p for p in PRESETS if p["id"] == "tutorial-residual-block")["request"]
    # batch statistics and sample statistics: both kinds of note
    norms = {
        "type": "Sequential",
        "layers": [
            {"type": "Conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"type": "GroupNorm", "num_groups": 2, "num_channels": 4},
            {"type": "BatchNorm2d", "num_features": 4},
            {"type": "Conv2d", "in_channels": 4, "out_channels": 2, "kernel_size": 1},
        ],
    }
    out = [
        ("linear", {**linear_net(6, 8), "index": [2, 3]}),
        ("conv-eval", {**conv_net(3, 2, 6), "index": [0, 1, 2, 3], "train": False}),
        ("conv-float64", {**conv_net(2, 2, 5), "index": [0, 0, 4, 4], "dtype": "float64"}),
        ("upsample", {"layer": upsample, "inputs": [{"shape": [1, 1, 6, 6]}], "index": [0, 0, 3, 4]}),
        ("upsample-structural", {"layer": upsample, "inputs": [{"shape": [1, 1, 6, 6]}], "index": [0, 0, 1, 2], "effective": False}),
        ("block", {**block, "path": "fc2", "index": [0, 1]}),
        ("in-place", {**IN_PLACE, "index": [1, 2]}),
        ("norms", {"layer": norms, "inputs": [{"shape": [2, 2, 5, 5]}], "index": [0, 1, 2, 2]}),
    ]  # fmt: skip
    return out


@pytest.mark.parametrize(("name", "body"), _requests(), ids=lambda v: v if isinstance(v, str) else "")
def test_kept_trace_answers_as_tracing_each_time(plugged, monkeypatch, name, body):
    registry = plugged
    receptive._TRACES.clear()
    cold = _json(registry, body)
    warm = _json(registry, body)  # from the kept trace
    assert warm == cold
    # the general path: no kept graph, so the index rules, the recorded run and the twin trace the
    # module they are given, as before the trace was kept
    monkeypatch.setattr(receptive, "_trace", lambda plan, req: None)
    assert _json(registry, body) == cold, name
    assert json.loads(cold)["method"] == "fx"
    if name == "norms":
        assert [n["code"] for n in json.loads(cold)["notes"]] == ["batch_statistics", "sample_statistics"]


def test_configs_wired_differently_do_not_share_a_trace(registry):
    """The same two convolutions, chained or side by side: the same modules, another graph."""
    conv = {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 1}

    def net(nodes: list[dict[str, Any]]) -> dict[str, Any]:
        layer = {"type": "Graph", "inputs": ["x"], "nodes": nodes}
        return {"layer": layer, "inputs": [{"shape": [1, 1, 9, 9]}], "index": [0, 0, 4, 4]}

    chained = net([{"name": "a", "module": conv, "args": ["x"]}, {"name": "b", "module": conv, "args": ["a"]}])
    side_by_side = net(
        [
            {"name": "a", "module": conv, "args": ["x"]},
            {"name": "b", "module": conv, "args": ["x"]},
            {"name": "sum", "op": "add", "args": ["a", "b"]},
        ]
    )
    receptive._TRACES.clear()
    for body, window in ((chained, 25), (side_by_side, 9), (chained, 25)):
        answer = json.loads(_json(registry, body))
        assert answer["input"]["count"] == window
    assert len(receptive._TRACES) == 2


_Encoder = receptive._Encoder


def test_a_forward_that_branches_on_its_mode_is_traced_per_mode(plugged):
    """fx traces the branch the module is in: training mode calls one layer, eval mode the other."""
    receptive._TRACES.clear()
    for train, called in ((True, "train_path"), (False, "eval_path"), (True, "train_path")):
        body = {"layer": {"type": "ModeBranch"}, "inputs": [{"shape": [2, 4]}], "index": [1, 2], "train": train}
        answer = json.loads(_json(plugged, body))
        nodes = {n["id"]: n for n in answer["nodes"]}
        assert [k for k, n in nodes.items() if n["op"] == "module"] == [called]
        # the called layer's own element, reached by the index rules and by the gradient
        assert nodes[called]["count"] == 1 and nodes[called]["effective"]["count"] == 1
        assert answer["input"]["count"] == 4


class _EachOnItsOwn(_Encoder):
    """The general path: every set and picture encoded as if no other entry had been."""

    def structural(self, sets: intervals.Sets) -> dict[str, Any]:
        return _Encoder().structural(sets)

    def runs(self, sets: intervals.Sets) -> list[list[list[int]]]:
        return _Encoder().runs(sets)

    def grid(self, sets: intervals.Sets, shape: list[int]) -> dict[str, Any]:
        return _Encoder().grid(sets, shape)

    def png(self, levels: np.ndarray) -> str:
        return wire.png(levels)

    def unreached(self, shape: tuple[int, ...], make) -> dict[str, Any]:
        return make()


def test_one_encoder_per_answer_equals_encoding_each_entry(registry, monkeypatch):
    # a deep net: its nodes repeat the same sets and (dead) gradients
    body = {**linear_net(24, 8), "index": [1, 2]}
    shared = receptive.receptive_field(registry, body, Settings())
    monkeypatch.setattr(receptive, "_Encoder", _EachOnItsOwn)
    alone = receptive.receptive_field(registry, body, Settings())
    assert json.dumps(shared) == json.dumps(alone)
    # and no entry shares a list with another: a client may change one
    nodes = [n for n in shared["nodes"] if n["runs"]]
    assert len(nodes) > 40
    seen: set[int] = set()
    for n in nodes:
        for part in (n["runs"], *n["runs"], n["grid"]["rle"], n["effective"], n["effective"]["grid"]):
            assert id(part) not in seen
            seen.add(id(part))
        seen.add(id(n["effective"]["grid"]["shape"]))
    # most of its nodes' gradients are zero (the forward dies out): one entry per shape, copied
    assert sum(n["effective"]["count"] == 0 for n in nodes) > 40


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 2, 3, 4)])
def test_a_gradient_zero_everywhere_answers_as_each_alone(shape):
    """∂y/∂x of ±0 everywhere (signed zeros mixed): the entry kept per shape equals the one worked out on
    its own and the torch path's, with lists of its own; a non-zero gradient of that shape is not taken
    for it."""
    encoder = _Encoder()
    zeros = torch.zeros(shape)
    signed = zeros.clone()
    signed.view(-1)[::2] = -0.0
    for g in (zeros, signed, zeros.double()):
        got = receptive._effective_small(g.numpy(), encoder)
        assert repr(got) == repr(receptive._effective_small(g.numpy(), _EachOnItsOwn()))
        assert repr(got) == repr(receptive._effective(g, _EachOnItsOwn()))
        assert got["max"] == 0.0 and got["count"] == 0
        again = receptive._effective_small(g.numpy(), encoder)
        assert again == got and again is not got and again["grid"] is not got["grid"]
        assert again["grid"]["shape"] is not got["grid"]["shape"]
    one = zeros.clone()
    one.view(-1)[-1] = 0.5
    reached = receptive._effective_small(one.numpy(), encoder)
    assert reached["count"] == 1 and reached["max"] == 0.5


def _reference(g: torch.Tensor) -> dict[str, Any]:
    """The effective entry as it was made from |g| itself."""
    heat = g.abs()
    top = float(heat.max()) if heat.numel() else 0.0
    folded = receptive._fold(heat)
    out: dict[str, Any] = {"max": top, "count": int((heat > 0).sum()), "png": None, "grid": None}
    if heat.numel() <= receptive.HEAT_LIMIT and heat.dim() > 2:
        out["png"] = wire.quantise(heat.float().numpy(), top).tolist()
    if folded.numel() <= receptive.GRID_LIMIT:
        out["grid"] = wire.quantise(folded.float().numpy(), top).tolist()
    return out


_values = st.one_of(st.just(0.0), st.just(-0.0), st.floats(-1e6, 1e6, allow_nan=False, width=32))
_NODE = {"id": "n", "op": "module", "label": "L", "path": "n", "type": "L"}


def _effective(g: torch.Tensor) -> dict[str, Any]:
    return receptive._entry(_NODE, intervals.point(list(g.shape), tuple(0 for _ in g.shape)), g)["effective"]


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=6), elements=_values),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_effective_statistics_from_the_gradient_equal_those_of_its_abs(values, dtype):
    g = torch.from_numpy(values).to(dtype)
    eff = _effective(g)
    want = _reference(g)
    # the same number, sign of zero included (JSON writes 0.0 and -0.0 apart)
    assert repr(eff["max"]) == repr(want["max"])
    assert eff["count"] == want["count"]
    got_png = None if eff["png"] is None else wire.unpng(eff["png"]).reshape(-1).tolist()
    want_png = None if want["png"] is None else np.array(want["png"]).reshape(-1).tolist()
    assert got_png == want_png
    got_grid = None if eff["grid"] is None else wire.unpng(eff["grid"]["png"], eff["grid"]["shape"]).tolist()
    assert got_grid == want["grid"]


# a NaN gradient has no level to draw (NumPy warns as it casts); its maximum and count are still |g|'s
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 2, 3, 4)])
def test_a_nan_gradient_counts_as_before(shape):
    g = torch.linspace(-1, 1, math.prod(shape)).reshape(shape)
    g.view(-1)[1] = math.nan
    g.view(-1)[2] = 0.0
    eff, want = _effective(g), _reference(g)
    assert math.isnan(eff["max"]) and math.isnan(want["max"])
    assert eff["count"] == want["count"] == g.numel() - 2  # NaN is not > 0, and one zero


@pytest.mark.parametrize(
    "request_",
    [
        linear_net(5, 6),
        conv_net(3, 2, 6),
        *(p["request"] for p in PRESETS if p["id"] in ("tutorial-residual-net", "lenet5", "resnet-basic-block")),
    ],
    ids=["linear", "conv", "residual-net", "lenet5", "resnet-block"],
)
def test_generated_recorder_keeps_what_the_interpreter_keeps(registry, request_):
    """The same values, by the same names in the same order, the same gradients; under the twin's
    dependency mode too. A graph that changes a tensor in place has no recorder (the interpreter copies)."""
    plan = plan_request(registry, RunRequest.model_validate(request_), Settings(), inner_trace=False)
    module, xs = materialise(plan)
    graph = dataflow.traced(plan.meta, len(xs)).graph
    run = dataflow.recorder(plan.meta, graph)
    assert run is not None
    for mode in (contextlib.nullcontext, receptive._DependencyMode):
        fed = [x.clone().requires_grad_(True) for x in xs]
        with torch.enable_grad():
            with mode():
                fast = run(module, fed)
            _, slow = dataflow.record(module, fed, mode, graph)
        assert list(fast) == list(slow)
        for name in slow:
            assert torch.equal(fast[name], slow[name]), name
        out = fast["output"].reshape(-1)[0]
        grads = [torch.autograd.grad(v["output"].reshape(-1)[0], fed)[0] for v in (fast, slow)]
        assert torch.equal(grads[0], grads[1]) and out.requires_grad


def test_a_graph_that_changes_tensors_in_place_has_no_recorder(plugged):
    plan = plan_request(plugged, RunRequest.model_validate(IN_PLACE), Settings(), inner_trace=False)
    graph = dataflow.traced(plan.meta, 1).graph
    assert dataflow.recorder(plan.meta, graph) is None
    # the same with its layers found in one walk (as the kept trace finds them)
    assert dataflow.recorder(plan.meta, graph, dict(named_modules(plan.meta))) is None


_any_values = st.one_of(
    _values,
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(float("-inf")),
    st.floats(-(2.0**-130), 2.0**-130, width=32),
)


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.float32, array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=6), elements=_any_values),
    st.sampled_from([torch.float32, torch.float64, torch.float16]),
)
def test_a_small_gradient_read_through_numpy_gives_the_torch_entry(values, dtype):
    """The NumPy path for small CPU gradients (what _entry takes for them) and the torch path (large or
    device gradients) give the same entry: NaN, infinities, signed zeros and float16 included."""
    g = torch.from_numpy(values).to(dtype)
    with np.errstate(invalid="ignore"):
        small = receptive._effective_small(g.numpy(), _EachOnItsOwn())
        general = receptive._effective(g, _EachOnItsOwn())
        taken = _effective(g)  # what _entry takes for it
    assert repr(small) == repr(general) == repr(taken)


def test_structural_fields_repeated_sets_answer_as_each_alone():
    """A set met again answers from the encoder's memory: the same fields as a fresh encoder, own lists."""
    encoder = _Encoder()
    sets = intervals.point([3, 8, 5], (1, 2, 4))
    first, again = encoder.structural(sets), encoder.structural(sets)
    assert first == again == _Encoder().structural(sets)
    assert first["count"] == 1 and first["bbox"] == [[1, 1], [2, 2], [4, 4]]
    assert first["runs"] is not again["runs"] and first["grid"]["rle"] is not again["grid"]["rle"]


def test_a_deep_networks_field_builds_no_meta_module_once_its_graph_is_kept(registry, monkeypatch):
    """A repeated block plans from a skeleton that shares its layers; the whole meta module (the slowest
    part of a deep network's field when it was built for the graph cache's key) is built only on a miss
    of the kept graph and trace, and the answer is the same either way."""
    body = {**linear_net(12, 8), "index": [1, 2]}
    plans = []

    def keep(*args, **kwargs):
        plans.append(execute_mod.planned(*args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(receptive, "planned", keep)
    monkeypatch.setattr(execute_mod, "_PLANS", type(execute_mod._PLANS)())
    dataflow._CACHE.clear()
    receptive._TRACES.clear()
    first = _json(registry, body)
    again = _json(registry, body)
    assert first == again
    # a chain of Sequentials: even a miss reads its graph and trace from the skeleton (a network that is not
    # a chain traces the meta module on a miss, as test_receptive_chain's general path does)
    assert plans[0].shared and plans[0].built_meta is None
    assert plans[1].shared and plans[1].built_meta is None


def _rf_requests() -> list[tuple[str, dict[str, Any]]]:
    """Index rules over a deep chain, eval mode, a residual block, autograd through the twin (no rule)."""
    upsample = next(body for name, body in _requests() if name == "upsample")
    block = next(p for p in PRESETS if p["id"] == "tutorial-residual-block")["request"]
    return [
        ("linear", {**linear_net(12, 8), "index": [1, 2]}),
        ("conv-eval", {**conv_net(3, 2, 6), "index": [0, 1, 2, 3], "train": False}),
        ("block", {**block, "index": [0, 1]}),
        ("upsample", upsample),
    ]


@pytest.mark.parametrize(("name", "body"), _rf_requests(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_field_from_the_kept_plan_answers_as_planning_afresh(registry, monkeypatch, name, body):
    """An effective field plans as /api/run does and takes its kept plan (execute.planned): whatever the
    seed, the answer is the one a fresh plan gives, bit for bit, and /api/run's answers around it too."""
    monkeypatch.setattr(execute_mod, "_PLANS", type(execute_mod._PLANS)())
    afresh = []
    real = execute_mod.plan_request
    for module in (execute_mod, receptive):
        monkeypatch.setattr(module, "plan_request", lambda *a, **k: afresh.append(1) or real(*a, **k))
    run = {k: v for k, v in body.items() if k != "index"}
    seeds = [0, 7, 0]
    ran = json.dumps(requests.run(registry, run, Settings()), sort_keys=True)
    kept = [_json(registry, {**body, "seed": s}) for s in seeds]
    assert json.dumps(requests.run(registry, run, Settings()), sort_keys=True) == ran
    assert len(afresh) == 1, name  # the run planned; the fields and the second run took its plan
    fresh = []
    for s in seeds:
        execute_mod._PLANS.clear()
        fresh.append(_json(registry, {**body, "seed": s}))
    assert kept == fresh, name
    assert kept[0] == kept[2] and kept[0] != kept[1]  # the seed changes the effective field's numbers


def test_the_trace_key_tells_apart_what_a_config_tells_apart():
    """The kept trace's key (orjson, or the standard library where orjson writes null or cannot write)
    is the same for the same config and differs for 1, 1.0, true, null, NaN, infinity and a 65-bit
    integer, whichever encoder spelled each."""
    plan = SimpleNamespace(inputs=[SimpleNamespace(shape=(2, 3))], dtype=torch.float32, train=True)

    def key(value: Any) -> str:
        req = SimpleNamespace(layer={"type": "Dropout", "p": value, "inplace": False})
        return receptive._config_key(plan, req)

    values = [1, 1.0, True, None, math.nan, math.inf, -math.inf, 2**70, 2**70 + 1, "1"]
    keys = [key(v) for v in values]
    assert len(set(keys)) == len(values)
    assert keys == [key(v) for v in values]  # the same each time
    assert keys[0].startswith("o") and keys[3].startswith("j") and keys[4].startswith("j")
    # the mode is part of it (a traced forward may branch on it)
    eval_plan = SimpleNamespace(**{**vars(plan), "train": False})
    dropout = SimpleNamespace(layer={"type": "Dropout", "p": 0.5, "inplace": False})
    assert key(0.5) == receptive._config_key(plan, dropout) != receptive._config_key(eval_plan, dropout)


def _chain_formula_path_first(graph: dict[str, Any], module: torch.nn.Module, target: str) -> dict[str, Any] | None:
    """chain_formula as it was (the whole path to the input first, its layers looked at after), verbatim."""
    into: dict[str, list[str]] = {}
    for e in graph["edges"]:
        into.setdefault(e["to"], []).append(e["from"])
    nodes = {n["id"]: n for n in graph["nodes"]}
    path: list[dict[str, Any]] = []
    current = target
    while nodes[current]["op"] != "input":
        sources = sorted(set(into.get(current, [])))
        if len(sources) != 1:
            return None
        if current != "output":
            path.append(nodes[current])
        current = sources[0]
    path.reverse()
    steps: list[dict[str, Any]] = []
    r: list[int] | None = None
    jump: list[int] | None = None
    for node in path:
        if node["op"] != "module":
            return None
        sub = module.get_submodule(node["path"]) if node["path"] else module
        win = receptive._window(sub)
        if win is None:
            if receptive._elementwise(sub):
                continue
            return None
        k, s, d = win
        if r is None or jump is None:
            r, jump = [1] * len(k), [1] * len(k)
        if len(k) != len(r):
            return None
        new = [ri + (ki - 1) * di * ji for ri, ki, di, ji in zip(r, k, d, jump)]
        text = ", ".join(f"{ri} + ({ki} − 1)·{di}·{ji} = {ni}" for ri, ki, di, ji, ni in zip(r, k, d, jump, new))
        per_dim = [
            f"{ri} + ({ki} - 1) \\cdot {di} \\cdot {ji} = {ni}" for ri, ki, di, ji, ni in zip(r, k, d, jump, new)
        ]
        latex = per_dim[0] if len(set(per_dim)) == 1 else ",\\; ".join(per_dim)
        r = new
        steps.append(
            {
                "path": node["path"],
                "type": type(sub).__name__,
                "kernel": k,
                "stride": s,
                "dilation": d,
                "jump": list(jump),
                "r": list(r),
                "text": text,
                "latex": latex,
            }
        )
        jump = [ji * si for ji, si in zip(jump, s)]
    if not steps:
        return None
    return {
        "symbolic": "r_l = r_{l−1} + (k_l − 1)·d_l·∏_{i<l} s_i, r_0 = 1",
        "latex": "r_l = r_{l-1} + (k_l - 1) \\cdot d_l \\cdot \\prod_{i<l} s_i, \\quad r_0 = 1",
        "size": r,
        "jump": jump,
        "steps": steps,
    }


_FORMULA_NETS = [
    *((p["id"], p["request"]) for p in PRESETS if p["id"] not in ("text-self-attention", "tiny-transformer-encoder")),
    *((p["id"], p["request"]) for p in CLASSICS if p["id"] in ("resnet18", "vgg16")),
    ("conv", conv_net(4, 2, 9)),
    ("linear", linear_net(6, 4)),
]


@pytest.mark.parametrize("request_", [r for _, r in _FORMULA_NETS], ids=[n for n, _ in _FORMULA_NETS])
def test_the_formula_walking_back_answers_as_the_whole_path_first(registry, request_):
    """chain_formula looks at each layer as the walk back meets it and stops at the first that ends the
    chain: at every node of these networks, the formula (or None) that walking the whole path first gives."""
    ex = execute_mod.execute(registry, RunRequest.model_validate(request_), Settings())
    graph = dataflow.graph_fields(ex.plan, ex, registry)["graph"]
    found = 0
    for node in graph["nodes"]:
        if node["op"] in ("input", "attribute"):
            continue
        got = receptive.chain_formula(graph, ex.module, node["id"])
        assert got == _chain_formula_path_first(graph, ex.module, node["id"]), node["id"]
        found += got is not None
    # a network of convolutions has formulas to compare; a dense one has none
    assert (found > 0) == any(n["type"] and "Conv" in n["type"] for n in graph["nodes"])
