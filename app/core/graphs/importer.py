"""A model pasted as PyTorch code, turned into the JSON config ``/api/run`` takes — without running it.

The code is parsed with :mod:`ast` and only *read*: nothing in it is imported, evaluated, executed
or looked up outside the catalog. What is accepted:

- constructor calls of catalog types, spelled ``nn.Conv2d``, ``torch.nn.Conv2d`` or ``Conv2d``;
- ``nn.Sequential(a, b, ...)`` and ``nn.Sequential(OrderedDict([("name", a), ...]))`` (named children);
- literal arguments: ints, floats, bools, ``None``, strings, tuples and lists of them;
- integer arithmetic on literals (``16 * 5 * 5``), folded here with bounded magnitude;
- one statement: the expression itself, or ``model = <expression>``;
- the printout of a Sequential (``print(model)``: ``(0): Conv2d(1, 6, kernel_size=(5, 5), ...)``).

Anything else is an :class:`InvalidArgument` naming the line and column. This module needs no torch:
it reads the catalog (names, parameter lists) from the registry it is given.
"""

from __future__ import annotations

import ast
import inspect
import re
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.core.errors import InvalidArgument, TooLarge

if TYPE_CHECKING:
    from app.core.catalog.spec import LayerSpec, Registry

# the file name ast reports; on a syntax error CPython tries to read this "file" for the line's text
PASTE_NAME = "<pasted code>"
MAX_CODE_CHARS = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 40
MAX_INT = 2**63  # |value| < MAX_INT for every folded integer
MAX_POW_EXPONENT = 64
_PLACEMENT = {"self", "device", "dtype", "factory_kwargs"}
_CONTAINERS = {"Sequential"}
# arguments that change how torch stores a result, not the result: dropped (with a warning) when the catalog
# does not offer them, because printouts are full of ReLU(inplace=True)
_DROPPABLE = {"inplace"}


@dataclass
class Imported:
    """The config, and where in the code each config field came from (for errors found later)."""

    layer: dict[str, Any]
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Refused(InvalidArgument):
    pass


def _where(node: ast.AST) -> tuple[int, int]:
    # ast columns are 0-based UTF-8 byte offsets; people count from 1
    return getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1


def _refuse(node: ast.AST, message: str) -> _Refused:
    line, col = _where(node)
    return _Refused(f"line {line}, column {col}: {message}", field="code", line=line, column=col)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Name: "a name",
        ast.Attribute: "attribute access",
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.JoinedStr: "an f-string",
        ast.Subscript: "subscripting",
        ast.Starred: "unpacking (*)",
        ast.IfExp: "a conditional expression",
        ast.BoolOp: "and/or",
        ast.Compare: "a comparison",
        ast.Await: "await",
        ast.Yield: "yield",
        ast.NamedExpr: "an assignment (:=)",
        ast.Set: "a set",
        ast.Dict: "a dict",
    }
    return names.get(type(node), type(node).__name__)


# ---------------------------------------------------------------------------------------------
# print(model) output -> constructor code (text only; the result goes through the same checks)
# ---------------------------------------------------------------------------------------------

_REPR_CHILD = re.compile(r"^(\s*)\(([A-Za-z0-9_]+)\):\s*(.*)$")


def _from_printout(code: str) -> str:
    """``Sequential(\\n  (0): Conv2d(...)\\n)`` as ``Sequential(OrderedDict([("0",Conv2d(...)), ...]))``.

    ``(0): `` and ``("0",`` have the same length, so every line and column still points at the paste.
    """
    out: list[str] = []
    stack: list[bool] = []  # per open container: has it had a child yet?
    for raw in code.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        m = _REPR_CHILD.match(line)
        if m:
            indent, name, rest = m.groups()
            if stack and stack[-1]:
                out[-1] += ","
            if stack:
                stack[-1] = True
            if rest.endswith("("):  # a nested container opens
                out.append(f'{indent}("{name}",{rest}OrderedDict([')
                stack.append(False)
            else:
                out.append(f'{indent}("{name}",{rest})')
        elif stripped == ")" and stack:
            stack.pop()
            out.append(line.replace(")", "]))" + ("" if not stack else ")")))
        elif stripped.endswith("(") and not stack:
            out.append(f"{line}OrderedDict([")
            stack.append(False)
        else:
            out.append(line)
    return "\n".join(out)


def _looks_like_printout(code: str) -> bool:
    return any(_REPR_CHILD.match(line) for line in code.splitlines())


# ---------------------------------------------------------------------------------------------
# the converter
# ---------------------------------------------------------------------------------------------


class _Converter:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.positions: dict[str, tuple[int, int]] = {}
        self.warnings: list[str] = []

    # --- names -------------------------------------------------------------------------------

    def type_name(self, func: ast.expr) -> str:
        """``nn.X``, ``torch.nn.X`` or ``X``, X a catalog type; the catalog is the only namespace."""
        if isinstance(func, ast.Name):
            name = func.id
        elif isinstance(func, ast.Attribute):
            chain = []
            probe: ast.expr = func
            while isinstance(probe, ast.Attribute):
                chain.append(probe.attr)
                probe = probe.value
            if not isinstance(probe, ast.Name):
                raise _refuse(func, "only constructors spelled nn.X, torch.nn.X or X can be called")
            chain.append(probe.id)
            dotted = ".".join(reversed(chain))
            prefix, _, name = dotted.rpartition(".")
            if prefix not in ("nn", "torch.nn"):
                raise _refuse(func, f"attribute access outside nn./torch.nn. is not allowed ({dotted})")
        else:
            raise _refuse(func, f"only constructor calls of layers are allowed, not calls of {_describe(func)}")
        if name not in self.registry:
            raise _refuse(func, f"{name} is not a layer type this server knows (GET /api/layers lists them)")
        return name

    # --- values ------------------------------------------------------------------------------

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None or isinstance(v, str):
                return v
            if isinstance(v, int):
                return self.bounded(node, v)
            if isinstance(v, float):
                return v
            raise _refuse(node, f"{type(v).__name__} literals are not allowed")
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self.literal(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.literal(node.operand)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _refuse(node, "a sign applies only to a number")
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            return self.arith(node)
        if isinstance(node, ast.Call):
            raise _refuse(node, "a layer cannot be an argument here; only literal values")
        raise _refuse(node, f"{_describe(node)} is not allowed; arguments must be literal values")

    def bounded(self, node: ast.AST, v: int) -> int:
        if abs(v) >= MAX_INT:
            raise _refuse(node, "the integer is too large (|value| must be below 2**63)")
        return v

    def arith(self, node: ast.BinOp) -> int:
        a, b = self.literal(node.left), self.literal(node.right)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (a, b)):
            raise _refuse(node, "only integer arithmetic on literals is folded (e.g. 16 * 5 * 5)")
        op = node.op
        if isinstance(op, ast.Pow):
            if not 0 <= b <= MAX_POW_EXPONENT:
                raise _refuse(node, f"an exponent must be between 0 and {MAX_POW_EXPONENT}")
            # the rule is the value's (|value| < 2**63, as for any integer); this only spares computing a
            # power that is certainly past it: |a| >= 2**(bits - 1), so |a**b| >= 2**((bits - 1) * b)
            if (abs(a).bit_length() - 1) * b >= 63:
                raise _refuse(node, "the integer is too large (|value| must be below 2**63)")
            return self.bounded(node, a**b)
        if isinstance(op, (ast.FloorDiv, ast.Mod)) and b == 0:
            raise _refuse(node, "division by zero")
        if isinstance(op, (ast.LShift, ast.RShift)) and not 0 <= b < 64:
            raise _refuse(node, "a shift must be between 0 and 63")
        ops = {
            ast.Add: lambda: a + b,
            ast.Sub: lambda: a - b,
            ast.Mult: lambda: a * b,
            ast.FloorDiv: lambda: a // b,
            ast.Mod: lambda: a % b,
            ast.LShift: lambda: a << b,
            ast.RShift: lambda: a >> b,
        }
        if type(op) not in ops:
            raise _refuse(node, f"the operator {type(op).__name__} is not allowed (use + - * // % ** << >>)")
        # both operands are below 2**63, so no result is bigger than 2**127 before this check
        return self.bounded(node, ops[type(op)]())

    # --- layers ------------------------------------------------------------------------------

    def layer(self, node: ast.expr, where: str) -> dict[str, Any]:
        if not isinstance(node, ast.Call):
            raise _refuse(node, f"expected a layer constructor call such as nn.Linear(10, 5), got {_describe(node)}")
        type_name = self.type_name(node.func)
        self.positions[where] = _where(node)
        if type_name in _CONTAINERS:
            return self.sequential(node, where)
        spec = self.registry.get(type_name)
        config: dict[str, Any] = {"type": type_name}
        names = positional_names(self.registry)[type_name]
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                raise _refuse(arg, "unpacking (*) is not allowed")
            if i >= len(names):
                raise _refuse(
                    arg,
                    f"{type_name} takes at most {len(names)} positional argument(s) here; "
                    f"name the others ({', '.join(p.name for p in spec.params)})",
                )
            config[names[i]] = self.argument(spec, names[i], arg, f"{where}.{names[i]}")
        known = {p.name for p in spec.params}
        for kw in node.keywords:
            if kw.arg is None:
                raise _refuse(kw.value, "unpacking (**) is not allowed")
            if kw.arg in _DROPPABLE and kw.arg not in known:
                line, col = _where(kw.value)
                self.warnings.append(
                    f"line {line}, column {col}: {type_name}'s {kw.arg} is ignored (it changes "
                    "where the result is stored, not the result)"
                )
                continue
            if kw.arg not in known:
                raise _refuse(
                    kw.value,
                    f"{type_name} has no argument {kw.arg!r} here; its arguments are: "
                    f"{', '.join(sorted(known)) or 'none'}",
                )
            if kw.arg in config:
                raise _refuse(kw.value, f"{type_name} got {kw.arg!r} twice")
            config[kw.arg] = self.argument(spec, kw.arg, kw.value, f"{where}.{kw.arg}")
        return config

    def argument(self, spec: LayerSpec, name: str, node: ast.expr, where: str) -> Any:
        self.positions[where] = _where(node)
        kind = spec.param(name).type if spec.param(name) else ""
        if kind == "layer":
            if isinstance(node, ast.Constant) and node.value is None:
                return None
            return self.layer(node, where)
        if kind == "layers":
            if not isinstance(node, (ast.List, ast.Tuple)):
                raise _refuse(node, f"{spec.type}: {name} must be a list of layers")
            out = []
            for i, e in enumerate(node.elts):
                # a (name, layer) pair, as the reproduction scripts write Residual's body
                if isinstance(e, ast.Tuple) and len(e.elts) == 2:
                    child_name = self.child_name(e.elts[0])
                    config = self.layer(e.elts[1], f"{where}[{i}]")
                    out.append({**config, "name": child_name} if child_name != str(i) else config)
                else:
                    out.append(self.layer(e, f"{where}[{i}]"))
            return out
        return self.literal(node)

    def sequential(self, node: ast.Call, where: str) -> dict[str, Any]:
        if node.keywords:
            raise _refuse(node.keywords[0].value, "Sequential takes its layers as positional arguments")
        children: list[dict[str, Any]] = []
        if len(node.args) == 1 and _is_ordered_dict(node.args[0]):
            for i, (name, child) in enumerate(self.named_items(node.args[0])):
                config = self.layer(child, f"{where}.layers[{i}]")
                children.append({**config, "name": name} if name != str(i) else config)
        else:
            for i, arg in enumerate(node.args):
                if isinstance(arg, ast.Starred):
                    raise _refuse(arg, "unpacking (*) is not allowed")
                children.append(self.layer(arg, f"{where}.layers[{i}]"))
        if not children:
            raise _refuse(node, "Sequential needs at least one layer")
        return {"type": "Sequential", "layers": children}

    def named_items(self, call: ast.Call) -> list[tuple[str, ast.expr]]:
        if call.keywords or len(call.args) != 1:
            raise _refuse(call, 'OrderedDict takes one list of ("name", layer) pairs')
        arg = call.args[0]
        pairs: list[tuple[str, ast.expr]] = []
        if isinstance(arg, ast.Dict):
            items = list(zip(arg.keys, arg.values))
            for key, value in items:
                if key is None:
                    raise _refuse(value, "unpacking (**) is not allowed")
                pairs.append((self.child_name(key), value))
        elif isinstance(arg, (ast.List, ast.Tuple)):
            for item in arg.elts:
                if not isinstance(item, ast.Tuple) or len(item.elts) != 2:
                    raise _refuse(item, 'each entry of the OrderedDict must be a ("name", layer) pair')
                pairs.append((self.child_name(item.elts[0]), item.elts[1]))
        else:
            raise _refuse(arg, 'OrderedDict takes one list of ("name", layer) pairs')
        seen: set[str] = set()
        for name, value in pairs:
            if name in seen:
                raise _refuse(value, f"the layer name {name!r} is used twice")
            seen.add(name)
        return pairs

    def child_name(self, node: ast.expr) -> str:
        if (
            not isinstance(node, ast.Constant)
            or not isinstance(node.value, str)
            or not node.value
            or "." in node.value
            or len(node.value) > 64
        ):
            raise _refuse(node, "a layer name must be a non-empty string without '.' (at most 64 characters)")
        return node.value


def _is_ordered_dict(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "OrderedDict") or (
        isinstance(f, ast.Attribute)
        and f.attr == "OrderedDict"
        and isinstance(f.value, ast.Name)
        and f.value.id == "collections"
    )


_POSITIONAL: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()


def positional_names(registry: Registry) -> dict[str, list[str]]:
    """Per catalog type, its positional arguments; read from the constructors once per registry."""
    table = _POSITIONAL.get(registry)
    if table is None:
        table = _POSITIONAL[registry] = {spec.type: _positional_names(spec) for spec in registry}
    return table


def _positional_names(spec: LayerSpec) -> list[str]:
    """Constructor arguments in the order a positional call fills them (the catalog's own order where
    the factory hides its signature behind ``**kwargs``)."""
    known = {p.name for p in spec.params}
    try:
        params = inspect.signature(spec.factory).parameters.values()
    except (TypeError, ValueError):
        params = []
    names = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _PLACEMENT
    ]
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


def _statement(tree: ast.Module) -> ast.expr:
    body = [s for s in tree.body if not (isinstance(s, (ast.Import, ast.ImportFrom)))]
    for s in tree.body:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            # import lines are read as text and ignored, never run; only torch's own are tolerated
            mods = [a.name for a in s.names] if isinstance(s, ast.Import) else [s.module or ""]
            if not all(m.split(".")[0] in ("torch", "collections") for m in mods):
                raise _refuse(s, "only import lines for torch and collections are tolerated (they are not run)")
    if len(body) != 1:
        where = body[1] if len(body) > 1 else tree
        raise _refuse(where, "paste one expression, e.g. nn.Sequential(...), or one assignment model = ...")
    stmt = body[0]
    if isinstance(stmt, ast.Expr):
        return stmt.value
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.value
    raise _refuse(stmt, f"only an expression or one assignment is allowed, not {type(stmt).__name__}")


def parse_model(registry: Registry, code: Any) -> Imported:
    """The JSON layer config of a pasted constructor expression (see the module doc for what is accepted)."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidArgument('"code" must be a non-empty string of PyTorch code', field="code")
    if len(code) > MAX_CODE_CHARS:
        raise TooLarge(f"the code has {len(code)} characters; the limit is {MAX_CODE_CHARS}", field="code")
    if "\x00" in code:
        raise InvalidArgument("the code contains a NUL character", field="code")
    if _looks_like_printout(code):
        code = _from_printout(code)
    if _bracket_depth(code) > MAX_DEPTH:
        raise InvalidArgument(f"the code is nested deeper than {MAX_DEPTH} levels", field="code")
    try:
        tree = ast.parse(code, filename=PASTE_NAME, mode="exec")
    except SyntaxError as exc:
        line, col = exc.lineno or 1, exc.offset or 1
        raise InvalidArgument(
            f"line {line}, column {col}: not valid Python: {exc.msg}", field="code", line=line, column=col
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise InvalidArgument("the code is nested too deeply to read", field="code") from None
    _check_size(tree)
    converter = _Converter(registry)
    layer = converter.layer(_statement(tree), "layer")
    return Imported(layer=layer, positions=converter.positions, warnings=converter.warnings)
