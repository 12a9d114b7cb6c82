"""Attention weights: what every ``nn.MultiheadAttention`` in a run computed, token × token.

``nn.TransformerEncoderLayer`` calls its ``self_attn`` with ``need_weights=False`` (and in eval mode
under ``no_grad`` may skip it for a fused kernel), so the weights are not in any output. They are
not forced inside the real forward either: ``need_weights=True`` takes another code path (explicit
softmax instead of scaled-dot-product attention), which would change the output's last bits against
a plain script. Instead the forward records each attention call's inputs, and afterwards the same
module is called again on exactly those inputs with ``need_weights=True,
average_attn_weights=False`` — torch's own weights, as ``nn.MultiheadAttention`` returns them.

The second call runs in eval mode: the weights are the softmax before dropout, and the call draws
nothing from the random generator (the run's numbers stay a plain script's).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from app.core import tensors
from app.core.networks.trace import MODULES, named_modules
from app.core.running.memory import ATTENTION_MAX_VALUES as MAX_VALUES


@contextlib.contextmanager
def recording(root: nn.Module, sink: dict[str, Any]) -> Iterator[None]:
    """Record the (args, kwargs) of each attention call into ``sink['attention_calls']``.

    A ``TransformerEncoderLayer`` whose fused fast path skipped ``self_attn`` is recorded at its own
    entry, with the input its ``_sa_block`` would have received (``norm1(src)`` when ``norm_first``).
    """
    #: (path, module, inputs (None where the weights are too many to draw), kwargs, weights' shape)
    calls: list[tuple[str, nn.MultiheadAttention, tuple[Any, ...] | None, dict[str, Any], list[int] | None]] = []
    layers: list[tuple[str, nn.TransformerEncoderLayer, tuple[Any, ...], dict[str, Any]]] = []
    handles = []
    # the run's walk of the root where it made one (app.core.networks.trace.MODULES)
    modules = sink.get(MODULES)
    for path, module in modules if modules is not None else named_modules(root):
        if isinstance(module, nn.MultiheadAttention):

            def pre(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], path: str = path) -> None:
                # copies only of what will be recomputed (ViT's 12 calls on (1, 197, 768) are not)
                shape = _weights_shape(mod, args, kwargs)
                drawn = shape is None or math.prod(shape) <= MAX_VALUES
                calls.append((path, mod, tensors.snapshot(args) if drawn else None, dict(kwargs), shape))

            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        elif isinstance(module, nn.TransformerEncoderLayer):

            def pre_layer(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], path: str = path) -> None:
                # torch's fast path needs eval mode: in training self_attn is always called (and recorded)
                if not mod.training:
                    layers.append((path, mod, tensors.snapshot(args), dict(kwargs)))

            handles.append(module.register_forward_pre_hook(pre_layer, with_kwargs=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
    seen = {c[0] for c in calls}
    for path, layer, args, kwargs in layers:
        attn_path = f"{path}.self_attn" if path else "self_attn"
        if attn_path in seen:
            continue
        src = args[0] if args else kwargs["src"]
        mask = args[1] if len(args) > 1 else kwargs.get("src_mask")
        padding = args[2] if len(args) > 2 else kwargs.get("src_key_padding_mask")
        x = layer.norm1(src) if layer.norm_first else src
        kw = {"attn_mask": mask, "key_padding_mask": padding}
        shape = _weights_shape(layer.self_attn, (x, x), kw)
        drawn = shape is None or math.prod(shape) <= MAX_VALUES
        calls.append((attn_path, layer.self_attn, (x, x, x) if drawn else None, kw, shape))
    sink["attention_calls"] = calls


def _weights_shape(mod: nn.MultiheadAttention, args: tuple[Any, ...], kw: dict[str, Any]) -> list[int] | None:
    """``(N, heads, L, S)`` (``(heads, L, S)`` unbatched) from the call's query and key shapes."""
    q = args[0] if args else kw.get("query")
    k = args[1] if len(args) > 1 else kw.get("key")
    if not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor):
        return None
    if q.dim() == 2:
        return [mod.num_heads, q.shape[0], k.shape[0]]
    if mod.batch_first:
        return [q.shape[0], mod.num_heads, q.shape[1], k.shape[1]]
    return [q.shape[1], mod.num_heads, q.shape[0], k.shape[0]]


def weights(sink: dict[str, Any]) -> list[dict[str, Any]]:
    """Each recorded call's weights: ``(N, heads, L, S)`` (``(heads, L, S)`` unbatched), and their mean.

    ``mean`` is what ``average_attn_weights=True`` returns (the module's own second output).
    """
    out: list[dict[str, Any]] = []
    for path, mod, args, kwargs, shape in sink.get("attention_calls", []):
        kw = {k: v for k, v in kwargs.items() if k not in ("need_weights", "average_attn_weights")}
        entry: dict[str, Any] = {"path": path, "heads": mod.num_heads}
        if args is None and shape is not None:
            # ViT's 197 tokens × 12 heads: not recomputed at all, the answer only says what it would be
            entry["shape"] = shape
            entry["omitted"] = f"{math.prod(shape):,} values is more than the {MAX_VALUES:,} drawn"
            out.append(entry)
            continue
        was_training = mod.training
        mod.eval()
        try:
            with torch.no_grad():
                _, w = mod(*args, **kw, need_weights=True, average_attn_weights=False)
        finally:
            mod.train(was_training)
        entry["shape"] = list(w.shape)
        if w.numel() > MAX_VALUES:
            entry["omitted"] = f"{w.numel():,} values is more than the {MAX_VALUES:,} drawn"
        else:
            entry["weights"] = w.float().cpu().tolist()
            entry["mean"] = w.mean(dim=-3).float().cpu().tolist()
        out.append(entry)
    return out
