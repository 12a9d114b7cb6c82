"""Cold start and idle memory: seconds from launching the server to its first /healthz and /readyz
answers, and the proportional set size (PSS) of its whole process tree a few seconds later.

The peer is the floor for any server of this stack: a bare FastAPI app that imports torch and
answers /healthz under uvicorn, launched the same way in the same run, right after each of ours.
PSS splits the pages shared between processes (torch's libraries) among the processes that map them,
so a server's workers are not each charged the whole of libtorch; other torch processes running on the
machine at the time take a share too (on a shared machine the figures move a little with them).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import httpx

from benchmarks.common import pss_mib, spread

BARE = """
import torch, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/healthz")
def healthz():
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning")
"""


def _first_200(url: str, proc: subprocess.Popen, deadline_s: float = 120) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if proc.poll() is not None:
            return None
        try:
            if httpx.get(url, timeout=1, headers={"Host": "localhost"}).status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    return None


@dataclass
class Launches:
    """Fresh launches, ours and the peer's interleaved: seconds to the first 200 on /healthz and /readyz,
    and the proportional set size of the whole process tree once idle (MiB)."""

    healthz: list[float] = field(default_factory=list)
    readyz: list[float] = field(default_factory=list)
    pss: list[float] = field(default_factory=list)
    processes: int = 0
    peer_healthz: list[float] = field(default_factory=list)
    peer_pss: list[float] = field(default_factory=list)
    failed: str = ""


def _launch(argv: list[str], paths: list[str], settle_s: float) -> tuple[list[float | None], float, int]:
    """Seconds from launch to the first 200 on each path, in order; then, ``settle_s`` later, the idle
    PSS of the process and everything it started (MiB) and how many processes that is."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            times = [(t - t0) if (t := _first_200(p, proc)) is not None else None for p in paths]
            if None in times:
                return times, 0.0, 0
            time.sleep(settle_s)
            pss, n = pss_mib(proc.pid)
            return times, pss, n
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def launch(repeat: int, settle_s: float = 2.0) -> Launches:
    """``repeat`` launches each of ``python -m app.cli`` and the bare app, interleaved."""
    out = Launches()
    for _ in range(repeat):
        port = random.randint(20000, 29999)
        (h, r), pss, n = _launch(
            [sys.executable, "-m", "app.cli", "--host", "127.0.0.1", "--port", str(port)],
            [f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/readyz"],
            settle_s,
        )
        port = random.randint(20000, 29999)
        (b,), peer_pss, _ = _launch(
            [sys.executable, "-c", BARE, str(port)], [f"http://127.0.0.1:{port}/healthz"], settle_s
        )
        if h is None or r is None or b is None:
            out.failed = "the server did not answer" if b is not None else "the bare app did not answer"
            return out
        out.healthz.append(h)
        out.readyz.append(r)
        out.pss.append(pss)
        out.processes = n
        out.peer_healthz.append(b)
        out.peer_pss.append(peer_pss)
    return out


def _ratios(ours: list[float], peer: list[float]) -> str:
    rs = [o / p for o, p in zip(ours, peer, strict=True)]
    return f"{statistics.median(rs):.2f}× ({min(rs):.2f}–{max(rs):.2f}×)"


def rows(launches: Launches) -> list[tuple[str, str, str, str, str]]:
    """Cold start: medians and min–max over the launches, each launch's ratio against the peer's launch
    that followed it."""
    if launches.failed:
        return [("cold start", "failed", "bare app importing torch", "-", launches.failed)]
    n = len(launches.healthz)
    peer = f"{spread(launches.peer_healthz)} s"
    return [
        (
            f"cold start to first /healthz ({n} launches)",
            f"{spread(launches.healthz)} s",
            "bare app importing torch",
            peer,
            _ratios(launches.healthz, launches.peer_healthz),
        ),
        (
            f"cold start to /readyz, workers warm ({n} launches)",
            f"{spread(launches.readyz)} s",
            "bare app importing torch",
            peer,
            _ratios(launches.readyz, launches.peer_healthz),
        ),
    ]


def memory_row(launches: Launches) -> tuple[str, str, str, str, str]:
    """Issue 18: idle PSS of the whole server (web process, pool, workers) against a bare uvicorn app
    importing torch, each read a few seconds after it answered."""
    label = "idle memory of the whole server (PSS)"
    if launches.failed:
        return (label, "failed", "a bare uvicorn app importing torch", "-", launches.failed)
    rs = [o / p for o, p in zip(launches.pss, launches.peer_pss, strict=True)]
    return (
        f"{label}, {launches.processes} processes, {len(rs)} launches",
        f"{spread(launches.pss, fmt='{:.0f}')} MiB",
        "a bare uvicorn app importing torch",
        f"{spread(launches.peer_pss, fmt='{:.0f}')} MiB",
        f"{statistics.median(rs):.2f}× ({min(rs):.2f}–{max(rs):.2f}×); target ≤ 1.8×: "
        f"{'met' if statistics.median(rs) <= 1.8 else 'missed'}",
    )


if __name__ == "__main__":
    found = launch(5)
    for row in [*rows(found), memory_row(found)]:
        print("| " + " | ".join(row) + " |")
