"""A model pasted as PyTorch code, turned into the JSON config ``/api/run`` takes — without running it.

The code is parsed with :mod:`ast` and only *read*: nothing in it is imported, evaluated, executed or
looked up outside the catalog. A small interpreter walks the syntax tree over plain values (numbers,
strings, lists, layer configs) and symbolic tensors, so that what people write is understood:

- ``class Net(nn.Module)`` definitions (one using another): ``__init__`` builds the layers
  (``self.x = nn.Conv2d(...)``, ``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``,
  ``nn.Parameter(torch.randn(...))``), with constructor arguments and their defaults, module-level
  constants, arithmetic, comprehensions and loops over known ranges and lists;
- ``forward`` is traced into a ``Graph`` config (see docs/API.md): every layer call becomes a module
  node named by its module path, every tensor operation (``F.relu``, ``torch.cat``, ``.view``,
  ``x + y``, ``x[:, 0]``, ...) an op node; loops over a ModuleList or a range are unrolled and an
  ``if`` is decided on values known at import (constructor flags, ``self.downsample is not None``);
- helper functions (``def make_layers(cfg): ... return nn.Sequential(*layers)``) called with known
  arguments;
- the instantiation line (``model = Net(10, 20)``) or the ``entry`` field picks the model;
- a single constructor expression (``nn.Sequential(...)``) and the printout of a model
  (``print(model)``), as before.

Import lines, ``print(...)``, ``.to(device)``, ``.cuda()``, ``if __name__ == "__main__":``, seeding,
weight initialisation and positional ``inplace`` flags are skipped with a warning. Anything else is an
:class:`InvalidArgument` naming the construct, its line and its column. The work is bounded in code
size, nesting depth, unrolled iterations, graph nodes, call depth and time. This module needs no torch:
it reads the catalog (names, parameter lists) from the registry it is given.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.core.errors import InvalidArgument, TooLarge

if TYPE_CHECKING:
    from app.core.catalog.spec import LayerSpec, Registry

# the file name ast reports; on a syntax error CPython tries to read this "file" for the line's text
PASTE_NAME = "<pasted code>"
MAX_CODE_CHARS = 40_000
MAX_NODES = 20_000
MAX_DEPTH = 40
MAX_INT = 2**63  # |value| < MAX_INT for every folded integer
MAX_POW_EXPONENT = 64
MAX_ITERATIONS = 20_000  # loop iterations and comprehension items, all unrolled together
MAX_GRAPH_NODES = 5_000  # graph nodes and layers made, all graphs together
MAX_CALL_DEPTH = 32
MAX_SEQUENCE = 10_000  # the longest list or string the code may build
MAX_SECONDS = 3.0
_PLACEMENT = {"self", "device", "dtype", "factory_kwargs"}
# arguments that change how torch stores a result, not the result: dropped (with a warning) when the catalog
# does not offer them, because printouts are full of ReLU(inplace=True)
_DROPPABLE = {"inplace"}
# layers without learnable tensors: calling one twice in forward is two nodes of the same config
_STATELESS_FAMILIES = {"activation", "dropout", "padding", "pool", "shape"}
_STATEFUL_TYPES = {"PReLU"}
# default names the code may use without importing them (its import lines are read, never run)
_DEFAULT_ALIASES = {
    "torch": "torch",
    "nn": "torch.nn",
    "F": "torch.nn.functional",
    "functional": "torch.nn.functional",
    "init": "torch.nn.init",
    "collections": "collections",
    "OrderedDict": "collections.OrderedDict",
    "math": "math",
    "np": "numpy",
}


@dataclass
class Imported:
    """The config, and where in the code each config field came from (for errors found later)."""

    layer: dict[str, Any]
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: the input shapes the code itself feeds the model (``x = torch.randn(1, 3, 32, 32); model(x)``)
    inputs: list[dict[str, Any]] | None = None


class _Refused(InvalidArgument):
    pass


def _where(node: ast.AST) -> tuple[int, int]:
    # ast columns are 0-based UTF-8 byte offsets; people count from 1
    return getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1


def _refuse(node: ast.AST, message: str) -> _Refused:
    line, col = _where(node)
    return _Refused(f"line {line}, column {col}: {message}", field="code", line=line, column=col)


_CONSTRUCTS = {
    ast.While: "a `while` loop",
    ast.Try: "a `try` block",
    ast.With: "a `with` block",
    ast.AsyncWith: "an `async with` block",
    ast.AsyncFor: "an `async for` loop",
    ast.AsyncFunctionDef: "an `async def`",
    ast.Raise: "a `raise` statement",
    ast.Global: "a `global` statement",
    ast.Nonlocal: "a `nonlocal` statement",
    ast.Delete: "a `del` statement",
    ast.Lambda: "a lambda",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
    ast.Set: "a set",
    ast.SetComp: "a set comprehension",
    ast.Starred: "unpacking (*)",
    ast.Match: "a `match` statement",
}


def _construct(node: ast.AST) -> str:
    if hasattr(ast, "TryStar") and isinstance(node, ast.TryStar):
        return "a `try` block"
    return _CONSTRUCTS.get(type(node), f"a {type(node).__name__} construct")


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` as text, or None when the chain does not start with a plain name."""
    chain = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    chain.append(node.id)
    return ".".join(reversed(chain))


# ---------------------------------------------------------------------------------------------
# print(model) output -> constructor code (text only; the result goes through the same checks)
# ---------------------------------------------------------------------------------------------

_REPR_CHILD = re.compile(r"^(\s*)\(([A-Za-z0-9_]+)\):\s*(.*)$")
_REPR_REPEAT = re.compile(r"^(\s*)\((\d+)-(\d+)\):\s*(\d+)\s*x\s*(.*)$")


def _printout_containers(code: str) -> list[tuple[int, str]]:
    """(line, class name) of every container in a printout that is not a Sequential."""
    out = []
    for n, raw in enumerate(code.splitlines(), start=1):
        line = raw.strip()
        m = _REPR_CHILD.match(raw)
        head = m.group(3) if m else line
        if head.endswith("(") and head[:-1] not in ("Sequential", "") and head[:-1].isidentifier():
            out.append((n, head[:-1]))
    return out


def _from_printout(code: str) -> str:
    """``Sequential(\\n  (0): Conv2d(...)\\n)`` as ``Sequential(OrderedDict([("0",Conv2d(...)), ...]))``.

    ``(0): `` and ``("0",`` have the same length, so every line and column still points at the paste.
    A ModuleList's ``(0-2): 3 x Linear(...)`` becomes three children on that line; a container of any
    other name (``ModuleList``, a class of the user's) is read as a Sequential of its children.
    """
    out: list[str] = []
    stack: list[bool] = []  # per open container: has it had a child yet?
    for raw in code.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        rep = _REPR_REPEAT.match(line)
        m = _REPR_CHILD.match(line)
        if rep or m:
            if stack and stack[-1]:
                out[-1] += ","
            if stack:
                stack[-1] = True
        if rep:
            indent, first, last, _count, rest = rep.groups()
            names = range(int(first), min(int(last), int(first) + MAX_SEQUENCE) + 1)
            if rest.endswith("("):
                raise InvalidArgument(
                    f"a repeated container in the printout ({stripped[:40]}...) cannot be read; paste the model's code",
                    field="code",
                )
            out.append(indent + ",".join(f'("{n}",{rest})' for n in names))
        elif m:
            indent, name, rest = m.groups()
            if rest.endswith("("):  # a nested container opens
                out.append(f'{indent}("{name}",Sequential(OrderedDict([')
                stack.append(False)
            else:
                out.append(f'{indent}("{name}",{rest})')
        elif stripped == ")" and stack:
            stack.pop()
            out.append(line.replace(")", "]))" + ("" if not stack else ")")))
        elif stripped.endswith("(") and not stack:
            out.append(f"{line[: len(line) - len(line.lstrip())]}Sequential(OrderedDict([")
            stack.append(False)
        else:
            out.append(line)
    return "\n".join(out)


def _looks_like_printout(code: str) -> bool:
    return any(_REPR_CHILD.match(line) or _REPR_REPEAT.match(line) for line in code.splitlines())


# ---------------------------------------------------------------------------------------------
# the values the interpreter works with
# ---------------------------------------------------------------------------------------------


class _Value:
    """Base of the interpreter's own values (anything else is a plain Python literal)."""


class _Module(_Value):
    """A module built by the code: a catalog layer, a container, or an instance of a user's class."""

    pos: tuple[int, int] = (1, 1)
    path: str = ""

    def has_state(self, registry: Registry) -> bool:
        return True


class _Layer(_Module):
    def __init__(self, type_name: str, args: dict[str, Any], positions: dict[str, tuple[int, int]], pos) -> None:
        self.type = type_name
        self.args = args
        self.positions = positions
        self.pos = pos

    def has_state(self, registry: Registry) -> bool:
        spec = registry.get(self.type)
        return bool(self.type in _STATEFUL_TYPES or spec.family not in _STATELESS_FAMILIES)


class _Sequential(_Module):
    def __init__(self, children: list[tuple[str | None, _Module]], pos) -> None:
        self.children = children
        self.pos = pos

    def has_state(self, registry: Registry) -> bool:
        return any(c.has_state(registry) for _, c in self.children)


class _ModuleList(_Value):
    def __init__(self, items: list[Any], pos) -> None:
        self.items = items
        self.pos = pos


class _ModuleDict(_Value):
    def __init__(self, items: dict[str, Any], pos) -> None:
        self.items = items
        self.pos = pos


class _Init(_Value):
    """``torch.randn(2, 3)`` and its kin outside forward: a shape and how it is drawn."""

    def __init__(self, shape: list[int], init: str) -> None:
        self.shape = shape
        self.init = init


class _Parameter(_Value):
    def __init__(self, shape: list[int], init: str, pos) -> None:
        self.shape = shape
        self.init = init
        self.pos = pos
        self.path = ""


class _Class(_Value):
    def __init__(self, node: ast.ClassDef, bases: list[_Class]) -> None:
        self.node = node
        self.name = node.name
        self.bases = bases
        self.methods = {s.name: s for s in node.body if isinstance(s, ast.FunctionDef)}
        self.attrs: dict[str, Any] = {}

    def attribute(self, name: str) -> Any:
        if name in self.attrs:
            return self.attrs[name]
        for base in self.bases:
            found = base.attribute(name)
            if found is not _NONE:
                return found
        return _NONE

    def method(self, name: str) -> ast.FunctionDef | None:
        if name in self.methods:
            return self.methods[name]
        for base in self.bases:
            found = base.method(name)
            if found is not None:
                return found
        return None


class _Instance(_Module):
    def __init__(self, cls: _Class, pos) -> None:
        self.cls = cls
        self.attrs: dict[str, Any] = {}
        self.pos = pos
        self.graph: dict[str, Any] | None = None

    def has_state(self, registry: Registry) -> bool:
        return any(
            isinstance(v, _Parameter) or (isinstance(v, _Module) and v.has_state(registry))
            for v in _owned(self.attrs.values())
        )


def _owned(values: Any) -> list[Any]:
    out = []
    for v in values:
        if isinstance(v, _ModuleList):
            out.extend(_owned(v.items))
        elif isinstance(v, _ModuleDict):
            out.extend(_owned(v.items.values()))
        else:
            out.append(v)
    return out


class _Function(_Value):
    def __init__(self, node: ast.FunctionDef, bound: _Instance | None = None) -> None:
        self.node = node
        self.bound = bound


class _Builtin(_Value):
    def __init__(self, name: str) -> None:
        self.name = name


class _Qualified(_Value):
    """A name outside the code (``torch.nn``, ``F.relu``, ``torch.float32``): only its dotted name."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Tensor(_Value):
    """A tensor inside forward: the name of the graph node (or input) that makes it."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Size(_Value):
    """``x.shape`` / ``x.size()``: its entries become ``size`` nodes when they are used."""

    def __init__(self, tensor: _Tensor) -> None:
        self.tensor = tensor


class _Device(_Value):
    pass


class _Skipped(_Value):
    """What a skipped statement left behind (``device = torch.device(...)``); using it is harmless."""


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NONE = object()
_BUILTINS = {
    "range",
    "len",
    "enumerate",
    "zip",
    "list",
    "tuple",
    "int",
    "float",
    "min",
    "max",
    "abs",
    "sum",
    "reversed",
    "dict",
    "isinstance",
    "super",
    "print",
    "round",
    "bool",
    "str",
}
_SKIPPED_CALLS = {
    "torch.manual_seed": "seeding (the explorer seeds every run itself)",
    "torch.cuda.manual_seed": "seeding (the explorer seeds every run itself)",
    "torch.cuda.manual_seed_all": "seeding (the explorer seeds every run itself)",
    "torch.set_grad_enabled": "a gradient switch",
}
_MODULE_WALKS = ("modules", "named_modules", "parameters", "named_parameters", "children")
_MODULE_METHODS_SKIPPED = {"to", "cuda", "cpu", "eval", "train", "float", "requires_grad_", "share_memory"}


# ---------------------------------------------------------------------------------------------
# tensor operations: torch's spelling -> the graph's op table
# ---------------------------------------------------------------------------------------------

# name -> (graph op, torch's parameter names after the tensor(s), number of leading tensor arguments)
_ACTIVATIONS = {
    "relu": (),
    "relu6": (),
    "elu": ("alpha",),
    "selu": (),
    "celu": ("alpha",),
    "gelu": ("approximate",),
    "silu": (),
    "mish": (),
    "sigmoid": (),
    "tanh": (),
    "hardswish": (),
    "hardsigmoid": (),
    "hardtanh": ("min_val", "max_val"),
    "leaky_relu": ("negative_slope",),
    "softplus": ("beta", "threshold"),
}
_OP_SIGNATURES: dict[str, tuple[str, tuple[str, ...], int]] = {
    **{name: (name, params, 1) for name, params in _ACTIVATIONS.items()},
    "softmax": ("softmax", ("dim",), 1),
    "log_softmax": ("log_softmax", ("dim",), 1),
    "max_pool1d": ("max_pool1d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode"), 1),
    "max_pool2d": ("max_pool2d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode"), 1),
    "avg_pool1d": ("avg_pool1d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"), 1),
    "avg_pool2d": ("avg_pool2d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"), 1),
    "adaptive_avg_pool1d": ("adaptive_avg_pool1d", ("output_size",), 1),
    "adaptive_avg_pool2d": ("adaptive_avg_pool2d", ("output_size",), 1),
    "adaptive_max_pool1d": ("adaptive_max_pool1d", ("output_size",), 1),
    "adaptive_max_pool2d": ("adaptive_max_pool2d", ("output_size",), 1),
    "dropout": ("dropout", ("p",), 1),
    "pad": ("pad", ("pad", "mode", "value"), 1),
    "interpolate": ("interpolate", ("size", "scale_factor", "mode", "align_corners"), 1),
    "upsample": ("interpolate", ("size", "scale_factor", "mode", "align_corners"), 1),
    "flatten": ("flatten", ("start_dim", "end_dim"), 1),
    "reshape": ("reshape", ("shape",), 1),
    "permute": ("permute", ("dims",), 1),
    "transpose": ("transpose", ("dim0", "dim1"), 1),
    "swapaxes": ("transpose", ("dim0", "dim1"), 1),
    "unsqueeze": ("unsqueeze", ("dim",), 1),
    "squeeze": ("squeeze", ("dim",), 1),
    "contiguous": ("contiguous", (), 1),
    "chunk": ("chunk", ("chunks", "dim"), 1),
    "split": ("split", ("split_size_or_sections", "dim"), 1),
    "mean": ("mean", ("dim", "keepdim"), 1),
    "sum": ("sum", ("dim", "keepdim"), 1),
    "amax": ("amax", ("dim", "keepdim"), 1),
    "add": ("add", ("other", "alpha"), 1),
    "sub": ("sub", ("other", "alpha"), 1),
    "mul": ("mul", ("other",), 1),
    "div": ("div", ("other",), 1),
    "neg": ("neg", (), 1),
    "matmul": ("matmul", ("other",), 1),
    "mm": ("matmul", ("other",), 1),
    "bmm": ("bmm", ("mat2",), 1),
    "cat": ("cat", ("dim",), 1),
    "concat": ("cat", ("dim",), 1),
    "concatenate": ("cat", ("dim",), 1),
    "stack": ("stack", ("dim",), 1),
}
# keyword spellings torch accepts beside the names above
_KEYWORD_ALIASES = {"axis": "dim", "input": None, "inplace": "", "training": "", "dtype": ""}
# tensor arguments among the parameters (a second tensor for arithmetic)
_TENSOR_PARAMS = {"other", "mat2"}
# methods whose parameters are spread (x.view(2, 3), x.permute(0, 2, 1), x.expand(b, -1, -1))
_SPREAD = {"view": ("view", "shape"), "reshape": ("reshape", "shape"), "permute": ("permute", "dims")}
_SPREAD["expand"] = ("expand", "size")
_INPLACE_METHODS = {"relu_": "relu", "add_": "add", "mul_": "mul", "sigmoid_": "sigmoid", "tanh_": "tanh"}
_MATH = {"sqrt": math.sqrt, "ceil": math.ceil, "floor": math.floor, "log2": math.log2, "gcd": math.gcd}
_FACTORIES = {"randn": "randn", "zeros": "zeros", "ones": "ones", "rand": "rand", "empty": "zeros"}


# ---------------------------------------------------------------------------------------------
# the graph a forward is traced into
# ---------------------------------------------------------------------------------------------


class _Graph:
    def __init__(self, interp: _Interpreter, inputs: list[str]) -> None:
        self.interp = interp
        self.inputs = inputs
        self.nodes: list[dict[str, Any]] = []
        self.values: list[Any] = []  # per node: the module or parameter it holds (None for ops)
        self.names = set(inputs)
        self.called: dict[int, str] = {}  # id(module) -> node name

    def unique(self, base: str) -> str:
        base = re.sub(r"\W", "_", base) or "node"
        if base[0].isdigit():
            base = "m" + base
        name, k = base, 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    def add(self, node: dict[str, Any], value: Any = None) -> _Tensor:
        self.interp.count(node_ast=None)
        self.nodes.append(node)
        self.values.append(value)
        return _Tensor(node["name"])

    def op(self, op: str, args: list[Any], kwargs: dict[str, Any] | None = None, hint: str = "") -> _Tensor:
        node: dict[str, Any] = {"name": self.unique(hint or op), "op": op, "args": args}
        if kwargs:
            node["kwargs"] = kwargs
        return self.add(node)


# ---------------------------------------------------------------------------------------------
# the interpreter
# ---------------------------------------------------------------------------------------------


class _Interpreter:
    def __init__(self, registry: Registry, *, printout: bool = False) -> None:
        self.registry = registry
        self.printout = printout
        self.warnings: list[str] = []
        self.globals: dict[str, Any] = {}
        self.aliases = dict(_DEFAULT_ALIASES)
        self.iterations = 0
        self.made = 0
        self.depth = 0
        self.deadline = time.monotonic() + MAX_SECONDS
        self.graph: _Graph | None = None  # the forward being traced, if any
        self.model: Any = None
        self.model_node: ast.AST | None = None
        self.inputs: list[dict[str, Any]] | None = None
        self.positions: dict[str, tuple[int, int]] = {}

    # --- bounds ------------------------------------------------------------------------------

    def count(self, node_ast: ast.AST | None) -> None:
        self.made += 1
        if self.made > MAX_GRAPH_NODES:
            raise TooLarge(f"the model has more than {MAX_GRAPH_NODES} layers and operations", field="code")

    def tick(self, node: ast.AST) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise _refuse(node, f"the loops run more than {MAX_ITERATIONS} iterations in all")
        if time.monotonic() > self.deadline:
            raise TooLarge(f"reading the code took longer than {MAX_SECONDS:g} s", field="code")

    def warn(self, node: ast.AST, message: str) -> None:
        line, col = _where(node)
        text = f"line {line}, column {col}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    # --- module level ------------------------------------------------------------------------

    def run_module(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.read_import(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.define_class(stmt, self.globals)
            elif isinstance(stmt, ast.FunctionDef):
                self.globals[stmt.name] = _Function(stmt)
            elif isinstance(stmt, ast.If) and _is_main_guard(stmt.test):
                self.warn(stmt, 'the `if __name__ == "__main__":` block is skipped (it is not run)')
            else:
                self.top_statement(stmt)

    def read_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        """Import lines are read as text for the names they bind, never run."""
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    self.aliases[root] = root
        else:
            module = stmt.module or ""
            for a in stmt.names:
                if a.name == "*":
                    continue
                self.aliases[a.asname or a.name] = f"{module}.{a.name}"
        self.warn(stmt, "import lines are skipped (they are read, not run)")

    def top_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return  # a docstring
            if self.skipped_call(value):
                return
            result = self.eval(value, self.globals)
            if isinstance(result, (_Module, _Class)):
                self.choose(result, value)
            return
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            if self.skipped_call(stmt.value):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        self.globals[t.id] = _Skipped()
                return
            value = self.eval(stmt.value, self.globals)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                self.assign(t, value, self.globals)
            if isinstance(value, _Module):
                self.choose(value, stmt.value)
            return
        self.statement(stmt, self.globals)

    def choose(self, value: Any, node: ast.AST) -> None:
        if isinstance(value, _Class):
            return
        self.model = value
        self.model_node = node

    def skipped_call(self, node: ast.expr) -> bool:
        """Statements that only print, move, seed or call the model: skipped with a warning."""
        if not isinstance(node, ast.Call):
            return False
        name = _dotted(node.func)
        if name == "print" or (name and name.split(".")[-1] == "summary"):
            self.warn(node, f"`{name}(...)` is skipped (nothing is printed or run)")
            return True
        qualified = self.qualify(name) if name else None
        if qualified in _SKIPPED_CALLS:
            self.warn(node, f"`{name}(...)` is skipped: {_SKIPPED_CALLS[qualified]}")
            return True
        if qualified == "torch.device":
            self.warn(node, f"`{name}(...)` is skipped: the explorer chooses the device")
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr in _MODULE_METHODS_SKIPPED:
            return False  # evaluated: model.to(device) is the model
        if isinstance(node.func, ast.Name) and isinstance(self.globals.get(node.func.id), _Module):
            # model(x): the explorer runs it; the shapes given are the suggested inputs
            shapes = []
            for a in node.args:
                v = self.eval(a, self.globals)
                if isinstance(v, _Init):
                    shapes.append({"shape": v.shape})
            if shapes and len(shapes) == len(node.args):
                self.inputs = shapes
            self.warn(node, f"calling `{node.func.id}` is skipped (the explorer runs it)")
            return True
        return False

    def define_class(self, stmt: ast.ClassDef, env: dict[str, Any]) -> None:
        bases: list[_Class] = []
        for b in stmt.bases:
            name = _dotted(b)
            if name and self.qualify(name) == "torch.nn.Module":
                continue
            base = env.get(name or "", self.globals.get(name or ""))
            if isinstance(base, _Class):
                bases.append(base)
                continue
            raise _refuse(b, f"a class must derive from nn.Module or a class defined above it, not `{name or '?'}`")
        if stmt.decorator_list:
            raise _refuse(stmt.decorator_list[0], "a class decorator")
        cls = _Class(stmt, bases)
        for item in stmt.body:
            if isinstance(item, ast.Assign) and all(isinstance(t, ast.Name) for t in item.targets):
                value = self.eval(item.value, env)
                for t in item.targets:
                    cls.attrs[t.id] = value  # type: ignore[attr-defined]
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None:
                cls.attrs[item.target.id] = self.eval(item.value, env)
            elif not isinstance(item, (ast.FunctionDef, ast.Pass, ast.AnnAssign)) and not (
                isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant)
            ):
                raise _refuse(item, f"{_construct(item)} in a class body")
        env[stmt.name] = cls

    # --- names ---------------------------------------------------------------------------------

    def qualify(self, dotted: str) -> str:
        root, _, rest = dotted.partition(".")
        base = self.aliases.get(root, root)
        return f"{base}.{rest}" if rest else base

    def lookup(self, node: ast.Name, env: dict[str, Any]) -> Any:
        name = node.id
        if name in env:
            return env[name]
        if name in self.globals:
            return self.globals[name]
        if name in _BUILTINS:
            return _Builtin(name)
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        if name in self.aliases:
            return _Qualified(self.aliases[name])
        if name in self.registry:
            return _Qualified(f"torch.nn.{name}")
        if name in ("OrderedDict", "ModuleList", "ModuleDict", "Sequential"):
            return _Qualified(f"torch.nn.{name}" if name != "OrderedDict" else "collections.OrderedDict")
        if self.printout:
            return name  # printouts write strings unquoted: padding=same
        raise _refuse(node, f"the name `{name}` is not defined in the code")

    # --- statements ----------------------------------------------------------------------------

    def block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            self.statement(stmt, env)

    def statement(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        self.tick(stmt)
        if isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant):
                return  # a docstring or a bare literal
            if self.skipped_call(stmt.value) if env is self.globals else self.skipped_inner(stmt.value):
                return
            self.eval(stmt.value, env)
        elif isinstance(stmt, ast.Assign):
            value = self.eval(stmt.value, env, hint=_hint(stmt.targets[0]))
            for t in stmt.targets:
                self.assign(t, value, env)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.assign(stmt.target, self.eval(stmt.value, env, hint=_hint(stmt.target)), env)
        elif isinstance(stmt, ast.AugAssign):
            current = self.eval(_load(stmt.target), env)
            if isinstance(current, list) and isinstance(stmt.op, ast.Add):
                current.extend(self.iterate(stmt.value, self.eval(stmt.value, env)))
                return
            other = self.eval(stmt.value, env)
            self.assign(stmt.target, self.binop(stmt, stmt.op, current, other, _hint(stmt.target)), env)
        elif isinstance(stmt, ast.If):
            if self.truth(stmt.test, self.eval(stmt.test, env)):
                self.block(stmt.body, env)
            else:
                self.block(stmt.orelse, env)
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt, env)
        elif isinstance(stmt, ast.Return):
            raise _Return(None if stmt.value is None else self.eval(stmt.value, env))
        elif isinstance(stmt, ast.Pass):
            return
        elif isinstance(stmt, ast.Break):
            raise _Break()
        elif isinstance(stmt, ast.Continue):
            raise _Continue()
        elif isinstance(stmt, ast.Assert):
            self.warn(stmt, "an `assert` is skipped")
        elif isinstance(stmt, ast.FunctionDef):
            env[stmt.name] = _Function(stmt)
        elif isinstance(stmt, ast.ClassDef):
            self.define_class(stmt, env)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self.read_import(stmt)
        else:
            raise _refuse(stmt, f"{_construct(stmt)} is not supported here")

    def skipped_inner(self, node: ast.expr) -> bool:
        """Inside a function: print, seeding and weight initialisation are skipped."""
        if not isinstance(node, ast.Call):
            return False
        name = _dotted(node.func) or ""
        qualified = self.qualify(name) if name else ""
        if name == "print":
            self.warn(node, "`print(...)` is skipped")
            return True
        if qualified.startswith("torch.nn.init.") or (
            isinstance(node.func, ast.Attribute) and node.func.attr in ("apply", "_initialize_weights", "init_weights")
        ):
            self.warn(
                node, f"`{name or node.func.attr}(...)` is skipped: the layers keep torch's default initialisation"
            )  # type: ignore[union-attr]
            return True
        if qualified in _SKIPPED_CALLS:
            self.warn(node, f"`{name}(...)` is skipped: {_SKIPPED_CALLS[qualified]}")
            return True
        return False

    def for_loop(self, stmt: ast.For, env: dict[str, Any]) -> None:
        if stmt.orelse:
            raise _refuse(stmt.orelse[0], "a `for ... else` block is not supported")
        it = stmt.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in _MODULE_WALKS:
            self.warn(stmt, f"the loop over `.{it.func.attr}()` is skipped (weights keep torch's defaults)")
            return
        items = self.iterate(stmt.iter, self.eval(stmt.iter, env))
        for item in items:
            self.tick(stmt)
            self.assign(stmt.target, item, env)
            try:
                self.block(stmt.body, env)
            except _Break:
                break
            except _Continue:
                continue

    def iterate(self, node: ast.AST, value: Any) -> list[Any]:
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, dict):
            return list(value)
        if isinstance(value, str):
            return list(value)
        if isinstance(value, _ModuleList):
            return list(value.items)
        if isinstance(value, _ModuleDict):
            return list(value.items)
        if isinstance(value, _Sequential):
            return [c for _, c in value.children]
        if isinstance(value, range):
            if len(value) > MAX_ITERATIONS:
                raise _refuse(node, f"the range has more than {MAX_ITERATIONS} items")
            return list(value)
        if isinstance(value, _Tensor):
            raise _refuse(node, "a loop over a tensor's values (only over known lists, ranges and ModuleLists)")
        raise _refuse(node, f"a loop over {_kind(value)}")

    def truth(self, node: ast.AST, value: Any) -> bool:
        if isinstance(value, (_Tensor, _Size)):
            raise _refuse(node, "an `if` on a tensor's value (only values known at import can decide)")
        if isinstance(value, (_Skipped, _Device)):
            raise _refuse(node, "an `if` on something this importer skipped")
        if isinstance(value, _Value):
            return True
        return bool(value)

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = self.unpack(target, value, len(target.elts))
            for t, v in zip(target.elts, items, strict=True):
                if not (isinstance(t, ast.Name) and t.id == "_" and isinstance(v, _Lazy)):
                    self.assign(t, v.get() if isinstance(v, _Lazy) else v, env)
        elif isinstance(target, ast.Attribute):
            obj = self.eval(target.value, env)
            if isinstance(obj, _Instance):
                if self.graph is not None and isinstance(value, (_Module, _ModuleList, _ModuleDict, _Parameter)):
                    raise _refuse(target, "a layer or parameter made inside forward")
                _register(obj, target.attr, value)
                return
            raise _refuse(target, f"setting an attribute of {_kind(obj)}")
        elif isinstance(target, ast.Subscript):
            obj = self.eval(target.value, env)
            key = self.eval(target.slice, env)
            if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
                try:
                    obj[key] = value
                except IndexError:
                    raise _refuse(target, "the index is out of range") from None
            elif isinstance(obj, dict) and isinstance(key, (str, int)):
                obj[key] = value
            else:
                raise _refuse(target, f"item assignment on {_kind(obj)}")
        else:
            raise _refuse(target, f"assignment to {_construct(target)}")

    def unpack(self, target: ast.AST, value: Any, n: int) -> list[Any]:
        if isinstance(value, _Tensor):
            graph = self.need_graph(target)
            names = [_hint(e) for e in getattr(target, "elts", [])] or [""] * n
            return [_Lazy(graph, value, i, names[i] or f"{value.name}_{i}") for i in range(n)]
        if isinstance(value, _Size):
            return [self.size_of(target, value.tensor, i, _hint(e)) for i, e in enumerate(target.elts)]  # type: ignore[attr-defined]
        items = self.iterate(target, value)
        if len(items) != n:
            raise _refuse(target, f"cannot unpack {len(items)} values into {n} names")
        return items

    # --- expressions ---------------------------------------------------------------------------

    def eval(self, node: ast.expr, env: dict[str, Any], hint: str = "") -> Any:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None:
                return v
            if isinstance(v, int):
                return self.bounded(node, v)
            if isinstance(v, float):
                return v
            if isinstance(v, str):
                if len(v) > MAX_SEQUENCE:
                    raise _refuse(node, "the string is too long")
                return v
            raise _refuse(node, f"a {type(v).__name__} literal")
        if isinstance(node, ast.Name):
            return self.lookup(node, env)
        if isinstance(node, (ast.Tuple, ast.List)):
            items: list[Any] = []
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    items.extend(self.iterate(e, self.eval(e.value, env)))
                else:
                    items.append(self.eval(e, env))
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values, strict=True):
                if k is None:
                    inner = self.eval(v, env)
                    if not isinstance(inner, dict):
                        raise _refuse(v, "unpacking (**) of something that is not a dict")
                    out.update(inner)
                else:
                    key = self.eval(k, env)
                    if not isinstance(key, (str, int, float, bool)) and key is not None:
                        raise _refuse(k, "a dict key must be a string or a number")
                    out[key] = self.eval(v, env)
            return out
        if isinstance(node, ast.UnaryOp):
            v = self.eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                return not self.truth(node, v)
            if isinstance(v, _Tensor):
                if isinstance(node.op, ast.USub):
                    return self.need_graph(node).op("neg", [v.name], hint=hint)
                if isinstance(node.op, ast.UAdd):
                    return v
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _refuse(node, "a sign applies only to a number")
            if isinstance(node.op, ast.USub):
                return -v
            if isinstance(node.op, ast.UAdd):
                return v
            raise _refuse(node, "the operator ~")
        if isinstance(node, ast.BinOp):
            return self.binop(node, node.op, self.eval(node.left, env), self.eval(node.right, env), hint)
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for v in node.values:
                result = self.eval(v, env)
                t = self.truth(v, result)
                if isinstance(node.op, ast.And) and not t:
                    return result
                if isinstance(node.op, ast.Or) and t:
                    return result
            return result
        if isinstance(node, ast.Compare):
            return self.compare(node, env)
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.truth(node.test, self.eval(node.test, env)) else node.orelse, env, hint)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, env)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, env, hint)
        if isinstance(node, ast.Call):
            return self.call(node, env, hint)
        if isinstance(node, (ast.ListComp, ast.DictComp)):
            return self.comprehension(node, env)
        if isinstance(node, ast.Slice):
            bounds = [None if p is None else self.eval(p, env) for p in (node.lower, node.upper, node.step)]
            if not all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds):
                raise _refuse(node, "a slice of a list takes integers")
            if bounds[2] == 0:
                raise _refuse(node, "a slice step cannot be zero")
            return slice(*bounds)
        raise _refuse(node, f"{_construct(node)} is not supported here")

    def bounded(self, node: ast.AST, v: int) -> int:
        if abs(v) >= MAX_INT:
            raise _refuse(node, "the integer is too large (|value| must be below 2**63)")
        return v

    def comprehension(self, node: ast.ListComp | ast.DictComp, env: dict[str, Any]) -> Any:
        scope = dict(env)
        results: list[Any] = []
        pairs: dict[Any, Any] = {}

        def loop(k: int) -> None:
            if k == len(node.generators):
                self.tick(node)
                if isinstance(node, ast.DictComp):
                    pairs[self.eval(node.key, scope)] = self.eval(node.value, scope)
                else:
                    results.append(self.eval(node.elt, scope))
                return
            gen = node.generators[k]
            if gen.is_async:
                raise _refuse(gen.target, "an async comprehension")
            for item in self.iterate(gen.iter, self.eval(gen.iter, scope)):
                self.assign(gen.target, item, scope)
                if all(self.truth(c, self.eval(c, scope)) for c in gen.ifs):
                    loop(k + 1)

        loop(0)
        return pairs if isinstance(node, ast.DictComp) else results

    def compare(self, node: ast.Compare, env: dict[str, Any]) -> bool:
        left = self.eval(node.left, env)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node, env)
            if isinstance(op, (ast.Is, ast.IsNot)):
                same = left is right or (left is None and right is None)
                ok = same if isinstance(op, ast.Is) else not same
            else:
                for v in (left, right):
                    if isinstance(v, (_Tensor, _Size)):
                        raise _refuse(node, "a comparison of tensor values (only values known at import)")
                    if isinstance(v, _Value):
                        raise _refuse(node, f"a comparison with {_kind(v)}")
                try:
                    ok = {
                        ast.Eq: lambda a, b: a == b,
                        ast.NotEq: lambda a, b: a != b,
                        ast.Lt: lambda a, b: a < b,
                        ast.LtE: lambda a, b: a <= b,
                        ast.Gt: lambda a, b: a > b,
                        ast.GtE: lambda a, b: a >= b,
                        ast.In: lambda a, b: a in b,
                        ast.NotIn: lambda a, b: a not in b,
                    }[type(op)](left, right)
                except TypeError:
                    raise _refuse(node, f"cannot compare {_kind(left)} with {_kind(right)}") from None
            if not ok:
                return False
            left = right
        return True

    def binop(self, node: ast.AST, op: ast.operator, a: Any, b: Any, hint: str = "") -> Any:
        if isinstance(a, _Tensor) or isinstance(b, _Tensor):
            return self.tensor_arith(node, op, a, b, hint)
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)) or isinstance(a, str) or isinstance(b, str):
            return self.sequence_arith(node, op, a, b)
        for v in (a, b):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                if isinstance(v, _Size):
                    raise _refuse(node, "arithmetic on a tensor's size (use x.view(x.size(0), -1) or x.flatten(1))")
                raise _refuse(node, f"arithmetic on {_kind(v)}")
        if isinstance(op, ast.Pow):
            if isinstance(a, int) and isinstance(b, int):
                if not 0 <= b <= MAX_POW_EXPONENT:
                    raise _refuse(node, f"an exponent must be between 0 and {MAX_POW_EXPONENT}")
                # the rule is the value's (|value| < 2**63, as for any integer); this only spares computing a
                # power that is certainly past it: |a| >= 2**(bits - 1), so |a**b| >= 2**((bits - 1) * b)
                if (abs(a).bit_length() - 1) * b >= 63:
                    raise _refuse(node, "the integer is too large (|value| must be below 2**63)")
                return self.bounded(node, a**b)
            try:
                return float(a) ** float(b)
            except (OverflowError, ZeroDivisionError):
                raise _refuse(node, "the power is out of range") from None
        if isinstance(op, (ast.FloorDiv, ast.Mod, ast.Div)) and b == 0:
            raise _refuse(node, "division by zero")
        ints = isinstance(a, int) and isinstance(b, int)
        if isinstance(op, (ast.LShift, ast.RShift, ast.BitAnd, ast.BitOr, ast.BitXor)):
            if not ints:
                raise _refuse(node, "a bit operation on a float")
            if isinstance(op, (ast.LShift, ast.RShift)) and not 0 <= b < 64:
                raise _refuse(node, "a shift must be between 0 and 63")
        ops = {
            ast.Add: lambda: a + b,
            ast.Sub: lambda: a - b,
            ast.Mult: lambda: a * b,
            ast.Div: lambda: a / b,
            ast.FloorDiv: lambda: a // b,
            ast.Mod: lambda: a % b,
            ast.LShift: lambda: a << b,
            ast.RShift: lambda: a >> b,
            ast.BitAnd: lambda: a & b,
            ast.BitOr: lambda: a | b,
            ast.BitXor: lambda: a ^ b,
        }
        if type(op) not in ops:
            raise _refuse(node, f"the operator {type(op).__name__} on numbers")
        result = ops[type(op)]()
        if isinstance(result, int):
            return self.bounded(node, result)
        return result

    def sequence_arith(self, node: ast.AST, op: ast.operator, a: Any, b: Any) -> Any:
        if isinstance(op, ast.Add) and type(a) is type(b) and isinstance(a, (list, tuple, str)):
            if len(a) + len(b) > MAX_SEQUENCE:
                raise _refuse(node, f"the sequence is longer than {MAX_SEQUENCE}")
            return a + b
        if isinstance(op, ast.Mult):
            seq, n = (a, b) if isinstance(a, (list, tuple, str)) else (b, a)
            if isinstance(n, int) and not isinstance(n, bool) and isinstance(seq, (list, tuple, str)):
                if len(seq) * max(n, 0) > MAX_SEQUENCE:
                    raise _refuse(node, f"the sequence is longer than {MAX_SEQUENCE}")
                return seq * n
        if isinstance(op, ast.Mod) and isinstance(a, str):
            raise _refuse(node, "string formatting with %")
        raise _refuse(node, f"the operator {type(op).__name__} on {_kind(a)} and {_kind(b)}")

    def tensor_arith(self, node: ast.AST, op: ast.operator, a: Any, b: Any, hint: str) -> _Tensor:
        graph = self.need_graph(node)
        name = {
            ast.Add: "add",
            ast.Sub: "sub",
            ast.Mult: "mul",
            ast.Div: "div",
            ast.MatMult: "matmul",
            ast.FloorDiv: "floordiv",
        }.get(type(op))
        if name is None:
            raise _refuse(node, f"the operator {type(op).__name__} on tensors")
        args = [self.operand(node, a), self.operand(node, b)]
        return graph.op(name, args)

    def operand(self, node: ast.AST, v: Any) -> Any:
        if isinstance(v, _Tensor):
            return v.name
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _refuse(node, f"arithmetic of a tensor with {_kind(v)}")
        return v

    def attribute(self, node: ast.Attribute, env: dict[str, Any]) -> Any:
        base = node.value
        dotted = _dotted(node)
        if dotted is not None:
            root = dotted.split(".")[0]
            if root not in env and root not in self.globals and root in self.aliases:
                return _Qualified(self.qualify(dotted))
        obj = self.eval(base, env)
        attr = node.attr
        if isinstance(obj, _Skipped):
            return obj
        if isinstance(obj, _Init) and attr in _MODULE_METHODS_SKIPPED:
            return _BoundModuleMethod(obj, attr)
        if attr.startswith("__"):
            raise _refuse(node, f"the attribute `{attr}`")
        if isinstance(obj, _Qualified):
            return _Qualified(f"{obj.name}.{attr}")
        if isinstance(obj, _Class):
            found = obj.attribute(attr)
            if found is _NONE:
                raise _refuse(node, f"the class `{obj.name}` has no attribute `{attr}`")
            return found
        if isinstance(obj, _Instance):
            if attr in obj.attrs:
                value = obj.attrs[attr]
                if isinstance(value, _Parameter) and self.graph is not None:
                    return self.parameter(node, value)
                return value
            if attr == "training":
                return True
            method = obj.cls.method(attr)
            if method is not None:
                return _Function(method, bound=obj)
            found = obj.cls.attribute(attr)
            if found is not _NONE:
                return found
            if attr in _MODULE_METHODS_SKIPPED or attr in (
                "forward",
                "add_module",
                "register_module",
                "register_parameter",
            ):
                return _BoundModuleMethod(obj, attr)
            raise _refuse(node, f"`{obj.cls.name}` has no attribute `{attr}` (set in __init__)")
        if isinstance(obj, _Tensor):
            if attr == "shape":
                return _Size(obj)
            if attr == "T":
                return self.need_graph(node).op("transpose", [obj.name], {"dim0": 0, "dim1": 1})
            return _BoundTensorMethod(obj, attr)
        if isinstance(obj, _Layer):
            if attr in obj.args:
                return obj.args[attr]
            return _BoundModuleMethod(obj, attr)
        if isinstance(obj, (_Module, _ModuleList, _ModuleDict, list, dict, str)):
            return _BoundModuleMethod(obj, attr)
        if isinstance(obj, _Skipped):
            return obj
        raise _refuse(node, f"the attribute `{attr}` of {_kind(obj)}")

    def subscript(self, node: ast.Subscript, env: dict[str, Any], hint: str) -> Any:
        obj = self.eval(node.value, env)
        if isinstance(obj, _Tensor):
            index = self.index(node.slice, env)
            return self.need_graph(node).op("getitem", [obj.name, index], hint=hint)
        if isinstance(obj, _Size):
            key = self.eval(node.slice, env)
            if not isinstance(key, int) or isinstance(key, bool):
                raise _refuse(node.slice, "a tensor's size is indexed with one integer here")
            return self.size_of(node, obj.tensor, key, hint)
        key = self.eval(node.slice, env)
        if isinstance(obj, (_ModuleList, _ModuleDict)):
            obj = obj.items
        elif isinstance(obj, _Sequential):
            obj = [c for _, c in obj.children]
        if isinstance(obj, (list, tuple, str)):
            if isinstance(key, slice):
                return obj[key]
            if not isinstance(key, int) or isinstance(key, bool):
                raise _refuse(node.slice, f"a list is indexed with an integer, not {_kind(key)}")
            try:
                return obj[key]
            except IndexError:
                raise _refuse(node, f"the index {key} is out of range (the list has {len(obj)} items)") from None
        if isinstance(obj, dict):
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise _refuse(node.slice, f"a dict key {_kind(key)}")
            if key not in obj:
                raise _refuse(node, f"the key {key!r} is not in the dict")
            return obj[key]
        raise _refuse(node, f"indexing {_kind(obj)}")

    def index(self, node: ast.expr, env: dict[str, Any]) -> Any:
        """A tensor index in the graph's form: ints, None, {"slice": [start, stop, step]}, lists for tuples."""
        if isinstance(node, ast.Tuple):
            return [self.index(e, env) for e in node.elts]
        if isinstance(node, ast.Slice):
            parts = []
            for p in (node.lower, node.upper, node.step):
                v = None if p is None else self.eval(p, env)
                if isinstance(v, _Tensor):
                    v = v.name
                elif v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                    raise _refuse(p or node, "a slice bound must be an integer")
                parts.append(v)
            return {"slice": parts}
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return "..."
        v = self.eval(node, env)
        if v is None or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        if isinstance(v, _Tensor):  # a size node
            return v.name
        raise _refuse(node, f"a tensor index must be integers, slices or None, not {_kind(v)}")

    def size_of(self, node: ast.AST, tensor: _Tensor, dim: int | None, hint: str = "") -> _Tensor:
        kwargs = {} if dim is None else {"dim": dim}
        return self.need_graph(node).op("size", [tensor.name], kwargs, hint=hint or "size")

    def need_graph(self, node: ast.AST) -> _Graph:
        if self.graph is None:
            raise _refuse(node, "a tensor operation outside forward")
        return self.graph

    def parameter(self, node: ast.AST, param: _Parameter) -> _Tensor:
        graph = self.need_graph(node)
        key = id(param)
        if key in graph.called:
            return _Tensor(graph.called[key])
        name = graph.unique(param.path or "param")
        graph.called[key] = name
        return graph.add({"name": name, "parameter": {"shape": list(param.shape), "init": param.init}}, param)

    # --- calls ---------------------------------------------------------------------------------

    def call(self, node: ast.Call, env: dict[str, Any], hint: str = "") -> Any:
        func = self.eval(node.func, env)
        if isinstance(func, _Qualified):
            return self.call_qualified(node, func.name, env, hint)
        if isinstance(func, _BoundTensorMethod):
            return self.tensor_method(node, func, env, hint)
        if isinstance(func, _BoundModuleMethod):
            return self.module_method(node, func, env)
        args, kwargs = self.arguments(node, env)
        if isinstance(func, _Builtin):
            return self.builtin(node, func.name, args, kwargs)
        if isinstance(func, _Class):
            return self.instantiate(node, func, args, kwargs)
        if isinstance(func, _Function):
            return self.invoke(node, func, args, kwargs)
        if isinstance(func, _Module):
            if self.graph is None and self.depth == 0:
                if self.inputs is None and args and all(isinstance(v, _Init) for v in args):
                    self.inputs = [{"shape": v.shape} for v in args]
                self.warn(node, "calling a layer outside forward is skipped (the explorer runs it)")
                return _Skipped()
            return self.call_module(node, func, args, kwargs, hint)
        if isinstance(func, _Skipped):
            return func
        raise _refuse(node, f"a call to {_kind(func)}")

    def arguments(self, node: ast.Call, env: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self.iterate(a, self.eval(a.value, env)))
            else:
                args.append(self.eval(a, env))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                inner = self.eval(kw.value, env)
                if not isinstance(inner, dict) or not all(isinstance(k, str) for k in inner):
                    raise _refuse(kw.value, "unpacking (**) of something that is not a dict of names")
                kwargs.update(inner)
            else:
                kwargs[kw.arg] = self.eval(kw.value, env)
        return args, kwargs

    def invoke(self, node: ast.AST, func: _Function, args: list[Any], kwargs: dict[str, Any]) -> Any:
        fn = func.node
        if fn.decorator_list:
            deco = fn.decorator_list[0]
            if not (isinstance(deco, ast.Name) and deco.id in ("staticmethod", "torch.no_grad")):
                raise _refuse(deco, "a decorator")
        if func.bound is not None:
            args = [func.bound, *args]
        env = self.bind(node, fn, args, kwargs)
        self.depth += 1
        if self.depth > MAX_CALL_DEPTH:
            raise _refuse(node, f"calls nest deeper than {MAX_CALL_DEPTH} levels")
        try:
            self.block(fn.body, env)
        except _Return as r:
            return r.value
        except (_Break, _Continue):
            raise _refuse(node, "`break` or `continue` outside a loop") from None
        finally:
            self.depth -= 1
        return None

    def bind(self, node: ast.AST, fn: ast.FunctionDef, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        a = fn.args
        params = [p.arg for p in a.posonlyargs + a.args]
        defaults = dict(zip(params[len(params) - len(a.defaults) :], a.defaults, strict=True))
        env: dict[str, Any] = {}
        if len(args) > len(params) and not a.vararg:
            raise _refuse(node, f"`{fn.name}` takes {len(params)} positional arguments but got {len(args)}")
        for p, v in zip(params, args, strict=False):
            env[p] = v
        if a.vararg:
            env[a.vararg.arg] = tuple(args[len(params) :])
        extra: dict[str, Any] = {}
        if a.kwarg:
            env[a.kwarg.arg] = extra
        kwonly = [p.arg for p in a.kwonlyargs]
        for k, v in kwargs.items():
            if k not in params and k not in kwonly:
                if a.kwarg:
                    extra[k] = v
                    continue
                raise _refuse(node, f"`{fn.name}` has no argument `{k}`")
            if k in env:
                raise _refuse(node, f"`{fn.name}` got `{k}` twice")
            env[k] = v
        for p in params:
            if p not in env:
                if p not in defaults:
                    raise _refuse(node, f"`{fn.name}` needs the argument `{p}`")
                env[p] = self.eval(defaults[p], self.globals)
        for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
            if p.arg not in env:
                if d is None:
                    raise _refuse(node, f"`{fn.name}` needs the argument `{p.arg}`")
                env[p.arg] = self.eval(d, self.globals)
        return env

    def instantiate(self, node: ast.AST, cls: _Class, args: list[Any], kwargs: dict[str, Any]) -> _Instance:
        if self.graph is not None:
            raise _refuse(node, f"a layer made inside forward (`{cls.name}(...)`)")
        inst = _Instance(cls, _where(node))
        init = cls.method("__init__")
        if init is not None:
            self.invoke(node, _Function(init, bound=inst), args, kwargs)
        elif args or kwargs:
            raise _refuse(node, f"`{cls.name}` takes no arguments")
        return inst

    def builtin(self, node: ast.Call, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if name == "super":
            return _Skipped()
        if name == "print":
            self.warn(node, "`print(...)` is skipped")
            return None
        if kwargs and name not in ("sum", "min", "max", "round"):
            raise _refuse(node, f"`{name}` with keyword arguments")
        for v in args:
            if isinstance(v, (_Tensor, _Size)) and name not in ("len", "list", "tuple", "isinstance"):
                raise _refuse(node, f"`{name}` of a tensor (only of values known at import)")
        try:
            if name == "range":
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in args):
                    raise _refuse(node, "range takes integers")
                r = range(*args)
                if len(r) > MAX_ITERATIONS:
                    raise _refuse(node, f"the range has more than {MAX_ITERATIONS} items")
                return r
            if name == "len":
                (v,) = args
                if isinstance(v, _Tensor):
                    return self.size_of(node, v, 0)
                return len(self.iterate(node, v))
            if name in ("list", "tuple"):
                items = self.iterate(node, args[0]) if args else []
                if args and isinstance(args[0], _Size):
                    raise _refuse(node, "a tensor's shape as a list")
                return items if name == "list" else tuple(items)
            if name == "enumerate":
                start = args[1] if len(args) > 1 else 0
                return [(start + i, v) for i, v in enumerate(self.iterate(node, args[0]))]
            if name == "zip":
                lists = [self.iterate(node, a) for a in args]
                return [tuple(t) for t in zip(*lists, strict=False)]
            if name == "reversed":
                return list(reversed(self.iterate(node, args[0])))
            if name == "dict":
                if args:
                    return dict(args[0] if isinstance(args[0], dict) else self.iterate(node, args[0]))
                return dict(kwargs)
            if name == "isinstance":
                obj, cls = args
                if isinstance(cls, _Qualified):
                    short = cls.name.rsplit(".", 1)[-1]
                    return isinstance(obj, _Layer) and obj.type == short
                if isinstance(cls, _Class):
                    return isinstance(obj, _Instance) and (obj.cls is cls or cls in obj.cls.bases)
                raise _refuse(node, "isinstance with something other than a layer type or class")
            plain = [self.iterate(node, a) if isinstance(a, (range, _ModuleList)) else a for a in args]
            if any(isinstance(v, _Value) for v in plain):
                raise _refuse(node, f"`{name}` of {_kind(next(v for v in plain if isinstance(v, _Value)))}")
            fn = {
                "int": int,
                "float": float,
                "min": min,
                "max": max,
                "abs": abs,
                "sum": sum,
                "round": round,
                "bool": bool,
                "str": str,
            }[name]
            result = fn(*plain, **kwargs)
            if isinstance(result, int) and not isinstance(result, bool):
                return self.bounded(node, result)
            if isinstance(result, str) and len(result) > MAX_SEQUENCE:
                raise _refuse(node, "the string is too long")
            return result
        except _Refused:
            raise
        except (TypeError, ValueError, OverflowError):
            raise _refuse(node, f"`{name}` cannot take these arguments") from None

    def call_qualified(self, node: ast.Call, name: str, env: dict[str, Any], hint: str) -> Any:
        prefix, _, short = name.rpartition(".")
        if name in _SKIPPED_CALLS or name == "torch.device":
            self.warn(node, f"`{_dotted(node.func)}(...)` is skipped")
            return _Skipped()
        if name == "torch.cuda.is_available":
            return False
        if prefix == "torch.nn" and short == "Parameter":
            args, kwargs = self.arguments(node, env)
            data = args[0] if args else kwargs.get("data")
            if not isinstance(data, _Init):
                raise _refuse(node, "nn.Parameter takes torch.randn/rand/zeros/ones(shape) here")
            return _Parameter(data.shape, data.init, _where(node))
        if prefix == "torch" and short in ("zeros", "zeros_like") and self.graph is not None:
            self.arguments(node, env)
            return _Init([], "zeros")
        if prefix == "torch" and short in _FACTORIES and self.graph is None:
            args, kwargs = self.arguments(node, env)
            shape = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
            if "size" in kwargs:
                shape = kwargs["size"]
            shape = list(shape)
            if not shape or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape):
                raise _refuse(node, f"torch.{short} takes a shape of non-negative integers here")
            if short == "empty":
                self.warn(node, "torch.empty is read as torch.zeros (its values are undefined)")
            return _Init(shape, _FACTORIES[short])
        if name in ("torch.float32", "torch.float", "torch.float64", "torch.long"):
            return _Qualified(name)
        if prefix == "torch.nn" and short in ("ModuleList", "ModuleDict", "Sequential"):
            args, kwargs = self.arguments(node, env)
            if self.graph is not None:
                raise _refuse(node, f"a layer made inside forward (`nn.{short}(...)`)")
            return self.container(node, short, args, kwargs)
        if name == "collections.OrderedDict":
            args, kwargs = self.arguments(node, env)
            if not args:
                return dict(kwargs)
            src = args[0]
            return dict(src if isinstance(src, dict) else self.iterate(node, src))
        if (prefix in ("torch.nn", "") and short in self.registry) or (not prefix and short in self.registry):
            if self.graph is not None:
                raise _refuse(node, f"a layer made inside forward (`{_dotted(node.func)}(...)`)")
            return self.layer(node, short, env)
        if prefix == "math" and short in _MATH:
            args, _ = self.arguments(node, env)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
                raise _refuse(node, f"`math.{short}` takes numbers known at import")
            try:
                return _MATH[short](*args)
            except (TypeError, ValueError, OverflowError):
                raise _refuse(node, f"`math.{short}` cannot take these arguments") from None
        if name == "torch.nn.Module.__init__":
            return None
        if prefix in ("torch", "torch.nn.functional", "torch.Tensor") and (short in _OP_SIGNATURES or short in _SPREAD):
            return self.tensor_function(node, short, env, hint, qualified=name)
        if prefix.startswith("torch.nn.init"):
            self.warn(node, f"`{_dotted(node.func)}(...)` is skipped: the layers keep torch's default initialisation")
            return _Skipped()
        shown = _dotted(node.func) or name
        raise _refuse(node, f"a call to `{shown}`")

    def container(self, node: ast.Call, kind: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        pos = _where(node)
        if kwargs:
            raise _refuse(node, f"nn.{kind} takes its layers as positional arguments")
        if kind == "ModuleList":
            items = self.iterate(node, args[0]) if args else []
            for v in items:
                if not isinstance(v, (_Module, _ModuleList, _ModuleDict)):
                    raise _refuse(node, f"a ModuleList holds layers, not {_kind(v)}")
            return _ModuleList(list(items), pos)
        if kind == "ModuleDict":
            items = args[0] if args else {}
            if not isinstance(items, dict):
                items = dict(self.iterate(node, items))
            return _ModuleDict(dict(items), pos)
        children: list[tuple[str | None, _Module]] = []
        if len(args) == 1 and isinstance(args[0], dict):
            pairs = list(args[0].items())
        else:
            pairs = [(None, a) for a in args]
        for name, child in pairs:
            if not isinstance(child, _Module):
                raise _refuse(node, f"a Sequential holds layers, not {_kind(child)}")
            if name is not None:
                name = self.child_name(node, name)
            children.append((name, child))
        self.count(node)
        return _Sequential(children, pos)

    def child_name(self, node: ast.AST, name: Any) -> str:
        if not isinstance(name, str) or not name or "." in name or len(name) > 64:
            raise _refuse(node, "a layer name must be a non-empty string without '.' (at most 64 characters)")
        return name

    def layer(self, node: ast.Call, type_name: str, env: dict[str, Any]) -> _Layer:
        """A catalog layer: positional arguments named as torch's constructor names them."""
        spec = self.registry.get(type_name)
        self.count(node)
        config: dict[str, Any] = {}
        positions: dict[str, tuple[int, int]] = {}
        names = positional_names(self.registry)[type_name]
        full = signature_names(self.registry)[type_name]
        known = {p.name for p in spec.params}
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                raise _refuse(arg, "unpacking (*) in a layer's arguments")
            if i >= len(names):
                if i < len(full) and full[i] in _DROPPABLE and full[i] not in known:
                    self.warn(
                        arg,
                        f"{type_name}'s positional {full[i]} is ignored (it changes where the result is stored, not the result)",
                    )
                    continue
                raise _refuse(
                    arg,
                    f"{type_name} takes at most {len(names)} positional argument(s) here; "
                    f"name the others ({', '.join(p.name for p in spec.params)})",
                )
            config[names[i]] = self.argument(spec, names[i], arg, env)
            positions[names[i]] = _where(arg)
        for kw in node.keywords:
            if kw.arg is None:
                raise _refuse(kw.value, "unpacking (**) in a layer's arguments")
            if kw.arg in _DROPPABLE and kw.arg not in known:
                self.warn(
                    kw.value,
                    f"{type_name}'s {kw.arg} is ignored (it changes where the result is stored, not the result)",
                )
                continue
            if kw.arg not in known:
                raise _refuse(
                    kw.value,
                    f"{type_name} has no argument {kw.arg!r} here; its arguments are: {', '.join(sorted(known)) or 'none'}",
                )
            if kw.arg in config:
                raise _refuse(kw.value, f"{type_name} got {kw.arg!r} twice")
            config[kw.arg] = self.argument(spec, kw.arg, kw.value, env)
            positions[kw.arg] = _where(kw.value)
        return _Layer(type_name, config, positions, _where(node))

    def argument(self, spec: LayerSpec, name: str, node: ast.expr, env: dict[str, Any]) -> Any:
        value = self.eval(node, env)
        kind = spec.param(name).type if spec.param(name) else ""
        if kind == "layer":
            if value is None or isinstance(value, _Module):
                return value
            raise _refuse(node, f"{spec.type}: {name} must be a layer")
        if kind == "layers":
            items = self.iterate(node, value)
            out = []
            for v in items:
                # a (name, layer) pair, as the reproduction scripts write Residual's body
                if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], _Module):
                    out.append((self.child_name(node, v[0]), v[1]))
                elif isinstance(v, _Module):
                    out.append((None, v))
                else:
                    raise _refuse(node, f"{spec.type}: {name} must be a list of layers")
            return out
        if kind in ("int", "ints") and isinstance(value, float):
            raise _refuse(node, f"{spec.type}'s {name} takes an integer, and this is {value!r} (use // to divide)")
        return self.literal(node, value)

    def literal(self, node: ast.AST, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (list, tuple)):
            return [self.literal(node, v) for v in value]
        if isinstance(value, _Module):
            raise _refuse(node, "a layer cannot be an argument here; only literal values")
        raise _refuse(node, f"{_kind(value)} is not a literal value; arguments must be numbers, strings or lists")

    def module_method(self, node: ast.Call, bound: _BoundModuleMethod, env: dict[str, Any]) -> Any:
        obj, attr = bound.obj, bound.attr
        args, kwargs = self.arguments(node, env)
        if isinstance(obj, _Init) and attr in _MODULE_METHODS_SKIPPED:
            return obj
        if isinstance(obj, _Module) and attr in _MODULE_METHODS_SKIPPED:
            self.warn(node, f"`.{attr}(...)` is skipped (the explorer places and runs the model itself)")
            return obj
        if isinstance(obj, _Module) and attr == "forward":
            return self.call_module(node, obj, args, kwargs, "")
        if isinstance(obj, list):
            if attr == "append" and len(args) == 1:
                if len(obj) >= MAX_SEQUENCE:
                    raise _refuse(node, "the list is too long")
                obj.append(args[0])
                return None
            if attr == "extend" and len(args) == 1:
                obj.extend(self.iterate(node, args[0]))
                return None
            if attr == "insert" and len(args) == 2:
                obj.insert(args[0], args[1])
                return None
            if attr == "pop":
                return obj.pop(*args)
            if attr == "index" and len(args) == 1:
                return obj.index(args[0])
            if attr == "count" and len(args) == 1:
                return obj.count(args[0])
        if isinstance(obj, dict) and attr in ("items", "keys", "values", "get", "update"):
            if attr == "items":
                return list(obj.items())
            if attr == "keys":
                return list(obj)
            if attr == "values":
                return list(obj.values())
            if attr == "get":
                return obj.get(*args)
            obj.update(*args, **kwargs)
            return None
        if isinstance(obj, str) and attr in ("lower", "upper", "startswith", "endswith", "format"):
            if attr == "format":
                raise _refuse(node, "string formatting")
            return getattr(obj, attr)(*args)
        if isinstance(obj, _ModuleList) and attr in ("append", "extend", "insert"):
            items = [args[-1]] if attr != "extend" else self.iterate(node, args[0])
            for v in items:
                if not isinstance(v, _Module):
                    raise _refuse(node, f"a ModuleList holds layers, not {_kind(v)}")
            if attr == "append":
                obj.items.append(args[0])
            elif attr == "extend":
                obj.items.extend(items)
            else:
                obj.items.insert(args[0], args[1])
            return None
        if isinstance(obj, _ModuleDict) and attr in ("items", "keys", "values"):
            return {"items": list(obj.items.items()), "keys": list(obj.items), "values": list(obj.items.values())}[attr]
        if isinstance(obj, _Sequential) and attr in ("append", "add_module"):
            name, child = (None, args[0]) if attr == "append" else (self.child_name(node, args[0]), args[1])
            if not isinstance(child, _Module):
                raise _refuse(node, f"a Sequential holds layers, not {_kind(child)}")
            obj.children.append((name, child))
            return obj if attr == "append" else None
        if isinstance(obj, _Instance) and attr in ("add_module", "register_module") and len(args) == 2:
            _register(obj, self.child_name(node, args[0]), args[1])
            return None
        if isinstance(obj, _Instance) and attr == "register_parameter" and len(args) == 2:
            _register(obj, self.child_name(node, args[0]), args[1])
            return None
        raise _refuse(node, f"a call to `.{attr}` of {_kind(obj)}")

    # --- forward -------------------------------------------------------------------------------

    def call_module(self, node: ast.AST, module: _Module, args: list[Any], kwargs: dict[str, Any], hint: str) -> Any:
        graph = self.graph
        if graph is None:
            raise _refuse(node, "calling a layer outside forward")
        if isinstance(module, _Sequential) and not module.children and len(args) == 1 and not kwargs:
            return args[0]  # an empty Sequential returns its input
        if kwargs:
            raise _refuse(node, f"keyword arguments to a layer call ({', '.join(kwargs)}); pass tensors by position")
        refs = []
        for i, a in enumerate(args):
            if i > 0 and _zero_state(a) and isinstance(module, _Layer) and module.type in ("RNN", "LSTM", "GRU"):
                self.warn(node, f"the zero initial state passed to {module.type} is left out (zeros are its default)")
                continue
            refs.append(self.tensor_ref(node, a))
        key = id(module)
        base = module.path.replace(".", "_") if module.path else (hint or _default_name(module))
        if key in graph.called and module.has_state(self.registry):
            raise _refuse(
                node,
                f"the layer `{module.path or base}` is called twice; a graph holds each layer with learnable "
                "weights once (make a second layer, or call it in one place)",
            )
        name = graph.unique(base)
        graph.called.setdefault(key, name)
        return graph.add({"name": name, "module": module, "args": refs}, module)

    def tensor_ref(self, node: ast.AST, v: Any) -> Any:
        if isinstance(v, _Tensor):
            return v.name
        if isinstance(v, (list, tuple)) and all(isinstance(x, _Tensor) for x in v):
            return [x.name for x in v]
        raise _refuse(node, f"a layer called with {_kind(v)}; layers take tensors here")

    def tensor_function(self, node: ast.Call, short: str, env: dict[str, Any], hint: str, qualified: str) -> Any:
        args, kwargs = self.arguments(node, env)
        if short in _SPREAD and short not in _OP_SIGNATURES:
            op, param = _SPREAD[short]
            if not args or not isinstance(args[0], _Tensor):
                raise _refuse(node, f"`{qualified}` takes a tensor first")
            rest = args[1:]
            shape = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple, _Size)) else rest
            return self.emit(node, op, [args[0]], {param: self.sizes(node, shape)}, hint)
        return self.emit_signature(node, short, args, kwargs, hint)

    def tensor_method(self, node: ast.Call, bound: _BoundTensorMethod, env: dict[str, Any], hint: str) -> Any:
        args, kwargs = self.arguments(node, env)
        x, attr = bound.tensor, bound.attr
        if attr in _SPREAD:
            op, param = _SPREAD[attr]
            if param in kwargs:
                shape = kwargs.pop(param)
            else:
                shape = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple, _Size)) else args
            return self.emit(node, op, [x], {param: self.sizes(node, shape)}, hint)
        if attr in ("size", "dim") and attr == "size":
            dim = args[0] if args else kwargs.get("dim")
            if dim is None:
                return _Size(x)
            return self.size_of(node, x, dim, hint)
        if attr == "dim":
            raise _refuse(node, "`.dim()` of a tensor (only values known at import can decide)")
        if attr == "t":
            return self.emit(node, "transpose", [x], {"dim0": 0, "dim1": 1}, hint)
        if attr == "expand_as" and len(args) == 1 and isinstance(args[0], _Tensor):
            size = self.size_of(node, args[0], None)
            return self.emit(node, "expand", [x], {"size": size.name}, hint)
        if attr in _INPLACE_METHODS:
            return self.emit_signature(node, _INPLACE_METHODS[attr], [x, *args], kwargs, hint)
        if attr in ("to", "float", "cuda", "cpu", "detach", "clone", "type_as"):
            self.warn(node, f"`.{attr}(...)` on a tensor is skipped (the graph keeps its dtype and device)")
            return x
        if attr in _OP_SIGNATURES:
            return self.emit_signature(node, attr, [x, *args], kwargs, hint)
        raise _refuse(node, f"the tensor method `.{attr}(...)`")

    def emit_signature(self, node: ast.AST, short: str, args: list[Any], kwargs: dict[str, Any], hint: str) -> Any:
        op, params, _n = _OP_SIGNATURES[short]
        if not args:
            if "input" in kwargs:
                args = [kwargs.pop("input")]
            else:
                raise _refuse(node, f"`{short}` needs a tensor")
        first, rest = args[0], args[1:]
        if len(rest) > len(params):
            raise _refuse(node, f"`{short}` takes at most {len(params) + 1} positional arguments here")
        named: dict[str, Any] = dict(zip(params, rest, strict=False))
        for k, v in kwargs.items():
            alias = _KEYWORD_ALIASES.get(k, k)
            if alias == "":
                continue  # inplace, training, dtype: how or where, not what
            if alias is None or alias not in params:
                raise _refuse(node, f"`{short}` has no argument `{k}` here")
            if alias in named:
                raise _refuse(node, f"`{short}` got `{alias}` twice")
            named[alias] = v
        if op in ("cat", "stack"):
            items = self.iterate(node, first)
            if not items or not all(isinstance(t, _Tensor) for t in items):
                raise _refuse(node, f"`{short}` takes a list of tensors")
            head: Any = [t.name for t in items]
        else:
            if not isinstance(first, _Tensor):
                raise _refuse(node, f"`{short}` takes a tensor first, not {_kind(first)}")
            head = first.name
        out_args = [head]
        for p in params:
            if p in _TENSOR_PARAMS and p in named:
                v = named.pop(p)
                out_args.append(v.name if isinstance(v, _Tensor) else self.operand(node, v))
        literal = {
            k: self.sizes(node, v) if isinstance(v, (list, tuple)) else self.scalar(node, v) for k, v in named.items()
        }
        return self.emit(node, op, None, literal, hint, args=out_args)

    def emit(
        self, node: ast.AST, op: str, tensors: list[_Tensor] | None, kwargs: dict[str, Any], hint: str, args=None
    ) -> _Tensor:
        graph = self.need_graph(node)
        if args is None:
            args = [t.name for t in tensors or []]
        return graph.op(op, args, kwargs, hint="")

    def scalar(self, node: ast.AST, v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, _Tensor):
            return v.name
        raise _refuse(node, f"{_kind(v)} as an operation's argument")

    def sizes(self, node: ast.AST, shape: Any) -> Any:
        if isinstance(shape, _Size):
            return self.size_of(node, shape.tensor, None).name
        out = []
        for v in shape:
            if isinstance(v, _Tensor):
                out.append(v.name)
            elif isinstance(v, int) and not isinstance(v, bool):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                out.append(self.sizes(node, v))
            elif v is None or isinstance(v, (float, str)):
                out.append(v)
            else:
                raise _refuse(node, f"{_kind(v)} in a shape")
        return out

    # --- instances -> configs ------------------------------------------------------------------

    def trace(self, inst: _Instance) -> dict[str, Any]:
        """The Graph config of an instance: its forward, traced over symbolic tensors."""
        if inst.graph is not None:
            return inst.graph
        forward = inst.cls.method("forward")
        if forward is None:
            raise _refuse(inst.cls.node, f"`{inst.cls.name}` has no forward method")
        a = forward.args
        if a.vararg or a.kwarg:
            raise _refuse(forward, "a forward that takes *args or **kwargs")
        params = [p.arg for p in a.posonlyargs + a.args][1:]
        required = params[: len(params) - len(a.defaults)] if a.defaults else params
        if not required:
            raise _refuse(forward, "a forward that takes no tensor")
        outer = self.graph
        graph = _Graph(self, required)
        self.graph = graph
        try:
            result = self.invoke(forward, _Function(forward, bound=inst), [_Tensor(n) for n in required], {})
        finally:
            self.graph = outer
        if isinstance(result, _Tensor):
            outputs: Any = result.name
        elif isinstance(result, (tuple, list)) and result and all(isinstance(r, _Tensor) for r in result):
            outputs = [r.name for r in result]
        else:
            raise _refuse(
                forward, f"`{inst.cls.name}.forward` returns {_kind(result)}, not a tensor or a tuple of them"
            )
        self.unused(inst, graph)
        inst.graph = {"type": "Graph", "inputs": required, "nodes": graph.nodes, "outputs": outputs}
        return inst.graph

    def unused(self, inst: _Instance, graph: _Graph) -> None:
        used = set(graph.called)
        for name, value in inst.attrs.items():
            for v in _owned([value]):
                if isinstance(v, (_Module, _Parameter)) and id(v) not in used:
                    line, col = v.pos
                    text = (
                        f"line {line}, column {col}: `{inst.cls.name}.{v.path or name}` is built but forward never "
                        "uses it; it is left out"
                    )
                    if text not in self.warnings:
                        self.warnings.append(text)

    def config(self, value: _Module, where: str) -> dict[str, Any]:
        """The JSON config of a module value; positions record where each part came from."""
        self.positions[where] = value.pos
        if isinstance(value, _Layer):
            out: dict[str, Any] = {"type": value.type}
            for k, v in value.args.items():
                self.positions[f"{where}.{k}"] = value.positions.get(k, value.pos)
                if isinstance(v, _Module):
                    out[k] = self.config(v, f"{where}.{k}")
                elif isinstance(v, list) and v and all(isinstance(x, tuple) for x in v):
                    items = []
                    for i, (name, x) in enumerate(v):
                        c = self.config(x, f"{where}.{k}[{i}]")
                        items.append({**c, "name": name} if name is not None and name != str(i) else c)
                    out[k] = items
                else:
                    out[k] = v
            return out
        if isinstance(value, _Sequential):
            if not value.children:
                line, col = value.pos
                raise _Refused(
                    f"line {line}, column {col}: Sequential needs at least one layer",
                    field="code",
                    line=line,
                    column=col,
                )
            layers = []
            for i, (name, child) in enumerate(value.children):
                c = self.config(child, f"{where}.layers[{i}]")
                if name is not None and name != str(i):
                    c = {**c, "name": name}
                elif isinstance(child, _Instance) and name is None:
                    pass
                layers.append(c)
            return {"type": "Sequential", "layers": layers}
        if isinstance(value, _Instance):
            graph = self.trace(value)
            nodes = []
            for i, (node, held) in enumerate(zip(graph["nodes"], _held(graph), strict=True)):
                if isinstance(held, _Module) and isinstance(node.get("module"), _Module):
                    node = {**node, "module": self.config(held, f"{where}.nodes[{i}].module")}
                nodes.append(node)
            return {**graph, "nodes": nodes}
        raise AssertionError(type(value))


def _zero_state(v: Any) -> bool:
    if isinstance(v, _Init):
        return v.init == "zeros"
    return isinstance(v, (tuple, list)) and bool(v) and all(_zero_state(x) for x in v)


def _held(graph: dict[str, Any]) -> list[Any]:
    return [n.get("module") for n in graph["nodes"]]


class _Lazy:
    """One item of a tuple a layer returns; its getitem node is made only when the name is used."""

    def __init__(self, graph: _Graph, tensor: _Tensor, index: int, name: str) -> None:
        self.graph, self.tensor, self.index, self.name = graph, tensor, index, name

    def get(self) -> _Tensor:
        return self.graph.op("getitem", [self.tensor.name, self.index], hint=self.name)


class _BoundTensorMethod(_Value):
    def __init__(self, tensor: _Tensor, attr: str) -> None:
        self.tensor, self.attr = tensor, attr


class _BoundModuleMethod(_Value):
    def __init__(self, obj: Any, attr: str) -> None:
        self.obj, self.attr = obj, attr


def _register(inst: _Instance, name: str, value: Any) -> None:
    """``self.name = value``: a layer, ModuleList or parameter gets its module path."""
    inst.attrs[name] = value
    _set_path(value, name)


def _set_path(value: Any, path: str) -> None:
    if isinstance(value, (_Module, _Parameter)) and not value.path:
        value.path = path
    if isinstance(value, _ModuleList):
        for i, v in enumerate(value.items):
            _set_path(v, f"{path}.{i}")
    elif isinstance(value, _Sequential):
        for i, (name, v) in enumerate(value.children):
            _set_path(v, f"{path}.{name or i}")
    elif isinstance(value, _ModuleDict):
        for k, v in value.items.items():
            _set_path(v, f"{path}.{k}")


def _default_name(module: _Module) -> str:
    if isinstance(module, _Layer):
        return module.type.lower()
    if isinstance(module, _Instance):
        return module.cls.name.lower()
    return "seq"


def _hint(target: ast.AST) -> str:
    return target.id if isinstance(target, ast.Name) and target.id != "_" else ""


def _load(target: ast.expr) -> ast.expr:
    """An assignment target read as a value (``x += 1`` reads ``x``)."""
    return target


def _kind(v: Any) -> str:
    if isinstance(v, _Tensor):
        return "a tensor"
    if isinstance(v, _Size):
        return "a tensor's shape"
    if isinstance(v, _Layer):
        return f"a {v.type} layer"
    if isinstance(v, _Sequential):
        return "a Sequential"
    if isinstance(v, _Instance):
        return f"a {v.cls.name}"
    if isinstance(v, _ModuleList):
        return "a ModuleList"
    if isinstance(v, _ModuleDict):
        return "a ModuleDict"
    if isinstance(v, _Parameter):
        return "a parameter"
    if isinstance(v, _Init):
        return "a tensor made outside forward"
    if isinstance(v, _Class):
        return f"the class `{v.name}`"
    if isinstance(v, _Function):
        return f"the function `{v.node.name}`"
    if isinstance(v, _Qualified):
        return f"`{v.name}`"
    if isinstance(v, _Builtin):
        return f"`{v.name}`"
    if isinstance(v, (_Skipped, _Device)):
        return "something skipped (a device, a seed)"
    if v is None:
        return "None"
    return f"a {type(v).__name__}"


def _walk(node: ast.AST) -> list[ast.AST]:
    # ast.walk imports collections.deque on every call; the audit test watches for any import
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(ast.iter_child_nodes(n))
    return out


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


_POSITIONAL: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()
_SIGNATURES: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()


def positional_names(registry: Registry) -> dict[str, list[str]]:
    """Per catalog type, its positional arguments; read from the constructors once per registry."""
    table = _POSITIONAL.get(registry)
    if table is None:
        table = _POSITIONAL[registry] = {spec.type: _positional_names(spec) for spec in registry}
    return table


def signature_names(registry: Registry) -> dict[str, list[str]]:
    """Per catalog type, all of its constructor's positional parameter names (inplace included)."""
    table = _SIGNATURES.get(registry)
    if table is None:
        table = _SIGNATURES[registry] = {spec.type: _signature(spec) for spec in registry}
    return table


def _signature(spec: LayerSpec) -> list[str]:
    try:
        params = inspect.signature(spec.factory).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _PLACEMENT
    ]


def _positional_names(spec: LayerSpec) -> list[str]:
    """Constructor arguments in the order a positional call fills them (the catalog's own order where
    the factory hides its signature behind ``**kwargs``)."""
    known = {p.name for p in spec.params}
    names = _signature(spec)
    if not names:
        return [p.name for p in spec.params]
    # stop at the first argument JSON cannot express: later positions would be misread
    out = []
    for n in names:
        if n not in known:
            break
        out.append(n)
    return out


def _check_size(tree: ast.AST) -> None:
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise TooLarge(f"the code has more than {MAX_NODES} syntax nodes; paste a smaller model", field="code")
        if depth > MAX_DEPTH:
            raise _refuse(node, f"the code is nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _bracket_depth(code: str) -> int:
    depth = best = 0
    for ch in code:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


def _parse(code: str, what: str = "code") -> ast.Module:
    try:
        return ast.parse(code, filename=PASTE_NAME, mode="exec")
    except SyntaxError as exc:
        line, col = exc.lineno or 1, exc.offset or 1
        raise InvalidArgument(
            f"line {line}, column {col}: not valid Python: {exc.msg}", field=what, line=line, column=col
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise InvalidArgument("the code is nested too deeply to read", field=what) from None


def parse_model(registry: Registry, code: Any, entry: Any = None) -> Imported:
    """The JSON layer config of pasted PyTorch code (see the module doc for what is accepted)."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidArgument('"code" must be a non-empty string of PyTorch code', field="code")
    if len(code) > MAX_CODE_CHARS:
        raise TooLarge(f"the code has {len(code)} characters; the limit is {MAX_CODE_CHARS}", field="code")
    if "\x00" in code:
        raise InvalidArgument("the code contains a NUL character", field="code")
    printout = _looks_like_printout(code)
    notes = []
    if printout:
        for line, name in _printout_containers(code):
            notes.append(
                f"line {line}, column 1: a printout does not show {name}'s forward; its children are read as a "
                "chain, in the order printed"
            )
        code = _from_printout(code)
    if _bracket_depth(code) > MAX_DEPTH:
        raise InvalidArgument(f"the code is nested deeper than {MAX_DEPTH} levels", field="code")
    tree = _parse(code)
    _check_size(tree)
    interp = _Interpreter(registry, printout=printout)
    interp.warnings.extend(notes)
    try:
        interp.run_module(tree)
        model, node = _entry(interp, tree, entry)
        if isinstance(model, (_ModuleList, _ModuleDict)):
            raise _refuse(node, f"the model is {_kind(model)}, which has no forward; wrap it in a class")
        if not isinstance(model, _Module):
            raise _refuse(node, f"the model must be a layer or an instance of an nn.Module class, not {_kind(model)}")
        layer = interp.config(model, "layer")
    except _Return:
        raise InvalidArgument("`return` outside a function", field="code") from None
    except (_Break, _Continue):
        raise InvalidArgument("`break` or `continue` outside a loop", field="code") from None
    except RecursionError:
        raise InvalidArgument("the code is nested too deeply to read", field="code") from None
    return Imported(layer=layer, positions=interp.positions, warnings=interp.warnings, inputs=interp.inputs)


def _entry(interp: _Interpreter, tree: ast.Module, entry: Any) -> tuple[Any, ast.AST]:
    """The model: the ``entry`` expression, else the last line that makes one, else the only class."""
    if entry is not None:
        if not isinstance(entry, str) or not entry.strip() or len(entry) > 1_000:
            raise InvalidArgument('"entry" must be a class name or a call such as "Net(10, 20)"', field="entry")
        expr = _parse(entry, "entry")
        if len(expr.body) != 1 or not isinstance(expr.body[0], ast.Expr):
            raise InvalidArgument('"entry" must be one expression such as "Net(10, 20)"', field="entry")
        value = interp.eval(expr.body[0].value, interp.globals)
        if isinstance(value, _Class):
            value = interp.instantiate(expr.body[0].value, value, [], {})
        return value, expr.body[0].value
    if interp.model is not None:
        return interp.model, interp.model_node  # type: ignore[return-value]
    classes = [v for v in interp.globals.values() if isinstance(v, _Class)]
    if not classes:
        raise _refuse(
            tree.body[0] if tree.body else tree,
            "the code makes no model: write `model = Net(...)` or a layer expression",
        )
    used = {b.name for c in classes for b in c.bases}
    for c in classes:
        for n in _walk(c.node):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                used.add(n.func.id)
    top = [c for c in classes if c.name not in used]
    cls = top[-1] if top else classes[-1]
    interp.warn(cls.node, f'no line makes the model; `{cls.name}()` is used (pass "entry" to choose)')
    return interp.instantiate(cls.node, cls, [], {}), cls.node
