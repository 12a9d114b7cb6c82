"""The real forward pass: seed, build, draw — in exactly a notebook's order — then run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import torch
from torch import nn

from app.core import budget, tensors
from app.core.catalog.families.opaque import NOT_COMPUTED, Opaque
from app.core.catalog.spec import Registry
from app.core.config import Settings
from app.core.errors import InvalidRequest, LayerExplorerError, NotExplainable
from app.core.networks.trace import CONFIG, MODULES, PerConfig, known_classes, named_modules, tracing
from app.core.networks.tree import build
from app.core.running import overrides
from app.core.running.plan import Plan, collect_warnings, plan_request
from app.core.schema import RunRequest
from app.core.torch_errors import TORCH_FAULTS

# torch's default generator is process-global: seeding, building and drawing must not interleave
# between threads of one process. (Worker processes each have their own generator and lock.)
_RNG_LOCK = threading.Lock()

#: a context manager factory wrapping the forward call: (root module, sink dict) -> context
Hooks = Callable[[nn.Module, dict[str, Any]], Any]


@dataclass
class Execution:
    plan: Plan
    module: nn.Module
    inputs: list[torch.Tensor]
    outputs: list[tuple[str, torch.Tensor]]
    extra: dict[str, Any] = field(default_factory=dict)


def seed(value: int, device: torch.device) -> None:
    """What ``torch.manual_seed(value)`` does for the generators this request draws from.

    Modules are built and inputs drawn on the CPU (then moved), so the CPU generator gives every number
    a plain script with ``torch.manual_seed`` gives; a CUDA run also seeds CUDA for what its forward
    draws (dropout). ``torch.manual_seed`` itself also queues lazy seeding of every accelerator backend
    torch knows (CUDA, XPU, MTIA), formatting a stack trace for each: half a millisecond per request.
    """
    torch.default_generator.manual_seed(value)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(value)


def materialise(plan: Plan) -> tuple[nn.Module, list[torch.Tensor]]:
    """Seed, build, draw — in exactly a notebook's order — then move to device and dtype."""
    module, xs, _ = _materialise(plan)
    return module, xs


def _materialise(plan: Plan) -> tuple[nn.Module, list[torch.Tensor], list[tuple[str, nn.Module]]]:
    """:func:`materialise`, and the module's walk (``named_modules``) it made, for the run to reuse."""
    with _RNG_LOCK, collect_warnings(plan.warnings):
        seed(plan.seed, plan.device)
        module = build(plan.node)
        drawn = [p.data if p.data is not None else tensors.draw(p.kind, p.shape, p.high) for p in plan.inputs]
    # one walk of the module for everything after the build: nothing adds or removes a submodule once it
    # is built (``to`` and ``train`` change modules in place, parameters set by hand are copied into theirs)
    modules = named_modules(module)
    moving, switching = _settled_kept(plan, module, modules)
    if moving:
        moved = module.to(device=plan.device, dtype=plan.dtype)
        if moved is not module:  # torch's ``to`` moves in place and returns the module; a layer's own may not
            module, modules = moved, named_modules(moved)
    overrides.apply(module, plan.parameters)  # after the draws: no generator is touched
    if switching:
        module.train(plan.train)
    xs = []
    for p, t in zip(plan.inputs, drawn):
        t = t.to(device=plan.device)
        if t.is_floating_point() and p.data is None:
            t = t.to(dtype=plan.dtype)
        elif t.is_floating_point() and p.dtype.is_floating_point:
            t = t.to(dtype=p.dtype)
        xs.append(t)
    return module, xs, modules


def _settled(
    module: nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    train: bool,
    modules: list[tuple[str, nn.Module]] | None = None,
) -> tuple[bool, bool]:
    """Whether ``module.to(device, dtype)`` would change a tensor, and ``module.train(train)`` a module.

    A module built on the CPU in float32 and run there in training mode (a notebook's default) is
    already what both calls make of it; in a 512-block network their walks cost 12 ms and 4 ms, this one
    walk about 1. ``to`` changes a parameter or buffer on another device, or a floating-point or complex
    one of another dtype (``nn.Module.to``'s own rule); ``train`` is called where a module is in the
    other mode or has its own ``train`` (which may do more than set the flag). ``modules``: the
    module's walk, where the caller made it."""
    moving = switching = False
    for _, m in modules if modules is not None else named_modules(module):
        if m.training != train or type(m).train is not nn.Module.train:
            switching = True
        if not moving:
            # the module's own tensors, as nn.Module._apply reads them (parameters(recurse=False) would walk
            # the module's submodules' names for each module: ten times this walk)
            for t in (*m._parameters.values(), *m._buffers.values()):
                if t is None:
                    continue
                if t.device != device or (t.dtype != dtype and (t.is_floating_point() or t.is_complex())):
                    moving = True
                    break
        if moving and switching:
            break
    return moving, switching


#: per config tree, device, dtype and mode: what :func:`_settled` said of the module built from it
_SETTLED = PerConfig()


def _settled_kept(plan: Plan, module: nn.Module, modules: list[tuple[str, nn.Module]]) -> tuple[bool, bool]:
    """:func:`_settled` of a module just built from ``plan.node``, kept for the next run of the same plan: a
    config of torch.nn's and the app's classes builds the same tensors' devices and dtypes, and the same
    modes, every time (2-4 ms of a 512-block network's run, each of its 4600 tensors read)."""
    key = (plan.device, plan.dtype, plan.train)
    kept = _SETTLED.get(plan.node, *key)
    if kept is None:
        kept = _settled(module, plan.device, plan.dtype, plan.train, modules)
        if known_classes(modules):
            _SETTLED.put(plan.node, *key, value=kept)
    return kept


#: inputs of at most this many bytes in all are copied for the forward whatever it does (it costs nothing)
LEND_BYTES = 1 << 20


def execute(registry: Registry, req: RunRequest, settings: Settings, *, hooks: Hooks | None = tracing) -> Execution:
    """Plan, build and run; ``hooks`` wraps the forward call (by default, a network's trace)."""
    plan = planned(registry, req, settings)
    ex = _run(plan, hooks, copy=None)
    if ex is None:  # the forward changed an input it was lent: built and run again (the same numbers), on copies
        ex = _run(plan, hooks, copy=True)
    return ex


#: how many recent run plans a process keeps (a deep network's: its config tree, predicted trace and skeleton)
PLAN_CACHE_SIZE = 4
_PLANS: OrderedDict[Any, tuple[Registry, Settings, Plan]] = OrderedDict()
_PLANS_LOCK = threading.Lock()


def _plan_key(registry: Registry, req: RunRequest, settings: Settings) -> Any:
    """Everything :func:`plan_request` reads of a run request but its seed; None where the plan is not kept.

    Kept only for drawn inputs and seeded parameters: data, images, texts and given parameters are
    decoded into the plan's own tensors. The config is keyed by its JSON (orjson: 0.03 ms for a
    512-block network, ``repr`` 5 ms), which tells 1 from 1.0 from true; orjson writes NaN and
    infinities (which Python's JSON reader accepts) as null, so a config with a NaN is not kept."""
    if req.parameters is not None:
        return None
    inputs = None
    if req.inputs is not None:
        if any(i.data is not None or i.image is not None or i.text is not None for i in req.inputs):
            return None
        inputs = tuple((None if i.shape is None else tuple(i.shape), i.dtype) for i in req.inputs)
    try:
        config = orjson.dumps(req.layer)
        if b"null" in config:
            # a null, or a NaN or infinity orjson wrote as null: the standard library's encoder refuses the latter
            json.dumps(req.layer, allow_nan=False)
    except (TypeError, ValueError):  # an integer past 64 bits, a NaN, (in-process) not JSON: planned afresh
        return None
    # settings by value (a frozen dataclass): a worker gets its own unpickled copy with every task
    return (id(registry), settings, config, inputs, req.device, req.dtype, req.train)


def planned(registry: Registry, req: RunRequest, settings: Settings) -> Plan:
    """:func:`plan_request` for a run, the same plan again for the same request but its seed.

    A network's plan (resolving, checking and predicting 1538 layers, its memory estimate) was a third
    of a 512-block network's run, and the seed is the only thing a user changes between many runs
    (a layer drilled into, a tensor fetched as .npy, a new draw). The plan is a function of what the key
    holds; the answer's numbers come from the seeded build and forward, which run every time. Each
    request gets its own copy of the plan's mutable parts (warnings, inputs) and reserves its memory
    estimate again, as planning does."""
    key = _plan_key(registry, req, settings)
    with _PLANS_LOCK:
        kept = _PLANS.get(key) if key is not None else None
        if kept is not None:
            _PLANS.move_to_end(key)
    if kept is None:
        # the real forward records every submodule call itself: no meta pass for the inner trace
        plan = plan_request(registry, req, settings, inner_trace=False)
        if key is not None:
            with _PLANS_LOCK:
                # the registry is held with its plan: its id in the key stays its own
                _PLANS[key] = (registry, settings, _own_copy(plan, plan.seed))
                while len(_PLANS) > PLAN_CACHE_SIZE:
                    _PLANS.popitem(last=False)
        return plan
    plan = _own_copy(kept[2], req.seed)
    budget.reserve(plan.estimate_bytes)  # what plan_request does last (a no-op outside a worker)
    return plan


def _own_copy(plan: Plan, seed: int) -> Plan:
    """The plan with ``seed``, and its own lists of what a run adds to (warnings) or sets (input bounds)."""
    return dataclasses.replace(
        plan,
        seed=seed,
        warnings=list(plan.warnings),
        inputs=[dataclasses.replace(p) for p in plan.inputs],
        parameters=dict(plan.parameters),
    )


def _run(plan: Plan, hooks: Hooks | None, *, copy: bool | None) -> Execution | None:
    """Build and run once. The layer gets copies of the inputs where it may change them in place
    (``ReLU(inplace=True)``), which would otherwise change the inputs this run reports as the ones it
    received. ``copy=None`` decides: small inputs are copied; large ones (a copy of 16 M elements costs
    25 ms, a fifth of the run) are lent unless a layer says ``inplace=True``, and a lent input that
    the forward changed all the same (its version counter moved) gives ``None``: the caller runs again
    with ``copy=True``, a seeded build drawing the same numbers."""
    module, xs, modules = _materialise(plan)
    if copy is None:
        # an input given in the request (data, an image) is the plan's own tensor: were it changed, a second
        # build would not have it back, so it is always copied
        copy = (
            any(p.data is not None for p in plan.inputs)
            or sum(x.numel() * x.element_size() for x in xs) <= LEND_BYTES
            or _in_place(modules)
        )
    versions = [x._version for x in xs]
    # the hooks and the answer read the walk made after the build instead of walking the module again
    # (and the config tree it was built from: what follows from the config alone is kept per tree)
    extra: dict[str, Any] = {MODULES: modules, CONFIG: plan.node}
    try:
        with (
            torch.no_grad(),
            collect_warnings(plan.warnings),
            hooks(module, extra) if hooks is not None else contextlib.nullcontext(),
        ):
            result = module(*(tensors.snapshot(xs) if copy else xs))
    except LayerExplorerError:
        raise
    except (*TORCH_FAULTS, torch.cuda.OutOfMemoryError) as exc:  # every torch complaint becomes a 4xx
        raise plan.forward_error(exc) from None
    if not copy and any(x._version != v for x, v in zip(xs, versions)):
        return None
    outputs = tensors.flatten_outputs(result, plan.spec.outputs)
    return Execution(plan=plan, module=module, inputs=xs, outputs=outputs, extra=extra)


def _in_place(modules: list[tuple[str, nn.Module]]) -> bool:
    """Whether a layer of the module (its walk) says it works in place (torch.nn's ``inplace=True``)."""
    return any(getattr(m, "inplace", False) is True for _, m in modules)


@dataclass
class Child:
    """A layer inside a network as it really ran: its module, inputs and outputs."""

    path: str
    module: nn.Module
    args: tuple[Any, ...]
    output: Any
    execution: Execution

    @property
    def inputs(self) -> list[torch.Tensor]:
        return [a for a in self.args if isinstance(a, torch.Tensor)]


def run_child(registry: Registry, req: RunRequest, settings: Settings) -> Child:
    """Run the whole network and capture what the child at ``req.path`` received and returned."""
    captured: dict[str, Any] = {}

    @contextlib.contextmanager
    def capture(root: nn.Module, sink: dict[str, Any]) -> Iterator[None]:
        modules = dict(root.named_modules())
        if req.path not in modules or not req.path:
            children = [p for p in modules if p]
            raise InvalidRequest(
                f"the network has no layer at path {req.path!r}; its layers are: {', '.join(children) or 'none'}",
                field="path",
            )
        target = modules[req.path]
        opaque = next(
            (p for p in modules if isinstance(modules[p], Opaque) and (req.path + ".").startswith(p + ".")), None
        )
        if opaque is not None:
            raise NotExplainable(
                f"layer {opaque} ({modules[opaque].type_name}) is {NOT_COMPUTED}: the server never runs its code, "
                "so there is no output of its own to show or explain; drill into the layers around it",
                field="path",
            )

        # copies taken at the call: the network may change them in place afterwards (``out += identity``
        # changes fc2's output; ``ReLU(inplace=True)`` changes the input it received)
        def before(mod: nn.Module, args: tuple[Any, ...]) -> None:
            if "args" not in captured:
                captured["args"] = tensors.snapshot(args)

        def after(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if "output" not in captured:
                captured["output"] = tensors.snapshot(output)

        handles = [target.register_forward_pre_hook(before), target.register_forward_hook(after)]
        captured["module"] = target
        try:
            with tracing(root, sink):
                yield
        finally:
            for handle in handles:
                handle.remove()

    ex = execute(registry, req, settings, hooks=capture)
    if "args" not in captured:
        raise InvalidRequest(f"layer {req.path} was not called during the forward pass", field="path")
    return Child(req.path, captured["module"], captured["args"], captured["output"], ex)
