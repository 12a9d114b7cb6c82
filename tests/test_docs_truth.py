"""What the README and docs/API.md show is what the code does: the plugin snippet loads as written, and
every error message the API documentation quotes is one the server sends, word for word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core import service
from app.core.catalog import plugins
from app.core.catalog.spec import Registry
from app.core.config import Settings
from app.core.errors import LayerExplorerError
from app.core.graphs.importer import parse_model
from app.core.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "API.md").read_text()
REGISTRY = default_registry()


def test_the_readme_plugin_snippet_loads_and_runs_as_written(tmp_path):
    section = README.split("### Bring your own layer", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "readme_snippet_layers.py"
    path.write_text(snippet)
    registry = Registry()
    assert plugins.load(registry, (str(path),)) == ["ScaledTanh"]
    example = registry.get("ScaledTanh").example
    out = service.run(registry, example, Settings())
    assert out["outputs"][0]["shape"] == example["inputs"][0]["shape"]


def _error(call) -> str:
    with pytest.raises(LayerExplorerError) as caught:
        call()
    return caught.value.detail


# Each message docs/API.md quotes, and a request that gets it. A new quotation needs a line here.
PRODUCERS = {
    "layer blk (Opaque) stands for MyBlock, recorded with its input of shape (1, 8); it is called with (2, 8). "
    "An opaque layer runs only on the shapes it was recorded with: record it again (layer_explorer.to_config) "
    "with an input of this shape; it receives fc (2, 8)": lambda: service.run(
        REGISTRY,
        {
            "layer": {
                "type": "Graph",
                "nodes": [
                    {"name": "fc", "module": {"type": "Linear", "in_features": 4, "out_features": 8}, "args": ["x"]},
                    {
                        "name": "blk",
                        "module": {
                            "type": "Opaque",
                            "type_name": "MyBlock",
                            "input_shapes": [[1, 8]],
                            "output_shapes": [[1, 8]],
                            "parameter_shapes": {"w": [8, 8], "proj.bias": [8]},
                        },
                        "args": ["fc"],
                    },
                ],
            },
            "inputs": [{"shape": [2, 4]}],
        },
        Settings(),
    ),
    "Linear expects the last dimension of input 0 to be in_features=10, got 7 (input shape (4, 7))": lambda: (
        service.run(
            REGISTRY,
            {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [4, 7]}]},
            Settings(),
        )
    ),
    "layer 1 (Linear) expects the last dimension of its input to be in_features=6, got 5 (input shape (4, 5)); "
    "layer 0 (Linear) outputs (4, 5)": lambda: service.run(
        REGISTRY,
        {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "Linear", "in_features": 4, "out_features": 5},
                    {"type": "Linear", "in_features": 6, "out_features": 2},
                ],
            },
            "inputs": [{"shape": [4, 4]}],
        },
        Settings(),
    ),
    "node join (cat): sizes must match except in dimension 1: dimension 2 is 6 in tensors[0] but 8 in tensors[1] "
    "(shapes (1, 4, 6, 6), (1, 4, 8, 8)); its inputs are a (1, 4, 6, 6), b (1, 4, 8, 8)": lambda: service.run(
        REGISTRY,
        {
            "layer": {
                "type": "Graph",
                "inputs": ["x"],
                "nodes": [
                    {
                        "name": "a",
                        "module": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
                        "args": ["x"],
                    },
                    {
                        "name": "b",
                        "module": {
                            "type": "Conv2d",
                            "in_channels": 3,
                            "out_channels": 4,
                            "kernel_size": 3,
                            "padding": 1,
                        },
                        "args": ["x"],
                    },
                    {"name": "join", "op": "cat", "args": [["a", "b"]], "kwargs": {"dim": 1}},
                ],
                "outputs": ["join"],
            },
            "inputs": [{"shape": [1, 3, 8, 8]}],
        },
        Settings(),
    ),
    "line 4, column 9: a `while` loop is not supported here": lambda: parse_model(
        REGISTRY,
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        while True:\n            pass\n",
    ),
    "line 4, column 19: the name `my_helper` is not defined in the code": lambda: parse_model(
        REGISTRY,
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = my_helper(3)\n",
    ),
}


def _quoted_messages(text: str) -> set[str]:
    """Every error message docs/API.md quotes: the "detail" of a JSON example, and the importer's
    "line L, column C: ..." messages. Quotations that wrap across lines are joined."""
    flat = re.sub(r"\s*\n\s*", " ", text)
    details = re.findall(r'"detail": "([^"]+)"', flat)
    located = re.findall(r'"(line \d+, column \d+: [^"]+)"', flat)
    return set(details) | set(located)


def test_every_quoted_error_message_has_a_request_here():
    assert _quoted_messages(API) == set(PRODUCERS)


@pytest.mark.parametrize("message", list(PRODUCERS))
def test_the_server_sends_each_quoted_message_word_for_word(message):
    assert _error(PRODUCERS[message]) == message
