"""Test-only plugin networks that change tensors in place (the catalog itself builds no in-place layer).

Loaded only by tests/test_recorded_values.py (``Settings(plugins=(this file,))``): what a forward
hook records must be taken at the call, and these networks change their layers' outputs and inputs
after (or during) the call.
"""

from __future__ import annotations

import torch
from torch import nn

from app.plugins import Input, register_layer


@register_layer(
    family="test",
    inputs=[Input("input", "(N, 6)")],
    example={"layer": {}, "inputs": [{"shape": [3, 6]}]},
)
class InPlaceMLP(nn.Module):
    """Linear → ReLU(inplace=True) → Linear → ReLU(inplace=True): each ReLU overwrites a Linear's output.

    Input: (N, 6) -> Output: (N, 4)
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(8, 4)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.fc2(self.act1(self.fc1(x))))


@register_layer(
    family="test",
    inputs=[Input("input", "(N, 5)")],
    example={"layer": {}, "inputs": [{"shape": [4, 5]}]},
)
class InPlaceFirst(nn.Module):
    """The first layer overwrites the network's own input: ReLU(inplace=True) → Linear → LeakyReLU(inplace=True).

    Input: (N, 5) -> Output: (N, 5)
    """

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(5, 5)
        self.leaky = nn.LeakyReLU(0.5, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.leaky(self.fc(self.act(x)))


@register_layer(
    family="test",
    inputs=[Input("input", "(N, 6)")],
    example={"layer": {}, "inputs": [{"shape": [2, 6]}]},
)
class InPlaceResidual(nn.Module):
    """In-place adds on a layer's output (``+=`` and ``add_``), then in-place activations on the sums.

    Input: (N, 6) -> Output: (N, 6)
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(6, 6)
        self.clip = nn.Hardtanh(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc1(x)
        out += x
        out = self.act(out)
        y = self.fc2(out)
        y.add_(out)
        return self.clip(y)
