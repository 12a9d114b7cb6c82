"""The requests the API serves, as plain functions of (registry, request body, settings).

Each takes the decoded JSON body and returns plain JSON-able data (or bytes), so that it can run in
a worker process as it runs here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import threading
from collections.abc import Iterator
from typing import Any

import torch

from app.core import tensors
from app.core.catalog.spec import LayerSpec, Registry
from app.core.config import Settings
from app.core.errors import InvalidRequest, NotExplainable, TooLarge
from app.core.explaining.explain import explain_module
from app.core.networks import graph
from app.core.networks.trace import MODULES, tracing
from app.core.networks.tree import LayerNode, find, predict
from app.core.running import attention
from app.core.running.execute import execute, run_child
from app.core.running.memory import reserve_more
from app.core.running.plan import InputPlan, Plan, builds_submodules, plan_request
from app.core.running.respond import run_response, shape_response, trace_fields
from app.core.running.script import script
from app.core.schema import ExplainRequest, RunRequest, parse
from app.core.shapes.context import ntuple

_GC_LOCK = threading.Lock()
#: requests of this process inside :func:`collector_paused` now, and whether the collector ran before the first
_gc_pause: dict[str, Any] = {"holders": 0, "was_enabled": True}


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a request builds its answer.

    A network's answer is hundreds of thousands of small objects (trace entries, graph nodes, tensor
    entries), and each 700 of them start a collection whose older generations walk all that the
    request made so far: in a worker (gc.freeze() after warm-up) a 512-block Conv net's run measured
    2.5 full collections and 88 ms of its 513 ms in the collector, a 512-block Linear net 36 of 220.
    What a request leaves in cycles is collected after it, when the collector runs again (and the
    worker collects in full after a large request: app.core.tasks). Requests running in threads of one
    process share the pause: the collector runs again when the last of them ends.
    """
    with _GC_LOCK:
        if _gc_pause["holders"] == 0:
            _gc_pause["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pause["holders"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pause["holders"] -= 1
            if _gc_pause["holders"] == 0 and _gc_pause["was_enabled"]:
                gc.enable()


def run(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    """Build the layer, run a real forward pass, and describe everything it touched."""
    with collector_paused():
        return _run(registry, body, settings)


def _run(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    req = parse(RunRequest, body)
    if req.path:
        return _run_child(registry, req, settings)
    ex = execute(registry, req, settings, hooks=_tracing_and_attention)
    response = run_response(
        ex.plan,
        ex.module,
        ex.inputs,
        ex.outputs,
        settings,
        code=script(ex.plan),
        view=req.window_slice,
        modules=ex.extra.get(MODULES),  # the run's walk of the module: not walked again for the answer
    )
    response.update(trace_fields(ex.module, ex.extra))
    # the answer's repr is the network's: the graph's cache key reuses it
    response.update(graph.graph_fields(ex.plan, ex, registry, text=response["repr"]))
    texts = [
        {"input": i, "tokens": p.tokens, "vocabulary": p.vocabulary}
        for i, p in enumerate(ex.plan.inputs)
        if p.tokens is not None
    ]
    if texts:
        response["texts"] = texts
    attn = attention.weights(ex.extra)
    if attn:
        response["attention"] = attn
    return response


@contextlib.contextmanager
def _tracing_and_attention(root: torch.nn.Module, sink: dict[str, Any]) -> Iterator[None]:
    """A network's trace, and the inputs of every attention call (for their weights afterwards)."""
    with tracing(root, sink), attention.recording(root, sink):
        yield


def _child_node(registry: Registry, network: Plan, path: str, module: torch.nn.Module) -> LayerNode:
    """The child's config where the path runs through containers, else its catalog entry as built."""
    found = find(network.node, path)
    if found is not None:
        return found
    type_name = type(module).__name__
    if type_name in registry:
        return LayerNode(spec=registry.get(type_name), args={})
    return LayerNode(
        spec=dataclasses.replace(network.spec, type=type_name, rule=None, explain=None, container=None), args={}
    )


def _run_child(registry: Registry, req: RunRequest, settings: Settings) -> dict[str, Any]:
    """One layer of a network as it ran inside it: the input it received, its weights there, its output."""
    child = run_child(registry, req, settings)
    network = child.execution.plan
    node = _child_node(registry, network, req.path or "", child.module)
    xs = child.inputs
    shapes = [tuple(x.shape) for x in xs]
    try:
        predicted = predict(node, child.module, shapes)
    except Exception:  # noqa: BLE001 - a layer built inside another (fc1 of a block) has no config here
        predicted = None
    plan = Plan(
        node=node,
        skeleton=child.module,
        inputs=[InputPlan(s, "normal", x.dtype) for s, x in zip(shapes, xs)],
        dtype=network.dtype,
        device=network.device,
        seed=network.seed,
        train=network.train,
        predicted=predicted,
        meta_shapes=None,
        estimate_bytes=network.estimate_bytes,
        warnings=network.warnings,
    )
    outputs = tensors.flatten_outputs(child.output, node.spec.outputs)
    response = run_response(
        plan,
        child.module,
        xs,
        outputs,
        settings,
        code=script(network, child_path=req.path),
        view=req.window_slice,
        path=req.path,
    )
    response.update(path=req.path, network_type=network.spec.type)
    return response


def output_tensor(registry: Registry, body: Any, settings: Settings, name: str | None) -> tuple[str, torch.Tensor]:
    """One output tensor in full (for ``?format=npy``)."""
    return _output_of(execute(registry, parse(RunRequest, body), settings, hooks=None), name)


def _output_of(ex: Any, name: str | None) -> tuple[str, torch.Tensor]:
    if not ex.outputs:
        raise InvalidRequest(f"{ex.plan.spec.type} returned no tensor")
    if name is None:
        return ex.outputs[0]
    for n, t in ex.outputs:
        if n == name:
            return n, t
    raise InvalidRequest(f"no output named {name!r}; outputs are {', '.join(n for n, _ in ex.outputs)}", field="tensor")


def npy_output(
    registry: Registry, body: Any, settings: Settings, tensor: str | None = None
) -> tuple[str, torch.Tensor, int]:
    """The tensor ``?format=npy`` sends: its name, the tensor, and the request's memory estimate; with
    ``path``, inside the network, as it ran there (what /api/run with ``path`` lists).

    ``tensor`` names any tensor the JSON answer lists, by the name it has there: an output, else an
    input, else a parameter or buffer (``0.0.weight``; with ``path``, the layer's own, ``weight``)."""
    req = parse(RunRequest, body)
    if req.path:
        child = run_child(registry, req, settings)
        kind = type(child.module).__name__
        spec = registry.get(kind) if kind in registry else None
        ex = dataclasses.replace(
            child.execution, outputs=tensors.flatten_outputs(child.output, spec.outputs if spec else [])
        )
        names = [i.name for i in spec.inputs] if spec else []
        inputs = [(names[i] if i < len(names) else f"input{i}", t) for i, t in enumerate(child.inputs)]
        module = child.module
    else:
        ex = execute(registry, req, settings, hooks=None)
        inputs = [(i.name, t) for i, t in zip(ex.plan.spec.inputs, ex.inputs)]
        module = ex.module
    out_name, t = _tensor_of(ex, tensor, inputs, module)
    return out_name, t, ex.plan.estimate_bytes


def npy(registry: Registry, body: Any, settings: Settings, tensor: str | None = None) -> tuple[str, bytes]:
    """``?format=npy`` in this process: the tensor's name and its bytes as a NumPy .npy file (the server's
    workers write the file to shared memory instead: app.core.workers)."""
    out_name, t, estimate = npy_output(registry, body, settings, tensor)
    # the file is the whole tensor (NumPy's copy of it when it is not float32 or float64 already, the
    # buffer, and the bytes taken from it), where /api/run lists at most max_elements numbers of it
    reserve_more("writing the output as .npy", 3 * t.numel() * t.element_size(), estimate, settings)
    return out_name, tensors.npy_bytes(t)


def _tensor_of(
    ex: Any, name: str | None, inputs: list[tuple[str, torch.Tensor]], module: torch.nn.Module
) -> tuple[str, torch.Tensor]:
    """The tensor ``name`` names in the JSON answer: an output first, then an input, a parameter, a buffer."""
    if name is None or any(n == name for n, _ in ex.outputs):
        return _output_of(ex, name)
    for n, t in inputs:
        if n == name:
            return n, t
    held = dict(module.named_parameters()) | dict(module.named_buffers())
    if name in held:
        return name, held[name].detach()
    listed = [n for n, _ in ex.outputs] + [n for n, _ in inputs]
    own = list(held)
    shown = ", ".join(own[:4]) + (", …" if len(own) > 4 else "")
    raise InvalidRequest(
        f"no tensor named {name!r}; outputs and inputs are {', '.join(listed)}"
        + (f"; parameters and buffers are {shown}" if own else ""),
        field="tensor",
    )


#: what /api/shape answers: ``full`` (default) adds the dataflow graph and the trace of submodules
#: that layers build inside themselves; ``shapes`` is the formulas' answer alone (what an edit redraws)
SHAPE_DETAIL = ("full", "shapes")


def shape(registry: Registry, body: Any, settings: Settings, detail: str = "full") -> dict[str, Any]:
    """Output shapes, parameter shapes and formulas without allocating a tensor.

    ``detail="shapes"`` skips what costs meta passes: a transformer layer's inner trace and the
    dataflow graph (tens of milliseconds for a decoder stack); networks keep their predicted trace.
    """
    if detail not in SHAPE_DETAIL:
        raise InvalidRequest(f"detail must be one of {', '.join(SHAPE_DETAIL)}; got {detail!r}", field="detail")
    req = parse(RunRequest, body)
    full = detail == "full"
    # nothing is allocated here, so the memory limit does not apply: the estimate is reported
    plan = plan_request(registry, req, settings, enforce_limit=False, inner_trace=full)
    trace = plan.meta_trace if plan.meta_trace is not None else plan.predicted_trace
    if not full and plan.meta_trace is None and builds_submodules(plan):
        trace = None  # not traced (detail=shapes): unknown, which an empty trace and zero totals would hide
    response = shape_response(plan, settings, trace)
    if full:
        response.update(graph.graph_fields(plan, registry=registry))
    return response


def explain(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    """One output element recomputed by hand from its inputs, weights and bias."""
    req = parse(ExplainRequest, body)
    if req.path:
        return _explain_child(registry, req, settings)
    ex = execute(registry, req, settings, hooks=None)
    terms = check_explain_size(ex.plan.spec, ex.module, ex.inputs, ex.outputs[0][1] if ex.outputs else None, settings)
    # and float64 copies of the inputs the terms are read from
    copies = 8 * sum(x.numel() * x.element_size() for x in ex.inputs)
    reserve_more(f"listing {terms} terms", terms * EXPLAIN_BYTES_PER_TERM + copies, ex.plan.estimate_bytes, settings)
    names = [n for n, _ in ex.outputs]
    wanted = req.output or names[0]
    if wanted not in names:
        raise NotExplainable(f"no output named {wanted!r}; outputs are {', '.join(names)}", field="output")
    return explain_module(ex.plan.spec, ex.module, ex.inputs, dict(ex.outputs)[wanted], req.index)


#: the most terms one explanation lists (each is a small JSON object)
MAX_EXPLAIN_TERMS = 1 << 16
#: one term: its dict of about ten numbers and strings, then its JSON text
EXPLAIN_BYTES_PER_TERM = 2048


def check_explain_size(
    spec: LayerSpec, module: torch.nn.Module, xs: list[torch.Tensor], out: torch.Tensor | None, settings: Settings
) -> int:
    """An explanation lists every term of its sum and, for sliding windows, the window map of the
    whole output: both are bounded like /api/run's window map, before any is built (413 past them)."""
    """Returns how many terms the explanation lists."""
    if spec.explain is None or out is None:
        return 0
    if spec.explain == "linear":
        terms = module.in_features if hasattr(module, "in_features") else xs[0].shape[-1]
    elif spec.explain == "bilinear":
        terms = module.in1_features * module.in2_features
    else:
        rank = spec.spatial_rank or 1
        kernel = math.prod(ntuple(module.kernel_size, rank))
        per_group = module.in_channels // module.groups if hasattr(module, "groups") else 1
        terms = per_group * kernel
        cells = math.prod(out.shape[-rank:]) * kernel
        if cells > settings.max_window_cells:
            raise TooLarge(
                f"explaining {spec.type} maps every window of its output: {cells} window cells, more than this "
                f"server lists ({settings.max_window_cells}); use a smaller input or kernel",
                field="inputs",
                estimate_cells=cells,
                limit_cells=settings.max_window_cells,
            )
    if terms > MAX_EXPLAIN_TERMS:
        raise TooLarge(
            f"explaining one element of {spec.type} would list {terms} terms; this server lists at most "
            f"{MAX_EXPLAIN_TERMS}",
            field="index",
        )
    return int(terms)


def _explain_child(registry: Registry, req: ExplainRequest, settings: Settings) -> dict[str, Any]:
    """Explain an element of the output of the child at ``req.path``, on the input it really got."""
    child = run_child(registry, req, settings)
    node = _child_node(registry, child.execution.plan, req.path or "", child.module)
    if node.spec.explain is None:
        raise NotExplainable(f"layer {req.path} ({node.spec.type}) has no manual computation", field="path")
    out = child.output[0] if isinstance(child.output, (tuple, list)) else child.output
    check_explain_size(node.spec, child.module, child.inputs, out, settings)
    result = explain_module(node.spec, child.module, child.inputs, out, req.index)
    result["path"] = req.path
    result["input_shapes"] = [list(a.shape) for a in child.inputs]
    return result


def warm_up(registry: Registry, settings: Settings) -> None:
    """Run a few catalog examples once: torch initialises its meta and CPU kernels lazily (about
    0.4 s on the first conv), which would otherwise land on the first user's request."""
    # the server's own small requests: not held to a request limit set below their few MiB
    own = dataclasses.replace(settings, memory_limit_bytes=max(settings.memory_limit_bytes, 64 * 1024**2))
    for type_name in ("Linear", "Conv2d", "MaxPool2d"):
        example = registry.get(type_name).example
        shape(registry, example, own)
        run(registry, example, own)
