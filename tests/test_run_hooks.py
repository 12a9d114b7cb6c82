"""The real run's fast paths say exactly what the general ways they stand in for said.

- ``tracing`` makes each entry from facts read once per module (path, depth, leaf, parameters, an
  activation's or a container's multiply-adds); the reference here is the entry :func:`trace_entry`
  makes at every call, over a walk of torch's own ``named_modules``.
- A run walks its module once, after the build; the hooks and the answer read that walk.
- A kept plan's repeated runs take the module's text (``repr``), the trace's facts of each module,
  whether the module must be moved or switched, and the script's constructor from the first run.

Each is checked against the general way on the same requests, for the identical answer (bit for bit).
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from app.core import body
from app.core.config import Settings
from app.core.networks import trace as trace_mod
from app.core.networks.trace import (
    BY_SHAPES,
    PerConfig,
    fixed_macs,
    known_classes,
    macs,
    named_modules,
    shapes_of,
    trace_entry,
    tracing,
)
from app.core.networks.tree import build, resolve
from app.core.presets import PRESETS, resnet
from app.core.registry import default_registry
from app.core.running import execute as execute_mod
from app.core.running import requests
from app.core.running import respond as respond_mod
from app.core.running import script as script_mod
from app.core.running.execute import execute
from app.core.schema import RunRequest, parse

SETTINGS = Settings()
PLUGINS = str(Path(__file__).parent / "plugins" / "in_place_layers.py")


@contextlib.contextmanager
def reference_tracing(root: nn.Module, sink: dict[str, Any]) -> Iterator[None]:
    """The trace as the hooks first made it: torch's walk, and :func:`trace_entry` at every call's end."""
    entries: list[dict[str, Any]] = []
    paths = {id(m): path for path, m in root.named_modules() if path}
    counts = {id(m): sum(p.numel() for p in m.parameters()) for m in root.modules()}
    open_calls: list[tuple[int, str, nn.Module, list[list[int]]]] = []

    def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        if id(mod) in paths:
            open_calls.append((len(entries), paths[id(mod)], mod, shapes_of(args)))
            entries.append({})

    def post(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if id(mod) not in paths:
            return
        index, path, _, input_shapes = open_calls.pop()
        out = output[0] if isinstance(output, (tuple, list)) else output
        size = out.element_size() if isinstance(out, torch.Tensor) else None
        entries[index] = trace_entry(
            path,
            mod,
            type(mod).__name__,
            input_shapes,
            shapes_of(output),
            element_size=size,
            param_count=counts[id(mod)],
        )

    sink["trace"] = entries
    handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for index, path, mod, input_shapes in open_calls:
            entries[index] = trace_entry(path, mod, type(mod).__name__, input_shapes, [], param_count=counts[id(mod)])


@pytest.fixture(scope="module")
def catalog():
    """The catalog with test plugins (layers built of submodules by their own forward, in-place layers)."""
    return default_registry((PLUGINS,))


def _requests(registry) -> list[dict]:
    reqs = [spec.example for spec in registry if spec.example] + [p["request"] for p in PRESETS]
    # the same network twice, the second time with another seed: its plan is kept, so is its text
    return reqs + [{**p["request"], "seed": 7} for p in PRESETS]


def _answers(registry, reqs: list[dict]) -> list[bytes]:
    out = []
    for req in reqs:
        try:
            out.append(body.encode_json(requests.run(registry, req, SETTINGS)))
        except Exception as exc:  # noqa: BLE001 - a refusal is an answer too, and must stay the same
            out.append(f"{type(exc).__name__}: {exc}".encode())
    return out


def test_answers_equal_the_general_ways_over_the_catalog(catalog, monkeypatch):
    reqs = _requests(catalog)
    fast = _answers(catalog, reqs)
    again = _answers(catalog, reqs)  # kept plans and kept texts answer the second time
    # the general ways: the reference trace, every reader walking the module itself, every text written anew
    monkeypatch.setattr(requests, "tracing", reference_tracing)
    monkeypatch.setattr(execute_mod, "MODULES", "not handed over")
    monkeypatch.setattr(execute_mod, "CONFIG", "not handed over either")  # nothing kept per config
    monkeypatch.setattr(script_mod, "_CTORS", PerConfig(size=0))  # keeps nothing
    monkeypatch.setattr(
        execute_mod,
        "_settled_kept",
        lambda plan, m, modules: execute_mod._settled(m, plan.device, plan.dtype, plan.train),
    )
    monkeypatch.setattr(respond_mod, "module_repr", lambda plan, module, modules=None: repr(module))
    general = _answers(catalog, reqs)
    assert len(reqs) > 100
    assert sum(b'"trace":' in a for a in general) > 20  # networks among them, traced
    assert fast == general
    assert again == general


def _tied() -> nn.Module:
    """A module at two paths, called twice; a weight tied between two Linears; a tuple output."""
    shared = nn.Linear(4, 4)
    other = nn.Linear(4, 4)
    other.weight = shared.weight

    class Split(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x[:, :2], x[:, 2:]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = shared
            self.body = nn.Sequential(shared, nn.ReLU(), other)
            self.split = Split()
            self.none = None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.a(self.body(self.a(x)))
            left, right = self.split(x)
            return torch.cat([left, right], dim=1)

    return Net()


class _Fails(nn.Module):
    """Its second layer refuses its input: the calls still open get entries without outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(5, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(x)


def _traced(how, module: nn.Module, x: torch.Tensor, sink: dict[str, Any]) -> list[dict[str, Any]]:
    with contextlib.suppress(RuntimeError), torch.no_grad(), how(module, sink):
        module(x)
    return sink["trace"]


@pytest.mark.parametrize(
    "module, x",
    [
        (_tied(), torch.randn(2, 4)),
        (_Fails(), torch.randn(2, 3)),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()), torch.randn(1, 3, 6, 6)),
        (nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), torch.randn(2, 5, 8)),
    ],
    ids=["shared-tied-tuple", "raising", "conv", "transformer"],
)
def test_trace_equals_the_reference(module, x):
    want = _traced(reference_tracing, module, x, {})
    assert want  # something was traced
    assert _traced(tracing, module, x, {}) == want
    # with the run's walk handed over, as a run hands it
    assert _traced(tracing, module, x, {trace_mod.MODULES: named_modules(module)}) == want


def test_trace_of_resnet_equals_the_reference(registry):
    module = build(resolve(registry, resnet(18)))
    x = torch.randn(2, 3, 32, 32)
    assert _traced(tracing, module, x, {}) == _traced(reference_tracing, module, x, {})


def test_fixed_macs_are_what_macs_says_whatever_the_shapes(catalog):
    """Every module of every catalog example and preset: where the module alone decides, every call's count."""
    modules: list[nn.Module] = []
    for req in [spec.example for spec in catalog if spec.example] + [p["request"] for p in PRESETS]:
        with contextlib.suppress(Exception):
            modules.extend(m for _, m in execute(catalog, parse(RunRequest, req), SETTINGS).module.named_modules())
    assert len(modules) > 200
    decided = 0
    for m in modules:
        fixed = fixed_macs(m)
        if fixed is BY_SHAPES:
            continue
        decided += 1
        for shapes in ([[2, 3]], [[1, 4, 5, 6]], [[7]]):
            assert macs(m, shapes, shapes) == fixed, type(m).__name__
    assert decided > 100


def test_a_plugins_text_is_written_every_time(monkeypatch):
    """A class from outside torch.nn and this app may show numbers in its text: never kept."""
    reg = default_registry((PLUGINS,))
    req = {"layer": {"type": "InPlaceMLP"}, "inputs": [{"shape": [3, 6]}]}
    written = []
    monkeypatch.setattr(
        respond_mod, "repr", lambda m: written.append(type(m).__name__) or builtins.repr(m), raising=False
    )
    requests.run(reg, req, SETTINGS)
    requests.run(reg, req, SETTINGS)
    assert written == ["InPlaceMLP", "InPlaceMLP"]
    plugged = execute(reg, parse(RunRequest, req), SETTINGS).module
    assert not known_classes(named_modules(plugged))  # nor are its trace's facts kept
    assert known_classes(named_modules(nn.Sequential(nn.Linear(2, 2), nn.ReLU())))
    # torch's own classes: written once, then kept with the plan
    written.clear()
    linear = {"layer": {"type": "Sequential", "layers": [{"type": "Linear", "in_features": 6, "out_features": 2}]}, "inputs": [{"shape": [3, 6]}]}  # fmt: skip
    first = requests.run(reg, linear, SETTINGS)
    second = requests.run(reg, {**linear, "seed": 3}, SETTINGS)
    assert written == ["Sequential"]
    assert first["repr"] == second["repr"] == repr(nn.Sequential(nn.Linear(6, 2)))


def test_kept_per_config_tree_by_identity_as_many_as_plans():
    kept = PerConfig(size=2)
    a, b, c = {"type": "ReLU"}, {"type": "ReLU"}, {"type": "Tanh"}
    kept.put(a, "cpu", value="text of a")
    assert kept.get(a, "cpu") == "text of a"
    assert kept.get(b, "cpu") is None  # an equal config that is another tree: its own run, its own values
    assert kept.get(a, "cuda") is None
    kept.put(b, "cpu", value="text of b")
    kept.put(c, "cpu", value="text of c")  # the oldest goes
    assert kept.get(a, "cpu") is None and kept.get(c, "cpu") == "text of c"
    # every cache keeps as many trees as the plan cache keeps plans: none outlives its plan for long
    for cache in (trace_mod._FACTS, respond_mod._TEXTS, execute_mod._SETTLED, script_mod._CTORS):
        assert cache.size == execute_mod.PLAN_CACHE_SIZE
