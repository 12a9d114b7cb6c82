"""/api/run latency for a small Linear, against the same torch work done in-process.

Prints medians and their ratio; both are measured in this run, on this machine, so the ratio is
what to compare between commits (absolute times on shared machines are noise).

    python benchmarks/bench_run_latency.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from app.main import create_app

BODY = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}


def baseline_once() -> None:
    """What the endpoint computes, minus HTTP, validation and JSON: seed, build, draw, forward."""
    torch.manual_seed(42)
    layer = torch.nn.Linear(10, 5)
    x = torch.randn(5, 10)
    with torch.no_grad():
        y = layer(x)
    y.tolist()


def measure(fn, repeat: int) -> list[float]:
    for _ in range(max(5, repeat // 10)):  # warm-up: imports, allocator, first-call paths
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from fastapi.testclient import TestClient  # runs the ASGI app in-process, like a local server

    with TestClient(create_app(), base_url="http://localhost") as tc:  # the Host allowlist

        def api_once() -> None:
            r = tc.post("/api/run", json=BODY)
            r.raise_for_status()

        api = measure(api_once, args.repeat)
        shape = measure(lambda: tc.post("/api/shape", json=BODY).raise_for_status(), args.repeat)
    base = measure(baseline_once, args.repeat)

    med_api, med_shape, med_base = (statistics.median(t) * 1e3 for t in (api, shape, base))
    print(f"in-process torch (baseline): {med_base:8.3f} ms")
    print(f"POST /api/run              : {med_api:8.3f} ms   ratio {med_api / med_base:6.1f}x")
    print(f"POST /api/shape            : {med_shape:8.3f} ms   ratio {med_shape / med_base:6.1f}x")


if __name__ == "__main__":
    main()
