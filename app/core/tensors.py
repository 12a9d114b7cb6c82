"""Tensors in and out: drawing seeded inputs, and writing tensors as JSON or ``.npy``.

JSON has no infinity or NaN: non-finite values are written as the strings ``"inf"``, ``"-inf"``
and ``"nan"``, and summary statistics are taken over the finite values only.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
INPUT_DTYPES: dict[str, torch.dtype] = {
    **DTYPES,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}

PREVIEW_MAX = 32
#: the fewest numbers a preview is worth sending (fewer: the summary alone)
PREVIEW_MIN = 64


#: what fills a freshly built module's tensors with numbers: on the meta device there are no numbers, so
#: planning skips them (``Linear.__init__`` running ``kaiming_uniform_`` on meta tensors was 39% of a shape
#: request). None of these changes a shape.
_FILLS = frozenset(
    {"uniform_", "normal_", "zero_", "fill_", "random_", "bernoulli_", "exponential_", "fill_diagonal_", "copy_"}
)


class NoInit(TorchFunctionMode):
    """Building on the meta device without initialising: ``torch.nn.init``'s functions and the in-place
    fills return their (meta) tensor untouched. The mode is this thread's only, so a real build running in
    another thread at the same time initialises as always (and draws the same numbers)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        first = args[0] if args else kwargs.get("tensor")
        if isinstance(first, torch.Tensor) and first.is_meta:
            name = getattr(func, "__name__", "")
            if getattr(func, "__module__", "") == "torch.nn.init" or name in _FILLS:
                return first
        return func(*args, **kwargs)


@contextlib.contextmanager
def on_meta_without_init() -> Iterator[None]:
    """Build modules on the meta device, their parameters and buffers shaped but never filled."""
    with torch.device("meta"), NoInit():
        yield


#: each dtype's name, spelled once: an answer names the dtype of every parameter (2048 of them in a
#: 512-block network), and ``str(torch.dtype)`` costs a microsecond each time
_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def draw(kind: str, shape: tuple[int, ...], high: int | None) -> torch.Tensor:
    """Draw one input the way a notebook would, from torch's global (seeded) generator."""
    if kind == "uniform":
        return torch.rand(shape)
    if kind == "index":
        return torch.randint(0, max(int(high or 1), 1), shape)
    if kind == "sign":
        return (torch.randint(0, 2, shape) * 2 - 1).float()
    if kind == "binary":
        return torch.randint(0, 2, shape).float()
    return torch.randn(shape)


def draw_code(kind: str, shape: tuple[int, ...], high: int | None) -> str:
    dims = ", ".join(str(s) for s in shape) if shape else ""
    size = f"({dims},)" if len(shape) == 1 else f"({dims})"
    if kind == "uniform":
        return f"torch.rand{size if shape else '(())'}"
    if kind == "index":
        return f"torch.randint(0, {max(int(high or 1), 1)}, {size})"
    if kind == "sign":
        return f"(torch.randint(0, 2, {size}) * 2 - 1).float()"
    if kind == "binary":
        return f"torch.randint(0, 2, {size}).float()"
    return f"torch.randn{size if shape else '(())'}"


def _clean(x: float) -> Any:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def to_nested(array: np.ndarray, finite: bool = False) -> Any:
    """A nested list with non-finite floats spelled as strings. ``finite``: the caller knows every value is
    finite (its summary counted no other), so the check is skipped."""
    if array.dtype.kind == "b":
        return array.tolist()
    if array.dtype.kind in "iu":
        return array.tolist()
    if array.ndim == 0:
        return _clean(float(array))
    if finite or np.isfinite(array).all():
        return array.tolist()
    obj = array.astype(object)
    flat = obj.reshape(-1)
    for i, v in enumerate(flat):
        flat[i] = _clean(float(v))
    return obj.tolist()


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    if t.is_complex():
        t = t.abs()
    return t.cpu().numpy()


def numpy_of(t: torch.Tensor) -> np.ndarray:
    """A tensor as a NumPy array on the CPU (half precision widened, complex as magnitude)."""
    return _numpy(t)


#: elements per chunk when summarising: the float64 working copies stay within a few MiB
SUMMARY_CHUNK = 1 << 16


def summary(array: np.ndarray) -> dict[str, Any]:
    """min, max, mean, std of the finite values and the count of the others, in float64.

    Computed chunk by chunk (Chan's parallel merge of mean and M2), so that summarising a tensor
    never holds a float64 copy of it: the memory it needs is bounded whatever the tensor's size.

    Almost every tensor is finite throughout, and two passes over it in its own dtype say so: the
    minimum and maximum are NaN where any value is, and ±inf where any value is infinite. Such a tensor
    skips the finite-value mask and its copy per chunk (:func:`_finite_summary`, half the work, the same
    numbers); any other goes the general way (:func:`_masked_summary`).
    """
    flat = array.reshape(-1)
    if flat.size and flat.dtype.kind in "fiub":
        low, high = flat.min(), flat.max()
        if math.isfinite(low) and math.isfinite(high):
            # float64 of the float32 extremes is exact, and float64 rounding is monotonic (int64): these
            # are the extremes of the float64 copy the general way takes them from
            return _finite_summary(flat, float(low), float(high))
    return _masked_summary(flat)


_add = np.add.reduce


def _finite_summary(flat: np.ndarray, low: float, high: float) -> dict[str, Any]:
    """:func:`_masked_summary` for a tensor without a non-finite value: each chunk's float64 copy is the
    finite values themselves, so its mean and M2 are taken from it directly (its deviations squared in
    place), by the same NumPy reductions in the same order: the same bits."""
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, flat.size, SUMMARY_CHUNK):
        chunk = flat[start : start + SUMMARY_CHUNK].astype(np.float64)
        n = chunk.size
        # what ndarray.mean and .sum compute (the same pairwise sum, then a float64 division), without
        # their Python wrappers: 180 chunks for ResNet-18's parameters
        chunk_mean = float(_add(chunk)) / n
        np.subtract(chunk, chunk_mean, out=chunk)
        np.square(chunk, out=chunk)
        chunk_m2 = float(_add(chunk))
        delta = chunk_mean - mean
        total = count + n
        mean += delta * n / total
        m2 += chunk_m2 + delta * delta * count * n / total
        count = total
    return {"min": low, "max": high, "mean": mean, "std": math.sqrt(m2 / count), "nonfinite": 0}


def _masked_summary(flat: np.ndarray) -> dict[str, Any]:
    """:func:`summary` of any tensor: each chunk's finite values picked out by a mask."""
    count, mean, m2, nonfinite = 0, 0.0, 0.0, 0
    low, high = math.inf, -math.inf
    for start in range(0, flat.size, SUMMARY_CHUNK):
        chunk = flat[start : start + SUMMARY_CHUNK].astype(np.float64)
        finite = chunk[np.isfinite(chunk)]
        nonfinite += chunk.size - finite.size
        if not finite.size:
            continue
        n = finite.size
        chunk_mean = float(finite.mean())
        chunk_m2 = float(((finite - chunk_mean) ** 2).sum())
        delta = chunk_mean - mean
        total = count + n
        mean += delta * n / total
        m2 += chunk_m2 + delta * delta * count * n / total
        count = total
        low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if count == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "nonfinite": int(nonfinite)}
    return {"min": low, "max": high, "mean": mean, "std": math.sqrt(m2 / count), "nonfinite": int(nonfinite)}


#: elements per chunk when summarising on a GPU: float64 working copies of 32 MiB on the device
DEVICE_SUMMARY_CHUNK = 1 << 22


def device_summary(t: torch.Tensor) -> dict[str, Any]:
    """:func:`summary` computed where the tensor lives (a GPU): per chunk, the count, mean, M2, min, max
    and non-finite count of its float64 values are computed on the device; one small table comes back
    (the one synchronisation the answer needs) and is merged here as :func:`summary` merges its chunks.

    Copying the tensor to the CPU to summarise it would move all of it (64 MB for 16 M float32) where
    the answer sends five numbers.
    """
    flat = t.detach().reshape(-1)
    if flat.is_complex():
        flat = flat.abs()
    rows = []
    for start in range(0, flat.numel(), DEVICE_SUMMARY_CHUNK):
        chunk = flat[start : start + DEVICE_SUMMARY_CHUNK].to(torch.float64)
        finite = torch.isfinite(chunk)
        n = finite.sum(dtype=torch.float64)
        # masked, not indexed: a boolean index needs its count on the host (a synchronisation per chunk)
        mean = torch.where(finite, chunk, 0.0).sum() / n.clamp(min=1)
        m2 = torch.where(finite, chunk - mean, 0.0).square().sum()
        low = torch.where(finite, chunk, math.inf).min()
        high = torch.where(finite, chunk, -math.inf).max()
        rows.append(torch.stack([n, mean, m2, low, high, chunk.numel() - n]))
    count, mean, m2, nonfinite = 0, 0.0, 0.0, 0
    low, high = math.inf, -math.inf
    for n, chunk_mean, chunk_m2, chunk_low, chunk_high, bad in torch.stack(rows).tolist() if rows else []:
        nonfinite += int(bad)
        if not n:
            continue
        n = int(n)
        delta = chunk_mean - mean
        total = count + n
        mean += delta * n / total
        m2 += chunk_m2 + delta * delta * count * n / total
        count = total
        low, high = min(low, chunk_low), max(high, chunk_high)
    if count == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "nonfinite": int(nonfinite)}
    return {"min": low, "max": high, "mean": mean, "std": math.sqrt(m2 / count), "nonfinite": int(nonfinite)}


#: JSON bytes one number may take in ``data`` or ``preview``, at most: float64's shortest repr of a
#: float32 value ("-1.2345678901234567e-05", 23 characters) and its comma; integers take fewer
NUMBER_BYTES = 24
#: a ``summary`` object: four numbers, a count and their keys
SUMMARY_BYTES = 160


class ValueBudget:
    """Bytes of tensor values (``data``, ``preview``, ``summary``) one answer may still send.

    One budget per response, spent tensor by tensor in the order the answer fills them (outputs,
    inputs, parameters): whatever the network, the answer stays bounded. A tensor past it is sent as
    its name, shape and dtype, with ``"values"`` saying what was left out.
    """

    def __init__(self, total: int) -> None:
        self.left = max(0, int(total))

    def take(self, nbytes: int) -> bool:
        if nbytes > self.left:
            return False
        self.left -= nbytes
        return True

    @property
    def spent(self) -> bool:
        """Not even a summary fits any more: every tensor from here on is sent without values (``"none"``),
        and costs its name, shape and dtype alone (nothing is read from it)."""
        return self.left < SUMMARY_BYTES


def json_bytes(shape: tuple[int, ...] | list[int]) -> int:
    """The most JSON bytes a nested list of this shape takes: its numbers, and every list's brackets and comma."""
    lists = sum(math.prod(shape[:k]) for k in range(len(shape)))
    return math.prod(shape) * NUMBER_BYTES + 3 * lists


def tensor_json(
    name: str, t: torch.Tensor, *, max_elements: int, with_data: bool = True, budget: ValueBudget | None = None
) -> dict[str, Any]:
    """A tensor as JSON: all numbers when small, else a summary and an evenly strided preview.

    ``values`` says which: ``"data"`` (every number), ``"preview"`` (a strided sample), ``"summary"``
    (the statistics alone: the answer's ``budget`` was spent), ``"none"`` (nothing: not even the
    statistics fitted). The summary is computed only for a tensor that sends one.
    """
    out: dict[str, Any] = {
        "name": name,
        "shape": list(t.shape),
        "dtype": dtype_name(t.dtype),
        "numel": int(t.numel()),
    }
    if t.device.type == "meta":
        out.update(data=None, summary=None, preview=None)
        return out
    budget = budget if budget is not None else ValueBudget(2**62)
    if not budget.take(SUMMARY_BYTES):
        out.update(values="none", data=None, summary=None, preview=None)
        return out
    # on a GPU the summary is computed there, and only the numbers sent (all, or the preview) come back
    on_device = t.device.type != "cpu"
    array = None if on_device else _numpy(t)
    out["summary"] = device_summary(t) if on_device else summary(array)
    # the summary counted the values that are not finite: with none, the lists need no check of their own
    finite = out["summary"]["nonfinite"] == 0
    shape = tuple(t.shape)
    if with_data and t.numel() <= max_elements and budget.take(json_bytes(shape)):
        out["data"] = to_nested(_numpy(t) if array is None else array, finite)
        out["preview"] = None
        out["values"] = "data"
        return out
    out["data"] = None
    out["preview"] = None
    out["values"] = "summary"
    if not with_data or t.dim() == 0:
        return out
    # the preview: at most max_elements numbers, fewer where the budget has less left, but not a
    # handful of cells standing for a big tensor (the statistics say more than a 2 × 4 sample)
    size = t.numel()
    room = min(max_elements, size, budget.left // NUMBER_BYTES)
    while room >= min(PREVIEW_MIN, size):
        steps = preview_steps(shape, room)
        counts = [math.ceil(d / st) if d else 0 for d, st in zip(shape, steps)]
        if budget.take(json_bytes(counts)):
            index = tuple(slice(None, None, st) for st in steps)
            sampled = array[index] if array is not None else _numpy(t.detach()[index])
            out["preview"] = to_nested(np.ascontiguousarray(sampled), finite)
            out["preview_step"] = steps
            out["values"] = "preview"
            break
        room //= 2
    return out


def preview_steps(shape: tuple[int, ...], budget: int) -> list[int]:
    """Strides for an evenly spaced preview: at most PREVIEW_MAX per dimension and ``budget`` in all
    (a per-dimension cap alone would send 32⁵ numbers for a 5-D tensor)."""
    steps = [max(1, math.ceil(s / PREVIEW_MAX)) for s in shape]
    counts = [math.ceil(s / st) if s else 0 for s, st in zip(shape, steps)]
    while math.prod(counts) > max(1, budget):
        i = max(range(len(counts)), key=lambda k: counts[k])
        steps[i] *= 2
        counts[i] = math.ceil(shape[i] / steps[i])
    return steps


def npy_bytes(t: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    np.save(buf, _numpy(t), allow_pickle=False)
    return buf.getvalue()


def flatten_outputs(result: Any, names: list[str]) -> list[tuple[str, torch.Tensor]]:
    """Name every tensor in a forward() result: LSTM's (output, (h_n, c_n)) -> output, h_n, c_n.

    A ``None`` in the result (MultiheadAttention without weights) keeps its name's place.
    """
    leaves: list[torch.Tensor | None] = []

    def walk(node: Any) -> None:
        if isinstance(node, torch.Tensor) or node is None:
            leaves.append(node)
        elif isinstance(node, (tuple, list)):
            for child in node:
                walk(child)

    walk(result)
    named = []
    for i, t in enumerate(leaves):
        if t is not None:
            named.append((names[i] if i < len(names) else f"output{i}", t))
    return named


def snapshot(value: Any) -> Any:
    """A copy of every tensor in ``value`` (nested tuples, lists and dicts keep their structure).

    What a forward hook records must be taken at the moment of the call: the tensor a hook sees is
    the live one, and the code after the call may change it in place (``out += identity``,
    ``ReLU(inplace=True)``), so a kept reference would report a later value as this layer's.
    """
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple (PackedSequence, ...)
        return type(value)(*(snapshot(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(snapshot(v) for v in value)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor in a nest of tuples, lists and dicts (a module's arguments or its output), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []
