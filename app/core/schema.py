"""The request body every endpoint shares, as pydantic models (no fastapi here)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.core.errors import InvalidRequest

MAX_RANK = 8
MAX_INPUTS = 8


#: one size of a shape: a whole number (not true/false, not 2.0), at least 1, within torch's int64
Size = Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)]

#: exactly one of shape, data, image and text, as JSON Schema says it (the validator below says it to pydantic)
_ONE_OF = {
    "oneOf": [
        {"required": ["shape"], "properties": {"shape": {"type": "array"}}},
        {"required": ["data"], "properties": {"data": {"not": {"type": "null"}}}},
        {"required": ["image"], "properties": {"image": {"type": "string"}}},
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
    ]
}

#: the largest side of an image input after resizing (its ``size``)
MAX_IMAGE_SIDE = 4096
#: the longest text input, in characters
MAX_TEXT = 4096


class TensorInput(BaseModel):
    """One forward() argument: a shape to draw, the numbers themselves, or an image to decode."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_OF)

    shape: list[Size] | None = Field(default=None, max_length=MAX_RANK)
    data: Any = None
    dtype: str | None = None
    #: a PNG or JPEG in base64 (or a data: URL), decoded into (1, C, H, W)
    image: str | None = None
    #: with ``image``: "L" (one grey channel) or "RGB" (three); default RGB
    mode: Literal["L", "RGB"] | None = None
    #: with ``image``: [H, W] to resize to (bilinear); default the image's own size
    size: list[Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)]] | None = Field(default=None, min_length=2, max_length=2)
    #: with ``image``: "unit" (pixel / 255, default), "imagenet" (ImageNet's mean and std) or "raw" (0…255)
    scale: Literal["unit", "imagenet", "raw"] | None = None
    #: a short text for an input of indices (an Embedding's): token ids (1, L) over its sorted vocabulary
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    #: with ``text``: "char" (every character a token, the default) or "whitespace" (words)
    tokenize: Literal["char", "whitespace"] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> TensorInput:
        given = [k for k in ("shape", "data", "image", "text") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give one of 'shape' (a list of sizes), 'data' (a nested list of numbers), 'image' "
                "(a base64 PNG or JPEG) or 'text'"
            )
        if self.image is None and (self.mode, self.size, self.scale) != (None, None, None):
            raise ValueError("'mode', 'size' and 'scale' go with 'image'")
        if self.text is None and self.tokenize is not None:
            raise ValueError("'tokenize' goes with 'text'")
        return self


class WindowSlice(BaseModel):
    """Which planes the sliding window draws: their real values come back in ``windows.values``."""

    model_config = ConfigDict(extra="forbid")

    batch: int = Field(default=0, ge=0, lt=2**31)
    channel: int = Field(default=0, ge=0, lt=2**31)
    #: 3-D windows: the output depth slice an animation draws (clamped to the output), or "all" to
    #: sweep every slice in one animation; /api/run lists whole volumes and ignores it
    depth: Annotated[int, Field(ge=0, lt=2**31)] | Literal["all"] = 0


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layer: dict[str, Any]
    inputs: list[TensorInput] | None = Field(default=None, max_length=MAX_INPUTS)
    seed: int = Field(default=0, ge=0, lt=2**63)
    #: cpu, cuda, cuda:N, mps or auto; absent or null: the server's default (an empty name is refused)
    device: str | None = Field(default=None, min_length=1)
    dtype: str = "float32"
    #: run in training mode (a freshly built module is in training mode, as in a notebook)
    train: bool = True
    #: a layer inside the network, by module path ("1.fc2"): report that layer as it ran there
    path: str | None = Field(default=None, max_length=512)
    #: the sample and output channel whose sliding-window planes to list (any tensor size)
    window_slice: WindowSlice | None = None
    #: values for parameters and buffers by name (``params[].name``): a nested list of numbers or
    #: ``{"npy": "<base64 .npy>"}`` each, used instead of the seeded initialisation
    parameters: dict[str, Any] | None = None


class ExplainRequest(RunRequest):
    index: list[int] = Field(max_length=MAX_RANK + 2)
    output: str | None = None


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse(model: type[BaseModel], body: Any) -> Any:
    """Validate a decoded JSON body; the first problem becomes an InvalidRequest naming its field."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object with 'layer' and 'inputs'")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = _loc(tuple(p for p in err["loc"] if p not in ("function-after[_one_of()]",)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field {field!r}; the request takes {', '.join(model.model_fields)}"
        elif field == "seed":
            msg = f"seed must be an integer between 0 and 2**63 - 1; {msg[0].lower() + msg[1:]}"
        else:
            msg = f"{field}: {msg}" if field else msg
        raise InvalidRequest(msg, field=field or None) from None


class ReceptiveFieldRequest(RunRequest):
    # POST /api/receptive-field (a comment, not a docstring: the OpenAPI document shows docstrings)
    #: an element of the output (or of the node chosen with ``path`` / ``node``); negative counts from the end
    index: list[int] = Field(max_length=MAX_RANK + 2)
    #: a node of the graph by id (e.g. "add"), for nodes that are not module calls
    node: str | None = Field(default=None, max_length=256)
    #: also the effective field (|∂y/∂x| on the real weights and input), which runs the network; without it,
    #: the structural field is answered from the plan alone where every operation has an index rule
    effective: bool = True
