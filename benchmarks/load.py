"""Load test on loopback: a real server (``python -m app.cli``) under concurrent clients, bounded in time.

Starts the server on a random port in 20000-29999 with its worker processes, drives it for
``--duration`` seconds with ``--concurrency`` clients sending a mix of requests (a small Linear run, a
Conv2d shape, an explain, a small network run, and optionally a request past the deadline), then
prints throughput, latency percentiles, answers by status and the resident memory of the web process
and of its workers before and after. It stops the server at the end.

    python benchmarks/load.py [--duration 10] [--concurrency 8] [--workers 2] [--slow]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MIX = [
    ("/api/run", {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}]}),
    (
        "/api/shape",
        {
            "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3},
            "inputs": [{"shape": [1, 3, 16, 16]}],
        },
    ),
    (
        "/api/explain",
        {
            "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
            "inputs": [{"shape": [6, 3, 8]}],
            "index": [0, 1, 2],
        },
    ),
    (
        "/api/run",
        {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "Linear", "in_features": 32, "out_features": 64},
                    {"type": "ReLU"},
                    {"type": "Linear", "in_features": 64, "out_features": 10},
                ],
            },
            "inputs": [{"shape": [16, 32]}],
        },
    ),
]
# Legitimately slow: a deep LSTM over many steps (past a short deadline, so the worker is killed).
SLOW = (
    "/api/run",
    {
        "layer": {"type": "LSTM", "input_size": 64, "hidden_size": 256, "num_layers": 8},
        "inputs": [{"shape": [4000, 1, 64]}],
    },
)


def _port() -> int:
    while True:
        port = random.randint(20000, 29999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    kids = [int(p) for p in out]
    return kids + [g for k in kids for g in _children(k)]


def memory(pid: int) -> tuple[float, float, int]:
    """(web process MiB, all its descendant processes MiB, how many descendants)."""
    kids = _children(pid)
    return _rss_kib(pid) / 1024, sum(_rss_kib(k) for k in kids) / 1024, len(kids)


async def client(url: str, stop_at: float, mix: list, slow_share: float, results: list) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        while time.monotonic() < stop_at:
            path, body = SLOW if random.random() < slow_share else random.choice(mix)
            t0 = time.perf_counter()
            try:
                r = await c.post(path, json=body)
                status = r.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            results.append((status, time.perf_counter() - t0, path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0, help="LAYER_EXPLORER_TIMEOUT for the server")
    ap.add_argument("--slow", action="store_true", help="one request in 20 is a deep LSTM past the deadline")
    args = ap.parse_args()

    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LAYER_EXPLORER_WORKERS": str(args.workers), "LAYER_EXPLORER_TIMEOUT": str(args.timeout)}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - t0 > 120:
                sys.exit("the server did not start")
            time.sleep(0.2)
        print(
            f"server up in {time.monotonic() - t0:.1f} s (pid {server.pid}, {args.workers} workers, "
            f"deadline {args.timeout:g} s)"
        )
        for path, body in MIX:  # one of each first, so both workers have served every kind
            httpx.post(f"{url}{path}", json=body, timeout=60)
        web0, workers0, n0 = memory(server.pid)

        results: list = []
        stop_at = time.monotonic() + args.duration
        started = time.perf_counter()

        async def drive():
            await asyncio.gather(
                *[client(url, stop_at, MIX, 0.05 if args.slow else 0.0, results) for _ in range(args.concurrency)]
            )

        asyncio.run(drive())
        elapsed = time.perf_counter() - started
        web1, workers1, n1 = memory(server.pid)
        health = httpx.get(f"{url}/healthz", timeout=5).status_code
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    lat = sorted(d for s, d, _ in results if s == 200)
    by_status = collections.Counter(s for s, _, _ in results)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")

    print(
        f"{len(results)} requests in {elapsed:.1f} s with {args.concurrency} clients: "
        f"{len(results) / elapsed:.1f} req/s ({len(lat) / elapsed:.1f} ok/s)"
    )
    print(
        f"latency of 200s (ms): p50 {pct(50):.1f}  p90 {pct(90):.1f}  p99 {pct(99):.1f}  max {pct(100):.1f}"
        + (f"  mean {statistics.mean(lat) * 1000:.1f}" if lat else "")
    )
    print("answers: " + ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items(), key=str)))
    errors = sum(n for s, n in by_status.items() if s != 200)
    print(f"errors (not 200): {errors}; /healthz after the run: {health}")
    print(f"RSS web process: {web0:.0f} MiB before, {web1:.0f} MiB after")
    print(f"RSS worker processes (+ forkserver): {workers0:.0f} MiB in {n0} before, {workers1:.0f} MiB in {n1} after")


if __name__ == "__main__":
    main()
