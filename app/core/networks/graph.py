"""The dataflow graph of a built module: module calls, functions and methods, with the tensors between them.

``torch.fx`` symbolic tracing captures the graph; a module without submodules (a Conv2d, an LSTM, the
tutorial's BasicLinear) and MultiheadAttention (whose forward reads its out_proj's weights instead of
calling it) are leaves, so each is one node whose ``path`` is its module path, as in the trace. Where fx
cannot trace a forward (control flow on tensor values, ...), the graph is recorded while the module runs
on the meta device instead: forward hooks mark the leaf calls and a ``TorchFunctionMode`` records every
torch function and tensor method called between them. ``method`` says which: ``fx``, ``hooks`` or
``module`` (a single layer).

Layers' shapes come from the real run's own trace (``/api/run``: no layer runs twice) or from their
formulas (``/api/shape``); the operations between layers, and layers without either, run on meta
tensors (nothing allocated); where torch has no meta kernel, the real tensors of the run when there is one.

A run's graph (:func:`_run_graph`) is made from the run alone: the module that ran is traced (no meta
module is built for it), or, for a network of ``nn.Sequential`` containers, read from the run's trace
in call order with fx's own names (:func:`_chain`); a meta module is built only for /api/shape and
for a forward fx cannot trace.

A planned chain (/api/shape, a receptive field's first answer) is read the same way from the plan's
skeleton and the formulas' trace (:func:`planned_chain`): no meta module, no tracing. A caller that keeps
a trace of its own lends it to :func:`capture` (``trace``), so one tracing serves both.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import operator
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import ShapeProp, _extract_tensor_metadata
from torch.overrides import TorchFunctionMode

from app.core import tensors as tensor_data
from app.core.catalog.families.opaque import NOT_COMPUTED, Opaque
from app.core.networks.configs import module_config
from app.core.networks.trace import computes_itself, named_modules

MAX_NODES = 2_000

_SYMBOLS: dict[Any, str] = {
    operator.add: "+",
    operator.iadd: "+",
    torch.add: "+",
    operator.sub: "−",
    torch.sub: "−",
    operator.mul: "×",
    operator.imul: "×",
    torch.mul: "×",
    operator.truediv: "÷",
    torch.div: "÷",
    operator.matmul: "@",
    torch.matmul: "@",
    operator.neg: "−x",
}
_SYMBOL_NAMES = {
    "add": "+",
    "add_": "+",
    "__add__": "+",
    "__iadd__": "+",
    "__radd__": "+",
    "sub": "−",
    "__sub__": "−",
    "mul": "×",
    "__mul__": "×",
    "__rmul__": "×",
    "__matmul__": "@",
    "matmul": "@",
    "__truediv__": "÷",
    "div": "÷",
}


def is_leaf(module: nn.Module) -> bool:
    """One node in the graph: a layer that does its own arithmetic (what the trace's totals count)."""
    return computes_itself(module)


class _LeafTracer(fx.Tracer):
    """Leaf modules stay one node each. ``names``: for a ``Graph`` config's module (a GraphModule built from
    the config), its operation nodes in order, as (config name, fx op, target): the calls made by the
    root's own forward() are named as the config names them (``act``, ``sum``), not as fx would (``relu``,
    ``add``); module calls and parameters already carry their config names, their module paths."""

    def __init__(self, names: list[tuple[str, str, Any]] | None = None) -> None:
        super().__init__()
        self.pending = list(reversed(names or []))
        self.mismatch = False
        #: fx node name -> the config operation it is (e.g. "act" -> "relu")
        self.ops: dict[str, str] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf(m)

    def create_node(
        self, kind: str, target: Any, args: Any, kwargs: Any, name: str | None = None, type_expr: Any = None
    ) -> fx.Node:
        if kind in ("call_function", "call_method") and not self.module_stack and not self.mismatch:
            if self.pending and self.pending[-1][2:] == (kind, target):
                name, op = self.pending.pop()[:2]
                node = super().create_node(kind, target, args, kwargs, name=name, type_expr=type_expr)
                self.ops[node.name] = op
                return node
            self.mismatch = True
        return super().create_node(kind, target, args, kwargs, name=name, type_expr=type_expr)


def _config_ops(module: nn.Module) -> list[tuple[str, str, str, Any]] | None:
    """A Graph config's operation nodes in execution order, as (config name, operation, fx op, target)."""
    meta = module.meta if isinstance(module, fx.GraphModule) else {}
    names, ops = meta.get("config_names"), meta.get("config_ops")
    if names is None or ops is None:
        return None
    out = []
    for n in module.graph.nodes:
        if n.op in ("call_function", "call_method"):
            name = names.get(n.name, n.name)
            out.append((name, ops.get(name, ""), n.op, n.target))
    return out


def _shape(meta: Any) -> list[int] | None:
    # ShapeProp stores a TensorMetadata (a NamedTuple with .shape) per tensor
    shape = getattr(meta, "shape", None)
    return [int(d) for d in shape] if shape is not None else None


def _shapes(meta: Any) -> list[list[int]] | None:
    if meta is None:
        return None
    if getattr(meta, "shape", None) is None and isinstance(meta, (tuple, list)):
        out = [_shape(m) for m in meta]
        return out if any(s is not None for s in out) else None
    s = _shape(meta)
    return [s] if s is not None else None


def _function_label(target: Any) -> str:
    if target in _SYMBOLS:
        return _SYMBOLS[target]
    name = getattr(target, "__name__", str(target))
    return _SYMBOL_NAMES.get(name, name)


def _module_label(module: nn.Module) -> str:
    """A module call's label: its class, or for an opaque layer the class it stands for and that its
    numbers are not computed."""
    if isinstance(module, Opaque):
        return f"{module.type_name} · {NOT_COMPUTED}"
    return type(module).__name__


def _node_entry(
    node_id: str,
    op: str,
    label: str,
    *,
    path: str | None = None,
    type_name: str | None = None,
    shapes: list[list[int]] | None = None,
    scope: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """One node; ``scope`` lists the modules whose forward() made the call, outermost first."""
    return {
        "id": node_id,
        "op": op,
        "label": label,
        "path": path,
        "type": type_name,
        "shape": shapes[0] if shapes and len(shapes) == 1 else None,
        "shapes": shapes,
        "scope": scope or [],
    }


def _scope(stack: Any, own: str | None) -> list[dict[str, str]]:
    out = []
    for key, value in (stack or {}).items():
        path, cls = value if isinstance(value, tuple) else (key, value)
        if path != own and path:
            out.append(_scope_entry(str(path), cls))
    return out


def _scope_entry(path: str, cls: Any) -> dict[str, Any]:
    """An enclosing module; ``chain``: it only passes each child's output to the next (nn.Sequential),
    so a drawing need not frame it."""
    chain = isinstance(cls, type) and issubclass(cls, nn.Sequential)
    return {"path": path, "type": getattr(cls, "__name__", str(cls)), "chain": chain}


# ---------------------------------------------------------------------------------------------
# torch.fx
# ---------------------------------------------------------------------------------------------


def _concrete_args(module: nn.Module, n_inputs: int) -> dict[str, Any] | None:
    """Optional forward() arguments the request does not pass are fixed at their defaults (masks: None)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    extra = {p.name: p.default for p in params[n_inputs:] if p.default is not p.empty}
    return extra or None


def traced(module: nn.Module, n_inputs: int) -> fx.GraphModule:
    """The traced graph whose node names are the dataflow view's ids (what :func:`capture` and :func:`record` use)."""
    return _fx_graph(module, n_inputs)


def traced_graph(module: nn.Module, n_inputs: int) -> fx.Graph:
    """:func:`traced`'s graph alone: no GraphModule, whose generated code costs as much as the tracing
    (for a caller that interprets the graph, or generates code of its own from it)."""
    return _leaf_trace(module, n_inputs)[0]


def leaf_trace(module: nn.Module, n_inputs: int) -> tuple[fx.Graph, dict[str, str]]:
    """:func:`traced_graph` with its ``Graph`` config's operations by node name (what :func:`capture`
    labels nodes with), for a caller that keeps the trace and lends it to :func:`capture`."""
    graph, tracer = _leaf_trace(module, n_inputs)
    return graph, tracer.ops


#: a trace lent to :func:`capture` by its caller, made on a cache miss only: the graph and its operations
Trace = Callable[[], tuple[fx.Graph, dict[str, str]]]


def _leaf_trace(module: nn.Module, n_inputs: int) -> tuple[fx.Graph, _LeafTracer]:
    names = _config_ops(module)
    tracer = _LeafTracer(names)
    graph = tracer.trace(module, concrete_args=_concrete_args(module, n_inputs))
    if names is not None and (tracer.mismatch or tracer.pending):
        # the calls did not line up one to one with the config's operations: fx's own names, consistently
        tracer = _LeafTracer()
        graph = tracer.trace(module, concrete_args=_concrete_args(module, n_inputs))
    return graph, tracer


def _fx_graph(module: nn.Module, n_inputs: int, trace: Trace | None = None) -> fx.GraphModule:
    """``module`` traced into a GraphModule; ``trace``: the caller's trace of it (or of a module built from
    the same config, whose paths are the same), which is then not traced again."""
    if trace is not None:
        graph, ops = trace()
        gm = fx.GraphModule(module, graph)
        gm.meta["config_ops"] = ops
        return gm
    graph, tracer = _leaf_trace(module, n_inputs)
    gm = fx.GraphModule(tracer.root, graph)
    gm.meta["config_ops"] = tracer.ops
    return gm


def _fx_nodes(gm: fx.GraphModule) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return _graph_nodes(gm, gm.graph, gm.meta.get("config_ops", {}))


def _graph_nodes(
    root: nn.Module, graph: fx.Graph, config_ops: dict[str, str], modules: dict[str, nn.Module] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The view's nodes and edges of ``graph`` (``root``'s trace; each node's shapes in its ``tensor_meta``).
    ``config_ops``: a Graph config's operation by fx node name (:class:`_LeafTracer`'s ``ops``);
    ``modules``: ``root``'s modules by path, where the caller has them (else each is looked up)."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    kept: dict[str, dict[str, Any]] = {}
    for node in graph.nodes:
        shapes = _shapes(node.meta.get("tensor_meta"))
        scope = _scope(node.meta.get("nn_module_stack"), node.target if node.op == "call_module" else None)
        if node.op == "placeholder":
            if node.meta.get("tensor_meta") is None and node.users == {}:
                continue
            entry = _node_entry(
                node.name, "input", node.target if isinstance(node.target, str) else "input", shapes=shapes
            )
        elif node.op == "call_module":
            # by its path, as fx named it (a module at two paths is called under its first, as fx finds it)
            sub = modules[node.target] if modules is not None else root.get_submodule(node.target)
            entry = _node_entry(
                node.name,
                "module",
                _module_label(sub),
                path=node.target,
                type_name=type(sub).__name__,
                shapes=shapes,
                scope=scope,
            )
        elif node.op == "call_function":
            if node.target is operator.getitem:
                label = f"[{node.args[1]}]" if isinstance(node.args[1], int) else "[…]"
            else:
                label = _function_label(node.target)
            entry = _node_entry(
                node.name, "function", label, type_name=config_ops.get(node.name), shapes=shapes, scope=scope
            )
        elif node.op == "call_method":
            entry = _node_entry(
                node.name,
                "method",
                _SYMBOL_NAMES.get(node.target, f".{node.target}()"),
                type_name=config_ops.get(node.name),
                shapes=shapes,
                scope=scope,
            )
        elif node.op == "get_attr":
            entry = _node_entry(node.name, "attribute", str(node.target), shapes=shapes)
        elif node.op == "output":
            entry = _node_entry("output", "output", "output")
        else:  # pragma: no cover - fx has no other ops
            continue
        kept[node.name] = entry
        nodes.append(entry)
        sources = node.all_input_nodes
        for i, src in enumerate(sources):
            if src.name not in kept:
                continue
            edge = {"from": src.name, "to": entry["id"], "shape": kept[src.name]["shape"], "arg": i}
            if edge["shape"] is None and kept[src.name]["shapes"]:
                edge["shapes"] = kept[src.name]["shapes"]  # a tuple (an LSTM's output and state) travels whole
            edges.append(edge)
    out = next((n for n in nodes if n["op"] == "output"), None)
    if out is not None:
        into = [e for e in edges if e["to"] == "output"]
        shapes = [e["shape"] for e in into]
        out["shapes"] = shapes if any(s is not None for s in shapes) else None
        out["shape"] = shapes[0] if len(shapes) == 1 else None
    return nodes, edges


class ShapePass(ShapeProp):
    """torch's ShapeProp without sympy: ``ShapeProp.run_node`` imports torch.fx.experimental.symbolic_shapes
    (and so sympy, about 20 MiB a worker) for fake tensors, which this pass never uses, and its memory-format
    check calls ``torch._check``, which imports it too. The rest is ShapeProp's own for real and meta
    tensors: the node's result, and ``tensor_meta`` (shape, dtype, stride) from torch's
    ``_extract_tensor_metadata``; only the shapes are read (``memory_format`` stays None)."""

    def run_node(self, n: fx.Node) -> Any:
        if self.fake_module is not None:  # pragma: no cover - no fake mode is ever active here
            return super().run_node(n)
        result = fx.Interpreter.run_node(self, n)
        found = False

        def extract(obj: Any) -> Any:
            nonlocal found
            if isinstance(obj, torch.Tensor):
                found = True
                # only shapes are read from it; the memory-format check calls torch._check, which imports sympy
                return _extract_tensor_metadata(obj, include_contiguity=False)
            return obj

        meta = map_aggregate(result, extract)
        if found:
            n.meta["tensor_meta"] = meta
        n.meta["type"] = type(result)
        return result


class _KnownShapes(ShapePass):
    """ShapeProp where a layer's output shape is already known from its formula (the network's
    predicted trace, by module path): the layer is not run on meta tensors (a batch norm's meta kernel
    costs a millisecond; ResNet-50 has 53), an empty meta tensor of that shape stands for its output."""

    def __init__(self, gm: fx.GraphModule, known: dict[str, list[int]]) -> None:
        super().__init__(gm)
        self.known = known

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        shape = self.known.get(target)
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if shape is None or first is None or not first.is_meta:
            return super().call_module(target, args, kwargs)
        param = next(self.fetch_attr(target).parameters(), None)
        dtype = param.dtype if param is not None and first.dtype.is_floating_point is False else first.dtype
        return torch.empty(shape, dtype=dtype, device="meta")


def _propagate(gm: fx.GraphModule, inputs: list[torch.Tensor], known: dict[str, list[int]] | None = None) -> bool:
    try:
        with torch.no_grad():
            (_KnownShapes(gm, known) if known else ShapePass(gm)).propagate(*inputs)
    except Exception:  # noqa: BLE001 - no meta kernel, or data-dependent: shapes stay unknown
        return False
    return True


# ---------------------------------------------------------------------------------------------
# hooks + TorchFunctionMode (when fx cannot trace)
# ---------------------------------------------------------------------------------------------

_SKIP_FUNCTIONS = {
    "size",
    "dim",
    "__len__",
    "numel",
    "__get__",
    "__bool__",
    "is_floating_point",
    "__format__",
    "__repr__",
    "item",
    "tolist",
    "__contains__",
    "__hash__",
    "__eq__",
    "__ne__",
    "__index__",
    "is_nested",
    "is_contiguous",
    "stride",
    "__iter__",
    "_has_compatible_shallow_copy_type",
    "requires_grad_",
    "detach",
}


class _Recorder(TorchFunctionMode):
    """Every torch function / tensor method called outside a leaf module, with the tensors it links."""

    def __init__(self, graph: _HookGraph) -> None:
        super().__init__()
        self.graph = graph

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        g = self.graph
        if g.quiet:  # the recorder's own copies are no part of the network
            return func(*args, **kwargs)
        if g.recording and _in_place(func, kwargs):
            g.protect(tensor_data.tensors_in((args[:1], kwargs.get("out"))))
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", str(func))
        if g.depth == 0 and name not in _SKIP_FUNCTIONS:
            sources = [t for t in tensor_data.tensors_in((args, kwargs)) if id(t) in g.producer]
            outputs = tensor_data.tensors_in(result)
            if sources and outputs:
                label = _function_label(func)
                if name == "__getitem__":
                    label = f"[{args[1]}]" if len(args) > 1 and isinstance(args[1], int) else "[…]"
                op = "method" if name.startswith("__") or "Tensor" in getattr(func, "__qualname__", "") else "function"
                g.add(f"{name.strip('_')}", op, label, sources, outputs)
        return result


class _HookGraph:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.producer: dict[int, str] = {}
        self.keep: list[torch.Tensor] = []  # ids stay unique while the tensors live
        self.depth = 0
        self.counts: dict[str, int] = {}
        self.stack: list[dict[str, str]] = []  # the non-leaf modules being run, outermost first
        self.values: dict[str, torch.Tensor] = {}  # each node's (first) output tensor, as it was made
        self.recording = False  # whether values are kept (then they must not change after their call)
        self.quiet = False  # while the recorder copies tensors itself

    def copy(self, value: Any) -> Any:
        self.quiet = True
        try:
            return tensor_data.snapshot(value)
        finally:
            self.quiet = False

    def protect(self, changing: list[torch.Tensor]) -> None:
        self.quiet = True
        try:
            _protect(self.values, changing)
        finally:
            self.quiet = False

    def add(
        self,
        base: str,
        op: str,
        label: str,
        sources: list[torch.Tensor],
        outputs: list[torch.Tensor],
        value: torch.Tensor | None = None,
        **extra: Any,
    ) -> str:
        if len(self.nodes) >= MAX_NODES:
            raise _TooManyNodes()
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        node_id = base if n == 0 else f"{base}_{n}"
        shapes = [list(t.shape) for t in outputs] or None
        scope = [dict(s) for s in self.stack if s["path"] != extra.get("path")]
        self.nodes.append(_node_entry(node_id, op, label, shapes=shapes, scope=scope, **extra))
        seen: set[tuple[str, int]] = set()
        for i, t in enumerate(sources):
            src = self.producer.get(id(t))
            if src is None or (src, id(t)) in seen:
                continue
            seen.add((src, id(t)))
            self.edges.append({"from": src, "to": node_id, "shape": list(t.shape), "arg": i})
        for t in outputs:
            self.producer[id(t)] = node_id
            self.keep.append(t)
        if value is not None:
            self.values[node_id] = value
        elif outputs:
            self.values[node_id] = outputs[0]
        return node_id


class _TooManyNodes(Exception):
    pass


def _hook_graph(
    module: nn.Module, inputs: list[torch.Tensor], *, grad: bool = False, values: dict[str, torch.Tensor] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    g = _HookGraph()
    g.recording = values is not None
    names = [f"input_{i}" if i else "input" for i in range(len(inputs))]
    if g.recording:
        # the network runs on copies: a first layer working in place must not change the inputs kept
        fed = g.copy(list(inputs))
        for name, x, copy in zip(names, inputs, fed):
            g.add(name, "input", name, [], [copy], value=x)
    else:
        fed = list(inputs)
        for name, x in zip(names, inputs):
            g.add(name, "input", name, [], [x])
    handles = []
    for path, sub in module.named_modules():
        if path and not is_leaf(sub):

            def enter(mod, args, path=path):
                g.stack.append(_scope_entry(path, type(mod)))

            def leave(mod, args, output):
                g.stack.pop()

            handles.append(sub.register_forward_pre_hook(enter))
            handles.append(sub.register_forward_hook(leave))
        if not path or not is_leaf(sub) or any(is_leaf(a) and a is not sub for a in _ancestors(module, path)):
            continue

        def pre(mod, args, kwargs):
            if g.recording and g.depth == 0 and getattr(mod, "inplace", False) is True:
                g.protect(tensor_data.tensors_in((args, kwargs)))  # ReLU(inplace=True) is about to change its input
            g.depth += 1

        def post(mod, args, kwargs, output, path=path):
            g.depth -= 1
            if g.depth == 0:
                # recording, the network goes on with a copy and the value kept is the output as made:
                # whatever the code after the call does in place (out += identity) leaves it alone
                passed = g.copy(output) if g.recording else output
                kept = tensor_data.tensors_in(output)
                g.add(
                    path.replace(".", "_"),
                    "module",
                    type(mod).__name__,
                    tensor_data.tensors_in((args, kwargs)),
                    tensor_data.tensors_in(passed),
                    value=kept[0] if kept else None,
                    path=path,
                    type_name=type(mod).__name__,
                )
                if g.recording:
                    return passed
            return None

        handles.append(sub.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(sub.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.set_grad_enabled(grad), _Recorder(g):
            result = module(*fed)
    finally:
        for h in handles:
            h.remove()
    g.add("output", "output", "output", tensor_data.tensors_in(result), [])
    if values is not None:
        values.update(g.values)
        outs = tensor_data.tensors_in(result)
        if outs:
            values["output"] = outs[0]
    out = g.nodes[-1]
    shapes = [e["shape"] for e in g.edges if e["to"] == "output"]
    out["shapes"] = shapes or None
    out["shape"] = shapes[0] if len(shapes) == 1 else None
    return g.nodes, g.edges


def _ancestors(root: nn.Module, path: str) -> list[nn.Module]:
    parts = path.split(".")
    out = []
    for i in range(1, len(parts)):
        out.append(root.get_submodule(".".join(parts[:i])))
    return out


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def _single(module: nn.Module, inputs: list[torch.Tensor], output_shapes: list[list[int]] | None) -> dict[str, Any]:
    type_name = type(module).__name__
    nodes = [
        _node_entry(
            "input" if i == 0 else f"input_{i}", "input", "input" if i == 0 else f"input_{i}", shapes=[list(x.shape)]
        )
        for i, x in enumerate(inputs)
    ]
    nodes.append(_node_entry("layer", "module", type_name, path="", type_name=type_name, shapes=output_shapes))
    nodes.append(_node_entry("output", "output", "output", shapes=output_shapes))
    edges = [{"from": n["id"], "to": "layer", "shape": n["shape"], "arg": i} for i, n in enumerate(nodes[:-2])]
    edges += [{"from": "layer", "to": "output", "shape": s, "arg": i} for i, s in enumerate(output_shapes or [None])]
    return {"method": "module", "nodes": nodes, "edges": edges}


def capture(
    module: nn.Module,
    inputs: list[torch.Tensor],
    *,
    real: tuple[nn.Module, list[torch.Tensor]] | None = None,
    output_shapes: list[list[int]] | None = None,
    propagate: bool = True,
    known: dict[str, list[int]] | None = None,
    untraceable: str | None = None,
    trace: Trace | None = None,
) -> dict[str, Any]:
    """The graph of ``module`` called on ``inputs`` (meta tensors; ``real`` is used for shapes torch
    cannot infer on meta). Returns ``{"method", "nodes", "edges"}`` (plus ``"note"`` on a fallback).
    Without ``propagate`` nothing runs: the fx graph comes without shapes (and no hooks fallback).
    ``known``: leaf layers' output shapes by module path, from their formulas: those are not run.
    ``untraceable``: the note of a module built from the same config that fx could not trace (the run's
    own): not traced again. ``trace``: the caller's trace of ``module`` (a receptive field keeps one for
    its recorded run), asked for instead of tracing here."""
    if is_leaf(module):
        return _single(module, inputs, output_shapes)
    note = untraceable
    gm = None
    if untraceable is None:
        try:
            gm = _fx_graph(module, len(inputs), trace)
        except Exception as exc:  # noqa: BLE001 - fx cannot trace every forward; record a run instead
            note = _untraceable(module, exc)
    if gm is not None:
        if len(gm.graph.nodes) > MAX_NODES:
            return {"method": "fx", "nodes": [], "edges": [], "omitted": f"more than {MAX_NODES} nodes"}
        if not propagate:
            nodes, edges = _fx_nodes(gm)
            return {"method": "fx", "nodes": nodes, "edges": edges}
        if not _propagate(gm, inputs, known) and real is not None:
            gm_real = fx.GraphModule(real[0], gm.graph)
            _propagate(gm_real, real[1])
            gm = gm_real
        nodes, edges = _fx_nodes(gm)
        return {"method": "fx", "nodes": nodes, "edges": edges}
    if not propagate:
        return {"method": "none", "nodes": [], "edges": [], "note": note}
    for mod, xs in [(module, inputs)] + ([real] if real is not None else []):
        try:
            nodes, edges = _hook_graph(mod, xs)
        except _TooManyNodes:
            return {
                "method": "hooks",
                "nodes": [],
                "edges": [],
                "omitted": f"more than {MAX_NODES} nodes",
                "note": note,
            }
        except Exception:  # noqa: BLE001 - no meta kernel: try the real run
            continue
        return {"method": "hooks", "nodes": nodes, "edges": edges, "note": note}
    return {"method": "none", "nodes": [], "edges": [], "note": note}


class _Keep(fx.Interpreter):
    """Runs a traced graph and keeps every node's (first) output tensor, by node name, as it was made.

    Inputs and module outputs go on as copies, so that what the graph does to them in place later
    (``out += identity``, ``ReLU(inplace=True)``) leaves the kept value alone and in autograd's path;
    a value another in-place function is about to change is copied first. A graph that changes nothing
    in place (every call a function that returns a new tensor, every module one of torch's own without
    ``inplace=True``) needs no copies: each costs a pass over the tensor, and a node in autograd's graph."""

    def __init__(self, module: nn.Module, graph: fx.Graph) -> None:
        # ``graph``: ``module``'s trace, or the trace of a module built from the same config (the same
        # paths): the interpreter fetches each call's module from ``module`` by its path
        super().__init__(module, graph=graph)
        self.values: dict[str, torch.Tensor] = {}
        self.copies = _mutates(module, graph)

    def run_node(self, n: fx.Node) -> Any:
        if n.op in ("call_function", "call_method"):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            if _in_place(n.target, kwargs):
                _protect(self.values, tensor_data.tensors_in((args[:1], kwargs.get("out"))))
        elif n.op == "call_module":
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            if getattr(self.fetch_attr(n.target), "inplace", False) is True:
                _protect(self.values, tensor_data.tensors_in((args, kwargs)))
        out = super().run_node(n)
        first = tensor_data.tensors_in(out)
        if n.op == "output":
            if first:
                self.values["output"] = first[0]
            return out
        if first:
            self.values[n.name] = first[0]
        if self.copies and n.op in ("placeholder", "call_module"):
            return tensor_data.snapshot(out)
        return out


def _mutates(module: nn.Module, graph: fx.Graph, modules: dict[str, nn.Module] | None = None) -> bool:
    """Whether running ``graph`` over ``module`` may change a tensor in place: an in-place function or
    method, a module with ``inplace=True``, or a module that is not one of torch's own (what its forward
    does is unknown here). ``modules``: ``module``'s submodules by path, where the caller has them (a
    look-up by path each was 5 ms of a 512-block network's)."""
    for n in graph.nodes:
        if n.op in ("call_function", "call_method") and _in_place(n.target, dict(n.kwargs)):
            return True
        if n.op == "call_module":
            m = modules.get(n.target) if modules is not None else None
            if m is None:
                m = module.get_submodule(n.target)
            if getattr(m, "inplace", False) is True or not type(m).__module__.startswith("torch.nn.modules."):
                return True
    return False


#: operator's in-place functions (``out += x`` traces to operator.iadd)
_IN_PLACE_OPERATORS = {
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "imatmul", "iand", "ior", "ixor", "ilshift", "irshift"
}  # fmt: skip


def _in_place(target: Any, kwargs: dict[str, Any]) -> bool:
    """Whether calling ``target`` changes its first argument (or its ``out=``) in place."""
    name = getattr(target, "__name__", str(target))
    if kwargs.get("out") is not None or kwargs.get("inplace") is True:  # F.relu(x, inplace=True)
        return True
    if name.strip("_") in _IN_PLACE_OPERATORS or name.strip("_") == "setitem":
        return True
    return name.endswith("_") and not name.endswith("__")


def _protect(values: dict[str, torch.Tensor], changing: list[torch.Tensor]) -> None:
    """Copy every kept value that shares memory with a tensor about to be changed in place."""
    storages = {t.untyped_storage().data_ptr() for t in changing if t.device.type != "meta"}
    if not storages:
        return
    for key, v in list(values.items()):
        if v.device.type != "meta" and v.untyped_storage().data_ptr() in storages:
            values[key] = v.clone()


def record(
    module: nn.Module,
    inputs: list[torch.Tensor],
    mode: Callable[[], Any] = contextlib.nullcontext,
    gm: fx.GraphModule | fx.Graph | None = None,
) -> tuple[str, dict[str, torch.Tensor]]:
    """Run ``module`` with autograd on, keeping each graph node's output tensor under the id that
    :func:`capture` gives that node (same tracing, same names). Returns (method, values).

    ``mode``: a context to run (not trace) under, such as a ``TorchFunctionMode`` that replaces functions;
    tracing happens outside it, so the graph and its ids are the ones :func:`capture` gives.
    ``gm``: ``module`` already traced (:func:`traced`), or the graph of a module built from the same
    config (a copy, or the plan's meta module), so that a caller that reads the graph too traces once."""
    if is_leaf(module):
        with mode():
            out = tensor_data.tensors_in(module(*inputs))
        values = {("input" if i == 0 else f"input_{i}"): x for i, x in enumerate(inputs)}
        if out:
            values["layer"] = values["output"] = out[0]
        return "module", values
    if gm is None:
        try:
            gm = _fx_graph(module, len(inputs))
        except Exception:  # noqa: BLE001 - as in capture: record a run instead
            gm = None
    if gm is not None:
        keep = _Keep(module, gm.graph if isinstance(gm, fx.GraphModule) else gm)
        with mode():
            keep.run(*inputs)
        return "fx", keep.values
    values: dict[str, torch.Tensor] = {}
    with mode():
        _hook_graph(module, inputs, grad=True, values=values)
    return "hooks", values


def _kept_values(names: list[str], every: Any, out: Any) -> dict[str, torch.Tensor]:
    """A recorder's values: each node's first output tensor by node name, then the network's as ``"output"``."""
    values: dict[str, torch.Tensor] = {}
    for name, value in zip(names, every):
        first = tensor_data.tensors_in(value)
        if first:
            values[name] = first[0]
    first = tensor_data.tensors_in(out)
    if first:
        values["output"] = first[0]
    return values


def recorder(
    owner: nn.Module, graph: fx.Graph, modules: dict[str, nn.Module] | None = None
) -> Callable[[nn.Module, list[torch.Tensor]], dict[str, torch.Tensor]] | None:
    """:func:`record`'s values by generated Python instead of the interpreter, for a ``graph`` that changes
    no tensor in place (where :class:`_Keep` makes no copies and only keeps what each node returns).

    fx generates the traced forward with every node's value returned beside the output; the returned
    function runs it on any module built from the same config (the code fetches each layer by its path),
    and gives the values :class:`_Keep` would, by node name in the graph's order, then ``"output"``.
    Generating costs about as much as tracing, once per graph; running skips the interpreter's work per
    node (a 512-block Linear net: 1026 nodes, about 20 µs each, four times its plain forward). ``owner``:
    the module the graph was traced from, asked only for its layers' kinds (``modules``: its submodules by
    path, where the caller has them). None where the graph changes a tensor in place (then the
    interpreter's copies are needed)."""
    if _mutates(owner, graph, modules):
        return None
    copy = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    names: list[str] = []
    result: Any = None
    for node in graph.nodes:
        if node.op == "output":
            result = fx.map_arg(node.args[0], env.__getitem__)
            continue
        env[node] = copy.node_copy(node, env.__getitem__)
        names.append(node.name)
    copy.output((result, tuple(env[n] for n in graph.nodes if n.op != "output")))
    forward = type(fx.GraphModule(owner, copy)).forward

    def run(module: nn.Module, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out, every = forward(module, *inputs)
        return _kept_values(names, every, out)

    return run


def _add_configs(
    graph: dict[str, Any],
    module: nn.Module,
    registry: Any,
    modules: dict[str, nn.Module] | None = None,
    twins: dict[str, nn.Module] | None = None,
) -> dict[str, Any]:
    """Module nodes carry the config of their layer where it can be read back (for the drill-down).
    ``modules``: ``module``'s modules by path, where the caller has them. ``twins``: the plan's skeleton by
    path, where it shares one module among the paths of one layer config: the config is read once per
    skeleton module (a 512-block Conv net's 1536 layers are three configs)."""
    read: dict[int, dict[str, Any] | None] = {}
    for node in graph["nodes"]:
        if node["op"] == "module":
            twin = twins.get(node["path"]) if twins is not None else None
            if twin is not None and id(twin) in read:
                config = read[id(twin)]
                node["config"] = dict(config) if config is not None else None
                continue
            sub = modules.get(node["path"]) if modules is not None else None
            try:
                if sub is None:
                    sub = module.get_submodule(node["path"]) if node["path"] else module
            except AttributeError:
                continue
            node["config"] = module_config(registry, sub)
            if twin is not None and type(twin) is type(sub):
                read[id(twin)] = node["config"]
    return graph


def _by_path(root: nn.Module) -> dict[str, nn.Module]:
    """Every module under ``root`` by path, a module shared by several paths at each of them (a
    skeleton's), read from the modules' own dicts (no generator per level)."""
    out: dict[str, nn.Module] = {}
    stack = [("", root)]
    while stack:
        path, m = stack.pop()
        out[path] = m
        stack.extend((f"{path}.{name}" if path else name, c) for name, c in m._modules.items() if c is not None)
    return out


_CACHE: OrderedDict[Any, bytes] = OrderedDict()
_CACHE_SIZE = 128
_CACHE_LOCK = threading.Lock()  # requests run in a thread pool


def _cache_key(plan: Any, execution: Any, text: str | None) -> Any:
    # the module's repr names every layer and argument, nested ones included; weights do not matter
    shapes = tuple((p.shape, str(p.dtype)) for p in plan.inputs)
    if text is None:
        # a run's own module has the same repr: the plan's meta module is then built only on a cache miss
        text = repr(execution.module if execution is not None else plan.meta)
    return (plan.spec.type, text, shapes, str(plan.dtype), plan.train, execution is not None)


def graph_fields(
    plan: Any, execution: Any = None, registry: Any = None, *, text: str | None = None, trace: Trace | None = None
) -> dict[str, Any]:
    """``{"graph": ...}`` for a planned request (engine's shape response) or an execution (its run response).

    The same network on the same input shapes has the same graph: answers are kept for the last 128.
    ``text`` is the network's ``repr`` where the caller has it already (the run's answer lists it): the
    key is then not spelled a second time (7 ms for a 512-block network). ``trace``: where the planned
    graph is traced from the plan's meta module, the caller's own trace of it (asked only on a miss), so
    that one tracing serves the graph and what the caller keeps it for."""
    key = _cache_key(plan, execution, text)
    if key is not None:
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is not None:
                _CACHE.move_to_end(key)
        if cached is not None:
            # plain data: a pickle round trip copies it several times faster than deepcopy
            return {"graph": pickle.loads(cached)}
    result = _graph_fields(plan, execution, registry, trace)
    if key is not None and result["graph"]["method"] != "none":
        kept = pickle.dumps(result["graph"], protocol=pickle.HIGHEST_PROTOCOL)
        with _CACHE_LOCK:
            _CACHE[key] = kept
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return result


def _leaf_shapes(trace: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Each leaf layer's output shape by path, for the layers called once with one tensor out (a layer
    called twice, ResNet's shared ReLU, may give two shapes: it is run on meta tensors instead)."""
    calls: dict[str, int] = {}
    for e in trace:
        calls[e["path"]] = calls.get(e["path"], 0) + 1
    return {
        e["path"]: e["output_shapes"][0]
        for e in trace
        if e["leaf"] and len(e["output_shapes"]) == 1 and calls[e["path"]] == 1
    }


# ---------------------------------------------------------------------------------------------
# the graph of a real run: its own module, its own trace's shapes
# ---------------------------------------------------------------------------------------------

#: what a forward() annotated to return one tensor says (torch.nn's own: ``def forward(self, input: Tensor) -> Tensor``)
_TENSOR_RETURNS = (torch.Tensor, "Tensor", "torch.Tensor")
#: whether a class's forward() returns one tensor, by class (read once per class)
_RETURNS_TENSOR: dict[type, bool] = {}


def _returns_tensor(module: nn.Module) -> bool:
    """Whether ``module``'s forward() says it returns one tensor, so that a single output shape in the
    run's trace is that tensor's. An LSTM (output and state), a MultiheadAttention (output and weights,
    the weights possibly None: one shape in the trace for two outputs), a pooling layer that may return
    its indices say otherwise or nothing: their output's structure comes from a meta call instead."""
    cls = type(module)
    known = _RETURNS_TENSOR.get(cls)
    if known is None:
        try:
            annotation = inspect.signature(cls.forward).return_annotation
        except (TypeError, ValueError):
            annotation = None
        known = any(annotation is t or annotation == t for t in _TENSOR_RETURNS)
        _RETURNS_TENSOR[cls] = known
    return known


def _leaf_calls(trace: list[dict[str, Any]], graph: fx.Graph) -> dict[str, list[list[int] | None]]:
    """Each leaf layer's output shapes in the run, by path, one per call in call order (ResNet's shared
    ReLU: one per call), last call first (for ``pop``); None for a call that gave other than one tensor.
    A path the graph calls another number of times than the run did is left out (its calls are then
    made on meta tensors)."""
    calls: dict[str, list[list[int] | None]] = {}
    for e in trace:
        if e["leaf"]:
            shapes = e["output_shapes"]
            calls.setdefault(e["path"], []).append(shapes[0] if len(shapes) == 1 else None)
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            counts[node.target] = counts.get(node.target, 0) + 1
    return {path: shapes[::-1] for path, shapes in calls.items() if counts.get(path) == len(shapes)}


def _tensor_meta(node: fx.Node, value: Any) -> None:
    """Keep ``value`` where :func:`_graph_nodes` reads a node's shapes (what ShapeProp keeps, read the same
    way: ``.shape`` of the value, or of each item of a tuple or list), when it holds a tensor."""
    if isinstance(value, torch.Tensor) or tensor_data.tensors_in(value):
        node.meta["tensor_meta"] = value


def _run_shapes(
    module: nn.Module,
    modules: dict[str, nn.Module],
    graph: fx.Graph,
    inputs: list[torch.Tensor],
    calls: dict[str, list[list[int] | None]],
    stand_in: Callable[[str], nn.Module],
) -> None:
    """Every node's shapes in ``graph`` (``module``'s trace), into its ``tensor_meta``; raises where torch cannot.
    ``modules``: ``module``'s modules by path (:func:`~app.core.networks.trace.named_modules`).

    ``inputs`` are meta tensors. A leaf layer's call is not made again: its output is an empty meta
    tensor of the shape the real run's trace recorded for that call (``calls``, consumed in order);
    a layer without one (a tuple out, a call the trace does not line up with) is called on the meta
    device in ``stand_in(path)``, the plan's meta module at that path. The operations between layers
    run on meta tensors (nothing allocated), parameters and buffers they read as meta twins of the
    module's. fx's Interpreter does the same per node, but builds a dict of every module first (1538
    in a 512-block network) and frees values as it goes, which meta tensors do not need."""
    env: dict[fx.Node, Any] = {}
    feed = iter(inputs)
    for node in graph.nodes:
        op = node.op
        if op == "output":
            break
        if op == "placeholder":
            if str(node.target).startswith("*"):
                value: Any = list(feed)
            else:
                value = next(feed, _NO_INPUT)
                if value is _NO_INPUT:
                    if not node.args:  # as fx's Interpreter: a missing argument without a default
                        raise RuntimeError(f"no input for {node.target}")
                    value = node.args[0]  # an optional argument fixed at its default (concrete_args)
        elif op == "get_attr":
            value = _attribute(module, modules, str(node.target))
        else:
            if not node.kwargs and all(type(a) is fx.Node for a in node.args):
                # the common call (a layer on the previous value): fx's map_arg walks a pytree per node
                args, kwargs = tuple(env[a] for a in node.args), {}
            else:
                args = fx.node.map_arg(node.args, env.__getitem__)
                kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
            if op == "call_function":
                value = node.target(*args, **kwargs)
            elif op == "call_method":
                value = getattr(args[0], node.target)(*args[1:], **kwargs)
            else:  # call_module: a leaf layer
                value = _leaf_call(modules[node.target], str(node.target), args, kwargs, calls, stand_in)
        env[node] = value
        _tensor_meta(node, value)


_NO_INPUT = object()


def _attribute(module: nn.Module, modules: dict[str, nn.Module], target: str) -> Any:
    """A get_attr node's value: a parameter or buffer as a meta twin (what the plan's meta module holds),
    anything else (a tensor constant fx kept on the root while tracing) as it is."""
    owner_path, _, name = target.rpartition(".")
    owner = modules.get(owner_path) or module.get_submodule(owner_path)
    value = getattr(owner, name)
    if isinstance(value, torch.Tensor) and (name in owner._parameters or name in owner._buffers):
        return torch.empty_like(value, device="meta")
    return value


def _leaf_call(
    sub: nn.Module,
    path: str,
    args: Any,
    kwargs: Any,
    calls: dict[str, list[list[int] | None]],
    stand_in: Callable[[str], nn.Module],
) -> Any:
    """A leaf layer's output on meta: the run's own shape for this call where the trace has it."""
    pending = calls.get(path)
    shape = pending.pop() if pending else None
    first = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if shape is not None and first is not None and _returns_tensor(sub):
        # the dtype as _KnownShapes gives it: an index input (Embedding) gives the parameters' dtype
        dtype = first.dtype
        if not dtype.is_floating_point:
            param = next(sub.parameters(), None)
            dtype = param.dtype if param is not None else dtype
        return torch.empty(shape, dtype=dtype, device="meta")
    return stand_in(path)(*args, **kwargs)


def _too_many() -> dict[str, Any]:
    return {"method": "fx", "nodes": [], "edges": [], "omitted": f"more than {MAX_NODES} nodes"}


def _untraceable(module: nn.Module, exc: Exception) -> str:
    return f"torch.fx could not trace {type(module).__name__}: {str(exc).splitlines()[0][:200]}"


def _run_graph(
    plan: Any, execution: Any, modules: dict[str, nn.Module] | None = None, notes: list[str] | None = None
) -> dict[str, Any] | None:
    """The graph of a real run, from the run's own module and trace: fx traces the real module (symbolic
    tracing runs no arithmetic and builds nothing), every leaf layer's shapes are the ones its call
    recorded, and only the operations between layers run, on meta tensors. No second module is built
    and no layer runs twice. None where fx cannot trace the module (the caller records a meta run).
    ``modules``: filled with the module's modules by path (for :func:`_add_configs`); ``notes``: given
    why fx could not trace it, where it could not."""
    module, inputs = execution.module, execution.inputs
    if is_leaf(module):
        return _single(module, inputs, [list(t.shape) for _, t in execution.outputs])
    trace = execution.extra["trace"]
    modules = {} if modules is None else modules
    links = _chain(module, trace) if len(inputs) == 1 else None
    config_ops: dict[str, str] = {}
    if links is not None:
        # a chain of Sequentials: its graph from the run's trace alone; only its leaves are looked up
        modules.update((path, sub) for path, _, sub in links)
        if len(links) + 2 > MAX_NODES:
            return _too_many()
        view = _chain_view(links, trace, inputs[0])
        if view is not None:
            return {"method": "fx", "nodes": view[0], "edges": view[1]}
        graph = _chain_graph(links)
    else:
        modules.update(named_modules(module))
        try:
            graph, tracer = _leaf_trace(module, len(inputs))
        except Exception as exc:  # noqa: BLE001 - fx cannot trace every forward: the caller records a run instead
            if notes is not None:
                notes.append(_untraceable(module, exc))
            return None
        config_ops = tracer.ops
    if len(graph.nodes) > MAX_NODES:
        return _too_many()
    calls = _leaf_calls(trace, graph)
    twins: dict[str, nn.Module] = {}

    def stand_in(path: str) -> nn.Module:
        # the plan's skeleton holds a meta module at every path (shared by equal configs): built at
        # planning, nothing is built here
        twin = twins.get(path)
        if twin is None:
            twin = plan.skeleton.get_submodule(path)
            if twin.training != plan.train:
                twin.train(plan.train)
            twins[path] = twin
        return twin

    xs = [torch.empty(x.shape, dtype=x.dtype, device="meta") for x in inputs]
    try:
        with torch.no_grad():
            _run_shapes(module, modules, graph, xs, calls, stand_in)
    except Exception:  # noqa: BLE001 - no meta kernel, or data-dependent: the run's own tensors, as capture does
        gm = fx.GraphModule(module, graph)
        # on copies: a layer working in place must not change the inputs the run reports
        _propagate(gm, tensor_data.snapshot(list(inputs)))
    nodes, edges = _graph_nodes(module, graph, config_ops, modules)
    return {"method": "fx", "nodes": nodes, "edges": edges}


#: a leaf layer of a chain of Sequentials: its path, its module stack as fx records it, and its module
_Link = tuple[str, dict[str, tuple[str, type]], nn.Module]


def _chain(module: nn.Module, trace: list[dict[str, Any]], shared: bool = False) -> list[_Link] | None:
    """The leaf layers of a network of ``nn.Sequential`` containers, in the order the run called them.

    ``Sequential.forward`` passes its input through its children in order, so such a network's dataflow
    is its leaf layers' calls as the run's trace recorded them, one after the other, and fx's symbolic
    trace of it is known without tracing (about 30 ms for a 512-block network, twice its forward). None
    where the network is not such a chain (another container, a module at two paths, which fx names by
    its first), or the trace's leaf calls are not its leaves in order, once each: fx traces it then.
    ``shared``: ``module`` is a plan's skeleton, whose one module per layer config stands for a distinct
    module at each of its paths in the module a run builds (so a module at two paths is no reason here)."""
    if type(module) is not nn.Sequential:
        return None
    links: list[_Link] = []
    seen: set[int] = set()

    def walk(container: nn.Module, path: str, scope: dict[str, tuple[str, type]]) -> bool:
        for name, child in container._modules.items():
            if child is None or (id(child) in seen and not shared):
                return False
            seen.add(id(child))
            sub = f"{path}.{name}" if path else name
            # fx's tracer keeps every module entered, the called leaf last (path -> (path, class))
            inner = {**scope, sub: (sub, type(child))}
            if is_leaf(child):  # an empty Sequential too: it has no children, fx calls it as one module
                links.append((sub, inner, child))
            elif type(child) is not nn.Sequential or not walk(child, sub, inner):
                return False
        return True

    if not walk(module, "", {}) or [e["path"] for e in trace if e["leaf"]] != [p for p, _, _ in links]:
        return None
    return links


def _chain_graph(links: list[_Link]) -> fx.Graph:
    """fx's graph of a chain (:func:`_chain`), made node by node with fx's own ``Graph.create_node``, so
    with fx's names (``0.1`` -> ``_0_1``) and the module stacks its tracer records."""
    graph = fx.Graph()
    # Sequential.forward(self, input): fx's placeholder is named after the argument
    value = graph.create_node("placeholder", "input")
    for path, scope, _ in links:
        value = graph.create_node("call_module", path, (value,), {})
        value.meta["nn_module_stack"] = OrderedDict(scope)
    graph.create_node("output", "output", (value,), {})
    return graph


def _chain_view(
    links: list[_Link], trace: list[dict[str, Any]], x: torch.Tensor
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """:func:`_graph_nodes` of :func:`_chain_graph` with the run's shapes, made straight from the chain:
    no fx node is made (each costs about 8 µs, a pytree walk of its arguments) and nothing runs on meta.
    None where a layer's output is not one tensor (its structure then comes from a meta call)."""
    entries = [e for e in trace if e["leaf"]]
    if not all(len(e["output_shapes"]) == 1 and _returns_tensor(m) for e, (_, _, m) in zip(entries, links)):
        return None
    names = _chain_names(tuple(path for path, _, _ in links))
    if names is None:
        return None
    prev = _node_entry(names[0], "input", "input", shapes=[list(x.shape)])
    nodes, edges = [prev], []

    def link(src: dict[str, Any], dst: dict[str, Any]) -> None:
        edge = {"from": src["id"], "to": dst["id"], "shape": src["shape"], "arg": 0}
        if edge["shape"] is None and src["shapes"]:
            edge["shapes"] = src["shapes"]
        edges.append(edge)

    for (path, scope, sub), e, node_id in zip(links, entries, names[1:]):
        entry = _node_entry(
            node_id,
            "module",
            _module_label(sub),
            path=path,
            type_name=type(sub).__name__,
            shapes=[list(e["output_shapes"][0])],
            scope=_scope(scope, path),
        )
        nodes.append(entry)
        link(prev, entry)
        prev = entry
    out = _node_entry("output", "output", "output")
    nodes.append(out)
    link(prev, out)
    out["shapes"] = [prev["shape"]] if prev["shape"] is not None else None
    out["shape"] = prev["shape"]
    return nodes, edges


def _chain_names(paths: tuple[str, ...]) -> list[str] | None:
    """fx's node names of a chain's graph: its placeholder's, then each leaf call's, from fx's own namer
    as Graph.create_node calls it (``0.1`` -> ``_0_1``; a builtin's name such as "input" takes a suffix).
    They are a function of the paths alone (a fresh namer, the same targets in the same order), so the
    last chain's names are kept by its paths: a new config that changes a layer's settings, not its
    names or the network's length, has the last run's paths (about 4 ms of fx's namer at 512 blocks;
    a renamed container changes every path under it, and is named afresh). None where fx's namer, private to
    fx, is not there (a torch without it takes the path through fx nodes)."""
    global _LAST_NAMES
    last = _LAST_NAMES
    if last is not None and last[0] == paths:
        return last[1]
    namer = fx.Graph()
    namespace = getattr(namer, "_graph_namespace", None)
    to_str = getattr(namer, "_target_to_str", None)
    if namespace is None or to_str is None:
        return None
    names = [namespace.create_name(to_str(target), None) for target in ("input", *paths)]
    _LAST_NAMES = (paths, names)
    return names


#: :func:`_chain_names`' last answer: (paths, names); one tuple, replaced whole, its list never changed
_LAST_NAMES: tuple[tuple[str, ...], list[str]] | None = None


def planned_chain(plan: Any) -> list[_Link] | None:
    """:func:`_chain` of a planned network, read from its skeleton and the formulas' trace (no module
    built, nothing traced or run); each link's module is the skeleton's (one per layer config where it
    shares them), which has the config's kind and settings. None where the network is not such a chain,
    or its shapes do not all come from the formulas (a meta pass then gives them, as before)."""
    if len(plan.inputs) != 1 or plan.predicted is None or not plan.dtype.is_floating_point:
        return None
    if is_leaf(plan.skeleton) or not plan.predicted_trace:
        return None
    # a first field asks twice, for its graph and its kept trace (a walk of 1538 modules at 512 blocks):
    # the last plan's answer is kept, by its skeleton and trace themselves (a plan's are never changed)
    global _LAST_CHAIN
    last = _LAST_CHAIN
    if last is not None and last[0] is plan.skeleton and last[1] is plan.predicted_trace:
        return last[2]
    links = _chain(plan.skeleton, plan.predicted_trace, shared=getattr(plan, "shared", False))
    _LAST_CHAIN = (plan.skeleton, plan.predicted_trace, links)
    return links


#: :func:`planned_chain`'s last answer: (skeleton, predicted trace, links); one tuple, replaced whole
_LAST_CHAIN: tuple[nn.Module, list[dict[str, Any]], list[_Link] | None] | None = None


def _planned_chain_graph(plan: Any, registry: Any) -> dict[str, Any] | None:
    """/api/shape's graph of a chain of Sequentials (and a receptive field's, planned): the run graph's
    :func:`_chain_view` over the formulas' trace, which holds every leaf's output shape, where
    :func:`capture` built the plan's meta module (about 70 ms at 512 blocks), traced it with fx and
    generated its code (about 130 ms), only to give those same shapes to a meta pass. The same nodes and
    edges (fx's names and module stacks: the tests compare them with capture's); the configs read from
    the skeleton, once per module of it."""
    links = planned_chain(plan)
    if links is None:
        return None
    if plan.meta_shapes is None and any(isinstance(m, nn.RNNBase) for _, _, m in links):
        # a recurrent layer's meta kernels take time that grows with the sequence: capture answers from
        # tracing alone (no shapes) until the real run
        return None
    if len(links) + 2 > MAX_NODES:
        return _too_many()
    x = torch.empty(plan.inputs[0].shape, dtype=plan.inputs[0].dtype, device="meta")
    modules = {path: sub for path, _, sub in links}
    view = _chain_view(links, plan.predicted_trace, x)
    if view is None:
        # a layer whose output is not one tensor (a pooling layer that may return its indices): fx's chain
        # graph, its shapes from the formulas' trace, such a layer called on meta in the skeleton, as a
        # run's graph does with the run's trace
        graph = _chain_graph(links)
        calls = _leaf_calls(plan.predicted_trace, graph)

        def stand_in(path: str) -> nn.Module:
            twin = modules[path]
            if twin.training != plan.train:
                twin.train(plan.train)
            return twin

        try:
            with torch.no_grad():
                _run_shapes(plan.skeleton, modules, graph, [x], calls, stand_in)
        except Exception:  # noqa: BLE001 - no meta kernel, or data-dependent: capture's path decides
            return None
        view = _graph_nodes(plan.skeleton, graph, {}, modules)
    graph = {"method": "fx", "nodes": view[0], "edges": view[1]}
    # a skeleton shared among equal layers stands for their configs (equal configs built it)
    return _add_configs(graph, plan.skeleton, registry, modules, modules if getattr(plan, "shared", False) else None)


def chain_graph(links: list[_Link]) -> fx.Graph:
    """:func:`_chain_graph`: fx's graph of a chain, for a caller that keeps the trace (a receptive field)."""
    return _chain_graph(links)


def chain_recorder(
    owner: nn.Module, graph: fx.Graph, modules: dict[str, nn.Module] | None = None
) -> Callable[[nn.Module, list[torch.Tensor]], dict[str, torch.Tensor]] | None:
    """:func:`recorder` of a chain's graph (:func:`chain_graph`) with no code generated: a chain's forward is
    its leaves called one after the other (``Sequential.forward``), which a loop does as fx's generated code
    would (each layer called on the previous one's output, through its ``__call__``), keeping the same
    values under the same names. fx's code generation took about 40 ms for a 512-block network, eight times
    its forward. None where the graph changes a tensor in place (the interpreter's copies are needed)."""
    if _mutates(owner, graph, modules):
        return None
    nodes = list(graph.nodes)
    # a chain's graph only: its input, each layer called on the one before, the last one's output
    if [n.op for n in nodes] != ["placeholder"] + ["call_module"] * (len(nodes) - 2) + ["output"] or any(
        n.args != (prev,) or n.kwargs for prev, n in itertools.pairwise(nodes)
    ):
        return None
    names = [n.name for n in nodes[:-1]]
    paths = [str(n.target).split(".") for n in nodes[1:-1]]

    def run(module: nn.Module, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        (value,) = inputs
        every: list[Any] = [value]
        for parts in paths:
            layer = module
            for part in parts:  # the layer at its path, as the generated code fetches it
                layer = layer._modules[part]
            value = layer(value)
            every.append(value)
        return _kept_values(names, every, value)

    return run


def _graph_fields(plan: Any, execution: Any, registry: Any, trace: Trace | None = None) -> dict[str, Any]:
    if execution is None:
        chained = _planned_chain_graph(plan, registry)
        if chained is not None:
            return {"graph": chained}
    if execution is not None and execution.extra.get("trace") is not None:
        modules: dict[str, nn.Module] = {}
        notes: list[str] = []
        graph = _run_graph(plan, execution, modules, notes)
        if graph is not None:
            # a skeleton shared among equal layers stands for their configs (equal configs built it)
            twins = _by_path(plan.skeleton) if getattr(plan, "shared", False) else None
            return {"graph": _add_configs(graph, execution.module, registry, modules, twins)}
        # fx could not trace the run's module: the meta module, built from the same config, is not traced again
        return _planned_graph(plan, execution, registry, untraceable=notes[0] if notes else None)
    return _planned_graph(plan, execution, registry, trace=trace if execution is None else None)


def _planned_graph(
    plan: Any, execution: Any, registry: Any, untraceable: str | None = None, trace: Trace | None = None
) -> dict[str, Any]:
    """The graph from the plan's meta module (/api/shape, where nothing runs; a run fx cannot trace or
    that kept no trace), with the run's tensors for shapes torch cannot infer on meta. ``untraceable``:
    why fx could not trace the run's module (the meta module is then not traced)."""
    xs = [torch.empty(p.shape, dtype=p.dtype, device="meta") for p in plan.inputs]
    out_shapes = [list(s) for s in plan.meta_shapes] if plan.meta_shapes is not None else plan.predicted_shapes
    real = None
    if execution is not None:
        real = (execution.module, execution.inputs)
        out_shapes = [list(t.shape) for _, t in execution.outputs]
    plan.meta.train(plan.train)
    # Shapes come from the run's tensors, or from a meta pass over the traced graph; recurrent layers'
    # meta kernels take time that grows with the sequence (hours for long ones), so a graph holding one
    # is answered from tracing alone until the real run
    recurrent = any(isinstance(m, nn.RNNBase) for m in plan.meta.modules())
    propagate = execution is not None or plan.meta_shapes is not None or not recurrent
    known = None
    ran = execution.extra.get("trace") if execution is not None else None
    if ran:
        # the real run's own hooks recorded every layer's output: no layer runs again on meta tensors
        known = _leaf_shapes(ran)
    elif execution is None and plan.predicted is not None and plan.dtype.is_floating_point:
        # the formulas' answer for each leaf layer (a tensor output, not a tuple): not run again on meta
        known = _leaf_shapes(plan.predicted_trace)
    graph = capture(
        plan.meta,
        xs,
        real=real,
        output_shapes=out_shapes,
        propagate=propagate,
        known=known,
        untraceable=untraceable,
        trace=trace,
    )
    return {"graph": _add_configs(graph, plan.meta, registry)}
