"""A plain PyTorch script that reproduces a response, number for number."""

from __future__ import annotations

from typing import Any

import torch

from app.core import tensors
from app.core.networks import graphnet
from app.core.networks.trace import PerConfig
from app.core.networks.tree import LayerNode
from app.core.running import images
from app.core.running.plan import Plan


def _literal(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"torch.tensor({value.tolist()!r})"
    if isinstance(value, tuple):
        return repr(tuple(value))
    return repr(value)


def ctor(node: LayerNode, preludes: dict[str, str]) -> str:
    """``torch.nn.Conv1d(in_channels=3, ...)``, recursing into nested layer configs."""
    spec = node.spec
    if spec.code_prelude:
        preludes.setdefault(spec.type, spec.code_prelude)
    name = spec.code_name or f"torch.nn.{spec.type}"
    if spec.container is not None and spec.container.dataflow:
        # a graph is a class of its own: its layers in __init__, the graph as its forward()
        name = "Graph" if "Graph" not in preludes else f"Graph{len(preludes)}"
        preludes[name] = ""  # keeps the name taken while the nested classes are written
        preludes[name] = graphnet.class_source(node, name, lambda child: ctor(child, preludes))
        return f"{name}()"
    if spec.container is not None and spec.container.chain:
        # a chain is torch.nn.Sequential itself, its children named as they are in the response. Its
        # shapes come from its lowered graph (app/core/networks/lower.py), but the script prints the
        # sugar, not the graph: nn.Sequential is what its users write and expect to read, and it builds
        # the same modules under the same paths in the same order, so the seeded numbers agree
        children = ", ".join(f"({child.name!r}, {ctor(child, preludes)})" for _, child in node.nested())
        return f"{name}(OrderedDict([{children}]))"
    parts = []
    for p in spec.params:
        if p.name in node.args:
            parts.append(f"{p.name}={_literal(node.args[p.name])}")
        elif p.name in node.slots:
            value = node.slots[p.name]
            if isinstance(value, list):
                children = ", ".join(f"({child.name!r}, {ctor(child, preludes)})" for child in value)
                parts.append(f"{p.name}=[{children}]")
            else:
                parts.append(f"{p.name}={'None' if value is None else ctor(value, preludes)}")
    return f"{name}({', '.join(parts)})"


#: a parameter set by hand with more values than this is loaded from its .npy in the script, not
#: written out as a literal (a 1M-value weight would be ~20 MB of script text)
MAX_LITERAL_ELEMENTS = 1 << 16


def _set_parameters(plan: Plan) -> list[str]:
    """The request's ``parameters``, copied in as the server does: after the move, under no_grad."""
    if not plan.parameters:
        return []
    buffers = {name for name, _ in plan.meta.named_buffers()}
    lines = ["with torch.no_grad():  # parameters set by hand"]
    for name, t in plan.parameters.items():
        getter = "get_buffer" if name in buffers else "get_parameter"
        if t.numel() > MAX_LITERAL_ELEMENTS:
            # a trained weight is not written out as text: the script loads the .npy the request sent
            lines.append(
                f"    # {name}: the {tuple(t.shape)} values sent in the request's parameters, saved as a .npy file"
            )
            lines.append(f"    layer.{getter}({name!r}).copy_(torch.from_numpy(numpy.load({name + '.npy'!r})))")
            continue
        # float64 holds every float32/float16 value exactly; copy_ casts into the tensor's own dtype
        dtype = "torch.float64" if t.is_floating_point() else f"torch.{tensors.dtype_name(t.dtype)}"
        lines.append(f"    layer.{getter}({name!r}).copy_(torch.tensor({t.tolist()!r}, dtype={dtype}))")
    return lines


def _needs_numpy(plan: Plan) -> bool:
    return any(t.numel() > MAX_LITERAL_ELEMENTS for t in plan.parameters.values())


#: per config tree: the layer's constructor expression and the classes it needs written first (a function
#: of the config alone: a kept plan's repeated runs write it once; 1.2 ms for a 512-block network)
_CTORS = PerConfig()


def script(plan: Plan, *, child_path: str | None = None) -> str:
    """The script; with ``child_path``, it prints what that layer inside the network returned."""
    kept = _CTORS.get(plan.node)
    if kept is None:
        preludes: dict[str, str] = {}
        build = ctor(plan.node, preludes)
        _CTORS.put(plan.node, value=(build, dict(preludes)))
    else:
        build, preludes = kept[0], dict(kept[1])
    dtype = f"torch.{tensors.dtype_name(plan.dtype)}"
    device = str(plan.device)
    # preludes share import lines (OrderedDict for Sequential and Residual): write each once, on top
    imports = ["import torch"]
    if any(p.image is not None for p in plan.inputs):
        imports = [*images.IMPORTS, *imports]
    if _needs_numpy(plan):
        imports = ["import numpy", *imports]
    bodies = []
    for source in preludes.values():
        body = []
        for line in source.strip().splitlines():
            if line.startswith(("import ", "from ")):
                if line not in imports:
                    imports.append(line)
            else:
                body.append(line)
        if "".join(body).strip():
            bodies.append("\n".join(body).strip())
    lines = [*imports, "", ""] if bodies else [*imports, ""]
    for body in bodies:
        lines += [body, "", ""]
    lines += [f"torch.manual_seed({plan.seed})", f"layer = {build}"]
    names = []
    for i, (p, _ispec) in enumerate(zip(plan.inputs, plan.spec.inputs)):
        var = f"x{i + 1}" if len(plan.inputs) > 1 else "x"
        names.append(var)
        if p.image is not None:
            lines += images.code(var, p.image)
            if p.dtype != torch.float32:
                lines.append(f"{var} = {var}.to(torch.{tensors.dtype_name(p.dtype)})")
        elif p.data is not None:
            if p.vocabulary is not None:
                lines.append(f"vocabulary = {p.vocabulary!r}  # sorted; a token's id is its place here")
                lines.append(f"{var} = torch.tensor([[vocabulary.index(t) for t in {p.tokens!r}]])")
                continue
            lines.append(f"{var} = torch.tensor({p.data.tolist()!r}, dtype=torch.{tensors.dtype_name(p.dtype)})")
        else:
            lines.append(f"{var} = {tensors.draw_code(p.kind, p.shape, p.high)}")
    lines.append(f"layer = layer.to(device={device!r}, dtype={dtype})")
    lines += _set_parameters(plan)
    if not plan.train:
        lines.append("layer.eval()")
    moved = [
        f"{v}.to(device={device!r}, dtype={dtype})"
        if (p.kind in ("normal", "uniform", "sign", "binary") and p.data is None)
        else f"{v}.to({device!r})"
        for v, p in zip(names, plan.inputs)
    ]
    call = plan.spec.code_call.get(len(moved))
    args = call.format(*moved) if call else ", ".join(moved)
    if child_path:
        lines += [
            "captured = {}",
            "",
            "",
            # a def, not a lambda: a hook that returns a value replaces the layer's output
            "def copy(value):",
            "    # a copy taken at the call: the network may change the output in place afterwards",
            "    if isinstance(value, torch.Tensor):",
            "        return value.clone()",
            "    if isinstance(value, (tuple, list)):",
            "        return type(value)(copy(v) for v in value)",
            "    return value",
            "",
            "",
            "def keep(module, args, output):",
            "    captured.setdefault('output', copy(output))",
            "",
            "",
            f"layer.get_submodule({child_path!r}).register_forward_hook(keep)",
        ]
    lines += ["with torch.no_grad():", f"    output = layer({args})"]
    lines.append("print(captured['output'])" if child_path else "print(output)")
    return "\n".join(lines) + "\n"
