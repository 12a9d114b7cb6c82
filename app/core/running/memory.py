"""Memory estimates: bytes of the tensors a request needs, checked against the server's limit."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

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


# Bytes a request holds besides its tensors: the response's Python objects and JSON text per number
# sent, and a fixed allowance for the summaries' chunked working copies and small objects.
BYTES_PER_SENT_NUMBER = 128
FIXED_OVERHEAD = 4 * 1024**2


def _bytes(shape: Sequence[int], elt: int) -> int:
    return math.prod(shape) * elt


def _batch_and_spatial(shape: Sequence[int], rank: int) -> tuple[int, int]:
    """(N, ∏ spatial) of a (N, C, *spatial) or unbatched (C, *spatial) shape."""
    batch = shape[0] if len(shape) == rank + 2 else 1
    return batch, math.prod(shape[-rank:]) if rank else 1


def workspace_bytes(
    module: nn.Module, in_shapes: list[Sequence[int]], out_shapes: list[Sequence[int]], elt: int
) -> int:
    """What one call allocates beyond its output: torch's temporaries, per kind of layer.

    Element-wise layers, norms and losses make at most a temporary or two the size of their largest
    tensor; the terms below are the layers whose working memory grows faster than their tensors.
    """
    sizes = [_bytes(s, elt) for s in [*in_shapes, *out_shapes]]
    big = max(sizes, default=0)
    extra = 0
    if isinstance(module, nn.modules.conv._ConvNd) and in_shapes and out_shapes:
        rank = len(module.kernel_size)
        kernel = math.prod(module.kernel_size)
        if module.transposed:  # col2im: (C_out/g · ∏k) columns per input position
            n, positions = _batch_and_spatial(in_shapes[0], rank)
            extra = n * module.out_channels // module.groups * kernel * positions * elt
        else:  # im2col: (C_in/g · ∏k) rows per output position
            n, positions = _batch_and_spatial(out_shapes[0], rank)
            extra = n * module.in_channels // module.groups * kernel * positions * elt
    elif isinstance(module, nn.RNNBase) and in_shapes:
        gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
        x = in_shapes[0]
        steps_batch = math.prod(x[:-1])
        directions = 2 if module.bidirectional else 1
        # every step's gates are computed for the whole sequence at once, layer by layer
        extra = 3 * steps_batch * gates * module.hidden_size * directions * elt
    elif isinstance(module, nn.RNNCellBase) and in_shapes:
        gates = 4 if isinstance(module, nn.LSTMCell) else 3 if isinstance(module, nn.GRUCell) else 1
        extra = 4 * math.prod(in_shapes[0][:-1]) * gates * module.hidden_size * elt
    elif isinstance(module, nn.Bilinear) and in_shapes:
        extra = 2 * math.prod(in_shapes[0][:-1]) * module.out_features * module.in2_features * elt
    elif isinstance(module, nn.CTCLoss) and in_shapes:
        steps, classes = in_shapes[0][0], in_shapes[0][-1]
        batch = in_shapes[0][1] if len(in_shapes[0]) == 3 else 1
        target = in_shapes[1][-1] if len(in_shapes) > 1 and in_shapes[1] else 1
        extra = 4 * steps * batch * (2 * target + 1) * 8 + 2 * steps * batch * classes * 8
    elif isinstance(module, (nn.LocalResponseNorm, nn.CrossMapLRN2d)):
        extra = 3 * big
    elif isinstance(module, nn.modules.loss._Loss):
        # losses build their formula term by term (log-sigmoids, products with the target, ...)
        extra = 4 * big
    attention = [m for m in module.modules() if isinstance(m, nn.MultiheadAttention)]
    if attention and in_shapes:
        extra += _attention_bytes(module, attention, in_shapes, elt)
    known = isinstance(module, (nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase, nn.Bilinear, nn.CTCLoss))
    # one temporary the size of the largest tensor; twice that for what is not modelled at all
    return extra + (big if known or type(module).__module__.startswith("torch.") else 4 * big)


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


def response_bytes(numels: list[int], max_elements: int, elt: int) -> int:
    """The response's numbers (each tensor sends at most ``max_elements``), and a float32 working copy
    of the largest tensor when it is half precision (NumPy summarises it in float32)."""
    sent = sum(min(n, max_elements) for n in numels)
    half = max(numels, default=0) * 4 if elt < 4 else 0
    return sent * BYTES_PER_SENT_NUMBER + half + FIXED_OVERHEAD
