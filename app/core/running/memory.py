"""Memory estimates: bytes of the tensors a request needs, checked against the server's limit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from app.core import budget
from app.core.catalog.spec import LayerSpec
from app.core.errors import TooLarge


def tensor_bytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    return math.prod(shape) * (torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"):
        if n < 1024 or unit == "YiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} YiB"


def refuse(what: str, needed: int, limit: int, *, field: str | None = None) -> TooLarge:
    """The 413 for a request estimated at ``needed`` bytes, naming what takes them."""
    return TooLarge(
        f"{what}; this server's limit is {human(limit)}", field=field, estimate_bytes=needed, limit_bytes=limit
    )


def reserve_more(what: str, nbytes: int, planned: int, settings: Any) -> None:
    """Count ``nbytes`` more for the running request (an animation's frames, an autograd graph, a file
    copy), after the ``planned`` bytes its plan reserved: 413 past the request limit, 503 past the budget."""
    if planned + nbytes > settings.memory_limit_bytes:
        raise refuse(
            f"{what} needs about {human(nbytes)} besides the run's {human(planned)}",
            planned + nbytes,
            settings.memory_limit_bytes,
            field="inputs",
        )
    budget.reserve(nbytes)


# Bytes a request holds besides its tensors: the response's Python objects and JSON text per number
# sent, and a fixed allowance for the summaries' chunked working copies and small objects (8 MiB: in a
# full run of the catalog test, after every other layer, EmbeddingBag's peak passed a 5 MiB allowance by
# 1.7 MiB, where alone it stays 1 MiB under).
BYTES_PER_SENT_NUMBER = 128
FIXED_OVERHEAD = 8 * 1024**2


def _bytes(shape: Sequence[int], elt: int) -> int:
    return math.prod(shape) * elt


def workspace_bytes(
    module: nn.Module,
    spec: LayerSpec | None,
    in_shapes: list[Sequence[int]],
    out_shapes: list[Sequence[int]],
    elt: int,
    *,
    attention: list[nn.MultiheadAttention] | None = None,
) -> int:
    """What one call allocates beyond its output: torch's temporaries.

    The catalog entry's memory rule (:mod:`app.core.catalog.memory`) covers what grows faster than the
    tensors; every call also makes a temporary or two the size of its largest tensor, and a loss without
    a rule builds its formula term by term (a few). What is not torch's own gets four.
    ``attention``: the MultiheadAttention modules under ``module``, when the caller listed them already.
    """
    big = max((_bytes(s, elt) for s in [*in_shapes, *out_shapes]), default=0)
    rule = spec.memory if spec is not None else None
    if rule is not None:
        extra = rule(module, in_shapes, out_shapes, elt)
    elif spec is not None and spec.family == "loss":
        extra = 4 * big
    else:
        extra = 0
    if attention is None:
        attention = [m for m in module.modules() if isinstance(m, nn.MultiheadAttention)]
    if attention and in_shapes:
        extra += _attention_bytes(module, attention, in_shapes, elt)
    # one temporary the size of the largest tensor; four for what is not modelled at all
    return extra + (big if rule is not None or type(module).__module__.startswith("torch.") else 4 * big)


def _attention_bytes(
    module: nn.Module, attention: list[nn.MultiheadAttention], in_shapes: list[Sequence[int]], elt: int
) -> int:
    """Attention weights (N·heads·L·S, a few copies) and a transformer's feed-forward activations."""
    query = in_shapes[0]
    key = in_shapes[1] if isinstance(module, nn.MultiheadAttention) and len(in_shapes) > 1 else query
    longest = max(max(s[:-1]) for s in in_shapes if len(s) > 1) if any(len(s) > 1 for s in in_shapes) else 1
    batch = math.prod(query[:-1]) // max(1, longest) if len(query) == 3 else 1
    heads = max(m.num_heads for m in attention)
    scores = batch * heads * longest * max(longest, max(key[:-1], default=1)) * elt
    feed_forward = max((m.out_features for m in module.modules() if isinstance(m, nn.Linear)), default=0)
    return 4 * scores + 3 * math.prod(query[:-1]) * feed_forward * elt


#: attention maps larger than this (N × heads × L × S values, per call) are left out of a run's answer
ATTENTION_MAX_VALUES = 65_536


def attention_numbers(module: nn.Module, in_shapes: list[Sequence[int]], *, nested: bool) -> int:
    """Numbers a run's ``attention`` sends for one call: each head's weights and their mean.

    ``module`` is a MultiheadAttention, or (``nested``) a layer whose MultiheadAttentions run on its
    first input (a TransformerEncoderLayer's self_attn); a network's trace lists its attention calls
    themselves, so there ``nested`` is False and other modules count nothing.
    """
    mhas = [m for m in module.modules() if isinstance(m, nn.MultiheadAttention)] if nested else [module]
    total = 0
    for mha in mhas:
        if not isinstance(mha, nn.MultiheadAttention) or not in_shapes or not in_shapes[0]:
            continue
        query = in_shapes[0]
        key = in_shapes[1] if mha is module and len(in_shapes) > 1 and in_shapes[1] else query
        rows = math.prod(query[:-1])  # N·L
        keys = key[1] if len(key) == 3 and mha.batch_first else key[0]
        values = mha.num_heads * rows * keys
        if values <= ATTENTION_MAX_VALUES:
            total += values + values // mha.num_heads
    return total


def response_bytes(numels: list[int], max_elements: int, elt: int, most: int | None = None) -> int:
    """The response's numbers (each tensor sends at most ``max_elements``, all together at most ``most``:
    the response budget's worth), and a float32 working copy of the largest tensor when it is half
    precision (NumPy summarises it in float32)."""
    sent = sum(min(n, max_elements) for n in numels)
    if most is not None:
        sent = min(sent, most)
    half = max(numels, default=0) * 4 if elt < 4 else 0
    return sent * BYTES_PER_SENT_NUMBER + half + FIXED_OVERHEAD
