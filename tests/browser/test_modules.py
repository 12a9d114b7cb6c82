"""The pure ES modules (state, parsing, geometry, timeline), exercised in the browser itself."""

import json

import pytest

from .helpers import open_view

pytestmark = pytest.mark.browser


def run_module(page, path, body):
    return page.evaluate(f"import('{path}').then(m => {{ {body} }})")


def test_state_round_trips_through_the_url(page):
    open_view(page)
    out = run_module(
        page,
        "/static/js/state.js",
        """
        const s = {request: {seed: 3, inputs: [{shape: [2, 3]}], layer: {kernel_size: [3, 3], type: "Conv2d"}}, ui: {...m.DEFAULT_UI, channel: 2}};
        const q = m.encodeQuery(s);
        const back = m.decodeQuery(q);
        return {q, back, bad: m.decodeQuery("?config=%7Bnope").error, noType: m.decodeQuery("?config=%7B%7D").error};
        """,
    )
    assert out["back"]["request"] == {
        "layer": {"type": "Conv2d", "kernel_size": [3, 3]},
        "inputs": [{"shape": [2, 3]}],
        "seed": 3,
    }
    assert out["back"]["ui"]["channel"] == 2
    assert out["q"].startswith("?config=")
    assert out["bad"] and out["noType"]


def test_param_parsing_follows_the_catalog_spec(page):
    open_view(page)
    out = run_module(
        page,
        "/static/js/util/params.js",
        """
        const ints = {type: "ints", length: 2, minimum: 1, choices: ["same", "valid"], default: 1};
        return [
          m.parseValue(ints, "3"), m.parseValue(ints, "3, 2"), m.parseValue(ints, "(3, 2)"), m.parseValue(ints, "same"),
          m.parseValue(ints, "0"), m.parseValue(ints, "1,2,3"), m.parseValue(ints, ""),
          m.parseValue({type: "int", required: true, minimum: 1}, ""), m.parseValue({type: "float", nullable: true}, "None"),
          m.parseValue({type: "float"}, "1e-5"), m.parseShape("5, 10"), m.parseShape("5, x"), m.parseData("[[1, nan]]"),
        ];
        """,
    )
    assert out[0] == {"value": 3}
    assert out[1] == {"value": [3, 2]}
    assert out[2] == {"value": [3, 2]}
    assert out[3] == {"value": "same"}
    assert "≥ 1" in out[4]["error"]
    assert "1 or 2" in out[5]["error"]
    assert out[6] == {"omit": True}
    assert out[7] == {"error": "required"}
    assert out[8] == {"value": None}
    assert out[9] == {"value": 1e-5}
    assert out[10] == {"value": [5, 10]}
    assert "error" in out[11]
    assert out[12] == {"value": [[1, "nan"]]}


def test_timeline_steps_loops_and_pauses(page):
    open_view(page)
    out = run_module(
        page,
        "/static/js/anim/timeline.js",
        """
        const pending = [];
        const timers = {setTimeout: (fn) => { pending.push(fn); return pending.length; }, clearTimeout: () => { pending.length = 0; }};
        const seen = [];
        const t = m.createTimeline({count: 3, onStep: (s) => seen.push(s), timers});
        t.play();
        const fire = () => { const f = pending.shift(); f && f(); };
        fire(); fire(); fire();
        const playing = t.playing;
        t.stepBy(-1);
        return {seen, playing, after: t.step, paused: !t.playing};
        """,
    )
    assert out["seen"][:3] == [1, 2, 0]
    assert out["playing"] is True
    assert out["after"] == out["seen"][-1] and out["paused"]


def test_window_geometry_roles(page):
    open_view(page)
    out = run_module(
        page,
        "/static/js/geometry/windows.js",
        """
        const win = {spatial_dims: 1, input_spatial: [3], frame: {shape: [7], input_origin: [1], input_step: [2]}};
        return [0, 1, 2, 3, 4, 5, 6].map((c) => m.frameCellRole([c], win));
        """,
    )
    assert out == ["padding", "input", "zero", "input", "zero", "input", "padding"]


def test_compact_windows_expand_like_the_api(page, api_run):
    """The page expands the API's compact window description into the cells torch's probe reads."""
    open_view(page)
    reflect = api_run(
        {
            "layer": {
                "type": "Conv1d",
                "in_channels": 1,
                "out_channels": 1,
                "kernel_size": 3,
                "stride": 2,
                "padding": 2,
                "padding_mode": "reflect",
            },
            "inputs": [{"shape": [1, 1, 5]}],
        }
    )["windows"]
    transposed = api_run(
        {
            "layer": {"type": "ConvTranspose2d", "in_channels": 1, "out_channels": 1, "kernel_size": 2, "stride": 2},
            "inputs": [{"shape": [1, 1, 2, 2]}],
        }
    )["windows"]
    out = run_module(
        page,
        "/static/js/geometry/windows.js",
        f"const [r, t] = {json.dumps([reflect, transposed])};"
        """
        return {
          at: m.windowAt(r, [1]), src: m.windowSrc(r, [1]), copies: [...m.frameCopies(r).entries()],
          tAt: m.windowAt(t, [1, 2]), tSrc: m.windowSrc(t, [1, 2]),
        };
        """,
    )
    # reflect, padding 2: frame [x2 x1 x0 x1 x2 x3 x4 x3 x2]; output 1's window starts at frame 2
    assert out["at"] == [[2], [3], [4]] and out["src"] == [[0], [1], [2]]
    assert sorted(out["copies"]) == [["0", [2]], ["1", [1]], ["7", [3]], ["8", [2]]]
    # transposed, kernel 2, stride 2: a direct conv over [pad x0 0 x1 pad] per dimension (window step 1);
    # output (1, 2) reads frame rows 1-2, cols 2-3, and only frame (1, 3) holds an input: x[0, 1]
    assert out["tAt"] == [[1, 2], [1, 3], [2, 2], [2, 3]]
    assert out["tSrc"] == [None, [0, 1], None, None]
