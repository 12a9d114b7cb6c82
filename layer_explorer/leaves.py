"""A catalog layer's config read back from a live module: its constructor arguments, as the catalog's
own spec of the type lists them (``GET /api/layers``), recovered from the module's attributes.

Most arguments are attributes of the same name (``Conv2d.kernel_size``, ``LSTM.num_layers``); the few
that torch does not keep (a transformer layer's ``d_model``, a ``Dropout`` submodule's ``p``, an
``activation`` stored as a function) are read from the submodules that hold them, by argument name.
The config is minimal: an argument is written only where the module differs from the one its
required arguments (and the arguments written so far) build, and sizes that repeat one value are
written once (``kernel_size: 3`` for ``(3, 3)``). It is then checked: the config is built on the meta
device and must give the same module (its printout, its parameters' and buffers' names and shapes);
otherwise the layer is not read back (the caller makes it an opaque node).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from app.core.catalog.spec import LayerSpec, ParamSpec, Registry
from app.core.errors import LayerExplorerError
from app.core.networks.tree import build, resolve

_MISSING = object()


def _sub(module: nn.Module, *path: str) -> Any:
    for part in path:
        module = getattr(module, part, _MISSING)
        if module is _MISSING:
            return _MISSING
    return module


def _first_layer(module: nn.Module, container: str) -> Any:
    layers = _sub(module, container, "layers")
    return layers[0] if isinstance(layers, nn.ModuleList) and len(layers) else _MISSING


def _count(module: nn.Module, container: str) -> Any:
    layers = _sub(module, container, "layers") if container else _sub(module, "layers")
    return len(layers) if isinstance(layers, nn.ModuleList) else _MISSING


#: arguments torch does not keep as attributes, by argument name: where the module holds them instead
#: (each reader returns _MISSING where it does not apply, and the next is tried)
_DERIVED: dict[str, list[Callable[[nn.Module], Any]]] = {
    "d_model": [lambda m: _sub(m, "self_attn", "embed_dim")],
    "nhead": [lambda m: _sub(m, "self_attn", "num_heads")],
    "dim_feedforward": [
        lambda m: _sub(m, "linear1", "out_features"),
        lambda m: _sub(_first_layer(m, "encoder"), "linear1", "out_features"),
    ],
    "layer_norm_eps": [
        lambda m: _sub(m, "norm1", "eps"),
        lambda m: _sub(_first_layer(m, "encoder"), "norm1", "eps"),
    ],
    "batch_first": [lambda m: _sub(m, "self_attn", "batch_first")],
    "norm_first": [lambda m: _sub(_first_layer(m, "encoder"), "norm_first")],
    "num_layers": [lambda m: _count(m, "")],
    "num_encoder_layers": [lambda m: _count(m, "encoder")],
    "num_decoder_layers": [lambda m: _count(m, "decoder")],
    "dropout": [lambda m: _sub(_first_layer(m, "encoder"), "dropout")],
    "activation": [lambda m: _sub(_first_layer(m, "encoder"), "activation")],
    "bias": [
        lambda m: _sub(m, "linear1", "bias"),
        lambda m: _sub(_first_layer(m, "encoder"), "linear1", "bias"),
        lambda m: _sub(m, "linear", "bias"),
        lambda m: _sub(m, "in_proj_bias"),  # MultiheadAttention
    ],
    "add_bias_kv": [lambda m: _sub(m, "bias_k")],
    # the tutorial's layers keep their sizes in their tensors and submodules
    "input_features": [lambda m: _size(_sub(m, "weights"), 1)],
    "output_features": [lambda m: _size(_sub(m, "weights"), 0)],
    "in_features": [lambda m: _sub(m, "fc1", "in_features"), lambda m: _sub(m, "linear", "in_features")],
    "out_features": [lambda m: _sub(m, "fc2", "out_features")],
}


def _cutoffs(module: nn.Module, value: Any) -> Any:
    """AdaptiveLogSoftmaxWithLoss keeps its cutoffs with n_classes appended."""
    n = getattr(module, "n_classes", None)
    return list(value[:-1]) if isinstance(value, list | tuple) and value and value[-1] == n else value


#: attributes that hold more than the argument they are named after
_ADJUST: dict[str, Callable[[nn.Module, Any], Any]] = {"cutoffs": _cutoffs}


def _size(t: Any, dim: int) -> Any:
    return t.shape[dim] if isinstance(t, torch.Tensor) and t.dim() > dim else _MISSING


def _first_layer_root(module: nn.Module) -> Any:
    layers = _sub(module, "layers")
    return layers[0] if isinstance(layers, nn.ModuleList) and len(layers) else _MISSING


_DERIVED["encoder_layer"] = [_first_layer_root]
_DERIVED["decoder_layer"] = [_first_layer_root]


def _read(module: nn.Module, p: ParamSpec) -> Any:
    """The argument's value as the module holds it, or _MISSING."""
    value = getattr(module, p.name, _MISSING)
    if p.type in ("layer", "layers") and not isinstance(value, nn.Module | None):
        value = _MISSING
    if p.name in _ADJUST and value is not _MISSING:
        value = _ADJUST[p.name](module, value)
    held = isinstance(value, nn.Module) and p.type not in ("layer", "layers") and not hasattr(value, "p")
    if value is _MISSING or held:
        for reader in _DERIVED.get(p.name, []):
            value = reader(module)
            if value is not _MISSING:
                break
    return value


def _plain(p: ParamSpec, value: Any, registry: Registry, collapse: bool = True) -> Any:
    """The JSON form of an attribute's value (a Dropout module's p, a function's name, a tensor's numbers)."""
    if value is _MISSING:
        return _MISSING
    if p.type == "bool" and (value is None or isinstance(value, torch.Tensor)):
        return value is not None  # bias: the tensor, or None without one
    if p.type == "layer":
        if value is None:
            return None
        return leaf_config(registry, value)
    if p.type in ("shapes", "named_shapes"):
        return value
    if p.type == "tensor":
        if value is None:
            return None
        return value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else _MISSING
    if isinstance(value, nn.Module) and hasattr(value, "p"):
        value = value.p  # a Dropout submodule holds the dropout argument
    if callable(value) and hasattr(value, "__name__"):
        value = value.__name__  # an activation kept as the function F.relu
    if isinstance(value, (torch.Tensor, nn.Module)):
        return _MISSING
    if isinstance(value, tuple | list):
        items = list(value)
        if not all(v is None or isinstance(v, bool | int | float | str) for v in items):
            return _MISSING
        if collapse and p.type in ("ints", "floats") and items and all(v == items[0] for v in items):
            return items[0]  # (3, 3) is written 3, as people write it
        return items
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _MISSING


def _same(a: Any, b: Any) -> bool:
    if (
        isinstance(a, float | int)
        and isinstance(b, float | int)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return float(a) == float(b)
    return a == b


def _meta(registry: Registry, config: dict[str, Any]) -> nn.Module | None:
    try:
        node = resolve(registry, config)
        # torch's advice about the layer (a transformer's fast path) was given when the user built it
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build(node)
    except (LayerExplorerError, RuntimeError, ValueError, TypeError, AssertionError, KeyError, IndexError):
        return None


def _signature(module: nn.Module) -> tuple[str, list[tuple[str, tuple[int, ...]]]]:
    tensors = [(n, tuple(t.shape)) for n, t in module.named_parameters()]
    tensors += [(n, tuple(t.shape)) for n, t in module.named_buffers() if t is not None]
    return repr(module), tensors


def _class_of(spec: LayerSpec) -> Any:
    """The class a catalog entry builds: its factory, or torch.nn's class of that name (a factory that
    checks the arguments first builds the plain torch class)."""
    if isinstance(spec.factory, type):
        return spec.factory
    return getattr(nn, spec.type, None) if spec.source == "torch" else None


def catalog_spec(registry: Registry, module: nn.Module) -> LayerSpec | None:
    """The catalog entry of this module's exact type (torch's class, the tutorial's), if there is one."""
    for spec in registry:
        if spec.container is None and _class_of(spec) is type(module):
            return spec
    return None


def leaf_config(registry: Registry, module: nn.Module) -> dict[str, Any] | None:
    """``{"type": ..., <argument>: <value>}`` that builds this very layer (same printout, same tensors),
    or None where the module is not a catalog layer or cannot be read back exactly."""
    spec = catalog_spec(registry, module)
    if spec is None:
        return None
    # repeated sizes written once where that builds the same module; as torch keeps them otherwise
    # (Fold prints output_size as it was given)
    return _config(registry, spec, module, collapse=True) or _config(registry, spec, module, collapse=False)


def _config(registry: Registry, spec: LayerSpec, module: nn.Module, *, collapse: bool) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for p in spec.params:
        values[p.name] = _plain(p, _read(module, p), registry, collapse)
        if values[p.name] is None and p.type == "layer" and _read(module, p) is not None:
            return None  # a nested layer that is not a catalog layer
    config: dict[str, Any] = {"type": spec.type}
    for p in spec.params:
        if p.required:
            if values[p.name] is _MISSING:
                return None
            config[p.name] = values[p.name]
    reference = _meta(registry, config)
    for p in spec.params:
        if reference is not None:
            break
        # an argument that is optional in the signature but needed (FractionalMaxPool2d's output_size)
        if not p.required and values[p.name] not in (_MISSING, None):
            config[p.name] = values[p.name]
            reference = _meta(registry, config)
    if reference is None:
        return None
    for p in spec.params:
        if p.required or values[p.name] is _MISSING:
            continue
        if _same(_plain(p, _read(reference, p), registry, collapse), values[p.name]):
            continue
        config[p.name] = values[p.name]
        reference = _meta(registry, config)
        if reference is None:
            return None
    if _signature(reference) != _signature(module):
        return None
    return config
