"""Bring your own layer: register an ``nn.Module`` subclass with the catalog.

A plugin is a Python module chosen by whoever starts the server (``layer-explorer --plugin
my_pkg.my_layers`` or ``LAYER_EXPLORER_PLUGINS=my_pkg.my_layers``) — never by a request::

    from app.plugins import register_layer, Param, Input

    @register_layer(
        family="custom",
        params=[Param("features", "int", required=True, minimum=1)],
        inputs=[Input("x", "(N, *, H_in)")],
        example={"layer": {"features": 8}, "inputs": [{"shape": [4, 8]}]},
    )
    class ScaledTanh(torch.nn.Module):
        ...

Parameters are introspected from ``__init__`` when ``params`` is omitted (annotated ``int``,
``float``, ``bool``, ``str`` and tuples of ints); without a ``rule`` the output shape is taken from
a meta-device forward pass. The decorator only records the class: nothing is registered until the
server loads the module, so importing a plugin elsewhere has no side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.catalog.plugins import PluginLayer, pending
from app.core.catalog.spec import InputSpec as Input
from app.core.catalog.spec import ParamSpec as Param
from app.core.shapes.expr import Dim, Sym

__all__ = ["Dim", "Input", "Param", "Sym", "register_layer"]


def register_layer(
    cls: type | None = None,
    *,
    name: str | None = None,
    family: str = "custom",
    params: list[Param] | None = None,
    inputs: list[Input] | None = None,
    outputs: list[str] | None = None,
    example: dict[str, Any] | None = None,
    rule: Callable[..., Any] | None = None,
    doc: str | None = None,
):
    """Decorator (or function) that offers ``cls`` to the catalog under ``name`` (default: class name)."""

    def wrap(klass: type) -> type:
        pending().append(
            PluginLayer(
                klass, name or klass.__name__, family, params, inputs, outputs, example, rule, doc, klass.__module__
            )
        )
        return klass

    return wrap(cls) if cls is not None else wrap
