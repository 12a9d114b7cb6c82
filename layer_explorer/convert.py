"""A live ``nn.Module`` turned into the request body ``/api/run`` takes.

The model runs once on the example inputs (in this process: it is the user's own code, on their
machine), with forward hooks recording what every submodule received and returned; its buffers
(BatchNorm's running statistics) and the random number generator are put back afterwards. Then,
from the top down:

- a catalog layer becomes its config, read back from its attributes (:mod:`layer_explorer.leaves`);
- ``nn.Sequential`` and the catalog's ``Residual`` become those containers, their children nested;
- any other module with submodules becomes a ``Graph`` (the dataflow config of docs/API.md): its
  ``forward`` is traced with ``torch.fx`` (each submodule call a module node named by its module path,
  ``.`` written ``_``; each tensor operation of the server's fixed table an op node; each parameter
  it reads a parameter node), falling back to ``torch.export`` and then to forward hooks (the
  submodules' calls in order, wired by which tensor each one received);
- a leaf that is not a catalog type, an operation outside the table, or a module none of the three
  can read becomes an ``Opaque`` layer: its class name, the shapes it received and returned in the
  example run and its parameters' shapes. The server draws, sizes and counts it, and never runs it.

A module called twice is two nodes whose parameters are tied (``"tied"``), so it is counted once.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import inspect
import io
import json
import operator
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from app.core.catalog.args import RESERVED_NAMES
from app.core.catalog.spec import Registry
from app.core.config import Settings
from app.core.networks.containers import Residual
from app.core.networks.ops import OPS
from app.core.networks.tree import build, resolve
from app.core.registry import default_registry
from app.core.running.overrides import named_tensors
from app.core.tensors import DTYPES, INPUT_DTYPES, dtype_name, tensors_in
from layer_explorer.leaves import leaf_config


class Unsupported(Exception):
    """This module (or operation) cannot be written as a config by this method: the next one is tried."""


@dataclass
class Call:
    """One recorded call of a module: what it received and returned."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


@dataclass
class Source:
    """Where a config's tensors come from: a layer (its parameters and buffers), an opaque layer (its
    parameters) or a parameter node (one Parameter), at a module path of the built network."""

    path: str
    kind: str  # "layer", "opaque" or "parameter"
    obj: Any


@dataclass
class Conversion:
    body: dict[str, Any]
    sources: list[Source]
    #: how the top module was read: "layer", "sequential", "residual", "fx", "export", "hooks" or "opaque"
    method: str
    #: what was not read exactly, in words (opaque layers, dropped arguments)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the operation table, read backwards: which torch callables are which operation
# ---------------------------------------------------------------------------------------------

_FUNCTIONS: dict[Any, str] = {op.fn: op.name for op in OPS.values() if op.call == "function"}
_FUNCTIONS.update(
    {
        torch.add: "add",
        torch.sub: "sub",
        torch.mul: "mul",
        torch.div: "div",
        torch.neg: "neg",
        torch.matmul: "matmul",
        operator.iadd: "add",
        operator.isub: "sub",
        operator.imul: "mul",
        operator.itruediv: "div",
        torch.relu: "relu",
        F.sigmoid: "sigmoid",
        F.tanh: "tanh",
        torch.softmax: "softmax",
        torch.log_softmax: "log_softmax",
        torch.nn.functional.hardtanh: "hardtanh",
    }
)
#: Tensor methods that are operations of the table (``x.view(...)``, ``x.relu()``)
_METHODS: dict[str, str] = {op.fn.__name__: op.name for op in OPS.values() if op.call == "method"}
_METHODS.update(
    {
        name: name
        for name in (
            "add",
            "sub",
            "mul",
            "div",
            "neg",
            "matmul",
            "bmm",
            "chunk",
            "split",
            "flatten",
            "reshape",
            "permute",
            "transpose",
            "unsqueeze",
            "squeeze",
            "mean",
            "sum",
            "amax",
            "relu",
            "sigmoid",
            "tanh",
            "softmax",
            "log_softmax",
        )
    }
)
#: methods whose sizes may be given one by one (``x.view(n, -1)``, ``x.permute(0, 2, 1)``)
_VARARGS = {"view": "shape", "reshape": "shape", "permute": "dims", "expand": "size"}
#: arguments torch's functions take that change how a result is stored, not what it is
_DROPPABLE = {"inplace", "training"}


def _unique(name: str, taken: set[str], attribute: bool) -> str:
    base = name if name.isidentifier() else "n_" + "".join(c if c.isalnum() else "_" for c in name)
    if attribute and base in RESERVED_NAMES:
        base += "_"
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _shapes(value: Any) -> list[list[int]]:
    return [list(t.shape) for t in tensors_in(value)]


@contextlib.contextmanager
def _untouched(module: nn.Module) -> Iterator[None]:
    """Forward passes for recording leave the model as they found it: buffers (running statistics)
    are put back and the random number generator's state is restored."""
    saved = {name: b.detach().clone() for name, b in module.named_buffers()}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            yield
        finally:
            for name, b in module.named_buffers():
                if name in saved:
                    b.copy_(saved[name])


def _record(module: nn.Module, inputs: tuple[Any, ...]) -> dict[int, Call]:
    """Every submodule's first call during one forward pass, by the module's id."""
    calls: dict[int, Call] = {}
    handles = []

    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        calls.setdefault(id(mod), Call(args, dict(kwargs), output))

    for m in module.modules():
        handles.append(m.register_forward_hook(hook, with_kwargs=True))
    try:
        module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return calls


class _LeafTracer(fx.Tracer):
    """Every submodule call is one node: the converter reads each submodule on its own."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


class _Values(fx.Interpreter):
    """Runs a traced graph on the recorded inputs, keeping each node's value (for shapes)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.values[n] = out
        return out


_SKIP = object()  # a placeholder fixed at trace time, or an fx guard: not part of the config


class Converter:
    def __init__(self, registry: Registry, calls: dict[int, Call]) -> None:
        self.registry = registry
        self.calls = calls
        self.sources: list[Source] = []
        self.notes: list[str] = []

    # --- one module -------------------------------------------------------------------------

    def module(self, module: nn.Module, path: str, call: Call | None = None) -> tuple[dict[str, Any], str]:
        """(config, how it was read) for a module at ``path`` of the built network."""
        call = call or self.calls.get(id(module))
        config = leaf_config(self.registry, module)
        if config is not None:
            self.sources.append(Source(path, "layer", module))
            return config, "layer"
        if type(module).forward is nn.Sequential.forward and isinstance(module, nn.Sequential):
            return self._sequential(module, path), "sequential"
        if type(module) is Residual:
            return self._residual(module, path), "residual"
        if call is None:
            raise Unsupported(f"{path or 'the model'} ({type(module).__name__}) was not called in the example run")
        if not any(True for _ in module.children()) and any(True for _ in module.parameters()):
            # a leaf with weights of its own that is not a catalog type: the user's layer, opaque
            # (one without weights, a custom activation, is read as the operations it does)
            return self.opaque(module, path, call), "opaque"
        reasons = []
        for method in (self._fx, self._export, self._hooks):
            mark, noted = len(self.sources), len(self.notes)
            try:
                return method(module, path, call), method.__name__.strip("_")
            except Exception as exc:  # noqa: BLE001 - each method may fail in its own ways; the next is tried
                del self.sources[mark:]
                del self.notes[noted:]
                reasons.append(
                    f"{method.__name__.strip('_')}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
        return self.opaque(module, path, call, why=f"could not be traced ({'; '.join(reasons)})"), "opaque"

    def opaque(self, module: nn.Module, path: str, call: Call, why: str = "is not a catalog layer") -> dict[str, Any]:
        config: dict[str, Any] = {
            "type": "Opaque",
            "type_name": type(module).__name__,
            "input_shapes": _shapes((call.args, call.kwargs)),
            "output_shapes": _shapes(call.output),
        }
        params = {name: list(p.shape) for name, p in module.named_parameters()}
        if params:
            config["parameter_shapes"] = params
        self.sources.append(Source(path, "opaque", module))
        self.notes.append(
            f"{path or 'the model'} ({type(module).__name__}) {why}: it is sent as an opaque "
            "layer (drawn, sized and counted from the example run, not computed by the server)"
        )
        return config

    def _sequential(self, module: nn.Sequential, path: str) -> dict[str, Any]:
        layers = []
        for i, (name, child) in enumerate(module.named_children()):
            config, _ = self.module(child, _join(path, name))
            if name != str(i):
                config = {**config, "name": name}
            layers.append(config)
        return {"type": "Sequential", "layers": layers}

    def _residual(self, module: Residual, path: str) -> dict[str, Any]:
        body = []
        for i, (name, child) in enumerate(module.body.named_children()):
            config, _ = self.module(child, _join(path, "body", name))
            body.append(config if name == str(i) else {**config, "name": name})
        shortcut = None if module.shortcut is None else self.module(module.shortcut, _join(path, "shortcut"))[0]
        return {"type": "Residual", "body": body, "shortcut": shortcut}

    # --- ties ---------------------------------------------------------------------------------

    def _ties(self, path: str, mark: int) -> dict[str, str]:
        """Parameters met twice among this graph's nodes (a module called twice, a weight assigned to
        two layers): the later name is tied to the first."""
        first: dict[int, str] = {}
        tied: dict[str, str] = {}
        prefix = path + "." if path else ""
        for src in self.sources[mark:]:
            for name, t in _tensors_of(src):
                rel = name[len(prefix) :]
                if not isinstance(t, nn.Parameter):
                    continue
                if id(t) in first:
                    if "." in rel or src.kind == "parameter":
                        tied[rel] = first[id(t)]
                else:
                    first[id(t)] = rel
        return tied

    # --- torch.fx -----------------------------------------------------------------------------

    def _fx(self, module: nn.Module, path: str, call: Call) -> dict[str, Any]:
        if isinstance(module, fx.GraphModule):
            gm = module  # a Graph config's own module: its graph keeps the config's names
        else:
            params = list(inspect.signature(module.forward).parameters.values())
            given = len(call.args)
            concrete = {}
            for p in params[given:]:
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                if p.name in call.kwargs:
                    if not isinstance(call.kwargs[p.name], torch.Tensor):
                        concrete[p.name] = call.kwargs[p.name]
                elif p.default is not p.empty:
                    concrete[p.name] = p.default
            graph = _LeafTracer().trace(module, concrete_args=concrete or None)
            gm = fx.GraphModule(module, graph)
        values = self._values(gm, call)
        return self._graph(module, gm.graph, values, path, call)

    def _values(self, gm: fx.GraphModule, call: Call) -> dict[fx.Node, Any]:
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        args: list[Any] = []
        positional = list(call.args)
        for n in placeholders:
            name = str(n.target).lstrip("*")
            if positional:
                args.append(positional.pop(0))
            elif name in call.kwargs:
                args.append(call.kwargs[name])
            else:
                args.append(n.args[0] if n.args else None)
        interp = _Values(gm)
        with _untouched(gm):
            interp.run(*args)
        return interp.values

    def _graph(
        self,
        module: nn.Module,
        graph: fx.Graph,
        values: dict[fx.Node, Any],
        path: str,
        call: Call,
        reader: Any = None,
    ) -> dict[str, Any]:
        reader = reader or self._op
        mark = len(self.sources)
        taken: set[str] = set()
        names: dict[fx.Node, Any] = {}
        inputs: list[str] = []
        nodes: list[dict[str, Any]] = []
        outputs: Any = None
        done: dict[int, dict[str, Any]] = {}
        config_names = getattr(module, "meta", {}).get("config_names", {}) if isinstance(module, fx.GraphModule) else {}

        def ref(v: Any) -> Any:
            if isinstance(v, fx.Node):
                if names.get(v, _SKIP) is _SKIP:
                    raise Unsupported(f"{v.name} is not a tensor or size the graph can hold")
                return names[v]
            if isinstance(v, (tuple, list)):
                return [ref(x) for x in v]
            if isinstance(v, slice):
                return {"slice": [ref(v.start), ref(v.stop), ref(v.step)]}
            if v is Ellipsis:
                return "..."
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            raise Unsupported(f"the value {v!r} cannot be written in a config")

        for n in graph.nodes:
            nice = config_names.get(n.name, n.name)
            if n.op == "placeholder":
                v = values.get(n)
                if isinstance(v, torch.Tensor):
                    names[n] = _unique(nice, taken, attribute=False)
                    inputs.append(names[n])
                else:
                    names[n] = _SKIP
            elif n.op == "get_attr":
                target = str(n.target)
                if target == "training":
                    names[n] = _SKIP  # the graph passes its own training flag to dropout
                    continue
                attr = _get_attr(module, target)
                if not isinstance(attr, nn.Parameter):
                    raise Unsupported(f"forward reads {target}, a tensor that is not a parameter")
                names[n] = _unique(nice, taken, attribute=True)
                # ones where it holds ones (a scale), zeros otherwise: its values go in "parameters"
                init = "ones" if attr.numel() and bool((attr == 1).all()) else "zeros"
                nodes.append({"name": names[n], "parameter": {"shape": list(attr.shape), "init": init}})
                self.sources.append(Source(_join(path, names[n]), "parameter", attr))
            elif n.op == "call_module":
                sub = module.get_submodule(str(n.target))
                name = _unique(nice.replace(".", "_"), taken, attribute=True)
                names[n] = name
                call_args = list(n.args)
                while call_args and call_args[-1] is None:
                    call_args.pop()  # trailing optional inputs left out (an attention mask of None)
                n.args = tuple(call_args)
                tensor_args = all(
                    isinstance(a, fx.Node) or (isinstance(a, (tuple, list)) and all(isinstance(b, fx.Node) for b in a))
                    for a in n.args
                )
                extra = _call_kwargs(sub, n)
                if not n.args or not tensor_args or extra:
                    config = self._opaque_call(sub, n, values, _join(path, name))
                    args = [ref(a) for a in _node_args(n)]
                elif id(sub) in done:
                    # called again: the same layer, its parameters tied to the first node's
                    config = done[id(sub)]
                    kind = "opaque" if config.get("type") == "Opaque" else "layer"
                    self.sources.append(Source(_join(path, name), kind, sub))
                    args = [ref(a) for a in n.args]
                else:
                    config, _ = self.module(sub, _join(path, name))
                    done[id(sub)] = config
                    args = [ref(a) for a in n.args]
                nodes.append({"name": name, "module": config, "args": args})
            elif n.op in ("call_function", "call_method"):
                if n.op == "call_function" and getattr(n.target, "__name__", "") == "_assert_is_none":
                    names[n] = _SKIP
                    continue
                name = _unique(nice, taken, attribute=False)
                names[n] = name
                try:
                    nodes.append({"name": name, **reader(n, ref)})
                except Unsupported:
                    if not isinstance(values.get(n), torch.Tensor) and not (
                        isinstance(values.get(n), tuple) and all(isinstance(t, torch.Tensor) for t in values[n])
                    ):
                        raise
                    taken.discard(name)
                    name = _unique(nice, taken, attribute=True)
                    names[n] = name
                    config = self._opaque_op(n, values, _join(path, name))
                    nodes.append({"name": name, "module": config, "args": [ref(a) for a in _node_args(n)]})
            elif n.op == "output":
                out = n.args[0]
                if isinstance(out, (tuple, list)) and len(out) == 1 and isinstance(call.output, torch.Tensor):
                    out = out[0]  # torch.export returns a tuple always
                if isinstance(out, fx.Node):
                    outputs = ref(out)
                elif isinstance(out, (tuple, list)) and all(isinstance(o, fx.Node) for o in out):
                    outputs = [ref(o) for o in out]
                else:
                    raise Unsupported("forward returns something other than a tensor or a tuple of tensors")
        if not nodes:
            raise Unsupported("forward calls nothing")
        config: dict[str, Any] = {"type": "Graph", "inputs": inputs, "nodes": nodes, "outputs": outputs}
        tied = self._ties(path, mark)
        if tied:
            config["tied"] = tied
        return config

    def _opaque_call(self, sub: nn.Module, n: fx.Node, values: dict[fx.Node, Any], path: str) -> dict[str, Any]:
        """A submodule called with something other than tensors (keyword arguments, numbers): opaque."""
        call = Call(tuple(values[a] for a in _node_args(n)), {}, values.get(n))
        return self.opaque(sub, path, call, why="is called with arguments a graph node cannot pass (keywords, numbers)")

    def _opaque_op(self, n: fx.Node, values: dict[fx.Node, Any], path: str) -> dict[str, Any]:
        ins = [values[a] for a in _node_args(n)]
        if not ins:
            raise Unsupported(f"{n.name} takes no tensor")
        what = getattr(n.target, "__name__", str(n.target))
        self.notes.append(
            f"{path} ({what}) is not an operation of the server's table: it is sent as an opaque layer "
            "(drawn from the example run, not computed)"
        )
        return {
            "type": "Opaque",
            "type_name": what,
            "input_shapes": _shapes(ins),
            "output_shapes": _shapes(values.get(n)),
        }

    def _op(self, n: fx.Node, ref: Any) -> dict[str, Any]:
        """{"op", "args", "kwargs"} of one operation, bound to the table's signature."""
        target = n.target
        if n.op == "call_function" and target is builtins.getattr:
            if n.args[1] == "shape":
                return {"op": "size", "args": [ref(n.args[0])]}
            raise Unsupported(f"reads the attribute {n.args[1]!r}")
        name = _METHODS.get(str(target)) if n.op == "call_method" else _FUNCTIONS.get(target)
        if name is None:
            raise Unsupported(f"{getattr(target, '__name__', target)} is not an operation of the table")
        op = OPS[name]
        args = list(n.args)
        kwargs = dict(n.kwargs)
        if n.op == "call_method" and name in _VARARGS and len(args) > 2:
            args = [args[0], list(args[1:])]
        bound: dict[str, Any] = {}
        params = [p.name for p in op.params]
        signature = None
        if n.op == "call_function":
            with contextlib.suppress(TypeError, ValueError):
                signature = inspect.signature(target)
            if signature is not None and any(
                p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
                for p in signature.parameters.values()
            ):
                signature = None  # a dispatcher (F.max_pool2d): bound by the table's own order
        if signature is not None:
            try:
                call = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise Unsupported(str(exc)) from None
            named = {}
            for i, (key, value) in enumerate(call.arguments.items()):
                kind = signature.parameters[key].kind
                if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    raise Unsupported(f"{name} is called with *args or **kwargs")
                if key not in params and i < len(params) and kind != inspect.Parameter.KEYWORD_ONLY:
                    key = params[i]  # operator.add(a, b) is the table's add(input, other)
                named[key] = value
        else:
            if len(args) > len(params):
                raise Unsupported(f"{name} got {len(args)} arguments")
            named = dict(zip(params, args))
            named.update(kwargs)
        for key, value in named.items():
            if key in params:
                bound[key] = value
                continue
            default = (
                signature.parameters[key].default if signature is not None and key in signature.parameters else None
            )
            if (
                key in _DROPPABLE
                or value is None
                or (key == "return_indices" and value is False)
                or (default is not inspect.Parameter.empty and value == default)
            ):
                continue
            raise Unsupported(f"{name} got {key}={value!r}, which the table's {name} does not take")
        if op.training:
            bound.pop("training", None)
        out_args: list[Any] = []
        out_kwargs: dict[str, Any] = {}
        for p in op.params:
            if p.name not in bound:
                if p.required:
                    raise Unsupported(f"{name} needs {p.name}")
                continue
            value = bound[p.name]
            if p.type == "tensors":
                value = list(value) if isinstance(value, (tuple, list)) else value
            value = ref(value)
            if p.required:
                out_args.append(value)
            elif signature is not None or value != p.default:
                # a dispatcher passes every argument (F.max_pool2d's padding=0): its defaults are left out
                out_kwargs[p.name] = value
        result: dict[str, Any] = {"op": name, "args": out_args}
        if out_kwargs:
            result["kwargs"] = out_kwargs
        return result

    # --- torch.export ---------------------------------------------------------------------------

    def _export(self, module: nn.Module, path: str, call: Call) -> dict[str, Any]:
        """torch.export's graph (it follows Python control flow on the example), unflattened back into
        one call per submodule; its operations are ATen's, read with :func:`_aten_op`."""
        with _untouched(module), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(module, tuple(call.args), kwargs=call.kwargs or None, strict=False)
            unflat = torch.export.unflatten(program)
        values = {n: n.meta.get("val") for n in unflat.graph.nodes}
        return self._graph(module, unflat.graph, values, path, call, reader=_aten_op)

    # --- forward hooks --------------------------------------------------------------------------

    def _hooks(self, module: nn.Module, path: str, call: Call) -> dict[str, Any]:
        """The direct submodules' calls in order, wired by the identity of the tensors they pass."""
        events: list[tuple[str, nn.Module, Call]] = []
        handles = []
        for name, child in module.named_children():

            def hook(
                mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any, name: str = name
            ) -> None:
                events.append((name, mod, Call(args, dict(kwargs), output)))

            handles.append(child.register_forward_hook(hook, with_kwargs=True))
        try:
            with _untouched(module):
                output = module(*call.args, **call.kwargs)
        finally:
            for h in handles:
                h.remove()
        mark = len(self.sources)
        taken: set[str] = set()
        produced: dict[int, str] = {}
        inputs = []
        params = list(inspect.signature(module.forward).parameters.values())
        for i, a in enumerate(call.args):
            if not isinstance(a, torch.Tensor):
                raise Unsupported("an input is not a tensor")
            name = _unique(params[i].name if i < len(params) else f"x{i}", taken, attribute=False)
            produced[id(a)] = name
            inputs.append(name)
        nodes: list[dict[str, Any]] = []
        tuples: dict[int, tuple[str, int]] = {}
        done: dict[int, dict[str, Any]] = {}

        def ref(t: Any) -> str:
            if not isinstance(t, torch.Tensor):
                raise Unsupported("a submodule is called with something other than tensors")
            if id(t) in produced:
                return produced[id(t)]
            if id(t) in tuples:
                owner, k = tuples[id(t)]
                name = _unique(f"{owner}_{k}", taken, attribute=False)
                nodes.append({"name": name, "op": "getitem", "args": [owner, k]})
                produced[id(t)] = name
                return name
            raise Unsupported("forward computes tensors between its submodules that hooks cannot see")

        for child_name, child, c in events:
            if c.kwargs:
                raise Unsupported(f"{child_name} is called with keyword arguments")
            args = [ref(a) for a in c.args]
            name = _unique(child_name, taken, attribute=True)
            if id(child) in done:
                config = done[id(child)]
                kind = "opaque" if config.get("type") == "Opaque" else "layer"
                self.sources.append(Source(_join(path, name), kind, child))
            else:
                config, _ = self.module(child, _join(path, name), c)
                done[id(child)] = config
            nodes.append({"name": name, "module": config, "args": args})
            if isinstance(c.output, torch.Tensor):
                produced[id(c.output)] = name
            elif isinstance(c.output, tuple):
                for k, t in enumerate(c.output):
                    if isinstance(t, torch.Tensor):
                        tuples[id(t)] = (name, k)
        if isinstance(output, torch.Tensor):
            outputs: Any = ref(output)
        elif isinstance(output, tuple):
            outputs = [ref(t) for t in output]
        else:
            raise Unsupported("forward returns something other than tensors")
        if not nodes:
            raise Unsupported("forward calls no submodule")
        config: dict[str, Any] = {"type": "Graph", "inputs": inputs, "nodes": nodes, "outputs": outputs}
        tied = self._ties(path, mark)
        if tied:
            config["tied"] = tied
        return config


_BIG = 2**62  # ATen writes an open slice end as a huge number


def _open(v: Any) -> Any:
    return None if isinstance(v, int) and abs(v) >= _BIG else v


def _index_at(dim: int, item: Any) -> list[Any]:
    """x[:, :, item] as a getitem index: full slices up to ``dim`` (counted from the front)."""
    if dim < 0:
        return ["...", item] + [slice(None)] * (-dim - 1)
    return [slice(None)] * dim + [item]


def _aten_op(n: fx.Node, ref: Any) -> dict[str, Any]:
    """One ATen operation of torch.export's graph as an operation of the table."""
    target = n.target
    packet = getattr(target, "overloadpacket", None)
    name = getattr(packet, "__name__", getattr(target, "__name__", str(target)))
    a = list(n.args)
    kw = dict(n.kwargs)

    def out(op: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {"op": op, "args": [ref(v) for v in args]}
        if kwargs:
            result["kwargs"] = {k: ref(v) for k, v in kwargs.items()}
        return result

    if target is operator.getitem:
        return out("getitem", a)
    if name in ("add", "sub") and kw.get("alpha", 1) == 1 and len(a) == 2:
        return out(name, a)
    if name in ("mul", "div") and len(a) == 2 and not kw:
        return out(name, a)
    unary = ("neg", "relu", "sigmoid", "tanh", "silu", "mish", "hardswish", "hardsigmoid", "selu", "relu6")
    if name in unary and len(a) == 1 and not kw:
        return out(name, a)
    if name == "gelu" and len(a) == 1:
        return out("gelu", a, {"approximate": kw["approximate"]} if "approximate" in kw else None)
    if name in ("matmul", "mm"):
        return out("matmul", a)
    if name == "bmm":
        return out("bmm", a)
    if name in ("cat", "stack"):
        return out(name, [list(a[0])], {"dim": a[1]} if len(a) > 1 else None)
    if name in ("view", "reshape", "_unsafe_view"):
        return out("reshape", [a[0], list(a[1])])
    if name == "flatten":
        return out("flatten", [a[0]], {"start_dim": a[1], "end_dim": a[2]} if len(a) > 2 else None)
    if name == "permute":
        return out("permute", [a[0], list(a[1])])
    if name == "transpose":
        return out("transpose", a)
    if name == "unsqueeze":
        return out("unsqueeze", a)
    if name == "squeeze":
        return out("squeeze", [a[0]], {"dim": a[1]} if len(a) > 1 else None)
    if name in ("clone", "contiguous") and len(a) == 1:
        return out("contiguous", a)
    if name == "expand":
        return out("expand", [a[0], list(a[1])])
    if name == "select":
        return out("getitem", [a[0], _index_at(a[1], a[2])])
    if name == "slice":
        dim = a[1] if len(a) > 1 else 0
        bounds = [_open(a[2]) if len(a) > 2 else None, _open(a[3]) if len(a) > 3 else None, a[4] if len(a) > 4 else 1]
        step = None if bounds[2] == 1 else bounds[2]
        return out("getitem", [a[0], _index_at(dim, slice(bounds[0], bounds[1], step))])
    if name in ("mean", "sum", "amax") and len(a) >= 2:
        return out(name, [a[0]], {"dim": list(a[1]), **({"keepdim": a[2]} if len(a) > 2 else {})})
    if name in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
        return out(name.lstrip("_"), [a[0], a[1]])
    if name == "dropout":
        return out("dropout", [a[0]], {"p": a[1]})
    if name == "sym_size":
        return out("size", [a[0]], {"dim": a[1]})
    if name in ("adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool1d"):
        op = "adaptive_avg_pool1d" if name.endswith("1d") else "adaptive_avg_pool2d"
        return out(op, [a[0], list(a[1])])
    raise Unsupported(f"{name} is not an operation of the table")


#: keyword arguments of a layer call that change only the second output (attention weights): left out
#: where the code reads only the first (``out, _ = self.attn(q, k, v, need_weights=False)``)
_SECOND_OUTPUT_ONLY = {"need_weights", "average_attn_weights"}


def _call_kwargs(sub: nn.Module, n: fx.Node) -> dict[str, Any]:
    """The keyword arguments of a layer call a module node cannot pass: not None, not forward()'s
    default, and not one that only changes an output the code never reads."""
    try:
        defaults = {k: p.default for k, p in inspect.signature(sub.forward).parameters.items()}
    except (TypeError, ValueError):
        defaults = {}
    first_only = bool(n.users) and all(
        u.op == "call_function" and u.target is operator.getitem and (u.args[1] == 0 or not u.users) for u in n.users
    )
    return {
        k: v
        for k, v in n.kwargs.items()
        if v is not None
        and not (k in defaults and defaults[k] is not inspect.Parameter.empty and v == defaults[k])
        and not (k in _SECOND_OUTPUT_ONLY and first_only)
    }


def _node_args(n: fx.Node) -> list[fx.Node]:
    """The nodes an fx node reads, in order (tensor arguments, also inside tuples and keyword arguments)."""
    out: list[fx.Node] = []

    def walk(v: Any) -> None:
        if isinstance(v, fx.Node):
            if v not in out:
                out.append(v)
        elif isinstance(v, (tuple, list)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(n.args)
    walk(n.kwargs)
    return out


def _get_attr(module: nn.Module, target: str) -> Any:
    obj: Any = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _tensors_of(src: Source) -> list[tuple[str, torch.Tensor]]:
    """A source's tensors by their names in the built network (a layer's buffers too)."""
    if src.kind == "parameter":
        return [(src.path, src.obj)]
    out = [(_join(src.path, n), p) for n, p in src.obj.named_parameters(remove_duplicate=False)]
    if src.kind == "layer":
        out += [(_join(src.path, n), b) for n, b in src.obj.named_buffers() if b is not None]
    return out


# ---------------------------------------------------------------------------------------------
# the request body
# ---------------------------------------------------------------------------------------------


def _input(t: Any, data: bool) -> dict[str, Any]:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"example inputs must be tensors; got {type(t).__name__}")
    name = dtype_name(t.dtype)
    if name not in INPUT_DTYPES:
        raise TypeError(f"an example input of dtype {name} cannot be sent; the server takes {', '.join(INPUT_DTYPES)}")
    out: dict[str, Any] = {"data": t.detach().cpu().tolist()} if data else {"shape": list(t.shape)}
    if not t.dtype.is_floating_point or data:
        out["dtype"] = name
    return out


def convert(
    module: nn.Module, *example_inputs: Any, data: bool = False, registry: Registry | None = None
) -> Conversion:
    """The config of ``module`` (see :func:`to_config`) with where each of its tensors comes from."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"to_config takes a torch.nn.Module; got {type(module).__name__}")
    registry = registry or default_registry()
    with _untouched(module):
        calls = _record(module, example_inputs)
    root = calls.get(id(module))
    converter = Converter(registry, calls)
    config, method = converter.module(module, "", root)
    body: dict[str, Any] = {"layer": config, "inputs": [_input(t, data) for t in example_inputs]}
    p = next(module.parameters(), None)
    if p is not None and p.dtype != torch.float32 and dtype_name(p.dtype) in DTYPES:
        body["dtype"] = dtype_name(p.dtype)
    if not module.training:
        body["train"] = False
    return Conversion(body, converter.sources, method, converter.notes)


def to_config(
    module: nn.Module,
    *example_inputs: Any,
    weights: bool = False,
    data: bool | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """The request body ``/api/run`` takes for ``module`` called on ``example_inputs``.

    ``{"layer": <config>, "inputs": [{"shape": [...]}, ...]}``, plus ``"train": false`` for a module
    in eval mode and ``"dtype"`` for one whose parameters are not float32. The config is the module's
    catalog config for a catalog layer, ``Sequential``/``Residual`` for those containers, and a
    ``Graph`` otherwise (see the module docstring); layers the server does not know become opaque
    layers. With ``weights=True`` the module's parameters and buffers go in ``"parameters"`` (base64
    ``.npy``, never pickle) and, unless ``data=False``, the example inputs' values in ``"inputs"``, so
    the server computes with the trained model on the same numbers. Nothing is sent anywhere.
    """
    conversion = convert(module, *example_inputs, data=weights if data is None else data, registry=registry)
    body = conversion.body
    if weights:
        body["parameters"] = parameters(conversion, registry)
    return body


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------


def npy(t: torch.Tensor) -> dict[str, str]:
    """``{"npy": <base64 .npy>}``: the safe format the API reads (``np.load(allow_pickle=False)``)."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()  # numpy has no bfloat16; the server casts into the layer's own dtype
    buf = io.BytesIO()
    np.save(buf, t.numpy(), allow_pickle=False)
    return {"npy": base64.b64encode(buf.getvalue()).decode("ascii")}


def parameters(conversion: Conversion, registry: Registry | None = None) -> dict[str, dict[str, str]]:
    """The ``"parameters"`` field: every tensor of the config's layers by its name in the built
    network, once. A tensor tied to another is sent under the one name torch lists it by in the
    built network (``named_parameters()`` lists a shared tensor once), found by building the config
    on the meta device."""
    registry = registry or default_registry()
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        listed = set(named_tensors(build(resolve(registry, conversion.body["layer"]))))
    out: dict[str, dict[str, str]] = {}
    seen: set[int] = set()
    left: dict[int, str] = {}
    for src in conversion.sources:
        for name, t in _tensors_of(src):
            if name not in listed:
                left.setdefault(id(t), name)  # tied in the built network under another name, or nowhere
                continue
            if name not in out:
                # a tensor the model shares where the config could not tie it goes to each place
                out[name] = npy(t)
            seen.add(id(t))
    missed = [name for key, name in left.items() if key not in seen]
    if missed:
        conversion.notes.append(
            f"{len(missed)} tensor(s) have no place in the config and are not sent: {', '.join(missed[:5])}"
        )
    return out


def parameters_of(module: nn.Module, *example_inputs: Any, registry: Registry | None = None) -> dict[str, Any]:
    """The module's parameters and buffers as the API's ``"parameters"`` field, named as in the config
    :func:`to_config` writes for the same inputs."""
    return parameters(convert(module, *example_inputs, registry=registry), registry)


def body_bytes(body: dict[str, Any]) -> int:
    """The size of the request body as JSON (what the server's body limit counts)."""
    return len(json.dumps(body, separators=(",", ":")).encode())


def body_limit() -> int:
    """The server's body limit as configured here (``LAYER_EXPLORER_MAX_BODY``, default 8 MiB)."""
    return Settings.from_env().max_body_bytes


def fits(body: dict[str, Any], limit: int | None = None) -> bool:
    """Whether the body is within the server's body limit (``limit``, or this process's setting)."""
    return body_bytes(body) <= (limit if limit is not None else body_limit())
