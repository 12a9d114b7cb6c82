"""``Graph``: a network as a dataflow graph of named nodes — modules, operations and parameters.

A config::

    {"type": "Graph", "inputs": ["x"],
     "nodes": [{"name": "conv", "module": {"type": "Conv2d", ...}, "args": ["x"]},
               {"name": "act", "op": "relu", "args": ["conv"]},
               {"name": "cls", "parameter": {"shape": [1, 8], "init": "zeros"}},
               {"name": "cat", "op": "cat", "args": [["act", "act"]], "kwargs": {"dim": 1}}],
     "outputs": "cat"}

is validated against the catalog (module nodes, nested containers included) and the fixed operation
table (:mod:`app.core.networks.ops`); nothing in it is ever executed as code. The module is a
``torch.fx.GraphModule`` built *from* the config: submodules and parameters are created in node order
(the order a reproduction script follows, so the random numbers agree), each named by its node, so a
node's module path is its name; ``forward`` is the fx graph. Shapes are predicted node by node with
the layers' formulas and the operations' rules, and a node that rejects its inputs is named with them.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from app.core.catalog.args import MAX_CHILDREN, RESERVED_NAMES
from app.core.catalog.spec import ContainerSpec, InputSpec, LayerSpec, ParamSpec, Registry
from app.core.errors import InvalidArgument, InvalidRequest, ShapeMismatch, TooLarge
from app.core.networks.ops import OPS, OpError, OpParam, OpSpec, Shape
from app.core.networks.trace import Counted, trace_entry
from app.core.networks.tree import LayerNode, counted_entry, join, predict
from app.core.shapes.context import generic_names
from app.core.shapes.expr import Dim, Sym

MAX_NODES = 2_000
MAX_PARAMETER_ELEMENTS = 50_000_000
INITS = ("zeros", "ones", "randn", "rand")


@dataclass(frozen=True)
class Ref:
    """A reference to a node's value (or a graph input) by name."""

    name: str


@dataclass
class NodeDef:
    name: str
    kind: str  # "module", "op" or "parameter"
    field: str
    op: str | None = None
    #: module nodes: tensor references (a list of them is passed as a tuple); ops: the bound signature
    args: list[Any] = field(default_factory=list)
    bound: dict[str, Any] = field(default_factory=dict)
    #: op arguments the request gave (the others keep torch's defaults and are not passed)
    given: list[str] = field(default_factory=list)
    shape: tuple[int, ...] = ()
    init: str = "zeros"


@dataclass
class GraphDef:
    inputs: list[str]
    nodes: list[NodeDef]
    outputs: list[str]
    #: the outputs were given as a list (the module returns a tuple)
    tuple_output: bool = False
    #: tied parameters: (the parameter replaced, the one it becomes), dotted names inside the graph
    tied: list[tuple[str, str]] = field(default_factory=list)

    def node(self, name: str) -> NodeDef | None:
        return next((n for n in self.nodes if n.name == name), None)


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _bad(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(f"Graph: {message}", field=field)


def _check_name(name: Any, field: str, seen: set[str], *, attribute: bool = True) -> str:
    """A node's name is a variable of forward(); a module's or parameter's is also an attribute of the graph."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name == "self":
        raise _bad(f"a node name must be a Python identifier (letters, digits, _); got {name!r}", field)
    if attribute and name in RESERVED_NAMES:
        raise _bad(f"a node cannot be named {name!r}: torch.nn.Module already uses that name; pick another", field)
    if name in seen:
        raise _bad(f"the name {name!r} is used twice; node names must be unique", field)
    seen.add(name)
    return name


def _ref(value: Any, field: str, defined: dict[str, str], what: str) -> Ref:
    if not isinstance(value, str):
        raise _bad(f"{what} must name a node or an input; got {value!r}", field)
    if value not in defined:
        known = ", ".join(defined) or "none"
        raise _bad(
            f"{value!r} is not an input or a node defined before this one (nodes run in the order listed); "
            f"defined so far: {known}",
            field,
        )
    return Ref(value)


def _int_or_ref(value: Any, field: str, defined: dict[str, str], name: str) -> Any:
    if isinstance(value, str):
        return _ref(value, field, defined, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name} must be an integer (or the name of a size node); got {value!r}", field)
    return value


def _index(value: Any, field: str, defined: dict[str, str], top: bool = True) -> Any:
    """A getitem index: an int, null (a new axis), "..." , {"slice": [start, stop, step]}, or a list (a tuple)."""
    if value is None:
        return None
    if value == "...":
        return Ellipsis
    if isinstance(value, dict):
        parts = value.get("slice")
        if set(value) != {"slice"} or not isinstance(parts, list) or not 1 <= len(parts) <= 3:
            raise _bad('a slice is written {"slice": [start, stop, step]} (null for an open end)', field)
        bounds = [None if p is None else _int_or_ref(p, field, defined, "a slice bound") for p in parts]
        return slice(*bounds) if len(bounds) > 1 else slice(bounds[0])
    if isinstance(value, list) and top:
        if not value:
            raise _bad("a tuple index needs at least one entry", field)
        return tuple(_index(v, f"{field}[{i}]", defined, top=False) for i, v in enumerate(value))
    return _int_or_ref(value, field, defined, "an index")


def _literal(p: OpParam, value: Any, field: str, defined: dict[str, str], op: str) -> Any:
    what = f"{op}'s {p.name}"
    if value is None:
        if p.nullable or (not p.required and p.default is None):
            return None
        raise _bad(f"{what} cannot be null", field)
    t = p.type
    if t == "tensor":
        return _ref(value, field, defined, what)
    if t == "value":
        return _ref(value, field, defined, what)
    if t == "tensors":
        if not isinstance(value, list) or not value:
            raise _bad(f"{what} must be a non-empty list of node names", field)
        return [_ref(v, f"{field}[{i}]", defined, what) for i, v in enumerate(value)]
    if t == "operand":
        if isinstance(value, str):
            return _ref(value, field, defined, what)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(f"{what} must name a node or be a number; got {value!r}", field)
        return value
    if t == "int":
        return _int_or_ref(value, field, defined, what)
    if t == "ints":
        if isinstance(value, list):
            return [
                None if v is None and p.nullable_items else _int_or_ref(v, f"{field}[{i}]", defined, what)
                for i, v in enumerate(value)
            ]
        return _int_or_ref(value, field, defined, what)
    if t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(f"{what} must be a number; got {value!r}", field)
        return float(value)
    if t == "bool":
        if not isinstance(value, bool):
            raise _bad(f"{what} must be true or false; got {value!r}", field)
        return value
    if t == "str":
        if not isinstance(value, str) or (p.choices and value not in p.choices):
            options = ", ".join(repr(c) for c in p.choices or ())
            raise _bad(f"{what} must be one of {options}; got {value!r}", field)
        return value
    if t == "index":
        return _index(value, field, defined)
    raise _bad(f"{what} has an unknown type {t}", field)  # pragma: no cover - the table is fixed


def _bind(op: OpSpec, node: dict[str, Any], field: str, defined: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    args = node.get("args", [])
    kwargs = node.get("kwargs", {})
    if not isinstance(args, list):
        raise _bad("args must be a list", f"{field}.args")
    if not isinstance(kwargs, dict):
        raise _bad("kwargs must be an object", f"{field}.kwargs")
    names = [p.name for p in op.params]
    if len(args) > len(op.params):
        raise _bad(
            f"{op.name} takes at most {len(op.params)} arguments ({', '.join(names)}); got {len(args)}",
            f"{field}.args",
        )
    bound: dict[str, Any] = {}
    given: list[str] = []
    for i, (p, value) in enumerate(zip(op.params, args)):
        bound[p.name] = _literal(p, value, f"{field}.args[{i}]", defined, op.name)
        given.append(p.name)
    for key, value in kwargs.items():
        p = next((q for q in op.params if q.name == key), None)
        if p is None:
            raise _bad(f"{op.name} has no argument {key!r}; its arguments are: {', '.join(names)}", f"{field}.kwargs")
        if key in bound:
            raise _bad(f"{op.name} got {key!r} twice (in args and in kwargs)", f"{field}.kwargs.{key}")
        bound[key] = _literal(p, value, f"{field}.kwargs.{key}", defined, op.name)
        given.append(key)
    for p in op.params:
        if p.name not in bound:
            if p.required:
                raise _bad(f"{op.name} needs {p.name} ({p.type})", f"{field}.args")
            bound[p.name] = p.default
    return bound, [p.name for p in op.params if p.name in given]


def _parameter(value: Any, field: str) -> tuple[tuple[int, ...], str]:
    if not isinstance(value, dict) or not set(value) <= {"shape", "init"} or "shape" not in value:
        raise _bad('a parameter is written {"shape": [...], "init": "zeros"|"ones"|"randn"|"rand"}', field)
    shape = value["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > 8
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise _bad(
            f"a parameter's shape must be a list of at most 8 positive integers; got {shape!r}", f"{field}.shape"
        )
    if math.prod(shape) > MAX_PARAMETER_ELEMENTS:
        raise TooLarge(
            f"Graph: a parameter of shape {shape} has {math.prod(shape)} elements; the limit is "
            f"{MAX_PARAMETER_ELEMENTS}",
            field=f"{field}.shape",
        )
    init = value.get("init", "zeros")
    if init not in INITS:
        raise _bad(f"a parameter's init must be one of {', '.join(INITS)}; got {init!r}", f"{field}.init")
    return tuple(shape), init


def _module_args(node: dict[str, Any], field: str, defined: dict[str, str]) -> list[Any]:
    if node.get("kwargs"):
        raise _bad("a module node passes its inputs in args (node names, in forward()'s order)", f"{field}.kwargs")
    args = node.get("args")
    if not isinstance(args, list) or not args:
        raise _bad("a module node needs args: the names of the nodes it is called with", f"{field}.args")
    out: list[Any] = []
    for i, a in enumerate(args):
        if isinstance(a, list):  # a tuple argument (an LSTM's (h_0, c_0))
            out.append([_ref(v, f"{field}.args[{i}][{k}]", defined, "an argument") for k, v in enumerate(a)])
        else:
            out.append(_ref(a, f"{field}.args[{i}]", defined, "an argument"))
    return out


def _names(value: Any, field: str, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _bad(f"{what} must be a name or a non-empty list of names", field)
    return list(value)


def _tied(value: Any, field: str, modules: set[str], parameters: set[str]) -> list[tuple[str, str]]:
    """``{"head.weight": "embed.weight"}``: each key, a parameter of a module node (or a parameter
    node), becomes the value's parameter (one tensor, counted once, as ``head.weight = embed.weight``
    makes it in Python)."""
    if not isinstance(value, dict):
        raise _bad('tied is an object {"<node>.<parameter>": "<node>.<parameter>"}', field)
    if len(value) > MAX_NODES:
        raise TooLarge(f"Graph ties {len(value)} parameters; the limit is {MAX_NODES}", field=field)
    out: list[tuple[str, str]] = []
    for key, target in value.items():
        for name in (key, target):
            parts = name.split(".") if isinstance(name, str) else []
            ok = all(p.isidentifier() for p in parts) and (
                (len(parts) >= 2 and parts[0] in modules) or (len(parts) == 1 and parts[0] in parameters)
            )
            if not parts or not ok:
                raise _bad(
                    f"a tied name is a module node's name and its parameter's dotted name (e.g. 'embed.weight'), "
                    f"or a parameter node's name; got {name!r}",
                    f"{field}.{key}",
                )
        if key == target or target in value:
            raise _bad(f"{key!r} is tied to {target!r}, which is itself tied or the same name", f"{field}.{key}")
        out.append((key, target))
    return out


Resolver = Callable[..., LayerNode]


def resolve_graph(
    registry: Registry, spec: LayerSpec, config: dict[str, Any], field: str, name: str, resolve: Resolver
):
    """Validate a Graph config: names, references in order, modules against the catalog, ops against the table."""
    allowed = {"type", "name", "inputs", "nodes", "outputs", "tied"}
    extra = sorted(set(config) - allowed)
    if extra:
        raise InvalidArgument(
            f"Graph has no argument {extra[0]!r}; its arguments are: inputs, nodes, outputs, tied",
            field=f"{field}.{extra[0]}",
        )
    seen: set[str] = set()
    inputs = _names(config.get("inputs", ["x"]), f"{field}.inputs", "inputs")
    for i, n in enumerate(inputs):
        _check_name(n, f"{field}.inputs[{i}]", seen, attribute=False)
    raw = config.get("nodes")
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument("Graph needs nodes: a non-empty list of node objects", field=f"{field}.nodes")
    if len(raw) > MAX_NODES:
        raise TooLarge(f"Graph has {len(raw)} nodes; the limit is {MAX_NODES}", field=f"{field}.nodes")
    defined: dict[str, str] = dict.fromkeys(inputs, "input")
    nodes: list[NodeDef] = []
    children: list[LayerNode] = []
    for i, raw_node in enumerate(raw):
        nf = f"{field}.nodes[{i}]"
        if not isinstance(raw_node, dict):
            raise _bad("each node is an object with a name and one of module, op, parameter", nf)
        kinds = [k for k in ("module", "op", "parameter") if k in raw_node]
        if len(kinds) != 1:
            raise _bad("each node has exactly one of module, op, parameter", nf)
        unknown = sorted(set(raw_node) - {"name", "module", "op", "parameter", "args", "kwargs"})
        if unknown:
            raise _bad(f"a node has no field {unknown[0]!r} (name, module, op, parameter, args, kwargs)", nf)
        kind = kinds[0]
        node_name = _check_name(raw_node.get("name"), f"{nf}.name", seen, attribute=kind != "op")
        if kind == "module":
            args = _module_args(raw_node, nf, defined)
            if len(children) >= MAX_CHILDREN * 4:
                raise TooLarge(f"Graph has more than {MAX_CHILDREN * 4} module nodes", field=nf)
            children.append(resolve(registry, raw_node["module"], field=f"{nf}.module", name=node_name))
            nodes.append(NodeDef(node_name, "module", nf, args=args))
        elif kind == "parameter":
            if "args" in raw_node or "kwargs" in raw_node:
                raise _bad("a parameter node takes no args", nf)
            shape, init = _parameter(raw_node["parameter"], f"{nf}.parameter")
            nodes.append(NodeDef(node_name, "parameter", nf, shape=shape, init=init))
        else:
            op = OPS.get(raw_node["op"]) if isinstance(raw_node["op"], str) else None
            if op is None:
                raise _bad(f"unknown operation {raw_node['op']!r}; the operations are: {', '.join(OPS)}", f"{nf}.op")
            bound, given = _bind(op, raw_node, nf, defined)
            nodes.append(NodeDef(node_name, "op", nf, op=op.name, bound=bound, given=given))
        defined[node_name] = kind
    outputs = _names(config.get("outputs", nodes[-1].name), f"{field}.outputs", "outputs")
    for i, o in enumerate(outputs):
        _ref(o, f"{field}.outputs[{i}]", defined, "an output")
    tied = _tied(
        config.get("tied", {}),
        f"{field}.tied",
        {n.name for n in nodes if n.kind == "module"},
        {n.name for n in nodes if n.kind == "parameter"},
    )
    gdef = GraphDef(inputs, nodes, outputs, tuple_output=isinstance(config.get("outputs"), list), tied=tied)
    node = LayerNode(spec=spec, args={"graph": gdef}, slots={"nodes": children}, name=name, field=field)
    node.spec = _specialise(spec, gdef, children)
    return node


def _specialise(spec: LayerSpec, gdef: GraphDef, children: list[LayerNode]) -> LayerSpec:
    """The graph's inputs, each drawn as its first consumer's input is; its outputs' names."""
    by_name = {c.name: c for c in children}
    inputs: list[InputSpec] = []
    for name in gdef.inputs:
        found = InputSpec(name, "(*)")
        for n in gdef.nodes:
            if n.kind != "module":
                continue
            flat = [a for arg in n.args for a in (arg if isinstance(arg, list) else [arg])]
            if Ref(name) in flat:
                child_inputs = by_name[n.name].spec.inputs
                k = flat.index(Ref(name))
                if k < len(child_inputs):
                    c = child_inputs[k]
                    found = InputSpec(name, c.convention, c.kind, c.high if isinstance(c.high, int) else None)
                break
        inputs.append(found)
    outputs: list[str] = []
    for o in gdef.outputs:
        n = gdef.node(o)
        if not gdef.tuple_output and n is not None and n.kind == "module" and len(by_name[o].spec.outputs) > 1:
            outputs += list(by_name[o].spec.outputs)
        else:
            outputs.append(o if gdef.tuple_output else "output")
    example = {
        "layer": {"type": "Graph"},
        "inputs": [{"shape": [1]} for _ in gdef.inputs],
    }
    return LayerSpec(
        type=spec.type,
        family=spec.family,
        factory=spec.factory,
        params=spec.params,
        inputs=inputs,
        example=example,
        doc=spec.doc,
        outputs=outputs,
        source=spec.source,
        container=spec.container,
        code_prelude=spec.code_prelude,
        code_name=spec.code_name,
    )


# ---------------------------------------------------------------------------------------------
# the fx graph and the module
# ---------------------------------------------------------------------------------------------


def _sub(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, list):
        return [_sub(v, env) for v in value]
    if isinstance(value, tuple):
        return tuple(_sub(v, env) for v in value)
    if isinstance(value, slice):
        return slice(_sub(value.start, env), _sub(value.stop, env), _sub(value.step, env))
    return value


def _call(op: OpSpec, nd: NodeDef, env: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Required arguments by position, the ones the request gave by name (torch's defaults otherwise)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in op.params:
        value = _sub(nd.bound[p.name], env)
        if p.required:
            args.append(tuple(value) if p.type == "tensors" else value)
        elif p.name in nd.given and value is not None:
            kwargs[p.name] = value
    return tuple(args), kwargs


def fx_graph(gdef: GraphDef) -> tuple[fx.Graph, dict[str, str]]:
    """The fx graph of the config, and each fx node's name -> its config node (fx renames builtins)."""
    g = fx.Graph()
    env: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name in gdef.inputs:
        env[name] = g.placeholder(name)
        names[env[name].name] = name
    training = None
    for nd in gdef.nodes:
        if nd.kind == "module":
            args = tuple(tuple(_sub(a, env)) if isinstance(a, list) else _sub(a, env) for a in nd.args)
            env[nd.name] = g.create_node("call_module", nd.name, args, {}, name=nd.name)
        elif nd.kind == "parameter":
            env[nd.name] = g.create_node("get_attr", nd.name, (), {}, name=nd.name)
        else:
            op = OPS[nd.op or ""]
            args, kwargs = _call(op, nd, env)
            if op.training:
                if training is None:
                    training = g.get_attr("training")
                kwargs["training"] = training
            if op.call == "method":
                target: Any = op.fn.__name__
                env[nd.name] = g.create_node("call_method", target, args, kwargs, name=nd.name)
            else:
                env[nd.name] = g.create_node("call_function", op.fn, args, kwargs, name=nd.name)
        names[env[nd.name].name] = nd.name
    outs = [env[o] for o in gdef.outputs]
    g.output(tuple(outs) if gdef.tuple_output else outs[0])
    return g, names


def _init(shape: tuple[int, ...], init: str) -> torch.Tensor:
    return {"zeros": torch.zeros, "ones": torch.ones, "randn": torch.randn, "rand": torch.rand}[init](shape)


def _tie(gm: nn.Module, key: str, target: str, field: str) -> None:
    """``gm.<key> = gm.<target>``: after every node is built, so the random numbers are the untied ones'."""
    params = dict(gm.named_parameters(remove_duplicate=False))
    for name in (key, target):
        if name not in params:
            owner, _, rest = name.partition(".")
            known = [p.split(".", 1)[1] for p in params if p.startswith(owner + ".")]
            raise InvalidArgument(
                f"Graph: tied names {name!r}, but layer {owner} has no parameter "
                f"{rest!r}; its parameters are: {', '.join(known) or 'none'}",
                field=field,
            )
    if params[key].shape != params[target].shape:
        raise InvalidArgument(
            f"Graph: {key} has shape {tuple(params[key].shape)} and {target} has shape "
            f"{tuple(params[target].shape)}; only parameters of one shape can be tied",
            field=field,
        )
    path, _, leaf = key.rpartition(".")
    setattr(gm.get_submodule(path), leaf, params[target])


def build_graph(node: LayerNode, build: Callable[[LayerNode], nn.Module]) -> nn.Module:
    """Modules and parameters in node order (the script's order: same random numbers), then the GraphModule."""
    gdef: GraphDef = node.args["graph"]
    children = {c.name: c for c in node.slots["nodes"]}
    root = nn.Module()
    for nd in gdef.nodes:
        if nd.kind == "module":
            root.add_module(nd.name, build(children[nd.name]))
        elif nd.kind == "parameter":
            root.register_parameter(nd.name, nn.Parameter(_init(nd.shape, nd.init)))
    graph, names = fx_graph(gdef)
    gm = fx.GraphModule(root, graph, class_name="Graph")
    for key, target in gdef.tied:
        _tie(gm, key, target, f"{node.field}.tied.{key}")
    gm.meta["config_names"] = names
    gm.meta["config_ops"] = {nd.name: nd.op for nd in gdef.nodes if nd.kind == "op"}
    return gm


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------


def _structure(module: nn.Module, outputs: list[list[int]]) -> Any:
    """A module's output value as forward() returns it: a tensor, or a tuple such as LSTM's (out, (h, c))."""
    shapes = [Shape(tuple(s)) for s in outputs]
    if len(shapes) == 1:
        return shapes[0]
    if isinstance(module, nn.LSTM) and len(shapes) == 3:
        return (shapes[0], (shapes[1], shapes[2]))
    return tuple(shapes)


def _leaves(value: Any) -> list[Shape]:
    if isinstance(value, Shape):
        return [value]
    if isinstance(value, tuple):
        return [s for v in value for s in _leaves(v)]
    return []


def _describe_inputs(values: list[tuple[str, Any]]) -> str:
    parts = []
    for name, v in values:
        if isinstance(v, Shape):
            parts.append(f"{name} {v}")
        elif isinstance(v, tuple):
            parts.append(f"{name} a tuple of {len(v)}")
        else:
            parts.append(f"{name} = {v!r}")
    return ", ".join(parts)


def _refs(value: Any) -> list[str]:
    if isinstance(value, Ref):
        return [value.name]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v)]
    if isinstance(value, slice):
        return _refs([value.start, value.stop, value.step])
    return []


def _value(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, list):
        out = [_value(v, env) for v in value]
        # a size tuple referenced as a whole list entry stays a tuple; ints lists are flat
        return out
    if isinstance(value, tuple):
        return tuple(_value(v, env) for v in value)
    if isinstance(value, slice):
        return slice(_value(value.start, env), _value(value.stop, env), _value(value.step, env))
    return value


def _check_ints(op: OpSpec, bound: dict[str, Any]) -> None:
    """Integer parameters that referenced a node must have received integers (a size)."""
    for p in op.params:
        v = bound[p.name]
        if p.type == "int" and v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise OpError(f"{p.name} must be an integer; got {v!r}")
        if p.type == "ints" and v is not None:
            items = list(v) if isinstance(v, (list, tuple)) else [v]
            if not all(
                (i is None and p.nullable_items) or (isinstance(i, int) and not isinstance(i, bool)) for i in items
            ):
                raise OpError(f"{p.name} must be integers; got {v!r}")
            if isinstance(v, tuple):
                bound[p.name] = list(v)


class Dialect:
    """How the one engine words what it finds, and where a container's trace entry goes.

    A ``Graph`` names a node's inputs by their node names ("it receives conv1 (1, 8, 6, 6)");
    ``Sequential`` and ``Residual`` lower to graphs (:mod:`app.core.networks.lower`) and keep their
    own wording ("layer 0 (Linear) outputs (4, 5)") by passing a dialect of their own.
    """

    #: a nested container's own entry goes before the layers inside it (as forward hooks record a
    #: call: pre-hook first); a chain lists it after them
    entry_first = True

    def module_input(self, ctx: Run, nd: NodeDef, child: LayerNode, path: str) -> None:
        """Called before a module node is predicted (a chain checks that the layer takes one tensor)."""

    def tuple_input(self, ctx: Run, nd: NodeDef, child: LayerNode, path: str, bad: tuple[str, Any]) -> Exception:
        return ShapeMismatch(
            f"layer {path} ({child.spec.type}) is called with {bad[0]}, which is "
            f"{'a tuple' if isinstance(bad[1], tuple) else repr(bad[1])}, not a tensor; "
            f"take one element with a getitem node",
            field=f"{nd.field}.args",
            path=path,
            trace=ctx.trace,
        )

    def module_error(
        self,
        ctx: Run,
        nd: NodeDef,
        child: LayerNode,
        path: str,
        exc: ShapeMismatch,
        values: list[tuple[str, Any]],
    ) -> ShapeMismatch:
        detail = exc.detail.removeprefix(child.spec.type + " ")
        return ShapeMismatch(
            f"layer {path} ({child.spec.type}) {detail.replace('input 0', 'its input')}; "
            f"it receives {_describe_inputs(values)}",
            field=f"{nd.field}.module",
            path=path,
            trace=ctx.trace,
        )

    def check_op(self, ctx: Run, nd: NodeDef, bound: dict[str, Any]) -> None:
        """Called before an operation's rule (a residual sum checks its two sides match exactly)."""

    def result(self, ctx: Run, leaves: list[Shape]) -> list[list[Dim]]:
        return [[Dim(n, Sym(n, v)) for n, v in zip(generic_names(s.rank, None), s.dims)] for s in leaves]


GRAPH = Dialect()


@dataclass
class Run:
    """One prediction over a graph: the values so far, each module node's own output dims, the trace."""

    gdef: GraphDef
    children: dict[str, LayerNode]
    prefix: str
    trace: list[dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    #: module nodes' output dims as their formulas named them
    dims: dict[str, list[list[Dim]]] = field(default_factory=dict)


def predict_graph(
    node: LayerNode,
    module: nn.Module,
    shapes: list[tuple[int, ...]],
    prefix: str,
    trace: list[dict[str, Any]],
    counted: Counted | None = None,
) -> list[list[Dim]] | None:
    """Each node's value from the layers' formulas and the operations' rules, in node order."""
    gdef: GraphDef = node.args["graph"]
    if len(shapes) != len(gdef.inputs):
        raise InvalidRequest(
            f"the graph takes {len(gdef.inputs)} input(s) ({', '.join(gdef.inputs)}); got {len(shapes)}",
            field="inputs",
        )
    children = {c.name: c for c in node.slots["nodes"]}
    return run(gdef, children, module, shapes, prefix, trace, GRAPH, field=node.field, counted=counted)


def run(
    gdef: GraphDef,
    children: dict[str, LayerNode],
    module: nn.Module,
    shapes: list[tuple[int, ...]],
    prefix: str,
    trace: list[dict[str, Any]],
    dialect: Dialect,
    *,
    field: str,
    counted: Counted | None = None,
) -> list[list[Dim]] | None:
    """The engine: every network's shape prediction, trace and shape errors (Graph, and Sequential
    and Residual lowered to graphs). None where a layer has no formula: the meta pass decides."""
    ctx = Run(gdef, children, prefix, trace)
    env = ctx.env
    env.update({name: Shape(tuple(s)) for name, s in zip(gdef.inputs, shapes)})
    for nd in gdef.nodes:
        path = join(prefix, nd.name)
        if nd.kind == "parameter":
            env[nd.name] = Shape(nd.shape)
            continue
        if nd.kind == "module":
            child = ctx.children[nd.name]
            flat = [a for arg in nd.args for a in (arg if isinstance(arg, list) else [arg])]
            values = [(r.name, env[r.name]) for r in flat]
            bad = next(((n, v) for n, v in values if not isinstance(v, Shape)), None)
            if bad is not None:
                raise dialect.tuple_input(ctx, nd, child, path, bad)
            dialect.module_input(ctx, nd, child, path)
            ins = [v.dims for _, v in values]
            # a direct child (a chain's "0", a graph's node name) from the module's own dict: get_submodule
            # splits and checks the path for each of a deep network's layers
            sub = module._modules.get(nd.name)
            if sub is None:
                sub = module.get_submodule(nd.name)
            at = len(trace)  # the entry goes before the layers inside it, as a forward pass records them
            try:
                out = predict(child, sub, ins, prefix=path, trace=trace, counted=counted)
            except ShapeMismatch as exc:
                if exc.extra.get("path"):
                    raise
                raise dialect.module_error(ctx, nd, child, path, exc, values) from None
            if out is None:  # no formula for this layer: the meta pass and the real run decide
                return None
            out_shapes = [[d.expr.int_value() for d in dims] for dims in out]
            if counted is None:
                entry = trace_entry(path, sub, child.spec.type, ins, out_shapes)
            else:
                entry = counted_entry(counted, path, sub, child.spec, ins, out_shapes)
            if dialect.entry_first:
                trace.insert(at, entry)
            else:
                trace.append(entry)
            env[nd.name] = _structure(sub, out_shapes)
            ctx.dims[nd.name] = out
            continue
        op = OPS[nd.op or ""]
        bound = {k: _value(v, env) for k, v in nd.bound.items()}
        dialect.check_op(ctx, nd, bound)
        try:
            _check_ints(op, bound)
            env[nd.name] = op.rule(bound)
        except OpError as exc:
            used = list(dict.fromkeys(_refs(list(nd.bound.values()))))
            listed = _describe_inputs([(r, env[r]) for r in used])
            raise ShapeMismatch(
                f"node {path} ({op.name}): {exc}; its inputs are {listed}" if listed else f"node {path}: {exc}",
                field=nd.field,
                path=path,
                trace=trace,
                input_shapes={r: list(env[r].dims) for r in used if isinstance(env[r], Shape)},
            ) from None
    out_values = [env[o] for o in gdef.outputs]
    leaves = [s for v in out_values for s in _leaves(v)]
    if not leaves:
        raise ShapeMismatch(f"the graph's output {', '.join(gdef.outputs)} is not a tensor", field=f"{field}.outputs")
    return dialect.result(ctx, leaves)


def register(registry: Registry) -> None:
    registry.add(
        LayerSpec(
            type="Graph",
            family="container",
            factory=nn.Module,
            params=[
                ParamSpec("inputs", "names", default=["x"], doc="the graph's input names, in forward()'s order"),
                ParamSpec(
                    "nodes",
                    "graph_nodes",
                    required=True,
                    doc='named nodes in execution order, each {"module": config} or {"op": name} with "args"/'
                    '"kwargs", or {"parameter": {"shape", "init"}}',
                ),
                ParamSpec("outputs", "names", doc="the node (or list of nodes) the graph returns; default the last"),
                ParamSpec(
                    "tied",
                    "tied",
                    default={},
                    doc='tied parameters, {"head.weight": "embed.weight"}: the first becomes the second (one '
                    "tensor, counted once)",
                ),
            ],
            inputs=[InputSpec("x", "(*)")],
            example={
                "layer": {
                    "type": "Graph",
                    "inputs": ["x"],
                    "nodes": [
                        {
                            "name": "b1",
                            "module": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 1},
                            "args": ["x"],
                        },
                        {
                            "name": "b3",
                            "module": {
                                "type": "Conv2d",
                                "in_channels": 3,
                                "out_channels": 4,
                                "kernel_size": 3,
                                "padding": 1,
                            },
                            "args": ["x"],
                        },
                        {"name": "cat", "op": "cat", "args": [["b1", "b3"]], "kwargs": {"dim": 1}},
                        {"name": "act", "op": "relu", "args": ["cat"]},
                    ],
                    "outputs": "act",
                },
                "inputs": [{"shape": [1, 3, 8, 8]}],
                "seed": 0,
            },
            doc="A network as a dataflow graph: named nodes, each a layer, an operation of a fixed table or a "
            "learnable tensor, run in the order listed.",
            source="container",
            container=ContainerSpec(
                slots={"nodes": ""}, predict=predict_graph, resolve=resolve_graph, build=build_graph, dataflow=True
            ),
            code_name="Graph",
        )
    )


# ---------------------------------------------------------------------------------------------
# the reproduction script
# ---------------------------------------------------------------------------------------------

_FREED = re.compile(r";\s+(?:\w+ = )+None$")


def class_source(node: LayerNode, class_name: str, ctor: Callable[[LayerNode], str]) -> str:
    """``class <class_name>(torch.nn.Module)``: the layers and parameters built in node order in
    ``__init__`` (``ctor`` writes each layer's constructor), and ``forward`` the graph as fx prints it."""
    gdef: GraphDef = node.args["graph"]
    children = {c.name: c for c in node.slots["nodes"]}
    lines = [f"class {class_name}(torch.nn.Module):", "    def __init__(self):", "        super().__init__()"]
    for nd in gdef.nodes:
        if nd.kind == "module":
            lines.append(f"        self.{nd.name} = {ctor(children[nd.name])}")
        elif nd.kind == "parameter":
            lines.append(
                f"        self.{nd.name} = torch.nn.Parameter(torch.{nd.init}({', '.join(map(str, nd.shape))}))"
            )
    for key, target in gdef.tied:
        lines.append(f"        self.{key} = self.{target}")
    graph, _ = fx_graph(gdef)
    code = graph.python_code("self")
    lines.append("")
    for line in code.src.strip("\n").splitlines():
        line = _FREED.sub("", line.rstrip())
        for name, value in code.globals.items():
            # fx names a tensor method it calls as a function "torch_Tensor_view": write what it is
            if name.startswith("torch_Tensor_"):
                line = line.replace(name + "(", f"torch.Tensor.{getattr(value, '__name__', name[13:])}(")
        lines.append(f"    {line}" if line else "")
    return "\n".join(lines).rstrip() + "\n"
