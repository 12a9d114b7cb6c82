"""A network's trace: one entry per submodule in execution order, and the network's totals.

The same entry is built whether the shapes were predicted by the layers' formulas (before
anything runs) or recorded by forward hooks during a real or meta forward pass.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from app.core.catalog.families.opaque import Opaque
from app.core.catalog.families.tutorial import BasicLinear


@dataclass(frozen=True)
class Counted:
    """What a plan counted once of its modules, so that predicted trace entries walk no module's subtree."""

    #: every module's parameters, by ``id`` (a module of a planning skeleton shared by several paths
    #: counts the same at each)
    param_counts: dict[int, int]
    #: bytes of one element of the plan's dtype (the activations' size)
    element_size: int
    #: an id per container config, equal for identical subtrees (:func:`app.core.networks.tree.subtree_ids`)
    subtrees: dict[int, int] = field(default_factory=dict)
    #: what a subtree predicted, by (its id, its input shapes): its output and its trace entries by
    #: path inside it; the next identical block on the same shapes is answered from here
    predictions: dict[Any, Any] = field(default_factory=dict)
    #: each distinct predicted call (module, catalog entry, input and output shapes) with how many times
    #: it is made, for the memory estimate; the last dict counts the calls of the subtree predicted now
    #: (:func:`app.core.networks.tree.counted_entry`)
    calls: list[dict[Any, list[Any]]] = field(default_factory=lambda: [{}])
    #: the first trace entry of each distinct call, by the same key: the next such call's entry is a copy
    entries: dict[Any, dict[str, Any]] = field(default_factory=dict)


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
    ``param_count``: the module's parameters, when the caller counted them already; ``element_size``:
    the bytes of one output element (the output tensor's, or the plan's dtype), when the caller knows it.
    Given both, nothing walks the module's subtree (a container's generators cost per call).
    """
    outputs = [list(s) for s in output_shapes]
    # without an output there are no activation bytes to size: no need to look for a parameter's dtype
    size = element_size if element_size is not None or not outputs else _element_size(module)
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
    return not _has_children(module) or isinstance(module, (nn.MultiheadAttention, Opaque))


def _has_children(module: nn.Module) -> bool:
    """``any(True for _ in module.children())`` without the generator chain (read per trace entry)."""
    return any(m is not None for m in module._modules.values())


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
    # no parameters of its own and no children (an activation, a reshape): no multiply-adds
    return 0 if _no_work(module) else None


def _no_work(module: nn.Module) -> bool:
    """No parameters of its own and no children, read from the module's own dicts as
    ``parameters(recurse=False)`` and ``children()`` do, without their generators."""
    return all(p is None for p in module._parameters.values()) and not _has_children(module)


#: what :func:`fixed_macs` says of a module whose multiply-adds :func:`macs` counts from each call's shapes
BY_SHAPES = "by shapes"


def fixed_macs(module: nn.Module) -> int | str | None:
    """What :func:`macs` says of every call of ``module`` with an output, whatever its shapes, where that is
    decided by the module alone (an activation's 0, a container's None); else :data:`BY_SHAPES`. Read once
    per module by :func:`tracing`, instead of :func:`macs`'s chain of type checks at every call."""
    if isinstance(module, Opaque):
        return None
    if isinstance(module, (nn.Linear, nn.Bilinear, BasicLinear, nn.MultiheadAttention, nn.modules.conv._ConvNd)):
        return BY_SHAPES
    return 0 if _no_work(module) else None


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


def named_modules(root: nn.Module) -> list[tuple[str, nn.Module]]:
    """``list(root.named_modules())``: every module once, pre-order, at the first path it stands at.

    A stack instead of torch's nested generators: each module of a 512-block network would otherwise
    pass up through one generator per level above it (a 1538-module walk, made five times an answer,
    cost about 2 ms each)."""
    out: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    stack = [("", root)]
    while stack:
        path, module = stack.pop()
        if id(module) in seen:  # torch's memo: a module at a second path is left out there
            continue
        seen.add(id(module))
        out.append((path, module))
        # pushed last to first, so that the first child is popped (visited) first, as torch recurses
        stack.extend(
            reversed(
                [
                    (f"{path}.{name}" if path else name, child)
                    for name, child in module._modules.items()
                    if child is not None
                ]
            )
        )
    return out


def named_parameters(
    root: nn.Module, modules: list[tuple[str, nn.Module]] | None = None
) -> list[tuple[str, nn.Parameter]]:
    """``list(root.named_parameters())``: each parameter once, under the first name it has, in torch's order.

    ``modules``: ``named_modules(root)``, where the caller walked the root already."""
    out: list[tuple[str, nn.Parameter]] = []
    seen: set[int] = set()
    for path, module in modules if modules is not None else named_modules(root):
        for name, p in module._parameters.items():
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            out.append((f"{path}.{name}" if path else name, p))
    return out


def shapes_of(value: Any) -> list[list[int]]:
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and isinstance(value[0], torch.Tensor):  # a call's usual ``(x,)``: no nested walk
            return [list(value[0].shape)]
        return [s for v in value for s in shapes_of(v)]
    return []


#: the key of ``tracing``'s sink under which a caller hands over the root's modules, walked already
#: (``named_modules(root)``): the run walks a network once for every hook and for its answer
MODULES = "modules"
#: the key under which a run hands over the config tree its module was built from (a LayerNode): what
#: follows from the config alone is kept per tree (:class:`PerConfig`) for the next run of its kept plan
CONFIG = "config"


class PerConfig:
    """A few recent values kept per config tree, known by identity: a kept plan's copies (one request
    repeated but for its seed, app.core.running.execute.planned) share their tree, and each run of it
    builds a module of the same classes and arguments. Each tree is held with its value, so that its id
    is not reused while the value is kept; as many trees as the plan cache keeps plans
    (app.core.running.execute.PLAN_CACHE_SIZE), so that no tree outlives its plan for long."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, config: Any, *key: Any) -> Any:
        """The value kept for ``config`` and ``key``; None where there is none."""
        with self._lock:
            kept = self._kept.get((id(config), *key))
            if kept is None or kept[0] is not config:
                return None
            self._kept.move_to_end((id(config), *key))
            return kept[1]

    def put(self, config: Any, *key: Any, value: Any) -> None:
        with self._lock:
            self._kept[(id(config), *key)] = (config, value)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


def known_classes(modules: list[tuple[str, nn.Module]]) -> bool:
    """Every class in a walk of a module is torch.nn's or this app's: what it holds and shows (its
    parameters' shapes, its text) follows from its constructors' arguments alone. Not torch.ao's (an
    observer shows the range it has seen), nor a plugin's, which might show or size anything."""
    return all(cls.__module__.startswith(("torch.nn.", "app.core.")) for cls in {type(m) for _, m in modules})


#: per config tree: what the trace's entries say of each module whatever the call (:func:`tracing`)
_FACTS = PerConfig()


@contextlib.contextmanager
def tracing(root: nn.Module, sink: dict[str, Any]) -> Iterator[None]:
    """Record every submodule call (pre-order, as execution enters it) into ``sink['trace']``.

    One global hook pair (torch's ``register_module_forward_pre_hook`` / ``register_module_forward_hook``)
    instead of two handles per module: registering and removing 3076 handles for a 1538-module network
    cost more than its whole forward. The hooks see every module call in the process while they are
    registered, so each looks its module up among the root's and ignores the rest (the root itself, a
    module of another request running in another thread). ``sink[MODULES]``, where the caller walked
    the root already, is that walk.

    Each entry is :func:`trace_entry`'s, made here from what the call alone decides (its shapes, its
    multiply-adds) and what its module says whatever the call (its path, depth, whether it computes
    itself, its parameters), read once per module before the forward, and kept per config tree
    (``sink[CONFIG]``) for the next run of the same plan. A 512-block network's forward measured 14 ms
    traced when every call made its entry with :func:`trace_entry` over a walk of its own, 9-10 ms now,
    against 7 with two hooks that do nothing and 5 without hooks.
    """
    entries: list[dict[str, Any]] = []
    modules = sink.get(MODULES)
    if modules is None:
        modules = named_modules(root)
    config = sink.get(CONFIG)
    facts = _FACTS.get(config) if config is not None else None
    if facts is None or len(facts) != len(modules):
        # every module's parameter count, read once (per call, a container would walk its whole subtree again)
        counts = _param_counts(root)
        facts = [(path, path.count("."), computes_itself(m), counts[id(m)], fixed_macs(m)) for path, m in modules]
        if config is not None and known_classes(modules):
            # the next run of this config builds the same classes, paths and parameter shapes: 2.5 ms of a
            # 512-block network's run, read again from here
            _FACTS.put(config, value=facts)
    known = {id(m): f for (path, m), f in zip(modules, facts) if path}

    # a call still open holds (its entry's index, what its module says, input shapes) until it returns: its
    # entry is made once, by the post hook; a call that never returns (its forward raised) gets its entry
    # without outputs at the end
    open_calls: list[tuple[int, nn.Module, tuple[str, int, bool, int, Any], list[list[int]]]] = []

    tensor = torch.Tensor

    def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        facts = known.get(id(mod))
        if facts is None:
            return
        # the usual call, one plain tensor, read without shapes_of's checks (3078 hook calls a 512-block run)
        first = args[0] if len(args) == 1 else None
        shapes = [list(first.shape)] if type(first) is tensor else shapes_of(args)
        open_calls.append((len(entries), mod, facts, shapes))
        entries.append({})  # its place in pre-order, filled when the call returns

    def post(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if id(mod) not in known:
            return
        index, _, (path, depth, leaf, params, fixed), input_shapes = open_calls.pop()
        if type(output) is tensor:  # the usual output, one plain tensor
            first = list(output.shape)
            outputs = [first]
            activation = math.prod(first) * output.element_size()
        else:
            outputs = shapes_of(output)
            first, activation = _first_output(mod, output, outputs)
        # trace_entry's entry, field for field (the type is read at the call's end, as trace_entry's caller did)
        entries[index] = {
            "path": path,
            "type": type(mod).__name__,
            "depth": depth,
            "leaf": leaf,
            "input_shapes": input_shapes,
            "output_shape": first,
            "output_shapes": outputs,
            "param_count": params,
            "macs": macs(mod, input_shapes, outputs) if fixed is BY_SHAPES or not outputs else fixed,
            "activation_bytes": activation,
        }

    sink["trace"] = entries
    handles = [register_module_forward_pre_hook(pre)]
    try:
        handles.append(register_module_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()
        for index, mod, (path, _, _, params, _), input_shapes in open_calls:
            entries[index] = trace_entry(path, mod, type(mod).__name__, input_shapes, [], param_count=params)


def _first_output(module: nn.Module, output: Any, outputs: list[list[int]]) -> tuple[list[int] | None, int | None]:
    """The first output's shape and bytes (:func:`trace_entry`'s ``output_shape`` and ``activation_bytes``) of
    a call whose output is not one plain tensor: sized by the first output where it is a tensor, else by
    the module's parameters' dtype, as trace_entry sizes it."""
    if not outputs:
        return None, None
    out = output[0] if isinstance(output, (tuple, list)) else output
    size = out.element_size() if isinstance(out, torch.Tensor) else _element_size(module)
    return outputs[0], math.prod(outputs[0]) * size


def _param_count(module: nn.Module) -> int:
    """``sum(p.numel() for p in module.parameters())``; a module without children reads only its own."""
    if next(module.children(), None) is None:
        return sum(p.numel() for p in module.parameters(recurse=False))
    return sum(p.numel() for p in module.parameters())


def _param_counts(root: nn.Module) -> dict[int, int]:
    """Parameters of every module under ``root``, by ``id``: what ``sum(p.numel() for p in
    module.parameters())`` gives, added up from the leaves once instead of walking each subtree again
    (read from the modules' own dicts, as ``parameters(recurse=False)`` and ``children()`` do)."""
    counts: dict[int, int] = {}
    seen: set[int] = set()
    shared = False

    def count(module: nn.Module) -> int:
        nonlocal shared
        if id(module) in counts:
            # a module under two paths: its parameters (if any) are shared
            shared = shared or counts[id(module)] > 0
            return counts[id(module)]
        own = 0
        for p in module._parameters.values():
            if p is not None:
                shared = shared or id(p) in seen
                seen.add(id(p))
                own += p.numel()
        counts[id(module)] = own + sum(count(c) for c in module._modules.values() if c is not None)
        return counts[id(module)]

    count(root)
    if shared:  # a parameter in two places (tied weights): each module counts it once, as parameters() does
        return {id(m): sum(p.numel() for p in m.parameters()) for m in root.modules()}
    return counts


def totals(
    entries: list[dict[str, Any]], root: nn.Module, modules: list[tuple[str, nn.Module]] | None = None
) -> dict[str, Any]:
    """The network's totals: its parameters (each once) and the sums over its leaf calls. ``modules``:
    ``named_modules(root)``, where the caller walked the root already."""
    leaves = [e for e in entries if e["leaf"]]
    counted = [e.get("macs") for e in leaves]
    # each parameter once, as named_parameters() lists them (a module once, a tied parameter once), in one
    # loop for both sums and without their names
    count = nbytes = 0
    seen: set[int] = set()
    for _, module in modules if modules is not None else named_modules(root):
        for p in module._parameters.values():
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            n = p.numel()
            count += n
            nbytes += n * p.element_size()
    return {
        "param_count": count,
        "param_bytes": nbytes,
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
        path = e["path"]
        macs = e.get("macs")
        activation = e.get("activation_bytes") or 0
        # every enclosing container: "layer1.0.block" lies in "layer1" and "layer1.0" (each prefix ending
        # before a dot, sliced where the dot is: no split and join per level for 1538 entries)
        dot = path.find(".")
        while dot != -1:
            box = out.get(path[:dot])
            if box is not None:
                if macs is None:
                    box["macs_complete"] = False
                else:
                    box["macs"] += macs
                box["activation_bytes"] += activation
                box["layers"] += 1
            dot = path.find(".", dot + 1)
    return out


def is_network(module: nn.Module) -> bool:
    return any(True for _ in module.children())
