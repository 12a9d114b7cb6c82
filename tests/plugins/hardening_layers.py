"""Test-only plugin layers for the hardening tests: legitimately slow, or crashing on purpose.

Loaded only by the tests (``Settings(plugins=(this file,))``), never by a default server. When the
environment names ``LAYER_EXPLORER_TEST_PIDFILE``, a real forward pass writes the worker's PID there
(set by the test that starts the server, never by a request), so a test can watch that process.
"""

from __future__ import annotations

import os
import signal
import time

import torch
from torch import nn

from app.plugins import Input, Param, register_layer


def _note_pid() -> None:
    path = os.environ.get("LAYER_EXPLORER_TEST_PIDFILE")
    if path:
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))


@register_layer(
    family="test",
    params=[Param("seconds", "float", default=1.0, minimum=0, maximum=600, doc="CPU time to burn")],
    inputs=[Input("input", "(*)")],
    example={"layer": {"seconds": 0.1}, "inputs": [{"shape": [2, 4]}]},
)
class Spin(nn.Module):
    """Burns CPU for ``seconds`` (a stand-in for a huge layer), then returns its input unchanged.

    Input: (*) -> Output: (*), same shape.
    """

    def __init__(self, seconds: float = 1.0) -> None:
        super().__init__()
        self.seconds = float(seconds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_meta:
            return x.clone()
        _note_pid()
        end = time.perf_counter() + self.seconds
        acc = 0.0
        while time.perf_counter() < end:
            acc += float(x.flatten()[0])
        return x.clone()


@register_layer(
    family="test",
    params=[Param("how", "str", default="exit", choices=["exit", "segv", "abort"], doc="how the worker dies")],
    inputs=[Input("input", "(*)")],
    example={"layer": {"how": "exit"}, "inputs": [{"shape": [2, 4]}]},
)
class Crash(nn.Module):
    """Kills the process running its forward pass (as a libtorch segfault would).

    Input: (*) -> Output: never returns.
    """

    def __init__(self, how: str = "exit") -> None:
        super().__init__()
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_meta:
            return x.clone()
        _note_pid()
        if self.how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.how == "abort":
            os.abort()
        os._exit(3)
