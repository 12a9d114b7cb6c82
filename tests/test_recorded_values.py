"""What a forward hook records is the value at the moment of the call, everywhere tensors are recorded.

A hook sees the live tensors: the tutorial's ``out += identity`` changes fc2's output in place after
fc2 returned, and ``ReLU(inplace=True)`` changes the input it received. Every layer inside a network
answered through the API (``/api/run`` and ``/api/explain`` with ``path``), the dataflow graph's
recorded values and the reproduction script must report what plain torch's hook with ``.clone()`` sees.
"""

from __future__ import annotations

import asyncio
import operator
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.core.config import Settings
from app.core.networks import graph as dataflow
from app.core.presets import PRESETS
from app.core.registry import default_registry
from app.core.running.execute import materialise
from app.core.running.plan import plan_request
from app.core.schema import RunRequest, parse
from app.main import create_app

PLUGIN = str(Path(__file__).parent / "plugins" / "in_place_layers.py")

#: networks that change tensors in place, on top of the presets (the catalog builds no in-place layer)
IN_PLACE: dict[str, dict[str, Any]] = {
    "in-place-mlp": {"layer": {"type": "InPlaceMLP"}, "inputs": [{"shape": [3, 6]}], "seed": 3},
    "in-place-first": {"layer": {"type": "InPlaceFirst"}, "inputs": [{"shape": [4, 5]}], "seed": 1},
    "in-place-residual": {"layer": {"type": "InPlaceResidual"}, "inputs": [{"shape": [2, 6]}], "seed": 7},
    "in-place-in-a-network": {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "SimpleResidualBlock", "name": "block", "in_features": 6, "out_features": 6},
                {"type": "InPlaceResidual", "name": "res"},
                {"type": "InPlaceMLP", "name": "mlp"},
            ],
        },
        "inputs": [{"shape": [2, 6]}],
        "seed": 5,
    },
}

NETWORKS = {p["id"]: p["request"] for p in PRESETS} | IN_PLACE


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(plugins=(PLUGIN,), memory_limit_bytes=512 * 1024**2, workers=1, timeout_s=120)


@pytest.fixture(scope="module")
def registry(settings):
    return default_registry(settings.plugins)


@pytest.fixture(scope="module")
def api(settings):
    """httpx through an app that loads the in-place plugin (as conftest's ``api``, one worker)."""
    application = create_app(settings)
    application.state.pool.start(wait=120)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="recorded-values-loop", daemon=True)
    thread.start()

    class Sync:
        def post(self, path: str, json=None):
            async def go():
                transport = httpx.ASGITransport(app=application)
                async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                    return await c.post(path, json=json)

            return asyncio.run_coroutine_threadsafe(go(), loop).result(timeout=120)

    yield Sync()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
    application.state.pool.close()


def _leaves(module: nn.Module) -> list[str]:
    return [p for p, m in module.named_modules() if p and not any(True for _ in m.children())]


def reference(registry, settings, request: dict[str, Any]) -> tuple[dict[str, list], dict[str, torch.Tensor]]:
    """Plain torch on the same seeded module and input: each leaf's inputs and output, cloned at its call."""
    plan = plan_request(registry, parse(RunRequest, request), settings, inner_trace=False)
    module, xs = materialise(plan)
    ins: dict[str, list] = {}
    outs: dict[str, torch.Tensor] = {}
    handles = []
    for path in _leaves(module):
        sub = module.get_submodule(path)

        def pre(mod, args, path=path):
            ins.setdefault(path, [a.clone() for a in args if isinstance(a, torch.Tensor)])

        def post(mod, args, output, path=path):
            first = output[0] if isinstance(output, (tuple, list)) else output
            outs.setdefault(path, first.clone())

        handles += [sub.register_forward_pre_hook(pre), sub.register_forward_hook(post)]
    with torch.no_grad():
        module(*xs)
    for h in handles:
        h.remove()
    return ins, outs


def _sampled(t: torch.Tensor, payload: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(what the API sent, the same elements of ``t``): all of them, or the strided preview."""
    expected = t.detach().double().numpy()
    if payload["data"] is not None:
        return np.asarray(payload["data"], dtype=float), expected
    steps = payload["preview_step"]
    return np.asarray(payload["preview"], dtype=float), expected[tuple(slice(None, None, s) for s in steps)]


def _check(payload: dict[str, Any], t: torch.Tensor, what: str) -> None:
    assert payload["shape"] == list(t.shape), what
    got, want = _sampled(t, payload)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=what)
    assert payload["summary"]["mean"] == pytest.approx(float(t.double().mean()), rel=1e-4, abs=1e-5), what


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_leaf_answers_with_its_own_output_and_inputs(api, registry, settings, name):
    request = NETWORKS[name]
    ins, outs = reference(registry, settings, request)
    plan = plan_request(registry, parse(RunRequest, request), settings, inner_trace=False)
    module, _ = materialise(plan)
    assert outs, name
    for path in _leaves(module):
        r = api.post("/api/run", json={**request, "path": path})
        if path not in outs:  # never called (attention reads out_proj's weights itself)
            assert r.status_code == 422 and "was not called" in r.json()["detail"], path
            continue
        assert r.status_code == 200, (path, r.text[:300])
        body = r.json()
        _check(body["output"], outs[path], f"{name} {path} output")
        for payload, x in zip(body["inputs"], ins[path], strict=True):
            _check(payload, x, f"{name} {path} input")


@pytest.mark.parametrize(
    ("name", "path", "index"),
    [
        ("tutorial-residual-block", "fc2", [0, 0]),
        ("tutorial-residual-net", "block2.fc2", [0, 0]),
        ("in-place-mlp", "fc1", [1, 3]),
        ("in-place-residual", "fc2", [1, 2]),
        ("in-place-in-a-network", "block.fc2", [0, 5]),
        ("in-place-in-a-network", "res.fc1", [1, 0]),
    ],
)
def test_explain_with_a_path_agrees_with_the_clone(api, registry, settings, name, path, index):
    _, outs = reference(registry, settings, NETWORKS[name])
    body = api.post("/api/explain", json={**NETWORKS[name], "path": path, "index": index}).json()
    want = float(outs[path][tuple(index)])
    assert body["value"] == pytest.approx(want, rel=1e-6)
    assert body["manual"] == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert body["match"] is True


def test_the_issue_numbers(api):
    """The issue's own sample: fc2 of the tutorial's block is −0.19746, not the block's −0.4739."""
    request = NETWORKS["tutorial-residual-block"]
    out = api.post("/api/run", json={**request, "path": "fc2"}).json()["output"]["data"]
    assert out[0][0] == pytest.approx(-0.19746, abs=5e-6)
    whole = api.post("/api/run", json=request).json()["output"]["data"]
    assert whole[0][0] == pytest.approx(-0.47392, abs=5e-6)


@pytest.mark.parametrize(
    ("name", "path"), [("tutorial-residual-block", "fc2"), ("tutorial-residual-net", "block2.fc2")]
)
def test_the_reproduction_script_prints_the_layers_own_output(api, registry, settings, name, path):
    """The script for a child path clones in its hook: run as written, it prints the true value."""
    _, outs = reference(registry, settings, NETWORKS[name])
    code = api.post("/api/run", json={**NETWORKS[name], "path": path}).json()["code"]
    assert ".clone()" in code
    scope: dict[str, Any] = {}
    exec(compile(code.replace("print(", "_ = ("), "<script>", "exec"), scope)
    torch.testing.assert_close(scope["captured"]["output"], outs[path])


@pytest.mark.parametrize("hooks", [False, True], ids=["fx", "hooks"])
@pytest.mark.parametrize(
    "name", ["tutorial-residual-block", "tutorial-residual-net", "in-place-mlp", "in-place-first", "in-place-residual"]
)
def test_dataflow_values_are_the_values_at_the_call(registry, settings, name, hooks):
    """The graph's recorded values (receptive fields read them) are each module's output as it was made,
    whether torch.fx traced the network or hooks recorded it, and each stays in autograd's path."""
    request = NETWORKS[name]
    _, outs = reference(registry, settings, request)
    plan = plan_request(registry, parse(RunRequest, request), settings, inner_trace=False)
    module, xs = materialise(plan)
    before = [x.clone() for x in xs]
    fed = [x.clone().requires_grad_(True) for x in xs]
    if hooks:
        values: dict[str, torch.Tensor] = {}
        dataflow._hook_graph(module, fed, grad=True, values=values)
        node_of = {path: path.replace(".", "_") for path in outs}
        first_input = "input"
    else:
        method, values = dataflow.record(module, fed)
        assert method == "fx"
        nodes = dataflow.capture(module, xs, propagate=False)["nodes"]
        node_of = {n["path"]: n["id"] for n in nodes if n["op"] == "module"}
        first_input = next(n["id"] for n in nodes if n["op"] == "input")
    for path, want in outs.items():
        torch.testing.assert_close(values[node_of[path]].detach(), want, msg=f"{name} {path}")
    torch.testing.assert_close(values[first_input].detach(), before[0])
    kept = [values[node_of[path]] for path in outs if values[node_of[path]].requires_grad]
    assert kept
    grads = torch.autograd.grad(values["output"].sum(), kept, allow_unused=True)
    assert any(g is not None for g in grads)
    # the first module's output feeds everything after it
    assert grads[0] is not None and grads[0].abs().sum() > 0


def test_receptive_field_of_a_layer_that_is_changed_in_place(api):
    """fc2's field inside the tutorial block is fc2's own (through fc1 and the ReLU): every input feature."""
    request = NETWORKS["tutorial-residual-block"]
    body = api.post("/api/receptive-field", json={**request, "path": "fc2", "index": [0, 0]})
    assert body.status_code == 200, body.text[:300]
    nodes = {n["id"]: n for n in body.json()["nodes"]}
    assert nodes["fc2"]["count"] == 1
    # fc2's element depends on sample 0 of the input alone, through fc1
    assert nodes[next(i for i in nodes if nodes[i]["op"] == "input")]["bbox"] == [[0, 0], [0, 9]]


def test_in_place_calls_are_recognised():
    """What the graph recorder copies a kept value before: calls that change their first argument."""
    assert dataflow._in_place(torch.Tensor.add_, {}) and dataflow._in_place(torch.relu_, {})
    assert dataflow._in_place(operator.iadd, {}) and dataflow._in_place(torch.Tensor.__iadd__, {})
    assert dataflow._in_place(torch.Tensor.__setitem__, {})
    assert dataflow._in_place(F.relu, {"inplace": True}) and dataflow._in_place(torch.add, {"out": torch.empty(1)})
    assert not dataflow._in_place(torch.add, {}) and not dataflow._in_place(F.relu, {"inplace": False})
    assert not dataflow._in_place(torch.Tensor.__index__, {}) and not dataflow._in_place(torch.Tensor.__add__, {})
