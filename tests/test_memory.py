"""The memory estimate holds on every path: what a request really allocates is at most what the server
reserved for it, for the whole catalog × every endpoint (run, shape, explain, npy, animate, receptive
field) at scaled-up sizes, for networks, and for the window probe near its limits.

How it is measured. Each group of cases runs in one fresh spawned process, one case after another,
exactly as a worker runs it (the task function, then the JSON encoding the worker does):

- *what was reserved*: the process installs a budget ledger of its own, as a worker's initializer does,
  so every ``budget.reserve`` of the request (its plan, its window map, an animation's frames, a
  receptive field's autograd graph, …) is summed in the request's slot — the number the server's
  budget admits;
- *what was allocated*: before each case the process collects garbage and returns freed memory to the
  system (``malloc_trim``, as workers do after each task), so the request must fault in what it uses;
  then ``/proc/self/clear_refs`` resets the peak resident set to the current one, and after the
  request ``VmHWM − VmRSS(before)`` is its peak growth. This counts every allocator (torch's CPU
  allocator, NumPy, Pillow, Python objects) where tracemalloc would see only Python's.
- an encoder's ``ffmpeg`` process is a child, not part of the worker's resident set: the largest child
  so far (``RUSAGE_CHILDREN``'s ``ru_maxrss``) is added to the measure of every video case, which
  over-counts the small ones and never under-counts one.

A case fails above 1.0 × its reservation (plus 1 MiB the measure cannot resolve). Cases that the server answers with a 4xx are measured too:
memory allocated before the refusal must also have been reserved.
"""

from __future__ import annotations

import copy
import gc
import math
import multiprocessing
import os
import resource
import threading
from pathlib import Path
from typing import Any

import pytest

from app.core import body as body_mod
from app.core import budget, service, tasks
from app.core.errors import LayerExplorerError

# 1 MiB per scaled float32 input by default: large beside the process's noise, quick on 2 cores; set
# LAYER_EXPLORER_MEMORY_TEST_ELEMENTS to measure at larger sizes
TARGET_ELEMENTS = int(os.environ.get("LAYER_EXPLORER_MEMORY_TEST_ELEMENTS", 250_000))
#: what the measure cannot resolve: pages the allocator maps for its own bookkeeping, a thread's stack
NOISE = 1024**2
PROC = Path("/proc/self")
VIDEO = ("mp4", "webm")


def _status(key: str) -> int:
    for line in (PROC / "status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def scaled(body: dict, target: int = TARGET_ELEMENTS) -> dict | None:
    """The request with its batch (first) dimension multiplied until the first input is ``target``."""
    body = copy.deepcopy(body)
    shapes = [i.get("shape") for i in body.get("inputs") or []]
    if not shapes or any(s is None or not s for s in shapes):
        return None
    factor = max(1, target // max(1, math.prod(shapes[0])))
    for i in body["inputs"]:
        i["shape"][0] *= factor
    return body


def _call(registry, settings, task: str, body: Any, options: dict) -> str:
    try:
        result = tasks.TASKS[task](registry, body, settings, **options)
        if task in tasks.JSON_TASKS:
            result = body_mod.encode_json(result)
        del result
    except LayerExplorerError as exc:
        return f"{exc.status} {exc}"[:160]
    except Exception as exc:  # noqa: BLE001 - a 500: reported by the test, still measured
        return f"500 {type(exc).__name__}: {exc}"[:160]
    return "ok"


def _one(registry, settings, ledger, task: str, body: Any, options: dict, warm: Any) -> tuple[int, int, str]:
    """(reserved, peak growth, outcome) of one request.

    The layer's small example runs first, unmeasured: what its first call loads once per process
    (kernels, thread pools, lazily imported code) is not memory of a request (measured 77 MB for the
    first AdaptiveLogSoftmaxWithLoss run of a process, 0 for the next)."""
    _call(registry, settings, task, warm, options)
    budget.end()
    gc.collect()
    budget.trim()
    base = _status("VmRSS")
    (PROC / "clear_refs").write_text("5")
    budget.begin(0)
    outcome = _call(registry, settings, task, body, options)
    peak = _status("VmHWM") - base
    reserved = int(ledger.cells[0])
    budget.end()
    if options.get("fmt") in VIDEO:
        peak += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return reserved, peak, outcome


def measure(cases: list[tuple[str, str, dict, dict, dict]]) -> list[tuple[str, int, int, str]]:
    """(name, reserved, measured peak, outcome) per case, measured in this process one after another."""
    registry, settings = service.default_registry(), service.Settings(memory_limit_bytes=8 * 1024**3)
    service.warm_up(registry, settings)
    ledger = budget.Ledger([0, 0], threading.Lock(), 64 * 1024**3)
    budget.install(ledger)
    results = []
    for name, task, body, options, warm in cases:
        reserved, peak, outcome = _one(registry, settings, ledger, task, body, options, warm)
        results.append((name, reserved, peak, outcome))
    return results


def _child(cases, queue):
    try:
        queue.put(measure(cases))
    except BaseException as exc:  # noqa: BLE001 - report it to the test instead of leaving it waiting
        queue.put(exc)


def in_fresh_process(cases):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(cases, queue))
    proc.start()
    try:
        result = queue.get(timeout=900)
    finally:
        proc.join(timeout=60)
    if isinstance(result, BaseException):
        raise result
    return result


def _middle(shape: list) -> list[int]:
    """The middle element of the (first) output."""
    if shape and isinstance(shape[0], list):
        shape = shape[0]
    return [s // 2 for s in shape]


def catalog_cases() -> dict[str, list[tuple[str, str, dict, dict, dict]]]:
    """Every catalog entry's example, scaled, through every endpoint that takes it; by endpoint."""
    registry = service.default_registry()
    groups: dict[str, list] = {"run": [], "shape": [], "npy": [], "explain": [], "animate": [], "receptive": []}
    for spec in registry:
        body = scaled(spec.example)
        if body is None:
            continue
        if spec.to_dict()["opaque"]:
            # an opaque layer runs only on its recorded shapes: record the scaled batch as well
            factor = body["inputs"][0]["shape"][0] // spec.example["inputs"][0]["shape"][0]
            layer = body["layer"]
            layer["input_shapes"] = [i["shape"] for i in body["inputs"]]
            layer["output_shapes"] = [[s[0] * factor, *s[1:]] for s in layer["output_shapes"]]
        t, ex = spec.type, spec.example
        groups["run"].append((f"run {t}", "run", body, {}, ex))
        groups["shape"].append((f"shape {t}", "shape", body, {}, ex))
        groups["npy"].append((f"npy {t}", "npy", body, {}, ex))
        big = service.Settings(memory_limit_bytes=8 * 1024**3)
        out_shape = service.shape(registry, body, big)["output_shape"]
        # the warm-up runs the same path on the small example: an element of its own output
        warm_index = _middle(service.shape(registry, ex, big)["output_shape"] or [])
        if spec.explain and out_shape:
            index = _middle(out_shape)
            groups["explain"].append(
                (f"explain {t}", "explain", {**body, "index": index}, {}, {**ex, "index": warm_index})
            )
        if spec.windows:
            for fmt in ("gif", *(VIDEO if t in ("Conv2d", "MaxPool3d") else ())):
                groups["animate"].append((f"animate {fmt} {t}", "animate", ex, {"fmt": fmt}, ex))
        if out_shape is not None:
            index = _middle(out_shape)
            # autograd through the layer and its float64 twin, two draws: a smaller batch keeps it quick
            small = scaled(spec.example, TARGET_ELEMENTS // 8) or body
            rf_index = [0, *index[1:]]  # the first element along the (smaller) batch
            warm = {**ex, "index": warm_index}
            rf = (f"receptive field {t}", "receptive_field", {**small, "index": rf_index}, {}, warm)
            groups["receptive"].append(rf)
    for preset in service.presets():
        if preset.get("group") == "classic" and preset["id"] != "vit-tiny":
            continue  # full-size classics: tens of seconds each at a scaled batch; the small ViT stands for them
        body = scaled(preset["request"], TARGET_ELEMENTS // 4)
        if body is not None:
            name = preset.get("name", "preset")
            small = preset["request"]
            groups["run"].append((f"run {name}", "run", body, {}, small))
            rf = (f"receptive field {name}", "receptive_field", {**body, "index": [0]}, {}, {**small, "index": [0]})
            groups["receptive"].append(rf)
    return groups


def window_cases() -> list[tuple[str, str, dict, dict, dict]]:
    """The window probe near its limits: a huge kernel, a million window cells, 3-D."""

    def conv(n: int, k: int, size: int, **extra: Any) -> dict:
        layer = {"type": f"Conv{n}d", "in_channels": 1, "out_channels": 1, "kernel_size": k, **extra}
        return {"layer": layer, "inputs": [{"shape": [1, 1] + [size] * n}]}

    bodies = {
        "Conv2d k=110 on 111²": conv(2, 110, 111),
        "Conv2d k=200 on 200²": conv(2, 200, 200),
        "Conv2d k=3 on 333² (≈1M cells)": conv(2, 3, 333),
        "Conv3d k=3 on 50³, reflect": conv(3, 3, 50, padding=1, padding_mode="reflect"),
        "ConvTranspose2d k=5 s=2 on 100²": {
            "layer": {"type": "ConvTranspose2d", "in_channels": 1, "out_channels": 1, "kernel_size": 5, "stride": 2},
            "inputs": [{"shape": [1, 1, 100, 100]}],
        },
        "MaxPool2d k=2 on 1000²": {
            "layer": {"type": "MaxPool2d", "kernel_size": 2},
            "inputs": [{"shape": [1, 1, 1000, 1000]}],
        },
    }
    warm = conv(2, 3, 8)
    cases = []
    for name, body in bodies.items():
        cases += [(f"shape {name}", "shape", body, {}, warm), (f"run {name}", "run", body, {}, warm)]
    return cases


def _check(results) -> None:
    over = [
        f"{name}: measured {peak / 2**20:.1f} MiB > reserved {reserved / 2**20:.1f} MiB ({outcome})"
        for name, reserved, peak, outcome in results
        if peak > reserved + NOISE
    ]
    assert not over, "\n".join(over)


GROUPS = ("run", "shape", "npy", "explain", "animate", "receptive")


@pytest.mark.parametrize("endpoint", GROUPS)
def test_measured_peak_is_within_the_reservation(endpoint):
    cases = catalog_cases()[endpoint]
    assert cases
    results = in_fresh_process(cases)
    assert len(results) == len(cases)
    assert sum(outcome == "ok" for *_, outcome in results) > len(results) // 2  # measured, not refused
    _check(results)


def test_the_window_probe_near_its_limits_is_within_the_reservation():
    results = in_fresh_process(window_cases())
    assert all(outcome == "ok" for *_, outcome in results), results
    _check(results)
