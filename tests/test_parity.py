"""Torch parity, by property: every request plain torch accepts, the API accepts with the same shape
(formula == meta == real), and every request torch refuses gets a clear 4xx — never a 5xx.

The oracle is plain torch, called directly with the same arguments, so a rule of ours that refuses
too much (or too little) fails here even when the API's own paths agree with each other.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

from app.core import service

REGISTRY = service.default_registry()
SETTINGS = service.Settings()
META_CHECK = service.Settings(meta_check=True)
FAST = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)


def _torch_shapes(layer: dict, inputs: list[torch.Tensor]) -> list[list[int]] | None:
    """What plain torch returns for this layer and these inputs; None where torch refuses."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items() if k != "type"}
    try:
        result = getattr(nn, layer["type"])(**kwargs)(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None
    outs = result if isinstance(result, tuple) else (result,)
    return [list(t.shape) for t in outs]


def _check(body: dict, inputs: list[torch.Tensor]) -> list[list[int]] | None:
    expected = _torch_shapes(body["layer"], inputs)
    answers = {}
    for name in ("shape", "run"):
        try:
            answers[name] = getattr(service, name)(REGISTRY, body, META_CHECK if name == "shape" else SETTINGS)
        except service.LayerExplorerError as exc:
            assert exc.status < 500, exc.detail
            assert expected is None, f"/api/{name} refused what torch runs ({expected}): {exc.detail}"
            answers[name] = None
    if expected is None:
        # torch refused: a run must be refused too (a shape may still be predicted, nothing ran)
        assert answers["run"] is None, f"/api/run ran what torch refuses: {body}"
        return None
    shape, run = answers["shape"], answers["run"]
    assert shape["output_shapes"] == expected
    assert run is not None and [o["shape"] for o in run["outputs"]] == expected
    if shape["predicted_shapes"] is not None:
        assert shape["predicted_shapes"] == expected
    if "meta_shapes" in shape:
        assert shape["meta_shapes"] == expected
    return expected


def _data(t: torch.Tensor) -> dict:
    return {"data": t.tolist(), "dtype": "int64" if not t.is_floating_point() else "float32"}


@st.composite
def padding_case(draw):
    n = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["Zero", "Constant", "Reflection", "Replication", "Circular"]))
    spatial = [draw(st.integers(1, 5)) for _ in range(n)]
    pads = [draw(st.integers(-6, 6)) for _ in range(2 * n)]
    layer = {"type": f"{kind}Pad{n}d", "padding": pads}
    if kind == "Constant":
        layer["value"] = 1.5
    shape = draw(st.sampled_from([[1, 2], [2]])) + spatial
    return layer, shape


@FAST
@given(padding_case())
def test_padding_layers_negative_padding_crops_as_torch_does(case):
    layer, shape = case
    x = torch.randn(shape)
    _check({"layer": layer, "inputs": [_data(x)]}, [x])


@st.composite
def adaptive_case(draw):
    n = draw(st.integers(2, 3))
    kind = draw(st.sampled_from(["Avg", "Max"]))
    sizes = [draw(st.one_of(st.none(), st.integers(1, 6))) for _ in range(n)]
    spatial = [draw(st.integers(1, 6)) for _ in range(n)]
    return {"type": f"Adaptive{kind}Pool{n}d", "output_size": sizes}, [1, 2] + spatial


@FAST
@given(adaptive_case())
def test_adaptive_pools_keep_dimensions_given_as_null(case):
    layer, shape = case
    x = torch.randn(shape)
    _check({"layer": layer, "inputs": [_data(x)]}, [x])


@st.composite
def fractional_case(draw):
    n = draw(st.integers(2, 3))
    k = draw(st.integers(1, 3))
    spatial = [draw(st.integers(k, 6)) for _ in range(n)]
    layer = {"type": f"FractionalMaxPool{n}d", "kernel_size": k}
    if draw(st.booleans()):
        layer["output_size"] = draw(st.integers(0, 6))
    else:
        layer["output_ratio"] = draw(st.sampled_from([0.05, 0.1, 0.25, 0.5, 0.75, 0.99]))
    return layer, [1, 2] + spatial


@FAST
@given(fractional_case())
def test_fractional_pools_return_empty_outputs_as_torch_does(case):
    layer, shape = case
    x = torch.randn(shape)
    _check({"layer": layer, "inputs": [_data(x)], "seed": 0}, [x])


@st.composite
def unpool_case(draw):
    n = draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    spatial = [draw(st.integers(k, 5)) for _ in range(n)]
    padding = draw(st.integers(0, 2))
    return n, k, padding, [1, 1] + spatial


@FAST
@given(unpool_case())
def test_max_unpool_including_empty_results(case):
    n, k, padding, shape = case
    pooled, indices = getattr(torch.nn.functional, f"max_pool{n}d")(torch.randn(shape), k, return_indices=True)
    layer = {"type": f"MaxUnpool{n}d", "kernel_size": k, "padding": padding}
    _check({"layer": layer, "inputs": [_data(pooled), _data(indices)]}, [pooled, indices])


@st.composite
def upsample_case(draw):
    rank = draw(st.sampled_from([3, 4, 5]))
    modes = {
        3: ["nearest", "linear", "area", "nearest-exact"],
        4: ["nearest", "bilinear", "bicubic", "area"],
        5: ["nearest", "trilinear", "area"],
    }[rank]
    layer = {
        "type": "Upsample",
        "mode": draw(st.sampled_from(modes)),
        "scale_factor": draw(st.sampled_from([0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0])),
    }
    shape = [1, 1] + [draw(st.integers(1, 5)) for _ in range(rank - 2)]
    return layer, shape


@FAST
@given(upsample_case())
def test_upsample_scales_including_empty_area_results(case):
    layer, shape = case
    x = torch.randn(shape)
    _check({"layer": layer, "inputs": [_data(x)]}, [x])


@st.composite
def transposed_case(draw):
    n = draw(st.integers(1, 3))
    layer = {
        "type": f"ConvTranspose{n}d",
        "in_channels": 1,
        "out_channels": 2,
        "kernel_size": draw(st.integers(1, 4)),
        "stride": draw(st.integers(1, 3)),
        "dilation": draw(st.integers(1, 3)),
        "padding": draw(st.integers(0, 6)),
        "output_padding": draw(st.integers(0, 3)),
    }
    return layer, [1, 1] + [draw(st.integers(1, 5)) for _ in range(n)]


def _transposed(n: int, k: int, s: int, d: int, p: int, op: int, spatial: list[int]) -> tuple[dict, list[int]]:
    layer = {"type": f"ConvTranspose{n}d", "in_channels": 1, "out_channels": 2, "kernel_size": k, "stride": s}
    return {**layer, "dilation": d, "padding": p, "output_padding": op}, [1, 1, *spatial]


@FAST
@given(transposed_case())
# torch returns (1, 2, 0, 0) here: the formula answers 0, not a refusal (the meta kernel refuses it)
@example(_transposed(2, 4, 1, 2, 4, 0, [2, 2]))
@example(_transposed(2, 4, 2, 1, 2, 0, [1, 1]))
# a size of 0 torch refuses (1-D): the run is refused with a 4xx
@example(_transposed(1, 1, 2, 1, 1, 1, [1]))
@example(_transposed(3, 4, 1, 1, 2, 0, [1, 1, 1]))
# a negative size: refused everywhere
@example(_transposed(2, 1, 1, 1, 3, 0, [2, 2]))
def test_transposed_conv_output_padding_and_large_padding(case):
    layer, shape = case
    x = torch.randn(shape)
    torch.manual_seed(0)
    _check({"layer": layer, "inputs": [_data(x)]}, [x])


@FAST
@given(st.sampled_from([0.5, 1.5, 2.5, 3.0]), st.lists(st.floats(-3, 3, allow_nan=False), min_size=4, max_size=8))
# float32 x^3 of a subnormal underflows to −0: torch answers 0 where a float64 hand computation gives NaN
@example(3.0, [-4.0e-40, 0.0, 0.0, 0.0])
@example(3.0, [-4.0e-40, 1.0e-45, 1.0, 1.0])
@example(1.5, [1.0e-40, 0.0, -1.0, 2.0])
# a negative base under a fractional power: NaN in both
@example(2.5, [-1.0, 0.5, 0.5, 0.5])
def test_lp_pool_explain_matches_torch_on_negative_inputs(norm_type, values):
    body = {
        "layer": {"type": "LPPool1d", "norm_type": norm_type, "kernel_size": 2},
        "inputs": [{"data": [[values]]}],
        "index": [0, 0, 0],
    }
    torch_value = nn.LPPool1d(norm_type, 2)(torch.tensor([[values]]))[0, 0, 0].item()
    ex = service.explain(REGISTRY, body, SETTINGS)
    if math.isnan(torch_value):
        assert ex["value"] == "nan" and ex["manual"] == "nan" and ex["match"]
    else:
        assert ex["match"] and abs(ex["manual"] - torch_value) <= 1e-4 * max(1.0, abs(torch_value))


def test_empty_results_are_answered_with_their_shape():
    body = {
        "layer": {"type": "FractionalMaxPool2d", "kernel_size": 2, "output_size": 0},
        "inputs": [{"shape": [1, 1, 6, 6]}],
    }
    run = service.run(REGISTRY, body, SETTINGS)
    assert run["output"]["shape"] == [1, 1, 0, 0]
    assert run["output"]["numel"] == 0 and run["output"]["data"] == [[[]]]
    assert run["output"]["summary"]["min"] is None
    shape = service.shape(REGISTRY, body, SETTINGS)
    assert shape["output_shapes"][0] == [1, 1, 0, 0]


def test_transposed_conv_refusal_says_padding_trims_the_output():
    """A negative transposed-convolution size comes from too much padding: the advice is less padding
    (a convolution's advice, more padding, would make it worse)."""
    body = {
        "layer": {"type": "ConvTranspose2d", "in_channels": 1, "out_channels": 2, "kernel_size": 1, "padding": 3},
        "inputs": [{"shape": [1, 1, 2, 2]}],
    }
    try:
        service.shape(REGISTRY, body, SETTINGS)
    except service.LayerExplorerError as exc:
        assert exc.status == 422
        assert "H_out = (2 − 1)·1 − 2·3 + 1·(1 − 1) + 0 + 1 = -4" in exc.detail
        assert "Use less padding" in exc.detail and "more padding" not in exc.detail
    else:
        raise AssertionError("a negative output size was answered")


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lp_pool_explain_adds_in_torchs_order_and_dtype(n, dtype):
    """1e8 + 1 − 1e8 is 0 in float32 (torch adds the window's x^p in order, in the run's dtype) and 1 in
    float64: the hand computation gives torch's number for both, not float64's."""
    x = torch.tensor([1e8, 1.0, -1e8], dtype=getattr(torch, dtype)).reshape([1, 1] + [1] * (n - 1) + [3])
    kernel = [1] * (n - 1) + [3]
    layer = {"type": f"LPPool{n}d", "norm_type": 1.0, "kernel_size": kernel if n > 1 else 3}
    expected = getattr(nn, layer["type"])(1.0, tuple(kernel) if n > 1 else 3)(x).flatten()[0].item()
    body = {"layer": layer, "inputs": [{"data": x.tolist()}], "dtype": dtype, "index": [0, 0] + [0] * n}
    ex = service.explain(REGISTRY, body, SETTINGS)
    assert expected == (0.0 if dtype == "float32" else 1.0)
    assert ex["manual"] == ex["value"] == expected and ex["match"]
    assert ex["manual_dtype"] == dtype
