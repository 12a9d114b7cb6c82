"""Images as inputs: ``{"image": "<base64 PNG or JPEG, or a data URL>", "mode", "size", "scale"}``.

Decoded with Pillow in the worker into a float32 tensor of shape (1, C, H, W) — a batch of one,
C = 1 for mode "L" and 3 for "RGB" — resized to ``size`` = [H, W] if given (bilinear), and scaled:

- ``unit``: pixel / 255, in [0, 1] (what ``torchvision.transforms.ToTensor`` gives);
- ``imagenet``: (pixel / 255 − mean) / std with ImageNet's per-channel mean and std (RGB only);
- ``raw``: the pixel values 0…255 as floats.

The header is read first: formats other than PNG and JPEG, and images larger than
:data:`MAX_SOURCE_PIXELS`, are refused before a pixel is decoded; the bytes decoding takes are
checked against the request's memory limit and counted in its estimate. The reproduction script
decodes the same bytes with the same calls (:func:`code`), so its tensor is this one, bit for bit.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from app.core.errors import InvalidArgument, TooLarge
from app.core.running.memory import human, refuse

FORMATS = ("PNG", "JPEG")
CHANNELS = {"L": 1, "RGB": 3}
SCALES = ("unit", "imagenet", "raw")
#: the largest image decoded (before resizing): 4096 × 4096 pixels, about 64 MiB while decoding
MAX_SOURCE_PIXELS = 4096 * 4096
#: torchvision's ImageNet statistics (the ones every pretrained model's preprocessing uses)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_DATA_URL = re.compile(r"^data:image/[a-z+.-]+;base64,", re.IGNORECASE)


@dataclass
class ImageSource:
    """What the request gave (the bytes and the options), for the script; and what decoding costs."""

    raw: bytes
    mode: str
    size: tuple[int, int] | None
    scale: str
    decode_bytes: int


def _decode_base64(text: str, field: str) -> bytes:
    text = _DATA_URL.sub("", text.strip(), count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(
            f"{field}: not valid base64 (give the file's bytes in base64, or a data: URL)", field=field
        ) from None


def _tensor(im: Image.Image, scale: str) -> torch.Tensor:
    """(1, C, H, W) float32 from a decoded image, the same operations :func:`code` writes."""
    channels = CHANNELS[im.mode]
    h, w = im.height, im.width
    x = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()).reshape(1, h, w, channels).permute(0, 3, 1, 2)
    x = x.contiguous()
    if scale == "unit":
        x = x / 255
    elif scale == "imagenet":
        x = (x / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x


def decode(
    text: str, *, mode: str, size: tuple[int, int] | None, scale: str, field: str, memory_limit: int, max_elements: int
) -> tuple[torch.Tensor, ImageSource]:
    """The image's tensor, (1, C, H, W) float32, and its source for the script."""
    if scale == "imagenet" and mode != "RGB":
        raise InvalidArgument(
            f"{field}: imagenet scaling has a mean and std per RGB channel; use mode RGB", field=field
        )
    raw = _decode_base64(text, field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise InvalidArgument(f"{field}: not a PNG or JPEG image", field=field) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"{field}: the image's dimensions are too large to decode", field=field) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidArgument(f"{field}: the image could not be read ({exc})", field=field) from None
    width, height = im.size
    if width * height > MAX_SOURCE_PIXELS:
        raise TooLarge(
            f"{field}: the image is {width}×{height} pixels; this server decodes at most {MAX_SOURCE_PIXELS} "
            f"pixels (4096×4096)",
            field=field,
        )
    out_h, out_w = size if size is not None else (height, width)
    channels = CHANNELS[mode]
    numel = channels * out_h * out_w
    if numel > max_elements:
        raise TooLarge(
            f"{field}: the image gives {channels}×{out_h}×{out_w} = {numel} values; the limit is {max_elements}",
            field=field,
        )
    # Pillow holds the decoded image (up to 4 bytes a pixel) and its converted and resized copies;
    # then the float32 array, its tensor and the scaled tensor
    needed = width * height * 4 * 2 + out_h * out_w * channels * (2 + 3 * 4)
    if needed > memory_limit:
        raise refuse(f"decoding the image would take {human(needed)}", needed, memory_limit, field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = im.convert(mode)
            if size is not None:
                im = im.resize((out_w, out_h), Image.Resampling.BILINEAR)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"{field}: the image's dimensions are too large to decode", field=field) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidArgument(f"{field}: the image could not be decoded ({exc})", field=field) from None
    return _tensor(im, scale), ImageSource(raw=raw, mode=mode, size=size, scale=scale, decode_bytes=needed)


#: import lines the script needs for an image input
IMPORTS = ("import base64", "import io", "import numpy as np", "from PIL import Image")


def code(var: str, src: ImageSource) -> list[str]:
    """Lines that decode the image as :func:`decode` does and leave (1, C, H, W) float32 in ``var``."""
    data = base64.b64encode(src.raw).decode()
    channels = CHANNELS[src.mode]
    lines = [
        f"{var}_image = Image.open(io.BytesIO(base64.b64decode({data!r}))).convert({src.mode!r})",
    ]
    if src.size is not None:
        h, w = src.size
        lines.append(f"{var}_image = {var}_image.resize(({w}, {h}), Image.Resampling.BILINEAR)")
    lines.append(
        f"{var} = torch.from_numpy(np.asarray({var}_image, dtype=np.float32).copy())"
        f".reshape(1, {var}_image.height, {var}_image.width, {channels}).permute(0, 3, 1, 2).contiguous()"
    )
    if src.scale == "unit":
        lines.append(f"{var} = {var} / 255  # pixels in [0, 1]")
    elif src.scale == "imagenet":
        lines.append(
            f"{var} = ({var} / 255 - torch.tensor({IMAGENET_MEAN!r}).view(1, 3, 1, 1)) "
            f"/ torch.tensor({IMAGENET_STD!r}).view(1, 3, 1, 1)  # ImageNet's mean and std"
        )
    return lines
