"""``Opaque``: a layer the catalog does not know, seen only from outside.

``layer_explorer.to_config`` turns a leaf of a live model that is not a catalog type (the user's own
``MyBlock``) into this layer: its class name, the shapes it received and returned in the example
forward pass, and its parameters' shapes. The server never runs the user's code: the layer is drawn,
sized and counted from those recorded facts, its input shapes are checked against the recorded ones,
and its forward returns a fixed, seed-free tensor of the recorded shape (``linspace(-1, 1)``), so the
layers after it run on something. It is not explained and cannot be drilled into.

Input: the recorded shapes -> Output: the recorded shapes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from app.core.catalog.families.tutorial import class_source
from app.core.catalog.spec import InputSpec, LayerSpec, ParamSpec, Registry
from app.core.shapes.context import ShapeContext, fmt_shape, generic_names
from app.core.shapes.expr import Dim, Sym

#: what the page and the answer's notes say about an opaque layer's numbers
NOT_COMPUTED = "opaque: not computed"


class Opaque(nn.Module):
    """A stand-in for a layer the server does not run: parameters of the recorded shapes (zeros, or the
    values sent in ``parameters``) and a forward that returns ``linspace(-1, 1)`` in each recorded
    output shape, in the first input's floating-point dtype, on its device.

    Input: input_shapes -> Output: output_shapes (a tuple when there are several).
    """

    def __init__(
        self,
        type_name: str,
        input_shapes: list[list[int]],
        output_shapes: list[list[int]],
        parameter_shapes: dict[str, list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.type_name = type_name
        self.input_shapes = [list(s) for s in input_shapes]
        self.output_shapes = [list(s) for s in output_shapes]
        self.parameter_shapes = {k: list(v) for k, v in (parameter_shapes or {}).items()}
        for name, shape in self.parameter_shapes.items():
            # dotted names ("proj.weight") keep the user's module's own names, so its state_dict fits
            *path, leaf = name.split(".")
            owner: nn.Module = self
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            # zeros: no random numbers drawn, so the layers around it get the same ones as without it
            owner.register_parameter(leaf, nn.Parameter(torch.zeros(shape)))

    def forward(self, *args: Any) -> Any:
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        dtype = first.dtype if first is not None and first.dtype.is_floating_point else torch.get_default_dtype()
        device = first.device if first is not None else None
        outs = [
            torch.linspace(-1.0, 1.0, math.prod(s), dtype=dtype, device=device).reshape(s) for s in self.output_shapes
        ]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def extra_repr(self) -> str:
        return f"{self.type_name}: opaque: not computed"


def _rule(ctx: ShapeContext) -> list[list[Dim]]:
    """The recorded output shapes, once the inputs are the recorded ones."""
    recorded = [tuple(s) for s in ctx.arg("input_shapes")]
    given = [tuple(s) for s in ctx.shapes]
    name = ctx.arg("type_name")
    if len(given) != len(recorded):
        raise ctx.fail(
            f"stands for {name}, recorded with {len(recorded)} input(s); it is called with {len(given)}. "
            "An opaque layer runs only on the inputs it was recorded with"
        )
    for i, (g, r) in enumerate(zip(given, recorded)):
        if g != r:
            raise ctx.fail(
                f"stands for {name}, recorded with input {i} of shape {fmt_shape(r)}; it is called with "
                f"{fmt_shape(g)}. An opaque layer runs only on the shapes it was recorded with: record it again "
                "(layer_explorer.to_config) with an input of this shape",
                i,
            )
    return [[Dim(n, Sym(n, v)) for n, v in zip(generic_names(len(s), None), s)] for s in ctx.arg("output_shapes")]


def register(registry: Registry) -> None:
    registry.add(
        LayerSpec(
            type="Opaque",
            family="opaque",
            factory=Opaque,
            params=[
                ParamSpec("type_name", "str", required=True, doc="the class name of the layer it stands for"),
                ParamSpec(
                    "input_shapes", "shapes", required=True, doc="the shapes it received in the recorded forward pass"
                ),
                ParamSpec(
                    "output_shapes", "shapes", required=True, doc="the shapes it returned in the recorded forward pass"
                ),
                ParamSpec(
                    "parameter_shapes",
                    "named_shapes",
                    default={},
                    doc="its parameters' shapes by name (dotted names go into its own submodules)",
                ),
            ],
            inputs=[InputSpec("x", "(*)")],
            example={
                "layer": {
                    "type": "Opaque",
                    "type_name": "MyBlock",
                    "input_shapes": [[1, 8]],
                    "output_shapes": [[1, 4]],
                    "parameter_shapes": {"w": [4, 8]},
                },
                "inputs": [{"shape": [1, 8]}],
                "seed": 0,
            },
            doc="A layer the server does not know, recorded from a live model: drawn, sized and counted from "
            "its recorded shapes, never run (its output is a fixed linspace(-1, 1) of the recorded shape) and "
            "not explained.",
            rule=_rule,
            source="opaque",
            code_prelude=class_source(Opaque, "import math", "from typing import Any"),
            code_name="Opaque",
        )
    )
