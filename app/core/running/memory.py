"""Memory estimates: bytes of the tensors a request needs, checked against the server's limit."""

from __future__ import annotations

import math

import torch

from app.core.errors import TooLarge


def tensor_bytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    return math.prod(shape) * (torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


def refuse(what: str, needed: int, limit: int, *, field: str | None = None) -> TooLarge:
    """The 413 for a request estimated at ``needed`` bytes, naming what takes them."""
    return TooLarge(f"{what}; this server's limit is {human(limit)}", field=field, estimate_bytes=needed,
                    limit_bytes=limit)
