"""One table that turns torch's exceptions into the project's errors, in the user's words.

torch reports a bad argument, a shape it cannot take, a dtype without a kernel and an op the meta
device cannot run with the same few exception classes; the table below tells them apart by class
and message once, for every stage that calls torch (building, the meta pass, the real forward).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from app.core.errors import InvalidArgument, InvalidRequest, LayerExplorerError, ShapeMismatch, TooLarge

# What torch raises while building or running a layer because of what the request asked for. Anything
# else (a MemoryError, a bug of ours) is not the user's fault and is not translated here.
TORCH_FAULTS: tuple[type[BaseException], ...] = (
    RuntimeError,
    ValueError,
    TypeError,
    AssertionError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
    NotImplementedError,
)


@dataclass(frozen=True)
class Verdict:
    """What kind of problem an exception reports: argument, shape, dtype, memory or no_meta."""

    kind: str
    message: str


# (exception classes, message pattern or None, verdict kind), first match wins.
_TABLE: tuple[tuple[tuple[type[BaseException], ...], re.Pattern[str] | None, str], ...] = (
    ((torch.cuda.OutOfMemoryError,), None, "memory"),
    # ops that need real data (.item(), data-dependent output sizes) or have no meta kernel
    ((NotImplementedError,), None, "no_meta"),
    ((RuntimeError,), re.compile(r"\bmeta\b|data-dependent|Cannot copy out of", re.I), "no_meta"),
    (TORCH_FAULTS, re.compile(r"not implemented for '"), "dtype"),
    (
        (ValueError, TypeError, AssertionError, KeyError, OverflowError, ZeroDivisionError),
        re.compile(r"shape|size|dimension", re.I),
        "shape",
    ),
    ((ValueError, TypeError, AssertionError, KeyError, OverflowError, ZeroDivisionError), None, "argument"),
    ((RuntimeError, IndexError), None, "shape"),
)

_NOISE = re.compile(r"^(?:\w+Error: )+")


def torch_message(exc: BaseException) -> str:
    """torch's own message, first paragraph, without the C++ frames some errors carry."""
    text = (str(exc) if not isinstance(exc, KeyError) else str(exc.args[0]) if exc.args else "").strip()
    text = text or type(exc).__name__
    text = text.split("\nException raised from", 1)[0]
    text = _NOISE.sub("", text)
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else text


def classify(exc: BaseException, *, meta: bool = False) -> Verdict:
    """The verdict for an exception torch raised; ``meta`` allows the 'no meta kernel' verdict."""
    message = torch_message(exc)
    for kinds, pattern, kind in _TABLE:
        if kind == "no_meta" and not meta:
            continue
        if isinstance(exc, kinds) and (pattern is None or pattern.search(message)):
            return Verdict(kind, message)
    return Verdict("shape", message)


# torch's refusal of a tensor whose byte count does not fit int64 (even on the meta device)
_OVERFLOW = re.compile(r"Storage size calculation overflowed with sizes=\[([\d, ]+)\]")


def build_error(exc: BaseException, *, signature: str, argument_names: list[str], field: str) -> LayerExplorerError:
    """A layer's constructor refused its arguments: name the argument torch's message mentions.

    A parameter too large for any memory is a 413 like every other size limit, carrying the bytes it
    would need (float32) for the planner to word as its memory refusal.
    """
    message = torch_message(exc)
    overflow = _OVERFLOW.search(message)
    if overflow:
        numel = math.prod(int(d) for d in overflow.group(1).split(","))
        return TooLarge(f"{signature} cannot be built: {message}", field=field, estimate_bytes=numel * 4)
    culprit = next((k for k in argument_names if re.search(rf"\b{re.escape(k)}\b", message)), None)
    return InvalidArgument(f"{signature} cannot be built: {message}", field=f"{field}.{culprit}" if culprit else field)


def forward_error(exc: BaseException, *, layer: str, shapes: str, dtype: str, device: str) -> LayerExplorerError:
    """A forward pass (real or meta) refused its inputs."""
    if isinstance(exc, LayerExplorerError):
        return exc
    verdict = classify(exc)
    if verdict.kind == "memory":
        return TooLarge(f"{device} ran out of memory running {layer}")
    if verdict.kind == "dtype":
        return InvalidRequest(f"{layer} cannot run in {dtype} on {device}: {verdict.message}", field="dtype")
    if verdict.kind == "argument":
        return InvalidArgument(f"{layer} cannot run: {verdict.message}", field="layer")
    return ShapeMismatch(f"{layer} cannot run on input shape(s) {shapes}: {verdict.message}", field="inputs")
