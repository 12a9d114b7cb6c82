"""What the benchmark sections share: the bare-endpoint peer, timing helpers, and per-process-tree
CPU time and memory read from /proc (Linux).

Rows are ``(measurement, ours, peer, peer value, ratio)``, printed as one Markdown table.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import torch
from fastapi import FastAPI

Row = tuple[str, str, str, str, str]

LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def bare_app() -> FastAPI:
    """The peer: the same torch work as /api/run for LINEAR, returned as JSON, nothing else."""
    bare = FastAPI()

    @bare.post("/run")
    def run() -> dict[str, Any]:
        torch.manual_seed(42)
        layer = torch.nn.Linear(10, 5)
        x = torch.randn(5, 10)
        with torch.no_grad():
            y = layer(x)
        return {"output": y.tolist(), "weight": layer.weight.tolist(), "bias": layer.bias.tolist()}

    return bare


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int, warm: int = 3) -> float:
    """Median seconds of ``fn`` after ``warm`` untimed calls."""
    for _ in range(warm):
        await fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def throughput(client: httpx.AsyncClient, path: str, body: Any, clients: int, seconds: float) -> float:
    """Requests per second that ``clients`` concurrent loops get through in about ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            r = await client.post(path, json=body)
            r.raise_for_status()
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    return done / (time.perf_counter() - t0)


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it (children, grandchildren: a forkserver's workers too)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def tree_cpu() -> float:
    """CPU seconds used so far by this process (exact) and the processes below it (the worker pool;
    /proc counts them in clock ticks, 10 ms). A request's CPU time is the difference around it: unlike
    the wall clock it leaves out the time other processes on a shared machine held the cores."""
    me = os.getpid()
    return time.process_time() + sum(_cpu_of(p) for p in tree(me) if p != me)


def pss_mib(pid: int) -> tuple[float, int]:
    """Proportional set size of ``pid`` and everything below it, MiB (shared pages split among the
    processes that map them), and how many processes that is."""
    total, n = 0, 0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total, n = total + int(line.split()[1]), n + 1
                break
    return total / 1024, n


def spread(xs: Sequence[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """``median (min–max)`` of ``xs`` times ``scale``."""
    m = statistics.median(xs) * scale
    return f"{fmt.format(m)} ({fmt.format(min(xs) * scale)}–{fmt.format(max(xs) * scale)})"
