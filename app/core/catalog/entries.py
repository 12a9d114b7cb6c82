"""Building blocks of the per-family catalog modules: torch entries with curated bounds.

Parameters themselves (names, types, defaults) come from torch's own signatures via
:func:`app.core.catalog.introspect.introspect_params`; a family adds what introspection cannot
know: ``forward()`` inputs with their shape conventions, bounds, the shape rule, an example.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from app.core.catalog.introspect import arg_docs, doc_summary, introspect_params
from app.core.catalog.memory import MemoryRule
from app.core.catalog.spec import InputSpec, LayerSpec, ParamSpec, Registry
from app.core.shapes.context import spatial_rank_of

EXAMPLE_SPATIAL = {1: (8,), 2: (6, 6), 3: (4, 5, 5)}

MAX_REPEATS = 64

# Bounds that hold wherever an argument of this name appears in torch.nn.
COMMON_BOUNDS: dict[str, dict[str, Any]] = {
    **{
        name: {"minimum": 1}
        for name in (
            "in_features",
            "out_features",
            "in1_features",
            "in2_features",
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "dilation",
            "groups",
            "num_features",
            "num_channels",
            "num_groups",
            "embedding_dim",
            "num_embeddings",
            "input_size",
            "hidden_size",
            "num_layers",
            "embed_dim",
            "num_heads",
            "nhead",
            "d_model",
            "dim_feedforward",
            "num_encoder_layers",
            "num_decoder_layers",
            "upscale_factor",
            "downscale_factor",
            "size",
            "n_classes",
            "num_parameters",
            "num_classes",
        )
    },
    # Stacked copies are built one module at a time: a count in the millions would hang the build
    # long before the memory estimate could refuse it.
    **{
        name: {"minimum": 1, "maximum": MAX_REPEATS}
        for name in ("num_layers", "num_encoder_layers", "num_decoder_layers")
    },
    "padding": {"minimum": 0},
    "output_padding": {"minimum": 0},
    "p": {"minimum": 0, "maximum": 1},
    "dropout": {"minimum": 0, "maximum": 1},
    "eps": {"minimum": 0, "exclusive_minimum": True},
    "momentum": {"minimum": 0, "maximum": 1},
    "label_smoothing": {"minimum": 0, "maximum": 1},
    "norm_type": {"minimum": 0, "exclusive_minimum": True},
    "reduction": {"choices": ["none", "mean", "sum"]},
    "padding_mode": {"choices": ["zeros", "reflect", "replicate", "circular"]},
}

# Arguments that are accepted by torch but mean nothing here (no autograd, no in-place aliasing).
SKIP_ALWAYS = ("inplace", "size_average", "reduce", "_weight", "_freeze")


def _params(cls: type, n: int | None, overrides: dict[str, dict[str, Any]], skip: tuple[str, ...]) -> list[ParamSpec]:
    params = introspect_params(cls, skip=SKIP_ALWAYS + skip)
    for p in params:
        for key, value in {**COMMON_BOUNDS.get(p.name, {}), **overrides.get(p.name, {})}.items():
            setattr(p, key, value)
        if p.type == "ints" and p.length is None and n is not None:
            p.length = n
    known = {p.name for p in params}
    for name, extra in overrides.items():
        if name not in known and "type" in extra:
            params.append(ParamSpec(name=name, **extra))
    return params


def torch_entry(
    registry: Registry,
    name: str,
    family: str,
    args: dict[str, Any],
    inputs: list[InputSpec],
    example_inputs: list[dict[str, Any]],
    rule: Callable[..., Any] | None,
    *,
    outputs: list[str] | None = None,
    explain: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    skip: tuple[str, ...] = (),
    factory: Callable[..., nn.Module] | None = None,
    channel_dim: int | None = None,
    order: Sequence[str] | None = None,
    since: str | None = None,
    memory: MemoryRule | None = None,
) -> LayerSpec | None:
    """Register ``torch.nn.<name>``: introspected parameters (in the constructor's order, declared
    ones included) with curated bounds, its inputs, shape rule and a runnable example.

    The catalog holds what the installed torch has: a class this torch lacks (``since``: the torch
    release that added it) is recorded as absent, and a request for it is a 404 that says why.
    """
    cls = getattr(nn, name, None)
    if not isinstance(cls, type):
        needs = f"needs torch ≥ {since}" if since else "is not in torch.nn"
        registry.absent(name, f"{name} {needs}; this server runs torch {torch.__version__}")
        return None
    rank = spatial_rank_of(name)
    spec = LayerSpec(
        type=name,
        family=family,
        factory=factory or cls,
        params=_params(cls, rank, params or {}, skip),
        inputs=inputs,
        example={"layer": {"type": name, **args}, "inputs": example_inputs, "seed": 0},
        doc=doc_summary(cls),
        outputs=outputs or ["output"],
        rule=rule,
        explain=explain,
        spatial_rank=rank,
        channel_dim=channel_dim,
        memory=memory,
    )
    position = {n: i for i, n in enumerate(order or inspect.signature(cls.__init__).parameters)}
    spec.params.sort(key=lambda p: position.get(p.name, len(position)))
    return registry.add(spec)


def shape(*dims: int) -> dict[str, Any]:
    return {"shape": list(dims)}


def inp(convention: str, kind: str = "normal", name: str = "input", **kw: Any) -> InputSpec:
    return InputSpec(name=name, convention=convention, kind=kind, **kw)


def declared(cls: type, **params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Parameters torch's introspection cannot see, with the docstring's description."""
    docs = arg_docs(cls)
    return {name: {"doc": docs.get(name, ""), **spec} for name, spec in params.items()}


def data(values: Any, dtype: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"data": values}
    if dtype:
        out["dtype"] = dtype
    return out


def hooked(
    name: str, hook: Callable[..., Any] | None = None, *, check: Callable[[dict[str, Any]], None] | None = None
) -> Callable[..., nn.Module]:
    """Build the plain ``torch.nn.<name>`` module (its class and repr stay torch's), with ``check`` run on
    the arguments first and ``hook`` as a forward pre-hook on the inputs. The class is looked up when
    a module is built, so that a family can declare a type this torch lacks (:func:`torch_entry` skips it)."""

    def build(**kwargs: Any) -> nn.Module:
        if check is not None:
            check(kwargs)
        module = getattr(nn, name)(**kwargs)
        if hook is not None:
            module.register_forward_pre_hook(hook)
        return module

    build.__name__ = name
    return build
