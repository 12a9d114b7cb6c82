"""/api/shape over the whole catalog: every type's own example, and the same with its first input
dimension 1024 times larger (a big batch, or a long sequence for batch-first-less layouts).

Measured in-process (``service.shape``, what a worker runs) with ``detail="shapes"`` (what the page
asks on an edit), and with the default full detail (the dataflow graph and inner traces, meta passes)
for comparison; the target is 10 ms for any type at any size, read at the 95th percentile of the cases
(each case the median of its repeats), with the slowest case named beside it. ``source`` says whether the layer's
formula or a meta pass answered.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

from app.core import service
from app.core.config import Settings
from app.core.errors import LayerExplorerError
from app.core.registry import default_registry


def _timed(
    registry: Any, body: dict[str, Any], settings: Settings, repeat: int, detail: str = "shapes"
) -> tuple[float, str] | None:
    try:
        answer = service.shape(registry, body, settings, detail=detail)
    except LayerExplorerError:
        return None
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        service.shape(registry, body, settings, detail=detail)
        times.append(time.perf_counter() - t)
    return statistics.median(times), answer.get("source", "?")


def _scaled(example: dict[str, Any]) -> dict[str, Any] | None:
    body = copy.deepcopy(example)
    inputs = body.get("inputs") or []
    if not inputs or not inputs[0].get("shape") or "data" in inputs[0]:
        return None
    for spec in inputs:  # every input grows together (pairs such as Bilinear's must keep matching)
        if spec.get("shape"):
            spec["shape"] = [spec["shape"][0] * 1024, *spec["shape"][1:]]
    return body


def _spread(
    registry: Any, settings: Settings, repeat: int, detail: str
) -> tuple[float, float, str, str, float, int, int]:
    """The 95th percentile of the cases' medians (the slowest of hundreds of noisy samples says more about
    the machine's load at that moment than about any case), the slowest case for context, the median case,
    how many cases, and how many a formula answered."""
    results: list[tuple[float, str, str]] = []
    for spec in registry:
        for label, body in (("example", spec.example), ("×1024", _scaled(spec.example))):
            if not body:
                continue
            timed = _timed(registry, body, settings, repeat, detail)
            if timed is not None:
                results.append((timed[0], f"{spec.type} ({label})", timed[1]))
    results.sort(reverse=True)
    worst, name, source = results[0]
    times = [t for t, _, _ in results]
    p95 = statistics.quantiles(times, n=20, method="inclusive")[18]
    formula = sum(1 for _, _, s in results if s == "formula")
    return p95, worst, name, source, statistics.median(times), len(results), formula


def rows(repeat: int = 5) -> list[tuple[str, str, str, str, str]]:
    registry = default_registry()
    settings = Settings(memory_limit_bytes=1 << 62)  # shapes only: nothing is allocated
    out = []
    for detail, what in (("shapes", "?detail=shapes"), ("full", "full detail (graph, inner traces)")):
        p95, worst, name, source, p50, n, formula = _spread(registry, settings, repeat, detail)
        out.append(
            (
                f"/api/shape {what}, 95th percentile of {n} catalog cases (each the median of {repeat})",
                f"{p95 * 1e3:.2f} ms",
                "target",
                "10 ms",
                f"{p95 / 0.01:.2f}×; median case {p50 * 1e3:.2f} ms; slowest {worst * 1e3:.2f} ms ({name}, "
                f"source: {source}); {formula} by formula",
            )
        )
    return out


if __name__ == "__main__":
    for row in rows():
        print("| " + " | ".join(row) + " |")
