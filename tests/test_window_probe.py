"""The window probe: exactly what torch's one-hot probe says, at the cost of the cells it describes.

The reference here is the probe the server used before: the layer's own class with one output channel
per kernel element and a one-hot kernel, so output channel ``k`` holds ``1 +`` the input index kernel
element ``k`` reads. It is exact, and it costs 16·K² bytes for K kernel elements (a 110×110 kernel:
2.2 GB). :func:`conv_sources` builds the same windows per dimension; these tests hold it to the
reference on random geometries and bound what it allocates.
"""

from __future__ import annotations

import math
import multiprocessing

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.explaining.windows import _index_tensor, _tuple, conv_geometry, conv_sources, geometry_json


def one_hot_probe(module: torch.nn.Module, spatial: tuple[int, ...]) -> torch.Tensor:
    """torch's answer, the expensive way: ``(*out, K)`` input indices in window-slot order."""
    n = len(spatial)
    kernel = _tuple(module.kernel_size, n)
    K = math.prod(kernel)
    transposed = bool(module.transposed)
    common = {"stride": module.stride, "padding": module.padding, "dilation": module.dilation, "bias": False}
    if transposed:
        probe = type(module)(1, K, kernel, output_padding=module.output_padding, dtype=torch.float64, **common)
    else:
        probe = type(module)(1, K, kernel, padding_mode=module.padding_mode, dtype=torch.float64, **common)
    eye = torch.eye(K, dtype=torch.float64)
    with torch.no_grad():
        probe.weight.copy_(eye.reshape(1, K, *kernel) if transposed else eye.reshape(K, 1, *kernel))
        out = probe(_index_tensor(spatial))[0]
    src = out.round().long().movedim(0, -1) - 1
    if transposed:
        src = src[..., torch.flip(torch.arange(K).reshape(kernel), dims=list(range(n))).reshape(-1)]
    return src


@st.composite
def conv_layers(draw):
    n = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    cls = getattr(torch.nn, f"ConvTranspose{n}d" if transposed else f"Conv{n}d")
    spatial = tuple(draw(st.integers(1, 9 if n < 3 else 5)) for _ in range(n))
    kernel = [draw(st.integers(1, 4)) for _ in range(n)]
    stride = [draw(st.integers(1, 3)) for _ in range(n)]
    dilation = [draw(st.integers(1, 3)) for _ in range(n)]
    if transposed:
        padding = [draw(st.integers(0, 3)) for _ in range(n)]
        extra = [draw(st.integers(0, max(0, min(s, d) - 1))) for s, d in zip(stride, dilation)]
        module = cls(1, 1, kernel, stride=stride, padding=padding, output_padding=extra, dilation=dilation)
    else:
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
        padding = (
            "same"
            if all(s == 1 for s in stride) and draw(st.booleans())
            else [draw(st.integers(0, 3)) for _ in range(n)]
        )
        module = cls(1, 1, kernel, stride=stride, padding=padding, dilation=dilation, padding_mode=mode)
    return module, spatial


@settings(max_examples=300, deadline=None)
@given(conv_layers())
def test_per_dimension_windows_are_the_one_hot_probe(case):
    module, spatial = case
    try:
        expected = one_hot_probe(module, spatial)
    except (RuntimeError, ValueError) as exc:  # torch refuses this geometry: so must the probe
        try:
            conv_sources(module, spatial)
        except (RuntimeError, ValueError, NotImplementedError):
            return
        raise AssertionError(f"torch refused {module} on {spatial} ({exc}), the probe did not") from None
    src, out_spatial = conv_sources(module, spatial)
    assert out_spatial == tuple(expected.shape[:-1])
    assert torch.equal(src, expected)
    geo = conv_geometry(module, spatial)  # and the layer's own class agrees (the runtime check)
    geometry_json(geo, module)  # the compact description rebuilds it exactly (raises otherwise)


def _peak_growth(case: tuple[int, int], queue) -> None:
    """Peak resident growth of one probe, in a fresh process (VmHWM after clear_refs resets it)."""

    def status(key: str) -> int:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))

    k, size = case
    conv_geometry(torch.nn.Conv2d(1, 1, 3), (8, 8))  # torch's kernels loaded before the measure
    module = torch.nn.Conv2d(1, 1, k)
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    geo = conv_geometry(module, (size, size))
    queue.put((status("VmHWM") - base, tuple(geo.src.shape)))


def test_the_probe_costs_its_cells_not_the_square_of_the_kernel():
    """Conv2d k=110 on 111×111: 4 output positions × 12,100 kernel elements. The one-hot probe grew a
    worker by 2.2 GB (16·K²); its 48,400 cells need well under 32 MiB. So does k=200 on 200×200 (one
    position, 40,000 cells), which would have needed about 25 GB."""
    ctx = multiprocessing.get_context("spawn")
    for case, cells in (((110, 111), (2, 2, 12100)), ((200, 200), (1, 1, 40000))):
        queue = ctx.Queue()
        proc = ctx.Process(target=_peak_growth, args=(case, queue))
        proc.start()
        grown, shape = queue.get(timeout=300)
        proc.join(timeout=60)
        assert shape == cells
        assert grown < 32 * 1024**2, f"k={case[0]}: the probe grew the process by {grown / 2**20:.0f} MiB"
