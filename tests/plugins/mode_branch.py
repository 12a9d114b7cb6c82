"""Test-only plugin: a network whose forward branches on its mode (loaded by tests/test_receptive_fast.py).

torch.fx traces the branch the module is in, so a kept trace must be kept per mode.
"""

from __future__ import annotations

import torch
from torch import nn

from app.plugins import Input, register_layer


@register_layer(
    family="test",
    inputs=[Input("input", "(N, 4)")],
    example={"layer": {}, "inputs": [{"shape": [2, 4]}]},
)
class ModeBranch(nn.Module):
    """``train`` in training mode, ``infer`` in eval mode: two Linear(4, 4), one of them called.

    Input: (N, 4) -> Output: (N, 4)
    """

    def __init__(self) -> None:
        super().__init__()
        self.train_path = nn.Linear(4, 4)
        self.eval_path = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.train_path(x) if self.training else self.eval_path(x)
