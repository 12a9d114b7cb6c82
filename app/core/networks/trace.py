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

from app.core.catalog.families.tutorial import BasicLinear


def trace_entry(path: str, module: nn.Module, type_name: str, input_shapes: Sequence[Sequence[int]],
                output_shapes: Sequence[Sequence[int]], *, macs: int | None = None,
                activation_bytes: int | None = None) -> dict[str, Any]:
    """One submodule call: where it sits, what it took and gave, its parameters and cost."""
    outputs = [list(s) for s in output_shapes]
    return {
        "path": path,
        "type": type_name,
        "depth": path.count("."),
        "leaf": not any(True for _ in module.children()),
        "input_shapes": [list(s) for s in input_shapes],
        "output_shape": outputs[0] if outputs else None,
        "output_shapes": outputs,
        "param_count": sum(p.numel() for p in module.parameters()),
        "macs": macs,
        "activation_bytes": activation_bytes,
    }


def macs(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int | None:
    """Multiply-adds of one call, for the layers where the count is well defined."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, torch.Tensor):
        return None
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.Bilinear):
        return out.numel() * module.in1_features * module.in2_features
    if isinstance(module, BasicLinear):
        return out.numel() * module.weights.shape[1]
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = math.prod(module.kernel_size)
        if module.transposed:
            return inputs[0].numel() * (module.out_channels // module.groups) * kernel
        return out.numel() * (module.in_channels // module.groups) * kernel
    if not any(True for _ in module.parameters(recurse=False)) and not list(module.children()):
        return 0
    return None


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
    stack: list[tuple[int, tuple[Any, ...]]] = []
    for path, module in root.named_modules():
        if not path:
            continue

        def pre(mod: nn.Module, args: tuple[Any, ...], path: str = path) -> None:
            entries.append(trace_entry(path, mod, type(mod).__name__, shapes_of(args), []))
            stack.append((len(entries) - 1, args))

        def post(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            index, _ = stack.pop()
            out = output[0] if isinstance(output, (tuple, list)) else output
            entries[index].update(
                output_shapes=shapes_of(output),
                output_shape=(shapes_of(output) or [None])[0],
                macs=macs(mod, args, output),
                activation_bytes=out.numel() * out.element_size() if isinstance(out, torch.Tensor) else None,
            )

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    sink["trace"] = entries
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def totals(entries: list[dict[str, Any]], root: nn.Module) -> dict[str, Any]:
    leaves = [e for e in entries if e["leaf"]]
    counted = [e.get("macs") for e in leaves]
    return {
        "param_count": sum(p.numel() for p in root.parameters()),
        "param_bytes": sum(p.numel() * p.element_size() for p in root.parameters()),
        "macs": sum(m for m in counted if m is not None),
        "macs_complete": all(m is not None for m in counted),
        "activation_bytes": sum(e.get("activation_bytes") or 0 for e in leaves),
        "layers": len(leaves),
    }


def is_network(module: nn.Module) -> bool:
    return any(True for _ in module.children())
