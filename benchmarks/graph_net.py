"""ResNet-50 (issue 17, item 4): /api/shape with detail=shapes and the full answer, and the receptive field at
224×224, as ratios against plain torch's forward of the same model measured in the same round (min–max over
rounds). Part of ``python -m benchmarks``; alone:

    python -m benchmarks.graph_net

The network is written twice: as a Graph (53 convolutions, 53 batch norms, ReLUs and the 16 residual adds as
``add`` nodes) and as today's Sequential of Residual blocks, so the figures measure both ways of writing it:
validation, the meta build, the shape rules, the dataflow graph and the index propagation.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from app.core.config import Settings
from app.core.graphs import receptive
from app.core.networks import graph as dataflow
from app.core.networks.tree import build, resolve
from app.core.registry import default_registry
from app.core.running import requests


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> dict[str, Any]:
    return {
        "type": "Conv2d",
        "in_channels": cin,
        "out_channels": cout,
        "kernel_size": k,
        "stride": stride,
        "padding": k // 2,
        "bias": False,
    }


def resnet50_graph() -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []

    def mod(name: str, config: dict[str, Any], arg: str) -> str:
        nodes.append({"name": name, "module": config, "args": [arg]})
        return name

    def op(name: str, op_name: str, *args: Any, **kwargs: Any) -> str:
        nodes.append({"name": name, "op": op_name, "args": list(args), "kwargs": kwargs})
        return name

    x = mod("conv1", _conv(3, 64, 7, 2), "x")
    x = mod("bn1", {"type": "BatchNorm2d", "num_features": 64}, x)
    x = op("relu", "relu", x)
    x = op("maxpool", "max_pool2d", x, 3, stride=2, padding=1)
    cin = 64
    for stage, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        for b in range(blocks):
            p = f"layer{stage}_{b}"
            s = stride if b == 0 else 1
            h = mod(f"{p}_conv1", _conv(cin, width, 1), x)
            h = op(f"{p}_relu1", "relu", mod(f"{p}_bn1", {"type": "BatchNorm2d", "num_features": width}, h))
            h = mod(f"{p}_conv2", _conv(width, width, 3, s), h)
            h = op(f"{p}_relu2", "relu", mod(f"{p}_bn2", {"type": "BatchNorm2d", "num_features": width}, h))
            h = mod(f"{p}_conv3", _conv(width, width * 4, 1), h)
            h = mod(f"{p}_bn3", {"type": "BatchNorm2d", "num_features": width * 4}, h)
            if b == 0:
                short = mod(f"{p}_down", _conv(cin, width * 4, 1, s), x)
                short = mod(f"{p}_downbn", {"type": "BatchNorm2d", "num_features": width * 4}, short)
            else:
                short = x
            x = op(f"{p}_relu", "relu", op(f"{p}_add", "add", h, short))
            cin = width * 4
    x = op("avgpool", "adaptive_avg_pool2d", x, 1)
    x = op("flat", "flatten", x, 1)
    mod("fc", {"type": "Linear", "in_features": 2048, "out_features": 1000}, x)
    return {"layer": {"type": "Graph", "nodes": nodes}, "inputs": [{"shape": [1, 3, 224, 224]}], "seed": 0}


def resnet50_sequential() -> dict[str, Any]:
    """The same ResNet-50 as today's Sequential of Residual blocks (the shortcut a Sequential of conv + BN)."""
    layers: list[dict[str, Any]] = [
        _conv(3, 64, 7, 2),
        {"type": "BatchNorm2d", "num_features": 64},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
    ]
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            s = stride if b == 0 else 1
            body = [
                _conv(cin, width, 1),
                {"type": "BatchNorm2d", "num_features": width},
                {"type": "ReLU"},
                _conv(width, width, 3, s),
                {"type": "BatchNorm2d", "num_features": width},
                {"type": "ReLU"},
                _conv(width, width * 4, 1),
                {"type": "BatchNorm2d", "num_features": width * 4},
            ]
            short = None
            if b == 0:
                short = {
                    "type": "Sequential",
                    "layers": [_conv(cin, width * 4, 1, s), {"type": "BatchNorm2d", "num_features": width * 4}],
                }
            layers += [{"type": "Residual", "body": body, "shortcut": short}, {"type": "ReLU"}]
            cin = width * 4
    layers += [
        {"type": "AdaptiveAvgPool2d", "output_size": 1},
        {"type": "Flatten"},
        {"type": "Linear", "in_features": 2048, "out_features": 1000},
    ]
    return {"layer": {"type": "Sequential", "layers": layers}, "inputs": [{"shape": [1, 3, 224, 224]}], "seed": 0}


def _median(fn: Callable[[], Any], repeat: int) -> float:
    return _timed(fn, repeat)[0]


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds of ``repeat`` calls. The CPU time is what the call
    itself cost: on a shared machine the wall clock also counts the time other processes held the cores."""
    times, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpus)


def _uncached_full(registry: Any, req: dict[str, Any], settings: Settings) -> None:
    dataflow._CACHE.clear()  # the same network's graph is kept between requests: measure building it
    requests.shape(registry, req, settings, detail="full")


def rows(rounds: int = 3, repeat: int = 3) -> list[tuple[str, str, str, str, str]]:
    """ResNet-50 at 1×3×224×224: /api/shape (as a Graph and as Sequential/Residual) and the receptive field,
    each as a ratio against plain torch's forward of the same model (eval, no_grad) measured in the same
    round; min–max over ``rounds`` rounds."""
    registry = default_registry()
    settings = Settings(memory_limit_bytes=8 * 1024**3)
    graph_req, seq_req = resnet50_graph(), resnet50_sequential()
    torch.manual_seed(0)
    module = build(resolve(registry, graph_req["layer"])).eval()
    x = torch.randn(1, 3, 224, 224)

    def forward() -> None:
        with torch.no_grad():
            module(x)

    rf = {**graph_req, "index": [0, 0, 3, 3], "node": "layer4_2_relu", "train": False}
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("ResNet-50 (Graph) /api/shape?detail=shapes", lambda: requests.shape(registry, graph_req, settings, detail="shapes")),
        ("ResNet-50 (Sequential/Residual) /api/shape?detail=shapes", lambda: requests.shape(registry, seq_req, settings, detail="shapes")),
        ("ResNet-50 (Graph) /api/shape full (graph built, not cached)", lambda: _uncached_full(registry, graph_req, settings)),
        ("ResNet-50 (Sequential/Residual) /api/shape full (not cached)", lambda: _uncached_full(registry, seq_req, settings)),
        ("ResNet-50 structural receptive field (effective=false)", lambda: receptive.receptive_field(registry, {**rf, "effective": False}, settings)),
        ("ResNet-50 receptive field with the effective field (runs + autograd)", lambda: receptive.receptive_field(registry, rf, settings)),
    ]  # fmt: skip
    for _, fn in cases:
        fn()  # warm: first-call imports and kernels
    forward()
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    cpus: dict[str, list[float]] = {name: [] for name, _ in cases}
    ratios: dict[str, list[float]] = {name: [] for name, _ in cases}
    peers: list[float] = []
    for _ in range(rounds):
        peer = _median(forward, repeat)
        peers.append(peer)
        for name, fn in cases:
            t, cpu = _timed(fn, 1 if "effective field" in name else repeat)
            times[name].append(t)
            cpus[name].append(cpu)
            ratios[name].append(t / peer)
    peer_text = f"{min(peers) * 1e3:.0f}–{max(peers) * 1e3:.0f} ms"
    return [
        (
            name,
            f"{min(times[name]) * 1e3:.0f}–{max(times[name]) * 1e3:.0f} ms "
            f"(CPU {min(cpus[name]) * 1e3:.0f}–{max(cpus[name]) * 1e3:.0f} ms)",
            "torch forward, same model, 1×3×224×224",
            peer_text,
            f"{min(ratios[name]):.2f}–{max(ratios[name]):.2f}×",
        )
        for name, _ in cases
    ]


def main() -> None:
    print("| measurement | ours | peer | peer value | ratio |")
    print("|---|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
