"""Resolving and instantiating layer configs, including containers that nest other configs.

``resolve`` validates a config (recursively for containers) into (spec, kwargs) without building
anything; ``instantiate`` builds the module from that, under whatever device context the caller
set (meta for planning, CPU under the seed for the real run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from app.core.build import build_module, lookup, resolve_args
from app.core.catalog import LayerSpec, Registry


def resolve(registry: Registry, config: Any, *, field: str) -> tuple[LayerSpec, dict[str, Any]]:
    from app.core.custom import specialise

    spec = lookup(registry, config, field=field)
    kwargs = resolve_args(spec, config, field=field)
    for p in spec.params:
        if p.name not in kwargs:
            continue
        if p.type == "layer" and kwargs[p.name] is not None:
            kwargs[p.name] = resolve(registry, kwargs[p.name], field=f"{field}.{p.name}")
        elif p.type == "layers":
            kwargs[p.name] = [
                (_child_name(child, i), *resolve(registry, child, field=f"{field}.{p.name}[{i}]"))
                for i, child in enumerate(kwargs[p.name])
            ]
    return specialise(spec, kwargs), kwargs


def _child_name(config: Any, index: int) -> str:
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else str(index)


def instantiate(registry: Registry | None, spec: LayerSpec, kwargs: dict[str, Any], *, field: str) -> nn.Module:
    """Build ``spec`` from resolved kwargs; nested configs are built first, in argument order."""
    built: dict[str, Any] = {}
    for p in spec.params:
        if p.name not in kwargs:
            continue
        value = kwargs[p.name]
        if p.type == "layer" and value is not None:
            child_spec, child_kwargs = value
            built[p.name] = instantiate(registry, child_spec, child_kwargs, field=f"{field}.{p.name}")
        elif p.type == "layers":
            built[p.name] = [
                (name, instantiate(registry, cs, ck, field=f"{field}.{p.name}[{i}]"))
                for i, (name, cs, ck) in enumerate(value)
            ]
        else:
            built[p.name] = value
    return build_module(spec, built, field=field)


# ---------------------------------------------------------------------------------------------
# tracing a network: one entry per submodule, in execution order
# ---------------------------------------------------------------------------------------------


def _macs(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int | None:
    """Multiply-adds of one call, for the layers where the count is well defined."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, torch.Tensor):
        return None
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.Bilinear):
        return out.numel() * module.in1_features * module.in2_features
    if type(module).__name__ == "BasicLinear":
        return out.numel() * module.weights.shape[1]
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = math.prod(module.kernel_size)
        if module.transposed:
            x = inputs[0]
            return x.numel() * (module.out_channels // module.groups) * kernel
        return out.numel() * (module.in_channels // module.groups) * kernel
    if not any(True for _ in module.parameters(recurse=False)) and not list(module.children()):
        return 0
    return None


def _shapes(value: Any) -> list[list[int]]:
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _shapes(v)]
    return []


@contextlib.contextmanager
def tracing(root: nn.Module, sink: dict[str, Any]):
    """Record every submodule call (pre-order, i.e. as execution enters it) into ``sink['trace']``."""
    entries: list[dict[str, Any]] = []
    handles = []
    stack: list[dict[str, Any]] = []
    for path, module in root.named_modules():
        if not path:
            continue

        def pre(mod, args, path=path):
            entry = {
                "path": path, "type": type(mod).__name__, "depth": path.count("."),
                "leaf": not any(True for _ in mod.children()),
                "input_shapes": _shapes(args), "output_shape": None,
                "param_count": sum(p.numel() for p in mod.parameters()),
            }
            entries.append(entry)
            stack.append(entry)

        def post(mod, args, output):
            entry = stack.pop()
            shapes = _shapes(output)
            entry["output_shape"] = shapes[0] if shapes else None
            entry["output_shapes"] = shapes
            entry["macs"] = _macs(mod, args, output)
            out = output[0] if isinstance(output, (tuple, list)) else output
            entry["activation_bytes"] = out.numel() * out.element_size() if isinstance(out, torch.Tensor) else None

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
    macs = [e.get("macs") for e in leaves]
    return {
        "param_count": sum(p.numel() for p in root.parameters()),
        "param_bytes": sum(p.numel() * p.element_size() for p in root.parameters()),
        "macs": sum(m for m in macs if m is not None),
        "macs_complete": all(m is not None for m in macs),
        "activation_bytes": sum(e.get("activation_bytes") or 0 for e in leaves),
        "layers": len(leaves),
    }


def _is_network(module: nn.Module) -> bool:
    return any(True for _ in module.children())


def trace_fields(plan: Any, ex: Any) -> dict[str, Any]:
    if not _is_network(ex.module) or "trace" not in ex.extra:
        return {}
    return {"trace": ex.extra["trace"], "totals": totals(ex.extra["trace"], ex.module)}


def shape_trace_fields(plan: Any) -> dict[str, Any]:
    """The same trace on the meta device (no memory touched)."""
    if not _is_network(plan.meta):
        return {}
    sink: dict[str, Any] = {}
    xs = [torch.empty(p.shape, dtype=p.dtype, device="meta") for p in plan.inputs]
    try:
        with torch.no_grad(), tracing(plan.meta, sink):
            plan.meta(*xs)
    except Exception:  # noqa: BLE001 - no meta kernel for some op: report the trace so far
        pass
    return {"trace": sink.get("trace", []), "totals": totals(sink.get("trace", []), plan.meta)}


@dataclass
class Child:
    """A layer inside a network as it really ran: its module, inputs and outputs."""

    path: str
    module: nn.Module
    args: tuple[Any, ...]
    output: Any
    execution: Any

    @property
    def inputs(self) -> list[torch.Tensor]:
        return [a for a in self.args if isinstance(a, torch.Tensor)]


def run_child(registry: Registry, req: Any, settings: Any) -> Child:
    """Run the whole network and capture what the child at ``req.path`` received and returned."""
    from app.core import engine
    from app.core.errors import InvalidRequest

    captured: dict[str, Any] = {}

    @contextlib.contextmanager
    def capture(root: nn.Module, sink: dict[str, Any]):
        modules = dict(root.named_modules())
        if req.path not in modules or not req.path:
            children = [p for p in modules if p]
            raise InvalidRequest(
                f"the network has no layer at path {req.path!r}; its layers are: {', '.join(children) or 'none'}",
                field="path",
            )
        target = modules[req.path]

        def hook(mod, args, output):
            captured.setdefault("args", args)
            captured.setdefault("output", output)

        handle = target.register_forward_hook(hook)
        captured["module"] = target
        try:
            with tracing(root, sink):
                yield
        finally:
            handle.remove()

    ex = engine.execute(registry, req, settings, hooks=capture)
    if "args" not in captured:
        raise InvalidRequest(f"layer {req.path} was not called during the forward pass", field="path")
    return Child(req.path, captured["module"], captured["args"], captured["output"], ex)


def child_config(spec: LayerSpec, kwargs: dict[str, Any], path: str) -> tuple[LayerSpec, dict[str, Any]] | None:
    """The resolved config of the child at a module path, when the path runs through containers."""
    head, _, rest = path.partition(".")
    candidates: list[tuple[str, LayerSpec, dict[str, Any]]] = []
    if spec.type == "Sequential":
        candidates = kwargs["layers"]
    elif spec.type == "Residual":
        if head == "body":
            return child_config(dataclasses.replace(spec, type="Sequential"), {"layers": kwargs["body"]}, rest) if rest else None
        if head == "shortcut" and kwargs.get("shortcut"):
            child = kwargs["shortcut"]
            return child if not rest else child_config(child[0], child[1], rest)
        return None
    for name, child_spec, child_kwargs in candidates:
        if name == head:
            return (child_spec, child_kwargs) if not rest else child_config(child_spec, child_kwargs, rest)
    return None


def explain_child(registry: Registry, req: Any, settings: Any) -> dict[str, Any]:
    """Explain an element of the output of the child at ``req.path``, on the input it really got."""
    from app.core.errors import NotExplainable
    from app.core.explain import explain_module

    child = run_child(registry, req, settings)
    type_name = type(child.module).__name__
    if type_name not in registry:
        raise NotExplainable(f"layer {req.path} ({type_name}) has no manual computation", field="path")
    spec = registry.get(type_name, field="path")
    out = child.output[0] if isinstance(child.output, (tuple, list)) else child.output
    result = explain_module(spec, child.module, child.inputs, out, req.index)
    result["path"] = req.path
    result["input_shapes"] = [list(a.shape) for a in child.inputs]
    return result
