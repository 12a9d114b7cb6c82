"""Loss functions: a scalar for reduction 'mean'/'sum', the per-element shape for 'none'."""

from __future__ import annotations

from collections.abc import Callable

import torch

from app.core.catalog import guards, memory
from app.core.catalog.entries import data, hooked, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
    generic_names,
    keep,
    sym_list,
    syms,
)
from app.core.shapes.expr import Dim, Sym
from app.core.shapes.rules import (
    broadcast,
    loss,
    same_shape,
)

_POINTWISE = "(*)"


def _pointwise_same(ctx: ShapeContext) -> list[Dim]:
    """Output ('none'): the input's shape; target must have the input's shape."""
    same_shape(ctx, 0, 1)
    return keep(syms(generic_names(len(ctx.shape(0)), None), ctx.shape(0)))


def _pointwise_broadcast(ctx: ShapeContext) -> list[Dim]:
    """Output ('none'): the broadcast shape of input and target (normally both the same)."""
    return keep(broadcast(ctx, range(len(ctx.shapes))))


def _gaussian_nll(ctx: ShapeContext) -> list[Dim]:
    """Output ('none'): the broadcast shape of input, target and var ((N, *) var may drop its last dim)."""
    x, var = ctx.shape(0), ctx.shape(2)
    if x and tuple(var) == tuple(x[:-1]):  # one variance per sample: torch unsqueezes it
        var = tuple(var) + (1,)
    return keep(broadcast(ctx, [0, 1, 2], [x, ctx.shape(1), var]))


def _class_targets(probabilities: bool) -> Callable[[ShapeContext], list[Dim]]:
    def per_element(ctx: ShapeContext) -> list[Dim]:
        """Input (N, C, d_1, …) with target (N, d_1, …) of class indices -> output ('none') (N, d_1, …)."""
        x, t = ctx.shape(0), ctx.shape(1)
        if len(x) == 0:
            raise ctx.fail("expects input 0 to be (N, C), (C) or (N, C, d_1, ...); got a scalar")
        names = ["C"] if len(x) == 1 else ["N", "C"] + [f"d{k}" for k in range(1, len(x) - 1)]
        dims = syms(names, x)
        rest = [d for d in dims if d.name != "C"]
        want = tuple(d.v for d in rest)
        if tuple(t) == want:
            return keep(rest)
        if probabilities and tuple(t) == tuple(x):
            return keep(rest)
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
            same_shape(ctx, 0, i)
        names = ["N"] + [f"d{k}" for k in range(1, len(x) - 1)] + ["D"] if len(x) > 1 else ["D"]
        dims = syms(names, x)
        out = dims[:-1]
        if len(ctx.shapes) > n_inputs_same:  # a target with one entry per sample
            t = ctx.shape(n_inputs_same)
            if tuple(t) != tuple(d.v for d in out):
                raise ctx.fail(
                    f"expects target (input {n_inputs_same}) to have shape {fmt_shape([d.v for d in out])} "
                    f"(one entry per sample), got {fmt_shape(t)}",
                    n_inputs_same,
                )
        return keep(out)

    return per_element


def _multi_margin(ctx: ShapeContext) -> list[Dim]:
    """Input (N, C) with target (N) -> output ('none') (N); unbatched (C), () -> ()."""
    x, t = ctx.shape(0), ctx.shape(1)
    if len(x) not in (1, 2):
        raise ctx.fail(f"expects input 0 to be (N, C) or (C), got {len(x)}-D shape {fmt_shape(x)}")
    dims = syms(["N", "C"] if len(x) == 2 else ["C"], x)
    out = dims[:-1]
    want = tuple(d.v for d in out)
    if ctx.type == "MultiLabelMarginLoss" or ctx.type == "MultiLabelSoftMarginLoss":
        if tuple(t) != tuple(x):
            raise ctx.fail(f"expects target (input 1) to have the input's shape {fmt_shape(x)}, got {fmt_shape(t)}", 1)
    elif tuple(t) != want:
        raise ctx.fail(f"expects target (input 1) of class indices with shape {fmt_shape(want)}, got {fmt_shape(t)}", 1)
    return keep(out)


def _margin_ranking(ctx: ShapeContext) -> list[Dim]:
    """input1, input2, target: (N) or () -> output ('none') their (broadcast) shape."""
    return keep(broadcast(ctx, [0, 1, 2]))


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
        raise ctx.fail(
            f"expects target (input 1) of class indices with shape {fmt_shape(x[:-1])}, got {fmt_shape(t)}", 1
        )
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
    rest = sym_list("out_features", extra, len(extra)) if extra else []
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


def register(reg: Registry) -> None:
    pair = [inp(_POINTWISE), inp(_POINTWISE, name="target")]
    ex = [shape(3, 5), shape(3, 5)]
    for name in ("L1Loss", "MSELoss"):
        torch_entry(reg, name, "loss", {}, pair, ex, loss(_pointwise_broadcast))
    torch_entry(
        reg,
        "HuberLoss",
        "loss",
        {"delta": 1.0},
        pair,
        ex,
        loss(_pointwise_broadcast),
        params={"delta": {"minimum": 0, "exclusive_minimum": True}},
    )
    torch_entry(
        reg,
        "SmoothL1Loss",
        "loss",
        {"beta": 1.0},
        pair,
        ex,
        loss(_pointwise_broadcast),
        params={"beta": {"minimum": 0}},
    )
    torch_entry(
        reg,
        "BCELoss",
        "loss",
        {},
        [inp(_POINTWISE, "uniform"), inp(_POINTWISE, "uniform", name="target")],
        ex,
        loss(_pointwise_same),
    )
    torch_entry(
        reg,
        "BCEWithLogitsLoss",
        "loss",
        {},
        [inp(_POINTWISE), inp(_POINTWISE, "binary", name="target")],
        ex,
        loss(_pointwise_same),
    )
    torch_entry(
        reg,
        "KLDivLoss",
        "loss",
        {"reduction": "batchmean"},
        [inp(_POINTWISE), inp(_POINTWISE, "uniform", name="target")],
        ex,
        loss(_pointwise_broadcast),
        params={"reduction": {"choices": ["none", "batchmean", "mean", "sum"]}},
    )
    torch_entry(
        reg,
        "PoissonNLLLoss",
        "loss",
        {},
        [inp(_POINTWISE, name="log_input"), inp(_POINTWISE, "index", name="target", high=5)],
        ex,
        loss(_pointwise_broadcast),
    )
    torch_entry(
        reg,
        "GaussianNLLLoss",
        "loss",
        {},
        [
            inp("(N, *) or (*)"),
            inp("(N, *) or (*)", name="target"),
            inp("(N, *) or (N, *, 1) or (N, 1) or (*)", "uniform", name="var"),
        ],
        [shape(3, 5), shape(3, 5), shape(3, 5)],
        loss(_gaussian_nll),
    )
    for name in ("HingeEmbeddingLoss", "SoftMarginLoss"):
        torch_entry(
            reg,
            name,
            "loss",
            {},
            [inp(_POINTWISE), inp(_POINTWISE, "sign", name="target")],
            ex,
            loss(_pointwise_broadcast),
        )
    torch_entry(
        reg,
        "CrossEntropyLoss",
        "loss",
        {},
        [inp("(N, C) or (C) or (N, C, *)"), inp("(N) or () or (N, *)", "index", name="target", high="input0.shape[1]")],
        [shape(4, 5), shape(4)],
        loss(_class_targets(True)),
        factory=hooked("CrossEntropyLoss", guards.class_targets),
    )
    torch_entry(
        reg,
        "NLLLoss",
        "loss",
        {},
        [inp("(N, C) or (C) or (N, C, *)"), inp("(N) or () or (N, *)", "index", name="target", high="input0.shape[1]")],
        [shape(4, 5), shape(4)],
        loss(_class_targets(False)),
        factory=hooked("NLLLoss", guards.class_targets),
    )
    torch_entry(
        reg,
        "MultiMarginLoss",
        "loss",
        {},
        [inp("(N, C) or (C)"), inp("(N) or ()", "index", name="target", high="input0.shape[1]")],
        [shape(4, 5), shape(4)],
        loss(_multi_margin),
        params={"p": {"minimum": 1, "maximum": 2}},
        factory=hooked("MultiMarginLoss", guards.class_targets),
    )
    torch_entry(
        reg,
        "MultiLabelMarginLoss",
        "loss",
        {},
        [inp("(N, C) or (C)"), inp("(N, C) or (C)", "index", name="target", high="input0.shape[-1]")],
        [shape(2, 4), data([[3, 0, -1, 1], [1, 2, 3, -1]], "int64")],
        loss(_multi_margin),
        factory=hooked("MultiLabelMarginLoss", guards.multilabel_targets),
    )
    torch_entry(
        reg,
        "MultiLabelSoftMarginLoss",
        "loss",
        {},
        [inp("(N, C) or (C)"), inp("(N, C) or (C)", "binary", name="target")],
        [shape(3, 5), shape(3, 5)],
        loss(_multi_margin),
    )
    torch_entry(
        reg,
        "CosineEmbeddingLoss",
        "loss",
        {},
        [
            inp("(N, D) or (D)", name="input1"),
            inp("(N, D) or (D)", name="input2"),
            inp("(N) or ()", "sign", name="target"),
        ],
        [shape(4, 6), shape(4, 6), shape(4)],
        loss(_per_sample(2)),
        params={"margin": {"minimum": -1, "maximum": 1}},
    )
    torch_entry(
        reg,
        "MarginRankingLoss",
        "loss",
        {},
        [inp("(N) or ()", name="input1"), inp("(N) or ()", name="input2"), inp("(N) or ()", "sign", name="target")],
        [shape(5), shape(5), shape(5)],
        loss(_margin_ranking),
    )
    triplet = [
        inp("(N, D) or (D)", name="anchor"),
        inp("(N, D) or (D)", name="positive"),
        inp("(N, D) or (D)", name="negative"),
    ]
    torch_entry(
        reg,
        "TripletMarginLoss",
        "loss",
        {},
        triplet,
        [shape(4, 6)] * 3,
        loss(_per_sample(3)),
        params={"p": {"maximum": None, "minimum": 0}, "margin": {"minimum": 0}},
    )
    torch_entry(
        reg,
        "TripletMarginWithDistanceLoss",
        "loss",
        {},
        triplet,
        [shape(4, 6)] * 3,
        loss(_per_sample(3)),
        params={"margin": {"minimum": 0, "exclusive_minimum": True}},
    )
    # CTC: log-probabilities over C classes (blank = 0) for T time steps; a valid alignment needs
    # targets without the blank and lengths that fit, so the example gives them as data.
    # (The example is a batch of one: see the note on engine.plan_request in the module docstring.)
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(6, 1, 4, generator=gen).log_softmax(2)
    torch_entry(
        reg,
        "CTCLoss",
        "loss",
        {},
        [
            inp("(T, N, C) or (T, C)", name="log_probs"),
            inp("(N, S) or (sum(target_lengths))", "index", name="targets", high="input0.shape[-1]"),
            inp("(N) or ()", "index", name="input_lengths", high="input0.shape[0]"),
            inp("(N) or ()", "index", name="target_lengths", high="input1.shape[-1]"),
        ],
        [
            data([[[round(v, 4) for v in row] for row in step] for step in log_probs.tolist()]),
            data([[1, 2, 2]], "int64"),
            data([6], "int64"),
            data([3], "int64"),
        ],
        loss(_ctc),
        params={"blank": {"minimum": 0}},
        factory=hooked("CTCLoss", guards.ctc),
        memory=memory.ctc,
    )
    torch_entry(
        reg,
        "AdaptiveLogSoftmaxWithLoss",
        "loss",
        {"in_features": 16, "n_classes": 10, "cutoffs": [4, 8]},
        [inp("(N, in_features) or (in_features)"), inp("(N) or ()", "index", name="target", high="n_classes")],
        [shape(3, 16), shape(3)],
        _adaptive_log_softmax,
        outputs=["output", "loss"],
        params={
            "n_classes": {"minimum": 2},
            "cutoffs": {"minimum": 1},
            "div_value": {"minimum": 0, "exclusive_minimum": True},
        },
        factory=hooked("AdaptiveLogSoftmaxWithLoss", guards.n_classes_targets, check=guards.adaptive_softmax_sizes),
        memory=memory.adaptive_softmax,
    )
    torch_entry(
        reg,
        "LinearCrossEntropyLoss",
        "loss",
        {"in_features": 8, "num_classes": 5},
        [
            inp("(N, in_features) or (in_features)"),
            inp("(N) or () or (N, *out_features)", "index", name="target", high="num_classes"),
        ],
        [shape(4, 8), shape(4)],
        loss(_linear_cross_entropy),
        params={"out_features": {"minimum": 1}},
        factory=hooked("LinearCrossEntropyLoss", guards.n_classes_targets),
        since="2.13",
        memory=memory.linear_cross_entropy,
    )
