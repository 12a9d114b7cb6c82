"""Output-shape rules: each layer's documented formula, written once with :mod:`app.core.expr`.

A rule receives a :class:`ShapeContext` (the catalog entry, the module built on the meta device,
the validated arguments, the input shapes) and returns one list of :class:`Dim` per output. Rules
check what the formula needs (rank, channels, features) and raise :class:`ShapeMismatch` in the
user's words; they never run the layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import nn

from app.core.catalog import LayerSpec
from app.core.errors import ShapeMismatch
from app.core.expr import Dim, Expr, Sym, ceil_div, floor_div, lift

_SPATIAL_NAMES = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}


@dataclass
class ShapeContext:
    spec: LayerSpec
    module: nn.Module
    args: dict[str, Any]
    shapes: list[tuple[int, ...]]

    @property
    def type(self) -> str:
        return self.spec.type

    def arg(self, name: str, default: Any = None) -> Any:
        """A constructor argument as the built module holds it (torch's normalisation), else as given."""
        if hasattr(self.module, name):
            return getattr(self.module, name)
        if name in self.args:
            return self.args[name]
        p = self.spec.param(name)
        return p.default if p is not None else default

    def shape(self, i: int = 0) -> tuple[int, ...]:
        return self.shapes[i]

    def names(self, i: int = 0) -> list[str]:
        return convention_names(self.spec.inputs[i].convention, len(self.shapes[i]))

    def dims(self, i: int = 0) -> list[Sym]:
        return [Sym(n, v) for n, v in zip(self.names(i), self.shapes[i])]

    def fail(self, message: str, i: int = 0) -> ShapeMismatch:
        return ShapeMismatch(f"{self.type} {message}", field=f"inputs[{i}].shape")

    def expect_rank(self, ranks: Sequence[int], i: int = 0) -> int:
        rank = len(self.shapes[i])
        if rank not in ranks:
            conv = self.spec.inputs[i].convention
            allowed = " or ".join(f"{r}-D" for r in ranks)
            raise self.fail(
                f"expects input {i} to be {allowed} {conv}, got {rank}-D shape {fmt_shape(self.shapes[i])}", i
            )
        return rank


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def convention_names(convention: str, rank: int) -> list[str]:
    """Names for each dimension of a shape, from a convention like ``(N, C_in, L_in)`` or ``(N, *, H_in)``.

    A convention that starts with N also describes the unbatched form (one dimension fewer), and
    ``"(N, C) or (C)"`` lists alternatives: the first whose rank fits names the dimensions.
    """
    for alternative in convention.split(" or "):
        names = _parse_convention(alternative, rank)
        if names is not None:
            return names
    return [f"d{k}" for k in range(rank)]


def _parse_convention(convention: str, rank: int) -> list[str] | None:
    names = [n.strip() for n in convention.strip().strip("()").split(",") if n.strip()]
    if "*" in names:
        star = names.index("*")
        extra = rank - (len(names) - 1)
        if extra < 0:
            names = names[:star] + names[star + 1 :]
        else:
            names = names[:star] + [f"*{k}" if extra > 1 else "*" for k in range(extra)] + names[star + 1 :]
    if len(names) == rank + 1 and names and names[0] == "N":
        names = names[1:]
    return names if len(names) == rank else None


def _out_name(name: str) -> str:
    if name.endswith("_in"):
        return name[:-3] + "_out"
    return name


def _pairs(value: Any, n: int) -> list[Any]:
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and n > 1:
            return list(value) * n
        return list(value)
    return [value] * n


# ---------------------------------------------------------------------------------------------
# generic rules
# ---------------------------------------------------------------------------------------------


def same(ctx: ShapeContext, i: int = 0) -> list[list[Dim]]:
    """Output has the input's shape (element-wise layers, norms, dropout, activations)."""
    return [[Dim(_out_name(s.name), s) for s in ctx.dims(i)]]


def scalar() -> list[Dim]:
    return []


def loss(per_element: Callable[[ShapeContext], list[Dim]] | None = None) -> Callable[[ShapeContext], list[list[Dim]]]:
    """Losses: a scalar for reduction 'mean'/'sum', the per-element shape for 'none'."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        reduction = ctx.arg("reduction", "mean")
        if reduction == "none":
            return [per_element(ctx) if per_element else same(ctx)[0]]
        return [scalar()]

    return rule


# ---------------------------------------------------------------------------------------------
# linear family
# ---------------------------------------------------------------------------------------------


def linear(ctx: ShapeContext, *, in_name: str = "in_features", out_name: str = "out_features") -> list[list[Dim]]:
    """Input: (*, H_in) -> Output: (*, H_out), H_in = in_features."""
    shape = ctx.shape(0)
    want = ctx.arg(in_name)
    if len(shape) < 1:
        raise ctx.fail("expects input 0 to have at least 1 dimension (*, H_in), got a scalar")
    if shape[-1] != want:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be {in_name}={want}, got {shape[-1]} "
            f"(input shape {fmt_shape(shape)})"
        )
    dims = ctx.dims(0)
    return [[Dim(d.name, d) for d in dims[:-1]] + [Dim("H_out", Sym(out_name, ctx.arg(out_name)))]]


def bilinear(ctx: ShapeContext) -> list[list[Dim]]:
    """Input1: (*, H_in1), Input2: (*, H_in2) -> Output: (*, H_out)."""
    s1, s2 = ctx.shape(0), ctx.shape(1)
    for i, (s, name) in enumerate(((s1, "in1_features"), (s2, "in2_features"))):
        want = ctx.arg(name)
        if not s or s[-1] != want:
            got = s[-1] if s else "a scalar"
            raise ctx.fail(f"expects the last dimension of input {i} to be {name}={want}, got {got}", i)
    if s1[:-1] != s2[:-1]:
        raise ctx.fail(
            f"expects both inputs to share their leading dimensions, got {fmt_shape(s1)} and {fmt_shape(s2)}", 1
        )
    dims = ctx.dims(0)
    return [[Dim(d.name, d) for d in dims[:-1]] + [Dim("H_out", Sym("out_features", ctx.arg("out_features")))]]


# ---------------------------------------------------------------------------------------------
# convolution and pooling
# ---------------------------------------------------------------------------------------------


def _spatial_rank(ctx: ShapeContext, n: int, *, channels: int | None, channel_arg: str = "in_channels") -> bool:
    """Check (N, C, *spatial) or unbatched (C, *spatial); return True when batched."""
    rank = ctx.expect_rank((n + 1, n + 2))
    batched = rank == n + 2
    if channels is not None:
        c = ctx.shape(0)[1 if batched else 0]
        if c != channels:
            conv = ctx.spec.inputs[0].convention
            raise ctx.fail(
                f"expects input 0 to have {channel_arg}={channels} channels at dimension {1 if batched else 0} "
                f"{conv}, got {c} (input shape {fmt_shape(ctx.shape(0))})"
            )
    return batched


def _sym_list(ctx: ShapeContext, name: str, n: int) -> list[Expr]:
    values = _pairs(ctx.arg(name), n)
    if n == 1:
        return [Sym(name, int(values[0]))]
    return [Sym(f"{name}[{k}]", int(values[k])) for k in range(n)]


def _lead(ctx: ShapeContext, batched: bool, channel: Dim) -> list[Dim]:
    lead = [Dim("N", Sym("N", ctx.shape(0)[0]))] if batched else []
    return lead + [channel]


def _spatial_in(ctx: ShapeContext, n: int, batched: bool) -> list[Sym]:
    names = _SPATIAL_NAMES[n]
    offset = 2 if batched else 1
    return [Sym(f"{names[k]}_in", ctx.shape(0)[offset + k]) for k in range(n)]


def _check_positive(ctx: ShapeContext, dims: list[Dim]) -> list[Dim]:
    for d in dims:
        v = d.expr.int_value()
        if v < 1:
            raise ctx.fail(
                f"output would have {d.name} = {d.expr.text(True)} = {v}: the kernel (with dilation) is larger "
                f"than the padded input {fmt_shape(ctx.shape(0))}. Use a larger input, more padding or a smaller "
                f"kernel_size/dilation."
            )
    return dims


def conv(n: int) -> Callable[[ShapeContext], list[list[Dim]]]:
    """Input: (N, C_in, *spatial_in) -> (N, C_out, *spatial_out); out = ⌊(in + 2p − d(k − 1) − 1)/s⌋ + 1."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = _spatial_rank(ctx, n, channels=ctx.arg("in_channels"))
        spatial = _spatial_in(ctx, n, batched)
        names = _SPATIAL_NAMES[n]
        padding = ctx.arg("padding")
        out: list[Dim] = []
        k = _sym_list(ctx, "kernel_size", n)
        d = _sym_list(ctx, "dilation", n)
        s = _sym_list(ctx, "stride", n)
        if padding == "same":
            out = [Dim(f"{names[j]}_out", spatial[j]) for j in range(n)]
        else:
            p = [lift(0)] * n if padding == "valid" else _sym_list(ctx, "padding", n)
            out = [
                Dim(f"{names[j]}_out", floor_div(spatial[j] + 2 * p[j] - d[j] * (k[j] - 1) - 1, s[j]) + 1)
                for j in range(n)
            ]
        channel = Dim("C_out", Sym("out_channels", ctx.arg("out_channels")))
        return [_lead(ctx, batched, channel) + _check_positive(ctx, out)]

    rule.__doc__ = f"Conv{n}d output shape."
    return rule


def conv_transpose(n: int) -> Callable[[ShapeContext], list[list[Dim]]]:
    """out = (in − 1)·stride − 2·padding + dilation·(kernel_size − 1) + output_padding + 1."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = _spatial_rank(ctx, n, channels=ctx.arg("in_channels"))
        spatial = _spatial_in(ctx, n, batched)
        names = _SPATIAL_NAMES[n]
        k = _sym_list(ctx, "kernel_size", n)
        d = _sym_list(ctx, "dilation", n)
        s = _sym_list(ctx, "stride", n)
        p = _sym_list(ctx, "padding", n)
        op = _sym_list(ctx, "output_padding", n)
        out = [
            Dim(f"{names[j]}_out", (spatial[j] - 1) * s[j] - 2 * p[j] + d[j] * (k[j] - 1) + op[j] + 1)
            for j in range(n)
        ]
        channel = Dim("C_out", Sym("out_channels", ctx.arg("out_channels")))
        return [_lead(ctx, batched, channel) + _check_positive(ctx, out)]

    return rule


def pool(n: int, *, has_padding: bool = True, has_dilation: bool = True) -> Callable[[ShapeContext], list[list[Dim]]]:
    """Max/avg/LP pooling: out = ⌊(in + 2p − d(k − 1) − 1)/s⌋ + 1 (⌈…⌉ with ceil_mode)."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = _spatial_rank(ctx, n, channels=None)
        spatial = _spatial_in(ctx, n, batched)
        names = _SPATIAL_NAMES[n]
        k = _sym_list(ctx, "kernel_size", n)
        stride = ctx.arg("stride")
        s = _sym_list(ctx, "stride", n) if stride not in (None, (), []) else k
        p = _sym_list(ctx, "padding", n) if has_padding else [lift(0)] * n
        d = _sym_list(ctx, "dilation", n) if has_dilation else [lift(1)] * n
        ceil = bool(ctx.arg("ceil_mode", False))
        for j in range(n):
            if has_padding and p[j].int_value() * 2 > k[j].int_value():
                raise ShapeMismatch(
                    f"{ctx.type}: padding ({p[j].int_value()}) should be at most half of kernel_size "
                    f"({k[j].int_value()})",
                    field="layer.padding",
                )
        out: list[Dim] = []
        for j in range(n):
            span = spatial[j] + 2 * p[j] - d[j] * (k[j] - 1) - 1
            if ceil:
                expr = ceil_div(span, s[j]) + 1
                # torch drops a last window that would start inside the right padding
                if (expr.int_value() - 1) * s[j].int_value() >= spatial[j].int_value() + p[j].int_value():
                    expr = expr - 1
            else:
                expr = floor_div(span, s[j]) + 1
            out.append(Dim(f"{names[j]}_out", expr))
        channel = Dim("C", Sym("C", ctx.shape(0)[1 if batched else 0]))
        return [_lead(ctx, batched, channel) + _check_positive(ctx, out)]

    return rule


def adaptive_pool(n: int) -> Callable[[ShapeContext], list[list[Dim]]]:
    """Output spatial size is output_size (None keeps the input's size)."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = _spatial_rank(ctx, n, channels=None)
        spatial = _spatial_in(ctx, n, batched)
        names = _SPATIAL_NAMES[n]
        sizes = _pairs(ctx.arg("output_size"), n)
        out = []
        for j in range(n):
            name = "output_size" if n == 1 else f"output_size[{j}]"
            out.append(Dim(f"{names[j]}_out", spatial[j] if sizes[j] is None else Sym(name, int(sizes[j]))))
        channel = Dim("C", Sym("C", ctx.shape(0)[1 if batched else 0]))
        outputs = [_lead(ctx, batched, channel) + out]
        if ctx.arg("return_indices", False):
            outputs.append(list(outputs[0]))
        return outputs

    return rule


def with_indices(rule: Callable[[ShapeContext], list[list[Dim]]]) -> Callable[[ShapeContext], list[list[Dim]]]:
    """Max pools with return_indices=True also return indices shaped like the output."""

    def wrapped(ctx: ShapeContext) -> list[list[Dim]]:
        outputs = rule(ctx)
        if ctx.arg("return_indices", False):
            outputs.append(list(outputs[0]))
        return outputs

    return wrapped


def padding_layer(n: int) -> Callable[[ShapeContext], list[list[Dim]]]:
    """Padding layers: each of the last n dims grows by its (left, right) padding."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        rank = ctx.expect_rank((n + 1, n + 2))
        pads = list(ctx.arg("padding"))
        dims = ctx.dims(0)
        out = [Dim(_out_name(d.name), d) for d in dims[: rank - n]]
        # torch's padding tuple runs from the last dimension backwards: (left, right, top, bottom, ...)
        for j in range(n):
            axis = rank - n + j
            back = n - 1 - j
            before, after = pads[2 * back], pads[2 * back + 1]
            expr = dims[axis] + Sym(f"padding[{2 * back}]", before) + Sym(f"padding[{2 * back + 1}]", after)
            out.append(Dim(_out_name(dims[axis].name), expr))
        return [_check_positive(ctx, out)]

    return rule


def spatial_name(type_name: str) -> int | None:
    m = re.search(r"(\d)d$", type_name)
    return int(m.group(1)) if m else None
