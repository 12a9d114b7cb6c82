"""Entry points: run, shape, explain. Plain functions of (registry, request dict, settings).

The order of work is the same for every request, and it is the order a notebook uses:

1. validate the config against the catalog (nothing built yet);
2. build the module on the *meta* device, predict shapes with the layer's formula, estimate the
   memory of every tensor involved, and refuse what is over the limit (413) — nothing allocated;
3. ``torch.manual_seed(seed)``, build the real module, draw each ``{"shape"}`` input in order;
4. move to the device/dtype and run ``forward()`` under ``torch.no_grad()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from app.core import budget, codegen, tensors
from app.core.build import tensor_from_json, torch_message
from app.core.catalog import LayerSpec, Registry
from app.core.config import Settings
from app.core.errors import (
    DeviceUnavailable,
    InvalidRequest,
    LayerExplorerError,
    ShapeMismatch,
    TooLarge,
)
from app.core.expr import Dim
from app.core.rules import ShapeContext, fmt_shape
from app.core.schema import ExplainRequest, RunRequest, TensorInput, parse

# torch's default generator is process-global: seeding, building and drawing must not interleave
# between threads of one process. (Worker processes each have their own generator and lock.)
_RNG_LOCK = threading.Lock()


@contextlib.contextmanager
def collect_warnings(sink: list[str]):
    """torch's warnings (e.g. 'same' padding with an even kernel) go to the response, not to stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        message = str(w.message).split(" (Triggered internally", 1)[0].strip()
        if message not in sink:
            sink.append(message)


# ---------------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------------


def list_devices(settings: Settings) -> dict[str, Any]:
    devices: list[dict[str, Any]] = [{"id": "cpu", "kind": "cpu", "name": "CPU"}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {"id": f"cuda:{i}", "kind": "cuda", "name": props.name, "memory_bytes": int(props.total_memory)}
            )
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append({"id": "mps", "kind": "mps", "name": "Apple Metal (MPS)"})
    return {"default": settings.device, "devices": devices}


def resolve_device(name: str | None, settings: Settings) -> torch.device:
    name = (name or settings.device or "cpu").strip().lower()
    available = [d["id"] for d in list_devices(settings)["devices"]]
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if "mps" in available:
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        name = "cuda:0"
    if name in available:
        return torch.device(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        reason = "this server has no CUDA device (torch.cuda.is_available() is False)"
    elif name.startswith(("cuda", "mps", "cpu")):
        reason = f"this server has no device {name!r}"
    else:
        reason = f"{name!r} is not a device name (use cpu, cuda, cuda:N, mps or auto)"
    raise DeviceUnavailable(f"{reason}; available: {', '.join(available)}", field="device")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in tensors.DTYPES:
        raise InvalidRequest(
            f"dtype must be one of {', '.join(tensors.DTYPES)}; got {name!r}", field="dtype"
        )
    return tensors.DTYPES[name]


# ---------------------------------------------------------------------------------------------
# planning (meta device): validation, shape prediction, memory estimate
# ---------------------------------------------------------------------------------------------


@dataclass
class InputPlan:
    shape: tuple[int, ...]
    kind: str
    dtype: torch.dtype
    data: torch.Tensor | None = None
    high: int | None = None


@dataclass
class Plan:
    spec: LayerSpec
    kwargs: dict[str, Any]
    meta: nn.Module
    inputs: list[InputPlan]
    dtype: torch.dtype
    device: torch.device
    seed: int
    train: bool
    predicted: list[list[Dim]] | None
    meta_shapes: list[tuple[int, ...]] | None
    estimate_bytes: int
    warnings: list[str] = field(default_factory=list)

    @property
    def predicted_shapes(self) -> list[list[int]] | None:
        if self.predicted is None:
            return None
        return [[d.expr.int_value() for d in dims] for dims in self.predicted]


def _bytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    return math.prod(shape) * (torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


def _resolve_high(spec_high: Any, kwargs: dict[str, Any], meta: nn.Module, shapes: list[tuple[int, ...]]) -> int | None:
    if spec_high is None:
        return None
    if isinstance(spec_high, int):
        return spec_high
    if spec_high.startswith("input"):
        # "input0.shape[1]"
        idx = int(spec_high[5 : spec_high.index(".")])
        dim = int(spec_high[spec_high.index("[") + 1 : -1])
        shape = shapes[idx]
        return shape[dim] if -len(shape) <= dim < len(shape) else 1
    value = kwargs.get(spec_high, getattr(meta, spec_high, None))
    return int(value) if isinstance(value, int) else None


def plan_request(registry: Registry, req: RunRequest, settings: Settings, *, enforce_limit: bool = True) -> Plan:
    """Validate and predict on the meta device; with ``enforce_limit``, refuse what would not fit."""
    from app.core import containers

    device = resolve_device(req.device, settings)
    dtype = resolve_dtype(req.dtype)
    spec, kwargs = containers.resolve(registry, req.layer, field="layer")

    raw_inputs = req.inputs
    if raw_inputs is None:
        raw_inputs = [TensorInput.model_validate(i) for i in spec.example["inputs"]]
    required = [i for i in spec.inputs if not i.optional]
    if not (len(required) <= len(raw_inputs) <= len(spec.inputs)):
        names = ", ".join(f"{i.name} {i.convention}" for i in spec.inputs)
        count = str(len(required)) if len(required) == len(spec.inputs) else f"{len(required)} to {len(spec.inputs)}"
        raise InvalidRequest(
            f"{spec.type}.forward() takes {count} input(s) ({names}); got {len(raw_inputs)}", field="inputs"
        )

    # Inputs given as data are checked (and their size counted) before anything else is built.
    shapes: list[tuple[int, ...]] = []
    plans: list[InputPlan] = []
    for i, (raw, ispec) in enumerate(zip(raw_inputs, spec.inputs)):
        want = torch.int64 if ispec.is_integer else dtype
        if raw.dtype is not None:
            if raw.dtype not in tensors.INPUT_DTYPES:
                raise InvalidRequest(
                    f"inputs[{i}].dtype must be one of {', '.join(tensors.INPUT_DTYPES)}; got {raw.dtype!r}",
                    field=f"inputs[{i}].dtype",
                )
            want = tensors.INPUT_DTYPES[raw.dtype]
        if raw.data is not None:
            t = tensor_from_json(
                raw.data, field=f"inputs[{i}].data", what=f"input {i} ({ispec.name})", dtype=want,
                max_elements=settings.max_data_elements,
            )
            plans.append(InputPlan(tuple(t.shape), ispec.kind, want, data=t))
        else:
            plans.append(InputPlan(tuple(raw.shape or ()), ispec.kind, want))
        shapes.append(plans[-1].shape)

    input_bytes = sum(_bytes(p.shape, p.dtype) for p in plans)
    limit = settings.memory_limit_bytes if enforce_limit else float("inf")
    if input_bytes > limit:
        raise TooLarge(
            f"the inputs would take {_human(input_bytes)}; this server's limit is "
            f"{_human(settings.memory_limit_bytes)}",
            field="inputs",
            estimate_bytes=input_bytes,
            limit_bytes=settings.memory_limit_bytes,
        )

    caught: list[str] = []
    with torch.device("meta"), collect_warnings(caught):
        meta = containers.instantiate(registry, spec, kwargs, field="layer")
    meta = meta.to(dtype=dtype)
    param_bytes = sum(p.numel() * p.element_size() for p in meta.parameters()) + sum(
        b.numel() * b.element_size() for b in meta.buffers()
    )
    if param_bytes + input_bytes > limit:
        raise TooLarge(
            f"{spec.type}'s parameters would take {_human(param_bytes)} (plus {_human(input_bytes)} of inputs); "
            f"this server's limit is {_human(settings.memory_limit_bytes)}",
            field="layer",
            estimate_bytes=param_bytes + input_bytes,
            limit_bytes=settings.memory_limit_bytes,
        )

    for p, ispec in zip(plans, spec.inputs):
        p.high = _resolve_high(ispec.high, kwargs, meta, shapes)

    predicted = None
    if spec.rule is not None:
        ctx = ShapeContext(spec=spec, module=meta, args=kwargs, shapes=shapes)
        try:
            predicted = spec.rule(ctx)
        except (LayerExplorerError, ZeroDivisionError):
            raise
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise ShapeMismatch(
                f"{spec.type} cannot take input shape(s) {', '.join(fmt_shape(s) for s in shapes)}: {exc}",
                field="inputs",
            ) from None

    # Meta kernels allocate nothing, but some (bilinear's decomposition) still take time that grows
    # with the sizes; far past the limit, the formula alone answers /api/shape.
    skip_meta = predicted is not None and param_bytes + input_bytes > 64 * settings.memory_limit_bytes
    try:
        with collect_warnings(caught):
            meta_shapes = None if skip_meta else _meta_forward(spec, meta, plans, req.train)
    except _MetaRefused as refused:
        plan = Plan(spec=spec, kwargs=kwargs, meta=meta, inputs=plans, dtype=dtype, device=device, seed=req.seed,
                    train=req.train, predicted=predicted, meta_shapes=None, estimate_bytes=0)
        raise forward_error(plan, refused.exc) from None
    out_shapes = meta_shapes or (
        [tuple(d.expr.int_value() for d in dims) for dims in predicted] if predicted else []
    )
    output_bytes = sum(_bytes(tuple(s), dtype) for s in out_shapes)
    total = param_bytes + input_bytes + output_bytes
    if total > limit:
        raise TooLarge(
            f"this request needs about {_human(total)} (parameters {_human(param_bytes)}, inputs "
            f"{_human(input_bytes)}, outputs {_human(output_bytes)}); this server's limit is "
            f"{_human(settings.memory_limit_bytes)}",
            estimate_bytes=total,
            limit_bytes=settings.memory_limit_bytes,
        )
    budget.reserve(total if enforce_limit else 0)  # the server-wide budget (a no-op outside a worker)
    return Plan(
        spec=spec, kwargs=kwargs, meta=meta, inputs=plans, dtype=dtype, device=device, seed=req.seed,
        train=req.train, predicted=predicted, meta_shapes=meta_shapes, estimate_bytes=total, warnings=caught,
    )


def _meta_forward(spec: LayerSpec, meta: nn.Module, plans: list[InputPlan], train: bool) -> list[tuple[int, ...]] | None:
    """Output shapes from a forward pass on the meta device; None where torch has no meta kernel."""
    xs = [torch.empty(p.shape, dtype=p.dtype, device="meta") for p in plans]
    meta.train(train)
    try:
        with torch.no_grad():
            result = meta(*xs)
    except LayerExplorerError:
        raise
    except NotImplementedError:  # no meta kernel for some op: the formula (and the real run) decide
        return None
    except Exception as exc:  # noqa: BLE001
        if "meta" in str(exc).lower():  # data-dependent ops (.item()) cannot run on meta
            return None
        raise _MetaRefused(exc) from None
    return [tuple(t.shape) for _, t in tensors.flatten_outputs(result, spec.outputs)]


class _MetaRefused(Exception):
    """torch refused the input on the meta device, as it would on a real one."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


# ---------------------------------------------------------------------------------------------
# the real forward pass
# ---------------------------------------------------------------------------------------------


@dataclass
class Execution:
    plan: Plan
    module: nn.Module
    inputs: list[torch.Tensor]
    outputs: list[tuple[str, torch.Tensor]]
    extra: dict[str, Any] = field(default_factory=dict)


def _materialise(plan: Plan) -> tuple[nn.Module, list[torch.Tensor]]:
    """Seed, build, draw — in exactly a notebook's order — then move to device and dtype."""
    from app.core import containers

    with _RNG_LOCK, collect_warnings(plan.warnings):
        torch.manual_seed(plan.seed)
        module = containers.instantiate(None, plan.spec, plan.kwargs, field="layer")
        drawn = []
        for p in plan.inputs:
            if p.data is not None:
                drawn.append(p.data)
            else:
                t = tensors.draw(p.kind, p.shape, p.high)
                drawn.append(t)
    module = module.to(device=plan.device, dtype=plan.dtype)
    module.train(plan.train)
    xs = []
    for p, t in zip(plan.inputs, drawn):
        t = t.to(device=plan.device)
        if t.is_floating_point() and p.data is None:
            t = t.to(dtype=plan.dtype)
        elif t.is_floating_point() and p.dtype.is_floating_point:
            t = t.to(dtype=p.dtype)
        xs.append(t)
    return module, xs


def execute(registry: Registry, req: RunRequest, settings: Settings, *, hooks: Any = None) -> Execution:
    plan = plan_request(registry, req, settings)
    module, xs = _materialise(plan)
    extra: dict[str, Any] = {}
    try:
        with torch.no_grad(), collect_warnings(plan.warnings):
            if hooks is not None:
                with hooks(module, extra):
                    result = module(*xs)
            else:
                result = module(*xs)
    except LayerExplorerError:
        raise
    except torch.cuda.OutOfMemoryError:
        raise TooLarge(f"{plan.device} ran out of memory running {plan.spec.type}") from None
    except Exception as exc:  # noqa: BLE001 - every torch complaint becomes a 4xx in the user's words
        raise forward_error(plan, exc) from None
    return Execution(plan=plan, module=module, inputs=xs, outputs=tensors.flatten_outputs(result, plan.spec.outputs), extra=extra)


def forward_error(plan: Plan, exc: BaseException) -> LayerExplorerError:
    from app.core.errors import InvalidArgument

    message = torch_message(exc)
    shapes = ", ".join(fmt_shape(p.shape) for p in plan.inputs)
    if "not implemented for" in message:
        return InvalidRequest(
            f"{plan.spec.type} cannot run in {tensors.dtype_name(plan.dtype)} on {plan.device}: {message}",
            field="dtype",
        )
    if isinstance(exc, LayerExplorerError):
        return exc
    err = ShapeMismatch(f"{plan.spec.type} cannot run on input shape(s) {shapes}: {message}", field="inputs")
    if isinstance(exc, (ValueError, TypeError)) and "shape" not in message and "size" not in message:
        err = InvalidArgument(f"{plan.spec.type} cannot run: {message}", field="layer")
    return err


# ---------------------------------------------------------------------------------------------
# responses
# ---------------------------------------------------------------------------------------------


def _params_json(module: nn.Module, settings: Settings, *, with_data: bool) -> list[dict[str, Any]]:
    out = []
    for name, p in module.named_parameters():
        entry = {"name": name, "shape": list(p.shape), "numel": int(p.numel()), "dtype": tensors.dtype_name(p.dtype)}
        if with_data and p.device.type != "meta":
            t = tensors.tensor_json(name, p, max_elements=settings.max_elements)
            entry.update({k: t[k] for k in ("data", "summary", "preview") if k in t})
            if "preview_step" in t:
                entry["preview_step"] = t["preview_step"]
        out.append(entry)
    return out


def _formula(plan: Plan) -> list[dict[str, Any]]:
    if not plan.predicted:
        return []
    return [d.to_dict() for d in plan.predicted[0]]


def _shape_fields(plan: Plan, real: list[tuple[int, ...]] | None) -> dict[str, Any]:
    predicted = plan.predicted_shapes
    fields: dict[str, Any] = {
        "predicted_shapes": predicted,
        "predicted_shape": (predicted[0] if predicted and len(predicted) == 1 else predicted),
        "formula": _formula(plan),
        "formulas": [[d.to_dict() for d in dims] for dims in plan.predicted] if plan.predicted else [],
    }
    if real is not None:
        fields["shape_check"] = (
            None if predicted is None else [list(s) for s in real] == [list(s) for s in predicted]
        )
    return fields


def run(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    from app.core import containers

    req = parse(RunRequest, body)
    if req.path:
        return _run_child(registry, req, settings)
    ex = execute(registry, req, settings, hooks=containers.tracing)
    response = _run_response(ex.plan, ex.module, ex.inputs, ex.outputs, settings,
                             code=codegen.script(ex.plan, req))
    response.update(containers.trace_fields(ex.plan, ex))
    return response


def _run_response(plan: Plan, module: nn.Module, xs: list[torch.Tensor], outputs: list[tuple[str, torch.Tensor]],
                  settings: Settings, *, code: str) -> dict[str, Any]:
    from app.core import windows

    return {
        "type": plan.spec.type,
        "repr": repr(module),
        "device": str(plan.device),
        "dtype": tensors.dtype_name(plan.dtype),
        "seed": plan.seed,
        "train": plan.train,
        "inputs": [
            tensors.tensor_json(spec.name, t, max_elements=settings.max_elements)
            for spec, t in zip(plan.spec.inputs, xs)
        ],
        "output": tensors.tensor_json(*outputs[0], max_elements=settings.max_elements) if outputs else None,
        "outputs": [tensors.tensor_json(n, t, max_elements=settings.max_elements) for n, t in outputs],
        "params": _params_json(module, settings, with_data=True),
        "param_count": sum(p.numel() for p in module.parameters()),
        **_shape_fields(plan, [tuple(t.shape) for _, t in outputs]),
        "windows": windows.window_map(plan, settings),
        "code": code,
        "warnings": plan.warnings,
    }


def _run_child(registry: Registry, req: RunRequest, settings: Settings) -> dict[str, Any]:
    """One layer of a network as it ran inside it: the input it received, its weights there, its output."""
    from app.core import containers

    child = containers.run_child(registry, req, settings)
    network = child.execution.plan
    found = containers.child_config(network.spec, network.kwargs, req.path)
    type_name = type(child.module).__name__
    if found is not None:
        spec, kwargs = found
    elif type_name in registry:
        spec, kwargs = registry.get(type_name), {}
    else:
        spec, kwargs = dataclasses.replace(network.spec, type=type_name, rule=None, explain=None), {}
    xs = child.inputs
    shapes = [tuple(x.shape) for x in xs]
    predicted = None
    if spec.rule is not None:
        try:
            predicted = spec.rule(ShapeContext(spec=spec, module=child.module, args=kwargs, shapes=shapes))
        except Exception:  # noqa: BLE001 - a layer built inside another (fc1 of a block) has no config here
            predicted = None
    plan = Plan(
        spec=spec, kwargs=kwargs, meta=child.module,
        inputs=[InputPlan(s, "normal", x.dtype) for s, x in zip(shapes, xs)],
        dtype=network.dtype, device=network.device, seed=network.seed, train=network.train,
        predicted=predicted, meta_shapes=None, estimate_bytes=network.estimate_bytes, warnings=network.warnings,
    )
    outputs = tensors.flatten_outputs(child.output, spec.outputs)
    response = _run_response(plan, child.module, xs, outputs, settings,
                             code=codegen.script(network, req, child_path=req.path))
    response.update(path=req.path, network_type=network.spec.type)
    return response


def output_tensor(registry: Registry, body: Any, settings: Settings, name: str | None) -> tuple[str, torch.Tensor]:
    """One output tensor in full (for ``?format=npy``)."""
    req = parse(RunRequest, body)
    ex = execute(registry, req, settings)
    if not ex.outputs:
        raise InvalidRequest(f"{ex.plan.spec.type} returned no tensor")
    if name is None:
        return ex.outputs[0]
    for n, t in ex.outputs:
        if n == name:
            return n, t
    raise InvalidRequest(
        f"no output named {name!r}; outputs are {', '.join(n for n, _ in ex.outputs)}", field="tensor"
    )


def shape(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    from app.core import containers, windows

    req = parse(RunRequest, body)
    # nothing is allocated here, so the memory limit does not apply: the estimate is reported
    plan = plan_request(registry, req, settings, enforce_limit=False)
    if plan.meta_shapes is not None:
        out_shapes = [list(s) for s in plan.meta_shapes]
        source = "meta"
    elif plan.predicted_shapes is not None:
        out_shapes = plan.predicted_shapes
        source = "formula"
    else:
        out_shapes = []
        source = "unknown"
    response = {
        "type": plan.spec.type,
        "repr": repr(plan.meta),
        "output_shape": out_shapes[0] if len(out_shapes) == 1 else out_shapes,
        "output_shapes": out_shapes,
        "output_names": plan.spec.outputs[: len(out_shapes)],
        "source": source,
        "params": _params_json(plan.meta, settings, with_data=False),
        "param_count": sum(p.numel() for p in plan.meta.parameters()),
        "estimate_bytes": plan.estimate_bytes,
        **_shape_fields(plan, [tuple(s) for s in plan.meta_shapes] if plan.meta_shapes is not None else None),
        "windows": windows.window_map(plan, settings),
        "warnings": plan.warnings,
    }
    response.update(containers.shape_trace_fields(plan))
    return response


def warm_up(registry: Registry, settings: Settings) -> None:
    """Run a few catalog examples once: torch initialises its meta and CPU kernels lazily (about
    0.4 s on the first conv), which would otherwise land on the first user's request."""
    for type_name in ("Linear", "Conv2d", "MaxPool2d"):
        example = registry.get(type_name).example
        shape(registry, example, settings)
        run(registry, example, settings)


def explain(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    from app.core import explain as explain_mod

    req = parse(ExplainRequest, body)
    return explain_mod.explain(registry, req, settings)
