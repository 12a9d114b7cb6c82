"""The catalog's data types: parameter, input and layer specs, and the registry of layer types.

Each :class:`LayerSpec` says how to build one layer type from JSON (its parameters, read from the
constructor's signature and annotations), what its ``forward()`` takes, how to predict its output
shape, and a request that runs as it is. Unknown types fail here, before anything is built: a
request's ``type`` is only ever a key into this registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from app.core.catalog.memory import MemoryRule
from app.core.catalog.names import unknown_layer
from app.core.errors import UnknownLayer
from app.core.tensors import DTYPES


@dataclass
class ParamSpec:
    """One constructor argument, named exactly as torch names it.

    ``type`` is the JSON type: int, float, bool, str, ints (int or a list of ``length`` ints),
    floats, int_list, float_list, tensor (nested list of numbers), layer (a nested config).
    """

    name: str
    type: str
    default: Any = None
    required: bool = False
    nullable: bool = False
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    length: int | None = None
    doc: str = ""
    #: a list may hold null entries (an adaptive pool's output_size: null keeps that dimension)
    nullable_items: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": _jsonable_default(self.default),
            "nullable": self.nullable,
        }
        for key in ("choices", "minimum", "maximum", "length"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.exclusive_minimum:
            out["exclusive_minimum"] = True
        if self.nullable_items:
            out["nullable_items"] = True
        if self.doc:
            out["doc"] = self.doc
        if self.default is None and not self.required:
            # what torch does when the argument is left out, as its docstring says ("kernel_size"), or null
            out["default_means"] = none_means(self.doc)
        return out


# How torch's docstrings say what an argument left at None stands for; the first group is the answer.
_NONE_MEANS = [
    re.compile(r"default(?: value)? is `?([A-Za-z_][\w.]*)`?", re.I),
    re.compile(r"(?:is )?set to `?([A-Za-z_][\w.]*)`? by default", re.I),
    re.compile(r"default:?\s*`?None`?\s*\(uses `?(?:\w+=)?([A-Za-z_][\w.]*)`?\)", re.I),
    re.compile(r"otherwise,? (?:the )?(.{3,40}?) will be used", re.I),
    re.compile(r"if not specified, uses (?:the )?(.{3,60}?)(?::|\.|$)", re.I),
]


def none_means(doc: str) -> str | None:
    """ "the stride of the window. Default value is kernel_size" -> "kernel_size"; None when the docstring
    does not say."""
    for pattern in _NONE_MEANS:
        m = pattern.search(doc or "")
        if m:
            return m.group(1).strip().rstrip(".")
    return None


def jsonable(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(jsonable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _jsonable_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    return None


@dataclass
class InputSpec:
    """One ``forward()`` argument.

    ``kind`` says how a ``{"shape": ...}`` input is drawn: normal (``torch.randn``), uniform
    (``torch.rand``), index (``torch.randint(0, high, shape)``), sign (±1), binary (0/1).
    ``high`` is a parameter name or ``"input0.shape[1]"``-style reference for index inputs.
    """

    name: str
    convention: str
    kind: str = "normal"
    high: str | int | None = None
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "convention": self.convention, "kind": self.kind}
        if self.high is not None:
            out["high"] = self.high
        if self.optional:
            out["optional"] = True
        return out

    @property
    def is_integer(self) -> bool:
        return self.kind == "index"


# A shape rule predicts output dimensions from a ShapeContext (the built meta module, the validated
# arguments, the input shapes), and raises ShapeMismatch with a readable message for shapes it rejects.
ShapeRule = Callable[[Any], list[list[Any]]]

#: what each explain kind recomputes by hand (app.core.explaining.explain dispatches on it)
EXPLAIN_KINDS = ("linear", "bilinear", "conv", "transposed", "pool")

# Arguments that must agree with the incoming tensor. "last" is the input's last dimension; "channel"
# is the channel dimension, counted from the end past the spatial dimensions (dim 1 for the layers
# whose input is (N, C) or (N, C, L) alike, such as BatchNorm1d).
_FIT_LAST = ("in_features", "input_features", "in1_features", "normalized_shape", "input_size")
_FIT_CHANNEL = ("in_channels", "num_features", "num_channels")
_FIT_OUT_LAST = ("out_features", "output_features")


@dataclass
class ContainerSpec:
    """How a container holds other layers: which parameters are nested configs, and where the
    built children sit in the module tree ("" = directly under the container, by child name)."""

    #: parameter name -> module path prefix of the children it builds, e.g. {"body": "body"}
    slots: dict[str, str]
    #: a chain: the container's outputs are its last child's (Sequential)
    chain: bool = False
    #: the shape rule over the children: (node, module, shapes, path prefix, trace) -> dims or None
    predict: Callable[..., Any] | None = None
    #: validates the config itself: (registry, spec, config, field, name, resolve) -> node (Graph)
    resolve: Callable[..., Any] | None = None
    #: builds the module itself: (node, build) -> module, children built in its own order (Graph)
    build: Callable[..., Any] | None = None
    #: children are called with any of the graph's values, not one tensor each (Graph)
    dataflow: bool = False
    #: the dataflow graph this container stands for: (node, input count) -> GraphDef (Sequential,
    #: Residual: sugar over a graph, predicted by the graph's engine)
    lower: Callable[..., Any] | None = None


#: families whose output values are in the input's units: a pooled, activated, dropped, padded or
#: rearranged element is an input value (or a simple function of one), so the page colours input
#: and output on one scale by default
SAME_UNITS_FAMILIES = frozenset({"pool", "activation", "dropout", "padding", "shape"})


@dataclass
class LayerSpec:
    type: str
    family: str
    factory: Callable[..., nn.Module]
    params: list[ParamSpec]
    inputs: list[InputSpec]
    example: dict[str, Any]
    doc: str = ""
    outputs: list[str] = field(default_factory=lambda: ["output"])
    rule: ShapeRule | None = None
    explain: str | None = None  # one of EXPLAIN_KINDS
    source: str = "torch"  # torch, custom, plugin, container
    #: set for layers that nest other layer configs (Sequential, Residual)
    container: ContainerSpec | None = None
    #: spatial dimensions of the input (Conv2d -> 2); None where the layer has none
    spatial_rank: int | None = None
    #: the channel dimension of the input when it is fixed from the front (BatchNorm1d: 1)
    channel_dim: int | None = None
    #: Python source a reproduction script needs before it can build this type (class definitions)
    code_prelude: str = ""
    #: how a script names the constructor, e.g. "torch.nn.Linear" or "BasicLinear"
    code_name: str = ""
    #: how a script passes the inputs when forward() groups them, e.g. "{0}, ({1}, {2})" for LSTM
    code_call: dict[int, str] = field(default_factory=dict)
    #: whether the output's values are in the input's units; None: as the family says
    #: (SAME_UNITS_FAMILIES); set where a layer differs from its family (Softmax's probabilities)
    units_as_input: bool | None = None

    @property
    def same_units(self) -> bool:
        """Whether input and output values share units, so one colour scale compares them."""
        return self.units_as_input if self.units_as_input is not None else self.family in SAME_UNITS_FAMILIES

    #: working memory of one call beyond its tensors (app.core.catalog.memory); None: the family default
    memory: MemoryRule | None = None

    @property
    def windows(self) -> bool:
        return self.explain in {"conv", "transposed", "pool"}

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def diagram(self) -> str:
        """The picture the client draws: the weight matrix, the bilinear form, blocks, or dimensions."""
        if self.explain in ("linear", "bilinear"):
            return self.explain
        if self.windows:
            return "blocks"
        return "generic"

    def fit_to_input(self) -> list[dict[str, Any]]:
        """Parameters that follow the input's shape: [{param, dim}] (dim < 0 counts from the end)."""
        names = {p.name: p for p in self.params}
        out: list[dict[str, Any]] = []
        for name in _FIT_LAST:
            if name in names:
                out.append({"param": name, "dim": -1, "as": "list" if names[name].type == "int_list" else "int"})
        channel = self.channel_dim
        if channel is None and self.spatial_rank is not None:
            channel = -(self.spatial_rank + 1)
        if channel is not None:
            out += [{"param": n, "dim": channel, "as": "int"} for n in _FIT_CHANNEL if n in names]
        return out

    def fit_to_output(self) -> list[dict[str, Any]]:
        """Parameters that set the output's shape: [{param, dim}]."""
        names = {p.name for p in self.params}
        out = [{"param": n, "dim": -1, "as": "int"} for n in _FIT_OUT_LAST if n in names]
        if "out_channels" in names and self.spatial_rank is not None:
            out.append({"param": "out_channels", "dim": -(self.spatial_rank + 1), "as": "int"})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "family": self.family,
            "doc": self.doc,
            "source": self.source,
            "params": [p.to_dict() for p in self.params],
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": list(self.outputs),
            "explainable": self.explain is not None,
            "explain": self.explain,
            "windows": self.windows,
            "container": self.container is not None,
            "slots": dict(self.container.slots) if self.container else None,
            "chain": bool(self.container and self.container.chain),
            # a dataflow graph: its nodes are named layers, operations and parameters, not a list of layers
            "dataflow": bool(self.container and self.container.dataflow),
            # stands in for a layer the server does not run (layer_explorer's opaque node): drawn and
            # counted, its numbers "opaque: not computed", never explained or drilled into
            "opaque": self.source == "opaque",
            "spatial_rank": self.spatial_rank,
            "same_units": self.same_units,
            "dtypes": list(DTYPES),
            "diagram": self.diagram,
            "fit_to_input": self.fit_to_input(),
            "fit_to_output": self.fit_to_output(),
            "example": self.example,
        }


class Registry:
    """Layer types by name. Plain data built at import time; every process builds its own."""

    def __init__(self) -> None:
        self._specs: dict[str, LayerSpec] = {}
        #: types the catalog declares but the installed torch lacks, with the reason in words
        self._absent: dict[str, str] = {}

    def absent(self, type_name: str, reason: str) -> None:
        """Record a type this torch does not have (``LinearCrossEntropyLoss`` before torch 2.13)."""
        self._absent[type_name] = reason

    def absent_types(self) -> dict[str, str]:
        return dict(self._absent)

    def add(self, spec: LayerSpec, *, replace: bool = False) -> LayerSpec:
        if spec.type in self._specs and not replace:
            raise ValueError(f"layer type {spec.type!r} is already registered")
        self._specs[spec.type] = spec
        return spec

    def get(self, type_name: Any, *, field: str = "layer.type") -> LayerSpec:
        if not isinstance(type_name, str) or not type_name:
            raise UnknownLayer("'type' must name a layer, e.g. \"Linear\"", field=field)
        spec = self._specs.get(type_name)
        if spec is None:
            raise unknown_layer(type_name, self._specs, self._absent, field=field)
        return spec

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def families(self) -> list[str]:
        seen: dict[str, None] = {}
        for spec in self._specs.values():
            seen.setdefault(spec.family, None)
        return list(seen)
