"""Resident memory of a `layer-explorer` server: idle, and after forward passes (README "Sizing replicas").

    python benchmarks/measure_rss.py [--bin VENV/bin] [--http-workers N] [--env NAME=VALUE ...]

Starts the server from VENV/bin (default: this interpreter's), on 127.0.0.1 and a free port, and
prints the summed VmRSS of the process and all its children (uvicorn workers, torch workers):
after start-up, after small forward passes, and after one request near the given per-request limit.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as `python benchmarks/measure_rss.py`: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import pss_mib, tree

SMALL = [
    {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42},
    {
        "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 16, "kernel_size": 3},
        "inputs": [{"shape": [8, 3, 64, 64]}],
        "seed": 1,
    },
]


def rss_mib(pid: int) -> tuple[float, int]:
    total, n = 0, 0
    for p in tree(pid):
        try:
            m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(), re.M)
        except OSError:
            continue
        if m:
            total, n = total + int(m.group(1)), n + 1
    return total / 1024, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--http-workers", type=int, default=1)
    parser.add_argument("--big-mib", type=int, default=200, help="size of the large request's output, MiB")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()

    port = random.randint(20000, 29999)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    env = {
        **os.environ,
        **dict(e.split("=", 1) for e in args.env),
        "LAYER_EXPLORER_HOST": "127.0.0.1",
        "LAYER_EXPLORER_PORT": str(port),
        "LAYER_EXPLORER_HTTP_WORKERS": str(args.http_workers),
    }
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [str(args.bin / "layer-explorer")],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            for _ in range(360):
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            time.sleep(2)
            idle, n = rss_mib(proc.pid)
            idle_pss, _ = pss_mib(proc.pid)
            for body in SMALL * 3:
                assert httpx.post(f"{url}/api/run", json=body, timeout=120).status_code == 200
            small, _ = rss_mib(proc.pid)
            rows = args.big_mib * 2**20 // 4 // 1024  # a (rows, 1024) float32 output of about big_mib MiB
            big = {
                "layer": {"type": "Linear", "in_features": 8, "out_features": 1024},
                "inputs": [{"shape": [rows, 8]}],
                "seed": 0,
            }
            code = httpx.post(f"{url}/api/run", json=big, timeout=300).status_code
            after_big, _ = rss_mib(proc.pid)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    print(
        f"processes {n}: idle {idle:.0f} MiB (PSS {idle_pss:.0f} MiB), after small forward passes {small:.0f} MiB, "
        f"after a {args.big_mib} MiB output (HTTP {code}) {after_big:.0f} MiB"
    )


if __name__ == "__main__":
    main()
