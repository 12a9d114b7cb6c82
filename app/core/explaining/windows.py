"""Where each output element of a convolution or pooling layer reads its input — asked of torch.

Convolutions: padding, stride and dilation act on each spatial dimension on its own, so the windows
are built per dimension — padded by torch itself (``F.pad`` with the layer's ``padding_mode`` and its
own padding amounts, asymmetric for ``'same'``), then strided and dilated — and checked against the
layer's own class run on an index tensor (one input and one output channel, kernel weights 1…7: the
output must be exactly the weighted sum of what the windows say each output element reads). The probe
costs the ``output positions × K`` cells it describes, never K² (a one-hot kernel per element, as
before, took 2.2 GB for a 110×110 kernel). Pooling windows come from ``Tensor.unfold`` over the
padded index tensor, cut to the output size torch reports.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from app.core import tensors
from app.core.shapes.context import ntuple
from app.core.torch_errors import TORCH_FAULTS, torch_message


@dataclass
class Geometry:
    """Window positions for one layer and one input's spatial size.

    ``src``: int64 tensor ``(*out_spatial, K)`` of flat input indices (-1: padding / inserted zero,
    -2: outside the padded input, only for ceil_mode pooling). ``at``: ``(*out_spatial, K, d)``
    frame coordinates. ``kernel_index``: ``(K, d)`` — for transposed convolution this is the weight
    element that meets each window slot (the kernel is flipped relative to the frame).
    """

    kind: str
    input_spatial: tuple[int, ...]
    output_spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    frame_shape: tuple[int, ...]
    origin: tuple[int, ...]
    step: tuple[int, ...]
    src: torch.Tensor
    at: torch.Tensor
    kernel_index: torch.Tensor
    #: per spatial dimension, frame coordinate → input coordinate read there (see ``expand_src``)
    maps: list[list[int]]

    @property
    def d(self) -> int:
        return len(self.input_spatial)

    def unravel(self, flat: int) -> list[int]:
        return [int(v) for v in torch.unravel_index(torch.tensor(flat), self.input_spatial)]


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in ntuple(v, n))


def _index_tensor(spatial: tuple[int, ...]) -> torch.Tensor:
    n = math.prod(spatial)
    return (torch.arange(n, dtype=torch.float64) + 1).reshape(1, 1, *spatial)


def _kernel_grid(kernel: tuple[int, ...]) -> torch.Tensor:
    grids = torch.meshgrid(*[torch.arange(k) for k in kernel], indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=1)


def _positions(out_spatial: tuple[int, ...], kernel_idx: torch.Tensor, stride, dilation) -> torch.Tensor:
    """Frame coordinates o·stride + k·dilation for every (output position, kernel element)."""
    grids = torch.meshgrid(*[torch.arange(o) for o in out_spatial], indexing="ij")
    o = torch.stack(list(grids), dim=-1)  # (*out, d)
    s = torch.tensor(stride)
    dl = torch.tensor(dilation)
    return o.unsqueeze(-2) * s + kernel_idx * dl  # (*out, K, d)


def _combine(tables: list[torch.Tensor], spatial: tuple[int, ...]) -> torch.Tensor:
    """``(*out, K)`` flat input indices from per-dimension ``(out_j, k_j)`` tables of input coordinates
    (-1: padding or an inserted zero): the cell reads input ``(t_0, …)``, padding if any is -1."""
    n = len(tables)
    flat: torch.Tensor | None = None
    padding: torch.Tensor | None = None
    for j, t in enumerate(tables):
        view = [1] * (2 * n)
        view[j], view[n + j] = t.shape
        t = t.reshape(view)
        flat = t.clamp(min=0) if flat is None else flat * spatial[j] + t.clamp(min=0)
        padding = t < 0 if padding is None else padding | (t < 0)
    assert flat is not None and padding is not None
    out_spatial = tuple(int(t.shape[0]) for t in tables)
    return torch.where(padding, -1, flat).reshape(*out_spatial, -1)


def _padded_coordinates(module: nn.Module, size: int, before: int, after: int) -> torch.Tensor:
    """Input coordinate at each coordinate of one padded dimension (-1: zero padding), padded by torch
    itself: ``F.pad`` with the layer's own ``padding_mode``, as its forward pads."""
    line = torch.arange(1, size + 1, dtype=torch.float64).reshape(1, 1, size)
    mode = getattr(module, "padding_mode", "zeros")
    padded = F.pad(line, [before, after]) if mode == "zeros" else F.pad(line, [before, after], mode=mode)
    return padded.reshape(-1).round().long() - 1


def conv_sources(module: nn.Module, input_spatial: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``src`` ``(*out, K)`` of a convolution (window slot order: see ``Geometry``) and the output size.

    Padding, stride and dilation act on each spatial dimension on its own, so the windows are built
    from one ``(out_j, k_j)`` table per dimension: the probe costs the ``out × K`` cells it describes
    (and the kernel's K elements for one output position), never K² (a one-hot kernel per element).
    torch is asked all the same: :func:`_torch_agrees` runs the layer's own class on the index tensor.
    """
    n = len(input_spatial)
    kernel = _tuple(module.kernel_size, n)
    stride = _tuple(module.stride, n)
    dilation = _tuple(module.dilation, n)
    tables = []
    if getattr(module, "transposed", False):
        # Dumoulin & Visin: a direct convolution with the flipped kernel, stride 1, over the input with
        # stride − 1 zeros between elements, placed at d·(k − 1) − padding in the frame (torch's docs
        # give the output size).
        pad = _tuple(module.padding, n)
        extra = _tuple(module.output_padding, n)
        for j in range(n):
            size = (input_spatial[j] - 1) * stride[j] - 2 * pad[j] + dilation[j] * (kernel[j] - 1) + extra[j] + 1
            if size <= 0:
                raise ValueError(f"the output of {type(module).__name__} would be empty along dimension {j}")
            rel = (
                torch.arange(size).unsqueeze(1)
                + torch.arange(kernel[j]).unsqueeze(0) * dilation[j]
                - (dilation[j] * (kernel[j] - 1) - pad[j])
            )
            on = (rel >= 0) & (rel % stride[j] == 0) & (rel // stride[j] < input_spatial[j])
            tables.append(torch.where(on, rel // stride[j], -1))
    else:
        # torch's own padding amounts (asymmetric for 'same' with an even reach), as its forward uses them
        pads = module._reversed_padding_repeated_twice
        for j in range(n):
            before, after = pads[2 * (n - 1 - j)], pads[2 * (n - 1 - j) + 1]
            coords = _padded_coordinates(module, input_spatial[j], before, after)
            reach = dilation[j] * (kernel[j] - 1) + 1
            if coords.numel() < reach:
                raise ValueError(
                    f"the padded input ({coords.numel()}) is smaller than the kernel's reach ({reach}) "
                    f"along dimension {j}"
                )
            size = (coords.numel() - reach) // stride[j] + 1
            at = torch.arange(size).unsqueeze(1) * stride[j] + torch.arange(kernel[j]).unsqueeze(0) * dilation[j]
            tables.append(coords[at])
    return _combine(tables, input_spatial), tuple(int(t.shape[0]) for t in tables)


#: the check runs torch's layer on one channel; past this many of its working cells (im2col/col2im) it
#: is skipped (a transposed convolution with a large padding works on more cells than it outputs)
MAX_CHECK_CELLS = 1 << 23


def _torch_agrees(module: nn.Module, input_spatial: tuple[int, ...], src: torch.Tensor) -> bool:
    """Whether the layer's own class, with one input and one output channel and a kernel of weights
    1…7, computes from the index tensor what ``src`` says each output reads (exact: integer sums in
    float64). It costs one im2col of ``out × K`` cells, where a one-hot probe cost K² for the kernel."""
    n = len(input_spatial)
    kernel = _tuple(module.kernel_size, n)
    K = math.prod(kernel)
    transposed = bool(getattr(module, "transposed", False))
    if K * max(math.prod(input_spatial), math.prod(src.shape[:-1])) > MAX_CHECK_CELLS:
        return True
    cls = type(module)
    common = {"stride": module.stride, "padding": module.padding, "dilation": module.dilation, "bias": False}
    with torch.device("cpu"):
        if transposed:
            probe = cls(1, 1, kernel, output_padding=module.output_padding, dtype=torch.float64, **common)
        else:
            probe = cls(1, 1, kernel, padding_mode=module.padding_mode, dtype=torch.float64, **common)
    weights = torch.arange(K, dtype=torch.float64) % 7 + 1
    with torch.no_grad():
        probe.weight.copy_(weights.reshape(1, 1, *kernel))
        out = probe(_index_tensor(input_spatial))[0, 0]
    if transposed:  # window slot k' meets weight element K − 1 − k'
        weights = weights[torch.flip(torch.arange(K).reshape(kernel), dims=list(range(n))).reshape(-1)]
    expected = ((src + 1).to(torch.float64) * weights).sum(-1)
    return tuple(out.shape) == tuple(expected.shape) and torch.equal(out, expected)


def conv_geometry(module: nn.Module, input_spatial: tuple[int, ...]) -> Geometry:
    n = len(input_spatial)
    kernel = _tuple(module.kernel_size, n)
    K = math.prod(kernel)
    transposed = bool(getattr(module, "transposed", False))
    src, out_spatial = conv_sources(module, input_spatial)  # (*out, K); -1 = padding / inserted zero
    if not _torch_agrees(module, input_spatial, src):
        raise NotSeparable(f"{type(module).__name__}: the windows disagree with torch's own layer")
    kidx = _kernel_grid(kernel)
    stride = _tuple(module.stride, n)
    dilation = _tuple(module.dilation, n)
    if transposed:
        # Dumoulin & Visin: a direct convolution with the flipped kernel over the zero-inserted
        # input. Window slot k' meets weight element K-1-k'.
        flipped = torch.flip(torch.arange(K).reshape(kernel), dims=list(range(n))).reshape(-1)
        at = _positions(out_spatial, kidx, (1,) * n, dilation)
        kernel_index = kidx[flipped]
        pad = _tuple(module.padding, n)
        origin = tuple(dilation[j] * (kernel[j] - 1) - pad[j] for j in range(n))
        step = stride
        # the frame is exactly as wide as the output's windows reach
        frame = tuple(out_spatial[j] + dilation[j] * (kernel[j] - 1) for j in range(n))
        kind = "transposed"
    else:
        at = _positions(out_spatial, kidx, stride, dilation)
        kernel_index = kidx
        declared = (
            tuple(dilation[j] * (kernel[j] - 1) // 2 for j in range(n))
            if module.padding == "same"
            else (0,) * n
            if module.padding == "valid"
            else _tuple(module.padding, n)
        )
        # The declared padding places the input in the frame; torch's probe must agree wherever a
        # window reads the input there. Where it does not, the probe's own evidence wins. (With
        # reflect/replicate/circular padding on a tiny input every cell reads the input, and several
        # offsets fit equally well: the declared one is then the true one.)
        raw = _probe_maps(src, at, input_spatial)
        origin = tuple(
            declared[j] if _agrees(raw[j], declared[j], input_spatial[j]) else _mode_offset(raw[j], declared[j])
            for j in range(n)
        )
        step = (1,) * n
        if module.padding == "same":
            after = tuple(dilation[j] * (kernel[j] - 1) - origin[j] for j in range(n))
        elif module.padding == "valid":
            after = (0,) * n
        else:
            after = _tuple(module.padding, n)
        frame = tuple(max(origin[j] + input_spatial[j] + after[j], raw[j].numel()) for j in range(n))
        kind = "conv"
    if transposed:
        raw = _probe_maps(src, at, input_spatial)
    maps = [_fit(raw[j], frame[j]) for j in range(n)]
    return Geometry(
        kind, input_spatial, out_spatial, kernel, stride, dilation, frame, origin, step, src, at, kernel_index, maps
    )


def _probe_maps(src: torch.Tensor, at: torch.Tensor, spatial: tuple[int, ...]) -> list[torch.Tensor]:
    """Per dimension, the input coordinate torch's probe reads at each frame coordinate (-1: none).

    Scattered from every window cell that reads the input; each map is as long as the windows reach.
    """
    d = len(spatial)
    flat_src = src.reshape(-1)
    flat_at = at.reshape(-1, d)
    valid = flat_src >= 0
    rest = flat_src[valid]
    reads = flat_at[valid]
    coords: list[torch.Tensor] = [rest] * d
    for j in reversed(range(d)):
        coords[j] = rest % spatial[j]
        rest = rest // spatial[j]
    maps = []
    for j in range(d):
        m = torch.full((int(flat_at[:, j].max()) + 1 if flat_at.numel() else 0,), -1, dtype=torch.long)
        m[reads[:, j]] = coords[j]
        maps.append(m)
    return maps


def _agrees(m: torch.Tensor, origin: int, size: int) -> bool:
    """Every frame coordinate in the input's place (from ``origin``) that a window reads, reads the
    input element there."""
    f = torch.arange(m.numel())
    inside = (f >= origin) & (f < origin + size) & (m >= 0)
    return bool((m[inside] == f[inside] - origin).all())


def _mode_offset(m: torch.Tensor, fallback: int) -> int:
    """The most common offset between a frame coordinate and the input coordinate read there:
    interior cells give the true offset; padding copies (reflect etc.) give others."""
    f = torch.arange(m.numel())
    read = m >= 0
    if not bool(read.any()):
        return fallback  # every window reads padding only: no evidence, use the declared padding
    diff = f[read] - m[read]
    shift = int(diff.min())
    return int(torch.bincount(diff - shift).argmax()) + shift


def _fit(m: torch.Tensor, length: int) -> list[int]:
    if m.numel() >= length:
        return m[:length].tolist()
    return m.tolist() + [-1] * (length - m.numel())


def pool_geometry(module: nn.Module, input_spatial: tuple[int, ...], output_spatial: tuple[int, ...]) -> Geometry:
    n = len(input_spatial)
    kernel = _tuple(module.kernel_size, n)
    stride = _tuple(module.stride if module.stride not in (None, (), []) else module.kernel_size, n)
    pad = _tuple(getattr(module, "padding", 0), n)
    dilation = _tuple(getattr(module, "dilation", 1), n)
    idx = _index_tensor(input_spatial) - 1  # flat index, -1 after padding
    pads: list[int] = []
    extra = []
    for j in reversed(range(n)):
        span = (output_spatial[j] - 1) * stride[j] + dilation[j] * (kernel[j] - 1) + 1
        e = max(0, span - (input_spatial[j] + 2 * pad[j]))
        extra.insert(0, e)
        pads += [pad[j], pad[j]]
    x = F.pad(idx, pads, value=-1.0)
    # ceil_mode windows may reach past the padded input: mark those cells -2
    x = F.pad(x, [v for j in reversed(range(n)) for v in (0, extra[j])], value=-2.0)
    for j in range(n):
        size = dilation[j] * (kernel[j] - 1) + 1
        x = x.unfold(2 + j, size, stride[j])
        x = x[(..., slice(None, None, dilation[j]))] if dilation[j] > 1 else x
    # x: (1, 1, *windows, *kernel) after moving kernel dims to the end in unfold order
    x = x[0, 0]
    x = x[tuple(slice(0, o) for o in output_spatial)]
    src = x.reshape(*output_spatial, -1).round().long()
    kidx = _kernel_grid(kernel)
    at = _positions(output_spatial, kidx, stride, dilation)
    frame = tuple(input_spatial[j] + 2 * pad[j] + extra[j] for j in range(n))
    raw = _probe_maps(src, at, input_spatial)
    maps = []
    for j in range(n):
        m = _fit(raw[j], frame[j])
        # ceil_mode: the frame reaches past the padded input (the cells the unfold marks -2)
        m[input_spatial[j] + 2 * pad[j] :] = [-2] * extra[j]
        maps.append(m)
    return Geometry(
        "pool", input_spatial, output_spatial, kernel, stride, dilation, frame, pad, (1,) * n, src, at, kidx, maps
    )


def geometry_for(
    module: nn.Module, spec_explain: str | None, in_shape: tuple[int, ...], out_shape: tuple[int, ...], n: int
) -> Geometry | None:
    if spec_explain in ("conv", "transposed"):
        return conv_geometry(module, tuple(in_shape[-n:]))
    if spec_explain == "pool":
        return pool_geometry(module, tuple(in_shape[-n:]), tuple(out_shape[-n:]))
    return None


MAX_CHANNEL_LINKS = 1 << 16


class NotSeparable(ValueError):
    """The probe's windows are not described by per-dimension frame maps (never seen; checked anyway)."""


def channel_map(module: nn.Module, *, limit: int | None = None) -> list[list[int]] | None:
    """Input channels each output channel reads (groups); None for pooling or past ``limit`` links."""
    if not hasattr(module, "groups"):
        return None
    cout, per_in = module.out_channels, module.in_channels // module.groups
    if limit is not None and cout * per_in > limit:
        return None
    return [group_inputs(module, o) for o in range(cout)]


def group_inputs(module: nn.Module, c_out: int) -> list[int]:
    """The input channels output channel ``c_out`` reads: those of its group."""
    per_in, per_out = module.in_channels // module.groups, module.out_channels // module.groups
    g = c_out // per_out
    return list(range(g * per_in, (g + 1) * per_in))


def window_step(geo: Geometry) -> tuple[int, ...]:
    """How far the window's corner moves in the frame per output element: the stride, or 1 for a
    transposed convolution (a direct convolution over the zero-stretched input)."""
    return (1,) * geo.d if geo.kind == "transposed" else geo.stride


def expand_src(maps: list[list[int]], at: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """The flat input index every window cell reads (-1 padding / inserted zero, -2 outside), rebuilt
    from per-dimension frame maps alone; ``at``: ``(..., d)`` frame coordinates.

    ``maps[j][f]``: the input coordinate along dimension ``j`` that frame coordinate ``f`` reads,
    ``-1`` for padding (or a zero inserted between transposed-convolution inputs) and ``-2`` past
    the padded input (ceil_mode pooling). Padding and striding act on each dimension on its own, so
    ``d`` short lists describe every window: the cell at frame coordinate ``(f_0, …)`` reads input
    ``(maps[0][f_0], …)``, padding if any coordinate is ``-1``, outside if any is ``-2``. A frame
    coordinate that no window reads from the input stays ``-1``.
    """
    flat = torch.zeros(at.shape[:-1], dtype=torch.long)
    padding = torch.zeros(at.shape[:-1], dtype=torch.bool)
    outside = torch.zeros(at.shape[:-1], dtype=torch.bool)
    for j in range(at.shape[-1]):
        c = torch.tensor(maps[j], dtype=torch.long)[at[..., j]]
        padding |= c < 0
        outside |= c == -2
        flat = flat * spatial[j] + c
    return torch.where(outside, -2, torch.where(padding, -1, flat))


def geometry_json(geo: Geometry, module: nn.Module) -> dict[str, Any]:
    """The ``windows`` field: the geometry and a compact description of every window.

    Raises ``NotSeparable`` if the per-dimension maps do not rebuild torch's probe exactly.
    """
    maps = geo.maps
    if not torch.equal(expand_src(maps, geo.at, geo.input_spatial), geo.src):
        raise NotSeparable(f"{type(module).__name__}: the windows do not factor per dimension")
    pad_before = list(geo.origin)
    padding = [
        [int(geo.origin[j]), int(geo.frame_shape[j] - geo.origin[j] - (geo.input_spatial[j] - 1) * geo.step[j] - 1)]
        for j in range(geo.d)
    ]
    out: dict[str, Any] = {
        "kind": geo.kind,
        "spatial_dims": geo.d,
        "input_spatial": list(geo.input_spatial),
        "output_spatial": list(geo.output_spatial),
        "kernel": list(geo.kernel),
        "stride": list(geo.stride),
        "dilation": list(geo.dilation),
        "padding": padding,
        "frame": {"shape": list(geo.frame_shape), "input_origin": pad_before, "input_step": list(geo.step)},
        "kernel_index": geo.kernel_index.tolist(),
        # Not one entry per window position: output element o's window slot k (row-major over the
        # kernel) sits at frame coordinate o·window_step + unravel(k)·dilation and reads input
        # (frame_map[0][f_0], …) — see expand_src. The client expands what it draws.
        "window_step": list(window_step(geo)),
        "frame_map": maps,
        "outside": (geo.src == -2).any().item(),
        "pad_value": pad_reads(module, geo.kind),
        "padding_mode": getattr(module, "padding_mode", "zeros") if geo.kind == "conv" else "zeros",
    }
    if hasattr(module, "groups"):
        # the map is for drawing: past a few thousand links it is omitted (groups says it all)
        out.update(
            groups=module.groups,
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            channel_map=channel_map(module, limit=MAX_CHANNEL_LINKS),
        )
    else:
        out.update(groups=None, channel_map=None)
    return out


def window_at(win: dict[str, Any], pos: Any) -> list[list[int]]:
    """Frame coordinates of output element ``pos``'s window, slot by slot, from a ``windows`` field."""
    step, dilation = win["window_step"], win["dilation"]
    corner = [int(pos[j]) * step[j] for j in range(len(step))]
    cells = itertools.product(*[range(k) for k in win["kernel"]])
    return [[corner[j] + k[j] * dilation[j] for j in range(len(k))] for k in cells]


def frame_copies(win: dict[str, Any]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """Padding cells that repeat an input element (reflect/replicate/circular): frame → input coordinate."""
    if win.get("pad_value") != "copy":
        return {}
    origin, step, ins = win["frame"]["input_origin"], win["frame"]["input_step"], win["input_spatial"]
    readable = [[f for f, v in enumerate(m) if v >= 0] for m in win["frame_map"]]
    out = {}
    for coord in itertools.product(*readable):
        inside = all(0 <= coord[j] - origin[j] <= (ins[j] - 1) * step[j] for j in range(len(coord)))
        if not inside:
            out[coord] = tuple(win["frame_map"][j][c] for j, c in enumerate(coord))
    return out


def _window_cells(plan: Any, settings: Any) -> tuple[int, int, int] | None:
    """(window cells, input positions, spatial dims) of a layer whose window map is listed; None if it
    is omitted (too many cells, too large an input, an unknown output shape) or there is none."""
    spec = plan.spec
    if not spec.windows:
        return None
    n = spec.spatial_rank
    in_shape = plan.inputs[0].shape
    out_shape = plan.predicted_shapes[0] if plan.predicted_shapes else (plan.meta_shapes or [None])[0]
    if out_shape is None:
        return None
    cells = math.prod(out_shape[-n:]) * math.prod(_tuple(plan.meta.kernel_size, n))
    inputs = math.prod(in_shape[-n:])
    if cells > settings.max_window_cells or inputs > 4 * settings.max_window_cells:
        return None
    return cells, inputs, n


#: bytes per window cell while the map is built: ``src`` and the checking convolution's im2col (8 each),
#: ``at`` (8·d) and the temporary it is made from, the per-dimension scatter (its copies of ``at`` and
#: ``src``) and the separability check (a rebuilt ``src``, masks): measured about 60 + 24·d, rounded up
WINDOW_BYTES_PER_CELL = 96
WINDOW_BYTES_PER_CELL_DIM = 40
#: bytes per input position: the index tensor, its padded copy, the unfolded view's copy (pooling)
WINDOW_BYTES_PER_INPUT = 48
#: bytes per number /api/run lists for the sliding window (Python floats in nested lists, then JSON)
WINDOW_BYTES_PER_VALUE = 128


def window_bytes(plan: Any, settings: Any) -> int:
    """What listing the ``windows`` field allocates (the probe, its check, and the planes' values a run
    lists): the window map's term in a request's memory estimate. Bounded by the cells it describes."""
    sizes = _window_cells(plan, settings)
    if sizes is None:
        return 0
    cells, inputs, d = sizes
    probe = cells * (WINDOW_BYTES_PER_CELL + WINDOW_BYTES_PER_CELL_DIM * d) + inputs * WINDOW_BYTES_PER_INPUT
    out_positions = cells // max(1, math.prod(_tuple(plan.meta.kernel_size, d)))
    listed = (
        min(inputs * MAX_SHOWN_CHANNELS, MAX_SHOWN_VALUES)
        + out_positions
        + MAX_SHOWN_CHANNELS * (cells // max(1, out_positions))
    )
    return probe + listed * WINDOW_BYTES_PER_VALUE


def window_map(plan: Any, settings: Any) -> dict[str, Any] | None:
    """The ``windows`` field of /api/run and /api/shape."""
    spec = plan.spec
    if not spec.windows:
        return None
    module = plan.meta
    n = spec.spatial_rank
    in_shape = plan.inputs[0].shape
    if plan.predicted_shapes:
        out_shape = tuple(plan.predicted_shapes[0])
    elif plan.meta_shapes:
        out_shape = tuple(plan.meta_shapes[0])
    else:
        return {"omitted": "the output shape is unknown"}
    cells = math.prod(out_shape[-n:]) * math.prod(_tuple(module.kernel_size, n))
    if cells > settings.max_window_cells:
        return {"omitted": f"{cells} window cells is more than this server lists ({settings.max_window_cells})"}
    if math.prod(in_shape[-n:]) > 4 * settings.max_window_cells:
        return {"omitted": "the input is too large to list window positions"}
    # The window map depends only on the layer's geometry and the spatial sizes: an edit of anything
    # else (the seed, the batch, the data, another layer of a network) finds it already probed.
    key = (spec.type, spec.explain, repr(module), tuple(in_shape[-n - 1 :]), tuple(out_shape[-n - 1 :]))
    with _WINDOW_LOCK:
        cached = _WINDOWS.get(key)
        if cached is not None:
            _WINDOWS.move_to_end(key)
    if cached is None:
        try:
            geo = geometry_for(module, spec.explain, in_shape, out_shape, n)
        except TORCH_FAULTS as exc:  # the probe is the layer itself: what it refuses, the run reports
            return {"omitted": f"torch refused the window probe: {torch_message(exc)}"}
        if geo is None:
            return None
        try:
            cached = geometry_json(geo, module)
        except NotSeparable as exc:
            return {"omitted": str(exc)}
        if len(cached["kernel_index"]) <= _WINDOW_CACHE_MAX_KERNEL:
            with _WINDOW_LOCK:
                _WINDOWS[key] = cached
                while len(_WINDOWS) > _WINDOW_CACHE_SIZE:
                    _WINDOWS.popitem(last=False)
    return dict(cached)  # responses add their own keys (values) to a shallow copy


_WINDOW_CACHE_SIZE = 64
#: a cached map lives as long as its worker: one with a large kernel (its kernel_index lists K·d numbers,
#: about 4 MB for K = 40,000) is not kept, so an idle worker holds at most a few MB of maps
_WINDOW_CACHE_MAX_KERNEL = 4096
_WINDOWS: OrderedDict[Any, dict[str, Any]] = OrderedDict()
_WINDOW_LOCK = threading.Lock()


def pad_reads(module: nn.Module, kind: str) -> str:
    """What the operation reads in a padding cell, in one word the page can draw.

    ``"-inf"``: max pooling pads with −∞, so padding never wins. ``"0"``: zero padding (and average
    pooling with ``count_include_pad=True``, which adds 0 but counts the cell in the divisor).
    ``"excluded"``: average pooling with ``count_include_pad=False`` leaves the cell out of the sum
    and the divisor. ``"copy"``: reflect/replicate/circular padding reads a copy of an input element.
    """
    name = type(module).__name__
    if kind == "pool":
        if name.startswith("MaxPool"):
            return "-inf"
        if name.startswith("AvgPool") and not getattr(module, "count_include_pad", True):
            return "excluded"
        return "0"
    if kind == "conv" and getattr(module, "padding_mode", "zeros") != "zeros":
        return "copy"
    return "0"


#: most input channels whose planes one /api/run response lists for the sliding window
MAX_SHOWN_CHANNELS = 16
#: most input values (all shown channels together) listed for the sliding window
MAX_SHOWN_VALUES = 1 << 18


def window_values(
    windows: dict[str, Any] | None, module: nn.Module, xs: list[torch.Tensor], out: torch.Tensor | None, view: Any
) -> dict[str, Any] | None:
    """Real values for the planes the sliding window draws, however large the tensors are.

    ``view`` (the request's ``window_slice``: ``batch``, ``channel``; both default 0) picks the sample
    and the output channel. Returned: the input planes of every input channel that feeds that output
    channel (``input[i]``: ``(*in_spatial)`` of channel ``input_channels[i]``), the output plane
    ``(*out_spatial)``, and for convolutions each channel's kernel slice ``(*kernel)`` as stored in
    ``weight``. Past ``MAX_SHOWN_CHANNELS`` channels or ``MAX_SHOWN_VALUES`` values the list is cut
    and ``input_channels_total`` says how many there are.
    """
    if not windows or windows.get("omitted") or out is None or not xs:
        return windows
    d = int(windows["spatial_dims"])
    x = xs[0].detach()
    batched = x.dim() == d + 2
    n = x.shape[0] if batched else 1
    c_out_total = out.shape[1] if batched else out.shape[0]
    batch = min(max(int(getattr(view, "batch", 0) or 0), 0), n - 1)
    channel = min(max(int(getattr(view, "channel", 0) or 0), 0), c_out_total - 1)
    pre = (batch,) if batched else ()
    feeds = group_inputs(module, channel) if hasattr(module, "groups") else [channel]
    plane = math.prod(x.shape[-d:])
    keep = max(1, min(len(feeds), MAX_SHOWN_CHANNELS, MAX_SHOWN_VALUES // max(plane, 1)))
    shown = feeds[:keep]
    values: dict[str, Any] = {
        "batch": batch,
        "channel": channel,
        "input_channels": shown,
        "input_channels_total": len(feeds),
        "input": [tensors.to_nested(tensors.numpy_of(x[(*pre, c)])) for c in shown],
        "output": tensors.to_nested(tensors.numpy_of(out.detach()[(*pre, channel)])),
        "kernel": None,
    }
    if windows["kind"] in ("conv", "transposed") and isinstance(getattr(module, "weight", None), torch.Tensor):
        w = module.weight.detach()
        per_out = module.out_channels // module.groups
        if windows["kind"] == "transposed":
            slices = [w[c, channel % per_out] for c in shown]
        else:
            slices = [w[channel, c - feeds[0]] for c in shown]
        values["kernel"] = [tensors.to_nested(tensors.numpy_of(s)) for s in slices]
    return {**windows, "values": values}
