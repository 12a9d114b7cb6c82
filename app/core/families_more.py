"""Curation of the rest of ``torch.nn``: losses, recurrent layers, attention and transformers,
embeddings, reshaping layers, padding, distances, fractional pooling and max-unpooling.

Same approach as :mod:`app.core.families`: parameters come from torch's signatures (declared
here only where torch's ``__init__`` hides them behind ``*args`` or leaves them unannotated),
every entry gets its ``forward()`` inputs with torch's documented shape convention, the documented
output-shape formula written with :mod:`app.core.expr`, and an example that runs as it is.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from app.core import rules
from app.core.catalog import LayerSpec, Registry, arg_docs
from app.core.errors import InvalidRequest, ShapeMismatch
from app.core.expr import Const, Dim, Expr, Sym, floor_div, prod
from app.core.families import MAX_REPEATS, inp, shape, torch_entry
from app.core.rules import ShapeContext, fmt_shape

Rule = Callable[[ShapeContext], list[list[Dim]]]


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _entry(reg: Registry, name: str, family: str, args: dict[str, Any], inputs: list, example_inputs: list,
           rule: Rule, *, order: Sequence[str] | None = None, **kw: Any) -> LayerSpec:
    """``torch_entry`` with declared parameters put back in the constructor's order."""
    spec = torch_entry(reg, name, family, args, inputs, example_inputs, rule, **kw)
    if order is None:
        order = list(inspect.signature(getattr(nn, name).__init__).parameters)
    rank = {n: i for i, n in enumerate(order)}
    spec.params.sort(key=lambda p: rank.get(p.name, len(rank)))
    return spec


def _declared(cls: type, **params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Parameters torch's introspection cannot see, with the docstring's description."""
    docs = arg_docs(cls)
    return {name: {"doc": docs.get(name, ""), **spec} for name, spec in params.items()}


def data(values: Any, dtype: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"data": values}
    if dtype:
        out["dtype"] = dtype
    return out


def _syms(names: Sequence[str], sizes: Sequence[int]) -> list[Sym]:
    return [Sym(n, int(v)) for n, v in zip(names, sizes)]


def _keep(syms: Sequence[Sym]) -> list[Dim]:
    return [Dim(s.name, s) for s in syms]


def _generic_names(rank: int, lead: str | None = "N") -> list[str]:
    if rank == 0:
        return []
    if lead:
        return [lead] + [f"d{k}" for k in range(1, rank)]
    return [f"d{k}" for k in range(rank)]


def _pairs(value: Any, n: int) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return list(value) * n if len(value) == 1 and n > 1 else list(value)
    return [value] * n


def _sym_list(name: str, value: Any, n: int) -> list[Sym]:
    values = _pairs(value, n)
    if n == 1:
        return [Sym(name, int(values[0]))]
    return [Sym(f"{name}[{k}]", int(values[k])) for k in range(n)]


def _input_name(ctx: ShapeContext, i: int) -> str:
    return f"input {i} ({ctx.spec.inputs[i].name})" if i else "input 0"


def _broadcast(ctx: ShapeContext, idxs: Sequence[int], shapes: Sequence[Sequence[int]] | None = None) -> list[Sym]:
    """torch's broadcast of the given inputs' shapes (aligned on the right)."""
    shapes = [ctx.shape(i) for i in idxs] if shapes is None else shapes
    rank = max(len(s) for s in shapes)
    names = _generic_names(rank, None)
    out: list[Sym] = []
    for k in range(rank):
        sizes = [s[k - (rank - len(s))] if k >= rank - len(s) else 1 for s in shapes]
        distinct = {v for v in sizes if v != 1}
        if len(distinct) > 1:
            listed = " and ".join(f"{_input_name(ctx, i)} {fmt_shape(s)}" for i, s in zip(idxs, shapes))
            raise ctx.fail(
                f"expects inputs of the same shape (or shapes that broadcast); got {listed}", idxs[-1]
            )
        out.append(Sym(names[k], max(sizes)))
    return out


def _same_shape(ctx: ShapeContext, a: int, b: int) -> None:
    if ctx.shape(a) != ctx.shape(b):
        raise ctx.fail(
            f"expects {_input_name(ctx, b)} to have the shape of {_input_name(ctx, a)} {fmt_shape(ctx.shape(a))}, "
            f"got {fmt_shape(ctx.shape(b))}",
            b,
        )


def _loss(per_element: Callable[[ShapeContext], list[Dim]]) -> Rule:
    """rules.loss, with the input shapes checked whatever the reduction."""
    base = rules.loss(per_element)

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        per_element(ctx)
        return base(ctx)

    rule.__doc__ = per_element.__doc__
    return rule


@dataclass(eq=False)
class ScaledFloor(Expr):
    """⌊x·s⌋ for a float factor ``s``, computed in double precision exactly as torch does."""

    a: Expr
    name: str
    s: float

    def value(self) -> int:
        return math.floor(float(self.a.value()) * self.s)

    def _factor(self, subst: bool) -> str:
        return f"{self.s:g}" if subst else self.name

    def text(self, subst: bool = False) -> str:
        return f"⌊{self.a.text(subst)}·{self._factor(subst)}⌋"

    def latex(self, subst: bool = False) -> str:
        name = self._factor(subst) if subst else "\\text{" + self.name.replace("_", "\\_") + "}"
        return f"\\left\\lfloor {self.a.latex(subst)} \\cdot {name} \\right\\rfloor"


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

_POINTWISE = "(*)"


def _pointwise_same(ctx: ShapeContext) -> list[Dim]:
    """Output ('none'): the input's shape; target must have the input's shape."""
    _same_shape(ctx, 0, 1)
    return _keep(_syms(_generic_names(len(ctx.shape(0)), None), ctx.shape(0)))


def _pointwise_broadcast(ctx: ShapeContext) -> list[Dim]:
    """Output ('none'): the broadcast shape of input and target (normally both the same)."""
    return _keep(_broadcast(ctx, range(len(ctx.shapes))))


def _gaussian_nll(ctx: ShapeContext) -> list[Dim]:
    """Output ('none'): the broadcast shape of input, target and var ((N, *) var may drop its last dim)."""
    x, var = ctx.shape(0), ctx.shape(2)
    if x and tuple(var) == tuple(x[:-1]):  # one variance per sample: torch unsqueezes it
        var = tuple(var) + (1,)
    return _keep(_broadcast(ctx, [0, 1, 2], [x, ctx.shape(1), var]))


def _class_targets(probabilities: bool) -> Callable[[ShapeContext], list[Dim]]:
    def per_element(ctx: ShapeContext) -> list[Dim]:
        """Input (N, C, d_1, …) with target (N, d_1, …) of class indices -> output ('none') (N, d_1, …)."""
        x, t = ctx.shape(0), ctx.shape(1)
        if len(x) == 0:
            raise ctx.fail("expects input 0 to be (N, C), (C) or (N, C, d_1, ...); got a scalar")
        names = ["C"] if len(x) == 1 else ["N", "C"] + [f"d{k}" for k in range(1, len(x) - 1)]
        dims = _syms(names, x)
        rest = [d for d in dims if d.name != "C"]
        want = tuple(d.v for d in rest)
        if tuple(t) == want:
            return _keep(rest)
        if probabilities and tuple(t) == tuple(x):
            return _keep(rest)
        alt = f", or the input's shape {fmt_shape(x)} for class probabilities" if probabilities else ""
        raise ctx.fail(
            f"expects target (input 1) of class indices with shape {fmt_shape(want)} (the input's shape "
            f"without C={x[0] if len(x) == 1 else x[1]}){alt}; got {fmt_shape(t)}",
            1,
        )

    return per_element


def _per_sample(n_inputs_same: int) -> Callable[[ShapeContext], list[Dim]]:
    """Inputs of shape (N, D) (or (D)) -> output ('none') (N) (or ()): one loss per sample."""

    def per_element(ctx: ShapeContext) -> list[Dim]:
        x = ctx.shape(0)
        if len(x) not in (1, 2) and ctx.type not in ("TripletMarginLoss", "TripletMarginWithDistanceLoss"):
            raise ctx.fail(f"expects input 0 to be (N, D) or (D), got {len(x)}-D shape {fmt_shape(x)}")
        if len(x) == 0:
            raise ctx.fail("expects input 0 to have at least 1 dimension, got a scalar")
        for i in range(1, n_inputs_same):
            _same_shape(ctx, 0, i)
        names = ["N"] + [f"d{k}" for k in range(1, len(x) - 1)] + ["D"] if len(x) > 1 else ["D"]
        dims = _syms(names, x)
        out = dims[:-1]
        if len(ctx.shapes) > n_inputs_same:  # a target with one entry per sample
            t = ctx.shape(n_inputs_same)
            if tuple(t) != tuple(d.v for d in out):
                raise ctx.fail(
                    f"expects target (input {n_inputs_same}) to have shape {fmt_shape([d.v for d in out])} "
                    f"(one entry per sample), got {fmt_shape(t)}",
                    n_inputs_same,
                )
        return _keep(out)

    return per_element


def _multi_margin(ctx: ShapeContext) -> list[Dim]:
    """Input (N, C) with target (N) -> output ('none') (N); unbatched (C), () -> ()."""
    x, t = ctx.shape(0), ctx.shape(1)
    if len(x) not in (1, 2):
        raise ctx.fail(f"expects input 0 to be (N, C) or (C), got {len(x)}-D shape {fmt_shape(x)}")
    dims = _syms(["N", "C"] if len(x) == 2 else ["C"], x)
    out = dims[:-1]
    want = tuple(d.v for d in out)
    if ctx.type == "MultiLabelMarginLoss" or ctx.type == "MultiLabelSoftMarginLoss":
        if tuple(t) != tuple(x):
            raise ctx.fail(f"expects target (input 1) to have the input's shape {fmt_shape(x)}, got {fmt_shape(t)}", 1)
    elif tuple(t) != want:
        raise ctx.fail(
            f"expects target (input 1) of class indices with shape {fmt_shape(want)}, got {fmt_shape(t)}", 1
        )
    return _keep(out)


def _margin_ranking(ctx: ShapeContext) -> list[Dim]:
    """input1, input2, target: (N) or () -> output ('none') their (broadcast) shape."""
    return _keep(_broadcast(ctx, [0, 1, 2]))


def _ctc(ctx: ShapeContext) -> list[Dim]:
    """log_probs (T, N, C), targets (N, S) or (sum(target_lengths)), lengths (N) -> output ('none') (N)."""
    lp = ctx.shape(0)
    if len(lp) not in (2, 3):
        raise ctx.fail(f"expects log_probs (input 0) to be (T, N, C) or (T, C), got {len(lp)}-D shape {fmt_shape(lp)}")
    batched = len(lp) == 3
    want = (lp[1],) if batched else ()
    for i in (2, 3):
        if tuple(ctx.shape(i)) != want and not (not batched and tuple(ctx.shape(i)) == (1,)):
            raise ctx.fail(
                f"expects {ctx.spec.inputs[i].name} (input {i}) to have shape {fmt_shape(want)} "
                f"(one length per sequence, N={lp[1] if batched else 1}), got {fmt_shape(ctx.shape(i))}",
                i,
            )
    targets = ctx.shape(1)
    if batched and len(targets) == 2 and targets[0] != lp[1]:
        raise ctx.fail(
            f"expects targets (input 1) to be (N, S) with N={lp[1]} like log_probs, got {fmt_shape(targets)}", 1
        )
    return [Dim("N", Sym("N", lp[1]))] if batched else []


def _adaptive_log_softmax(ctx: ShapeContext) -> list[list[Dim]]:
    """input (N, in_features), target (N) -> output (N) (the target's log-probability), loss ()."""
    x, t = ctx.shape(0), ctx.shape(1)
    want = ctx.module.in_features
    if len(x) not in (1, 2):
        raise ctx.fail(f"expects input 0 to be (N, in_features) or (in_features), got {len(x)}-D shape {fmt_shape(x)}")
    if x[-1] != want:
        raise ctx.fail(f"expects the last dimension of input 0 to be in_features={want}, got {x[-1]}")
    out = [Dim("N", Sym("N", x[0]))] if len(x) == 2 else []
    if tuple(t) != tuple(x[:-1]):
        raise ctx.fail(f"expects target (input 1) of class indices with shape {fmt_shape(x[:-1])}, got {fmt_shape(t)}", 1)
    return [out, []]


def _linear_cross_entropy(ctx: ShapeContext) -> list[Dim]:
    """input (N, in_features) -> logits (N, C, *out_features); output ('none') (N, *out_features)."""
    x, t = ctx.shape(0), ctx.shape(1)
    want = ctx.module.linear.in_features
    extra = tuple(ctx.module.out_features)
    if len(x) not in (1, 2):
        raise ctx.fail(f"expects input 0 to be (N, in_features) or (in_features), got {len(x)}-D shape {fmt_shape(x)}")
    if x[-1] != want:
        raise ctx.fail(f"expects the last dimension of input 0 to be in_features={want}, got {x[-1]}")
    lead = [Sym("N", x[0])] if len(x) == 2 else []
    rest = _sym_list("out_features", extra, len(extra)) if extra else []
    out = lead + rest
    indices = tuple(d.v for d in out)
    probs = tuple(x[:-1]) + (ctx.module.num_classes,) + extra
    if tuple(t) not in (indices, probs):
        raise ctx.fail(
            f"expects target (input 1) of class indices with shape {fmt_shape(indices)}, or class probabilities "
            f"{fmt_shape(probs)}; got {fmt_shape(t)}",
            1,
        )
    return [Dim(s.name if s.name == "N" else f"d{k}", s) for k, s in enumerate(out)]


def register_loss(reg: Registry) -> None:
    pair = [inp(_POINTWISE), inp(_POINTWISE, name="target")]
    ex = [shape(3, 5), shape(3, 5)]
    for name in ("L1Loss", "MSELoss"):
        _entry(reg, name, "loss", {}, pair, ex, _loss(_pointwise_broadcast))
    _entry(reg, "HuberLoss", "loss", {"delta": 1.0}, pair, ex, _loss(_pointwise_broadcast),
           params={"delta": {"minimum": 0, "exclusive_minimum": True}})
    _entry(reg, "SmoothL1Loss", "loss", {"beta": 1.0}, pair, ex, _loss(_pointwise_broadcast),
           params={"beta": {"minimum": 0}})
    _entry(
        reg, "BCELoss", "loss", {},
        [inp(_POINTWISE, "uniform"), inp(_POINTWISE, "uniform", name="target")], ex, _loss(_pointwise_same),
    )
    _entry(
        reg, "BCEWithLogitsLoss", "loss", {},
        [inp(_POINTWISE), inp(_POINTWISE, "binary", name="target")], ex, _loss(_pointwise_same),
    )
    _entry(
        reg, "KLDivLoss", "loss", {"reduction": "batchmean"},
        [inp(_POINTWISE), inp(_POINTWISE, "uniform", name="target")], ex, _loss(_pointwise_broadcast),
        params={"reduction": {"choices": ["none", "batchmean", "mean", "sum"]}},
    )
    _entry(
        reg, "PoissonNLLLoss", "loss", {},
        [inp(_POINTWISE, name="log_input"), inp(_POINTWISE, "index", name="target", high=5)], ex,
        _loss(_pointwise_broadcast),
    )
    _entry(
        reg, "GaussianNLLLoss", "loss", {},
        [inp("(N, *) or (*)"), inp("(N, *) or (*)", name="target"),
         inp("(N, *) or (N, *, 1) or (N, 1) or (*)", "uniform", name="var")],
        [shape(3, 5), shape(3, 5), shape(3, 5)], _loss(_gaussian_nll),
    )
    for name in ("HingeEmbeddingLoss", "SoftMarginLoss"):
        _entry(
            reg, name, "loss", {}, [inp(_POINTWISE), inp(_POINTWISE, "sign", name="target")], ex,
            _loss(_pointwise_broadcast),
        )
    _entry(
        reg, "CrossEntropyLoss", "loss", {},
        [inp("(N, C) or (C) or (N, C, *)"), inp("(N) or () or (N, *)", "index", name="target", high="input0.shape[1]")],
        [shape(4, 5), shape(4)], _loss(_class_targets(True)),
    )
    _entry(
        reg, "NLLLoss", "loss", {},
        [inp("(N, C) or (C) or (N, C, *)"), inp("(N) or () or (N, *)", "index", name="target", high="input0.shape[1]")],
        [shape(4, 5), shape(4)], _loss(_class_targets(False)),
    )
    _entry(
        reg, "MultiMarginLoss", "loss", {},
        [inp("(N, C) or (C)"), inp("(N) or ()", "index", name="target", high="input0.shape[1]")],
        [shape(4, 5), shape(4)], _loss(_multi_margin),
        params={"p": {"minimum": 1, "maximum": 2}},
    )
    _entry(
        reg, "MultiLabelMarginLoss", "loss", {},
        [inp("(N, C) or (C)"), inp("(N, C) or (C)", "index", name="target", high="input0.shape[-1]")],
        [shape(2, 4), data([[3, 0, -1, 1], [1, 2, 3, -1]], "int64")], _loss(_multi_margin),
    )
    _entry(
        reg, "MultiLabelSoftMarginLoss", "loss", {},
        [inp("(N, C) or (C)"), inp("(N, C) or (C)", "binary", name="target")],
        [shape(3, 5), shape(3, 5)], _loss(_multi_margin),
    )
    _entry(
        reg, "CosineEmbeddingLoss", "loss", {},
        [inp("(N, D) or (D)", name="input1"), inp("(N, D) or (D)", name="input2"),
         inp("(N) or ()", "sign", name="target")],
        [shape(4, 6), shape(4, 6), shape(4)], _loss(_per_sample(2)),
        params={"margin": {"minimum": -1, "maximum": 1}},
    )
    _entry(
        reg, "MarginRankingLoss", "loss", {},
        [inp("(N) or ()", name="input1"), inp("(N) or ()", name="input2"), inp("(N) or ()", "sign", name="target")],
        [shape(5), shape(5), shape(5)], _loss(_margin_ranking),
    )
    triplet = [inp("(N, D) or (D)", name="anchor"), inp("(N, D) or (D)", name="positive"),
               inp("(N, D) or (D)", name="negative")]
    _entry(
        reg, "TripletMarginLoss", "loss", {}, triplet, [shape(4, 6)] * 3, _loss(_per_sample(3)),
        params={"p": {"maximum": None, "minimum": 0}, "margin": {"minimum": 0}},
    )
    _entry(
        reg, "TripletMarginWithDistanceLoss", "loss", {}, triplet, [shape(4, 6)] * 3, _loss(_per_sample(3)),
        params={"margin": {"minimum": 0, "exclusive_minimum": True}},
    )
    # CTC: log-probabilities over C classes (blank = 0) for T time steps; a valid alignment needs
    # targets without the blank and lengths that fit, so the example gives them as data.
    # (The example is a batch of one: see the note on engine.plan_request in the module docstring.)
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(6, 1, 4, generator=gen).log_softmax(2)
    _entry(
        reg, "CTCLoss", "loss", {},
        [inp("(T, N, C) or (T, C)", name="log_probs"),
         inp("(N, S) or (sum(target_lengths))", "index", name="targets", high="input0.shape[-1]"),
         inp("(N) or ()", "index", name="input_lengths", high="input0.shape[0]"),
         inp("(N) or ()", "index", name="target_lengths", high="input1.shape[-1]")],
        [data([[[round(v, 4) for v in row] for row in step] for step in log_probs.tolist()]),
         data([[1, 2, 2]], "int64"), data([6], "int64"), data([3], "int64")],
        _loss(_ctc), params={"blank": {"minimum": 0}},
    )
    _entry(
        reg, "AdaptiveLogSoftmaxWithLoss", "loss", {"in_features": 16, "n_classes": 10, "cutoffs": [4, 8]},
        [inp("(N, in_features) or (in_features)"), inp("(N) or ()", "index", name="target", high="n_classes")],
        [shape(3, 16), shape(3)], _adaptive_log_softmax, outputs=["output", "loss"],
        params={"n_classes": {"minimum": 2}, "cutoffs": {"minimum": 1}, "div_value": {"minimum": 0, "exclusive_minimum": True}},
    )
    _entry(
        reg, "LinearCrossEntropyLoss", "loss", {"in_features": 8, "num_classes": 5},
        [inp("(N, in_features) or (in_features)"),
         inp("(N) or () or (N, *out_features)", "index", name="target", high="num_classes")],
        [shape(4, 8), shape(4)], _loss(_linear_cross_entropy),
        params={"out_features": {"minimum": 1}},
    )


# ---------------------------------------------------------------------------------------------
# recurrent
# ---------------------------------------------------------------------------------------------


def _pack_lstm_state(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """LSTM/LSTMCell take their state as one tuple: (input, h_0, c_0) -> (input, (h_0, c_0))."""
    if len(args) == 3:
        return (args[0], (args[1], args[2]))
    if len(args) == 2 and isinstance(args[1], torch.Tensor):
        raise InvalidRequest(
            f"{type(module).__name__} takes its initial state as h_0 and c_0 together: give both or neither",
            field="inputs",
        )
    return None


def _check_indices(module: nn.Module, args: tuple[Any, ...]) -> None:
    """Embedding/EmbeddingBag: an index outside [0, num_embeddings) is the user's input, not a crash."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.device.type == "meta" or not x.numel() or x.is_floating_point():
        return None
    n = module.num_embeddings
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi >= n:
        raise InvalidRequest(
            f"{type(module).__name__}: input 0 holds the index {hi if hi >= n else lo}, but num_embeddings={n}, "
            f"so every index must be between 0 and {n - 1}",
            field="inputs[0]",
        )
    return None


def _hooked(cls: type, hook: Callable[..., Any]) -> Callable[..., nn.Module]:
    """Build the plain torch module, with a forward pre-hook (the class and its repr stay torch's)."""

    def build(**kwargs: Any) -> nn.Module:
        module = cls(**kwargs)
        module.register_forward_pre_hook(hook)
        return module

    build.__name__ = cls.__name__
    return build


def _rnn_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """output (L, N, D·H_out), h_n (D·num_layers, N, H_out), c_n (D·num_layers, N, H_cell)."""
    m = ctx.module
    lstm = isinstance(m, nn.LSTM)
    x = ctx.shape(0)
    rank = ctx.expect_rank((2, 3))
    batched = rank == 3
    if x[-1] != m.input_size:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be input_size={m.input_size}, got {x[-1]} "
            f"(input shape {fmt_shape(x)})"
        )
    if lstm and len(ctx.shapes) == 2:
        raise ctx.fail("takes its initial state as h_0 and c_0 together: give both or neither", 1)
    D = Sym("D", 2 if m.bidirectional else 1)
    proj = getattr(m, "proj_size", 0)
    h_out = Sym("proj_size", proj) if proj > 0 else Sym("hidden_size", m.hidden_size)
    if batched:
        N, L = (x[0], x[1]) if m.batch_first else (x[1], x[0])
        n_dim = [Dim("N", Sym("N", N))]
        time = [Dim("N", Sym("N", N)), Dim("L", Sym("L", L))] if m.batch_first else [Dim("L", Sym("L", L)), Dim("N", Sym("N", N))]
    else:
        n_dim = []
        time = [Dim("L", Sym("L", x[0]))]
    layers = Dim("D·num_layers", D * Sym("num_layers", m.num_layers))
    output = time + [Dim("D·H_out", D * h_out)]
    h_n = [layers] + n_dim + [Dim("H_out", h_out)]
    outs = [output, h_n]
    if lstm:
        outs.append([layers] + n_dim + [Dim("H_cell", Sym("hidden_size", m.hidden_size))])
    for i in range(1, len(ctx.shapes)):
        want = tuple(d.expr.int_value() for d in outs[i])
        if tuple(ctx.shape(i)) != want:
            name = ctx.spec.inputs[i].name
            conv = "(D·num_layers, N, H_out)" if i == 1 else "(D·num_layers, N, H_cell)"
            raise ctx.fail(
                f"expects {name} (input {i}) to have shape {conv} = {fmt_shape(want)}, got {fmt_shape(ctx.shape(i))}", i
            )
    return outs


def _cell_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """input (N, H_in) -> h' (N, H_out) (and c' (N, H_out) for LSTMCell)."""
    m = ctx.module
    x = ctx.shape(0)
    rank = ctx.expect_rank((1, 2))
    if x[-1] != m.input_size:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be input_size={m.input_size}, got {x[-1]} "
            f"(input shape {fmt_shape(x)})"
        )
    if isinstance(m, nn.LSTMCell) and len(ctx.shapes) == 2:
        raise ctx.fail("takes its initial state as h_0 and c_0 together: give both or neither", 1)
    state = ([Dim("N", Sym("N", x[0]))] if rank == 2 else []) + [Dim("H_out", Sym("hidden_size", m.hidden_size))]
    want = tuple(d.expr.int_value() for d in state)
    for i in range(1, len(ctx.shapes)):
        if tuple(ctx.shape(i)) != want:
            raise ctx.fail(
                f"expects {ctx.spec.inputs[i].name} (input {i}) to have shape (N, H_out) = {fmt_shape(want)}, "
                f"got {fmt_shape(ctx.shape(i))}",
                i,
            )
    return [state, list(state)] if isinstance(m, nn.LSTMCell) else [state]


def _rnn_params(cls: type, *, nonlinearity: bool = False, proj: bool = False) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {
        "input_size": {"type": "int", "required": True, "minimum": 1},
        "hidden_size": {"type": "int", "required": True, "minimum": 1},
        "num_layers": {"type": "int", "default": 1, "minimum": 1, "maximum": MAX_REPEATS},
    }
    if nonlinearity:
        params["nonlinearity"] = {"type": "str", "default": "tanh", "choices": ["tanh", "relu"]}
    params.update({
        "bias": {"type": "bool", "default": True},
        "batch_first": {"type": "bool", "default": False},
        "dropout": {"type": "float", "default": 0.0, "minimum": 0, "maximum": 1},
        "bidirectional": {"type": "bool", "default": False},
    })
    if proj:
        params["proj_size"] = {"type": "int", "default": 0, "minimum": 0}
    return _declared(cls, **params)


def register_recurrent(reg: Registry) -> None:
    seq = "(L, N, H_in) or (L, H_in)"
    state = "(D*num_layers, N, H_out) or (D*num_layers, H_out)"
    for name, extra in (("RNN", {"nonlinearity": True}), ("LSTM", {"proj": True}), ("GRU", {})):
        cls = getattr(nn, name)
        params = _rnn_params(cls, **extra)
        inputs = [inp(seq), inp(state, name="h_0", optional=True)]
        outputs = ["output", "h_n"]
        kw: dict[str, Any] = {}
        if name == "LSTM":
            inputs.append(inp("(D*num_layers, N, H_cell) or (D*num_layers, H_cell)", name="c_0", optional=True))
            outputs.append("c_n")
            kw["factory"] = _hooked(nn.LSTM, _pack_lstm_state)
        spec = _entry(
            reg, name, "recurrent", {"input_size": 10, "hidden_size": 20}, inputs, [shape(5, 3, 10)], _rnn_rule,
            outputs=outputs, params=params, order=list(params), **kw,
        )
        if name == "LSTM":
            spec.code_call = {3: "{0}, ({1}, {2})"}
    cell_state = "(N, H_out) or (H_out)"
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        inputs = [inp("(N, H_in) or (H_in)"), inp(cell_state, name="h_0", optional=True)]
        outputs = ["h_1"]
        kw = {}
        overrides: dict[str, dict[str, Any]] = {}
        if name == "LSTMCell":
            inputs.append(inp(cell_state, name="c_0", optional=True))
            outputs.append("c_1")
            kw["factory"] = _hooked(nn.LSTMCell, _pack_lstm_state)
        if name == "RNNCell":
            overrides["nonlinearity"] = {"choices": ["tanh", "relu"]}
        cell = _entry(
            reg, name, "recurrent", {"input_size": 10, "hidden_size": 20}, inputs, [shape(3, 10)], _cell_rule,
            outputs=outputs, params=overrides, **kw,
        )
        if name == "LSTMCell":
            cell.code_call = {3: "{0}, ({1}, {2})"}


# ---------------------------------------------------------------------------------------------
# attention and transformers
# ---------------------------------------------------------------------------------------------


def _seq_dims(x: Sequence[int], batch_first: bool, seq: str, feat: str) -> tuple[list[Sym], int | None, int]:
    """Named dims of a (seq, N, E) / (N, seq, E) / (seq, E) tensor, its batch size and length."""
    if len(x) == 3:
        if batch_first:
            return _syms(["N", seq, feat], x), x[0], x[1]
        return _syms([seq, "N", feat], x), x[1], x[0]
    return _syms([seq, feat], x), None, x[0]


def _mha_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """attn_output (L, N, E), attn_output_weights (N, L, S) (averaged over heads)."""
    m = ctx.module
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    rank = ctx.expect_rank((2, 3))
    for i in (1, 2):
        if len(ctx.shape(i)) != rank:
            raise ctx.fail(
                f"expects query, key and value of the same rank; query is {fmt_shape(q)}, "
                f"{ctx.spec.inputs[i].name} is {fmt_shape(ctx.shape(i))}",
                i,
            )
    for i, (s, arg) in enumerate(((q, "embed_dim"), (k, "kdim"), (v, "vdim"))):
        want = getattr(m, arg)
        if s[-1] != want:
            raise ctx.fail(
                f"expects the last dimension of {ctx.spec.inputs[i].name} (input {i}) to be {arg}={want}, "
                f"got {s[-1]} (shape {fmt_shape(s)})",
                i,
            )
    qd, n_q, L = _seq_dims(q, m.batch_first, "L", "E_q")
    _, n_k, S = _seq_dims(k, m.batch_first, "S", "E_k")
    _, n_v, S_v = _seq_dims(v, m.batch_first, "S", "E_v")
    if S != S_v or n_k != n_v:
        raise ctx.fail(f"expects key and value to share S and N, got {fmt_shape(k)} and {fmt_shape(v)}", 2)
    if n_q != n_k:
        raise ctx.fail(f"expects query and key to share the batch size N, got {fmt_shape(q)} and {fmt_shape(k)}", 1)
    if len(ctx.shapes) > 3:
        want = (n_k, S) if n_k is not None else (S,)
        if tuple(ctx.shape(3)) != want:
            raise ctx.fail(
                f"expects key_padding_mask (input 3) to have shape (N, S) = {fmt_shape(want)}, got {fmt_shape(ctx.shape(3))}", 3
            )
    out = [Dim(d.name if d.name != "E_q" else "E", d if d.name != "E_q" else Sym("embed_dim", m.embed_dim)) for d in qd]
    s_expr: Expr = Sym("S", S)
    if m.bias_k is not None:
        s_expr = s_expr + Sym("add_bias_kv", 1)
    if m.add_zero_attn:
        s_expr = s_expr + Sym("add_zero_attn", 1)
    weights = ([Dim("N", Sym("N", n_q))] if n_q is not None else []) + [Dim("L", Sym("L", L)), Dim("S", s_expr)]
    return [out, weights]


def _d_model(ctx: ShapeContext, layer: nn.Module) -> int:
    attn = getattr(layer, "self_attn", None)
    if not isinstance(attn, nn.MultiheadAttention):
        want = "TransformerDecoderLayer" if "Decoder" in ctx.type else "TransformerEncoderLayer"
        raise ShapeMismatch(
            f"{ctx.type} expects its layer config to be a {want}; got {type(layer).__name__}",
            field="layer",
        )
    return attn.embed_dim


def _check_seq(ctx: ShapeContext, i: int, d_model: int, batch_first: bool, seq: str) -> tuple[list[Sym], int | None, int]:
    x = ctx.shape(i)
    if len(x) not in (2, 3):
        conv = ctx.spec.inputs[i].convention
        raise ctx.fail(f"expects {ctx.spec.inputs[i].name} (input {i}) to be {conv}, got {len(x)}-D shape {fmt_shape(x)}", i)
    if x[-1] != d_model:
        raise ctx.fail(
            f"expects the last dimension of {ctx.spec.inputs[i].name} (input {i}) to be d_model={d_model}, "
            f"got {x[-1]} (shape {fmt_shape(x)})",
            i,
        )
    return _seq_dims(x, batch_first, seq, "E")


def _check_norm(ctx: ShapeContext, norm: nn.Module | None, d_model: int) -> None:
    if isinstance(norm, (nn.LayerNorm, nn.RMSNorm)) and tuple(norm.normalized_shape) != (d_model,):
        raise ShapeMismatch(
            f"{ctx.type}: norm normalises {list(norm.normalized_shape)} but the layers output d_model={d_model} "
            f"features; use normalized_shape=[{d_model}]",
            field="layer.norm",
        )


def _check_masks(ctx: ShapeContext, first: int, wants: list[tuple[int, ...]]) -> None:
    for j, want in enumerate(wants):
        i = first + j
        if i < len(ctx.shapes) and tuple(ctx.shape(i)) != tuple(want):
            got = ctx.shape(i)
            # attention masks may also be (N·num_heads, L, S)
            if len(got) == 3 and len(want) == 2 and tuple(got[1:]) == tuple(want):
                continue
            raise ctx.fail(
                f"expects {ctx.spec.inputs[i].name} (input {i}) to have shape {ctx.spec.inputs[i].convention} = "
                f"{fmt_shape(want)}, got {fmt_shape(got)}",
                i,
            )


def _with_e(dims: list[Sym], d_model: int) -> list[Dim]:
    return [Dim(d.name, Sym("d_model", d_model) if d.name == "E" else d) for d in dims]


def _encoder_layer_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Output: the shape of src, (S, N, E)."""
    m = ctx.module
    if isinstance(m, nn.TransformerEncoder):
        layer = m.layers[0]
        _check_norm(ctx, m.norm, _d_model(ctx, layer))
    else:
        layer = m
    e = _d_model(ctx, layer)
    dims, n, s = _check_seq(ctx, 0, e, layer.self_attn.batch_first, "S")
    _check_masks(ctx, 1, [(s, s), (n, s) if n is not None else (s,)])
    return [_with_e(dims, e)]


def _decoder_layer_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Output: the shape of tgt, (T, N, E)."""
    m = ctx.module
    if isinstance(m, nn.TransformerDecoder):
        layer = m.layers[0]
        _check_norm(ctx, m.norm, _d_model(ctx, layer))
    else:
        layer = m
    e = _d_model(ctx, layer)
    bf = layer.self_attn.batch_first
    dims, n_t, t = _check_seq(ctx, 0, e, bf, "T")
    _, n_s, s = _check_seq(ctx, 1, e, bf, "S")
    if n_t != n_s:
        raise ctx.fail(f"expects tgt and memory to share the batch size N, got {fmt_shape(ctx.shape(0))} and {fmt_shape(ctx.shape(1))}", 1)
    pad = (lambda length: (n_t, length) if n_t is not None else (length,))
    _check_masks(ctx, 2, [(t, t), (t, s), pad(t), pad(s)])
    return [_with_e(dims, e)]


def _transformer_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Output: the shape of tgt, (T, N, E); src (S, N, E) goes through the encoder."""
    m = ctx.module
    e = m.d_model
    _, n_s, s = _check_seq(ctx, 0, e, m.batch_first, "S")
    dims, n_t, t = _check_seq(ctx, 1, e, m.batch_first, "T")
    if len(ctx.shape(0)) != len(ctx.shape(1)):
        raise ctx.fail(f"expects src and tgt of the same rank, got {fmt_shape(ctx.shape(0))} and {fmt_shape(ctx.shape(1))}", 1)
    if n_s != n_t:
        raise ctx.fail(f"expects src and tgt to share the batch size N, got {fmt_shape(ctx.shape(0))} and {fmt_shape(ctx.shape(1))}", 1)
    pad = (lambda length: (n_s, length) if n_s is not None else (length,))
    _check_masks(ctx, 2, [(s, s), (t, t), (t, s), pad(s), pad(t), pad(s)])
    return [_with_e(dims, e)]


def register_attention(reg: Registry) -> None:
    params = _declared(
        nn.MultiheadAttention,
        embed_dim={"type": "int", "required": True, "minimum": 1},
        num_heads={"type": "int", "required": True, "minimum": 1},
        kdim={"type": "int", "nullable": True, "minimum": 1},
        vdim={"type": "int", "nullable": True, "minimum": 1},
    )
    _entry(
        reg, "MultiheadAttention", "attention", {"embed_dim": 8, "num_heads": 2},
        [inp("(L, N, E_q) or (L, E_q)", name="query"), inp("(S, N, E_k) or (S, E_k)", name="key"),
         inp("(S, N, E_v) or (S, E_v)", name="value"),
         inp("(N, S) or (S)", "binary", name="key_padding_mask", optional=True)],
        [shape(4, 2, 8), shape(5, 2, 8), shape(5, 2, 8)], _mha_rule,
        outputs=["attn_output", "attn_output_weights"], params=params,
    )


def register_transformer(reg: Registry) -> None:
    layer_args = {"d_model": 16, "nhead": 2, "dim_feedforward": 32, "batch_first": True}
    common = {"activation": {"choices": ["relu", "gelu"], "default": "relu"}}
    src = "(N, S, E) with batch_first=True, (S, N, E) otherwise, or (S, E)"
    tgt = "(N, T, E) with batch_first=True, (T, N, E) otherwise, or (T, E)"
    mask = lambda conv, name: inp(conv, "binary", name=name, optional=True)  # noqa: E731
    enc_masks = [mask("(S, S)", "src_mask"), mask("(N, S)", "src_key_padding_mask")]
    dec_masks = [mask("(T, T)", "tgt_mask"), mask("(T, S)", "memory_mask"),
                 mask("(N, T)", "tgt_key_padding_mask"), mask("(N, S)", "memory_key_padding_mask")]
    _entry(
        reg, "TransformerEncoderLayer", "transformer", layer_args,
        [inp(src, name="src"), *enc_masks], [shape(2, 5, 16)], _encoder_layer_rule, params=common,
    )
    _entry(
        reg, "TransformerDecoderLayer", "transformer", layer_args,
        [inp(tgt, name="tgt"), inp(src, name="memory"), *dec_masks], [shape(2, 4, 16), shape(2, 5, 16)],
        _decoder_layer_rule, params=common,
    )
    norm = {"type": "layer", "nullable": True,
            "doc": "the layer normalization component (optional): a nested config such as "
                   "{\"type\": \"LayerNorm\", \"normalized_shape\": [d_model]}"}
    _entry(
        reg, "TransformerEncoder", "transformer",
        {"encoder_layer": {"type": "TransformerEncoderLayer", **layer_args}, "num_layers": 2,
         "norm": {"type": "LayerNorm", "normalized_shape": [16]}},
        [inp(src, name="src"), mask("(S, S)", "mask"), mask("(N, S)", "src_key_padding_mask")],
        [shape(2, 5, 16)], _encoder_layer_rule,
        params={
            "encoder_layer": {"type": "layer", "required": True,
                              "doc": "a TransformerEncoderLayer config, cloned num_layers times"},
            "norm": norm,
        },
    )
    _entry(
        reg, "TransformerDecoder", "transformer",
        {"decoder_layer": {"type": "TransformerDecoderLayer", **layer_args}, "num_layers": 2,
         "norm": {"type": "LayerNorm", "normalized_shape": [16]}},
        [inp(tgt, name="tgt"), inp(src, name="memory"), *dec_masks], [shape(2, 4, 16), shape(2, 5, 16)],
        _decoder_layer_rule,
        params={
            "decoder_layer": {"type": "layer", "required": True,
                              "doc": "a TransformerDecoderLayer config, cloned num_layers times"},
            "norm": norm,
        },
    )
    _entry(
        reg, "Transformer", "transformer",
        {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 32,
         "batch_first": True},
        [inp(src, name="src"), inp(tgt, name="tgt"), mask("(S, S)", "src_mask"), mask("(T, T)", "tgt_mask"),
         mask("(T, S)", "memory_mask"), mask("(N, S)", "src_key_padding_mask"),
         mask("(N, T)", "tgt_key_padding_mask"), mask("(N, S)", "memory_key_padding_mask")],
        [shape(2, 5, 16), shape(2, 4, 16)], _transformer_rule,
        params={
            **common,
            "custom_encoder": {"type": "layer", "nullable": True,
                               "doc": "custom encoder (default=None): a nested config, e.g. a TransformerEncoder"},
            "custom_decoder": {"type": "layer", "nullable": True,
                               "doc": "custom decoder (default=None): a nested config, e.g. a TransformerDecoder"},
        },
    )


# ---------------------------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------------------------


def _embedding_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Input (*) of indices -> output (*, H), H = embedding_dim."""
    x = ctx.shape(0)
    dims = _syms(_generic_names(len(x), None), x)
    return [_keep(dims) + [Dim("H", Sym("embedding_dim", ctx.module.embedding_dim))]]


def _embedding_bag_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Input (B, N) bags, or (N) with offsets (B) -> output (B, embedding_dim)."""
    m = ctx.module
    x = ctx.shape(0)
    h = Dim("H", Sym("embedding_dim", m.embedding_dim))
    if len(x) == 2:
        if len(ctx.shapes) > 1:
            raise ctx.fail("takes offsets only with a 1-D input; a 2-D input (B, N) is already B bags of N", 1)
        out = [Dim("B", Sym("B", x[0])), h]
        want = x
    elif len(x) == 1:
        if len(ctx.shapes) < 2:
            raise ctx.fail(
                "needs offsets (input 1) with a 1-D input: the start of each bag in it (or give a 2-D input (B, N))"
            )
        offsets = ctx.shape(1)
        if len(offsets) != 1:
            raise ctx.fail(f"expects offsets (input 1) to be 1-D (B), got {fmt_shape(offsets)}", 1)
        b: Expr = Sym("len(offsets)", offsets[0])
        if m.include_last_offset:
            b = b - 1
        out = [Dim("B", b), h]
        want = x
    else:
        raise ctx.fail(f"expects input 0 to be (B, N) or (N), got {len(x)}-D shape {fmt_shape(x)}")
    if len(ctx.shapes) > 2 and tuple(ctx.shape(2)) != tuple(want):
        raise ctx.fail(
            f"expects per_sample_weights (input 2) to have the input's shape {fmt_shape(want)}, "
            f"got {fmt_shape(ctx.shape(2))}",
            2,
        )
    return [out]


def register_embedding(reg: Registry) -> None:
    _entry(
        reg, "Embedding", "embedding", {"num_embeddings": 10, "embedding_dim": 3},
        [inp("(*)", "index", high="num_embeddings")], [shape(2, 4)], _embedding_rule,
        params={"max_norm": {"minimum": 0, "exclusive_minimum": True}},
        factory=_hooked(nn.Embedding, _check_indices),
    )
    _entry(
        reg, "EmbeddingBag", "embedding", {"num_embeddings": 10, "embedding_dim": 3, "mode": "mean"},
        [inp("(B, N) or (N)", "index", high="num_embeddings"),
         inp("(B)", "index", name="offsets", high="input0.shape[0]", optional=True),
         inp("(B, N) or (N)", "uniform", name="per_sample_weights", optional=True)],
        [shape(2, 4)], _embedding_bag_rule,
        params={"mode": {"choices": ["sum", "mean", "max"]}, "max_norm": {"minimum": 0, "exclusive_minimum": True}},
        factory=_hooked(nn.EmbeddingBag, _check_indices),
    )


# ---------------------------------------------------------------------------------------------
# reshaping: flatten, fold, pixel shuffle, channel shuffle, upsampling
# ---------------------------------------------------------------------------------------------


def _axis(ctx: ShapeContext, dim: int, rank: int, arg: str) -> int:
    if not -rank <= dim < rank:
        raise ctx.fail(
            f"{arg}={dim} is out of range for input 0 with {rank} dimension(s) {fmt_shape(ctx.shape(0))} "
            f"(allowed: {-rank} to {rank - 1})"
        )
    return dim % rank


def _flatten_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(*, S_start, …, S_end, *) -> (*, S_start·…·S_end, *)."""
    x = ctx.shape(0)
    start, end = ctx.arg("start_dim"), ctx.arg("end_dim")
    if len(x) == 0:
        if start in (0, -1) and end in (0, -1):
            return [[Dim("d0", Const(1))]]
        raise ctx.fail(f"cannot flatten a scalar from start_dim={start}; use start_dim=0")
    s, e = _axis(ctx, start, len(x), "start_dim"), _axis(ctx, end, len(x), "end_dim")
    if s > e:
        raise ctx.fail(f"start_dim={start} comes after end_dim={end} for a {len(x)}-D input")
    dims = _syms(_generic_names(len(x), None), x)
    merged = Dim(f"d{s}" if s == e else f"d{s}…d{e}", prod(*dims[s : e + 1]) if e > s else dims[s])
    return [_keep(dims[:s]) + [merged] + _keep(dims[e + 1 :])]


def _unflatten_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(*, S_dim, *) -> (*, U_1, …, U_n, *) with U_1·…·U_n = S_dim (one U may be -1: inferred)."""
    x = ctx.shape(0)
    axis = _axis(ctx, ctx.arg("dim"), len(x), "dim")
    sizes = list(ctx.arg("unflattened_size"))
    dims = _syms(_generic_names(len(x), None), x)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1 or any(s < -1 or s == 0 for s in sizes):
        raise ShapeMismatch(f"{ctx.type}: unflattened_size may hold positive sizes and at most one -1, got {sizes}",
                            field="layer.unflattened_size")
    new: list[Dim] = []
    for k, s in enumerate(sizes):
        if s == -1:
            if x[axis] % known:
                raise ctx.fail(f"cannot infer the -1 in unflattened_size={sizes}: {x[axis]} is not divisible by {known}")
            new.append(Dim(f"U{k}", floor_div(dims[axis], Sym("∏(others)", known))))
        else:
            new.append(Dim(f"U{k}", Sym(f"unflattened_size[{k}]", s)))
    if -1 not in sizes and known != x[axis]:
        raise ctx.fail(
            f"expects dimension {ctx.arg('dim')} of input 0 to hold {' × '.join(map(str, sizes))} = {known} "
            f"elements, got {x[axis]} (input shape {fmt_shape(x)})"
        )
    return [_keep(dims[:axis]) + new + _keep(dims[axis + 1 :])]


def _window_counts(ctx: ShapeContext, spatial: Sequence[Expr], n: int) -> list[Expr]:
    k = _sym_list("kernel_size", ctx.arg("kernel_size"), n)
    d = _sym_list("dilation", ctx.arg("dilation"), n)
    p = _sym_list("padding", ctx.arg("padding"), n)
    s = _sym_list("stride", ctx.arg("stride"), n)
    return [floor_div(spatial[j] + 2 * p[j] - d[j] * (k[j] - 1) - 1, s[j]) + 1 for j in range(n)]


def _unfold_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(N, C, H, W) -> (N, C·∏(kernel_size), L), L = ∏_d ⌊(spatial_d + 2·padding − dilation·(k − 1) − 1)/stride⌋ + 1."""
    rank = ctx.expect_rank((3, 4))
    x = ctx.shape(0)
    batched = rank == 4
    names = (["N"] if batched else []) + ["C", "H_in", "W_in"]
    dims = _syms(names, x)
    counts = _window_counts(ctx, dims[-2:], 2)
    for j, c in enumerate(counts):
        if c.int_value() < 1:
            raise ctx.fail(f"finds no complete block along {names[-2 + j]}: the kernel is larger than the padded input {fmt_shape(x)}")
    k = _sym_list("kernel_size", ctx.arg("kernel_size"), 2)
    out = ([Dim("N", dims[0])] if batched else []) + [
        Dim("C×∏(kernel_size)", dims[-3] * k[0] * k[1]), Dim("L", prod(*counts))
    ]
    return [out]


def _fold_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(N, C·∏(kernel_size), L) -> (N, C, output_size[0], output_size[1])."""
    rank = ctx.expect_rank((2, 3))
    x = ctx.shape(0)
    batched = rank == 3
    dims = _syms((["N"] if batched else []) + ["C×∏(kernel_size)", "L"], x)
    k = _sym_list("kernel_size", ctx.arg("kernel_size"), 2)
    kk = k[0].v * k[1].v
    if x[-2] % kk:
        raise ctx.fail(
            f"expects dimension {rank - 2} of input 0 to be C × ∏(kernel_size) = C × {kk}, got {x[-2]} "
            f"(not divisible by {kk})"
        )
    out_size = _sym_list("output_size", ctx.arg("output_size"), 2)
    blocks = prod(*_window_counts(ctx, out_size, 2)).int_value()
    if x[-1] != blocks:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be L = {blocks}, the number of blocks that fit in "
            f"output_size={[s.v for s in out_size]}; got {x[-1]}"
        )
    return [([Dim("N", dims[0])] if batched else []) + [
        Dim("C", floor_div(dims[-2], prod(*k))), Dim("H_out", out_size[0]), Dim("W_out", out_size[1])
    ]]


def _pixel_shuffle_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(*, C·r², H, W) -> (*, C, H·r, W·r) for PixelShuffle; the inverse for PixelUnshuffle."""
    x = ctx.shape(0)
    if len(x) < 3:
        raise ctx.fail(f"expects input 0 to be (*, C_in, H_in, W_in) with at least 3 dimensions, got {fmt_shape(x)}")
    lead = _syms(_generic_names(len(x) - 3), x[:-3])
    c, h, w = _syms(["C_in", "H_in", "W_in"], x[-3:])
    if ctx.type == "PixelShuffle":
        r = Sym("upscale_factor", ctx.arg("upscale_factor"))
        if c.v % (r.v * r.v):
            raise ctx.fail(f"expects C_in={c.v} to be divisible by upscale_factor² = {r.v * r.v}")
        out = [Dim("C_out", floor_div(c, r * r)), Dim("H_out", h * r), Dim("W_out", w * r)]
    else:
        r = Sym("downscale_factor", ctx.arg("downscale_factor"))
        for name, d in (("H_in", h), ("W_in", w)):
            if d.v % r.v:
                raise ctx.fail(f"expects {name}={d.v} to be divisible by downscale_factor={r.v}")
        out = [Dim("C_out", c * r * r), Dim("H_out", floor_div(h, r)), Dim("W_out", floor_div(w, r))]
    return [_keep(lead) + out]


def _channel_shuffle_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(N, C, *) -> (N, C, *): the channels are regrouped, the shape is unchanged."""
    x = ctx.shape(0)
    if len(x) < 3:
        raise ctx.fail(f"expects input 0 to be (N, C, *) with more than 2 dimensions, got {fmt_shape(x)}")
    groups = ctx.arg("groups")
    if x[1] % groups:
        raise ctx.fail(f"expects the channels C={x[1]} to be divisible by groups={groups}")
    return [_keep(_syms(["N", "C"] + [f"d{k}" for k in range(2, len(x))], x))]


_UPSAMPLE_RANKS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def _upsample_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """out = size, or ⌊in·scale_factor⌋ for each spatial dimension."""
    m = ctx.module
    x = ctx.shape(0)
    ranks = (4,) if ctx.type.startswith("Upsampling") else (3, 4, 5)
    rank = ctx.expect_rank(ranks)
    mode = m.mode
    if mode in _UPSAMPLE_RANKS and rank != _UPSAMPLE_RANKS[mode]:
        need = _UPSAMPLE_RANKS[mode]
        raise ctx.fail(f"with mode={mode!r} expects a {need}-D input {('(N, C, W)', '(N, C, H, W)', '(N, C, D, H, W)')[need - 3]}, got {fmt_shape(x)}")
    n = rank - 2
    letters = {1: ["W"], 2: ["H", "W"], 3: ["D", "H", "W"]}[n]
    dims = _syms(["N", "C"] + [f"{s}_in" for s in letters], x)
    out = _keep(dims[:2])
    if m.size is not None:
        sizes = _pairs(m.size, n)
        if len(sizes) != n:
            raise ctx.fail(f"has size={list(sizes)} for {len(sizes)} spatial dimensions, but input 0 {fmt_shape(x)} has {n}")
        for j in range(n):
            out.append(Dim(f"{letters[j]}_out", Sym("size" if n == 1 or not isinstance(m.size, (tuple, list)) else f"size[{j}]", int(sizes[j]))))
    elif m.scale_factor is not None:
        factors = _pairs(m.scale_factor, n)
        if len(factors) != n:
            raise ctx.fail(f"has scale_factor={list(factors)} for {len(factors)} spatial dimensions, but input 0 {fmt_shape(x)} has {n}")
        for j in range(n):
            name = "scale_factor" if not isinstance(m.scale_factor, (tuple, list)) else f"scale_factor[{j}]"
            expr = ScaledFloor(dims[2 + j], name, float(factors[j]))
            if expr.int_value() < 1:
                raise ctx.fail(f"would make {letters[j]}_out = {expr.text(True)} = {expr.int_value()}; use a larger scale_factor")
            out.append(Dim(f"{letters[j]}_out", expr))
    else:
        raise ShapeMismatch(f"{ctx.type} needs size or scale_factor", field="layer.size")
    return [out]


def register_shape(reg: Registry) -> None:
    _entry(reg, "Flatten", "shape", {}, [inp("(*, S_start, *, S_end, *)")], [shape(2, 3, 4, 5)], _flatten_rule)
    _entry(
        reg, "Unflatten", "shape", {"dim": 1, "unflattened_size": [2, 5]}, [inp("(*, S_dim, *)")], [shape(3, 10)],
        _unflatten_rule,
    )
    _entry(
        reg, "Unfold", "shape", {"kernel_size": 2}, [inp("(N, C, H_in, W_in) or (C, H_in, W_in)")], [shape(1, 2, 4, 4)],
        _unfold_rule,
        params={k: {"length": 2} for k in ("kernel_size", "dilation", "padding", "stride")},
    )
    _entry(
        reg, "Fold", "shape", {"output_size": [4, 4], "kernel_size": 2},
        [inp("(N, C×∏(kernel_size), L) or (C×∏(kernel_size), L)")], [shape(1, 8, 9)], _fold_rule,
        params={k: {"length": 2} for k in ("output_size", "kernel_size", "dilation", "padding", "stride")},
    )
    _entry(
        reg, "PixelShuffle", "shape", {"upscale_factor": 2}, [inp("(*, C_in, H_in, W_in)")], [shape(1, 8, 3, 3)],
        _pixel_shuffle_rule,
    )
    _entry(
        reg, "PixelUnshuffle", "shape", {"downscale_factor": 2}, [inp("(*, C_in, H_in, W_in)")], [shape(1, 2, 4, 4)],
        _pixel_shuffle_rule,
    )
    _entry(reg, "ChannelShuffle", "shape", {"groups": 2}, [inp("(N, C, *)")], [shape(1, 4, 2, 2)], _channel_shuffle_rule)
    modes = ["nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"]
    factor = {"scale_factor": {"minimum": 0, "exclusive_minimum": True}}
    _entry(
        reg, "Upsample", "shape", {"scale_factor": 2, "mode": "nearest"},
        [inp("(N, C, W_in) or (N, C, H_in, W_in) or (N, C, D_in, H_in, W_in)")], [shape(1, 1, 2, 3)], _upsample_rule,
        params={"mode": {"choices": modes}, **factor},
    )
    for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
        _entry(
            reg, name, "shape", {"scale_factor": 2}, [inp("(N, C, H_in, W_in)")], [shape(1, 1, 2, 3)], _upsample_rule,
            params=factor,
        )


# ---------------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------------

# Plain conventions (no "or" alternatives): rules.padding_layer names dimensions from them, and
# rules.convention_names reads an unbatched input as the convention without its leading N.
_PAD_CONVENTION = {1: "(N, C, W_in)", 2: "(N, C, H_in, W_in)", 3: "(N, C, D_in, H_in, W_in)"}
_PAD_EXAMPLE = {1: ([1, 2, 4], 2), 2: ([1, 1, 3, 3], 1), 3: ([1, 1, 2, 2, 2], 1)}


def _padding_rule(n: int, limit: str | None) -> Rule:
    """Each of the last n dimensions grows by its (before, after) padding."""
    base = rules.padding_layer(n)

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        rank = ctx.expect_rank((n + 1, n + 2))
        if limit:
            pads = list(ctx.arg("padding"))
            x = ctx.shape(0)
            letters = {1: ["W"], 2: ["H", "W"], 3: ["D", "H", "W"]}[n]
            for j in range(n):
                size = x[rank - n + j]
                back = n - 1 - j
                for pad in (pads[2 * back], pads[2 * back + 1]):
                    too_big = pad >= size if limit == "reflect" else pad > size
                    if too_big:
                        bound = "smaller than" if limit == "reflect" else "at most"
                        raise ctx.fail(
                            f"needs each padding to be {bound} the size it pads: padding {pad} along "
                            f"{letters[j]}_in = {size} (input shape {fmt_shape(x)})"
                        )
        return base(ctx)

    return rule


def register_padding(reg: Registry) -> None:
    for n in (1, 2, 3):
        example, pad = _PAD_EXAMPLE[n]
        for kind, limit in (("Zero", None), ("Constant", None), ("Reflection", "reflect"),
                            ("Replication", None), ("Circular", "circular")):
            args: dict[str, Any] = {"padding": pad}
            if kind == "Constant":
                args["value"] = 3.5
            _entry(
                reg, f"{kind}Pad{n}d", "padding", args, [inp(_PAD_CONVENTION[n])], [shape(*example)],
                _padding_rule(n, limit),
            )


# ---------------------------------------------------------------------------------------------
# distances
# ---------------------------------------------------------------------------------------------


def _cosine_similarity_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """x1, x2 (*1, D, *2) (broadcastable) -> (*1, *2): dimension dim is reduced."""
    dims = _broadcast(ctx, [0, 1])
    dim = ctx.arg("dim")
    if not dims:
        raise ctx.fail("expects inputs with at least one dimension, got scalars")
    axis = _axis(ctx, dim, len(dims), "dim")
    return [_keep(dims[:axis] + dims[axis + 1 :])]


def _pairwise_distance_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """x1, x2 (N, D) or (D) -> (N) or (); with keepdim (N, 1) or (1)."""
    dims = _broadcast(ctx, [0, 1])
    if not dims:
        raise ctx.fail("expects inputs with at least one dimension (N, D) or (D), got scalars")
    out = _keep(dims[:-1])
    if ctx.arg("keepdim"):
        out.append(Dim("1", Const(1)))
    return [out]


def register_distance(reg: Registry) -> None:
    _entry(
        reg, "CosineSimilarity", "distance", {"dim": 1},
        [inp("(*1, D, *2)", name="x1"), inp("(*1, D, *2)", name="x2")], [shape(4, 8), shape(4, 8)],
        _cosine_similarity_rule,
    )
    _entry(
        reg, "PairwiseDistance", "distance", {},
        [inp("(N, D) or (D)", name="x1"), inp("(N, D) or (D)", name="x2")], [shape(4, 8), shape(4, 8)],
        _pairwise_distance_rule, params={"p": {"minimum": 0, "maximum": None}},
    )


# ---------------------------------------------------------------------------------------------
# fractional max pooling, max unpooling
# ---------------------------------------------------------------------------------------------

_POOL_CONVENTION = {1: "(N, C, L_in) or (C, L_in)", 2: "(N, C, H_in, W_in) or (C, H_in, W_in)",
                    3: "(N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)"}
_LETTERS = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}


def _fractional_rule(n: int) -> Rule:
    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        """out = output_size, or ⌊in·output_ratio⌋; windows of kernel_size start at pseudo-random steps."""
        m = ctx.module
        rank = ctx.expect_rank((n + 1, n + 2))
        x = ctx.shape(0)
        batched = rank == n + 2
        dims = _syms((["N"] if batched else []) + ["C"] + [f"{s}_in" for s in _LETTERS[n]], x)
        spatial = dims[-n:]
        k = _pairs(m.kernel_size, n)
        out: list[Dim] = []
        for j in range(n):
            if m.output_size is not None:
                sizes = _pairs(m.output_size, n)
                expr: Expr = Sym(f"output_size[{j}]", int(sizes[j]))
            else:
                ratios = _pairs(m.output_ratio, n)
                expr = ScaledFloor(spatial[j], f"output_ratio[{j}]", float(ratios[j]))
            value = expr.int_value()
            if value < 1 or value + k[j] - 1 > spatial[j].v:
                raise ctx.fail(
                    f"needs output size + kernel_size − 1 <= input size along {_LETTERS[n][j]}: "
                    f"{value} + {k[j]} − 1 > {spatial[j].v} (input shape {fmt_shape(x)})"
                    if value >= 1 else f"would have {_LETTERS[n][j]}_out = {value}; use a larger output_ratio"
                )
            out.append(Dim(f"{_LETTERS[n][j]}_out", expr))
        result = _keep(dims[:-n]) + out
        return [result, list(result)] if m.return_indices else [result]

    return rule


def _unpool_rule(n: int) -> Rule:
    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        """out = (in − 1)·stride − 2·padding + kernel_size (the size MaxPool was applied to)."""
        rank = ctx.expect_rank((n + 1, n + 2))
        x = ctx.shape(0)
        if len(ctx.shapes) > 1 and tuple(ctx.shape(1)) != tuple(x):
            raise ctx.fail(
                f"expects indices (input 1) to have the input's shape {fmt_shape(x)} (as MaxPool{n}d returned "
                f"them), got {fmt_shape(ctx.shape(1))}",
                1,
            )
        dims = _syms((["N"] if rank == n + 2 else []) + ["C"] + [f"{s}_in" for s in _LETTERS[n]], x)
        k = _sym_list("kernel_size", ctx.arg("kernel_size"), n)
        s = _sym_list("stride", ctx.arg("stride"), n)
        p = _sym_list("padding", ctx.arg("padding"), n)
        out = [Dim(f"{_LETTERS[n][j]}_out", (dims[-n + j] - 1) * s[j] - 2 * p[j] + k[j]) for j in range(n)]
        for d in out:
            if d.expr.int_value() < 1:
                raise ctx.fail(f"would have {d.name} = {d.expr.text(True)} = {d.expr.int_value()}")
        return [_keep(dims[:-n]) + out]

    return rule


def _unpool_example(n: int) -> list[dict[str, Any]]:
    """A MaxPool{n}d(2) output and its indices: what MaxUnpool{n}d is made to invert."""
    gen = torch.Generator().manual_seed(0)
    size = {1: (1, 1, 6), 2: (1, 1, 4, 4), 3: (1, 1, 4, 4, 4)}[n]
    x = torch.randn(size, generator=gen).mul(100).round().div(100)
    pooled, indices = getattr(torch.nn.functional, f"max_pool{n}d")(x, 2, return_indices=True)
    return [data(pooled.tolist()), data(indices.tolist(), "int64")]


def register_pool(reg: Registry) -> None:
    for n in (2, 3):
        example = shape(1, 2, 6, 6) if n == 2 else shape(1, 2, 5, 5, 5)
        _entry(
            reg, f"FractionalMaxPool{n}d", "pool", {"kernel_size": 2, "output_size": 3},
            [inp(_POOL_CONVENTION[n])], [example], _fractional_rule(n), outputs=["output", "indices"],
            params={"output_ratio": {"minimum": 0, "exclusive_minimum": True, "maximum": 1}, "output_size": {"minimum": 1}},
        )
    for n in (1, 2, 3):
        _entry(
            reg, f"MaxUnpool{n}d", "pool", {"kernel_size": 2},
            [inp(_POOL_CONVENTION[n]), inp(_POOL_CONVENTION[n], "index", name="indices")],
            _unpool_example(n), _unpool_rule(n),
        )


def register_all(reg: Registry) -> None:
    register_loss(reg)
    register_recurrent(reg)
    register_attention(reg)
    register_transformer(reg)
    register_embedding(reg)
    register_shape(reg)
    register_padding(reg)
    register_distance(reg)
    register_pool(reg)
