"""Summaries computed where a tensor lives (app.core.tensors.device_summary) agree with the CPU's.

On a GPU the summary is computed on the device and only the preview is copied back; the same torch code
runs on CPU tensors here, so the arithmetic is checked without a GPU (tests/gpu checks it on one).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import tensors


def _close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is b[k] is None, k
        else:
            assert math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12), (k, a[k], b[k])


CASES = {
    "0-d": torch.tensor(2.5),
    "empty": torch.zeros(0, 4),
    "all nan": torch.full((3,), float("nan")),
    "inf and nan among numbers": torch.tensor([1.0, float("inf"), -2.0, float("nan"), 4.0]),
    "int64": torch.arange(-5, 7),
    "bool": torch.tensor([True, False, True]),
    "bfloat16": torch.randn(50, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16),
    "complex (magnitude)": torch.tensor([3 + 4j, 1j]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_device_summary_equals_the_cpu_summary(name):
    t = CASES[name]
    _close(tensors.device_summary(t), tensors.summary(tensors.numpy_of(t)))


def test_chunks_merge_like_one_pass(monkeypatch):
    t = torch.randn(10_001, generator=torch.Generator().manual_seed(0)) * 3 + 1
    t[::97] = float("nan")
    whole = tensors.device_summary(t)
    monkeypatch.setattr(tensors, "DEVICE_SUMMARY_CHUNK", 1000)  # 11 chunks, the last one short
    _close(tensors.device_summary(t), whole)
    _close(whole, tensors.summary(tensors.numpy_of(t)))
    finite = t[torch.isfinite(t)].double()
    assert math.isclose(whole["std"], finite.std(unbiased=False).item(), rel_tol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(width=32, allow_nan=True, allow_infinity=True), st.just(0.0)), min_size=0, max_size=200
    )
)
def test_any_float32_values(values):
    t = torch.tensor(values, dtype=torch.float32)
    _close(tensors.device_summary(t), tensors.summary(np.asarray(values, dtype=np.float32)))
