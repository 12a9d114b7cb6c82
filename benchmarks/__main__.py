"""Every issue-9 measurement in one run, as ratios against peers measured in the same run.

    python -m benchmarks [--quick] [--no-browser]

Peers: a bare FastAPI endpoint doing the same torch work in the same process (no pool, no validation),
the layer's own formula (an in-process /api/shape plan), ``np.save`` of the same tensor (the .npy path),
gzip of the same bytes, and the static page (index.html plus every module it preloads). Everything goes
through httpx's ASGITransport against the real app with its worker pool, so only process boundaries
and HTTP parsing by a real server are left out. The browser section (benchmarks/browser.py) drives a
real uvicorn server with headless Chromium: edit -> drawn and long tasks, each against a raw fetch from
the same page or the target (left out, with a printed note, without Chromium). Prints one Markdown
table; absolute times are context, the ratios are what to compare between commits.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import html.parser
import io
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import numpy as np
import torch
from fastapi import FastAPI

import benchmarks.browser as browser
from app.core.config import Settings
from app.main import create_app
from benchmarks import graph_net, shapes, startup

LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}
GRU = {
    "layer": {"type": "GRU", "input_size": 8, "hidden_size": 8, "num_layers": 2, "bidirectional": True},
    "inputs": [{"shape": [400, 1, 8]}],
}
LSTM_BIG = {
    "layer": {"type": "LSTM", "input_size": 4096, "hidden_size": 4096, "num_layers": 4},
    "inputs": [{"shape": [256, 2048, 4096]}],
}
CONV64 = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 16, "kernel_size": 3},
    "inputs": [{"shape": [1, 3, 64, 64]}],
    "seed": 1,
}
BIG = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [16, 1024, 1024]}], "seed": 3}  # 16 M-element output


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


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        url = a.get("src") or (a.get("href") if tag == "link" else None)
        if url and url.startswith("/"):
            self.urls.append(url)


async def main(quick: bool, with_browser: bool = True) -> None:
    repeat = 30 if quick else 150
    seconds = 2.0 if quick else 6.0
    settings = Settings(workers=2, timeout_s=120, memory_limit_bytes=4 * 1024**3)
    app = create_app(settings)
    app.state.pool.start(wait=120)
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        headers = {"Accept-Encoding": "identity"}
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://localhost", timeout=300, headers=headers
            ) as c,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=bare_app()), base_url="http://localhost", headers=headers
            ) as bare,
        ):
            # 1. small /api/run against the bare endpoint
            ours = await timed(lambda: c.post("/api/run", json=LINEAR), repeat)
            peer = await timed(lambda: bare.post("/run", json=LINEAR), repeat)
            rows.append(
                (
                    "/api/run Linear(10,5) p50, 1 client",
                    f"{ours * 1e3:.2f} ms",
                    "bare endpoint",
                    f"{peer * 1e3:.2f} ms",
                    f"{ours / peer:.2f}× (target ≤ 1.5×)",
                )
            )
            ours = await throughput(c, "/api/run", LINEAR, 4, seconds)
            peer = await throughput(bare, "/run", LINEAR, 4, seconds)
            rows.append(
                (
                    "/api/run Linear throughput, 4 clients",
                    f"{ours:.0f} req/s",
                    "bare endpoint",
                    f"{peer:.0f} req/s",
                    f"{ours / peer:.2f}× (target ≥ 0.7×)",
                )
            )

            # 2. shapes at any size, against the target (the formula itself is what answers)
            for name, body in (
                ("GRU bidir [400,1,8]", GRU),
                ("LSTM(4096)×4 [256,2048,4096]", LSTM_BIG),
                ("Conv2d [1,3,64,64]", CONV64),
            ):
                t = await timed(lambda b=body: c.post("/api/shape", json=b), max(5, repeat // 5), warm=1)
                source = (await c.post("/api/shape", json=body)).json().get("source")
                rows.append(
                    (
                        f"/api/shape {name}",
                        f"{t * 1e3:.2f} ms",
                        "target",
                        "10 ms",
                        f"{t / 0.010:.2f}× (source: {source})",
                    )
                )

            # 3. the 16 M-element output: JSON against .npy, and .npy against np.save in-process
            n = 2 if quick else 4
            js = await timed(lambda: c.post("/api/run", json=BIG), n, warm=1)
            npy = await timed(lambda: c.post("/api/run?format=npy", json=BIG), n, warm=1)
            rows.append(
                (
                    "/api/run 16 M-element output, JSON",
                    f"{js * 1e3:.0f} ms",
                    ".npy path",
                    f"{npy * 1e3:.0f} ms",
                    f"{js / npy:.2f}× (target ≤ 1×)",
                )
            )
            arr = np.random.default_rng(0).standard_normal((16, 1024, 1024), dtype=np.float32)

            async def save() -> None:
                np.save(io.BytesIO(), arr, allow_pickle=False)

            peer = await timed(save, n, warm=1)
            rows.append(
                (
                    "/api/run?format=npy 16 M elements",
                    f"{npy * 1e3:.0f} ms",
                    "np.save in-process",
                    f"{peer * 1e3:.0f} ms",
                    f"{npy / peer:.2f}×",
                )
            )

            # 4. the catalog on the wire, and served from its prebuilt bytes
            plain = await c.get("/api/layers")
            packed = await c.get("/api/layers", headers={"Accept-Encoding": "gzip"})
            wire = packed.num_bytes_downloaded
            rows.append(
                (
                    "/api/layers on the wire (gzip)",
                    f"{wire / 1024:.1f} KB",
                    "uncompressed",
                    f"{len(plain.content) / 1024:.1f} KB",
                    f"{len(plain.content) / wire:.1f}× smaller (target ≥ 5×)",
                )
            )
            rows.append(
                (
                    "/api/layers gzip vs gzip -9 of the same bytes",
                    f"{wire / 1024:.1f} KB",
                    "gzip.compress -9",
                    f"{len(gzip.compress(plain.content, 9)) / 1024:.1f} KB",
                    f"{wire / len(gzip.compress(plain.content, 9)):.2f}×",
                )
            )
            etag = plain.headers["etag"]
            t200 = await timed(lambda: c.get("/api/layers", headers={"Accept-Encoding": "gzip"}), repeat)
            t304 = await timed(lambda: c.get("/api/layers", headers={"If-None-Match": etag}), repeat)
            rows.append(
                (
                    "/api/layers revalidation (304)",
                    f"{t304 * 1e3:.2f} ms",
                    "full gzip answer",
                    f"{t200 * 1e3:.2f} ms",
                    f"{t304 / t200:.2f}×",
                )
            )

            # 5. the page: every file it references, identity against gzip, and how many are fetched up front
            page = await c.get("/")
            parser = _Refs()
            parser.feed(page.text)
            raw = zipped = len(page.content)
            zipped = (await c.get("/", headers={"Accept-Encoding": "gzip"})).num_bytes_downloaded
            for url in parser.urls:
                r = await c.get(url)
                z = await c.get(url, headers={"Accept-Encoding": "gzip"})
                raw += len(r.content)
                zipped += z.num_bytes_downloaded  # the bytes on the wire, before httpx decodes them
            rows.append(
                (
                    "static page, HTML+JS+CSS on the wire",
                    f"{zipped / 1024:.0f} KB",
                    "uncompressed",
                    f"{raw / 1024:.0f} KB",
                    f"{raw / zipped:.1f}× smaller; {len(parser.urls)} files named "
                    "up front (modulepreload: no waterfall)",
                )
            )
            cc = (await c.get(parser.urls[0])).headers.get("cache-control")
            rows.append(
                (
                    "static asset caching",
                    cc or "none",
                    "page",
                    page.headers.get("cache-control", "none"),
                    "reload revalidates only the page",
                )
            )

            # the browser: edit -> drawn, long tasks; a real server and Chromium (Playwright's sync API
            # runs its own event loop, so in a thread of its own)
            found = await asyncio.to_thread(browser.measure, quick) if with_browser else "browser section left out"
            if isinstance(found, str):
                print(found)
            else:
                rows.extend(found)
    finally:
        app.state.pool.close()
    # 6. every catalog type's shapes, its example and 1024 times larger (in-process, what a worker runs)
    rows.extend(shapes.rows(repeat=3 if quick else 5))
    # 6b. ResNet-50: shapes (Graph and Sequential/Residual) and the receptive field against torch's forward
    rows.extend(graph_net.rows(rounds=3, repeat=1 if quick else 3))
    # 7. cold start, in fresh processes (ours: `python -m app.cli`; the peer: a bare app importing torch)
    rows.extend(startup.rows(repeat=1 if quick else 3))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}; {'--quick' if quick else 'full'} run"
    )
    print("| measurement | ours | peer | peer value | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (about a minute)")
    ap.add_argument("--no-browser", action="store_true", help="leave out the browser section")
    args = ap.parse_args()
    asyncio.run(main(args.quick, with_browser=not args.no_browser))
