"""Structural receptive fields by index propagation: which elements of every node one output element depends on,
from each operation's own rule, without running anything.

A set of elements is kept as a *product set*: one set of indices per dimension (a boolean array each), the
field being every combination. Going backwards from the chosen element, each operation maps the set of its
output elements to the sets of its inputs' elements it depends on, exactly:

- convolutions and poolings: per spatial dimension, ``i = o·stride − padding + k·dilation`` for every kernel
  offset ``k``, inside the input; channels by group (all of a group's input channels for any of its outputs);
- adaptive pooling: each output's window ``[⌊o·n/m⌋, ⌈(o+1)·n/m⌉)``;
- element-wise layers and functions (activations, dropout, batch norm on running statistics): the same set;
- broadcasting arithmetic (add, sub, mul, div): the same set, a broadcast dimension reduced to index 0;
- ``Linear``, ``LayerNorm``, softmax, reductions, batch norm on batch statistics: the dimensions they mix, whole;
- ``cat`` along a dimension: each input its slice; ``flatten``: the flat indices unravelled, when they are
  themselves a product set.

Where a node's elements are reached by two paths (a residual's body and its shortcut), the two sets are joined;
the join of two product sets is a product set when one holds the other or they differ in one dimension. An
operation without a rule here, or a join that is not a product set, returns None: the caller then uses autograd
(:mod:`app.core.graphs.receptive`), which is also the check these rules are tested against.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import TensorMetadata

from app.core.networks.graph import ShapePass

#: one boolean array per dimension; the field is their product
Sets = list[np.ndarray]


class Unsupported(Exception):
    """This operation has no index rule here (the caller falls back to autograd)."""


# ---------------------------------------------------------------------------------------------
# product sets
# ---------------------------------------------------------------------------------------------


def point(shape: list[int], index: tuple[int, ...]) -> Sets:
    out = []
    for n, k in zip(shape, index):
        s = np.zeros(n, dtype=bool)
        s[k] = True
        out.append(s)
    return out


def is_empty(sets: Sets) -> bool:
    # count_nonzero, not ndarray.any: a boolean axis either way, and any's wrappers cost ten times as much
    # (a deep network asks this of every node's set)
    return any(np.count_nonzero(s) == 0 for s in sets)


def _empty(shape: list[int]) -> Sets:
    return [np.zeros(n, dtype=bool) for n in shape]


def join(a: Sets, b: Sets) -> Sets | None:
    """a ∪ b as a product set, or None when it is not one."""
    if is_empty(a):
        return b
    if is_empty(b):
        return a
    if all(np.array_equal(x | y, y) for x, y in zip(a, b)):
        return b
    if all(np.array_equal(x | y, x) for x, y in zip(a, b)):
        return a
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if not np.array_equal(x, y)]
    if len(differ) != 1:
        return None
    out = list(a)
    out[differ[0]] = a[differ[0]] | b[differ[0]]
    return out


def count(sets: Sets) -> int:
    # count_nonzero, not sum: a boolean sum converts to integers first (four times slower on small axes)
    return math.prod(int(np.count_nonzero(s)) for s in sets)


def dense(sets: Sets) -> np.ndarray:
    """The field as a boolean array of the node's shape."""
    out = np.ones((), dtype=bool)
    for s in sets:
        out = np.multiply.outer(out, s)
    return out.astype(bool)


def runs(sets: Sets) -> list[list[list[int]]]:
    """Per dimension, the runs of indices as inclusive [first, last] pairs."""
    out = []
    for s in sets:
        idx = np.flatnonzero(s)
        if idx.size == 0:
            out.append([])
            continue
        breaks = np.flatnonzero(np.diff(idx) != 1)
        starts = np.concatenate([[idx[0]], idx[breaks + 1]])
        ends = np.concatenate([idx[breaks], [idx[-1]]])
        out.append([[int(a), int(b)] for a, b in zip(starts, ends)])
    return out


def of_mask(mask: torch.Tensor) -> Sets | None:
    """A boolean mask as a product set (each dimension's projection), or None when it is not one."""
    m = mask.bool()
    sets = []
    for d in range(m.dim()):
        others = [i for i in range(m.dim()) if i != d]
        sets.append((m.amax(dim=others) if others else m).numpy().astype(bool))
    return sets if count(sets) == int(m.sum()) else None


# ---------------------------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------------------------


def _window(out: np.ndarray, n: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    o = np.flatnonzero(out)
    i = (o[:, None] * s - p + np.arange(k)[None, :] * d).ravel()
    res = np.zeros(n, dtype=bool)
    res[i[(i >= 0) & (i < n)]] = True
    return res


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v) if len(v) == n else tuple(int(v[0]) for _ in range(n))
    return (int(v),) * n


def _windows(out: Sets, in_shape: list[int], k: Any, s: Any, p: Any, d: Any, n: int) -> Sets:
    """The last ``n`` dimensions through a window; the leading ones (batch, channels) unchanged."""
    k, p, d = _tuple(k, n), _tuple(p, n), _tuple(d, n)
    s = k if s is None or s == [] or s == () else _tuple(s, n)
    lead = len(in_shape) - n
    res = [x.copy() for x in out[:lead]]
    for i in range(n):
        res.append(_window(out[lead + i], in_shape[lead + i], k[i], s[i], p[i], d[i]))
    return res


def _transposed(out: np.ndarray, n: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """A transposed convolution: input i feeds outputs i·stride − padding + k·dilation."""
    o = np.flatnonzero(out)
    t = (o[:, None] + p - np.arange(k)[None, :] * d).ravel()
    t = t[t % s == 0] // s
    res = np.zeros(n, dtype=bool)
    res[t[(t >= 0) & (t < n)]] = True
    return res


def _conv(m: nn.Module, out: Sets, in_shape: list[int]) -> Sets:
    if m.padding_mode != "zeros":
        raise Unsupported(type(m).__name__)
    n = len(m.kernel_size)
    if isinstance(m.padding, str):  # 'valid' or 'same' (torch puts the odd extra element on the right)
        pad = [0 if m.padding == "valid" else d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation)]
    else:
        pad = list(m.padding)
    if m.transposed:
        lead = len(in_shape) - n
        res = [x.copy() for x in out[:lead]]
        for i in range(n):
            k, st, d = m.kernel_size[i], m.stride[i], m.dilation[i]
            res.append(_transposed(out[lead + i], in_shape[lead + i], k, st, pad[i], d))
    else:
        res = _windows(out, in_shape, m.kernel_size, m.stride, pad, m.dilation, n)
    c = len(in_shape) - n - 1  # the channel dimension (0 when unbatched)
    per_out, per_in = m.out_channels // m.groups, m.in_channels // m.groups
    channels = np.zeros(in_shape[c], dtype=bool)
    for g in np.unique(np.flatnonzero(out[c]) // per_out):
        channels[g * per_in : (g + 1) * per_in] = True
    res[c] = channels
    return res


def _adaptive(out: Sets, in_shape: list[int], out_shape: list[int], n: int) -> Sets:
    lead = len(in_shape) - n
    res = [x.copy() for x in out[:lead]]
    for i in range(n):
        size, m = in_shape[lead + i], out_shape[lead + i]
        s = np.zeros(size, dtype=bool)
        for o in np.flatnonzero(out[lead + i]):
            s[(o * size) // m : -((-(o + 1) * size) // m)] = True
        res.append(s)
    return res


def _mix(out: Sets, dims: list[int], in_shape: list[int]) -> Sets:
    """The dimensions ``dims`` are mixed whole (a softmax, a normalisation, Linear's features)."""
    rank = len(out)
    if len(in_shape) != rank:
        raise Unsupported("rank")
    mixed = {d % rank for d in dims}
    on = not is_empty(out)
    return [np.full(n, on) if i in mixed else s.copy() for i, (s, n) in enumerate(zip(out, in_shape))]


def _broadcast(out: Sets, out_shape: list[int], in_shape: list[int]) -> Sets:
    lead = len(out_shape) - len(in_shape)
    if lead < 0:
        raise Unsupported("broadcast")
    if any(not out[j].any() for j in range(lead)):
        return _empty(in_shape)
    res = []
    for i, n in enumerate(in_shape):
        o = out[lead + i]
        if n == out_shape[lead + i]:
            res.append(o.copy())
        elif n == 1:
            res.append(np.array([o.any()]))
        else:
            raise Unsupported("broadcast")
    return res


def _flatten(out: Sets, in_shape: list[int], start: int, end: int) -> Sets:
    rank = len(in_shape)
    if rank == 0:
        return [s.copy() for s in out]
    start, end = start % rank, end % rank
    inner = in_shape[start : end + 1]
    flat = np.flatnonzero(out[start])
    res = [s.copy() for s in out[:start]]
    parts = [np.zeros(n, dtype=bool) for n in inner]
    if flat.size:
        for axis, idx in zip(parts, np.unravel_index(flat, inner)):
            axis[idx] = True
        if math.prod(int(p.sum()) for p in parts) != flat.size:
            raise Unsupported("flatten of a set that is not a product")  # e.g. a slice across channels
    res += parts
    res += [s.copy() for s in out[start + 1 :]]
    return res


def _reduce(out: Sets, in_shape: list[int], dims: Any, keepdim: bool) -> Sets:
    rank = len(in_shape)
    if dims is None:
        reduced = set(range(rank))
    else:
        reduced = {d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims])}
    nonempty = not is_empty(out)
    res, k = [], 0
    for i, n in enumerate(in_shape):
        if i in reduced:
            res.append(np.full(n, nonempty))
            if keepdim:
                k += 1
        else:
            res.append(out[k].copy())
            k += 1
    return res


def _project(mask: np.ndarray) -> Sets:
    """A boolean array as a product set; Unsupported when it is not one."""
    sets = []
    for d in range(mask.ndim):
        others = tuple(i for i in range(mask.ndim) if i != d)
        sets.append(mask.any(axis=others) if others else mask.copy())
    if count(sets) != int(mask.sum()):
        raise Unsupported("a set that is not a product")
    return sets


def _reshape(out: Sets, in_shape: list[int]) -> Sets:
    """view / reshape: element k of the output is element k of the input in C order."""
    if is_empty(out):
        return _empty(in_shape)
    return _project(dense(out).reshape(in_shape))


def _getitem(out: Sets, in_shape: list[int], index: Any) -> Sets:
    """Basic indexing (ints, slices, None, ...): each output position reads one input position."""
    items = list(index) if isinstance(index, tuple) else [index]
    if any(not (i is None or i is Ellipsis or isinstance(i, (int, slice))) for i in items):
        raise Unsupported("advanced indexing")
    if items.count(Ellipsis) > 1:
        raise Unsupported("indexing")
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (len(in_shape) - consumed)
    items += [slice(None)] * (len(in_shape) - sum(1 for i in items if i is not None))
    on = not is_empty(out)
    res: Sets = []
    k = 0  # the output dimension
    for item in items:
        if item is None:
            k += 1
            continue
        n = in_shape[len(res)]
        axis = np.zeros(n, dtype=bool)
        if isinstance(item, int):
            axis[item % n] = on
        else:
            picked = np.arange(n)[item]
            axis[picked[out[k]]] = True
            k += 1
        res.append(axis)
    return res


def _matmul(out: Sets, out_shape: list[int], a_shape: list[int], b_shape: list[int]) -> tuple[Sets, Sets]:
    """a @ b: an output element (.., i, j) reads row i of a and column j of b, whole along the inner one."""
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise Unsupported("matmul of a vector")
    lead = out[:-2]
    lead_shape = out_shape[:-2]
    rows, cols = out[-2], out[-1]
    on = not is_empty(out)
    a = _broadcast([*lead, rows, np.ones(1, dtype=bool)], [*lead_shape, len(rows), 1], [*a_shape[:-1], 1])
    b = _broadcast([*lead, np.ones(1, dtype=bool), cols], [*lead_shape, 1, len(cols)], [*b_shape[:-2], 1, b_shape[-1]])
    a[-1] = np.full(a_shape[-1], on)
    b[-2] = np.full(b_shape[-2], on)
    return a, b


def _pad(out: Sets, in_shape: list[int], pad: Any) -> Sets:
    """F.pad with constant padding: output o along a padded dimension is input o − left, where that is inside."""
    pad = [int(p) for p in pad]
    res = [x.copy() for x in out]
    for j in range(len(pad) // 2):
        d = len(in_shape) - 1 - j
        left = pad[2 * j]
        o = np.flatnonzero(out[d]) - left
        axis = np.zeros(in_shape[d], dtype=bool)
        axis[o[(o >= 0) & (o < in_shape[d])]] = True
        res[d] = axis
    return res


def _piece(split: fx.Node, k: int, out: Sets, shape_of: Callable[[Any], list[int]]) -> tuple[fx.Node, Sets]:
    """Piece ``k`` of ``chunk``/``split`` (a tuple): the source's elements at that piece's offset."""
    source = _arg(split, 0, "input")
    if not isinstance(source, fx.Node):
        raise Unsupported("split")
    in_shape = shape_of(source)
    dim = int(_arg(split, 2, "dim", 0)) % len(in_shape)
    n = in_shape[dim]
    if _name(split.target) == "chunk":
        size = -(-n // int(_arg(split, 1, "chunks")))
        sizes = [min(size, n - i) for i in range(0, n, size)]
    else:
        given = _arg(split, 1, "split_size_or_sections", _arg(split, 1, "split_size"))
        sizes = (
            [int(v) for v in given]
            if isinstance(given, (list, tuple))
            else [min(int(given), n - i) for i in range(0, n, int(given))]
        )
    k = k % len(sizes)
    start = sum(sizes[:k])
    if len(out[dim]) != sizes[k]:
        raise Unsupported("split")
    res = [x.copy() for x in out]
    axis = np.zeros(n, dtype=bool)
    axis[start : start + sizes[k]] = out[dim]
    res[dim] = axis
    return source, res


def _arg(node: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


_ELEMENTWISE = {
    # element-wise: each output element depends on the same element of the input (dropout's mask and the
    # flat pieces of relu cut a dependency for some inputs only, so structurally they keep it)
    "relu", "relu_", "relu6", "gelu", "sigmoid", "tanh", "silu", "elu", "selu", "celu", "leaky_relu", "hardtanh",
    "hardtanh_", "hardswish", "hardsigmoid", "mish", "softplus", "softsign", "logsigmoid", "tanhshrink",
    "hardshrink", "softshrink", "threshold", "rrelu", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout", "contiguous", "clone", "neg", "clamp", "clip",
}  # fmt: skip
_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.imul}
_ARITHMETIC_NAMES = {"add", "sub", "mul", "div", "true_divide", "__add__", "__sub__", "__mul__", "__truediv__"}


def _name(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", "")


#: a layer's rule, with the layer's settings bound: (output set, input shape, output shape) -> input set
Rule = Callable[[Sets, list[int], list[int]], Sets]


def _module_rule(m: nn.Module, out: Sets, in_shape: list[int], out_shape: list[int]) -> Sets:
    return _rule_of(m)(out, in_shape, out_shape)


def _mixing(dims: list[int]) -> Rule:
    return lambda out, in_shape, out_shape: _mix(out, dims, in_shape)


def _unsupported(name: str) -> Rule:
    def rule(out: Sets, in_shape: list[int], out_shape: list[int]) -> Sets:
        raise Unsupported(name)

    return rule


def _rule_of(m: nn.Module) -> Rule:
    """``m``'s rule, chosen by its kind and settings (the type checks each call made, about 5 µs a layer
    of a deep network, made once per layer of a kept trace: :func:`prepare`). The rule reads the settings
    a config fixes (kernel sizes, strides, dims); only batch norm's depends on the module's state
    (training, running statistics), read as it is called."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return lambda out, in_shape, out_shape: _conv(m, out, in_shape)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        if m.return_indices:
            return _unsupported("return_indices")
        n = int(type(m).__name__[-2])
        return lambda out, in_shape, out_shape: _windows(
            out, in_shape, m.kernel_size, m.stride, m.padding, m.dilation, n
        )
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        n = int(type(m).__name__[-2])
        return lambda out, in_shape, out_shape: _windows(out, in_shape, m.kernel_size, m.stride, m.padding, 1, n)
    if isinstance(m, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        if getattr(m, "return_indices", False):
            return _unsupported("return_indices")
        n = int(type(m).__name__[-2])
        return lambda out, in_shape, out_shape: _adaptive(out, in_shape, out_shape, n)
    if isinstance(m, nn.Linear):
        return _mixing([-1])
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return lambda out, in_shape, out_shape: _batch_norm(m, out)
    if isinstance(m, nn.LayerNorm):
        return _mixing(list(range(-len(m.normalized_shape), 0)))
    if isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Softmin)) and m.dim is not None:
        return _mixing([m.dim])
    if isinstance(m, nn.Flatten):
        return lambda out, in_shape, out_shape: _flatten(out, in_shape, m.start_dim, m.end_dim)
    mixing = (nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d, nn.MultiheadAttention, nn.GLU, nn.PReLU)
    elementwise = type(m).__module__ in (nn.modules.activation.__name__, nn.modules.dropout.__name__)
    if (elementwise and not isinstance(m, mixing)) or isinstance(m, nn.Identity):
        name = type(m).__name__

        def same(out: Sets, in_shape: list[int], out_shape: list[int]) -> Sets:
            if in_shape != out_shape:
                raise Unsupported(name)
            return [s.copy() for s in out]

        return same
    return _unsupported(type(m).__name__)


def _batch_norm(m: nn.modules.batchnorm._BatchNorm, out: Sets) -> Sets:
    batch_stats = m.training or (m.running_mean is None and m.running_var is None)
    if not batch_stats:
        return [s.copy() for s in out]
    # batch statistics: each output depends on every element of its channel (dimension 1)
    return [s.copy() if i == 1 else np.full(len(s), not is_empty(out)) for i, s in enumerate(out)]


def _function_rule(
    node: fx.Node, out: Sets, out_shape: list[int], shape_of: Callable[[Any], list[int]]
) -> list[tuple[fx.Node, Sets]]:
    target, name = node.target, _name(node.target)
    first = _arg(node, 0, "input")
    if target in _ARITHMETIC or name in _ARITHMETIC_NAMES:
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        return [(a, _broadcast(out, out_shape, shape_of(a))) for a in tensors]
    if not isinstance(first, (fx.Node, list, tuple)):
        raise Unsupported(name)
    if name == "stack":
        dim = _arg(node, 1, "dim", 0) % len(out_shape)
        res = []
        for k, p in enumerate(first):
            sets = [x.copy() for i, x in enumerate(out) if i != dim]
            if not out[dim][k]:
                sets = _empty([len(x) for x in sets])
            res.append((p, sets))
        return res
    if name in ("cat", "concat", "concatenate"):
        parts = first
        dim = _arg(node, 1, "dim", 0) % len(out_shape)
        res, at = [], 0
        for p in parts:
            shape = shape_of(p)
            sets = [s.copy() for s in out]
            sets[dim] = out[dim][at : at + shape[dim]].copy()
            at += shape[dim]
            res.append((p, sets))
        return res
    if not isinstance(first, fx.Node):
        raise Unsupported(name)
    if target is operator.getitem and isinstance(node.args[1], int) and _name(first.target) in ("chunk", "split"):
        return [_piece(first, node.args[1], out, shape_of)]  # one piece of a tuple: its slice of the source
    in_shape = shape_of(first)
    rank = len(in_shape)
    if name in ("permute", "transpose", "swapaxes", "unsqueeze", "squeeze"):
        if name == "permute":
            given = _arg(node, 1, "dims")
            dims = given if isinstance(given, (list, tuple)) else node.args[1:]
            order = [int(d) % rank for d in dims]
        elif name in ("transpose", "swapaxes"):
            a, b = int(_arg(node, 1, "dim0")) % rank, int(_arg(node, 2, "dim1")) % rank
            order = list(range(rank))
            order[a], order[b] = order[b], order[a]
        elif name == "unsqueeze":
            at = int(_arg(node, 1, "dim")) % (rank + 1)
            return [(first, [x.copy() for i, x in enumerate(out) if i != at])]
        else:  # squeeze: the size-1 dimensions it dropped come back as index 0
            dim = _arg(node, 1, "dim")
            if dim is None:
                dropped = {i for i, n in enumerate(in_shape) if n == 1}
            else:
                dropped = {int(d) % rank for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
                dropped = {i for i in dropped if in_shape[i] == 1}
            it = iter(out)
            on = not is_empty(out)
            return [(first, [np.array([on]) if i in dropped else next(it).copy() for i in range(rank)])]
        res: Sets = [np.zeros(0, dtype=bool)] * rank
        for i, d in enumerate(order):
            res[d] = out[i].copy()
        return [(first, res)]
    if name in ("view", "reshape"):
        return [(first, _reshape(out, in_shape))]
    if target is operator.getitem:
        return [(first, _getitem(out, in_shape, node.args[1]))]
    if name in ("matmul", "mm", "bmm", "__matmul__"):
        other = _arg(node, 1, "other", _arg(node, 1, "mat2"))
        if not isinstance(other, fx.Node):
            raise Unsupported(name)
        a, b = _matmul(out, out_shape, in_shape, shape_of(other))
        return [(first, a), (other, b)]
    if name in ("t",) and rank == 2:
        return [(first, [out[1].copy(), out[0].copy()])]
    if name == "linear":  # F.linear(x, weight, bias): the features mixed whole
        return [(first, _mix(out, [-1], in_shape))]
    if name == "pad":
        mode = _arg(node, 2, "mode", "constant")
        if mode != "constant":
            raise Unsupported(f"pad mode {mode}")
        return [(first, _pad(out, in_shape, _arg(node, 1, "pad")))]
    if name in _ELEMENTWISE:
        if in_shape != out_shape:
            raise Unsupported(name)
        return [(first, [s.copy() for s in out])]
    if name == "flatten":
        return [(first, _flatten(out, in_shape, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)))]
    if name in ("softmax", "log_softmax", "softmin"):
        dim = _arg(node, 1, "dim")
        if dim is None:
            raise Unsupported(name)
        return [(first, _mix(out, [dim], in_shape))]
    if name in ("mean", "sum", "amax", "amin"):
        return [(first, _reduce(out, in_shape, _arg(node, 1, "dim"), bool(_arg(node, 2, "keepdim", False))))]
    for n in (1, 2, 3):
        if name in (f"max_pool{n}d", f"_max_pool{n}d"):
            if _arg(node, 6, "return_indices", False):
                raise Unsupported("return_indices")
            k, s = _arg(node, 1, "kernel_size"), _arg(node, 2, "stride")
            p, d = _arg(node, 3, "padding", 0), _arg(node, 4, "dilation", 1)
            return [(first, _windows(out, in_shape, k, s, p, d, n))]
        if name == f"avg_pool{n}d":
            k, s, p = _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"), _arg(node, 3, "padding", 0)
            return [(first, _windows(out, in_shape, k, s, p, 1, n))]
        if name in (f"adaptive_avg_pool{n}d", f"adaptive_max_pool{n}d", f"_adaptive_max_pool{n}d"):
            if _arg(node, 2, "return_indices", False):
                raise Unsupported("return_indices")
            return [(first, _adaptive(out, in_shape, out_shape, n))]
    raise Unsupported(name)


#: a kept trace's layer rules by module path (:func:`prepare`); None: the layer is read at each walk
Rules = dict[str, Rule | None]


def prepare(graph: fx.Graph, owner: nn.Module, modules: dict[str, nn.Module] | None = None) -> Rules:
    """The rule of every layer ``graph`` calls, chosen once for a trace kept per config (a 512-block
    network's walk spent half its time finding each layer by its path and its rule by its type: about
    7 µs of its 8 a layer). ``owner``: a module built from that config (the plan's meta module): the rules
    read only the settings the config fixes. Batch norm's rule reads the module's state (training mode,
    running statistics), and a layer without a rule is traced inside: those are read from the module
    each walk is given (None here). ``modules``: ``owner``'s submodules by path, where the caller has them
    (a look-up by path each cost more than choosing the rules)."""
    rules: Rules = {}
    for node in graph.nodes:
        if node.op != "call_module" or node.target in rules:
            continue
        try:
            m = modules.get(node.target) if modules is not None else None
            if m is None:
                m = owner.get_submodule(node.target)
            rules[node.target] = None if isinstance(m, nn.modules.batchnorm._BatchNorm) else _rule_of(m)
        except Exception:  # noqa: BLE001 - a layer whose settings do not read as torch's (a plugin's subclass):
            # read at each walk, which answers as it always did
            rules[node.target] = None
    return rules


def propagate(
    gm: fx.GraphModule | fx.Graph,
    shapes: dict[str, list[int] | None],
    target: str,
    index: tuple[int, ...],
    start: list[int] | None = None,
    root: nn.Module | None = None,
    rules: Rules | None = None,
) -> dict[str, Sets] | None:
    """Each node's elements that element ``index`` of node ``target`` depends on (``"output"``: the graph's
    output), for the target and every node that feeds it; None where an operation has no rule here.

    ``shapes``: each node's output shape by fx node name (None for a tuple); ``start``: the target's shape,
    where ``shapes`` has none (a network of several outputs: its first one's). ``gm`` may be a bare graph
    (a trace kept from a module built from the same config): ``root`` is then the module whose layers its
    calls name by path (their rules read the layers' own settings, such as training mode). ``rules``:
    :func:`prepare` of that graph, where it is kept: its layers' rules are not chosen again."""
    start = start if start is not None else shapes.get(target)
    if start is None:
        return None
    graph = gm.graph if isinstance(gm, fx.GraphModule) else gm
    owner = root if root is not None else gm
    if not isinstance(owner, nn.Module):
        raise TypeError("propagate over a bare fx.Graph needs the root module its calls name")
    try:
        return _walk(graph, owner, shapes, {target: point(list(start), index)}, rules)
    except Unsupported:
        return None


def _walk(
    graph: fx.Graph,
    root: nn.Module,
    shapes: dict[str, list[int] | None],
    demand: dict[str, Sets],
    rules: Rules | None = None,
) -> dict[str, Sets]:
    """Back from the nodes ``demand`` starts with, every node's set by its operation's rule; Unsupported
    where an operation has no rule or a join is not a product set. ``root``: where a call's module is
    found by its path (where ``rules``, :func:`prepare`'s, has no rule for it)."""

    def shape_of(n: Any) -> list[int]:
        s = shapes.get(n.name) if isinstance(n, fx.Node) else None
        if s is None:
            raise Unsupported("a value that is not one tensor")
        return list(s)

    for node in reversed(list(graph.nodes)):
        name = "output" if node.op == "output" else node.name
        out = demand.get(name)
        if out is None or node.op in ("placeholder", "get_attr"):
            continue
        if node.op == "output":
            value = node.args[0]
            first = value if isinstance(value, fx.Node) else next(iter(value), None)
            if not isinstance(first, fx.Node):
                raise Unsupported("output")
            pairs = [(first, [s.copy() for s in out])]
        elif node.op == "call_module":
            x = _arg(node, 0, "input")
            if not isinstance(x, fx.Node) or len(node.all_input_nodes) != 1:
                raise Unsupported(str(node.target))
            rule = rules.get(node.target) if rules is not None else None
            m = root.get_submodule(node.target) if rule is None else None
            try:
                sets = (
                    rule(out, shape_of(x), shape_of(node))
                    if rule is not None
                    else _module_rule(m, out, shape_of(x), shape_of(node))
                )
            except Unsupported:
                # no rule of its own: the rules of what its forward calls, in the module given
                sets = _inside(m if m is not None else root.get_submodule(node.target), out, shape_of(x))
            pairs = [(x, sets)]
        elif node.op in ("call_function", "call_method"):
            pairs = _function_rule(node, out, shape_of(node), shape_of)
        else:
            raise Unsupported(node.op)
        for src, sets in pairs:
            if [len(x) for x in sets] != shape_of(src):
                raise Unsupported("a rule that does not fit its input")  # no answer rather than a wrong one
            merged = sets if src.name not in demand else join(demand[src.name], sets)
            if merged is None:
                raise Unsupported("a join that is not a product set")
            demand[src.name] = merged
    return demand


def _inside(m: nn.Module, out: Sets, in_shape: list[int]) -> Sets:
    """A layer without a rule of its own (the tutorial's ``BasicLinear``, a custom module): the rules of what
    its forward calls, traced with fx and given shapes on the meta device (a copy: the layer keeps its
    parameters)."""
    try:
        gm = fx.symbolic_trace(m)
    except Exception:  # noqa: BLE001 - fx cannot trace every forward: no rule
        raise Unsupported(type(m).__name__) from None
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise Unsupported(type(m).__name__)
    param = next(m.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    meta = gm if param is None or param.is_meta else copy.deepcopy(gm).to("meta")
    try:
        ShapePass(meta).propagate(  # torch's ShapeProp without its sympy import
            torch.empty(in_shape, dtype=dtype, device="meta")
        )
    except Exception:  # noqa: BLE001 - no meta kernel, or data-dependent shapes: no rule
        raise Unsupported(type(m).__name__) from None
    shapes = {
        n.name: list(n.meta["tensor_meta"].shape)
        for n in meta.graph.nodes
        if isinstance(n.meta.get("tensor_meta"), TensorMetadata)
    }
    demand = _walk(meta.graph, meta, shapes, {"output": out})
    return demand.get(placeholders[0].name) or _empty(in_shape)


def propagate_layer(
    module: nn.Module, in_shape: list[int], out_shape: list[int], index: tuple[int, ...]
) -> dict[str, Sets] | None:
    """A single layer (the dataflow view's ``input`` → ``layer`` → ``output``): the same rules, or None."""
    out = point(out_shape, index)
    try:
        try:
            sets = _module_rule(module, out, in_shape, out_shape)
        except Unsupported:
            sets = _inside(module, out, in_shape)
    except Unsupported:
        return None
    if [len(x) for x in sets] != list(in_shape):
        return None
    return {"input": sets, "layer": out, "output": out}
