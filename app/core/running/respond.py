"""Response JSON for /api/run and /api/shape: tensors, parameters, shapes, formulas, windows, trace."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.modules.module import _addindent

from app.core import tensors
from app.core.config import Settings
from app.core.explaining.windows import window_map, window_values
from app.core.networks.trace import MODULES, PerConfig, is_network, known_classes, named_parameters, subtotals, totals
from app.core.running.plan import Plan


def params_json(
    module: nn.Module,
    settings: Settings,
    *,
    with_data: bool,
    budget: tensors.ValueBudget | None = None,
    modules: list[tuple[str, nn.Module]] | None = None,
) -> list[dict[str, Any]]:
    """Every parameter once (``named_parameters``); ``modules``: the module's walk, where the run made it."""
    out = []
    dtype_name = tensors.dtype_name
    # once spent, the budget stays spent (it only shrinks): the rest of a deep network's parameters (2000 of a
    # 512-block one) take the short way without asking it again
    spent = False
    for name, p in named_parameters(module, modules):
        # ``is_meta``, not ``device.type``: a torch.device object made per parameter was a third of the loop
        if not with_data or p.is_meta:
            out.append({"name": name, "shape": list(p.shape), "numel": p.numel(), "dtype": dtype_name(p.dtype)})
        elif spent or (budget is not None and budget.spent):
            spent = True
            # past the answer's budget: what tensor_json would say, without reading the tensor, in one literal
            # (the keys in the order the general way writes them)
            out.append(
                {
                    "name": name,
                    "shape": list(p.shape),
                    "numel": p.numel(),
                    "dtype": dtype_name(p.dtype),
                    "data": None,
                    "summary": None,
                    "preview": None,
                    "values": "none",
                }
            )
        else:
            entry = {"name": name, "shape": list(p.shape), "numel": p.numel(), "dtype": dtype_name(p.dtype)}
            t = tensors.tensor_json(name, p, max_elements=settings.max_elements, budget=budget)
            entry.update({k: t[k] for k in _VALUE_KEYS if k in t})
            out.append(entry)
    return out


#: what a parameter's entry takes from its tensor_json, in this order
_VALUE_KEYS = ("data", "summary", "preview", "preview_step", "values")


def fetch_pointer(entry: dict[str, Any], path: str | None) -> dict[str, Any]:
    """Where a tensor sent without all its numbers is had whole: ``POST /api/run?format=npy&tensor=<name>``
    with the same body (``path`` included, for a layer inside a network)."""
    if entry.get("values") in _PARTIAL:
        # two literals, not one with ``**`` of a dict made per entry: 2000 entries past a deep network's budget
        if path:
            entry["full"] = {"format": "npy", "tensor": entry["name"], "path": path}
        else:
            entry["full"] = {"format": "npy", "tensor": entry["name"]}
    return entry


#: what ``values`` says of a tensor sent without all its numbers
_PARTIAL = frozenset({"preview", "summary", "none"})


#: per config tree: the text of the module a run built from it (a 512-block network's ``repr`` takes 2 ms)
_TEXTS = PerConfig()


def module_repr(plan: Plan, module: nn.Module, modules: list[tuple[str, nn.Module]] | None = None) -> str:
    """``repr(module)`` of a module a run built from ``plan.node``, kept for the next run of the same plan.

    A module's text is its classes' and their constructors' arguments (``extra_repr``), so every module
    built from one config tree shows the same text; a kept plan (the same request but its seed:
    app.core.running.execute.planned) keeps its config tree, and its repeated runs are answered from here.
    The text is kept only where every class in the module is torch.nn's or this app's
    (:func:`~app.core.networks.trace.known_classes`; ``modules``: the run's walk of the module)."""
    if modules is None:
        return repr(module)
    key = (plan.device, plan.dtype, plan.train)
    text = _TEXTS.get(plan.node, *key)
    if text is None:
        known = known_classes(modules)
        if known and plan.shared and not any(isinstance(m, LazyModuleMixin) for _, m in modules):
            # a first run of a network of repeated blocks: the same text from the plan's skeleton, which
            # holds one module per distinct config (8 of 10 ms of a 512-block network's first answer was
            # its repr, each block's text made again); the same classes and constructors' arguments as
            # the module the run built (a lazy module changes class when it runs: not from the skeleton)
            text = _shared_repr(plan.skeleton, {})
        else:
            text = repr(module)
        if known:
            _TEXTS.put(plan.node, *key, value=text)
    return text


def _shared_repr(module: nn.Module, texts: dict[int, str]) -> str:
    """``repr(module)`` made as ``nn.Module.__repr__`` makes it, each module's text once however many
    paths it stands at (``texts``: by module id). A class with a ``__repr__`` of its own (``ModuleList``
    folds equal children) gives its own."""
    text = texts.get(id(module))
    if text is not None:
        return text
    if type(module).__repr__ is not nn.Module.__repr__:
        text = repr(module)
    else:
        # torch's Module.__repr__, line for line, with each child's text from ``texts``
        extra = module.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            "(" + key + "): " + _addindent(_shared_repr(child, texts), 2) for key, child in module._modules.items()
        ]
        lines = extra_lines + child_lines
        text = module._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        text += ")"
    texts[id(module)] = text
    return text


def shape_fields(plan: Plan, real: list[tuple[int, ...]] | None) -> dict[str, Any]:
    predicted = plan.predicted_shapes
    formulas = [[d.to_dict() for d in dims] for dims in plan.predicted] if plan.predicted else []
    fields: dict[str, Any] = {
        "predicted_shapes": predicted,
        "predicted_shape": (predicted[0] if predicted and len(predicted) == 1 else predicted),
        "formula": formulas[0] if formulas else [],
        "formulas": formulas,
    }
    if real is not None:
        fields["shape_check"] = None if predicted is None else [list(s) for s in real] == [list(s) for s in predicted]
    return fields


def outputs_json(
    outputs: list[tuple[str, torch.Tensor]], settings: Settings, budget: tensors.ValueBudget | None = None
) -> list[dict[str, Any]]:
    """Each output summarised once. ``outputs[0]`` is the same tensor as ``output``: it keeps its name, shape,
    dtype and numel (what clients list) and says ``"same_as": "output"`` instead of a second copy of the data."""
    out = [tensors.tensor_json(n, t, max_elements=settings.max_elements, budget=budget) for n, t in outputs]
    if out:
        first = out[0]
        out[0] = {k: first[k] for k in ("name", "shape", "dtype", "numel")} | {"same_as": "output"}
        out.insert(0, first)
    return out


def run_response(
    plan: Plan,
    module: nn.Module,
    xs: list[torch.Tensor],
    outputs: list[tuple[str, torch.Tensor]],
    settings: Settings,
    *,
    code: str,
    view: Any = None,
    path: str | None = None,
    modules: list[tuple[str, nn.Module]] | None = None,
) -> dict[str, Any]:
    """The answer of a run of ``module``; ``modules``: its walk (``named_modules``), where the run made it."""
    # one budget for the whole answer, spent on what matters most first: the outputs, the inputs, then
    # the parameters in the module's order
    budget = tensors.ValueBudget(settings.response_budget_bytes)
    first, *listed = outputs_json(outputs, settings, budget) or [None]
    inputs = [
        tensors.tensor_json(spec.name, t, max_elements=settings.max_elements, budget=budget)
        for spec, t in zip(plan.spec.inputs, xs)
    ]
    params = params_json(module, settings, with_data=True, budget=budget, modules=modules)
    for entry in [first, *listed, *inputs, *params]:
        if entry is not None:
            fetch_pointer(entry, path)
    return {
        "type": plan.spec.type,
        "repr": module_repr(plan, module, modules),
        "device": str(plan.device),
        "dtype": tensors.dtype_name(plan.dtype),
        "seed": plan.seed,
        "train": plan.train,
        "inputs": inputs,
        "output": first,
        "outputs": listed,
        "params": params,
        # the entries above are named_parameters(): each shared parameter once, as parameters() counts them
        "param_count": sum(p["numel"] for p in params),
        **shape_fields(plan, [tuple(t.shape) for _, t in outputs]),
        # the window map, with the values of the slice the client draws (``view``)
        "windows": window_values(window_map(plan, settings), module, xs, outputs[0][1] if outputs else None, view),
        "code": code,
        "warnings": plan.warnings,
    }


def shape_response(plan: Plan, settings: Settings, trace: list[dict[str, Any]] | None) -> dict[str, Any]:
    if plan.predicted_shapes is not None:
        out_shapes, source = plan.predicted_shapes, "formula"
    elif plan.meta_shapes is not None:
        out_shapes, source = [list(s) for s in plan.meta_shapes], "meta"
    else:
        out_shapes, source = [], "unknown"
    response = {
        "type": plan.spec.type,
        "repr": repr(plan.meta),
        "output_shape": out_shapes[0] if len(out_shapes) == 1 else out_shapes,
        "output_shapes": out_shapes,
        "output_names": plan.spec.outputs[: len(out_shapes)],
        "source": source,
        "params": params_json(plan.meta, settings, with_data=False),
        "param_count": sum(p.numel() for p in plan.meta.parameters()),
        "estimate_bytes": plan.estimate_bytes,
        **shape_fields(plan, [tuple(s) for s in plan.meta_shapes] if plan.meta_shapes is not None else None),
        "windows": window_map(plan, settings),
        "warnings": plan.warnings,
    }
    if plan.meta_shapes is not None:
        response["meta_shapes"] = [list(s) for s in plan.meta_shapes]
    if trace is not None and is_network(plan.meta):
        response.update(trace=trace, totals=totals(trace, plan.meta), subtotals=subtotals(trace))
    return response


def trace_fields(module: nn.Module, extra: dict[str, Any]) -> dict[str, Any]:
    """The trace of a network's real run, its totals and each container's (``subtotals``)."""
    if not is_network(module) or "trace" not in extra:
        return {}
    trace = extra["trace"]
    return {"trace": trace, "totals": totals(trace, module, extra.get(MODULES)), "subtotals": subtotals(trace)}
