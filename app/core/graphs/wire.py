"""Receptive fields on the wire: masks as run lengths and heat maps as PNG images, never one JSON number
per element (a ResNet-18's field has millions of elements; per-element JSON made answers of 10 MB).

- A 0/1 mask is sent as *run lengths* over its elements in C order (the last index fastest): alternately
  the length of a run of 0s and of 1s, starting with 0s (so a mask that starts with a 1 starts with a 0
  length). ``[3, 2, 4]`` is ``0 0 0 1 1 0 0 0 0``. The lengths add up to the number of elements.
- A heat map (|∂y/∂x|, ≥ 0) is sent as an 8-bit grayscale PNG, base64-encoded: 255 is the map's
  maximum, 0 is exactly zero, and every non-zero value is at least 1 (a gradient too small to show
  still counts as reached). A tensor of more than two dimensions is the image of shape
  (numel / last, last): its rows in C order.

:func:`unrle` and :func:`unpng` decode them (the tests' round trip; a Python client can use them).
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image


def rle(mask: np.ndarray) -> list[int]:
    """Run lengths of a boolean array in C order: 0s, 1s, 0s, ... (the first length may be 0)."""
    flat = np.ascontiguousarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    lengths = np.diff(bounds).tolist()
    return [0, *lengths] if flat[0] else lengths


def unrle(lengths: list[int], shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """The boolean array of ``shape`` that :func:`rle` encoded."""
    n = int(np.prod(shape, dtype=np.int64))
    if sum(lengths) != n:
        raise ValueError(f"the run lengths add up to {sum(lengths)}, not {n} elements")
    values = np.arange(len(lengths)) % 2 == 1
    return np.repeat(values, lengths).reshape(shape)


def quantise(heat: np.ndarray, top: float) -> np.ndarray:
    """0..255 with 255 at ``top``; exactly 0 stays 0, every non-zero value is at least 1."""
    if top <= 0:
        return np.zeros(heat.shape, dtype=np.uint8)
    q = np.rint(heat.astype(np.float64) * (255.0 / top))
    q = np.clip(q, 0, 255)
    q[(heat > 0) & (q == 0)] = 1
    return q.astype(np.uint8)


def image_shape(shape: list[int] | tuple[int, ...]) -> tuple[int, int]:
    """The 2-D image a tensor of ``shape`` is sent as: (numel / last, last); a scalar is 1 × 1."""
    if len(shape) == 0:
        return (1, 1)
    last = int(shape[-1])
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    return (rows, last)


_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the closing chunk, always the same bytes
_IEND = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(levels: np.ndarray) -> str:
    """A uint8 array as the base64 text of an 8-bit grayscale PNG of :func:`image_shape`.

    Written here rather than by Pillow: a receptive field sends a heat map per node, and Pillow's
    image-and-encoder setup cost about 60 µs an image, more than the pixels (a 512-block network's
    answer has 1026 of them). An 8-bit grayscale PNG is a fixed header, the rows deflated, each after a
    filter-type byte, and a fixed end (RFC 2083); filter 0 (none) for every row: on these heat maps it
    came out smaller than Pillow's adaptive filters (144 KB against 145 KB for a ResNet-18 logit's)."""
    rows, cols = image_shape(levels.shape)
    if rows == 0 or cols == 0:
        raise ValueError("a PNG has at least one row and one column")  # as Pillow refuses an empty image
    scanlines = np.zeros((rows, cols + 1), dtype=np.uint8)  # column 0: each row's filter type, 0
    scanlines[:, 1:] = levels.reshape(rows, cols)
    header = struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0)  # 8 bits, grayscale, deflate, no interlace
    data = _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + _IEND
    return base64.b64encode(data).decode("ascii")


def unpng(text: str, shape: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
    """The uint8 levels of a :func:`png` (reshaped to ``shape`` when given)."""
    with Image.open(io.BytesIO(base64.b64decode(text))) as img:
        levels = np.array(img.convert("L"), dtype=np.uint8)  # a writable copy
    return levels.reshape(shape) if shape is not None else levels


# ---------------------------------------------------------------------------------------------
# a receptive-field answer's node entry, decoded
# ---------------------------------------------------------------------------------------------


def mask(entry: dict[str, Any]) -> np.ndarray | None:
    """The node's structural field as a boolean array of its shape: the product of its ``runs``, or its
    ``rle``; all False where nothing of the node takes part; None for a node after the chosen one."""
    shape = entry.get("shape")
    if shape is None:
        return None
    if entry.get("runs") is not None:
        out = np.ones((), dtype=bool)
        for n, runs in zip(shape, entry["runs"]):
            axis = np.zeros(n, dtype=bool)
            for first, last in runs:
                axis[first : last + 1] = True
            out = np.multiply.outer(out, axis)
        return out.astype(bool).reshape(shape)
    if entry.get("rle") is not None:
        return unrle(entry["rle"], shape)
    return np.zeros(shape, dtype=bool)


def grid(entry: dict[str, Any]) -> np.ndarray | None:
    """The structural grid (last two dimensions, the leading ones folded with any) as a boolean array."""
    g = entry.get("grid")
    return None if g is None else unrle(g["rle"], g["shape"])


def heat(entry: dict[str, Any]) -> np.ndarray | None:
    """The effective field's levels (0..255) over the whole tensor, where it was sent (up to two dimensions,
    the grid is the whole tensor)."""
    eff = entry.get("effective")
    if not eff:
        return None
    if eff.get("png") is not None:
        return unpng(eff["png"], entry["shape"])
    if len(entry["shape"]) <= 2 and eff.get("grid") is not None:
        return unpng(eff["grid"]["png"], entry["shape"])
    return None


def heat_grid(entry: dict[str, Any]) -> np.ndarray | None:
    """The effective field's levels (0..255) over the folded grid (max over the leading dimensions)."""
    eff = entry.get("effective")
    if not eff or eff.get("grid") is None:
        return None
    return unpng(eff["grid"]["png"], eff["grid"]["shape"])
