"""A network's text (``repr``) on its first run is made from the plan's skeleton, each distinct module's
text once: it must be torch's own ``repr`` of the module the run built, character for character."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from torch import nn

from app.core import service
from app.core.presets import CLASSICS, PRESETS
from app.core.running import plan as plan_mod
from app.core.running import respond as respond_mod
from app.core.running.respond import _shared_repr
from app.core.schema import RunRequest, parse
from benchmarks.scale import conv_net, linear_net

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
ENCODER = {"type": "TransformerEncoderLayer", "d_model": 16, "nhead": 2, "dim_feedforward": 32, "batch_first": True}


def _seq(*layers: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Sequential", "layers": list(layers)}


DEEP = {
    "linear": linear_net(40, 8),
    "conv": conv_net(12, 4, 6),
    "residual": {"layer": _seq(*[RESIDUAL] * 6), "inputs": [{"shape": [1, 8, 5, 5]}], "seed": 3},
    "opaque": {"layer": _seq(OPAQUE, {"type": "ReLU"}, OPAQUE), "inputs": [{"shape": [2, 8]}], "seed": 0},
    "encoder": {"layer": _seq(*[ENCODER] * 3), "inputs": [{"shape": [2, 5, 16]}], "seed": 1},
    # blocks inside blocks, one of them with a name of its own (a look-alike config)
    "nested": {
        "layer": _seq(*[_seq(_seq(RESIDUAL, {"type": "ReLU"}), RESIDUAL)] * 3, _seq({"type": "ReLU", "name": "a"})),
        "inputs": [{"shape": [1, 8, 4, 4]}],
        "seed": 0,
    },
}
REQUESTS = (
    {p["id"]: p["request"] for p in PRESETS}
    | {
        p["id"]: {**p["request"], "inputs": [{"shape": [1, 3, 64, 64]}]}
        for p in CLASSICS
        if p["id"] in ("resnet18", "resnet50", "mobilenet-v2", "densenet121", "unet")
    }
    | DEEP
)


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_skeletons_text_is_torchs_repr_of_the_whole_module(registry, settings, name):
    plan = plan_mod.plan_request(
        registry, parse(RunRequest, copy.deepcopy(REQUESTS[name])), settings, enforce_limit=False
    )
    # plan.meta: every layer its own module, as the run builds it
    assert _shared_repr(plan.skeleton, {}) == repr(plan.meta)


@pytest.mark.parametrize("name", list(DEEP))
def test_a_first_runs_text_is_the_built_modules_repr(registry, settings, monkeypatch, name):
    built: list[nn.Module] = []
    made: list[str] = []
    general = respond_mod.module_repr
    shared = respond_mod._shared_repr

    def spy(plan, module, modules=None):
        built.append(module)
        return general(plan, module, modules)

    def spy_shared(module, texts):
        text = shared(module, texts)
        made.append(text)
        return text

    monkeypatch.setattr(respond_mod, "module_repr", spy)
    monkeypatch.setattr(respond_mod, "_shared_repr", spy_shared)
    answer = service.run(registry, copy.deepcopy(DEEP[name]), settings)
    assert answer["repr"] == repr(built[-1])
    # the skeleton's way answered it (each network here repeats a block)
    assert made and made[-1] == answer["repr"]


def test_a_shared_module_s_text_is_made_once():
    block = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    net = nn.Sequential(*[block] * 4, nn.ModuleList([nn.ReLU(), nn.ReLU()]), nn.Identity())
    texts: dict[int, str] = {}
    assert _shared_repr(net, texts) == repr(net)
    # one text per distinct module: the shared block (and its two layers) once, not at each of its paths
    assert len(texts) == len({id(m) for m in net.modules()}) - 2  # the ModuleList's children: its own repr
