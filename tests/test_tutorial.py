"""The tutorial's cells, through the API, reproduce its printed numbers to the printed digits."""

from __future__ import annotations

import pytest


def close(row, printed, tol=1e-4):
    assert len(row) >= len(printed)
    for got, want in zip(row, printed):
        assert abs(got - want) <= tol, (row, printed)


def run(api, body):
    r = api.post("/api/run", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_linear_10_5_seed_42(api):
    out = run(
        api,
        {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42},
    )
    assert out["output"]["shape"] == [5, 5]
    data = out["output"]["data"]
    close(data[0], [0.7910, -0.6975, 0.4384, 0.7299, 1.0319])
    close(data[4], [0.5157, 0.1053, -1.0661, 1.8080, 0.9811])
    weight = next(p for p in out["params"] if p["name"] == "weight")
    bias = next(p for p in out["params"] if p["name"] == "bias")
    assert weight["shape"] == [5, 10]
    close(weight["data"][0], [0.2418, 0.2625, -0.0741, 0.2905, -0.0693, 0.0638, -0.1540, 0.1857, 0.2788, -0.2320])
    close(bias["data"], [-0.3130, -0.1222, -0.2426, 0.2595, 0.0911])


def test_linear_7_3_seed_42(api):
    out = run(
        api,
        {"layer": {"type": "Linear", "in_features": 7, "out_features": 3}, "inputs": [{"shape": [9, 7]}], "seed": 42},
    )
    assert out["output"]["shape"] == [9, 3]
    close(out["output"]["data"][0], [0.4960, -0.2588, 0.8303])
    close(out["output"]["data"][8], [-0.0656, -0.3253, 0.0333])


def test_bilinear_and_its_manual_computation(api):
    body = {
        "layer": {"type": "Bilinear", "in1_features": 10, "in2_features": 20, "out_features": 7},
        "inputs": [{"shape": [5, 10]}, {"shape": [5, 20]}],
        "seed": 42,
    }
    out = run(api, body)
    close(out["output"]["data"][0], [0.2347, -1.5629, 1.7704, -0.0386, 0.5411, 0.5182, -0.6519])
    close(out["output"]["data"][2], [-0.3513, -3.4169, -0.6370, -6.0918, 1.4707, 1.2421, -5.9193])
    assert [p["shape"] for p in out["params"]] == [[7, 10, 20], [7]]
    # the tutorial's loop: x1[i].T @ A[o] @ x2[i] + b[o] for every i, o
    for i, o in [(0, 0), (2, 3), (4, 6)]:
        r = api.post("/api/explain", json={**body, "index": [i, o]})
        ex = r.json()
        assert ex["match"] is True
        assert abs(ex["value"] - out["output"]["data"][i][o]) < 1e-6
        assert len(ex["terms"]) == 10 * 20


def test_bilinear_3d(api):
    out = run(
        api,
        {
            "layer": {"type": "Bilinear", "in1_features": 10, "in2_features": 20, "out_features": 7},
            "inputs": [{"shape": [5, 15, 10]}, {"shape": [5, 15, 20]}],
            "seed": 42,
        },
    )
    assert out["output"]["shape"] == [5, 15, 7]
    assert out["predicted_shape"] == [5, 15, 7]


def test_conv1d_shapes_and_l_out_formula(api):
    out = run(
        api,
        {
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
    )
    assert out["output"]["shape"] == [6, 5, 5]
    l_out = out["formula"][-1]
    assert l_out["dim"] == "L_out"
    assert l_out["symbolic"] == "⌊(L_in + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1"
    assert l_out["substituted"] == "⌊(8 + 2·0 − 1·(4 − 1) − 1) / 1⌋ + 1"
    assert l_out["value"] == 5
    out = run(
        api,
        {
            "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 7, "kernel_size": 2},
            "inputs": [{"shape": [6, 3, 8]}],
            "seed": 42,
        },
    )
    assert out["output"]["shape"] == [6, 7, 7]
    assert [p["shape"] for p in out["params"]] == [[7, 3, 2], [7]]


def test_conv1d_calculate_l_out(api):
    out = run(
        api,
        {
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
        },
    )
    assert out["formula"][-1]["value"] == 25
    assert out["output"]["shape"] == [4, 32, 25]


def test_basic_linear_cells(api):
    out = run(
        api,
        {
            "layer": {"type": "BasicLinear", "input_features": 10, "output_features": 5},
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    )
    weights = next(p for p in out["params"] if p["name"] == "weights")
    close(weights["data"][0], [1.9269, 1.4873, 0.9007, -2.1055, 0.6784, -1.2345, -0.0431, -1.6047, -0.7521, 1.6487])
    close(next(p for p in out["params"] if p["name"] == "bias")["data"], [-0.5687, 1.2580, -1.5890, -1.1208, 0.8423])
    close(
        out["inputs"][0]["data"][0],
        [0.3383, 1.6992, 0.0109, -0.3387, -1.3407, -0.5854, 0.5362, 0.5246, -1.4692, 1.4332],
    )
    close(out["output"]["data"][0], [5.7495, 1.6639, -1.6199, 0.6273, 0.6853])
    close(out["output"]["data"][4], [0.0959, 1.2854, -0.2936, -0.5371, 4.7370])


NEURAL_NET = {
    "type": "Sequential",
    "layers": [
        {"type": "BasicLinear", "name": "layer1", "input_features": 10, "output_features": 15},
        {"type": "BasicLinear", "name": "layer2", "input_features": 15, "output_features": 20},
    ],
}


def test_neural_net_of_basic_linear(api):
    out = run(api, {"layer": NEURAL_NET, "inputs": [{"shape": [5, 10]}], "seed": 42})
    assert out["output"]["shape"] == [5, 20]
    close(
        out["inputs"][0]["data"][0],
        [-0.1678, 1.6433, 0.5163, 1.6060, -0.9815, 0.5361, 0.9226, 0.4872, -0.9770, -0.0336],
    )
    close(
        out["output"]["data"][0],
        [
            -3.1472,
            -29.9071,
            8.7836,
            3.4756,
            15.5517,
            23.3254,
            -13.9781,
            -16.4666,
            11.5610,
            26.2780,
            -12.2689,
            -20.9407,
            -4.5172,
            15.7965,
            12.2754,
            -17.7336,
            22.0269,
            18.4722,
            -17.1346,
            -5.1706,
        ],
        tol=2e-4,
    )
    names = [p["name"] for p in out["params"]]
    assert names == ["layer1.weights", "layer1.bias", "layer2.weights", "layer2.bias"]
    assert "(layer1): BasicLinear()" in out["repr"]


def test_simple_residual_block(api):
    out = run(
        api,
        {
            "layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    )
    assert "(downsample): Linear(in_features=10, out_features=20, bias=True)" in out["repr"]
    close(
        out["inputs"][0]["data"][0],
        [-1.3382, 0.4742, -2.2940, 0.7744, -0.5453, -2.1582, -1.6608, -0.6637, -0.2670, 0.2584],
    )
    close(
        out["output"]["data"][0], [-0.4739, -1.9992, 1.0667, -1.4696, 0.4428, -0.8600, 0.2264, -1.3219, 0.2252, 0.6634]
    )
    close(out["output"]["data"][4][:8], [0.2313, -0.1927, -0.9310, -1.5572, -1.4468, 0.2535, 0.6084, -0.5691])


def test_residual_network_of_two_blocks(api):
    out = run(
        api,
        {
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
    )
    assert out["output"]["shape"] == [5, 50]
    assert "(downsample)" in out["repr"].split("(block2)")[0]
    assert "(downsample)" not in out["repr"].split("(block2)")[1]


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_maxpool_done_properly(api, ceil_mode):
    body = {
        "layer": {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "ceil_mode": ceil_mode},
        "inputs": [
            {
                "data": [
                    [
                        [
                            [1, 2, 3, 4, 5],
                            [6, 7, 8, 9, 10],
                            [11, 12, 13, 14, 15],
                            [16, 17, 18, 19, 20],
                            [21, 22, 23, 24, 25],
                        ]
                    ]
                ]
            }
        ],
    }
    out = run(api, body)
    if ceil_mode:
        assert out["output"]["data"] == [[[[7, 9, 10], [17, 19, 20], [22, 24, 25]]]]
    else:
        assert out["output"]["data"] == [[[[7, 9], [17, 19]]]]
    ex = api.post("/api/explain", json={**body, "index": [0, 0, 1, 1]}).json()
    assert ex["operation"] == "max" and ex["value"] == 19 and ex["match"]
    assert ex["terms"][ex["winner"]]["input_index"] == [0, 0, 3, 3]
