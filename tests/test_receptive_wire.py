"""Receptive fields at the cost of one backward, sent compactly (issue 18).

- The wire format round-trips: run lengths and PNG heat maps decode to the masks and levels they encode.
- Through the answer (decoded as a client would), every preset's and ResNet-18's structural masks equal
  autograd's through the dependency-equivalent twin, node by node, and the effective heat maps equal
  plain torch's |∂y/∂x| (a forward and ``torch.autograd.grad``, no app code), quantised the same way.
- The answers are small: a byte bound that per-element JSON (one number per element) would break.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from app.core.config import Settings
from app.core.graphs import receptive, wire
from app.core.presets import CLASSICS, PRESETS
from app.core.running.execute import materialise
from app.core.running.plan import plan_request
from app.core.schema import RunRequest

# ---------------------------------------------------------------------------------------------
# the format itself
# ---------------------------------------------------------------------------------------------


@given(arrays(bool, array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7)))
def test_run_lengths_round_trip(mask):
    lengths = wire.rle(mask)
    assert sum(lengths) == mask.size
    assert all(n > 0 for n in lengths[1:])  # only the first run (of 0s) may be empty
    assert np.array_equal(wire.unrle(lengths, mask.shape), mask)


@given(
    arrays(
        np.float64,
        array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9),
        elements=st.one_of(st.just(0.0), st.floats(1e-30, 1e6)),
    )
)
def test_png_heat_maps_round_trip(heat):
    top = float(heat.max())
    levels = wire.quantise(heat, top)
    back = wire.unpng(wire.png(levels), heat.shape)
    assert np.array_equal(back, levels)
    # zero stays zero and nothing else becomes zero; the rest within half a level of heat / max
    assert np.array_equal(back > 0, heat > 0)
    if top > 0:
        scaled = heat / top * 255
        assert np.all((np.abs(back - scaled) <= 0.5 + 1e-9) | ((back == 1) & (scaled < 1)))


def test_a_node_entry_decodes_to_its_mask():
    # a product set (runs) and a mask that is not one (rle): both decode to the same array they came from
    shape = [2, 3, 4, 5]
    product = torch.zeros(shape, dtype=torch.bool)
    product[:, 1:, 1:3, 2:] = True
    other = product.clone()
    other[0, 1, 1, 2] = False
    node = {"id": "n", "op": "module", "label": "n", "path": "n"}
    for m in (product, other):
        entry = json.loads(json.dumps(receptive._entry(node, None, m.double() * 3, m)))
        assert (entry["runs"] is None) == (m is other)
        assert np.array_equal(wire.mask(entry), m.numpy())
        assert np.array_equal(wire.grid(entry), m.reshape(-1, 4, 5).any(0).numpy())
        assert np.array_equal(wire.heat(entry) > 0, m.numpy())
        assert np.array_equal(wire.heat_grid(entry) > 0, m.reshape(-1, 4, 5).any(0).numpy())
        assert entry["effective"]["max"] == 3.0 and entry["effective"]["count"] == int(m.sum())


# ---------------------------------------------------------------------------------------------
# answers against autograd
# ---------------------------------------------------------------------------------------------


def _answer(registry, request: dict[str, Any], index: list[int], node: str | None = None) -> tuple[dict, int]:
    body = {**request, "index": index, **({"node": node} if node else {})}
    text = json.dumps(receptive.receptive_field(registry, body, Settings()))
    return json.loads(text), len(text.encode())


def _plain_torch(registry, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, torch.Tensor]:
    """|∂y/∂x| in plain torch: the same seed, module and input, forward hooks keeping each module call's
    output, one ``autograd.grad``. By node id: the input and every module node called once."""
    plan = plan_request(registry, RunRequest.model_validate(request), Settings())
    module, xs = materialise(plan)
    module.train(plan.train)
    x = xs[0].detach().requires_grad_(True)
    paths = {n["path"]: n["id"] for n in answer["graph"]["nodes"] if n["op"] == "module" and n["path"]}
    outs: dict[str, list[torch.Tensor]] = {}
    handles = []
    for path in paths:
        sub = module.get_submodule(path)
        handles.append(sub.register_forward_hook(lambda m, a, out, p=path: outs.setdefault(p, []).append(out)))
    with torch.enable_grad():
        y = module(x)
    for h in handles:
        h.remove()
    y = y[0] if isinstance(y, tuple) else y
    target = answer["target"]
    top = y if target["id"] == "output" else None
    named = {paths[p]: o[0] for p, o in outs.items() if len(o) == 1 and isinstance(o[0], torch.Tensor)}
    if top is None:
        top = named[target["id"]]
    ids = [answer["input"]["id"], *[k for k in named if named[k].requires_grad]]
    tensors = [x, *[named[k] for k in ids[1:]]]
    grads = torch.autograd.grad(top[tuple(answer["index"])], tensors, allow_unused=True)
    return {k: g.abs() for k, g in zip(ids, grads) if g is not None}


def _check(registry, request: dict[str, Any], answer: dict[str, Any]) -> int:
    """Every node's decoded structural mask equals the twin's (autograd), and every effective heat map
    plain torch's. Returns how many node fields were compared."""
    plan = plan_request(registry, RunRequest.model_validate(request), Settings())
    module, xs = materialise(plan)
    module.train(plan.train)
    index = tuple(answer["index"])
    twin = receptive.structural_autograd(module, xs, answer["target"]["id"], index, request.get("seed", 0))
    by_id = {n["id"]: n for n in answer["nodes"]}
    checked = 0
    for nid, want in twin.items():
        entry = by_id.get(nid)
        if entry is None or entry["shape"] is None:
            continue
        assert np.array_equal(wire.mask(entry), want.numpy()), (nid, entry["count"], int(want.sum()))
        assert entry["count"] == int(want.sum())
        checked += 1
    for nid, g in _plain_torch(registry, request, answer).items():
        entry = by_id[nid]
        folded = receptive._fold(g)
        levels = wire.heat_grid(entry)
        assert levels is not None and levels.shape == tuple(folded.shape), nid
        top = float(g.max())
        assert entry["effective"]["max"] == pytest.approx(top, rel=1e-5, abs=1e-30), nid
        assert entry["effective"]["count"] == int((g > 0).sum()), nid
        want = wire.quantise(folded.float().numpy(), top)
        assert np.array_equal(levels > 0, want > 0), nid
        assert int(np.abs(levels.astype(int) - want.astype(int)).max(initial=0)) <= 1, nid
        # where the structural field is not reached, neither is the gradient
        assert not np.any((levels > 0) & ~wire.grid(entry)), nid
        checked += 1
    return checked


FLOAT_PRESETS = [p for p in PRESETS if p["id"] not in ("tiny-transformer-encoder", "text-self-attention")]


@pytest.mark.parametrize("preset", FLOAT_PRESETS, ids=lambda p: p["id"])
def test_presets_answers_equal_autograd(registry, preset):
    request = preset["request"]
    answer, _ = _answer(registry, request, _middle(registry, request))
    assert _check(registry, request, answer) > 2


def _middle(registry, request: dict[str, Any]) -> list[int]:
    plan = plan_request(registry, RunRequest.model_validate(request), Settings())
    shape = plan.meta_shapes[0] if plan.meta_shapes is not None else plan.predicted_shapes[0]
    return [n // 2 for n in shape]


def test_transformer_preset_through_hooks_equals_autograd(registry):
    # fx cannot trace it: the graph comes from hooks, the structural field from autograd through the twin
    request = next(p for p in PRESETS if p["id"] == "tiny-transformer-encoder")["request"]
    answer, _ = _answer(registry, request, [1, 2, 3])
    assert answer["method"] == "hooks" and answer["structural"] == "autograd"
    assert answer["input"]["count"] == 5 * 16
    assert np.array_equal(wire.heat(answer["input"]) > 0, wire.mask(answer["input"]))


# in eval mode: batch statistics (training mode) would couple every position, and every field be the whole image
RESNET18 = {**next(p for p in CLASSICS if p["id"] == "resnet18")["request"], "train": False}


@pytest.fixture(scope="module")
def resnet18_inner(registry):
    """ResNet-18 at 224 × 224: the field of one element of layer2's output (a partial field: part of the
    image, every channel), asked once for the module."""
    return _answer(registry, RESNET18, [0, 5, 14, 3], node="layer2_1_relu")


def test_resnet18_answer_equals_autograd(registry, resnet18_inner):
    answer, _ = resnet18_inner
    assert answer["structural"] == "intervals"
    x = answer["input"]
    assert 0 < x["count"] < x["numel"] and x["runs"] is not None
    assert _check(registry, RESNET18, answer) > 20


def test_resnet18_answer_is_small(registry, resnet18_inner):
    answer, size = resnet18_inner
    elements = sum(n["numel"] or 0 for n in answer["nodes"])
    # per-element JSON ("0,", "1,", a heat value each) would be several bytes for each of millions of elements
    assert elements > 2_000_000
    assert size < 200_000, size
    # the logits: every element of every node is reached, the densest heat maps there are
    logits, size = _answer(registry, RESNET18, [0, 500])
    assert logits["input"]["count"] == logits["input"]["numel"]
    assert size < 600_000, size


def test_depth_512_linear_answer_is_small(registry):
    linear = {"type": "Linear", "in_features": 64, "out_features": 64}
    half = {"type": "Sequential", "layers": [{"type": "Sequential", "layers": [linear, {"type": "ReLU"}]}] * 256}
    request = {"layer": {"type": "Sequential", "layers": [half, half]}, "inputs": [{"shape": [8, 64]}], "seed": 0}
    answer, size = _answer(registry, request, [1, 3])
    assert answer["structural"] == "intervals"
    fields = [n for n in answer["nodes"] if n["count"]]
    # the element, the last ReLU's and the last Linear's one element; every earlier node: its row of 64
    assert sorted(n["count"] for n in fields) == [1, 1, 1] + [64] * (len(fields) - 3) and len(fields) > 1024
    # per-element JSON takes at least two bytes ("0,") per element for the mask alone: the nodes' fields,
    # masks and heat maps together, take less than one
    elements = sum(n["numel"] for n in fields)
    node_bytes = len(json.dumps(answer["nodes"]).encode())
    assert node_bytes < elements, (node_bytes, elements)
    assert size < 1_000_000, size
