"""What the dataflow graph costs /api/shape, and a receptive field against a run, for the presets.

Medians of in-process calls (no HTTP); every figure is measured in this run, so compare the ratios
between commits, not the absolute times (shared machines are noisy).

    python benchmarks/bench_graph.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import OrderedDict

from app.core import service
from app.core.config import Settings
from app.core.graphs import receptive
from app.core.networks import graph as dataflow
from app.core.presets import PRESETS
from app.core.registry import default_registry


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    registry, settings = default_registry(), Settings()
    real = dataflow.graph_fields
    print(f"{'preset':28} {'shape':>8} {'no graph':>9} {'cold':>8} {'ratio':>6} {'run':>8} {'rf':>8} {'rf/run':>7}")
    for preset in PRESETS:
        body = preset["request"]

        def cold():
            dataflow._CACHE = OrderedDict()
            service.shape(registry, body, settings)

        warm = median_ms(lambda: service.shape(registry, body, settings), args.repeat)
        cold_ms = median_ms(cold, args.repeat)
        dataflow.graph_fields = lambda *a, **k: {}
        try:
            bare = median_ms(lambda: service.shape(registry, body, settings), args.repeat)
        finally:
            dataflow.graph_fields = real
        run = median_ms(lambda: service.run(registry, body, settings), max(3, args.repeat // 4))
        out = service.shape(registry, body, settings)["output_shapes"][0]
        index = [n // 2 for n in out]
        rf = median_ms(
            lambda: receptive.receptive_field(registry, {**body, "index": index}, settings), max(3, args.repeat // 4)
        )
        print(
            f"{preset['id']:28} {warm:8.1f} {bare:9.1f} {cold_ms:8.1f} {cold_ms / bare:6.2f} {run:8.1f} {rf:8.1f} "
            f"{rf / run:7.1f}"
        )


if __name__ == "__main__":
    main()
