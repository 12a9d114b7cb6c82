"""Answers of bounded size, and a module built once.

One budget of tensor values per answer (``Settings.response_budget_bytes``): whatever the network, the
JSON stays bounded, every tensor sent without all its numbers says so (``values``) and where its
``.npy`` is, and that file holds the real values. Planning builds on meta without initialising, and a
real run's graph takes its shapes from the run itself.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from app.core import service, tensors
from app.core.config import Settings
from app.core.networks.trace import tracing

DEPTH = 512  # blocks: two Sequentials of 256 (a Sequential holds at most 256 layers)
WIDTH = 32
CHANNELS = 8


def _deep(block) -> dict:
    half = DEPTH // 2
    return {
        "type": "Sequential",
        "layers": [
            {"type": "Sequential", "layers": [{"type": "Sequential", "layers": block()} for _ in range(half)]}
            for _ in range(2)
        ],
    }


LINEAR_NET = {
    "layer": _deep(lambda: [{"type": "Linear", "in_features": WIDTH, "out_features": WIDTH}, {"type": "ReLU"}]),
    "inputs": [{"shape": [4, WIDTH]}],
    "seed": 3,
}
CONV_NET = {
    "layer": _deep(
        lambda: [
            {"type": "Conv2d", "in_channels": CHANNELS, "out_channels": CHANNELS, "kernel_size": 3, "padding": 1},
            {"type": "BatchNorm2d", "num_features": CHANNELS},
            {"type": "ReLU"},
        ]
    ),
    "inputs": [{"shape": [1, CHANNELS, 8, 8]}],
    "seed": 4,
}


def _plain_linear_net() -> nn.Module:
    """The same network in plain torch, built in the same order under the same seed."""
    torch.manual_seed(LINEAR_NET["seed"])
    half = DEPTH // 2
    return nn.Sequential(
        *[nn.Sequential(*[nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU()) for _ in range(half)]) for _ in range(2)]
    )


def _tensors(answer: dict) -> list[dict]:
    return [answer["output"], *answer["outputs"][1:], *answer["inputs"], *answer["params"]]


def _value_bytes(entry: dict) -> int:
    """JSON bytes of a tensor's values, as sent (what the budget counts)."""
    return sum(len(json.dumps(entry.get(k))) for k in ("data", "preview", "summary") if entry.get(k) is not None)


@pytest.fixture(scope="module")
def answers(api):
    out = {}
    for name, body in (("linear", LINEAR_NET), ("conv", CONV_NET)):
        r = api.post("/api/run", json=body)
        assert r.status_code == 200, r.text
        out[name] = (body, r.content, r.json())
    return out


@pytest.mark.parametrize("name", ["linear", "conv"])
def test_a_deep_network_answer_stays_under_the_budget(answers, settings, name):
    _, raw, d = answers[name]
    budget = settings.response_budget_bytes
    assert len(d["trace"]) > DEPTH  # every layer ran and is listed
    sent = sum(_value_bytes(t) for t in _tensors(d))
    assert sent <= budget
    # nothing else in the answer grows with the values: the rest (trace, graph, script) is what it is
    rest = len(raw) - sent
    assert len(raw) <= budget + rest
    # the budget was spent: later parameters are sent as their shape and a pointer, not their numbers
    params = d["params"]
    assert params[0]["values"] in ("data", "preview")
    assert params[-1]["values"] == "none" and params[-1]["summary"] is None and params[-1]["data"] is None
    assert params[-1]["full"] == {"format": "npy", "tensor": params[-1]["name"]}
    # the output and the input come first: all their numbers
    assert d["output"]["values"] == "data" and d["inputs"][0]["values"] == "data"
    # an answer without a budget would be far larger: the bound is doing the work
    numbers = sum(p["numel"] for p in params)
    assert numbers * 10 > budget


def test_the_npy_of_a_parameter_left_out_is_its_real_value(api, answers):
    body, _, d = answers["linear"]
    left_out = [p for p in d["params"] if p["values"] == "none"]
    assert left_out
    plain = dict(_plain_linear_net().named_parameters())
    for p in (left_out[0], left_out[-1]):
        r = api.post(f"/api/run?format=npy&tensor={p['full']['tensor']}", json=body)
        assert r.status_code == 200, r.text
        got = np.load(io.BytesIO(r.content))
        assert got.shape == tuple(p["shape"])
        np.testing.assert_array_equal(got, plain[p["name"]].detach().numpy())


def test_the_npy_of_a_previewed_tensor_is_its_real_value(api, answers):
    body, _, d = answers["linear"]
    previewed = next(p for p in d["params"] if p["values"] == "preview" or p["values"] == "summary")
    r = api.post(f"/api/run?format=npy&tensor={previewed['name']}", json=body)
    got = np.load(io.BytesIO(r.content))
    np.testing.assert_array_equal(got, dict(_plain_linear_net().named_parameters())[previewed["name"]].detach())
    # and what the answer did send of it agrees with the file
    if previewed["values"] == "preview":
        step = previewed["preview_step"]
        np.testing.assert_allclose(np.array(previewed["preview"]), got[:: step[0], :: step[1]], rtol=1e-6)
    assert previewed["summary"]["max"] == pytest.approx(float(got.max()), rel=1e-6)


def test_an_input_by_name_and_an_unknown_name(api):
    body = {"layer": {"type": "Linear", "in_features": 3, "out_features": 2}, "inputs": [{"shape": [2, 3]}]}
    d = api.post("/api/run", json=body).json()
    got = np.load(io.BytesIO(api.post("/api/run?format=npy&tensor=input", json=body).content))
    np.testing.assert_allclose(got, np.array(d["inputs"][0]["data"]), rtol=1e-6)
    bias = np.load(io.BytesIO(api.post("/api/run?format=npy&tensor=bias", json=body).content))
    np.testing.assert_allclose(bias, np.array(d["params"][1]["data"]), rtol=1e-6)
    r = api.post("/api/run?format=npy&tensor=nope", json=body)
    assert r.status_code == 422 and r.json()["field"] == "tensor"
    assert "weight" in r.json()["detail"] and "output" in r.json()["detail"]


def test_a_layer_inside_a_network_points_at_its_own_npy(api):
    body = {**LINEAR_NET, "path": "1.255.0"}
    tight = api.post("/api/run", json=body).json()
    weight = next(p for p in tight["params"] if p["name"] == "weight")
    assert weight["values"] == "data"  # a layer alone is small: all its numbers
    r = api.post("/api/run?format=npy&tensor=weight", json=body)
    plain = dict(_plain_linear_net().named_parameters())["1.255.0.weight"]
    np.testing.assert_array_equal(np.load(io.BytesIO(r.content)), plain.detach().numpy())


def test_a_tight_budget_serves_the_output_first_and_says_what_it_left_out(registry):
    body = {"layer": {"type": "Linear", "in_features": 40, "out_features": 30}, "inputs": [{"shape": [2, 40]}]}
    # 1700 bytes: the output's 60 numbers (1449 bytes at most) and its summary, then nothing
    tight = Settings(response_budget_bytes=1700)
    d = service.run(registry, body, tight)
    assert d["output"]["values"] == "data"  # served first
    for t in [d["inputs"][0], *d["params"]]:
        assert t["values"] == "none" and t["summary"] is None and t["data"] is None and t["preview"] is None
        assert t["full"] == {"format": "npy", "tensor": t["name"]}
    # 3600: room left for a strided preview of the input (64 numbers at least), and the weight's statistics
    d = service.run(registry, body, dataclasses.replace(tight, response_budget_bytes=3600))
    assert d["inputs"][0]["values"] == "preview" and d["inputs"][0]["summary"] is not None
    assert d["params"][0]["summary"] is not None
    assert sum(_value_bytes(t) for t in _tensors(d)) <= 3600
    # with room, the same request sends everything, and says so
    roomy = service.run(registry, body, dataclasses.replace(tight, response_budget_bytes=1 << 20))
    assert [t["values"] for t in _tensors(roomy)] == ["data"] * 4
    assert all("full" not in t for t in _tensors(roomy))


def test_the_budget_is_set_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_RESPONSE_BUDGET", "12345")
    assert Settings.from_env().response_budget_bytes == 12345


class _Spy(torch.overrides.TorchFunctionMode):
    """Every torch function called, by name, with whether its first tensor was on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bool]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        first = args[0] if args else (kwargs or {}).get("tensor")  # torch.nn.init passes ``tensor=``
        meta = isinstance(first, torch.Tensor) and first.is_meta
        self.calls.append((getattr(func, "__name__", str(func)), meta))
        return func(*args, **(kwargs or {}))


def test_planning_does_not_initialise_on_meta(registry, settings):
    body = {
        "layer": _deep(lambda: [{"type": "Linear", "in_features": 8, "out_features": 8}]),
        "inputs": [{"shape": [2, 8]}],
    }
    spy = _Spy()
    with spy:
        answer = service.shape(registry, body, settings, detail="shapes")
    assert answer["output_shape"] == [2, 8] and answer["param_count"] == DEPTH * (8 * 8 + 8)
    filled = [name for name, meta in spy.calls if meta and (name.endswith("_") and not name.startswith("_"))]
    assert "kaiming_uniform_" not in filled and "uniform_" not in filled and filled == []


def test_without_init_a_real_build_in_the_same_process_is_unchanged():
    torch.manual_seed(0)
    expected = nn.Linear(5, 4).weight.detach().clone()
    with tensors.on_meta_without_init():
        meta = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
    assert meta[0].weight.is_meta and meta[1].running_var.shape == (4,)
    torch.manual_seed(0)
    assert torch.equal(nn.Linear(5, 4).weight, expected)  # the generator was not touched


def test_a_real_run_graph_runs_no_layer_again_on_meta(registry, settings):
    """The graph of a real run takes every layer's shape from the run's own hooks."""
    block = CONV_NET["layer"]["layers"][0]["layers"][0]
    body = {"layer": {"type": "Sequential", "layers": [block] * 3}, "inputs": [{"shape": [2, CHANNELS, 6, 6]}]}
    on_meta: list[str] = []

    def hook(module, args):
        if any(isinstance(a, torch.Tensor) and a.is_meta for a in args):
            on_meta.append(type(module).__name__)

    handle = nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        d = service.run(registry, body, settings)
    finally:
        handle.remove()
    assert on_meta == []
    nodes = {n["path"]: n for n in d["graph"]["nodes"] if n["op"] == "module"}
    traced = {e["path"]: e["output_shape"] for e in d["trace"] if e["leaf"]}
    assert nodes and {p: n["shape"] for p, n in nodes.items()} == traced


@pytest.mark.parametrize("tied", [False, True])
def test_trace_param_counts_are_what_parameters_gives(tied):
    net = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 4)), nn.Linear(4, 4))
    if tied:
        net[2].weight = net[0].weight  # one parameter in two layers: each module counts it once
    sink: dict = {}
    with torch.no_grad(), tracing(net, sink):
        net(torch.randn(2, 4))
    for e in sink["trace"]:
        assert e["param_count"] == sum(p.numel() for p in net.get_submodule(e["path"]).parameters())


def test_the_memory_estimate_counts_the_answer_the_budget_allows(registry, settings):
    """The response's share of the estimate is what the budget lets it send, not every tensor's preview."""
    small = service.shape(registry, LINEAR_NET, settings, detail="shapes")["estimate_bytes"]
    unbounded = dataclasses.replace(settings, response_budget_bytes=1 << 40)
    large = service.shape(registry, LINEAR_NET, unbounded, detail="shapes")["estimate_bytes"]
    assert small < large
