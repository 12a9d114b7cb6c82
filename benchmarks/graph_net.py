"""A ResNet-50-sized Graph network (issue 17, item 4): /api/shape with detail=shapes and the full answer, as
ratios against plain torch's forward of the same module in the same run.

    python -m benchmarks.graph_net

The config is written here as a Graph (53 convolutions, 53 batch norms, ReLUs and the 16 residual adds as
``add`` nodes), so the figures measure the graph engine: validation, the meta build and the shape rules.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from app.core.config import Settings
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


def _time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    registry = default_registry()
    settings = Settings(memory_limit_bytes=4 * 1024**3)
    req = resnet50_graph()
    torch.manual_seed(0)
    module = build(resolve(registry, req["layer"])).eval()
    x = torch.randn(1, 3, 224, 224)
    params = sum(p.numel() for p in module.parameters())

    def forward() -> None:
        with torch.no_grad():
            module(x)

    peer = _time(forward, 5)
    shapes = _time(lambda: requests.shape(registry, req, settings, detail="shapes"), 5)
    full = _time(lambda: requests.shape(registry, req, settings, detail="full"), 3)
    print(f"ResNet-50 as a Graph: {len(req['layer']['nodes'])} nodes, {params:,} parameters")
    print("| measurement | time | ratio to torch forward (1x3x224x224) | target |")
    print("|---|---|---|---|")
    print(f"| torch forward (peer) | {peer * 1e3:.1f} ms | 1.00 | |")
    print(f"| /api/shape?detail=shapes | {shapes * 1e3:.1f} ms | {shapes / peer:.2f} | < 50 ms |")
    print(f"| /api/shape (full, with graph) | {full * 1e3:.1f} ms | {full / peer:.2f} | < 300 ms |")


if __name__ == "__main__":
    main()
