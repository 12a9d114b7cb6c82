"""GET /api/lesson: the tutorial's steps in order, each opening a request whose numbers are the tutorial's."""

from __future__ import annotations

import math

import pytest
import torch

from tests.test_tutorial import close

# The tutorial's section order (seed/torch_layers_tutorial.md), MaxPool last.
ORDER = [
    "basic-linear",
    "neural-net",
    "residual-block",
    "residual-net",
    "linear",
    "bilinear",
    "conv1d",
    "conv1d-stride",
    "maxpool1d",
    "maxpool2d-ceil",
]

# What the tutorial prints (first output row), or, for its unfinished MaxPool section, plain torch.
PRINTED_FIRST_ROW = {
    "basic-linear": [5.7495, 1.6639, -1.6199, 0.6273, 0.6853],
    "neural-net": [-3.1472, -29.9071, 8.7836, 3.4756, 15.5517],
    "residual-block": [-0.4739, -1.9992, 1.0667, -1.4696, 0.4428],
    "linear": [0.7910, -0.6975, 0.4384, 0.7299, 1.0319],
    "bilinear": [0.2347, -1.5629, 1.7704, -0.0386, 0.5411, 0.5182, -0.6519],
}
SHAPES = {
    "basic-linear": [5, 5],
    "neural-net": [5, 20],
    "residual-block": [5, 20],
    "residual-net": [5, 50],
    "linear": [5, 5],
    "bilinear": [5, 7],
    "conv1d": [6, 5, 5],
    "conv1d-stride": [4, 32, 25],
    "maxpool1d": [1, 1, 4],
    "maxpool2d-ceil": [1, 1, 3, 3],
}


@pytest.fixture(scope="module")
def lesson(api):
    r = api.get("/api/lesson")
    assert r.status_code == 200
    assert r.headers["etag"]
    assert api.get("/api/lesson", headers={"if-none-match": r.headers["etag"]}).status_code == 304
    return r.json()


@pytest.fixture(scope="module")
def answers(api, lesson):
    out = {}
    for step in lesson["steps"]:
        r = api.post("/api/run", json=step["request"])
        assert r.status_code == 200, (step["id"], r.text)
        out[step["id"]] = r.json()
    return out


def test_steps_follow_the_tutorial(lesson, api):
    steps = lesson["steps"]
    assert [s["id"] for s in steps] == ORDER
    presets = {p["id"]: p for p in api.get("/api/presets").json()["presets"]}
    for s in steps:
        assert s["title"] and s["text"] and s["look"], s["id"]
        assert s["view"] in ("layer", "network")
        if s["view"] == "network":
            # a network step opens the preset itself, request and all
            assert presets[s["preset"]]["request"] == s["request"]
        assert s["request"]["layer"]["type"]


def test_every_step_answers_with_the_tutorials_shapes_and_code(answers):
    for sid, shape in SHAPES.items():
        assert answers[sid]["output"]["shape"] == shape, sid
        # every step can link to its reproduction script
        assert "import torch" in answers[sid]["code"], sid


def test_every_step_prints_the_tutorials_numbers(answers):
    for sid, row in PRINTED_FIRST_ROW.items():
        close(answers[sid]["output"]["data"][0], row, tol=2e-4)


def test_pinned_elements_explain_to_torchs_value(api, lesson, answers):
    for s in lesson["steps"]:
        if not s["pinned"]:
            continue
        ex = api.post("/api/explain", json={**s["request"], "index": s["pinned"]["index"]}).json()
        assert ex["match"] is True, s["id"]
        value = answers[s["id"]]["output"]["data"]
        for i in s["pinned"]["index"]:
            value = value[i]
        assert math.isclose(ex["value"], value, rel_tol=1e-6, abs_tol=1e-6), s["id"]


def test_maxpool_steps_are_plain_torch(answers, lesson):
    by_id = {s["id"]: s for s in lesson["steps"]}
    # MaxPool1d: −∞ padding, so the end windows answer a real input value, never 0
    req = by_id["maxpool1d"]["request"]
    x = torch.tensor(req["inputs"][0]["data"])
    want = torch.nn.MaxPool1d(kernel_size=3, stride=2, padding=1)(x)
    got = answers["maxpool1d"]["output"]["data"][0][0]
    assert got == want[0, 0].tolist()  # the same float32 values
    assert got == pytest.approx([-0.3, 0.8, 0.8, -1.1])
    l_out = answers["maxpool1d"]["formula"][-1]
    assert l_out["dim"] == "L_out" and l_out["value"] == 4
    # MaxPool2d with ceil_mode: the partial last window counts
    x = torch.tensor(by_id["maxpool2d-ceil"]["request"]["inputs"][0]["data"], dtype=torch.float32)
    want = torch.nn.MaxPool2d(2, 2, ceil_mode=True)(x)
    assert answers["maxpool2d-ceil"]["output"]["data"] == want.tolist() == [[[[7, 9, 10], [17, 19, 20], [22, 24, 25]]]]


def test_explain_says_maxpool_pads_with_minus_infinity(api, lesson):
    step = next(s for s in lesson["steps"] if s["id"] == "maxpool1d")
    ex = api.post("/api/explain", json={**step["request"], "index": [0, 0, 0]}).json()
    assert ex["operation"] == "max" and ex["value"] == pytest.approx(-0.3)
    assert ex["terms"][ex["winner"]]["input_index"] == [0, 0, 1]
