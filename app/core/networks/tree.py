"""A request's layer config as a tree of validated nodes, and the one walker over it.

``resolve`` validates a config against the catalog, recursing into nested layer configs, without
building anything; ``build`` turns the tree into the real module under whatever device context the
caller set (meta for planning, the CPU under the seed for a real run). Resolve, build, the shape
chain, the reproduction script and child lookup all walk the same tree; a container is known by
its spec's ``container`` property, never by its type name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import torch
from torch import nn

from app.core.catalog.args import lookup, resolve_args
from app.core.catalog.spec import InputSpec, LayerSpec, Registry
from app.core.errors import LayerExplorerError
from app.core.networks.trace import Counted, trace_entry
from app.core.shapes.context import ShapeContext
from app.core.shapes.expr import Dim
from app.core.torch_errors import TORCH_FAULTS, build_error


@dataclass
class LayerNode:
    """One validated layer config: its spec, its plain arguments and its nested layer configs."""

    spec: LayerSpec
    #: validated constructor arguments, nested layer configs excluded
    args: dict[str, Any]
    #: nested layer configs by parameter name, in the constructor's order
    slots: dict[str, Any] = field(default_factory=dict)
    #: the child's name inside its container ("" for the root)
    name: str = ""
    #: where the config sits in the request, e.g. "layer.layers[2]"
    field: str = "layer"
    #: on the root :func:`resolve` returned: :func:`subtree_ids` of its tree, found while resolving it
    subtrees: dict[int, int] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def is_container(self) -> bool:
        return self.spec.container is not None

    def __getstate__(self) -> dict[str, Any]:
        # the ids are keyed by this tree's nodes: a copy (pickle, deepcopy) holds other nodes, and walks again
        return {**self.__dict__, "subtrees": None}

    def nested(self) -> Iterator[tuple[str, LayerNode]]:
        """(parameter name, node) for every nested config, in the constructor's order."""
        for param, value in self.slots.items():
            for child in value if isinstance(value, list) else [value]:
                if child is not None:
                    yield param, child

    def children(self) -> Iterator[tuple[str, LayerNode]]:
        """(module path relative to this node, child) for the layers a container holds."""
        if self.spec.container is None:
            return
        for param, value in self.slots.items():
            prefix = self.spec.container.slots.get(param, param)
            if isinstance(value, list):
                for child in value:
                    yield join(prefix, child.name), child
            elif value is not None:
                yield prefix, value


def join(*parts: str) -> str:
    """Module path parts joined by dots, empty parts left out ("" is the root)."""
    if len(parts) == 2:  # the common case, called for every layer of every walk: no generator
        a, b = parts
        return f"{a}.{b}" if a and b else a or b
    return ".".join(p for p in parts if p)


def walk(node: LayerNode, prefix: str = "") -> Iterator[tuple[str, LayerNode]]:
    """Every layer of the tree in execution order, pre-order, with its module path."""
    # a stack, not nested generators: each layer of a 512-block network would otherwise pass up
    # through one generator per level above it
    stack = [(prefix, node)]
    while stack:
        path, current = stack.pop()
        yield path, current
        stack.extend(reversed([(join(path, sub), child) for sub, child in current.children()]))


def find(node: LayerNode, path: str) -> LayerNode | None:
    """The node whose module sits at ``path`` ("1.fc2"), when the path runs through containers."""
    for p, child in walk(node):
        if p == path:
            return child
    return None


def _child_name(config: Any, index: int) -> str:
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else str(index)


def resolve(registry: Registry, config: Any, *, field: str = "layer", name: str = "") -> LayerNode:
    """Validate ``config`` (and every nested config) against the catalog; nothing is built.

    Each distinct leaf config is validated once (:class:`_Resolving`): 512 equal Linear configs are one
    check and 512 plain copies. The returned root carries its tree's :func:`subtree_ids`."""
    resolving = _Resolving()
    node = resolving.resolve(registry, config, field=field, name=name)
    hidden = resolving.hidden
    node.subtrees = {k: v for k, v in resolving.ids.items() if k not in hidden} if hidden else resolving.ids
    return node


class _Resolving:
    """One :func:`resolve` of a request's config: what it validated so far, and its subtrees' ids.

    A config equal to one met before (the same JSON text, and equal: 1, 1.0 and true, a list and a
    tuple stay apart) is that config's nodes again at its own field, under its own name: validating it
    would give the same arguments and nested nodes, and a config that is refused is refused at its
    first occurrence. Only configs whose arguments are plain data all the way down are kept (those with
    an id): a tensor argument is decoded for each layer (each module gets its own), and a Graph words
    its nodes' fields itself. The ids are those :func:`subtree_ids` gives, each node's found as it is
    resolved from its nested nodes'; a container whose id was met before takes that container's
    specialised entry (a function of the configs under it).
    """

    def __init__(self) -> None:
        #: a config's JSON -> the config and its first node (a layer, or a block and the nodes under it)
        self.kept: dict[bytes, tuple[Any, LayerNode]] = {}
        self.table: dict[Any, int] = {}
        self.ids: dict[int, int] = {}
        #: nodes nested in a layer's own configs (an encoder's layer): ids of their own, for copies of them,
        #: but none in the answer, as the walk of subtree_ids gives none
        self.hidden: set[int] = set()
        #: a container's id -> its specialised catalog entry
        self.specs: dict[int, LayerSpec] = {}

    def resolve(self, registry: Registry, config: Any, *, field: str = "layer", name: str = "") -> LayerNode:
        spec = lookup(registry, config, field=field)
        # a Graph's config is resolved by its own rules each time: its nodes' fields are its own
        text = _json_key(config) if spec.container is None or spec.container.resolve is None else None
        kept = self.kept.get(text) if text is not None else None
        if kept is not None and kept[0] == config:
            return self._copy(kept[1], field, name)
        if spec.container is not None:
            node = self._container(registry, spec, config, field, name)
        else:
            node = self._layer(registry, spec, config, field, name)
            if node.slots:
                # as the walk of subtree_ids, which does not enter a layer's nested configs (an encoder's layer)
                self._forget(node)
                return node
            key = _config_key(node)
            if key is not None:
                self.ids[id(node)] = self.table.setdefault(key, len(self.table))
        # with an id, every config under it is plain data and has one
        if text is not None and id(node) in self.ids:
            self.kept[text] = (config, node)
        return node

    def _copy(self, first: LayerNode, field: str, name: str) -> LayerNode:
        """``first`` again at ``field`` under ``name``: nodes and arguments of its own, the same ids, the
        nested nodes' fields worded as :meth:`_arguments` words them."""
        slots: dict[str, Any] = {}
        for param, value in first.slots.items():
            if isinstance(value, list):
                slots[param] = [self._copy(c, f"{field}.{param}[{i}]", c.name) for i, c in enumerate(value)]
            else:
                slots[param] = None if value is None else self._copy(value, f"{field}.{param}", value.name)
        node = LayerNode(first.spec, _own_args(first.args), slots, name, field)
        self.ids[id(node)] = self.ids[id(first)]
        return node

    def _layer(self, registry: Registry, spec: LayerSpec, config: Any, field: str, name: str) -> LayerNode:
        """A layer's node (no container): its arguments validated, its nested configs resolved."""
        args, slots, _ = self._arguments(registry, spec, config, field)
        return LayerNode(spec=spec, args=args, slots=slots, name=name, field=field)

    def _container(self, registry: Registry, spec: LayerSpec, config: Any, field: str, name: str) -> LayerNode:
        container = spec.container
        assert container is not None
        if container.resolve is not None:
            # a Graph: resolved by its own rules (its layers through this resolve); it gets no id
            return container.resolve(registry, spec, config, field, name, self.resolve)
        args, slots, kids = self._arguments(registry, spec, config, field)
        node = LayerNode(spec=spec, args=args, slots=slots, name=name, field=field)
        key = None
        if container.lower is not None and all(k is not None for *_, k in kids):
            try:
                # a container's spec is specialised per node (its inputs are its first layer's): its type
                key = (spec.type, _frozen(args), tuple(kids))
            except _Unkeyed:
                key = None
        sid = None if key is None else self.table.setdefault(key, len(self.table))
        specialised = self.specs.get(sid) if sid is not None else None
        if specialised is None:
            specialised = _specialise(node)
            if sid is not None:
                self.specs[sid] = specialised
        node.spec = specialised
        if sid is not None:
            self.ids[id(node)] = sid
        return node

    def _arguments(
        self, registry: Registry, spec: LayerSpec, config: Any, field: str
    ) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, int | None]]]:
        """The validated arguments, the nested configs resolved, and (parameter, name, id) of each of those."""
        kwargs = resolve_args(spec, config, field=field)
        args: dict[str, Any] = {}
        slots: dict[str, Any] = {}
        kids: list[tuple[str, str, int | None]] = []
        ids = self.ids
        for p in spec.params:
            if p.name not in kwargs:
                continue
            value = kwargs[p.name]
            if p.type == "layer":
                child = None if value is None else self.resolve(registry, value, field=f"{field}.{p.name}", name=p.name)
                slots[p.name] = child
                if child is not None:
                    kids.append((p.name, child.name, ids.get(id(child))))
            elif p.type == "layers":
                children = [
                    self.resolve(registry, c, field=f"{field}.{p.name}[{i}]", name=_child_name(c, i))
                    for i, c in enumerate(value)
                ]
                slots[p.name] = children
                kids += [(p.name, child.name, ids.get(id(child))) for child in children]
            else:
                args[p.name] = value
        return args, slots, kids

    def _forget(self, node: LayerNode) -> None:
        """No ids in the answer for the nodes nested in ``node``."""
        stack = [child for _, child in node.nested()]
        while stack:
            current = stack.pop()
            self.hidden.add(id(current))
            stack.extend(child for _, child in current.nested())


def _json_key(config: Any) -> bytes | None:
    """A config as JSON text, None where orjson cannot write it (a subclass of a JSON type, an integer
    past 64 bits). The text keeps 1, 1.0, true and -0.0 apart; a NaN and null, or a list and a tuple,
    write alike, and the configs' equality tells those apart (a NaN is equal to no other)."""
    if type(config) is not dict:
        return None
    try:
        return orjson.dumps(config, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except TypeError:
        return None


def _own_args(args: dict[str, Any]) -> dict[str, Any]:
    """A node's own copy of validated arguments: lists and dicts copied, so no two layers share one."""
    return {k: _own_value(v) if type(v) in (list, dict) else v for k, v in args.items()} if args else {}


def _own_value(value: Any) -> Any:
    if type(value) is list:
        return [_own_value(v) for v in value]
    if type(value) is dict:
        return {k: _own_value(v) for k, v in value.items()}
    return value


def _first_leaf_inputs(node: LayerNode) -> list[InputSpec] | None:
    for _, child in node.children():
        found = _first_leaf_inputs(child) if child.is_container else child.spec.inputs
        if found:
            return found
    return None


def _specialise(node: LayerNode) -> LayerSpec:
    """A container takes its first layer's inputs; a chain returns its last layer's outputs."""
    container = node.spec.container
    if container is None:
        return node.spec
    inputs = _first_leaf_inputs(node) or node.spec.inputs
    outputs = node.spec.outputs
    last = None
    for _, child in node.children():
        last = child
    if container.chain and last is not None:
        outputs = last.spec.outputs
    # one specialised entry per (entry, inputs, outputs): 512 identical blocks share one, where
    # dataclasses.replace for each was a fifth of resolving them
    key = (id(node.spec), id(inputs), id(outputs))
    kept = _SPECIALISED.get(key)
    if kept is None:
        if len(_SPECIALISED) >= 4096:
            _SPECIALISED.clear()
        # the key's objects are kept with the answer, so that their ids are not reused while it is kept
        kept = _SPECIALISED[key] = (
            node.spec,
            inputs,
            outputs,
            dataclasses.replace(node.spec, inputs=inputs, outputs=outputs),
        )
    return kept[3]


_SPECIALISED: dict[tuple[int, int, int], tuple[Any, Any, Any, LayerSpec]] = {}


def build(node: LayerNode, shared: dict[Any, nn.Module] | None = None, keys: dict[int, int] | None = None) -> nn.Module:
    """The module, nested configs built first in argument order; torch's refusals name the layer.

    ``shared``: a layer whose config was built already (the same type and arguments) is that module
    again, for planning (:func:`build_skeleton`); a run builds every layer, each with its own numbers.
    ``keys``: the configs' ids (:func:`subtree_ids`), when the caller has them.
    """
    if node.spec.container is not None and node.spec.container.build is not None:
        return node.spec.container.build(node, build)
    key = None
    if shared is not None and node.spec.container is None:
        key = keys.get(id(node)) if keys is not None else _config_key(node)
    if shared is not None and key in shared:
        return shared[key]
    kwargs: dict[str, Any] = dict(node.args)
    for param, value in node.slots.items():
        if isinstance(value, list):
            kwargs[param] = [(child.name, build(child, shared, keys)) for child in value]
        else:
            kwargs[param] = None if value is None else build(value, shared, keys)
    module = _construct(node, kwargs)
    if shared is not None and node.spec.container is None:
        # a layer built on its own (a tensor argument, nested configs) is kept under its node: every
        # leaf module the skeleton holds is in ``shared``
        shared[key if key is not None else ("node", id(node))] = module
    return module


class _Unkeyed(Exception):
    """An argument that cannot be compared as plain data (a tensor): the layer is built on its own."""


def _frozen(value: Any) -> Any:
    """An argument as a hashable key that tells apart what torch tells apart (1 from True from 1.0,
    0.0 from -0.0: a module's repr shows them differently)."""
    if value is None or isinstance(value, (bool, int, str)):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _frozen(v)) for k, v in value.items()))
    raise _Unkeyed


def _config_key(node: LayerNode) -> Any:
    """What makes two leaf layers the same module but for their numbers: the catalog entry and the
    arguments. None for a container or a layer holding nested configs (each is built itself)."""
    if node.spec.container is not None or node.slots:
        return None
    try:
        return (id(node.spec), _frozen(node.args))
    except _Unkeyed:
        return None


def _holds_self_built(node: LayerNode, keys: dict[int, int] | None = None) -> bool:
    """The tree holds a container that builds its module itself (a Graph). ``keys``: the configs' ids
    (:func:`subtree_ids`): a subtree identical to one looked at already is not looked at again."""
    keys = keys or {}
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        sid = keys.get(id(current))
        if sid is not None:
            if sid in seen:
                continue
            seen.add(sid)
        if current.spec.container is not None and current.spec.container.build is not None:
            return True
        stack.extend(child for _, child in current.nested())
    return False


def subtree_ids(root: LayerNode) -> dict[int, int]:
    """An id for every node (by ``id(node)``) that is equal for two subtrees of the same configs: the
    same types, arguments and child names, all the way down (for a layer, its type and arguments). A subtree holding a layer whose config
    cannot be compared as plain data (a tensor argument), or a container that is not sugar over a graph
    (a Graph), gets none. A root :func:`resolve` returned has them already (found while resolving)."""
    if root.subtrees is not None:
        return root.subtrees
    return walked_subtree_ids(root)


def walked_subtree_ids(root: LayerNode) -> dict[int, int]:
    """:func:`subtree_ids` by a walk of the tree (a tree :func:`resolve` did not return as a root)."""
    table: dict[Any, int] = {}
    ids: dict[int, int] = {}

    def identify(node: LayerNode) -> int | None:
        if node.spec.container is None:
            key = _config_key(node)
        else:
            kids = tuple((param, child.name, identify(child)) for param, child in node.nested())
            key = None
            if node.spec.container.lower is not None and all(k is not None for *_, k in kids):
                try:
                    # a container's spec is specialised per node (its inputs are its first layer's): its type
                    key = (node.spec.type, _frozen(node.args), kids)
                except _Unkeyed:
                    key = None
        if key is None:
            return None
        ids[id(node)] = table.setdefault(key, len(table))
        return ids[id(node)]

    identify(root)
    return ids


@dataclass
class Skeleton:
    """A network's modules for planning (on the meta device): each distinct subtree of configs built
    once, that one module standing at every path with those configs.

    512 identical blocks build one block (a Sequential of one Linear and one ReLU), not 1536 modules:
    the formulas, trace entries and memory estimate read only the layers' arguments and parameter
    shapes, which every copy shares. Where the tree holds a container that builds itself (a Graph: tied
    weights, parameter nodes), every layer is built as in a run.
    """

    module: nn.Module
    #: each distinct leaf module once, with how many paths it stands at
    leaves: list[tuple[nn.Module, int]]
    #: each distinct container module once (Sequential, Residual and the Sequential inside a Residual),
    #: with how many paths it stands at; a container before the containers it holds
    containers: list[tuple[nn.Module, int]] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        """Some module stands at several paths: this is not the module a run builds."""
        return any(n > 1 for _, n in self.leaves) or any(n > 1 for _, n in self.containers)


def build_skeleton(node: LayerNode, keys: dict[int, int] | None = None) -> Skeleton:
    """The planning module of ``node`` (:class:`Skeleton`), under the caller's device context; ``keys``:
    the configs' ids (:func:`subtree_ids`), when the caller has them (without them, equal leaf configs
    still share one module)."""
    if _holds_self_built(node, keys):
        module = build(node)
        return Skeleton(module, [(module, 1)], [])
    # leaves as build() shares them (by config, or each on its own), containers by their subtree's id
    shared: dict[Any, nn.Module] = {}
    containers: dict[int, nn.Module] = {}
    module = _build_shared(node, keys, shared, containers)
    if node.spec.container is None:
        return Skeleton(module, [(module, 1)], [])
    leaf_ids = {id(m) for m in shared.values()}
    # the distinct modules, each before the modules it holds (the reverse of a depth-first post-order)
    order: list[nn.Module] = []
    seen: set[int] = set()

    def visit(m: nn.Module) -> None:
        seen.add(id(m))
        if id(m) not in leaf_ids:
            for child in m._modules.values():
                if child is not None and id(child) not in seen:
                    visit(child)
        order.append(m)

    visit(module)
    order.reverse()
    # paths per module: a module held at k names of a container that stands at n paths stands at k·n
    # of them; a container's count is complete before its children's are read
    uses: dict[int, int] = {id(module): 1}
    for m in order:
        if id(m) in leaf_ids:
            continue
        n = uses[id(m)]
        for child in m._modules.values():
            if child is not None:
                uses[id(child)] = uses.get(id(child), 0) + n
    return Skeleton(
        module,
        [(m, uses[id(m)]) for m in order if id(m) in leaf_ids],
        [(m, uses[id(m)]) for m in order if id(m) not in leaf_ids],
    )


def _build_shared(
    node: LayerNode, keys: dict[int, int] | None, shared: dict[Any, nn.Module], containers: dict[int, nn.Module]
) -> nn.Module:
    """:func:`build` of the skeleton: a leaf as ``build`` shares it, a container whose subtree was
    built already (the same id) that container again, every other container built around its
    children's skeletons."""
    if node.spec.container is None or node.spec.container.build is not None:
        return build(node, shared, keys)
    sid = keys.get(id(node)) if keys is not None else None
    if sid is not None and sid in containers:
        return containers[sid]
    kwargs: dict[str, Any] = dict(node.args)
    for param, value in node.slots.items():
        if isinstance(value, list):
            kwargs[param] = [(child.name, _build_shared(child, keys, shared, containers)) for child in value]
        else:
            kwargs[param] = None if value is None else _build_shared(value, keys, shared, containers)
    module = _construct(node, kwargs)
    if sid is not None:
        containers[sid] = module
    return module


def _construct(node: LayerNode, kwargs: dict[str, Any]) -> nn.Module:
    """``node``'s factory called with ``kwargs`` (by :func:`build` and the skeleton); torch's refusals name the layer."""
    try:
        return node.spec.factory(**kwargs)
    except LayerExplorerError:
        raise
    except TORCH_FAULTS as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in node.args.items() if not isinstance(v, torch.Tensor))
        raise build_error(
            exc, signature=f"{node.spec.type}({shown})", argument_names=list(node.args), field=node.field
        ) from None


def predict(
    node: LayerNode,
    module: nn.Module,
    shapes: list[tuple[int, ...]],
    *,
    prefix: str = "",
    trace: list[dict[str, Any]] | None = None,
    counted: Counted | None = None,
) -> list[list[Dim]] | None:
    """Output dimensions of ``node`` from the layers' formulas; None where a layer has no rule.

    ``trace`` collects one predicted entry per layer of a network, in execution order; ``counted``:
    the modules' parameter counts and the element size, counted once by the caller (a skeleton's
    shared modules are counted at every path; without it each entry counts its module's own).
    """
    trace = trace if trace is not None else []
    if node.spec.container is not None and node.spec.container.predict is not None:
        # a block met before on the same shapes (512 identical blocks) answers as it did then: the rules are
        # functions of the configs and shapes alone; only the paths of its trace entries move
        memo = counted.predictions if counted is not None and prefix else None
        sid = counted.subtrees.get(id(node)) if counted is not None and memo is not None else None
        key = (sid, tuple(tuple(s) for s in shapes))
        if memo is not None and sid is not None and key in memo:
            out, entries, calls = memo[key]
            for inner, entry in entries:
                path = f"{prefix}.{inner}"
                trace.append({**entry, "path": path, "depth": path.count(".")})
            _add_calls(counted.calls[-1], calls)
            return out
        start = len(trace)
        if memo is None or sid is None:
            return node.spec.container.predict(node, module, shapes, prefix, trace, counted)
        # the block's own calls counted apart, kept with its prediction, then added to its container's
        counted.calls.append({})
        try:
            out = node.spec.container.predict(node, module, shapes, prefix, trace, counted)
        finally:
            calls = [(k, *v) for k, v in counted.calls.pop().items()]
            _add_calls(counted.calls[-1], calls)
        if out is not None:
            cut = len(prefix) + 1
            memo[key] = (out, [(e["path"][cut:], e) for e in trace[start:]], calls)
        return out
    if node.spec.rule is None:
        return None
    return node.spec.rule(ShapeContext(spec=node.spec, module=module, args=node.args, shapes=list(shapes)))


def counted_entry(
    counted: Counted,
    path: str,
    module: nn.Module,
    spec: LayerSpec,
    input_shapes: Sequence[Sequence[int]],
    output_shapes: Sequence[Sequence[int]],
) -> dict[str, Any]:
    """One predicted call's trace entry, the call counted for the memory estimate: each distinct
    (module, entry, shapes) once with its number of calls, so that the estimate works out each once.

    The entry of a call met before (the same module, entry and shapes: a block repeated 512 times, its
    own entry at each path) is that call's entry at ``path``: every other field is a function of those
    (:func:`~app.core.networks.trace.trace_entry`, with the plan's element size and the module's
    parameter count)."""
    key = (id(module), id(spec), tuple(tuple(s) for s in input_shapes), tuple(tuple(s) for s in output_shapes))
    calls = counted.calls[-1]
    kept = calls.get(key)
    if kept is None:
        calls[key] = [module, spec, [list(s) for s in input_shapes], [list(s) for s in output_shapes], 1]
    else:
        kept[4] += 1
    first = counted.entries.get(key)
    if first is None:
        first = counted.entries[key] = trace_entry(
            path,
            module,
            spec.type,
            input_shapes,
            output_shapes,
            element_size=counted.element_size,
            param_count=counted.param_counts.get(id(module)),
        )
        return first
    return {**first, "path": path, "depth": path.count(".")}


def _add_calls(calls: dict[Any, list[Any]], counted: list[tuple[Any, ...]]) -> None:
    """Add a block's counted calls ((key, module, spec, inputs, outputs, count) each) to ``calls``."""
    for key, module, spec, ins, outs, n in counted:
        kept = calls.get(key)
        if kept is None:
            calls[key] = [module, spec, ins, outs, n]
        else:
            kept[4] += n
