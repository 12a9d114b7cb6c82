"""Curation of ``torch.nn`` per family: what introspection cannot know.

For each layer type this adds the family, the ``forward()`` inputs and their shape convention,
bounds on arguments, the shape rule, and an example request. Parameters themselves (names, types,
defaults) come from torch's own signatures via :func:`app.core.catalog.introspect_params`.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from app.core import rules
from app.core.catalog import InputSpec, LayerSpec, ParamSpec, Registry, doc_summary, introspect_params

MAX_REPEATS = 64

# Bounds that hold wherever an argument of this name appears in torch.nn.
COMMON_BOUNDS: dict[str, dict[str, Any]] = {
    **{
        name: {"minimum": 1}
        for name in (
            "in_features", "out_features", "in1_features", "in2_features", "in_channels", "out_channels",
            "kernel_size", "stride", "dilation", "groups", "num_features", "num_channels", "num_groups",
            "embedding_dim", "num_embeddings", "input_size", "hidden_size", "num_layers", "embed_dim",
            "num_heads", "nhead", "d_model", "dim_feedforward", "num_encoder_layers", "num_decoder_layers",
            "upscale_factor", "downscale_factor", "size", "n_classes", "num_parameters", "num_classes",
        )
    },
    # Stacked copies are built one module at a time: a count in the millions would hang the build
    # long before the memory estimate could refuse it.
    **{name: {"minimum": 1, "maximum": MAX_REPEATS} for name in ("num_layers", "num_encoder_layers", "num_decoder_layers")},
    "padding": {"minimum": 0},
    "output_padding": {"minimum": 0},
    "p": {"minimum": 0, "maximum": 1},
    "dropout": {"minimum": 0, "maximum": 1},
    "eps": {"minimum": 0, "exclusive_minimum": True},
    "momentum": {"minimum": 0, "maximum": 1},
    "label_smoothing": {"minimum": 0, "maximum": 1},
    "norm_type": {"minimum": 0, "exclusive_minimum": True},
    "reduction": {"choices": ["none", "mean", "sum"]},
    "padding_mode": {"choices": ["zeros", "reflect", "replicate", "circular"]},
}

# Arguments that are accepted by torch but mean nothing here (no autograd, no in-place aliasing).
SKIP_ALWAYS = ("inplace", "size_average", "reduce", "_weight", "_freeze")


def _params(cls: type, n: int | None, overrides: dict[str, dict[str, Any]], skip: tuple[str, ...]) -> list[ParamSpec]:
    params = introspect_params(cls, skip=SKIP_ALWAYS + skip)
    for p in params:
        for key, value in {**COMMON_BOUNDS.get(p.name, {}), **overrides.get(p.name, {})}.items():
            setattr(p, key, value)
        if p.type == "ints" and p.length is None and n is not None:
            p.length = n
    known = {p.name for p in params}
    for name, extra in overrides.items():
        if name not in known and "type" in extra:
            params.append(ParamSpec(name=name, **extra))
    return params


def torch_entry(
    registry: Registry,
    name: str,
    family: str,
    args: dict[str, Any],
    inputs: list[InputSpec],
    example_inputs: list[dict[str, Any]],
    rule: Callable[..., Any] | None,
    *,
    outputs: list[str] | None = None,
    explain: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    skip: tuple[str, ...] = (),
    factory: Callable[..., nn.Module] | None = None,
) -> LayerSpec:
    cls = getattr(nn, name)
    spec = LayerSpec(
        type=name,
        family=family,
        factory=factory or cls,
        params=_params(cls, rules.spatial_name(name), params or {}, skip),
        inputs=inputs,
        example={"layer": {"type": name, **args}, "inputs": example_inputs, "seed": 0},
        doc=doc_summary(cls),
        outputs=outputs or ["output"],
        rule=rule,
        explain=explain,
    )
    return registry.add(spec)


def shape(*dims: int) -> dict[str, Any]:
    return {"shape": list(dims)}


def inp(convention: str, kind: str = "normal", name: str = "input", **kw: Any) -> InputSpec:
    return InputSpec(name=name, convention=convention, kind=kind, **kw)


_SPATIAL_CONV = {1: "(N, C_in, L_in)", 2: "(N, C_in, H_in, W_in)", 3: "(N, C_in, D_in, H_in, W_in)"}
_SPATIAL = {1: "(N, C, L_in)", 2: "(N, C, H_in, W_in)", 3: "(N, C, D_in, H_in, W_in)"}
_EXAMPLE_SPATIAL = {1: (8,), 2: (6, 6), 3: (4, 5, 5)}


def register_linear(reg: Registry) -> None:
    torch_entry(reg, "Identity", "linear", {}, [inp("(*)")], [shape(2, 3)], rules.same)
    torch_entry(
        reg, "Linear", "linear", {"in_features": 10, "out_features": 5}, [inp("(N, *, H_in)")],
        [shape(5, 10)], rules.linear, explain="linear",
    )
    torch_entry(
        reg, "Bilinear", "linear", {"in1_features": 10, "in2_features": 20, "out_features": 7},
        [inp("(N, *, H_in1)", name="input1"), inp("(N, *, H_in2)", name="input2")],
        [shape(5, 10), shape(5, 20)], rules.bilinear, explain="bilinear",
    )


def register_conv(reg: Registry) -> None:
    for n in (1, 2, 3):
        spatial = _EXAMPLE_SPATIAL[n]
        torch_entry(
            reg, f"Conv{n}d", "conv", {"in_channels": 3, "out_channels": 5 if n == 1 else 4, "kernel_size": 4 if n == 1 else 3},
            [inp(_SPATIAL_CONV[n])], [shape(6, 3, 8) if n == 1 else shape(1, 3, *spatial)],
            rules.conv(n), explain="conv",
            params={"padding": {"choices": ["valid", "same"]}},
        )
        torch_entry(
            reg, f"ConvTranspose{n}d", "conv", {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2},
            [inp(_SPATIAL_CONV[n])], [shape(1, 2, *(min(s, 4) for s in spatial))],
            rules.conv_transpose(n), explain="transposed",
            params={"padding_mode": {"choices": ["zeros"]}},
        )


def register_pool(reg: Registry) -> None:
    for n in (1, 2, 3):
        spatial = _EXAMPLE_SPATIAL[n]
        example = [shape(1, 2, *spatial)]
        torch_entry(
            reg, f"MaxPool{n}d", "pool", {"kernel_size": 2}, [inp(_SPATIAL[n])], example,
            rules.with_indices(rules.pool(n)), explain="pool", outputs=["output", "indices"],
        )
        torch_entry(
            reg, f"AvgPool{n}d", "pool", {"kernel_size": 2}, [inp(_SPATIAL[n])], example,
            rules.pool(n, has_dilation=False), explain="pool",
            params={"divisor_override": {"minimum": 1}},
        )
        torch_entry(
            reg, f"LPPool{n}d", "pool", {"norm_type": 2, "kernel_size": 2}, [inp(_SPATIAL[n])], example,
            rules.pool(n, has_padding=False, has_dilation=False), explain="pool",
        )
        torch_entry(
            reg, f"AdaptiveAvgPool{n}d", "pool", {"output_size": 3 if n < 3 else 2}, [inp(_SPATIAL[n])], example,
            rules.adaptive_pool(n), params={"output_size": {"minimum": 1, "nullable": True}},
        )
        torch_entry(
            reg, f"AdaptiveMaxPool{n}d", "pool", {"output_size": 3 if n < 3 else 2}, [inp(_SPATIAL[n])], example,
            rules.adaptive_pool(n), outputs=["output", "indices"],
            params={"output_size": {"minimum": 1, "nullable": True}},
        )


# Element-wise activations: constructor arguments (if any) for the example.
_ACTIVATIONS: dict[str, dict[str, Any]] = {
    "ReLU": {}, "ReLU6": {}, "LeakyReLU": {}, "ELU": {}, "CELU": {}, "SELU": {}, "GELU": {}, "SiLU": {},
    "Mish": {}, "Sigmoid": {}, "Tanh": {}, "Hardtanh": {}, "Hardsigmoid": {}, "Hardswish": {},
    "Hardshrink": {}, "Softshrink": {}, "Tanhshrink": {}, "Softsign": {}, "Softplus": {}, "LogSigmoid": {},
    "Threshold": {"threshold": 0.1, "value": 20.0}, "RReLU": {}, "PReLU": {},
    "Softmax": {"dim": -1}, "Softmin": {"dim": -1}, "LogSoftmax": {"dim": -1}, "Softmax2d": {},
}


def register_activation(reg: Registry) -> None:
    for name, args in _ACTIVATIONS.items():
        convention = "(N, C, H, W)" if name == "Softmax2d" else "(*)"
        example = [shape(1, 3, 4, 4)] if name == "Softmax2d" else [shape(2, 5)]
        overrides: dict[str, dict[str, Any]] = {}
        if name == "GELU":
            overrides["approximate"] = {"choices": ["none", "tanh"]}
        torch_entry(reg, name, "activation", args, [inp(convention)], example, rules.same, params=overrides)
    torch_entry(
        reg, "GLU", "activation", {"dim": -1}, [inp("(*, N, *)")], [shape(2, 6)], _glu,
    )


def _glu(ctx: rules.ShapeContext) -> list[list[Any]]:
    """Output: (*, N/2, *) — the chosen dimension is halved."""
    from app.core.expr import Dim, floor_div

    dim = ctx.arg("dim", -1)
    dims = ctx.dims(0)
    axis = dim % len(dims) if dims else 0
    if not dims or dims[axis].v % 2:
        raise ctx.fail(f"halves dimension {dim}, so it must have an even size; input shape {rules.fmt_shape(ctx.shape(0))}")
    out = [rules.Dim(d.name, d) for d in dims]
    out[axis] = Dim(dims[axis].name, floor_div(dims[axis], 2))
    return [out]


def register_dropout(reg: Registry) -> None:
    for name, conv, ex in (
        ("Dropout", "(*)", shape(2, 8)),
        ("Dropout1d", "(N, C, L)", shape(2, 3, 8)),
        ("Dropout2d", "(N, C, H, W)", shape(1, 3, 4, 4)),
        ("Dropout3d", "(N, C, D, H, W)", shape(1, 2, 3, 4, 4)),
        ("AlphaDropout", "(*)", shape(2, 8)),
        ("FeatureAlphaDropout", "(N, C, *)", shape(1, 3, 4, 4)),
    ):
        torch_entry(reg, name, "dropout", {}, [inp(conv)], [ex], rules.same)


def register_norm(reg: Registry) -> None:
    for n, conv in ((1, "(N, C, L)"), (2, "(N, C, H, W)"), (3, "(N, C, D, H, W)")):
        ex = shape(2, 3, *_EXAMPLE_SPATIAL[n])
        torch_entry(reg, f"BatchNorm{n}d", "norm", {"num_features": 3}, [inp(conv)], [ex], _channels_same("num_features"))
        torch_entry(reg, f"InstanceNorm{n}d", "norm", {"num_features": 3}, [inp(conv)], [ex], rules.same)
    torch_entry(reg, "LayerNorm", "norm", {"normalized_shape": [6]}, [inp("(N, *)")], [shape(2, 4, 6)], _normalized_same)
    torch_entry(reg, "RMSNorm", "norm", {"normalized_shape": [6]}, [inp("(N, *)")], [shape(2, 4, 6)], _normalized_same)
    torch_entry(
        reg, "GroupNorm", "norm", {"num_groups": 2, "num_channels": 4}, [inp("(N, C, *)")], [shape(2, 4, 5)],
        _channels_same("num_channels"),
    )
    torch_entry(reg, "LocalResponseNorm", "norm", {"size": 2}, [inp("(N, C, *)")], [shape(1, 4, 5, 5)], rules.same)
    torch_entry(reg, "CrossMapLRN2d", "norm", {"size": 2}, [inp("(N, C, H, W)")], [shape(1, 4, 5, 5)], rules.same)


def _channels_same(arg: str) -> Callable[[rules.ShapeContext], list[list[Any]]]:
    def rule(ctx: rules.ShapeContext) -> list[list[Any]]:
        shape_ = ctx.shape(0)
        want = ctx.arg(arg)
        if len(shape_) < 2 or shape_[1] != want:
            got = shape_[1] if len(shape_) >= 2 else "none"
            raise ctx.fail(
                f"expects input 0 to have {arg}={want} channels at dimension 1, got {got} "
                f"(input shape {rules.fmt_shape(shape_)})"
            )
        return rules.same(ctx)

    return rule


def _normalized_same(ctx: rules.ShapeContext) -> list[list[Any]]:
    want = tuple(ctx.arg("normalized_shape"))
    got = ctx.shape(0)[-len(want):] if want else ()
    if tuple(got) != want:
        raise ctx.fail(
            f"normalises the last {len(want)} dimension(s), which must be normalized_shape={list(want)}; "
            f"input shape is {rules.fmt_shape(ctx.shape(0))}"
        )
    return rules.same(ctx)


def register_all(reg: Registry) -> None:
    register_linear(reg)
    register_conv(reg)
    register_pool(reg)
    register_activation(reg)
    register_dropout(reg)
    register_norm(reg)
