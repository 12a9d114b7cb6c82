"""The memory estimate holds: what a request really allocates (the worker's peak RSS) is at most
what the server estimated and admitted, for every catalog example scaled up and for networks.

Each case runs in one fresh spawned process: the peak resident set is reset before each request
(``/proc/self/clear_refs``) and read after it (``VmHWM``), so the measure is the request's alone.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import multiprocessing
from pathlib import Path

from app.core import service

# about 8 MiB per scaled input: large beside the process's noise, small for CI
TARGET_ELEMENTS = 2_000_000
PROC = Path("/proc/self")


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


def measure(cases: list[tuple[str, dict]]) -> list[tuple[str, int, int]]:
    """(name, estimate, measured peak) per case, measured in this process one after another."""
    registry, settings = service.default_registry(), service.Settings(memory_limit_bytes=8 * 1024**3)
    service.warm_up(registry, settings)
    results = []
    for name, body in cases:
        estimate = service.shape(registry, body, settings)["estimate_bytes"]
        if estimate > settings.memory_limit_bytes:
            continue  # refused before anything is allocated
        gc.collect()
        base = _status("VmRSS")
        (PROC / "clear_refs").write_text("5")
        text = json.dumps(service.run(registry, body, settings))
        peak = _status("VmHWM") - base
        del text
        gc.collect()
        results.append((name, estimate, peak))
    return results


def _child(cases, queue):
    try:
        queue.put(measure(cases))
    except BaseException as exc:  # noqa: BLE001 - report it to the test instead of leaving it waiting
        queue.put(exc)


def _in_fresh_process(cases):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(cases, queue))
    proc.start()
    try:
        result = queue.get(timeout=600)
    finally:
        proc.join(timeout=60)
    if isinstance(result, BaseException):
        raise result
    return result


def _catalog_cases():
    cases = []
    for spec in service.default_registry():
        body = scaled(spec.example)
        if body is not None:
            cases.append((spec.type, body))
    return cases


def _network_cases():
    cases = []
    for preset in service.presets():
        if preset.get("group") == "classic" and preset["id"] != "vit-tiny":
            continue  # full-size classics: tens of seconds each at a scaled batch; the small ViT stands for them
        body = scaled(preset["request"], TARGET_ELEMENTS // 4)
        if body is not None:
            cases.append((preset.get("name", "preset"), body))
    return cases


def test_measured_peak_is_within_the_estimate():
    cases = _catalog_cases() + _network_cases()
    assert len(cases) > 100
    results = _in_fresh_process(cases)
    assert len(results) > 100  # the scaled cases are admitted and measured, not refused
    over = [
        f"{name}: measured {peak / 2**20:.1f} MiB > estimated {est / 2**20:.1f} MiB"
        for name, est, peak in results
        if peak > est
    ]
    assert not over, "\n".join(over)
