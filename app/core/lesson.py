"""The tutorial as a lesson: its sections in order, each a view of the page with what to look at.

Plain data, served by ``GET /api/lesson``. A step opens either a layer (``request``, the exact
``/api/run`` body, shown in the layer view) or one of the network presets (``preset``, shown in the
network view), optionally with an output element pinned so its arithmetic is on screen. The seeds
and shapes are the tutorial's own, so the numbers on the page are the ones the tutorial prints.
"""

from __future__ import annotations

from typing import Any

from app.core.presets import presets

# MaxPool1d(kernel_size=3, stride=2, padding=1) on seven values, most of them negative: the window at
# each end overhangs the input by one cell. If padding were zeros, those windows would answer 0; torch
# pads max pooling with −∞, so they answer the largest real value (−0.3 and −1.1).
_POOL_1D = [[[-1.5, -0.3, -2.0, 0.8, -0.7, -1.1, -2.6]]]
# The 5×5 grid 1..25 of tests/test_tutorial.py: with ceil_mode the last, partial window counts.
_POOL_2D = [[[[5 * r + c + 1 for c in range(5)] for r in range(5)]]]

_STEPS: list[dict[str, Any]] = [
    {
        "id": "basic-linear",
        "section": "Custom Layers",
        "title": "A layer of your own: BasicLinear",
        "request": {
            "layer": {"type": "BasicLinear", "input_features": 10, "output_features": 5},
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
        "pinned": {"output": None, "index": [0, 0]},
        "text": [
            "The tutorial starts by writing a layer by hand: two Parameters, weights of shape "
            "(output_features, input_features) = (5, 10) and a bias of 5, and a forward() that computes "
            "x · weightsᵀ + bias.",
            "With seed 42 this page draws the same random numbers as the tutorial: the output's first "
            "row starts 5.7495, 1.6639, −1.6199.",
        ],
        "look": [
            "the shape diagram: (5, 10) times (10, 5) gives (5, 5): the inner 10s meet and vanish",
            "“One output element”: y[0, 0] is the sum of ten products plus the bias, by hand and by torch",
        ],
    },
    {
        "id": "neural-net",
        "section": "Building Networks",
        "title": "Two BasicLinear layers make a NeuralNet",
        "preset": "tutorial-neuralnet",
        "text": [
            "layer1 turns each sample's 10 features into 15, layer2 turns those 15 into 20: a layer's "
            "output_features must equal the next layer's input_features.",
            "The output is (5, 20), and its first row starts −3.1472, −29.9071, as in the tutorial.",
        ],
        "look": [
            "the network flow: the shape on every arrow, (5, 10) → (5, 15) → (5, 20)",
            "the summary: 165 + 320 = 485 parameters",
            "click layer2 to open it on the (5, 15) input it receives there",
        ],
    },
    {
        "id": "residual-block",
        "section": "Building Networks",
        "title": "A block with a skip path: SimpleResidualBlock",
        "preset": "tutorial-residual-block",
        "text": [
            "forward() runs fc1 → ReLU → fc2 and then adds its input back (out += identity). The sizes "
            "differ (10 in, 20 out), so the input first goes through a Linear downsample to 20 features.",
            "The block's output starts −0.4739, −1.9992, 1.0667.",
        ],
        "look": [
            "the dataflow graph, below the flow: the ⊕ where the two paths meet, and the skip path through downsample",
            "fc2 and downsample both end in (5, 20): the add needs equal shapes",
        ],
    },
    {
        "id": "residual-net",
        "section": "Building Networks",
        "title": "Blocks as Lego: a NeuralNet of two residual blocks",
        "preset": "tutorial-residual-net",
        "text": [
            "Blocks stack like layers. block1 goes from 10 to 50 features and needs a downsample; block2 "
            "keeps 50 and adds its input unchanged.",
        ],
        "look": [
            "the Module panel: only block1 has a (downsample) line",
            "the dataflow graph: block2's skip path goes straight into its ⊕",
        ],
    },
    {
        "id": "linear",
        "section": "Linear Layer",
        "title": "torch.nn.Linear: y = x·Aᵀ + b",
        "request": {
            "layer": {"type": "Linear", "in_features": 10, "out_features": 5},
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
        "pinned": {"output": None, "index": [0, 0]},
        "text": [
            "PyTorch's own Linear is the BasicLinear you wrote, with a better starting point: its weights "
            "are drawn uniformly from ±1/√in_features, so they are small (0.2418, 0.2625, …).",
            "in_features must match the input's last dimension; out_features becomes the output's. The "
            "output's first row is 0.7910, −0.6975, 0.4384, 0.7299, 1.0319.",
        ],
        "look": [
            "change in_features to 7 and the input to (9, 7): the output becomes (9, 3) with out_features 3",
            "click any cell of the output in the diagram to explain that element instead",
        ],
    },
    {
        "id": "bilinear",
        "section": "Bilinear",
        "title": "Bilinear: two inputs, y = x₁ᵀ A x₂ + b",
        "request": {
            "layer": {"type": "Bilinear", "in1_features": 10, "in2_features": 20, "out_features": 7},
            "inputs": [{"shape": [5, 10]}, {"shape": [5, 20]}],
            "seed": 42,
        },
        "pinned": {"output": None, "index": [0, 0]},
        "text": [
            "Bilinear correlates two inputs. Its weight is 3-D, (out_features, in1_features, "
            "in2_features) = (7, 10, 20): one 10 × 20 matrix A_k per output feature.",
            "The tutorial checks torch against a loop, x1[i] @ A[o] @ x2[i] + b[o]. The panel below "
            "does that loop for y[0, 0]: 10 × 20 = 200 products plus the bias, 0.2347 as printed.",
        ],
        "look": [
            "“One output element”: the hand computation in float64 beside torch's float32 value",
            "the weight's shape in the diagram: a stack of 7 matrices",
        ],
    },
    {
        "id": "conv1d",
        "section": "Conv1d",
        "title": "Conv1d: a kernel slides along the sequence",
        "request": {
            "layer": {
                "type": "Conv1d",
                "in_channels": 3,
                "out_channels": 5,
                "kernel_size": 4,
                "stride": 1,
                "padding": 0,
                "dilation": 1,
                "groups": 1,
            },
            "inputs": [{"shape": [6, 3, 8]}],
            "seed": 42,
        },
        "pinned": {"output": None, "index": [0, 0, 0]},
        "text": [
            "Each output channel has a kernel of shape (in_channels, kernel_size) = (3, 4). It slides "
            "along the 8 positions; at each stop it multiplies 3 × 4 inputs by its weights, sums them and "
            "adds the bias.",
            "L_out = ⌊(L_in + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1 = "
            "⌊(8 + 0 − 3 − 1) / 1⌋ + 1 = 5, so the output is (6, 5, 5).",
        ],
        "look": [
            "the sliding window: press ▶ and watch the kernel visit the 5 positions",
            "the Output shape panel: the formula with your numbers in it",
            "set padding to 1: L_out becomes 7 and the window overhangs the input by one cell",
        ],
    },
    {
        "id": "conv1d-stride",
        "section": "Conv1d",
        "title": "Conv1d: stride and padding in the L_out formula",
        "request": {
            "layer": {
                "type": "Conv1d",
                "in_channels": 1,
                "out_channels": 32,
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
                "dilation": 1,
            },
            "inputs": [{"shape": [4, 1, 50]}],
            "seed": 42,
        },
        "text": [
            "The tutorial's calculate_L_out on an input of length 50: ⌊(50 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 "
            "= ⌊49 / 2⌋ + 1 = 25, and torch agrees.",
            "stride 2 skips every other position; the floor drops a last window that would run past the padded end.",
        ],
        "look": [
            "the window moves two cells per step",
            "try stride 3: ⌊49 / 3⌋ + 1 = 17",
        ],
    },
    {
        "id": "maxpool1d",
        "section": "MaxPool",
        "title": "MaxPool1d: the largest value in each window, padding is −∞",
        "request": {
            "layer": {"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "padding": 1},
            "inputs": [{"data": _POOL_1D}],
        },
        "pinned": {"output": None, "index": [0, 0, 0]},
        "text": [
            "Max pooling has no weights: a window slides as in a convolution and each output is the "
            "largest input under it, channel by channel (C_out = C_in). Its padding is −∞, not 0: the "
            "first window holds −∞, −1.5, −0.3 and answers −0.3, where zeros would have made up a 0.",
            "L_out is the convolution's: ⌊(7 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 4; the output is −0.3, 0.8, "
            "0.8, −1.1. stride defaults to kernel_size, dilation spreads the window, and padding may be at "
            "most half the kernel.",
        ],
        "look": [
            "the sliding window: the padded cells at both ends, and the winner of each window",
            "“One output element”: the max of the window, and which input won",
            "0.8 wins twice: windows overlap when stride < kernel_size",
        ],
    },
    {
        "id": "maxpool2d-ceil",
        "section": "MaxPool",
        "title": "MaxPool2d and ceil_mode: keeping the last partial window",
        "request": {
            "layer": {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "ceil_mode": True},
            "inputs": [{"data": _POOL_2D}],
        },
        "pinned": {"output": None, "index": [0, 0, 1, 1]},
        "text": [
            "On the 5 × 5 grid 1 … 25, 2 × 2 windows with stride 2 fit twice per row: ⌊(5 − 2) / 2⌋ + 1 = 2, "
            "and the fifth row and column are dropped.",
            "ceil_mode=True rounds up instead: ⌈3 / 2⌉ + 1 = 3, so a last window that starts inside the "
            "input and hangs over its edge still counts; the cells outside are simply not considered. The "
            "output is [[7, 9, 10], [17, 19, 20], [22, 24, 25]].",
        ],
        "look": [
            "the Output shape panel: the ceiling instead of the floor",
            "y[0, 0, 1, 1] = 19, the max of 13, 14, 18, 19",
            "uncheck ceil_mode: the output shrinks to 2 × 2",
        ],
    },
]


def lesson() -> dict[str, Any]:
    """The lesson's steps, each with the request it opens and the view that shows it."""
    by_id = {p["id"]: p for p in presets()}
    steps = []
    for step in _STEPS:
        out = {k: v for k, v in step.items() if k != "preset"}
        if "preset" in step:
            preset = by_id[step["preset"]]
            out.update(view="network", preset=preset["id"], request=preset["request"])
        else:
            out["view"] = "layer"
        out.setdefault("pinned", None)
        steps.append(out)
    return {
        "title": "The tutorial, step by step",
        "source": "Torch Layers: BasicLinear → NeuralNet → SimpleResidualBlock → Linear → Bilinear → Conv1d → MaxPool",
        "steps": steps,
    }
