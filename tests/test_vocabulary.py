"""Issue 16: the words the API gives the page: "*" dimensions named as the page names them (*₁, *₂), and
what an argument left at None stands for, read from torch's docstring."""

import pytest

from app.core.catalog.spec import none_means
from app.core.presets import PRESETS


def test_star_dimensions_are_named_one_based_with_subscripts(api):
    body = api.post("/api/run", json={"layer": {"type": "ReLU"}, "inputs": [{"shape": [4, 6, 2]}]}).json()
    assert [f["dim"] for f in body["formula"]] == ["*₁", "*₂", "*₃"]
    assert [f["latex"] for f in body["formula"]] == ["\\ast_{1}", "\\ast_{2}", "\\ast_{3}"]
    one = api.post("/api/run", json={"layer": {"type": "ReLU"}, "inputs": [{"shape": [5]}]}).json()
    assert [f["dim"] for f in one["formula"]] == ["*"]


@pytest.mark.parametrize(
    ("layer", "param", "means"),
    [
        ("MaxPool2d", "stride", "kernel_size"),
        ("AvgPool1d", "stride", "kernel_size"),
        ("MaxUnpool1d", "stride", "kernel_size"),
        ("MultiheadAttention", "kdim", "embed_dim"),
        ("AvgPool3d", "divisor_override", "kernel_size"),
        ("Embedding", "padding_idx", None),  # the docstring does not say: the page says "not set"
    ],
)
def test_none_defaults_say_what_they_stand_for(api, layer, param, means):
    catalog = api.get("/api/layers").json()
    spec = next(
        p for entry in catalog["layers"] if entry["type"] == layer for p in entry["params"] if p["name"] == param
    )
    assert spec["default"] is None and spec["default_means"] == means


def test_none_means_reads_the_usual_phrasings():
    assert none_means("the stride of the window. Default value is kernel_size") == "kernel_size"
    assert none_means("Stride of the max pooling window. It is set to kernel_size by default.") == "kernel_size"
    assert none_means("Total number of features for values. Default: `None` (uses `vdim=embed_dim`).") == "embed_dim"
    assert none_means("if specified, ...") is None
    assert none_means("") is None


def test_receptive_field_formula_comes_with_latex(api):
    lenet = next(p for p in PRESETS if p["id"] == "lenet5")["request"]
    f = api.post("/api/receptive-field", json={**lenet, "index": [0, 0, 5, 5], "path": "3"}).json()["formula"]
    assert "\\prod_{i<l} s_i" in f["latex"] and "∏" not in f["latex"]
    assert f["steps"][2]["latex"] == "6 + (5 - 1) \\cdot 1 \\cdot 2 = 14"  # square: one step for H and W
    rect = {
        "layer": {
            "type": "Sequential",
            "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": [3, 5]}],
        },
        "inputs": [{"shape": [1, 1, 8, 8]}],
        "index": [0, 0, 1, 1],
    }
    step = api.post("/api/receptive-field", json=rect).json()["formula"]["steps"][0]
    assert step["latex"] == "1 + (3 - 1) \\cdot 1 \\cdot 1 = 3,\\; 1 + (5 - 1) \\cdot 1 \\cdot 1 = 5"
