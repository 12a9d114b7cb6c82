"""A network's trace: one entry per submodule in execution order, and the network's totals.

The same entry is built whether the shapes were predicted by the layers' formulas (before
anything runs) or recorded by forward hooks during a real or meta forward pass.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from app.core.catalog.families.opaque import Opaque
from app.core.catalog.families.tutorial import BasicLinear


def trace_entry(
    path: str,
    module: nn.Module,
    type_name: str,
    input_shapes: Sequence[Sequence[int]],
    output_shapes: Sequence[Sequence[int]],
    *,
    element_size: int | None = None,
    param_count: int | None = None,
) -> dict[str, Any]:
    """One submodule call: where it sits, what it took and gave, its parameters and cost.

    The same entry whether the shapes were predicted by the formulas or recorded during a forward pass.
    ``param_count``: the module's parameters, when the caller counted them already.
    """
    outputs = [list(s) for s in output_shapes]
    size = element_size if element_size is not None else _element_size(module)
    return {
        "path": path,
        "type": type_name,
        "depth": path.count("."),
        "leaf": computes_itself(module),
        "input_shapes": [list(s) for s in input_shapes],
        "output_shape": outputs[0] if outputs else None,
        "output_shapes": outputs,
        "param_count": param_count if param_count is not None else _param_count(module),
        "macs": macs(module, input_shapes, outputs),
        "activation_bytes": math.prod(outputs[0]) * size if outputs else None,
    }


def computes_itself(module: nn.Module) -> bool:
    """Whether a call of ``module`` is one layer's own arithmetic rather than its children's calls.

    True without submodules, and for MultiheadAttention, whose forward reads its ``out_proj``'s
    weights instead of calling it (so ``out_proj`` never runs as a module and its work is counted in
    the attention's own multiply-adds). Totals count exactly these calls, each once.
    An opaque layer is one call too: its submodules only hold its parameters under their own names.
    """
    return not any(True for _ in module.children()) or isinstance(module, (nn.MultiheadAttention, Opaque))


def _element_size(module: nn.Module) -> int:
    p = next(module.parameters(), None)
    return p.element_size() if p is not None else 4


def macs(
    module: nn.Module, input_shapes: Sequence[Sequence[int]], output_shapes: Sequence[Sequence[int]]
) -> int | None:
    """Multiply-adds of one call, for the layers where the count is well defined."""
    if not output_shapes or isinstance(module, Opaque):  # an opaque layer's work is unknown
        return None
    out = math.prod(output_shapes[0])
    if isinstance(module, nn.Linear):
        return out * module.in_features
    if isinstance(module, nn.Bilinear):
        return out * module.in1_features * module.in2_features
    if isinstance(module, BasicLinear):
        return out * module.weights.shape[1]
    if isinstance(module, nn.MultiheadAttention):
        return _attention_macs(module, input_shapes)
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = math.prod(module.kernel_size)
        if module.transposed:
            return math.prod(input_shapes[0]) * (module.out_channels // module.groups) * kernel
        return out * (module.in_channels // module.groups) * kernel
    if not any(True for _ in module.parameters(recurse=False)) and not list(module.children()):
        return 0
    return None


def _attention_macs(module: nn.MultiheadAttention, input_shapes: Sequence[Sequence[int]]) -> int | None:
    """Query, key and value projections, Q·Kᵀ, the weighted sum of values and ``out_proj``.

    Query: (L, N, E), (N, L, E) with batch_first, or (L, E); key: (S, N, kdim) likewise; value: vdim.
    """
    if not input_shapes:
        return None
    query = input_shapes[0]
    key = input_shapes[1] if len(input_shapes) > 1 else query
    value = input_shapes[2] if len(input_shapes) > 2 else key
    e = module.embed_dim
    queries = math.prod(query) // e  # N·L
    keys = math.prod(key) // module.kdim  # N·S
    values = math.prod(value) // module.vdim
    s = key[-2] if module.batch_first and len(key) == 3 else key[0]
    projections = queries * e * e + keys * module.kdim * e + values * module.vdim * e
    attention = 2 * queries * s * e  # every head: L×S scores of head_dim, then S values of head_dim per query
    return projections + attention + queries * e * e


def shapes_of(value: Any) -> list[list[int]]:
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in shapes_of(v)]
    return []


@contextlib.contextmanager
def tracing(root: nn.Module, sink: dict[str, Any]) -> Iterator[None]:
    """Record every submodule call (pre-order, as execution enters it) into ``sink['trace']``."""
    entries: list[dict[str, Any]] = []
    handles = []
    stack: list[int] = []
    # every module's parameter count, read once (per call, a container would walk its whole subtree again)
    counts = _param_counts(root)
    for path, module in root.named_modules():
        if not path:
            continue

        def pre(mod: nn.Module, args: tuple[Any, ...], path: str = path) -> None:
            entries.append(trace_entry(path, mod, type(mod).__name__, shapes_of(args), [], param_count=counts[id(mod)]))
            stack.append(len(entries) - 1)

        def post(mod: nn.Module, args: tuple[Any, ...], output: Any, path: str = path) -> None:
            index = stack.pop()
            out = output[0] if isinstance(output, (tuple, list)) else output
            size = out.element_size() if isinstance(out, torch.Tensor) else None
            entries[index] = trace_entry(
                path,
                mod,
                type(mod).__name__,
                entries[index]["input_shapes"],
                shapes_of(output),
                element_size=size,
                param_count=counts[id(mod)],
            )

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    sink["trace"] = entries
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _param_count(module: nn.Module) -> int:
    """``sum(p.numel() for p in module.parameters())``; a module without children reads only its own."""
    if next(module.children(), None) is None:
        return sum(p.numel() for p in module.parameters(recurse=False))
    return sum(p.numel() for p in module.parameters())


def _param_counts(root: nn.Module) -> dict[int, int]:
    """Parameters of every module under ``root``, by ``id``: what ``sum(p.numel() for p in
    module.parameters())`` gives, added up from the leaves once instead of walking each subtree again."""
    every = [p for _, p in root.named_parameters(remove_duplicate=False)]
    if len({id(p) for p in every}) != len(every):  # a parameter shared (tied weights): each module counts it once
        return {id(m): sum(p.numel() for p in m.parameters()) for m in root.modules()}
    counts: dict[int, int] = {}

    def count(module: nn.Module) -> int:
        if id(module) not in counts:
            own = sum(p.numel() for p in module.parameters(recurse=False))
            counts[id(module)] = own + sum(count(c) for c in module.children())
        return counts[id(module)]

    count(root)
    return counts


def totals(entries: list[dict[str, Any]], root: nn.Module) -> dict[str, Any]:
    leaves = [e for e in entries if e["leaf"]]
    counted = [e.get("macs") for e in leaves]
    params = list(root.parameters())  # one walk of the network (a 512-block one: 4 ms each)
    return {
        "param_count": sum(p.numel() for p in params),
        "param_bytes": sum(p.numel() * p.element_size() for p in params),
        "macs": sum(m for m in counted if m is not None),
        "macs_complete": all(m is not None for m in counted),
        "activation_bytes": sum(e.get("activation_bytes") or 0 for e in leaves),
        "layers": len(leaves),
    }


def subtotals(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The totals of every container in the trace, by its path: what a collapsed block stands for.

    Each container adds up the leaf calls below it, as :func:`totals` does for the whole network (a module
    called twice counts twice, as it runs twice); its parameters are its trace entry's own count."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        if not e["leaf"] and e["path"] not in out:
            out[e["path"]] = {
                "type": e["type"],
                "param_count": e["param_count"],
                "macs": 0,
                "macs_complete": True,
                "activation_bytes": 0,
                "layers": 0,
            }
    for e in entries:
        if not e["leaf"]:
            continue
        parts = e["path"].split(".")
        # every enclosing container: "layer1.0.block" lies in "layer1.0" and "layer1"
        for k in range(1, len(parts)):
            box = out.get(".".join(parts[:k]))
            if box is None:
                continue
            if e.get("macs") is None:
                box["macs_complete"] = False
            else:
                box["macs"] += e["macs"]
            box["activation_bytes"] += e.get("activation_bytes") or 0
            box["layers"] += 1
    return out


def is_network(module: nn.Module) -> bool:
    return any(True for _ in module.children())
