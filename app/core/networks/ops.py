"""The fixed table of tensor operations a ``Graph`` node may call, each with a typed signature, a shape
rule and the torch callable that runs it.

A request names an operation by its key in :data:`OPS`; nothing else is ever called. Arguments are
bound to the signature by position, then by name: a parameter typed ``tensor``/``tensors``/``value``
takes node references (strings), the others take literals (numbers, ``"bilinear"``) where integers
may also be references to ``size`` nodes.

The shape rules work on :class:`Shape` values (a tensor's shape), plain ints (what ``size`` gives),
tuples of values (an LSTM's ``(output, (h_n, c_n))``, ``chunk``) and literals, in torch's semantics;
a rule that rejects its inputs raises :class:`OpError` in the user's words, and the graph names the
node. The functional forms of pooling, padding and interpolation answer from torch's own meta kernel
for the one call (no module is built; microseconds), so their numbers are torch's.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from app.core.shapes.context import fmt_shape


class OpError(Exception):
    """An operation cannot take these inputs; the message says why, in torch's terms."""


@dataclass(frozen=True)
class Shape:
    """A tensor's shape during shape propagation."""

    dims: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.dims)

    def __str__(self) -> str:
        return fmt_shape(self.dims)


#: JSON types of op parameters. tensor: one node reference to a tensor; tensors: a list of them;
#: value: a reference to any node (a tensor or a tuple); number: a literal or a reference, or a tensor
#: reference (the other operand of add); int/ints/float/str/bool: literals (ints may reference size nodes);
#: index: a getitem index ({"slice": [start, stop, step]}, null, "...", a list for a tuple index)
PARAM_TYPES = ("tensor", "tensors", "value", "operand", "int", "ints", "float", "str", "bool", "index")


@dataclass(frozen=True)
class OpParam:
    name: str
    type: str
    default: Any = None
    required: bool = False
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    #: a list may hold nulls (an adaptive pool's output_size: null keeps that dimension)
    nullable_items: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if not self.required:
            out["default"] = self.default
        if self.nullable:
            out["nullable"] = True
        if self.choices:
            out["choices"] = list(self.choices)
        return out


Rule = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class OpSpec:
    """One operation: its signature, its shape rule over bound arguments, and torch's callable."""

    name: str
    params: tuple[OpParam, ...]
    rule: Rule
    fn: Callable[..., Any]
    doc: str = ""
    #: the callable takes ``training`` (dropout): the graph passes the module's own flag
    training: bool = False
    #: how the reproduction script and the graph call it: "function" (fn(*args, **kwargs)) or "method"
    call: str = "function"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": [p.to_dict() for p in self.params], "doc": self.doc}


# ---------------------------------------------------------------------------------------------
# helpers of the rules
# ---------------------------------------------------------------------------------------------


def _t(value: Any, what: str) -> Shape:
    if not isinstance(value, Shape):
        raise OpError(f"{what} must be a tensor; got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    if isinstance(value, Shape):
        return f"a tensor of shape {value}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return repr(value)


def _axis(dim: Any, rank: int, name: str = "dim", *, extra: int = 0) -> int:
    """``dim`` normalised for a tensor of ``rank`` dimensions (``extra``: unsqueeze/stack allow one more)."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise OpError(f"{name} must be an integer; got {_describe(dim)}")
    n = max(rank + extra, 1)
    if not -n <= dim < n:
        raise OpError(f"{name}={dim} is out of range for {rank} dimension(s) (allowed: {-n} to {n - 1})")
    return dim % n


def _dims(value: Any, rank: int, name: str = "dim") -> list[int]:
    dims = list(value) if isinstance(value, (list, tuple)) else [value]
    out = [_axis(d, rank, name) for d in dims]
    if len(set(out)) != len(out):
        raise OpError(f"{name} lists a dimension twice: {list(value)}")
    return out


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for k, (x, y) in enumerate(zip(pa, pb)):
        if x != y and x != 1 and y != 1:
            raise OpError(
                f"shapes {fmt_shape(a)} and {fmt_shape(b)} do not broadcast: dimension {k - rank} is {x} in one and "
                f"{y} in the other (sizes must be equal, or one of them 1)"
            )
        out.append(y if x == 1 else x)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------


def _binary(int_op: Callable[[Any, Any], Any]) -> Rule:
    """Element-wise arithmetic: broadcasting for tensors; plain arithmetic for sizes and numbers."""

    def rule(a: dict[str, Any]) -> Any:
        x, y = a["input"], a["other"]
        if isinstance(x, Shape) or isinstance(y, Shape):
            if isinstance(x, tuple) or isinstance(y, tuple):
                raise OpError(f"cannot combine {_describe(x)} with {_describe(y)}")
            if isinstance(x, Shape) and isinstance(y, Shape):
                return Shape(broadcast_shapes(x.dims, y.dims))
            return x if isinstance(x, Shape) else y
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            try:
                return int_op(x, y)
            except ZeroDivisionError:
                raise OpError("division by zero") from None
        raise OpError(f"cannot combine {_describe(x)} with {_describe(y)}")

    return rule


def _neg(a: dict[str, Any]) -> Any:
    x = a["input"]
    if isinstance(x, Shape):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return -x
    raise OpError(f"cannot negate {_describe(x)}")


def _matmul(a: dict[str, Any]) -> Shape:
    x, y = _t(a["input"], "input").dims, _t(a["other"], "other").dims
    if not x or not y:
        raise OpError("both arguments to matmul need at least 1 dimension")
    if len(x) == 1 and len(y) == 1:
        if x[0] != y[0]:
            raise OpError(f"vectors of sizes {x[0]} and {y[0]} have no dot product")
        return Shape(())
    xm = (1, *x) if len(x) == 1 else x
    ym = (*y, 1) if len(y) == 1 else y
    if xm[-1] != ym[-2]:
        raise OpError(
            f"cannot multiply {fmt_shape(x)} by {fmt_shape(y)}: the first's last dimension ({xm[-1]}) must equal the "
            f"second's {'only' if len(y) == 1 else 'second-to-last'} dimension ({ym[-2]})"
        )
    batch = broadcast_shapes(xm[:-2], ym[:-2])
    out = [*batch, xm[-2], ym[-1]]
    if len(x) == 1:
        out.pop(-2)
    if len(y) == 1:
        out.pop(-1)
    return Shape(tuple(out))


def _bmm(a: dict[str, Any]) -> Shape:
    x, y = _t(a["input"], "input").dims, _t(a["mat2"], "mat2").dims
    if len(x) != 3 or len(y) != 3:
        raise OpError(f"bmm takes two 3-D tensors (B, n, m) and (B, m, p); got {fmt_shape(x)} and {fmt_shape(y)}")
    if x[0] != y[0] or x[2] != y[1]:
        raise OpError(f"bmm of {fmt_shape(x)} and {fmt_shape(y)}: expected (B, n, m) and (B, m, p)")
    return Shape((x[0], x[1], y[2]))


def _tensor_list(a: dict[str, Any]) -> list[Shape]:
    items = a["tensors"]
    if not items:
        raise OpError("needs at least one tensor")
    return [_t(v, f"tensors[{i}]") for i, v in enumerate(items)]


def _cat(a: dict[str, Any]) -> Shape:
    shapes = _tensor_list(a)
    first = shapes[0]
    dim = _axis(a["dim"], first.rank)
    out = list(first.dims)
    for i, s in enumerate(shapes[1:], 1):
        if s.rank != first.rank:
            raise OpError(f"tensors[{i}] {s} has {s.rank} dimension(s) but tensors[0] {first} has {first.rank}")
        for k in range(first.rank):
            if k != dim and s.dims[k] != first.dims[k]:
                listed = ", ".join(str(t) for t in shapes)
                raise OpError(
                    f"sizes must match except in dimension {a['dim']}: dimension {k} is {first.dims[k]} in tensors[0] "
                    f"but {s.dims[k]} in tensors[{i}] (shapes {listed})"
                )
        out[dim] += s.dims[dim]
    return Shape(tuple(out))


def _stack(a: dict[str, Any]) -> Shape:
    shapes = _tensor_list(a)
    first = shapes[0]
    for i, s in enumerate(shapes[1:], 1):
        if s != first:
            raise OpError(f"stack needs tensors of one shape: tensors[0] is {first} but tensors[{i}] is {s}")
    dim = _axis(a["dim"], first.rank, extra=1)
    out = list(first.dims)
    out.insert(dim, len(shapes))
    return Shape(tuple(out))


def _chunk(a: dict[str, Any]) -> tuple[Shape, ...]:
    x = _t(a["input"], "input")
    chunks = a["chunks"]
    if chunks < 1:
        raise OpError(f"chunks must be at least 1; got {chunks}")
    dim = _axis(a["dim"], x.rank)
    n = x.dims[dim]
    size = -(-n // chunks) if n else 0
    count = -(-n // size) if size else 1
    sizes = [min(size, n - k * size) for k in range(count)] if size else [0] * chunks
    return tuple(Shape(x.dims[:dim] + (s,) + x.dims[dim + 1 :]) for s in sizes)


def _split(a: dict[str, Any]) -> tuple[Shape, ...]:
    x = _t(a["input"], "input")
    dim = _axis(a["dim"], x.rank)
    n = x.dims[dim]
    sections = a["split_size_or_sections"]
    if isinstance(sections, list):
        if sum(sections) != n or any(s < 0 for s in sections):
            raise OpError(f"split sizes {sections} must add up to dimension {a['dim']}'s size {n}")
        sizes = list(sections)
    else:
        if sections < 1:
            raise OpError(f"split_size_or_sections must be at least 1; got {sections}")
        sizes = [min(sections, n - k) for k in range(0, n, sections)] or [0]
    return tuple(Shape(x.dims[:dim] + (s,) + x.dims[dim + 1 :]) for s in sizes)


def _flatten(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    if x.rank == 0:
        return Shape((1,))
    start = _axis(a["start_dim"], x.rank, "start_dim")
    end = _axis(a["end_dim"], x.rank, "end_dim")
    if start > end:
        raise OpError(f"start_dim ({a['start_dim']}) cannot come after end_dim ({a['end_dim']})")
    return Shape(x.dims[:start] + (math.prod(x.dims[start : end + 1]),) + x.dims[end + 1 :])


def _infer(dims: tuple[int, ...], shape: list[int]) -> tuple[int, ...]:
    numel = math.prod(dims)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise OpError(f"only one dimension can be -1; got {shape}")
    if any(s < -1 for s in shape):
        raise OpError(f"invalid shape dimension in {shape}")
    if unknown:
        rest = math.prod(s for s in shape if s != -1)
        if rest == 0 or numel % rest:
            raise OpError(f"shape {shape} is invalid for a tensor of {numel} elements {fmt_shape(dims)}")
        shape = [numel // rest if s == -1 else s for s in shape]
    if math.prod(shape) != numel:
        raise OpError(f"shape {shape} holds {math.prod(shape)} elements but the tensor {fmt_shape(dims)} has {numel}")
    return tuple(shape)


def _reshape(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    return Shape(_infer(x.dims, list(a["shape"])))


def _permute(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    dims = _dims(a["dims"], x.rank, "dims")
    if len(dims) != x.rank:
        raise OpError(f"dims {list(a['dims'])} must list each of the {x.rank} dimensions of {x} once")
    return Shape(tuple(x.dims[d] for d in dims))


def _transpose(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    d0, d1 = _axis(a["dim0"], x.rank, "dim0"), _axis(a["dim1"], x.rank, "dim1")
    dims = list(x.dims)
    if x.rank:
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return Shape(tuple(dims))


def _unsqueeze(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    dim = _axis(a["dim"], x.rank, extra=1)
    dims = list(x.dims)
    dims.insert(dim, 1)
    return Shape(tuple(dims))


def _squeeze(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    if a["dim"] is None:
        return Shape(tuple(d for d in x.dims if d != 1))
    if x.rank == 0:
        _dims(a["dim"], 0)
        return x
    drop = set(_dims(a["dim"], x.rank))
    return Shape(tuple(d for k, d in enumerate(x.dims) if not (k in drop and d == 1)))


def _expand(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    size = list(a["size"])
    if len(size) < x.rank:
        raise OpError(f"expand to {size} has fewer dimensions than the tensor {x}")
    lead = len(size) - x.rank
    out = []
    for k, s in enumerate(size):
        if k < lead:
            if s < 0:
                raise OpError(f"expand: the new leading dimension {k} cannot be {s}")
            out.append(s)
            continue
        have = x.dims[k - lead]
        if s == -1:
            out.append(have)
        elif have not in (1, s):
            raise OpError(f"expand: dimension {k - lead} of {x} has size {have}, which can only expand if it is 1")
        else:
            out.append(s)
    return Shape(tuple(out))


def _contiguous(a: dict[str, Any]) -> Shape:
    return _t(a["input"], "input")


def _same(a: dict[str, Any]) -> Shape:
    return _t(a["input"], "input")


def _softmax(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    _axis(a["dim"], x.rank)
    return x


def _reduce(a: dict[str, Any]) -> Shape:
    x = _t(a["input"], "input")
    dim = a["dim"]
    if dim is None or dim == []:
        return Shape((1,) * x.rank if a["keepdim"] else ())
    drop = set(_dims(dim, x.rank))
    if a["keepdim"]:
        return Shape(tuple(1 if k in drop else d for k, d in enumerate(x.dims)))
    return Shape(tuple(d for k, d in enumerate(x.dims) if k not in drop))


def _size(a: dict[str, Any]) -> Any:
    x = _t(a["input"], "input")
    if a["dim"] is None:
        return tuple(x.dims)
    return x.dims[_axis(a["dim"], x.rank)]


def _slice_len(n: int, s: slice) -> int:
    return len(range(*s.indices(n)))


def _getitem(a: dict[str, Any]) -> Any:
    value, index = a["input"], a["index"]
    if isinstance(value, tuple):
        if isinstance(index, int):
            if not -len(value) <= index < len(value):
                raise OpError(f"index {index} is out of range for a tuple of {len(value)}")
            return value[index]
        if isinstance(index, slice):
            return value[index]
        raise OpError(f"a tuple is indexed by an integer or a slice; got {index!r}")
    x = _t(value, "input")
    items = list(index) if isinstance(index, tuple) else [index]
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if used > x.rank:
        raise OpError(f"too many indices ({used}) for {x} with {x.rank} dimension(s)")
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise OpError("an index can hold only one '...'")
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + [slice(None)] * (x.rank - used) + items[k + 1 :]
    else:
        items = items + [slice(None)] * (x.rank - used)
    out: list[int] = []
    k = 0
    for item in items:
        if item is None:
            out.append(1)
            continue
        n = x.dims[k]
        if isinstance(item, slice):
            if item.step is not None and item.step <= 0:
                raise OpError("slice steps must be positive")
            out.append(_slice_len(n, item))
        elif not -n <= item < n:
            raise OpError(f"index {item} is out of range for dimension {k} of {x} (size {n})")
        k += 1
    return Shape(tuple(out))


def _meta_rule(fn: Callable[..., Any], tensor: str = "input") -> Rule:
    """torch's own meta kernel for one functional call: pooling, padding, interpolation."""

    def rule(a: dict[str, Any]) -> Shape:
        x = _t(a[tensor], tensor)
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in a.items() if k != tensor}
        try:
            out = fn(torch.empty(x.dims, device="meta"), **kwargs)
        except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as exc:
            raise OpError(str(exc).split("\n", 1)[0]) from None
        if isinstance(out, tuple):
            out = out[0]
        return Shape(tuple(out.shape))

    return rule


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

_T = OpParam("input", "tensor", required=True)


def _p(name: str, type_: str, default: Any = None, **kw: Any) -> OpParam:
    return OpParam(name, type_, default, **kw)


def _req(name: str, type_: str, **kw: Any) -> OpParam:
    return OpParam(name, type_, required=True, **kw)


def _unary(name: str, fn: Callable[..., Any], *extra: OpParam, doc: str = "") -> OpSpec:
    return OpSpec(name, (_T, *extra), _same, fn, doc=doc or f"torch.nn.functional.{name}: same shape as its input")


_ARITH = (_req("input", "operand"), _req("other", "operand"))
_POOL = {1: (F.max_pool1d, F.avg_pool1d), 2: (F.max_pool2d, F.avg_pool2d), 3: (F.max_pool3d, F.avg_pool3d)}
_ADAPTIVE = {
    1: (F.adaptive_avg_pool1d, F.adaptive_max_pool1d),
    2: (F.adaptive_avg_pool2d, F.adaptive_max_pool2d),
    3: (F.adaptive_avg_pool3d, F.adaptive_max_pool3d),
}

_TABLE: list[OpSpec] = [
    # arithmetic (on tensors with broadcasting, or on sizes)
    OpSpec("add", _ARITH, _binary(operator.add), operator.add, doc="input + other (broadcasting)"),
    OpSpec("sub", _ARITH, _binary(operator.sub), operator.sub, doc="input - other (broadcasting)"),
    OpSpec("mul", _ARITH, _binary(operator.mul), operator.mul, doc="input * other (broadcasting)"),
    OpSpec("div", _ARITH, _binary(operator.truediv), operator.truediv, doc="input / other (broadcasting)"),
    OpSpec("floordiv", _ARITH, _binary(operator.floordiv), operator.floordiv, doc="input // other (sizes)"),
    OpSpec("neg", (_req("input", "operand"),), _neg, operator.neg, doc="-input"),
    OpSpec("matmul", (_T, _req("other", "tensor")), _matmul, operator.matmul, doc="input @ other (torch.matmul)"),
    OpSpec("bmm", (_T, _req("mat2", "tensor")), _bmm, torch.bmm, doc="batched (B, n, m) @ (B, m, p)"),
    # joining and splitting
    OpSpec("cat", (_req("tensors", "tensors"), _p("dim", "int", 0)), _cat, torch.cat, doc="torch.cat"),
    OpSpec("stack", (_req("tensors", "tensors"), _p("dim", "int", 0)), _stack, torch.stack, doc="torch.stack"),
    OpSpec("chunk", (_T, _req("chunks", "int"), _p("dim", "int", 0)), _chunk, torch.chunk, doc="a tuple of tensors"),
    OpSpec(
        "split",
        (_T, _req("split_size_or_sections", "ints"), _p("dim", "int", 0)),
        _split,
        torch.split,
        doc="a tuple of tensors",
    ),
    # reshaping
    OpSpec(
        "flatten", (_T, _p("start_dim", "int", 0), _p("end_dim", "int", -1)), _flatten, torch.flatten, doc="flatten"
    ),
    OpSpec("reshape", (_T, _req("shape", "ints")), _reshape, torch.reshape, doc="torch.reshape (one size may be -1)"),
    OpSpec(
        "view",
        (_T, _req("shape", "ints")),
        _reshape,
        torch.Tensor.view,
        doc="Tensor.view (one size may be -1)",
        call="method",
    ),
    OpSpec("permute", (_T, _req("dims", "ints")), _permute, torch.permute, doc="torch.permute"),
    OpSpec("transpose", (_T, _req("dim0", "int"), _req("dim1", "int")), _transpose, torch.transpose),
    OpSpec("unsqueeze", (_T, _req("dim", "int")), _unsqueeze, torch.unsqueeze, doc="a new dimension of size 1"),
    OpSpec("squeeze", (_T, _p("dim", "ints", None, nullable=True)), _squeeze, torch.squeeze, doc="torch.squeeze"),
    OpSpec("contiguous", (_T,), _contiguous, torch.Tensor.contiguous, doc="Tensor.contiguous", call="method"),
    OpSpec(
        "expand",
        (_T, _req("size", "ints")),
        _expand,
        torch.Tensor.expand,
        doc="Tensor.expand (-1 keeps a size)",
        call="method",
    ),
    # indexing and sizes
    OpSpec(
        "getitem",
        (_req("input", "value"), _req("index", "index")),
        _getitem,
        operator.getitem,
        doc="input[index]: ints, slices, None, '...' and tuples of them; an element of a tuple output",
    ),
    OpSpec(
        "size",
        (_T, _p("dim", "int", None, nullable=True)),
        _size,
        torch.Tensor.size,
        doc="x.size(dim): an int, or the whole shape as a tuple",
        call="method",
    ),
    # reductions
    *[
        OpSpec(
            name,
            (_T, _p("dim", "ints", None, nullable=True), _p("keepdim", "bool", False)),
            _reduce,
            fn,
            doc=f"torch.{name} over dims (all when null)",
        )
        for name, fn in (("mean", torch.mean), ("sum", torch.sum), ("amax", torch.amax))
    ],
    # the functional forms of the catalog's activations
    _unary("relu", F.relu),
    _unary("relu6", F.relu6),
    _unary("elu", F.elu, _p("alpha", "float", 1.0)),
    _unary("selu", F.selu),
    _unary("celu", F.celu, _p("alpha", "float", 1.0)),
    _unary("leaky_relu", F.leaky_relu, _p("negative_slope", "float", 0.01)),
    _unary("gelu", F.gelu, _p("approximate", "str", "none", choices=("none", "tanh"))),
    _unary("silu", F.silu),
    _unary("mish", F.mish),
    _unary("hardswish", F.hardswish),
    _unary("hardsigmoid", F.hardsigmoid),
    _unary("hardtanh", F.hardtanh, _p("min_val", "float", -1.0), _p("max_val", "float", 1.0)),
    _unary("softplus", F.softplus, _p("beta", "float", 1.0), _p("threshold", "float", 20.0)),
    _unary("sigmoid", torch.sigmoid, doc="torch.sigmoid: same shape as its input"),
    _unary("tanh", torch.tanh, doc="torch.tanh: same shape as its input"),
    OpSpec("softmax", (_T, _req("dim", "int")), _softmax, F.softmax, doc="softmax along dim"),
    OpSpec("log_softmax", (_T, _req("dim", "int")), _softmax, F.log_softmax, doc="log-softmax along dim"),
    OpSpec(
        "dropout",
        (_T, _p("p", "float", 0.5)),
        _same,
        F.dropout,
        training=True,
        doc="F.dropout, active in training mode only (the network's train flag)",
    ),
    # pooling, padding, interpolation
    *[
        OpSpec(
            f"max_pool{n}d",
            (
                _T,
                _req("kernel_size", "ints"),
                _p("stride", "ints", None, nullable=True),
                _p("padding", "ints", 0),
                _p("dilation", "ints", 1),
                _p("ceil_mode", "bool", False),
            ),
            _meta_rule(mx),
            mx,
            doc=f"F.max_pool{n}d",
        )
        for n, (mx, _) in _POOL.items()
    ],
    *[
        OpSpec(
            f"avg_pool{n}d",
            (
                _T,
                _req("kernel_size", "ints"),
                _p("stride", "ints", None, nullable=True),
                _p("padding", "ints", 0),
                _p("ceil_mode", "bool", False),
                _p("count_include_pad", "bool", True),
            ),
            _meta_rule(avg),
            avg,
            doc=f"F.avg_pool{n}d",
        )
        for n, (_, avg) in _POOL.items()
    ],
    *[
        OpSpec(
            f"adaptive_{kind}_pool{n}d",
            (_T, _req("output_size", "ints", nullable_items=True)),
            _meta_rule(fn),
            fn,
            doc=f"F.adaptive_{kind}_pool{n}d (null keeps a size)",
        )
        for n, pair in _ADAPTIVE.items()
        for kind, fn in zip(("avg", "max"), pair)
    ],
    OpSpec(
        "pad",
        (
            _T,
            _req("pad", "ints"),
            _p("mode", "str", "constant", choices=("constant", "reflect", "replicate", "circular")),
            _p("value", "float", None, nullable=True),
        ),
        _meta_rule(F.pad),
        F.pad,
        doc="F.pad: (left, right, top, bottom, ...) from the last dimension backwards",
    ),
    OpSpec(
        "interpolate",
        (
            _T,
            _p("size", "ints", None, nullable=True),
            _p("scale_factor", "float", None, nullable=True),
            _p(
                "mode",
                "str",
                "nearest",
                choices=("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"),
            ),
            _p("align_corners", "bool", None, nullable=True),
        ),
        _meta_rule(F.interpolate),
        F.interpolate,
        doc="F.interpolate to a size or by a scale factor",
    ),
]

#: every operation a Graph node may name, by name
OPS: dict[str, OpSpec] = {op.name: op for op in _TABLE}
