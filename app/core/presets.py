"""Ready-made networks: the tutorial's, and a few classics to compare shapes and sizes with."""

from __future__ import annotations

from typing import Any


def _conv(cin: int, cout: int, k: int, **kw: Any) -> dict[str, Any]:
    return {"type": "Conv2d", "in_channels": cin, "out_channels": cout, "kernel_size": k, **kw}


PRESETS: list[dict[str, Any]] = [
    {
        "id": "tutorial-neuralnet",
        "name": "Tutorial: NeuralNet (BasicLinear 10→15→20)",
        "description": "The tutorial's first network: two of its custom BasicLinear layers.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "BasicLinear", "name": "layer1", "input_features": 10, "output_features": 15},
                    {"type": "BasicLinear", "name": "layer2", "input_features": 15, "output_features": 20},
                ],
            },
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    },
    {
        "id": "tutorial-residual-block",
        "name": "Tutorial: SimpleResidualBlock(10, 20)",
        "description": "fc1 → ReLU → fc2, plus a Linear downsample of the input because the sizes differ.",
        "request": {
            "layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    },
    {
        "id": "tutorial-residual-net",
        "name": "Tutorial: NeuralNet of two residual blocks (10→50→50)",
        "description": "The tutorial's network of SimpleResidualBlocks; only the first needs a downsample.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "SimpleResidualBlock", "name": "block1", "in_features": 10, "out_features": 50},
                    {"type": "SimpleResidualBlock", "name": "block2", "in_features": 50, "out_features": 50},
                ],
            },
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    },
    {
        "id": "lenet5",
        "name": "LeNet-5",
        "description": "LeCun et al. (1998) on a 28×28 image padded to 32×32: conv, tanh, average pooling, three Linear layers.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    _conv(1, 6, 5, padding=2),
                    {"type": "Tanh"},
                    {"type": "AvgPool2d", "kernel_size": 2},
                    _conv(6, 16, 5),
                    {"type": "Tanh"},
                    {"type": "AvgPool2d", "kernel_size": 2},
                    {"type": "Flatten"},
                    {"type": "Linear", "in_features": 400, "out_features": 120},
                    {"type": "Tanh"},
                    {"type": "Linear", "in_features": 120, "out_features": 84},
                    {"type": "Tanh"},
                    {"type": "Linear", "in_features": 84, "out_features": 10},
                ],
            },
            "inputs": [{"shape": [1, 1, 28, 28]}],
            "seed": 0,
        },
    },
    {
        "id": "small-cnn-batchnorm",
        "name": "Small CNN with BatchNorm",
        "description": "Two conv → BatchNorm → ReLU stages, global average pooling and a classifier.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    _conv(3, 16, 3, padding=1),
                    {"type": "BatchNorm2d", "num_features": 16},
                    {"type": "ReLU"},
                    {"type": "MaxPool2d", "kernel_size": 2},
                    _conv(16, 32, 3, padding=1),
                    {"type": "BatchNorm2d", "num_features": 32},
                    {"type": "ReLU"},
                    {"type": "AdaptiveAvgPool2d", "output_size": 1},
                    {"type": "Flatten"},
                    {"type": "Linear", "in_features": 32, "out_features": 10},
                ],
            },
            "inputs": [{"shape": [2, 3, 32, 32]}],
            "seed": 0,
        },
    },
    {
        "id": "resnet-basic-block",
        "name": "ResNet basic block",
        "description": "He et al. (2016): conv-BN-ReLU-conv-BN plus the identity, then ReLU.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {
                        "type": "Residual",
                        "name": "block",
                        "body": [
                            _conv(16, 16, 3, padding=1, bias=False),
                            {"type": "BatchNorm2d", "num_features": 16},
                            {"type": "ReLU"},
                            _conv(16, 16, 3, padding=1, bias=False),
                            {"type": "BatchNorm2d", "num_features": 16},
                        ],
                        "shortcut": None,
                    },
                    {"type": "ReLU", "name": "relu"},
                ],
            },
            "inputs": [{"shape": [1, 16, 8, 8]}],
            "seed": 0,
        },
    },
    {
        "id": "tiny-transformer-encoder",
        "name": "Tiny transformer encoder layer",
        "description": "Self-attention and a feed-forward block with residuals and LayerNorm (d_model 16, 2 heads).",
        "request": {
            "layer": {
                "type": "TransformerEncoderLayer",
                "d_model": 16,
                "nhead": 2,
                "dim_feedforward": 32,
                "dropout": 0.0,
                "batch_first": True,
            },
            "inputs": [{"shape": [2, 5, 16]}],
            "seed": 0,
        },
    },
]


def presets() -> list[dict[str, Any]]:
    return PRESETS
