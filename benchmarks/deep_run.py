"""/api/run at scale (issue 18, "Build once" and "Answers of bounded size"): the worker's whole answer to
/api/run (plan, build, forward, trace, graph, JSON encoding) of a 512-block Linear+ReLU net, a 512-block
Conv+BN+ReLU net and ResNet-18 on 224², each as a ratio against plain torch's seed + build + forward of the
same network measured in the same round (min–max over rounds; the CPU time of the process is the steadier
figure on a shared machine). Alone:

    python -m benchmarks.deep_run

The graph cache is cleared before each call: each measures a request the worker has not seen.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from app.core.body import encode_json
from app.core.config import Settings
from app.core.networks import graph as dataflow
from app.core.presets import resnet
from app.core.registry import default_registry
from app.core.running import requests

BLOCKS = 512
WIDTH = 256  # Linear(256, 256): plain torch's build is about 100 ms, as in the table
CHANNELS = 32  # Conv2d(32, 32, 3) on 1×32×16×16


def _deep(block: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """512 blocks as two Sequentials of 256 (a Sequential holds at most 256 layers)."""
    half = [{"type": "Sequential", "layers": [{"type": "Sequential", "layers": block()} for _ in range(BLOCKS // 2)]}]
    return {"type": "Sequential", "layers": half * 2}


def linear_net() -> dict[str, Any]:
    return {
        "layer": _deep(lambda: [{"type": "Linear", "in_features": WIDTH, "out_features": WIDTH}, {"type": "ReLU"}]),
        "inputs": [{"shape": [8, WIDTH]}],
    }


def conv_net() -> dict[str, Any]:
    block = [
        {"type": "Conv2d", "in_channels": CHANNELS, "out_channels": CHANNELS, "kernel_size": 3, "padding": 1},
        {"type": "BatchNorm2d", "num_features": CHANNELS},
        {"type": "ReLU"},
    ]
    return {"layer": _deep(lambda: [dict(b) for b in block]), "inputs": [{"shape": [1, CHANNELS, 16, 16]}]}


def resnet18() -> dict[str, Any]:
    return {"layer": resnet(18), "inputs": [{"shape": [1, 3, 224, 224]}]}


def _plain_deep(block: Callable[[], list[nn.Module]]) -> nn.Module:
    half = BLOCKS // 2
    return nn.Sequential(*[nn.Sequential(*[nn.Sequential(*block()) for _ in range(half)]) for _ in range(2)])


class _Basic(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        down = stride != 1 or cin != planes
        self.down = (
            nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)) if down else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.down(x) if self.down is not None else x))


def _plain_resnet18() -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for stage, planes in enumerate((64, 128, 256, 512)):
        for i in range(2):
            layers.append(_Basic(cin, planes, 2 if stage > 0 and i == 0 else 1))
            cin = planes
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


def _plain(build: Callable[[], nn.Module], shape: tuple[int, ...]) -> Callable[[], None]:
    """Seed, build, draw, forward: what a notebook does for the same numbers."""

    def run() -> None:
        torch.manual_seed(0)
        module = build()
        x = torch.randn(shape)
        with torch.no_grad():
            module(x)

    return run


def _ours(registry: Any, body: dict[str, Any], settings: Settings) -> Callable[[], int]:
    def run() -> int:
        dataflow._CACHE.clear()
        return len(encode_json(requests.run(registry, body, settings)))

    return run


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def cases(registry: Any, settings: Settings) -> list[tuple[str, Callable[[], Any], Callable[[], None]]]:
    lin = lambda: [nn.Linear(WIDTH, WIDTH), nn.ReLU()]  # noqa: E731
    conv = lambda: [nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1), nn.BatchNorm2d(CHANNELS), nn.ReLU()]  # noqa: E731
    return [
        (f"/api/run, {BLOCKS}-block Linear({WIDTH})+ReLU net", _ours(registry, linear_net(), settings),
         _plain(lambda: _plain_deep(lin), (8, WIDTH))),
        (f"/api/run, {BLOCKS}-block Conv({CHANNELS})+BN+ReLU net", _ours(registry, conv_net(), settings),
         _plain(lambda: _plain_deep(conv), (1, CHANNELS, 16, 16))),
        ("/api/run, ResNet-18 on 1×3×224×224", _ours(registry, resnet18(), settings),
         _plain(_plain_resnet18, (1, 3, 224, 224))),
    ]  # fmt: skip


def rows(rounds: int = 3) -> list[tuple[str, str, str, str, str]]:
    """Each case and its plain-torch peer, interleaved, ``rounds`` times: (measurement, ours, peer,
    peer value, ratio), the ratio of wall-clock and of CPU time, min–max over the rounds."""
    registry = default_registry()
    settings = Settings(memory_limit_bytes=8 * 1024**3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both sides on one core: on a shared machine more threads only add noise
    try:
        return _rows(registry, settings, rounds)
    finally:
        torch.set_num_threads(threads)


def _rows(registry: Any, settings: Settings, rounds: int) -> list[tuple[str, str, str, str, str]]:
    out = []
    for name, ours, peer in cases(registry, settings):
        size = ours()  # warm: first-call imports and kernels
        peer()
        t_ours, c_ours, t_peer, c_peer = [], [], [], []
        for _ in range(rounds):
            t, c = _timed(ours)
            t_ours.append(t)
            c_ours.append(c)
            t, c = _timed(peer)
            t_peer.append(t)
            c_peer.append(c)
        ratios = [a / b for a, b in zip(t_ours, t_peer)]
        cpu_ratios = [a / b for a, b in zip(c_ours, c_peer)]
        out.append(
            (
                f"{name} ({size / 1e6:.1f} MB of JSON)",
                f"{min(t_ours) * 1e3:.0f}–{max(t_ours) * 1e3:.0f} ms (CPU {statistics.median(c_ours) * 1e3:.0f} ms)",
                "torch seed + build + forward",
                f"{min(t_peer) * 1e3:.0f}–{max(t_peer) * 1e3:.0f} ms (CPU {statistics.median(c_peer) * 1e3:.0f} ms)",
                f"{min(ratios):.2f}–{max(ratios):.2f}× (CPU {min(cpu_ratios):.2f}–{max(cpu_ratios):.2f}×)",
            )
        )
    return out


def main() -> None:
    print("| measurement | ours | peer | peer value | ratio |")
    print("|---|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
