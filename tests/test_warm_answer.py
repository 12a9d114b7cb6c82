"""The answer's short ways for a repeated network run say what the general ways say, key for key:
parameters past the budget (app.core.running.respond.params_json), pointers to the full tensors
(fetch_pointer), and lists whose summary counted no non-finite value (app.core.tensors.to_nested)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from app.core import body, tensors
from app.core.config import Settings
from app.core.networks.trace import named_modules, named_parameters
from app.core.running.respond import _VALUE_KEYS, fetch_pointer, params_json

SETTINGS = Settings()


def general_params(module: nn.Module, settings: Settings, *, with_data: bool, budget) -> list[dict]:
    """The loop params_json stands for: every parameter asks the budget, its device read per parameter."""
    out = []
    for name, p in named_parameters(module):
        entry = {"name": name, "shape": list(p.shape), "numel": p.numel(), "dtype": tensors.dtype_name(p.dtype)}
        if with_data and p.device.type != "meta":
            t = tensors.tensor_json(name, p, max_elements=settings.max_elements, budget=budget)
            entry.update({k: t[k] for k in _VALUE_KEYS if k in t})
        out.append(entry)
    return out


def deep(blocks: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*(nn.Sequential(nn.Linear(16, 16), nn.ReLU()) for _ in range(blocks)))


@pytest.mark.parametrize("budget", [0, 200, 5_000, 40_000, 2 * 1024**2])
@pytest.mark.parametrize("path", [None, "0.3"])
def test_parameters_and_pointers_are_the_general_ways(budget, path):
    module = deep(24)
    fast = params_json(
        module, SETTINGS, with_data=True, budget=tensors.ValueBudget(budget), modules=named_modules(module)
    )
    general = general_params(module, SETTINGS, with_data=True, budget=tensors.ValueBudget(budget))
    for entry in general:  # the pointer as it was spelled: one dict literal with ** of the path's
        if entry.get("values") in ("preview", "summary", "none"):
            entry["full"] = {"format": "npy", "tensor": entry["name"], **({"path": path} if path else {})}
    for entry in fast:
        fetch_pointer(entry, path)
    assert body.encode_json(fast) == body.encode_json(general)  # same keys, same order, same numbers
    if budget < tensors.SUMMARY_BYTES:
        assert all(e["values"] == "none" for e in fast)
    if budget == 5_000:  # the budget ran out part of the way: both kinds of entries in one answer
        assert {e["values"] for e in fast} >= {"data", "none"}


def test_parameters_without_values_and_on_meta_are_the_general_ways():
    module = deep(3)
    on_meta = deep(3).to("meta")
    for m, with_data in ((module, False), (on_meta, True), (on_meta, False)):
        fast = params_json(m, SETTINGS, with_data=with_data, budget=tensors.ValueBudget(0))
        general = general_params(m, SETTINGS, with_data=with_data, budget=tensors.ValueBudget(0))
        assert body.encode_json(fast) == body.encode_json(general)
        assert all("values" not in e for e in fast)


def general_nested(array: np.ndarray):
    """Every number spelled on its own: the strings JSON needs for the non-finite ones."""

    def spell(x: float):
        return "nan" if math.isnan(x) else ("inf" if x == math.inf else ("-inf" if x == -math.inf else x))

    return np.vectorize(spell, otypes=[object])(array.astype(np.float64)).tolist()


finite_or_not = st.floats(width=32) | st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0])


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=12), elements=finite_or_not))
def test_data_and_previews_spell_non_finite_values_whatever_the_summary_skips(array):
    t = torch.from_numpy(array.copy())
    small = dataclasses.replace(SETTINGS, max_elements=64)
    got = tensors.tensor_json("x", t, max_elements=small.max_elements)
    if got["values"] == "data":
        assert got["data"] == general_nested(array)
    else:  # a preview: the strided sample, spelled the same way
        index = tuple(slice(None, None, s) for s in got["preview_step"])
        assert got["preview"] == general_nested(np.ascontiguousarray(array[index]))
    assert (got["summary"]["nonfinite"] == 0) == bool(np.isfinite(array).all())
