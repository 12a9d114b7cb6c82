"""A worker never imports torch._dynamo (about 36 MiB and a second of CPU) for meta-device passes.

torch's Python meta kernels (elementwise references such as ``add``, batch norm's decomposition) are
wrapped in ``torch._disable_dynamo``, which imported dynamo on first call; app.core.nodynamo gives
them a stand-in, and the fx shape pass (app.core.networks.graph.ShapePass) skips ShapeProp's
symbolic-shapes import. These tests fail if either comes back, or if the stand-in changes a number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from app.core import nodynamo
from app.core.networks.graph import ShapePass

ROOT = Path(__file__).resolve().parent.parent

# What the forkserver imports (workers.PRELOAD), then what a worker does (tasks.init), then a network
# request of each kind: a net with batch norm and a residual add (whose meta kernels imported dynamo),
# and a Linear net. Prints which of the lazily imported modules are loaded after each step.
WORKER = r"""
import importlib, json, sys
from app.core import workers
for name in workers.PRELOAD:
    importlib.import_module(name)
from app.core import tasks
from app.core.config import Settings
from benchmarks.scale import linear_net, resnet18
loaded = lambda: {m: m in sys.modules for m in ("torch._dynamo", "torch._inductor")}
settings = Settings()
out = {"preload": loaded()}
tasks.init(settings, 1, None, None, None)
out["init"] = loaded()
for label, name, body in [
    ("shape resnet", "shape", resnet18(64)),
    ("run resnet", "run", resnet18(64)),
    ("receptive field resnet", "receptive_field", {**resnet18(64), "index": [0, 0]}),
    ("shape linear", "shape", linear_net(4, 8)),
    ("run linear", "run", linear_net(4, 8)),
    ("receptive field linear", "receptive_field", {**linear_net(4, 8), "index": [0, 0]}),
]:
    result = tasks.task(name, body, settings, None, {})
    out[label] = {"status": result[0] if result[0] == "ok" else repr(result), **loaded()}
print(json.dumps(out))
"""


def test_network_requests_in_a_worker_never_import_dynamo() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(steps) == 8
    for step, state in steps.items():
        assert state.get("status", "ok") == "ok", step
        assert state["torch._dynamo"] is False, f"torch._dynamo imported by: {step}"
        assert state["torch._inductor"] is False, f"torch._inductor imported by: {step}"


# After dynamo is imported, each stand-in hands over to torch's own disabled function; the kernels'
# numbers are the same either way (the stand-in calls the kernel itself).
SWITCH = r"""
import sys, torch
from app.core import nodynamo
found = nodynamo.install()
a, b = torch.empty(2, 3, device="meta"), torch.empty(1, 3, device="meta", dtype=torch.float64)
before = torch.add(a, b)
assert "torch._dynamo" not in sys.modules
import torch._dynamo
after = torch.add(a, b)
stand_ins = [f for f in nodynamo._standins() if isinstance(getattr(f, "__dynamo_disable"), nodynamo._UntilDynamo)]
print(found, tuple(before.shape) == tuple(after.shape) == (2, 3), before.dtype == after.dtype == torch.float64,
      found - len(stand_ins))
"""


def test_stand_ins_hand_over_to_torch_once_dynamo_is_imported() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SWITCH], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found, same_shape, same_dtype, replaced = done.stdout.split()
    assert int(found) > 100  # torch 2.13 wraps 287 kernels
    assert same_shape == "True" and same_dtype == "True"
    assert int(replaced) >= 1  # at least add's kernel now calls torch's disabled wrapper


def test_install_covers_the_kernels_and_runs_once() -> None:
    nodynamo.install()
    kernels = nodynamo._standins()
    if "torch._dynamo" not in sys.modules:
        assert kernels and all(isinstance(getattr(k, "__dynamo_disable"), nodynamo._UntilDynamo) for k in kernels)
    assert nodynamo.install() == 0  # a second call (a forked worker's) does not scan again


def _residual() -> nn.Module:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.head = nn.Linear(4 * 6 * 5, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.relu(self.bn(self.conv(x))) + x
            return self.head(y.flatten(1)), y.mean(dim=(2, 3))

    return Block()


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_shape_pass_records_what_shapeprop_records(device: str) -> None:
    module = _residual().to(device)
    x = torch.randn(2, 4, 6, 5).to(device)
    ours, theirs = fx.symbolic_trace(module), fx.symbolic_trace(module)
    with torch.no_grad():
        got = ShapePass(ours).propagate(x)
        want = ShapeProp(theirs).propagate(x)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        if device == "cpu":
            assert torch.equal(a, b)
    for n, m in zip(ours.graph.nodes, theirs.graph.nodes, strict=True):
        mine, torch_s = n.meta.get("tensor_meta"), m.meta.get("tensor_meta")
        assert (mine is None) == (torch_s is None), n.name
        assert n.meta.get("type") is m.meta.get("type"), n.name
        if mine is None or n.op == "output":
            continue
        pairs = (
            zip(mine, torch_s, strict=True)
            if isinstance(mine, tuple) and not hasattr(mine, "shape")
            else [(mine, torch_s)]
        )
        for a, b in pairs:
            assert (a.shape, a.dtype, a.stride, a.requires_grad) == (b.shape, b.dtype, b.stride, b.requires_grad)
