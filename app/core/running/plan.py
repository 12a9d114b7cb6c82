"""Planning a request on the meta device: validate, predict shapes, estimate memory; allocate nothing.

The order of work is the same for every request, and it is the order a notebook uses:

1. validate the config against the catalog (nothing built yet; each distinct leaf config once);
2. build a skeleton of the module on the *meta* device, without initialising it — one module per
   distinct subtree of configs, shared by every path with those configs (512 identical blocks build
   one block of one Linear and one ReLU) — predict shapes with the layers' formulas (a repeated block
   once per input shape), estimate the memory of every tensor involved (each distinct call once, times
   its number of calls), and refuse what is over the limit (413) — nothing allocated; the whole meta
   module is built only where an answer reads it as a whole (``Plan.meta``);
3. then (:mod:`app.core.running.execute`) ``torch.manual_seed(seed)``, build the real module, draw
   each ``{"shape"}`` input in order, move to the device and dtype, run under ``torch.no_grad()``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from app.core import budget, tensors
from app.core.catalog.args import tensor_from_json
from app.core.catalog.families.opaque import NOT_COMPUTED, Opaque
from app.core.catalog.spec import LayerSpec, Registry
from app.core.config import Settings
from app.core.errors import InvalidRequest, LayerExplorerError, ShapeMismatch, TooLarge
from app.core.explaining.windows import window_bytes
from app.core.networks.containers import check_structure
from app.core.networks.trace import Counted, tracing
from app.core.networks.tree import (
    LayerNode,
    Skeleton,
    build,
    build_skeleton,
    join,
    predict,
    resolve,
    subtree_ids,
    walk,
)
from app.core.running import images, overrides
from app.core.running.devices import resolve_device, resolve_dtype
from app.core.running.memory import (
    FIXED_OVERHEAD,
    attention_numbers,
    human,
    refuse,
    response_bytes,
    tensor_bytes,
    workspace_bytes,
)
from app.core.schema import RunRequest, TensorInput
from app.core.shapes.context import fmt_shape
from app.core.shapes.expr import Dim
from app.core.torch_errors import TORCH_FAULTS, classify, forward_error


@contextlib.contextmanager
def collect_warnings(sink: list[str]) -> Iterator[None]:
    """torch's warnings (e.g. 'same' padding with an even kernel) go to the response, not to stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        message = str(w.message).split(" (Triggered internally", 1)[0].strip()
        if message not in sink:
            sink.append(message)


@dataclass
class InputPlan:
    shape: tuple[int, ...]
    kind: str
    dtype: torch.dtype
    data: torch.Tensor | None = None
    high: int | None = None
    #: the image this input was decoded from (``data`` holds its tensor)
    image: images.ImageSource | None = None
    #: a text input: its tokens, in order, and the sorted vocabulary their ids index
    tokens: list[str] | None = None
    vocabulary: list[str] | None = None


@dataclass
class Plan:
    node: LayerNode
    #: the modules planning reads, on the meta device (:class:`~app.core.networks.tree.Skeleton`): where
    #: ``shared``, one module stands for every layer or block of one config; else it is ``meta`` itself
    skeleton: nn.Module
    inputs: list[InputPlan]
    dtype: torch.dtype
    device: torch.device
    seed: int
    train: bool
    predicted: list[list[Dim]] | None
    meta_shapes: list[tuple[int, ...]] | None
    estimate_bytes: int
    warnings: list[str] = field(default_factory=list)
    #: predicted trace entries of a network (one per layer, in execution order)
    predicted_trace: list[dict[str, Any]] = field(default_factory=list)
    #: the trace the meta forward pass recorded (up to a layer without a meta kernel), if it ran
    meta_trace: list[dict[str, Any]] | None = None
    #: parameters and buffers set by hand (the request's ``parameters``), checked against ``meta``
    parameters: dict[str, torch.Tensor] = field(default_factory=dict)
    #: some module of ``skeleton`` stands at several paths (512 identical blocks: one Linear)
    shared: bool = False
    #: the number of elements of every parameter the module holds (each layer's own), counted once
    param_numels: list[int] | None = None
    #: ``meta`` once built (where ``shared``)
    built_meta: nn.Module | None = field(default=None, repr=False)
    #: each distinct call of a network's predicted trace, (module, catalog entry, input shapes, output
    #: shapes, how many calls): what the estimate reads of the trace, each distinct call once
    calls: list[list[Any]] | None = field(default=None, repr=False)

    @property
    def meta(self) -> nn.Module:
        """The module on the meta device as a run builds it, every layer its own module.

        Where the skeleton shares modules it is built on first use, for what reads the module as a whole
        (/api/shape's repr and parameter list, the dataflow graph, a meta pass, parameters set by hand);
        planning a run needs only the skeleton."""
        if not self.shared:
            return self.skeleton
        if self.built_meta is None:
            # the same configs the skeleton built: any warning torch gives was collected then
            with tensors.on_meta_without_init(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = build(self.node)
                _to_dtype(module.modules(), self.dtype)
                self.built_meta = module
        return self.built_meta

    @property
    def spec(self) -> LayerSpec:
        return self.node.spec

    @property
    def meta_element_size(self) -> int:
        return torch.empty((), dtype=self.dtype, device="meta").element_size()

    @property
    def predicted_shapes(self) -> list[list[int]] | None:
        if self.predicted is None:
            return None
        return [[d.expr.int_value() for d in dims] for dims in self.predicted]

    def shapes_text(self) -> str:
        return ", ".join(fmt_shape(p.shape) for p in self.inputs)

    def forward_error(self, exc: BaseException) -> LayerExplorerError:
        return forward_error(
            exc,
            layer=self.spec.type,
            shapes=self.shapes_text(),
            dtype=tensors.dtype_name(self.dtype),
            device=str(self.device),
        )


def _resolve_high(spec_high: Any, args: dict[str, Any], meta: nn.Module, shapes: list[tuple[int, ...]]) -> int | None:
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
    value = args.get(spec_high, getattr(meta, spec_high, None))
    return int(value) if isinstance(value, int) else None


def _input_plans(spec: LayerSpec, req: RunRequest, dtype: torch.dtype, settings: Settings) -> list[InputPlan]:
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
        if raw.image is not None:
            field = f"inputs[{i}].image"
            if not want.is_floating_point:
                raise InvalidRequest(
                    f"input {i} ({ispec.name}) holds {tensors.dtype_name(want)} values; an image gives floats",
                    field=field,
                )
            t, source = images.decode(
                raw.image,
                mode=raw.mode or "RGB",
                size=tuple(raw.size) if raw.size else None,
                scale=raw.scale or "unit",
                field=field,
                memory_limit=settings.memory_limit_bytes,
                max_elements=settings.max_data_elements,
            )
            plans.append(InputPlan(tuple(t.shape), ispec.kind, want, data=t, image=source))
        elif raw.text is not None:
            field = f"inputs[{i}].text"
            if want.is_floating_point:
                raise InvalidRequest(
                    f"input {i} ({ispec.name}) takes {tensors.dtype_name(want)} values; a text gives token ids, "
                    "for an input of indices (an Embedding's)",
                    field=field,
                )
            tokens = raw.text.split() if raw.tokenize == "whitespace" else list(raw.text)
            if not tokens:
                raise InvalidRequest(f"{field}: the text has no tokens", field=field)
            vocabulary = sorted(set(tokens))
            ids = {tok: k for k, tok in enumerate(vocabulary)}
            t = torch.tensor([[ids[tok] for tok in tokens]], dtype=want)
            plans.append(InputPlan(tuple(t.shape), ispec.kind, want, data=t, tokens=tokens, vocabulary=vocabulary))
        elif raw.data is not None:
            t = tensor_from_json(
                raw.data,
                field=f"inputs[{i}].data",
                what=f"input {i} ({ispec.name})",
                dtype=want,
                max_elements=settings.max_data_elements,
            )
            plans.append(InputPlan(tuple(t.shape), ispec.kind, want, data=t))
        else:
            plans.append(InputPlan(tuple(raw.shape or ()), ispec.kind, want))
    return plans


def _first_embedding_size(module: nn.Module) -> int | None:
    """The rows of the first Embedding a network's input meets (its first leaf, if it is one)."""
    first = next((m for m in module.modules() if not any(True for _ in m.children())), None)
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        return first.num_embeddings
    return None


def _to_dtype(modules: Iterable[nn.Module], dtype: torch.dtype) -> None:
    """What ``module.to(dtype=dtype)`` does, each of ``modules`` once and only where a tensor changes.

    ``Module.to`` visits every module of the tree (tens of microseconds each: 1538 of a 512-block
    network) to convert tensors that are mostly of that dtype already, or absent (ReLU, Sequential);
    converting a tensor to its own dtype leaves it as it is, so those are skipped.
    """

    def convert(t: torch.Tensor) -> torch.Tensor:
        # Module.to's own rule: floating and complex tensors take the dtype, others keep theirs
        return t.to(dtype) if t.is_floating_point() or t.is_complex() else t

    for module in modules:
        held = [*module._parameters.values(), *module._buffers.values()]
        if any(t is not None and (t.is_floating_point() or t.is_complex()) and t.dtype != dtype for t in held):
            module._apply(convert, recurse=False)


def _distinct_modules(skeleton: Skeleton) -> Iterator[nn.Module]:
    """Every module of the skeleton once (a shared layer is converted once, not at each path)."""
    if not skeleton.shared:
        yield from skeleton.module.modules()
        return
    for leaf, _ in skeleton.leaves:
        yield from leaf.modules()
    for container, _ in skeleton.containers:
        yield container


def _own(module: nn.Module) -> tuple[list[int], int]:
    """Elements of each of a container's own parameters, and the bytes of its own parameters and buffers."""
    params = [p for p in module._parameters.values() if p is not None]
    buffers = [b for b in module._buffers.values() if b is not None]
    return [p.numel() for p in params], sum(t.numel() * t.element_size() for t in params + buffers)


def _tally(skeleton: Skeleton) -> tuple[dict[int, int], list[int], int]:
    """What the module a run builds holds, from the skeleton: every module's parameter count (by
    ``id``), the elements of each parameter, and the bytes of parameters and buffers.

    A leaf module counts as ``parameters()`` and ``buffers()`` give (a weight tied inside it once),
    once per path it stands at; a container's own tensors count at every path it stands at, and its
    parameter count adds up its children at every name they stand at in it.
    """
    counts: dict[int, int] = {}
    numels: list[int] = []
    nbytes = 0
    for leaf, uses in skeleton.leaves:
        own = [p.numel() for p in leaf.parameters()]
        counts[id(leaf)] = sum(own)
        numels += own * uses
        nbytes += uses * (
            sum(p.numel() * p.element_size() for p in leaf.parameters())
            + sum(b.numel() * b.element_size() for b in leaf.buffers())
        )
    # containers are listed parents first: children are counted before the containers holding them
    for container, uses in reversed(skeleton.containers):
        own, own_bytes = _own(container)
        numels += own * uses
        nbytes += own_bytes * uses
        counts[id(container)] = sum(own) + sum(counts[id(c)] for c in container._modules.values() if c is not None)
    return counts, numels, nbytes


def _opaque_notes(skeleton: Skeleton) -> list[str]:
    """:func:`opaque_notes` of the module a run builds: every path of a shared opaque layer."""
    if not any(isinstance(m, Opaque) for leaf, _ in skeleton.leaves for m in leaf.modules()):
        return []
    return opaque_notes(skeleton.module, remove_duplicate=not skeleton.shared)


def plan_request(
    registry: Registry, req: RunRequest, settings: Settings, *, enforce_limit: bool = True, inner_trace: bool = True
) -> Plan:
    """Validate and predict on the meta device; with ``enforce_limit``, refuse what would not fit.

    ``inner_trace``: also trace, with a meta pass, the submodules a layer builds inside itself (a
    transformer layer's attention and feed-forward), which no formula lists. A real run records
    them itself, so it passes False; so does a shape request that wants only the shapes.
    """
    device = resolve_device(req.device, settings)
    dtype = resolve_dtype(req.dtype)
    node = resolve(registry, req.layer, field="layer")
    # identical layers and blocks, found while resolving: the structure of a repeated block is checked
    # once, the skeleton builds one module per distinct subtree, and the formulas answer a repeated
    # block once per input shape
    subtrees = subtree_ids(node)
    check_structure(node, subtrees)
    spec = node.spec
    # Inputs given as data are checked (and their size counted) before anything else is built.
    plans = _input_plans(spec, req, dtype, settings)
    shapes = [p.shape for p in plans]

    input_bytes = sum(tensor_bytes(p.shape, p.dtype) for p in plans)
    limit = settings.memory_limit_bytes if enforce_limit else float("inf")
    # past int64 bytes torch cannot describe a tensor at all, not even on the meta device: too large for
    # /api/shape as well, which otherwise allocates nothing
    unrepresentable = any(tensor_bytes(p.shape, p.dtype) > 2**63 - 1 for p in plans)
    if input_bytes > limit or unrepresentable:
        raise refuse(
            f"the inputs would take {human(input_bytes)}", input_bytes, settings.memory_limit_bytes, field="inputs"
        )

    caught: list[str] = []
    try:
        with tensors.on_meta_without_init(), collect_warnings(caught):
            skeleton = build_skeleton(node, subtrees)
    except TooLarge as exc:
        if "estimate_bytes" not in exc.extra:
            raise
        # a parameter past int64 bytes (Linear(2**40, 2**40)): the same refusal as any parameter over the limit
        needed = exc.extra["estimate_bytes"] * dtype.itemsize // 4 + input_bytes
        raise refuse(
            f"{spec.type}'s parameters would take {human(needed - input_bytes)} (plus {human(input_bytes)} of inputs)",
            needed,
            settings.memory_limit_bytes,
            field=exc.field or "layer",
        ) from None
    _to_dtype(_distinct_modules(skeleton), dtype)
    counts, numels, param_bytes = _tally(skeleton)
    caught.extend(_opaque_notes(skeleton))
    if param_bytes + input_bytes > limit:
        raise refuse(
            f"{spec.type}'s parameters would take {human(param_bytes)} (plus {human(input_bytes)} of inputs)",
            param_bytes + input_bytes,
            settings.memory_limit_bytes,
            field="layer",
        )

    plan = Plan(
        node=node,
        skeleton=skeleton.module,
        inputs=plans,
        dtype=dtype,
        device=device,
        seed=req.seed,
        train=req.train,
        predicted=None,
        meta_shapes=None,
        estimate_bytes=0,
        warnings=caught,
        shared=skeleton.shared,
        param_numels=numels,
    )
    # checked against the module a run builds, by every parameter's own name (only when some are given)
    plan.parameters = overrides.decode(
        req.parameters,
        plan.meta if req.parameters is not None else skeleton.module,
        max_elements=settings.max_data_elements,
    )

    for p, ispec in zip(plans, spec.inputs):
        p.high = _resolve_high(ispec.high, node.args, skeleton.module, shapes)
    for i, p in enumerate(plans):
        high = p.high if p.high is not None else _first_embedding_size(skeleton.module) if i == 0 else None
        if p.vocabulary is not None and high is not None and len(p.vocabulary) > high:
            # ids run 0..len(vocabulary)-1: past num_embeddings torch would fail with "index out of range"
            raise InvalidRequest(
                f"inputs[{i}].text: the text has {len(p.vocabulary)} distinct tokens, but the Embedding has "
                f"num_embeddings={high} rows (ids 0..{high - 1}); use a shorter text or raise num_embeddings",
                field=f"inputs[{i}].text",
            )

    trace: list[dict[str, Any]] = []
    counted = Counted(counts, plan.meta_element_size, subtrees=subtrees)
    try:
        predicted = predict(node, skeleton.module, shapes, trace=trace, counted=counted)
    except (LayerExplorerError, ZeroDivisionError):
        raise
    except (IndexError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ShapeMismatch(
            f"{spec.type} cannot take input shape(s) {', '.join(fmt_shape(s) for s in shapes)}: {exc}",
            field="inputs",
        ) from None
    plan.predicted = predicted
    plan.predicted_trace = trace
    calls = list(counted.calls[0].values())
    # every entry of the trace counted (a container whose own rule adds entries itself counts none)
    if predicted is not None and sum(c[4] for c in calls) == len(trace):
        plan.calls = calls
    # Formula first: a layer's own formula answers in microseconds at any size, while a meta pass
    # costs time that grows with the sizes (hours for a deep LSTM over a long sequence). The meta
    # device is asked only where there is no formula, or when checking formulas against it.
    if predicted is None or settings.meta_check or (inner_trace and _needs_meta_trace(plan)):
        with collect_warnings(caught):
            plan.meta_shapes = _meta_forward(plan)
    parts = estimate(plan, registry, settings, param_bytes=param_bytes, input_bytes=input_bytes)
    plan.estimate_bytes = sum(parts.values())
    if plan.estimate_bytes > limit:
        listed = ", ".join(f"{name} {human(n)}" for name, n in parts.items() if n)
        raise refuse(
            f"this request needs about {human(plan.estimate_bytes)} ({listed})",
            plan.estimate_bytes,
            settings.memory_limit_bytes,
        )
    # the server-wide budget (a no-op outside a worker); a shape request allocates only its window map
    # and its answer's small objects
    budget.reserve(plan.estimate_bytes if enforce_limit else parts["window map"] + FIXED_OVERHEAD)
    return plan


def opaque_notes(module: nn.Module, *, remove_duplicate: bool = True) -> list[str]:
    """One note per opaque layer: its numbers are not computed (its shapes and parameter count are the recorded ones)."""
    return [
        f"{f'layer {path} ({m.type_name})' if path else m.type_name} is {NOT_COMPUTED}: the server does not run its code; "
        "its output is a fixed linspace(-1, 1) of the recorded shape, and its parameters are zeros unless sent"
        for path, m in module.named_modules(remove_duplicate=remove_duplicate)
        if isinstance(m, Opaque)
    ]


def _needs_meta_trace(plan: Plan) -> bool:
    """Layers built of submodules by their own forward() (SimpleResidualBlock, a transformer layer, a
    plugin) have no predicted trace for those submodules: the trace then comes from a meta pass,
    unless a recurrent layer inside would make that pass slow."""
    if not builds_submodules(plan):
        return False
    return not any(isinstance(m, nn.RNNBase) for m in plan.skeleton.modules())


def builds_submodules(plan: Plan) -> bool:
    """The module holds submodules the request did not list (built by a layer's own __init__)."""
    # a shared module is counted at every path it stands at, as the module a run builds holds it
    modules = plan.skeleton.named_modules(remove_duplicate=not plan.shared)
    return sum(1 for _ in modules) > sum(1 for _ in walk(plan.node))


def _spec_of(registry: Registry, nodes: dict[str, LayerNode], path: str, module: nn.Module) -> LayerSpec | None:
    """The catalog entry of the layer at ``path``: its config's, else the entry of its class (or of the
    nearest torch class it derives from, for a layer built inside another)."""
    node = nodes.get(path)
    if node is not None:
        return node.spec
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__ in registry:
            return registry.get(cls.__name__)
    return None


def _by_path(root: nn.Module) -> dict[str, nn.Module]:
    """Every module under ``root`` by its path, a shared module at each of its paths (as
    ``named_modules(remove_duplicate=False)``, without a generator per level)."""
    out: dict[str, nn.Module] = {}
    stack = [("", root)]
    while stack:
        path, module = stack.pop()
        out[path] = module
        stack.extend((join(path, name), child) for name, child in module._modules.items() if child is not None)
    return out


def _attention_under() -> Callable[[nn.Module], list[nn.MultiheadAttention]]:
    """The MultiheadAttention modules under a module, each module's list made once from its children's
    (``[m for m in module.modules() if isinstance(m, nn.MultiheadAttention)]`` walks each container's
    whole subtree again, for every container of a deep network)."""
    memo: dict[int, list[nn.MultiheadAttention]] = {}

    def under(module: nn.Module) -> list[nn.MultiheadAttention]:
        found = memo.get(id(module))
        if found is None:
            found = [module] if isinstance(module, nn.MultiheadAttention) else []
            for child in module._modules.values():
                if child is not None:
                    found = found + under(child)
            memo[id(module)] = found
        return found

    return under


def _calls(
    plan: Plan, registry: Registry
) -> list[tuple[nn.Module, LayerSpec | None, list[list[int]], list[list[int]]]]:
    """Each layer call of the request with its catalog entry and its input and output shapes (a
    network's, one by one)."""
    out_shapes = plan.predicted_shapes or [list(s) for s in plan.meta_shapes or []]
    trace = plan.predicted_trace if plan.predicted is not None else plan.meta_trace
    if trace and plan.node.is_container:
        # the config's layers by path, read once (a lookup per call would walk the tree per call: n²)
        nodes: dict[str, LayerNode] = {}
        for path, node in walk(plan.node):
            nodes.setdefault(path, node)
        # the skeleton's modules by path, read once (a shared one reads the same at each of its paths)
        modules = _by_path(plan.skeleton)
        calls = []
        for e in trace:
            sub = modules[e["path"]]
            calls.append((sub, _spec_of(registry, nodes, e["path"], sub), e["input_shapes"], e["output_shapes"]))
        return calls
    return [(plan.skeleton, plan.spec, [list(p.shape) for p in plan.inputs], out_shapes)]


def estimate(
    plan: Plan, registry: Registry, settings: Settings, *, param_bytes: int, input_bytes: int
) -> dict[str, int]:
    """Bytes of everything the request allocates, by part: what the memory limit and budget count."""
    elt = plan.meta_element_size
    # each distinct call once, with how many times it is made (a network's predicted calls as predicting
    # counted them: a 512-block network's 1536 calls are a handful), else every call of the trace once
    calls = plan.calls if plan.calls is not None and plan.node.is_container and plan.predicted is not None else None
    if calls is None:
        calls = [[m, spec, ins, outs, 1] for m, spec, ins, outs in _calls(plan, registry)]
    out_shapes = plan.predicted_shapes or [list(s) for s in plan.meta_shapes or []]
    outputs = sum(tensor_bytes(tuple(s), plan.dtype) for s in out_shapes)
    # a network keeps (at worst) every intermediate; each call's temporaries are freed before the next
    intermediates = sum(n * math.prod(s) * elt for *_, outs, n in calls for s in outs) if plan.node.is_container else 0
    under = _attention_under()
    working = max(
        (workspace_bytes(m, spec, ins, outs, elt, attention=under(m)) for m, spec, ins, outs, _ in calls), default=0
    )
    params = plan.param_numels if plan.param_numels is not None else [p.numel() for p in plan.meta.parameters()]
    numels = [math.prod(p.shape) for p in plan.inputs] + params
    numels += [math.prod(s) for s in out_shapes] * 2  # output and outputs[0]
    # the attention weights every MultiheadAttention call sends (app/core/running/attention.py); a call
    # that sends none adds nothing to the response's sum or maximum
    nested = not plan.node.is_container
    for m, _spec, ins, _outs, n in calls:
        sent = attention_numbers(m, ins, nested=nested)
        if sent:
            numels += [sent] * n
    return {
        "parameters": param_bytes,
        "inputs": input_bytes,
        # the forward gets copies of the inputs (execute: an in-place layer must not change what the run
        # reports it received)
        "input copies": input_bytes,
        # values set by hand, decoded on the CPU and held until the module has them
        "given parameters": overrides.nbytes(plan.parameters),
        "image decoding": sum(p.image.decode_bytes for p in plan.inputs if p.image is not None),
        "outputs": outputs,
        "intermediates": intermediates,
        "working memory": working,
        "response": response_bytes(
            numels, settings.max_elements, elt, most=settings.response_budget_bytes // tensors.NUMBER_BYTES
        ),
        "window map": window_bytes(plan, settings),
    }


def _meta_forward(plan: Plan) -> list[tuple[int, ...]] | None:
    """Output shapes from a forward pass on the meta device; None where torch has no meta kernel."""
    xs = [torch.empty(p.shape, dtype=p.dtype, device="meta") for p in plan.inputs]
    plan.meta.train(plan.train)
    sink: dict[str, Any] = {}
    try:
        with torch.no_grad(), tracing(plan.meta, sink):
            result = plan.meta(*xs)
    except LayerExplorerError:
        raise
    except TORCH_FAULTS as exc:
        # the formula (and the real run) decide where the meta device has no kernel, and where the
        # formula predicts an empty output: the meta kernel's verdict on a 0-size dimension is not the
        # CPU kernel's (ConvTranspose2d to (1, 2, 0, 0) runs on CPU, the meta kernel refuses it)
        predicted = plan.predicted_shapes
        empty = predicted is not None and any(0 in s for s in predicted)
        if empty or classify(exc, meta=True).kind == "no_meta":
            plan.meta_trace = sink.get("trace")
            return None
        raise plan.forward_error(exc) from None
    plan.meta_trace = sink.get("trace")
    return [tuple(t.shape) for _, t in tensors.flatten_outputs(result, plan.spec.outputs)]
