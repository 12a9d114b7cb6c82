"""Issue 16: a shape mismatch names both of its sides, the input's shape (`field`) and the constructor
arguments its message names (`related`), so a client shows it at whichever the person edited."""

import pytest

CASES = [
    (
        {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 9},
        [1, 3, 6, 6],
        {"layer.kernel_size", "layer.padding", "layer.dilation"},
    ),
    ({"type": "Conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3}, [1, 3, 6, 6], {"layer.in_channels"}),
    ({"type": "Linear", "in_features": 9, "out_features": 4}, [2, 5], {"layer.in_features"}),
    ({"type": "MaxPool1d", "kernel_size": 9}, [1, 3, 6], {"layer.kernel_size", "layer.padding", "layer.dilation"}),
]


@pytest.mark.parametrize(("layer", "shape", "related"), CASES, ids=[c[0]["type"] for c in CASES])
def test_mismatch_names_the_arguments_on_the_other_side(api, layer, shape, related):
    r = api.post("/api/run", json={"layer": layer, "inputs": [{"shape": shape}]})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "shape_mismatch" and body["field"] == "inputs[0].shape"
    assert set(body["related"]) == related
    for f in body["related"]:  # every one of them is named in the message, in the user's words
        assert f.removeprefix("layer.") in body["detail"]


def test_in_a_network_the_arguments_are_the_childs_fields(api):
    conv = {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 9}
    net = {"type": "Sequential", "layers": [{"type": "ReLU"}, conv]}
    body = api.post("/api/shape", json={"layer": net, "inputs": [{"shape": [1, 1, 6, 6]}]}).json()
    assert body["field"] == "layer.layers[1]" and body["path"] == "1"
    assert set(body["related"]) == {f"layer.layers[1].{a}" for a in ("kernel_size", "padding", "dilation")}
