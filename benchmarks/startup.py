"""Cold start: seconds from launching the server to its first /healthz and /readyz answers.

The peer is the floor for any server of this stack: a bare FastAPI app that imports torch and
answers /healthz under uvicorn, launched the same way in the same run.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time

import httpx

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


def _launch(argv: list[str], paths: list[str]) -> list[float | None]:
    """Seconds from launch to the first 200 on each path, in order."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            return [(t - t0) if (t := _first_200(p, proc)) is not None else None for p in paths]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def rows(repeat: int = 1) -> list[tuple[str, str, str, str, str]]:
    """Median over ``repeat`` launches each, ours and the peer interleaved."""
    ours_h, ours_r, peer_h = [], [], []
    for _ in range(repeat):
        port = random.randint(20000, 29999)
        h, r = _launch(
            [sys.executable, "-m", "app.cli", "--host", "127.0.0.1", "--port", str(port)],
            [f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/readyz"],
        )
        port = random.randint(20000, 29999)
        (b,) = _launch([sys.executable, "-c", BARE, str(port)], [f"http://127.0.0.1:{port}/healthz"])
        if None in (h, r, b):
            return [("cold start", "failed", "bare app importing torch", "-", "the server did not answer")]
        ours_h.append(h)
        ours_r.append(r)
        peer_h.append(b)

    def med(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    h, r, b = med(ours_h), med(ours_r), med(peer_h)
    return [
        ("cold start to first /healthz", f"{h:.2f} s", "bare app importing torch", f"{b:.2f} s", f"{h / b:.2f}×"),
        (
            "cold start to /readyz (workers warm)",
            f"{r:.2f} s",
            "bare app importing torch",
            f"{b:.2f} s",
            f"{r / b:.2f}×",
        ),
    ]


if __name__ == "__main__":
    for row in rows():
        print("| " + " | ".join(row) + " |")
