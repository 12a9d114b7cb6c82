"""Every measurement of issues 9 and 18 in one run, as ratios against peers measured in the same run.

    python -m benchmarks [--quick] [--no-browser] [--only SECTION ...]

Issue 18's table (networks, receptive fields, big tensors, the GPU, throughput, idle memory) is the
``scale`` section, benchmarks/scale.py: plain-torch peers in interleaved rounds, median and min–max.

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
import os
import platform

import httpx
import torch

import benchmarks.browser as browser
from app.core.config import Settings
from app.main import create_app
from benchmarks import graph_net, scale, shapes, startup
from benchmarks.common import LINEAR, Row, bare_app, timed

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


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        url = a.get("src") or (a.get("href") if tag == "link" else None)
        if url and url.startswith("/"):
            self.urls.append(url)


SECTIONS = ("api", "browser", "scale", "catalog", "resnet50", "startup")


async def _api(quick: bool, with_browser: bool) -> list[Row]:
    """Issue 9's rows through the real app (small /api/run, shapes at any size, the catalog and the page on
    the wire), then the browser section."""
    repeat = 30 if quick else 150
    settings = Settings(workers=2, timeout_s=120, memory_limit_bytes=4 * 1024**3)
    app = create_app(settings)
    app.state.pool.start(wait=120)
    rows: list[Row] = []
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
    return rows


async def main(quick: bool, sections: tuple[str, ...] = SECTIONS) -> None:
    rows: list[Row] = []
    size = scale.QUICK if quick else scale.FULL
    # cold start and idle memory, in fresh processes (ours: `python -m app.cli`; the peer: a bare app
    # importing torch), launched once for both the start-up rows and issue 18's memory row
    launches = None
    if "startup" in sections or "scale" in sections:
        launches = await asyncio.to_thread(startup.launch, size.launches, size.settle_s)
    # issue 18: networks, big tensors, receptive fields, the GPU, throughput and idle memory at scale
    if "scale" in sections:
        rows.extend(await scale.rows(size, launches))
    if "api" in sections:
        rows.extend(await _api(quick, with_browser="browser" in sections))
    elif "browser" in sections:
        found = await asyncio.to_thread(browser.measure, quick)
        if isinstance(found, str):
            print(found)
        else:
            rows.extend(found)
    # every catalog type's shapes, its example and 1024 times larger (in-process, what a worker runs)
    if "catalog" in sections:
        rows.extend(shapes.rows(repeat=3 if quick else 5))
    # ResNet-50: shapes (Graph and Sequential/Residual) and the receptive field against torch's forward
    if "resnet50" in sections:
        rows.extend(graph_net.rows(rounds=3, repeat=1 if quick else 3))
    if "startup" in sections and launches is not None:
        rows.extend(startup.rows(launches))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}; {'--quick' if quick else 'full'} run"
    )
    scale.print_table(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (about a minute)")
    ap.add_argument("--no-browser", action="store_true", help="leave out the browser section")
    ap.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable): api (issue 9's requests), browser, scale (issue 18's table), "
        "catalog (every type's shapes), resnet50, startup (cold start)",
    )
    args = ap.parse_args()
    chosen = tuple(args.only or SECTIONS)
    if args.no_browser:
        chosen = tuple(s for s in chosen if s != "browser")
    asyncio.run(main(args.quick, chosen))
