"""Checks of index values that torch makes too late, or not at all.

Given an out-of-range class, target or offset, some of torch's CPU kernels raise, some read stray
memory and return garbage, and CTC loss crashes the process. Each check here runs as a forward
pre-hook on the real module (so it also guards a layer inside a network) and refuses such input
with a 422 that names the input and the valid range. Meta tensors have no values and pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from app.core.errors import InvalidRequest


def _values(args: tuple[Any, ...], i: int) -> torch.Tensor | None:
    x = args[i] if i < len(args) else None
    if not isinstance(x, torch.Tensor) or x.device.type == "meta" or not x.numel():
        return None
    return x


def _name(module: nn.Module) -> str:
    return type(module).__name__


def check_range(
    module: nn.Module, x: torch.Tensor | None, low: int, high: int, *, i: int, what: str, allowed: tuple[int, ...] = ()
) -> None:
    """Every value of ``x`` must lie in [low, high) (or be one of ``allowed``, e.g. ignore_index)."""
    if x is None:
        return
    if x.is_floating_point():
        if not torch.equal(x, x.round()):
            raise InvalidRequest(f"{_name(module)}: input {i} ({what}) must hold whole numbers", field=f"inputs[{i}]")
        x = x.long()
    bad = (x < low) | (x >= high)
    for value in allowed:
        bad &= x != value
    if bool(bad.any()):
        found = int(x[bad].flatten()[0])
        also = f" (or {', '.join(map(str, allowed))})" if allowed else ""
        span = f"between {low} and {high - 1}" if high > low else "nothing: the range is empty"
        raise InvalidRequest(
            f"{_name(module)}: input {i} ({what}) holds {found}, but every value must be {span}{also}",
            field=f"inputs[{i}]",
        )


def _classes(args: tuple[Any, ...]) -> int | None:
    """C of a (N, C, ...) or (C) input."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return None
    return x.shape[0] if x.dim() == 1 else x.shape[1]


def class_targets(module: nn.Module, args: tuple[Any, ...]) -> None:
    """NLLLoss, CrossEntropyLoss (index targets), MultiMarginLoss: a target is a class in [0, C)."""
    target = _values(args, 1)
    c = _classes(args)
    if target is None or c is None or (target.is_floating_point() and tuple(target.shape) == tuple(args[0].shape)):
        return  # class probabilities, not indices
    ignore = getattr(module, "ignore_index", None)
    check_range(
        module,
        target,
        0,
        c,
        i=1,
        what=f"target class indices, C={c}",
        allowed=(ignore,) if isinstance(ignore, int) and not 0 <= ignore < c else (),
    )


def multilabel_targets(module: nn.Module, args: tuple[Any, ...]) -> None:
    """MultiLabelMarginLoss: class indices in [0, C), -1 ends each sample's list."""
    c = (
        _classes(args)
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 1
        else (args[0].shape[-1] if args and isinstance(args[0], torch.Tensor) and args[0].dim() else None)
    )
    if c is not None:
        check_range(module, _values(args, 1), -1, c, i=1, what=f"target class indices, C={c}, -1 ends a list")


def n_classes_targets(module: nn.Module, args: tuple[Any, ...]) -> None:
    """AdaptiveLogSoftmaxWithLoss: targets in [0, n_classes); LinearCrossEntropyLoss: [0, num_classes)."""
    n = getattr(module, "n_classes", None) or getattr(module, "num_classes", None)
    ignore = getattr(module, "ignore_index", None)
    if n is not None:
        check_range(
            module,
            _values(args, 1),
            0,
            n,
            i=1,
            what=f"target class indices, {n} classes",
            allowed=(ignore,) if isinstance(ignore, int) and not 0 <= ignore < n else (),
        )


def ctc(module: nn.Module, args: tuple[Any, ...]) -> None:
    """CTCLoss: targets are classes in [0, C) other than blank; lengths fit the tensors they measure."""
    log_probs = args[0] if args else None
    if not isinstance(log_probs, torch.Tensor) or log_probs.device.type == "meta" or log_probs.dim() not in (2, 3):
        return
    t_max, c = log_probs.shape[0], log_probs.shape[-1]
    blank = module.blank
    if not 0 <= blank < c:
        raise InvalidRequest(
            f"CTCLoss: blank={blank} must be a class of log_probs, between 0 and {c - 1}", field="layer.blank"
        )
    targets, input_lengths, target_lengths = _values(args, 1), _values(args, 2), _values(args, 3)
    if targets is not None:
        check_range(module, targets, 0, c, i=1, what=f"targets, classes of log_probs with C={c}")
        if bool((targets == blank).any()):
            raise InvalidRequest(
                f"CTCLoss: input 1 (targets) holds the blank class {blank}; targets are the labels between the blanks",
                field="inputs[1]",
            )
    check_range(module, input_lengths, 0, t_max + 1, i=2, what=f"input_lengths, at most T={t_max}")
    if targets is not None and target_lengths is not None:
        if targets.dim() == 2:
            s = targets.shape[1]
            check_range(module, target_lengths, 0, s + 1, i=3, what=f"target_lengths, at most S={s}")
        else:
            check_range(module, target_lengths, 0, targets.numel() + 1, i=3, what="target_lengths")
            total = int(target_lengths.long().sum())
            if total != targets.numel():
                raise InvalidRequest(
                    f"CTCLoss: 1-D targets hold every target one after another, so they need sum(target_lengths) "
                    f"= {total} entries; got {targets.numel()}",
                    field="inputs[1]",
                )


def embedding(module: nn.Module, args: tuple[Any, ...]) -> None:
    """Embedding, EmbeddingBag: indices in [0, num_embeddings); a bag's offsets start at 0 and grow."""
    n = module.num_embeddings
    check_range(module, _values(args, 0), 0, n, i=0, what=f"indices, num_embeddings={n}")
    offsets = _values(args, 1)
    x = args[0] if args else None
    if offsets is None or not isinstance(x, torch.Tensor):
        return
    length = x.numel()
    steps = offsets[1:] - offsets[:-1]
    if int(offsets[0]) != 0 or bool((steps < 0).any()) or int(offsets.max()) > length:
        raise InvalidRequest(
            f"EmbeddingBag: input 1 (offsets) says where each bag starts in input 0: it must start at 0, never "
            f"decrease, and stay at most {length} (the number of indices); got {offsets.tolist()[:16]}",
            field="inputs[1]",
        )


def unpool_indices(module: nn.Module, args: tuple[Any, ...]) -> None:
    """MaxUnpool: each index points into one output plane, so it lies in [0, ∏ output spatial)."""
    x, indices = args[0] if args else None, _values(args, 1)
    if not isinstance(x, torch.Tensor) or indices is None:
        return
    n = len(module.kernel_size)  # torch stores a tuple per spatial dimension
    size = 1
    for j in range(n):
        k, s, p = (module.kernel_size[j], module.stride[j], module.padding[j])
        size *= max(0, (x.shape[-n + j] - 1) * s - 2 * p + k)
    if size:  # an empty output writes nothing: no index is read
        check_range(module, indices, 0, size, i=1, what=f"indices into an output plane of {size} elements")


def adaptive_softmax_sizes(kwargs: dict[str, Any]) -> None:
    """AdaptiveLogSoftmaxWithLoss builds tail clusters of in_features // div_value^k features: a tiny
    div_value asks for more features than any tensor can hold, and torch fails deep in empty()."""
    in_features, div = kwargs.get("in_features"), kwargs.get("div_value", 4.0)
    cutoffs = kwargs.get("cutoffs") or []
    if not isinstance(in_features, int) or not isinstance(div, (int, float)) or div <= 0:
        return
    for k in range(1, len(cutoffs) + 1):
        try:
            size = in_features / div**k
        except OverflowError:
            size = float("inf")
        if not size < 2**31:
            raise InvalidRequest(
                f"AdaptiveLogSoftmaxWithLoss: div_value={div:g} makes tail cluster {k} in_features // div_value^{k} "
                f"≈ {size:.3g} features wide; the clusters shrink by div_value each, so use div_value >= 1 "
                f"(torch's default is 4.0)",
                field="layer.div_value",
            )
