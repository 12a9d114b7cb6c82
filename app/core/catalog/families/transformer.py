"""Multi-head attention and the transformer layers: Input: (L, N, E) or (N, L, E) with batch_first."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from app.core.catalog.entries import declared, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.errors import ShapeMismatch
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
    syms,
)
from app.core.shapes.expr import Dim, Expr, Sym


def _seq_dims(x: Sequence[int], batch_first: bool, seq: str, feat: str) -> tuple[list[Sym], int | None, int]:
    """Named dims of a (seq, N, E) / (N, seq, E) / (seq, E) tensor, its batch size and length."""
    if len(x) == 3:
        if batch_first:
            return syms(["N", seq, feat], x), x[0], x[1]
        return syms([seq, "N", feat], x), x[1], x[0]
    return syms([seq, feat], x), None, x[0]


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
    if S_v != S or n_k != n_v:
        raise ctx.fail(f"expects key and value to share S and N, got {fmt_shape(k)} and {fmt_shape(v)}", 2)
    if n_q != n_k:
        raise ctx.fail(f"expects query and key to share the batch size N, got {fmt_shape(q)} and {fmt_shape(k)}", 1)
    if len(ctx.shapes) > 3:
        want = (n_k, S) if n_k is not None else (S,)
        if tuple(ctx.shape(3)) != want:
            raise ctx.fail(
                f"expects key_padding_mask (input 3) to have shape (N, S) = {fmt_shape(want)}, got {fmt_shape(ctx.shape(3))}",
                3,
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


def _check_seq(
    ctx: ShapeContext, i: int, d_model: int, batch_first: bool, seq: str
) -> tuple[list[Sym], int | None, int]:
    x = ctx.shape(i)
    if len(x) not in (2, 3):
        conv = ctx.spec.inputs[i].convention
        raise ctx.fail(
            f"expects {ctx.spec.inputs[i].name} (input {i}) to be {conv}, got {len(x)}-D shape {fmt_shape(x)}", i
        )
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
        raise ctx.fail(
            f"expects tgt and memory to share the batch size N, got {fmt_shape(ctx.shape(0))} and {fmt_shape(ctx.shape(1))}",
            1,
        )

    def pad(length):
        return (n_t, length) if n_t is not None else (length,)

    _check_masks(ctx, 2, [(t, t), (t, s), pad(t), pad(s)])
    return [_with_e(dims, e)]


def _transformer_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Output: the shape of tgt, (T, N, E); src (S, N, E) goes through the encoder."""
    m = ctx.module
    e = m.d_model
    _, n_s, s = _check_seq(ctx, 0, e, m.batch_first, "S")
    dims, n_t, t = _check_seq(ctx, 1, e, m.batch_first, "T")
    if len(ctx.shape(0)) != len(ctx.shape(1)):
        raise ctx.fail(
            f"expects src and tgt of the same rank, got {fmt_shape(ctx.shape(0))} and {fmt_shape(ctx.shape(1))}", 1
        )
    if n_s != n_t:
        raise ctx.fail(
            f"expects src and tgt to share the batch size N, got {fmt_shape(ctx.shape(0))} and {fmt_shape(ctx.shape(1))}",
            1,
        )

    def pad(length):
        return (n_s, length) if n_s is not None else (length,)

    _check_masks(ctx, 2, [(s, s), (t, t), (t, s), pad(s), pad(t), pad(s)])
    return [_with_e(dims, e)]


def register_attention(reg: Registry) -> None:
    params = declared(
        nn.MultiheadAttention,
        embed_dim={"type": "int", "required": True, "minimum": 1},
        num_heads={"type": "int", "required": True, "minimum": 1},
        kdim={"type": "int", "nullable": True, "minimum": 1},
        vdim={"type": "int", "nullable": True, "minimum": 1},
    )
    torch_entry(
        reg,
        "MultiheadAttention",
        "attention",
        {"embed_dim": 8, "num_heads": 2},
        [
            inp("(L, N, E_q) or (L, E_q)", name="query"),
            inp("(S, N, E_k) or (S, E_k)", name="key"),
            inp("(S, N, E_v) or (S, E_v)", name="value"),
            inp("(N, S) or (S)", "binary", name="key_padding_mask", optional=True),
        ],
        [shape(4, 2, 8), shape(5, 2, 8), shape(5, 2, 8)],
        _mha_rule,
        outputs=["attn_output", "attn_output_weights"],
        params=params,
    )


def register_transformer(reg: Registry) -> None:
    layer_args = {"d_model": 16, "nhead": 2, "dim_feedforward": 32, "batch_first": True}
    common = {"activation": {"choices": ["relu", "gelu"], "default": "relu"}}
    src = "(N, S, E) with batch_first=True, (S, N, E) otherwise, or (S, E)"
    tgt = "(N, T, E) with batch_first=True, (T, N, E) otherwise, or (T, E)"
    mask = lambda conv, name: inp(conv, "binary", name=name, optional=True)  # noqa: E731
    enc_masks = [mask("(S, S)", "src_mask"), mask("(N, S)", "src_key_padding_mask")]
    dec_masks = [
        mask("(T, T)", "tgt_mask"),
        mask("(T, S)", "memory_mask"),
        mask("(N, T)", "tgt_key_padding_mask"),
        mask("(N, S)", "memory_key_padding_mask"),
    ]
    torch_entry(
        reg,
        "TransformerEncoderLayer",
        "transformer",
        layer_args,
        [inp(src, name="src"), *enc_masks],
        [shape(2, 5, 16)],
        _encoder_layer_rule,
        params=common,
    )
    torch_entry(
        reg,
        "TransformerDecoderLayer",
        "transformer",
        layer_args,
        [inp(tgt, name="tgt"), inp(src, name="memory"), *dec_masks],
        [shape(2, 4, 16), shape(2, 5, 16)],
        _decoder_layer_rule,
        params=common,
    )
    norm = {
        "type": "layer",
        "nullable": True,
        "doc": "the layer normalization component (optional): a nested config such as "
        '{"type": "LayerNorm", "normalized_shape": [d_model]}',
    }
    torch_entry(
        reg,
        "TransformerEncoder",
        "transformer",
        {
            "encoder_layer": {"type": "TransformerEncoderLayer", **layer_args},
            "num_layers": 2,
            "norm": {"type": "LayerNorm", "normalized_shape": [16]},
        },
        [inp(src, name="src"), mask("(S, S)", "mask"), mask("(N, S)", "src_key_padding_mask")],
        [shape(2, 5, 16)],
        _encoder_layer_rule,
        params={
            "encoder_layer": {
                "type": "layer",
                "required": True,
                "doc": "a TransformerEncoderLayer config, cloned num_layers times",
            },
            "norm": norm,
        },
    )
    torch_entry(
        reg,
        "TransformerDecoder",
        "transformer",
        {
            "decoder_layer": {"type": "TransformerDecoderLayer", **layer_args},
            "num_layers": 2,
            "norm": {"type": "LayerNorm", "normalized_shape": [16]},
        },
        [inp(tgt, name="tgt"), inp(src, name="memory"), *dec_masks],
        [shape(2, 4, 16), shape(2, 5, 16)],
        _decoder_layer_rule,
        params={
            "decoder_layer": {
                "type": "layer",
                "required": True,
                "doc": "a TransformerDecoderLayer config, cloned num_layers times",
            },
            "norm": norm,
        },
    )
    torch_entry(
        reg,
        "Transformer",
        "transformer",
        {
            "d_model": 16,
            "nhead": 2,
            "num_encoder_layers": 1,
            "num_decoder_layers": 1,
            "dim_feedforward": 32,
            "batch_first": True,
        },
        [
            inp(src, name="src"),
            inp(tgt, name="tgt"),
            mask("(S, S)", "src_mask"),
            mask("(T, T)", "tgt_mask"),
            mask("(T, S)", "memory_mask"),
            mask("(N, S)", "src_key_padding_mask"),
            mask("(N, T)", "tgt_key_padding_mask"),
            mask("(N, S)", "memory_key_padding_mask"),
        ],
        [shape(2, 5, 16), shape(2, 4, 16)],
        _transformer_rule,
        params={
            **common,
            "custom_encoder": {
                "type": "layer",
                "nullable": True,
                "doc": "custom encoder (default=None): a nested config, e.g. a TransformerEncoder",
            },
            "custom_decoder": {
                "type": "layer",
                "nullable": True,
                "doc": "custom decoder (default=None): a nested config, e.g. a TransformerDecoder",
            },
        },
    )


def register(reg: Registry) -> None:
    register_attention(reg)
    register_transformer(reg)
