"""Receptive fields through a whole network: which elements of every node one output element depends on.

*Structural* receptive field: every element that can change the chosen output for *some* input and
weights. It is computed with autograd through a dependency-equivalent copy of the network, not with
per-layer formulas: the copy has weights |w| + 1 (no weight is zero), runs in float64 on random inputs,
and, through a ``TorchFunctionMode``, computes piecewise-flat functions as the identity (ReLU, hardtanh,
dropout: they never cut a dependency for every input), max pooling as a sum over the same windows
(max pooling depends on its whole window) and adaptive max pooling as adaptive average pooling. An
element is in the field when the gradient of the output element with respect to it is non-zero in any
of two draws.

*Effective* receptive field: |∂y/∂x| on the real weights and the real input of the request, per node.

The size formula for a chain of convolutions and poolings, r_l = r_{l-1} + (k_l − 1)·d_l·∏_{i<l} s_i,
is reported next to it where the path from the input to the chosen node is such a chain.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from app.core import tensors
from app.core.catalog.spec import Registry
from app.core.config import Settings
from app.core.errors import InvalidRequest, NotExplainable
from app.core.graphs import intervals, wire
from app.core.networks import graph as dataflow
from app.core.networks.trace import named_modules
from app.core.running.execute import execute, materialise, planned
from app.core.running.memory import reserve_more
from app.core.running.plan import plan_request
from app.core.schema import ReceptiveFieldRequest, RunRequest, parse
from app.core.torch_errors import TORCH_FAULTS, torch_message

#: the heat map of a node's grid (its last two dimensions) is sent up to this many cells (a 256 × 256
#: picture, as large as the page draws one); structural grids are run lengths, whatever their size
GRID_LIMIT = 65_536
#: the heat map of a whole tensor is sent up to this many elements
HEAT_LIMIT = 4096
DRAWS = 2


# ---------------------------------------------------------------------------------------------
# the dependency-equivalent computation
# ---------------------------------------------------------------------------------------------


def _first(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["input"]


def _identity(args: tuple, kwargs: dict) -> torch.Tensor:
    return _first(args, kwargs)


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v) if len(v) == n else tuple(int(v[0]) for _ in range(n))
    return (int(v),) * n


def _sum_pool(n: int) -> Callable[[tuple, dict], torch.Tensor]:
    """max_poolNd as a sum over the same windows: a depthwise convolution with a kernel of ones."""
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]

    def run(args: tuple, kwargs: dict) -> torch.Tensor:
        x = _first(args, kwargs)
        if _arg(args, kwargs, 6, "return_indices", False):
            raise NotExplainable("max pooling with return_indices has no receptive field here", field="layer")
        k = _tuple(_arg(args, kwargs, 1, "kernel_size", None), n)
        stride = _arg(args, kwargs, 2, "stride", None)
        s = k if stride is None or stride == [] or stride == () else _tuple(stride, n)
        p = _tuple(_arg(args, kwargs, 3, "padding", 0), n)
        d = _tuple(_arg(args, kwargs, 4, "dilation", 1), n)
        ceil = bool(_arg(args, kwargs, 5, "ceil_mode", False))
        batched = x.dim() == n + 2
        if not batched:
            x = x.unsqueeze(0)
        pads: list[int] = []
        for i in reversed(range(n)):
            size = x.shape[2 + i]
            span = d[i] * (k[i] - 1) + 1
            numer = size + 2 * p[i] - span
            out = (-(-numer // s[i]) if ceil else numer // s[i]) + 1
            if ceil and (out - 1) * s[i] >= size + p[i]:
                out -= 1  # torch's rule: the last window must start inside the input or left padding
            need = (out - 1) * s[i] + span
            pads += [p[i], max(0, need - size - p[i])]
        # padding with -inf never wins a max: as zeros, it adds nothing to the sum
        x = F.pad(x, pads)
        channels = x.shape[1]
        weight = torch.ones((channels, 1, *k), dtype=x.dtype, device=x.device)
        y = conv(x, weight, stride=s, dilation=d, groups=channels)
        return y if batched else y.squeeze(0)

    return run


def _adaptive(n: int) -> Callable[[tuple, dict], torch.Tensor]:
    avg = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[n]

    def run(args: tuple, kwargs: dict) -> torch.Tensor:
        if _arg(args, kwargs, 2, "return_indices", False):
            raise NotExplainable("adaptive max pooling with return_indices has no receptive field here", field="layer")
        return avg(_first(args, kwargs), _arg(args, kwargs, 1, "output_size", None))

    return run


def _refuse(name: str) -> Callable[[tuple, dict], torch.Tensor]:
    def run(args: tuple, kwargs: dict) -> torch.Tensor:
        raise NotExplainable(f"{name} picks its windows at random: its receptive field is not defined", field="layer")

    return run


_FLAT = [
    # piecewise flat (zero slope somewhere) or random: they would cut dependencies for some inputs only
    F.relu,
    F.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
    F.relu6,
    F.hardtanh,
    F.hardtanh_,
    F.threshold,
    F.threshold_,
    F.hardshrink,
    F.softshrink,
    F.hardsigmoid,
    F.hardswish,
    F.rrelu,
    F.dropout,
    F.dropout1d,
    F.dropout2d,
    F.dropout3d,
    F.alpha_dropout,
    F.feature_alpha_dropout,
    torch.clamp,
    torch.Tensor.clamp,
    torch.clip,
    F.leaky_relu,
    # element-wise and strictly monotone, but saturating: in floating point their slope underflows to 0
    torch.tanh,
    torch.Tensor.tanh,
    F.tanh,
    torch.sigmoid,
    torch.Tensor.sigmoid,
    F.sigmoid,
    F.logsigmoid,
    F.elu,
    F.selu,
    F.celu,
    F.gelu,
    F.silu,
    F.mish,
    F.softplus,
    F.softsign,
    F.tanhshrink,
]
_REPLACE: dict[Any, Callable[[tuple, dict], torch.Tensor]] = dict.fromkeys(_FLAT, _identity)
_REPLACE.update(
    {
        F.max_pool1d: _sum_pool(1),
        F.max_pool2d: _sum_pool(2),
        F.max_pool3d: _sum_pool(3),
        F.adaptive_max_pool1d: _adaptive(1),
        F.adaptive_max_pool2d: _adaptive(2),
        F.adaptive_max_pool3d: _adaptive(3),
        F.fractional_max_pool2d: _refuse("fractional max pooling"),
        F.fractional_max_pool3d: _refuse("fractional max pooling"),
    }
)


def _amax_as_sum(args: tuple, kwargs: dict) -> torch.Tensor:
    """amax/amin depend on every element they reduce (whichever wins for some input): as a sum."""
    dim = _arg(args, kwargs, 1, "dim", ())
    keepdim = bool(_arg(args, kwargs, 2, "keepdim", False))
    x = _first(args, kwargs)
    return x.sum(dim=dim if dim not in ((), []) else None, keepdim=keepdim)


for _fn in (torch.amax, torch.amin, torch.Tensor.amax, torch.Tensor.amin):
    _REPLACE[_fn] = _amax_as_sum
for _name in ("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices"):
    if hasattr(F, _name):
        _REPLACE[getattr(F, _name)] = _refuse("max pooling with indices")


class _DependencyMode(TorchFunctionMode):
    """Functions with flat pieces or random masks become what they depend on, so no dependency is cut."""

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        replacement = _REPLACE.get(func)
        if replacement is not None:
            return replacement(args, kwargs)
        return func(*args, **kwargs)


def _structural_copy(module: nn.Module) -> nn.Module:
    """No weight zero (|w| + 1), scaled by the fan-in so that values stay moderate through deep stacks."""
    twin = copy.deepcopy(module).to(dtype=torch.float64)
    with torch.no_grad():
        for p in twin.parameters():
            fan_in = p[0].numel() if p.dim() >= 2 else 1
            p.copy_((p.abs() + 1) / fan_in)
    return twin


# ---------------------------------------------------------------------------------------------
# gradients per node
# ---------------------------------------------------------------------------------------------


def _target(graph: dict[str, Any], req: ReceptiveFieldRequest) -> str:
    """The chosen node's id: ``node`` by id, ``path`` by module path, else the network's output."""
    ids = [n["id"] for n in graph["nodes"] if n["op"] not in ("input", "attribute")]
    if req.node is not None:
        if req.node not in ids:
            raise InvalidRequest(f"the graph has no node {req.node!r}; its nodes are: {', '.join(ids)}", field="node")
        return req.node
    if req.path:
        for n in graph["nodes"]:
            if n["op"] == "module" and n["path"] == req.path:
                return n["id"]
        paths = ", ".join(n["path"] for n in graph["nodes"] if n["op"] == "module")
        raise InvalidRequest(
            f"no module call at path {req.path!r} in the graph; its module calls are: {paths}", field="path"
        )
    return "output"


def _target_shape(graph: dict[str, Any], target: str) -> list[int] | None:
    node = next(n for n in graph["nodes"] if n["id"] == target)
    if node["shape"] is None and node["shapes"]:
        return node["shapes"][0]  # a tuple: the field of its first tensor, as the run's values keep it
    return node["shape"]


def _index(shape: tuple[int, ...], index: list[int]) -> tuple[int, ...]:
    if len(index) != len(shape):
        raise InvalidRequest(
            f"index must have {len(shape)} entries for a tensor of shape {list(shape)}; got {index}", field="index"
        )
    out = []
    for i, (k, n) in enumerate(zip(index, shape)):
        if not -n <= k < n:
            raise InvalidRequest(f"index[{i}] = {k} is outside dimension {i} of size {n}", field="index")
        out.append(k % n)
    return tuple(out)


def _grads(values: dict[str, torch.Tensor], target: str, index: tuple[int, ...]) -> dict[str, torch.Tensor]:
    y = values[target][index]
    names = [k for k, v in values.items() if v.requires_grad and v.is_floating_point()]
    grads = torch.autograd.grad(y, [values[k] for k in names], allow_unused=True, retain_graph=False)
    return {k: g for k, g in zip(names, grads) if g is not None}


def _inputs_for_grad(
    xs: list[torch.Tensor], kinds: list[str], dtype: torch.dtype | None, generator: torch.Generator | None
) -> list[torch.Tensor]:
    """Leaf copies of the inputs that autograd can follow: the real ones, or (with ``generator``) fresh
    draws of the same kind (uniform, sign, binary, normal), so that a redrawn input keeps its layer's
    rules: a probability stays in [0, 1), a variance stays positive, a ±1 target stays ±1."""
    out = []
    for x, kind in zip(xs, kinds):
        if not x.is_floating_point():
            raise NotExplainable(
                "receptive fields need floating-point inputs (this layer takes indices)", field="inputs"
            )
        if generator is not None:
            x = _draw(kind, tuple(x.shape), generator).to(x.device)
        else:
            x = x.detach().clone()
        if dtype is not None:
            x = x.to(dtype)
        out.append(x.requires_grad_(True))
    return out


def _draw(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """An input drawn like :func:`app.core.tensors.draw` draws it, from ``generator``, in float64."""
    if kind == "uniform":
        return torch.rand(shape, generator=generator, dtype=torch.float64)
    if kind in ("sign", "binary"):
        bits = torch.randint(0, 2, shape, generator=generator).to(torch.float64)
        return bits * 2 - 1 if kind == "sign" else bits
    return torch.randn(shape, generator=generator, dtype=torch.float64)


# autograd refuses some arguments outright (a soft-margin loss's target): torch's message names them
_NOT_DIFFERENTIABLE = re.compile(r"not differentiable with respect to argument '(\w+)'")


@dataclass(frozen=True)
class Traced:
    """A network's fx trace, kept per config (:func:`_trace`): the graph, where it changes no tensor
    in place its generated recorder (:func:`dataflow.recorder`), and its layers' index rules
    (:func:`intervals.prepare`); all serve any module of that config."""

    graph: fx.Graph
    run: Callable[[nn.Module, list[torch.Tensor]], dict[str, torch.Tensor]] | None
    rules: intervals.Rules | None = None
    #: the normalisation layers it calls, by path (:func:`_norm_paths`)
    norm_paths: tuple[str, ...] | None = None
    #: a ``Graph`` config's operations by node name (:func:`dataflow.leaf_trace`), for the graph view
    ops: dict[str, str] | None = None


def _record(
    module: nn.Module,
    xs: list[torch.Tensor],
    names: list[str],
    frozen: set[int],
    mode: Callable[[], Any] = contextlib.nullcontext,
    traced: Traced | None = None,
) -> tuple[str, dict[str, torch.Tensor]]:
    """:func:`dataflow.record` with autograd on every input but those torch will not differentiate,
    which are added to ``frozen`` as torch names them (they take no part in the field). ``traced``: the
    network's kept trace, whose recorder, where it has one, runs instead of the interpreter."""
    while True:
        for i, x in enumerate(xs):
            x.requires_grad_(i not in frozen)
        try:
            if traced is not None and traced.run is not None:
                with mode():
                    return "fx", traced.run(module, xs)
            return dataflow.record(module, xs, mode, traced.graph if traced is not None else None)
        except RuntimeError as exc:
            found = _NOT_DIFFERENTIABLE.search(str(exc))
            culprit = names.index(found.group(1)) if found and found.group(1) in names else None
            if culprit is None or culprit in frozen:
                raise
            frozen.add(culprit)


def _fold(t: torch.Tensor) -> torch.Tensor:
    """The grid a picture shows: the last two dimensions, the leading ones folded with max (for a 0/1 mask:
    any); a vector is one row, a scalar one cell."""
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(1, -1)
    if t.dim() == 2:
        return t
    return t.reshape(-1, *t.shape[-2:]).amax(0)


def _grid_shape(shape: list[int]) -> tuple[int, int]:
    """[rows, cols] of :func:`_fold`'s grid."""
    if not shape:
        return (1, 1)
    return (1, shape[0]) if len(shape) == 1 else (shape[-2], shape[-1])


class _Encoder:
    """A response's masks and heat maps in the wire format, each distinct one encoded once.

    A deep network's nodes repeat the same sets and pictures: in a 512-block Linear net, every one of
    its 1026 nodes depends on the same row of the same [8, 64] shape, and past the first blocks their
    gradients are the same zeros; encoding each again cost more than the forward pass. Results are
    keyed by the bytes they are made from, so an answer is exactly what encoding each one gives."""

    #: pictures up to this many pixels are remembered (a larger one is rarely repeated, and its key costs)
    SMALL = 4096

    def __init__(self) -> None:
        self._fields: dict[tuple[bytes, ...], tuple[list[int], int, list[list[list[int]]], dict[str, Any] | None]] = {}
        self._runs: dict[bytes, list[list[int]]] = {}
        self._grids: dict[tuple[bytes, ...], list[int]] = {}
        self._pngs: dict[tuple[tuple[int, ...], bytes], str] = {}
        self._unreached: dict[tuple[int, ...], dict[str, Any]] = {}

    def runs(self, sets: intervals.Sets) -> list[list[list[int]]]:
        out = []
        for s in sets:
            key = s.tobytes()  # a boolean axis: one byte per index, so equal bytes are an equal set
            if key not in self._runs:
                self._runs[key] = intervals.runs([s])[0]
            out.append([list(r) for r in self._runs[key]])
        return out

    def structural(self, sets: intervals.Sets) -> dict[str, Any]:
        """A product set's fields (shape, numel, count, runs, bbox, grid), worked out once per distinct set:
        a deep network's nodes repeat a few (counting and encoding each measured about 30 µs a node). Each
        call gives lists of its own (a client may change one entry's)."""
        key = tuple(s.tobytes() for s in sets)
        kept = self._fields.get(key)
        if kept is None:
            shape = [len(x) for x in sets]
            total = intervals.count(sets)
            kept = (shape, total, self.runs(sets), self.grid(sets, shape) if total else None)
            self._fields[key] = kept
        shape, total, runs, grid = kept
        fields: dict[str, Any] = {
            "shape": list(shape),
            "numel": math.prod(shape),
            "count": total,
            "runs": [[list(r) for r in axis] for axis in runs],
        }
        if total:
            fields["bbox"] = [[r[0][0], r[-1][1]] for r in runs]
            fields["grid"] = {"shape": list(grid["shape"]), "rle": list(grid["rle"])}
        return fields

    def grid(self, sets: intervals.Sets, shape: list[int]) -> dict[str, Any]:
        """The structural grid of a non-empty product set: its last two dimensions' product (the leading
        ones are non-empty, so folding them with "any" leaves it whole), as run lengths."""
        tail = sets[-2:]
        key = tuple(s.tobytes() for s in tail)
        if key not in self._grids:
            self._grids[key] = wire.rle(intervals.dense(tail))
        return {"shape": list(_grid_shape(shape)), "rle": list(self._grids[key])}

    def unreached(self, shape: tuple[int, ...], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The effective entry of a gradient that is zero everywhere, by its shape (``make`` works it out
        the first time), with lists of its own."""
        kept = self._unreached.get(shape)
        if kept is None:
            kept = self._unreached[shape] = make()
        grid = kept["grid"]
        return {**kept, "grid": None if grid is None else {"shape": list(grid["shape"]), "png": grid["png"]}}

    def png(self, levels: np.ndarray) -> str:
        if levels.size > self.SMALL:
            return wire.png(levels)
        key = (levels.shape, levels.tobytes())
        if key not in self._pngs:
            self._pngs[key] = wire.png(levels)
        return self._pngs[key]


def _entry(
    node: dict[str, Any],
    sets: intervals.Sets | None,
    grad: torch.Tensor | None,
    mask: torch.Tensor | None = None,
    encoder: _Encoder | None = None,
) -> dict[str, Any]:
    """One node's field, from its product set (index propagation) or, where there is none, autograd's mask,
    in the compact wire format of :mod:`app.core.graphs.wire`.

    ``runs``: per dimension, the runs of indices [first, last] whose product is the field (null where the
    field is not such a product; then ``rle``, the run lengths of the whole mask); ``grid``: the last two
    dimensions, the leading ones folded with "any", as run lengths (what a picture shows); ``effective``:
    |∂y/∂x| as PNG heat maps (the folded grid, and the whole tensor when it is small and has more than two
    dimensions: up to two, the grid is the whole), from ``grad``, ∂y/∂x at the node. ``encoder``: the
    response's (see :class:`_Encoder`)."""
    encoder = encoder if encoder is not None else _Encoder()
    entry: dict[str, Any] = {
        "id": node["id"],
        "op": node["op"],
        "label": node["label"],
        "path": node["path"],
        "type": node.get("type"),
        "shape": None,
        "numel": None,
        "count": 0,
        "bbox": None,
        "runs": None,
        "rle": None,
        "grid": None,
        "effective": None,
    }
    if sets is None and mask is not None:
        sets = intervals.of_mask(mask)
        shape = list(mask.shape)
        total = int(mask.sum())
        entry["shape"] = shape
        entry["numel"] = math.prod(shape)
        entry["count"] = total
        if sets is not None:
            entry["runs"] = encoder.runs(sets)
            if total:
                entry["bbox"] = [[r[0][0], r[-1][1]] for r in entry["runs"]]
                entry["grid"] = encoder.grid(sets, shape)
        elif total:
            where = mask.nonzero()
            entry["bbox"] = [[int(lo), int(hi)] for lo, hi in zip(where.min(0).values, where.max(0).values)]
            entry["rle"] = wire.rle(mask.cpu().numpy())
            entry["grid"] = {"shape": list(_grid_shape(shape)), "rle": wire.rle(_fold(mask).cpu().numpy())}
    elif sets is not None:
        entry.update(encoder.structural(sets))
    else:
        return entry
    if grad is not None:
        # autograd.grad's results need no detach (it made no graph of them): a new tensor each, 0.3 µs a
        # node; ``is_cpu`` makes no device object (``device.type`` does)
        g = grad.detach() if grad.requires_grad else grad
        # a small CPU gradient through NumPy; a large or device one where torch has the faster reductions
        small = g.is_cpu and g.dtype in _NUMPY_FLOATS and g.numel() <= GRID_LIMIT and not g.is_neg()
        entry["effective"] = _effective_small(g.numpy(), encoder) if small else _effective(g, encoder)
    return entry


def _effective(g: torch.Tensor, encoder: _Encoder) -> dict[str, Any]:
    """The effective entry from ∂y/∂x at a node: the maximum and count of |∂y/∂x| > 0, and its PNG heat
    maps (see :func:`_entry`)."""
    folded = _fold_abs(g)
    # the fold is a max over the leading dimensions, so its maximum is the tensor's: no pass of its own
    top = float(folded.max()) if g.numel() else 0.0
    # the elements with |∂y/∂x| > 0: the non-zero ones, but for NaN (non-zero, and not > 0), which a
    # NaN maximum shows (max propagates NaN). Not count_nonzero: on a gradient that ReLUs made sparse
    # it measured 2–4× slower than comparing and summing
    count = int((g.abs() > 0).sum()) if math.isnan(top) else int((g != 0).sum())
    eff: dict[str, Any] = {"max": top, "count": count, "png": None, "grid": None}
    if 0 < g.numel() <= HEAT_LIMIT and g.dim() > 2:  # up to two dimensions the grid is the whole
        eff["png"] = encoder.png(wire.quantise(g.abs().float().cpu().numpy(), top))
    if 0 < folded.numel() <= GRID_LIMIT:
        levels = wire.quantise(folded.float().cpu().numpy(), top)
        eff["grid"] = {"shape": [int(n) for n in levels.shape], "png": encoder.png(levels)}
    return eff


#: gradients NumPy reads without a copy (bfloat16 it has not)
_NUMPY_FLOATS = (torch.float32, torch.float64, torch.float16)


def _effective_small(g: np.ndarray, encoder: _Encoder) -> dict[str, Any]:
    """The effective entry of a small CPU gradient, read through NumPy: the same numbers as the torch
    path (max and abs are exact, both propagate NaN; the pictures quantise the same float32 values), at
    a few µs where each torch call costs its dispatch (a deep network's 1026 nodes of [8, 64]: about
    60 µs a node in torch, 10 in NumPy)."""
    nonzero = int(np.count_nonzero(g))
    if nonzero == 0 and g.size:
        # ∂y/∂x is ±0 everywhere (a node the element does not reach for this input, past a dead ReLU):
        # its entry depends on the shape alone, worked out once per answer (a 512-block Linear net's
        # forward dies out, and 1024 of its 1026 nodes have such gradients)
        return encoder.unreached(g.shape, lambda: _effective_small_of(g, 0, encoder))
    return _effective_small_of(g, nonzero, encoder)


def _effective_small_of(g: np.ndarray, nonzero: int, encoder: _Encoder) -> dict[str, Any]:
    """:func:`_effective_small` where ``nonzero`` is ``np.count_nonzero(g)``."""
    heat = np.abs(g)
    top = float(heat.max()) if g.size else 0.0
    # as in torch: a NaN counts as non-zero but not as > 0, which a NaN maximum shows
    count = int(np.count_nonzero(heat > 0)) if math.isnan(top) else nonzero
    eff: dict[str, Any] = {"max": top, "count": count, "png": None, "grid": None}
    if g.size == 0:
        return eff
    # pictures from float32 values, as ``.float()`` gives them in the torch path
    if g.size <= HEAT_LIMIT and g.ndim > 2:
        eff["png"] = encoder.png(wire.quantise(heat.astype(np.float32, copy=False), top))
    if g.ndim <= 2:
        folded = heat.reshape(1, -1) if g.ndim < 2 else heat
    else:
        folded = heat.reshape(-1, *heat.shape[-2:]).max(0)
    levels = wire.quantise(folded.astype(np.float32, copy=False), top)
    eff["grid"] = {"shape": [int(n) for n in levels.shape], "png": encoder.png(levels)}
    return eff


def _fold_abs(g: torch.Tensor) -> torch.Tensor:
    """:func:`_fold` of |g| without making |g|: over the leading dimensions, max |x| = max(max x, −min x)
    (abs and negation are exact, NaN propagates; the final abs makes a zero +0). Two reductions, not
    ``aminmax``, which measured ten times slower over a leading dimension (torch 2.13, CPU)."""
    if g.dim() <= 2:
        return _fold(g.abs())
    stack = g.reshape(-1, *g.shape[-2:])
    return torch.maximum(stack.amax(0), stack.amin(0).neg()).abs()


# ---------------------------------------------------------------------------------------------
# the formula for chains of convolutions and poolings
# ---------------------------------------------------------------------------------------------

# element-wise layers leave the window arithmetic alone; these activations mix along a dimension instead
_MIXING = (nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d, nn.MultiheadAttention, nn.GLU)


def _elementwise(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        # batch statistics (training, or no running statistics) couple every element of a channel
        return not module.training and module.track_running_stats
    if isinstance(module, _MIXING):
        return False
    return type(module).__module__ in (nn.modules.activation.__name__, nn.modules.dropout.__name__) or isinstance(
        module, nn.Identity
    )


def _window(module: nn.Module) -> tuple[list[int], list[int], list[int]] | None:
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        return list(module.kernel_size), list(module.stride), list(module.dilation)
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        n = {"1d": 1, "2d": 2, "3d": 3}[type(module).__name__[-2:]]
        k = _tuple(module.kernel_size, n)
        s = _tuple(module.stride if module.stride not in (None, ()) else module.kernel_size, n)
        d = _tuple(getattr(module, "dilation", 1), n)
        return list(k), list(s), list(d)
    return None


def _sources(graph: dict[str, Any]) -> dict[str, list[str]]:
    """Each node's sources by id, in the order of the graph's edges."""
    into: dict[str, list[str]] = {}
    for e in graph["edges"]:
        into.setdefault(e["to"], []).append(e["from"])
    return into


def chain_formula(
    graph: dict[str, Any], module: nn.Module, target: str, into: dict[str, list[str]] | None = None
) -> dict[str, Any] | None:
    """r_l = r_{l-1} + (k_l − 1)·d_l·∏_{i<l} s_i along a chain input → target of convolutions, poolings and
    element-wise layers; None where the path is not such a chain. ``into``: :func:`_sources` of the graph.

    Each layer is looked at as the walk back from the target meets it, so that the first that is neither
    a window nor element-wise ends it (a 512-block Linear net's walk ended at its last Linear, not after
    all 1026 nodes): the answer is the same, as any such layer on the path makes it None."""
    into = into if into is not None else _sources(graph)
    nodes = {n["id"]: n for n in graph["nodes"]}
    path: list[tuple[dict[str, Any], nn.Module, tuple[list[int], list[int], list[int]]]] = []
    current = target
    while nodes[current]["op"] != "input":
        sources = sorted(set(into.get(current, [])))
        if len(sources) != 1:
            return None
        if current != "output":
            node = nodes[current]
            if node["op"] != "module":
                return None
            sub = module.get_submodule(node["path"]) if node["path"] else module
            win = _window(sub)
            if win is not None:
                path.append((node, sub, win))
            elif not _elementwise(sub):
                return None
        current = sources[0]
    path.reverse()
    steps: list[dict[str, Any]] = []
    r: list[int] | None = None
    jump: list[int] | None = None
    for node, sub, (k, s, d) in path:
        if r is None or jump is None:
            r, jump = [1] * len(k), [1] * len(k)
        if len(k) != len(r):
            return None
        new = [ri + (ki - 1) * di * ji for ri, ki, di, ji in zip(r, k, d, jump)]
        text = ", ".join(f"{ri} + ({ki} − 1)·{di}·{ji} = {ni}" for ri, ki, di, ji, ni in zip(r, k, d, jump, new))
        # typeset once where every dimension takes the same step (a square kernel), else one per dimension
        per_dim = [
            f"{ri} + ({ki} - 1) \\cdot {di} \\cdot {ji} = {ni}" for ri, ki, di, ji, ni in zip(r, k, d, jump, new)
        ]
        latex = per_dim[0] if len(set(per_dim)) == 1 else ",\\; ".join(per_dim)
        r = new
        steps.append(
            {
                "path": node["path"],
                "type": type(sub).__name__,
                "kernel": k,
                "stride": s,
                "dilation": d,
                "jump": list(jump),
                "r": list(r),
                "text": text,
                "latex": latex,
            }
        )
        jump = [ji * si for ji, si in zip(jump, s)]
    if not steps:
        return None
    return {
        "symbolic": "r_l = r_{l−1} + (k_l − 1)·d_l·∏_{i<l} s_i, r_0 = 1",
        # the same for KaTeX: r_l is the field after layer l, k its kernel, d its dilation, s the strides before it
        "latex": "r_l = r_{l-1} + (k_l - 1) \\cdot d_l \\cdot \\prod_{i<l} s_i, \\quad r_0 = 1",
        "size": r,
        "jump": jump,
        "steps": steps,
    }


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


#: bytes per element of every node of the graph: autograd keeps each intermediate tensor of the real
#: run and of the float64 twin's (two draws, the second freed as the first is overwritten), a gradient of
#: each, the masks and heat maps, and the response's summaries of them
RECEPTIVE_BYTES_PER_ELEMENT = 64
#: per parameter: the twin's float64 copy (|w| + 1) and the gradients of both networks
RECEPTIVE_BYTES_PER_PARAMETER = 32


def _check_memory(
    graph: dict[str, Any], module: nn.Module, planned: int, settings: Settings, param_numels: list[int] | None = None
) -> None:
    """Autograd keeps every intermediate tensor, in float64 for the twin, and a gradient of each: refuse
    what would not fit before anything is kept, and reserve it in the server's budget. ``param_numels``:
    the plan's count of the module's parameters, where it has one (walking a 512-block network's
    parameters took 2 ms)."""
    elements = sum(math.prod(s) for n in graph["nodes"] for s in (n.get("shapes") or []) if s)
    params = sum(param_numels) if param_numels is not None else sum(p.numel() for p in module.parameters())
    # and what each layer's forward keeps for its backward (a recurrent layer's gates at every step: the
    # plan's working memory), for the real run and the float64 twin's
    needed = RECEPTIVE_BYTES_PER_ELEMENT * elements + RECEPTIVE_BYTES_PER_PARAMETER * params + 4 * planned
    reserve_more("tracing a receptive field (every intermediate tensor and its gradient)", needed, planned, settings)


_SAMPLE_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)


_NORMS = (nn.modules.batchnorm._BatchNorm, *_SAMPLE_NORMS)


def _norm_paths(graph: fx.Graph, owner: nn.Module, modules: dict[str, nn.Module] | None = None) -> tuple[str, ...]:
    """The paths of the normalisation layers ``graph`` calls, read from ``owner``, a module built from
    the same config (a layer's kind is the config's): kept with the trace, so that :func:`_notes` finds
    them without a walk of every module (1538 at 512 blocks: 2 ms). ``modules``: ``owner``'s submodules
    by path, where the caller has them."""
    found = modules if modules is not None else {}
    paths = dict.fromkeys(n.target for n in graph.nodes if n.op == "call_module")
    # not ``get(p) or ...``: a container with no children is falsy (it has a length)
    layers = [found.get(p) for p in paths]
    return tuple(p for p, m in zip(paths, layers) if isinstance(m if m is not None else owner.get_submodule(p), _NORMS))


def _notes(
    graph: dict[str, Any], module: nn.Module, feeds: set[str], norm_paths: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Why a field may cover more than the windows suggest, in words and in a code a client can act on:
    normalisation statistics couple every position they are taken over. ``norm_paths``: the kept trace's
    (:func:`_norm_paths`), whose layers' state (training mode, running statistics) is read from ``module``."""
    batch: list[str] = []
    eval_fixes = True
    sample: list[str] = []
    named: dict[str, str] = {}
    if norm_paths is not None:
        norms = {path: module.get_submodule(path) for path in norm_paths}
    else:
        # the normalisation layers by every path they are called by, found in one walk (a deep network's
        # other layers need no name, and no look-up by path each)
        norms = {path: m for path, m in module.named_modules(remove_duplicate=False) if isinstance(m, _NORMS)}
    for n in graph["nodes"]:
        if n["op"] != "module" or n["id"] not in feeds or n["path"] not in norms:
            continue
        sub = norms[n["path"]]
        named[n["path"] or type(sub).__name__] = (
            f"{type(sub).__name__} {n['path']}" if n["path"] else type(sub).__name__
        )
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and (sub.training or not sub.track_running_stats):
            batch.append(n["path"] or type(sub).__name__)
            eval_fixes = eval_fixes and sub.track_running_stats
        elif isinstance(sub, _SAMPLE_NORMS) and not (
            isinstance(sub, nn.modules.instancenorm._InstanceNorm) and sub.track_running_stats and not sub.training
        ):
            sample.append(n["path"] or type(sub).__name__)
    notes: list[dict[str, Any]] = []
    if batch:
        fix = (
            " In eval mode (train: false) they use their running statistics instead, and the field is the windows' own."
            if eval_fixes
            else " They keep no running statistics (track_running_stats=False), so eval mode does not change this."
        )
        notes.append(
            {
                "code": "batch_statistics",
                "paths": batch,
                "eval_fixes": eval_fixes,
                "message": f"{', '.join(named[p] for p in batch)}: batch normalisation in training mode divides by the mean and "
                "variance of the whole batch, so every output depends on every position of every sample: the "
                f"structural field covers the whole input.{fix}",
            }
        )
    if sample:
        notes.append(
            {
                "code": "sample_statistics",
                "paths": sample,
                "eval_fixes": False,
                "message": f"{', '.join(named[p] for p in sample)}: this normalisation divides by statistics taken over many "
                "positions of a sample, so an output depends on all of them, in training and eval mode alike.",
            }
        )
    return notes


def _ancestors(graph: dict[str, Any], target: str, into: dict[str, list[str]] | None = None) -> set[str]:
    """The target and every node that feeds it; ``into``: :func:`_sources` of the graph."""
    into = into if into is not None else _sources(graph)
    seen = {target}
    stack = [target]
    while stack:
        for src in into.get(stack.pop(), []):
            if src not in seen:
                seen.add(src)
                stack.append(src)
    return seen


def structural_autograd(
    module: nn.Module,
    inputs: list[torch.Tensor],
    target: str,
    index: tuple[int, ...],
    seed: int,
    kinds: list[str] | None = None,
    names: list[str] | None = None,
    frozen: set[int] | None = None,
    traced: Traced | None = None,
) -> dict[str, torch.Tensor]:
    """The structural field by autograd through a dependency-equivalent twin, two random draws: each node's
    0/1 mask by id. The fallback where index propagation has no rule, and its check in the tests.

    ``kinds``: how each input is drawn (a probability stays a probability); ``names``/``frozen``: the inputs
    autograd refuses (see :func:`_record`); ``traced``: the network's trace (:func:`_trace`), which the
    twin, a copy, shares (else each draw traces it)."""
    kinds = kinds or ["normal"] * len(inputs)
    names = names or [f"input_{i}" for i in range(len(inputs))]
    frozen = frozen if frozen is not None else set()
    twin = _structural_copy(module)
    twin.train(module.training)
    generator = torch.Generator().manual_seed(seed)
    masks: dict[str, torch.Tensor] = {}
    for _ in range(DRAWS):
        zs = _inputs_for_grad(inputs, kinds, torch.float64, generator)
        with torch.enable_grad():
            _, tv = _record(twin, zs, names, frozen, _DependencyMode, traced)
            for k, g in _grads(tv, target, index).items():
                hit = g != 0
                masks[k] = masks[k] | hit if k in masks else hit
    return masks


def structural_intervals(
    module: nn.Module,
    graph: dict[str, Any],
    n_inputs: int,
    target: str,
    index: tuple[int, ...],
    gm: fx.GraphModule | fx.Graph | None = None,
    rules: intervals.Rules | None = None,
) -> dict[str, intervals.Sets] | None:
    """The structural field by index propagation (:mod:`app.core.graphs.intervals`) over the same traced
    graph (same node ids) as the dataflow view; None where an operation has no rule there.

    ``gm``: ``module`` already traced (:func:`dataflow.traced`), or the trace of a module built from the
    same config (:func:`_trace`), to trace once for this and the run; layers are read from ``module``,
    but for those ``rules`` (the kept trace's, :func:`intervals.prepare`) has a rule of."""
    shapes = {n["id"]: n["shape"] for n in graph["nodes"]}
    if graph["method"] == "module" and n_inputs == 1 and shapes.get("input") and shapes.get("layer"):
        return intervals.propagate_layer(module, shapes["input"], shapes["layer"], index)
    if graph["method"] != "fx":
        return None
    start = _target_shape(graph, target)  # a network of several outputs: its first one's
    traced = gm if gm is not None else dataflow.traced(module, n_inputs)
    return intervals.propagate(traced, shapes, target, index, start, root=module, rules=rules)


#: fx traces of the networks asked about lately, by config (see :func:`_trace`)
_TRACES: OrderedDict[str, Traced] = OrderedDict()
_TRACES_SIZE = 16
_TRACES_LOCK = threading.Lock()  # a server without a pool answers from a thread pool


def _config_key(plan: Any, req: RunRequest) -> str:
    """The request's network as a cache key: its config itself (which, unlike the module's ``repr``, shows
    how a ``Graph`` config wires its nodes), the input shapes, the dtype and the mode, which a traced
    forward may branch on (``if self.training``), where spelling the ``repr`` needs the whole meta module
    built (about 40 ms at 512 blocks).

    Written by orjson (0.13 ms at 512 blocks, the standard library's encoder 1 ms), which tells 1 from
    1.0 from true as the other does, but writes NaN and infinities as null: a config with a null, or
    what orjson cannot write (an integer past 64 bits, in-process a key that is not a string), is spelled
    by the standard library's encoder instead. The two spellings start apart ("o", "j"), so they never
    meet."""
    value = [req.layer, [list(p.shape) for p in plan.inputs], str(plan.dtype), plan.train]
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if b"null" not in text:
            return "o" + text.decode()
    except TypeError:  # orjson's JSONEncodeError is a TypeError
        pass
    return "j" + json.dumps(value, sort_keys=True, default=repr)


def _trace(plan: Any, key: str) -> Traced:
    """The fx graph of the request's network, traced from the plan's meta module once per config, with
    its recorder (generated once too).

    Tracing costs more than the forward itself for deep networks (a 512-block Linear net: about 60 ms,
    where its forward takes 5), and a page asks for one network's fields element after element. The
    graph depends only on the modules' structure, which the config fixes (the dataflow view's node ids
    come from the same tracing); it names each call's module by its path, so one graph serves any module
    built from that config: the real one, its float64 twin, the meta one. ``key``: :func:`_config_key`."""
    with _TRACES_LOCK:
        kept = _TRACES.get(key)
        if kept is not None:
            _TRACES.move_to_end(key)
            return kept
    links = dataflow.planned_chain(plan)
    if links is not None:
        # a chain of Sequentials (the graph view's ids come from the same chain): fx's graph made from its
        # links and recorded by a loop over its layers, read from the skeleton, so no meta module is built,
        # nothing traced and no code generated (about 150 ms of a 512-block network's first field)
        owner: nn.Module = plan.skeleton
        graph, ops = dataflow.chain_graph(links), {}
        modules = {path: sub for path, _, sub in links}
        run = dataflow.chain_recorder(owner, graph, modules)
    else:
        # the meta module: the kept graph's owner then holds no weights; in the request's mode, as the
        # dataflow view traced it
        owner = plan.meta
        owner.train(plan.train)
        graph, ops = dataflow.leaf_trace(owner, len(plan.inputs))
        # its layers by path, found in one walk for the three that read them (a look-up by path each was
        # three passes of about 5 ms at 512 blocks); the paths fx names calls by are the first a module stands at
        modules = dict(named_modules(owner))
        try:
            run = dataflow.recorder(owner, graph, modules)
        except Exception:  # noqa: BLE001 - fx could not generate code for this graph: the interpreter runs it
            run = None
    kept = Traced(graph, run, intervals.prepare(graph, owner, modules), _norm_paths(graph, owner, modules), ops)
    with _TRACES_LOCK:
        _TRACES[key] = kept
        while len(_TRACES) > _TRACES_SIZE:
            _TRACES.popitem(last=False)
    return kept


def _shapes_known(graph: dict[str, Any]) -> bool:
    """Whether the plan's graph has every tensor's shape (a recurrent layer's are known only from a run)."""
    return all(
        n["shape"] is not None or n.get("shapes") for n in graph["nodes"] if n["op"] not in ("output", "attribute")
    )


def receptive_field(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    """The structural field by index propagation (autograd through the twin where an operation has no
    rule), and the effective field from one forward and one backward pass on the real weights and input."""
    req = parse(ReceptiveFieldRequest, body)
    # the run's own fields, as they were validated (a dump and re-validation copied a deep network's
    # config: 6 ms at 512 blocks); ``path`` here picks the target, not a layer to report
    run_req = RunRequest.model_validate({k: getattr(req, k) for k in RunRequest.model_fields if k != "path"})
    # the graph and its shapes come from the plan (nothing runs for them); the memory limit applies to
    # the run, when there is one. A field that runs plans as /api/run does (the memory limit enforced, no
    # inner meta trace: the real forward records it), so it takes /api/run's kept plan for the same
    # network, seed aside (app.core.running.execute.planned): planning a 512-block network afresh was a
    # quarter of its field (about 22 ms), asked element after element of one network
    if req.effective:
        plan = planned(registry, run_req, settings)
    else:
        plan = plan_request(registry, run_req, settings, enforce_limit=False, inner_trace=True)
    # keyed by the config, the cached graph needs no meta module built (only a miss builds one)
    key = _config_key(plan, run_req)

    def trace() -> tuple[fx.Graph, dict[str, str]]:
        # on a miss of the kept graph, one tracing serves it and the recorded run (kept per config)
        kept = _trace(plan, key)
        return kept.graph, kept.ops or {}

    graph = dataflow.graph_fields(plan, None, registry, text=key, trace=trace)["graph"]
    ex = None
    if req.effective and not _shapes_known(graph):
        # a recurrent layer's shapes come from a real run (its meta kernels are slow); only there two passes
        ex = execute(registry, run_req, settings, hooks=None)
        graph = dataflow.graph_fields(plan, ex, registry)["graph"]
    if not graph["nodes"]:
        raise NotExplainable("this network's graph could not be captured", field="layer")
    target = _target(graph, req)
    target_shape = _target_shape(graph, target)
    if target_shape is None:
        raise NotExplainable(f"node {target} has no known shape before the network runs", field="node")
    index = _index(tuple(target_shape), req.index)
    kinds = [p.kind for p in plan.inputs]
    names = [i.name for i in plan.spec.inputs]
    frozen: set[int] = set()
    # the meta module only where nothing runs: a deep network's is built on first use (about 40 ms at
    # 512 blocks), which a run's own module makes needless
    module: nn.Module
    xs: list[torch.Tensor]
    if ex is not None:
        module, xs = ex.module, ex.inputs
    elif req.effective:
        module, xs = materialise(plan)
    else:
        module, xs = plan.meta, []
        # a built module is already in the plan's mode (materialise sets it where it differs: a walk of
        # 1538 modules cost 4 ms at 512 blocks); the meta module is set here
        module.train(plan.train)
    # one trace serves the index rules and the recorded run (the graph's ids are the same tracing's)
    traced = _trace(plan, key) if graph["method"] == "fx" else None
    sets = structural_intervals(
        module,
        graph,
        len(plan.inputs),
        target,
        index,
        traced.graph if traced else None,
        traced.rules if traced else None,
    )
    masks: dict[str, torch.Tensor] = {}
    effective: dict[str, torch.Tensor] = {}
    values: dict[str, torch.Tensor] | None = None
    method = graph["method"]
    try:
        if sets is None and not xs:
            # no rule on the way: autograd through the twin needs real modules and inputs (in the plan's mode)
            module, xs = materialise(plan)
        if req.effective or sets is None:
            _check_memory(graph, module, plan.estimate_bytes, settings, plan.param_numels)
        if sets is None:
            masks = structural_autograd(module, xs, target, index, req.seed, kinds, names, frozen, traced)
        if req.effective:
            # effective: one forward (recording every node's tensor) and one backward, on the real weights
            # and input
            leaves = _inputs_for_grad(xs, kinds, None, None)
            with torch.enable_grad():
                method, values = _record(module, leaves, names, frozen, traced=traced)
                # ∂y/∂x itself: each node's entry reads |∂y/∂x| from it without a copy of its own
                effective = _grads(values, target, index)
    except TORCH_FAULTS as exc:
        # the forward runs in /api/run; what failed here is autograd through it, which some layers do not allow
        raise NotExplainable(
            f"the receptive field of {plan.spec.type} cannot be traced with autograd: {torch_message(exc)}",
            field="layer",
        ) from None

    # only the target and what feeds it: an identity stand-in (ReLU, dropout) or an in-place op can make a
    # later node share the target's tensor
    into = _sources(graph)
    feeds = _ancestors(graph, target, into)
    nodes = []
    encoder = _Encoder()
    for n in graph["nodes"]:
        if n["id"] not in feeds:
            nodes.append(_entry(n, None, None))
        elif sets is not None:
            nodes.append(_entry(n, sets.get(n["id"]), effective.get(n["id"]), encoder=encoder))
        else:
            nodes.append(_entry(n, None, effective.get(n["id"]), masks.get(n["id"]), encoder))
    inputs = [n for n in nodes if n["op"] == "input"]
    formula = chain_formula(graph, module, target, into)
    value = None
    if values is not None and target in values:
        value = tensors.to_nested(tensors.numpy_of(values[target][index].detach()))
    return {
        "index": list(index),
        "target": {
            "id": target,
            "path": next((n["path"] for n in graph["nodes"] if n["id"] == target), None),
            "shape": list(target_shape),
            # the element's own value (real weights and input), as the forward pass computed it; with
            # effective=false nothing runs (the structural field needs no numbers), so there is none
            "value": value,
        },
        "method": method,
        "structural": "intervals" if sets is not None else "autograd",
        "graph": graph,
        "nodes": nodes,
        "input": inputs[0] if inputs else None,
        "formula": formula,
        "notes": _notes(graph, module, feeds, traced.norm_paths if traced is not None else None),
        "train": module.training,
        "draws": DRAWS,
        "grid_limit": GRID_LIMIT,
        "heat_limit": HEAT_LIMIT,
        "dtype": tensors.dtype_name(plan.dtype),
    }
