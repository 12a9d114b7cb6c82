"""POST /api/animate: the sliding window as GIF/WebM/MP4, limits checked before rendering."""

import io

import pytest
from PIL import Image

from app.core.running import animate as anim

CONV1D = {
    "layer": {"type": "Conv1d", "in_channels": 3, "out_channels": 5, "kernel_size": 4},
    "inputs": [{"shape": [6, 3, 8]}],
    "seed": 42,
}
MAXPOOL = {
    "layer": {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
    "inputs": [{"data": [[[[-(i * 4 + j + 1) for j in range(4)] for i in range(4)]]]}],
}


def gif(api, body):
    r = api.post("/api/animate?format=gif", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/gif"
    return Image.open(io.BytesIO(r.content))


def test_conv1d_gif_frames_size_and_first_frame(api):
    im = gif(api, CONV1D)
    assert im.n_frames == 5 + 1  # one frame per output position, plus the held final frame
    win = api.post("/api/run", json=CONV1D).json()["windows"]
    lay, steps = anim.plan_animation(win | {"values": {"input_channels": [0, 1, 2]}})
    assert lay.k_cols == 4
    assert im.size == (lay.width, lay.height) and len(steps) == 5
    first = im.convert("RGB")
    c = lay.cell
    # Frame 0: the window covers input cells 0..3 of each channel, so window orange shows there; the
    # output's first cell holds torch's value in the page's colour, the others are still white.
    out = api.post("/api/run", json=CONV1D).json()["output"]["data"][0][0]
    m = max(abs(v) for v in out)
    px = first.getpixel((lay.out_x + c // 2, lay.top + 3))
    assert px == anim.value_color(out[0], m)
    assert first.getpixel((lay.out_x + c + c // 2, lay.top + c // 2)) == (255, 255, 255)
    border = first.getpixel((lay.frame_x + 2, lay.top + c // 2))
    assert border == anim.WINDOW
    # The input cell outside the window (position 6 of channel 0) has the input's own colour.
    x = api.post("/api/run", json=CONV1D).json()["inputs"][0]["data"][0]
    m_in = max(abs(v) for ch in x for v in ch)
    assert first.getpixel((lay.frame_x + 6 * c + 3, lay.top + 3)) == anim.value_color(x[0][6], m_in)
    # Each channel's kernel slice sits beside it in the weight's colours: w[0, c_in, k].
    w = next(p for p in api.post("/api/run", json=CONV1D).json()["params"] if p["name"] == "weight")["data"][0]
    m_w = max(abs(v) for row in w for v in row)
    assert first.getpixel((lay.kernel_x + 3, lay.top + 3)) == anim.value_color(w[0][0], m_w)
    assert first.getpixel((lay.kernel_x + 3 * c + 3, lay.top + 2 * lay.band_h + 3)) == anim.value_color(w[2][3], m_w)
    # The last frame holds the whole output.
    im.seek(im.n_frames - 1)
    last = im.convert("RGB")
    assert last.getpixel((lay.out_x + 4 * c + c // 2, lay.top + 3)) == anim.value_color(out[4], m)


def test_max_pool_frames_show_padding(api):
    im = gif(api, MAXPOOL)
    assert im.n_frames == 4 + 1
    win = api.post("/api/run", json=MAXPOOL).json()["windows"]
    lay, _ = anim.plan_animation(win | {"values": {"input_channels": [0]}})
    # frame cell (0, 0) is padding: the page's light grey (or its hatching), not an input colour
    px = im.convert("RGB").getpixel((lay.frame_x + lay.cell - 4, lay.top + lay.cell // 2))
    assert px in (anim.PADDING, anim.HATCH) or px[0] > 200


@pytest.mark.parametrize("fmt, magic", [("webm", b"\x1a\x45\xdf\xa3"), ("mp4", b"ftyp")])
def test_video_formats(api, fmt, magic):
    r = api.post(f"/api/animate?format={fmt}", json=CONV1D)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"video/{fmt}"
    assert magic in r.content[:16]


def test_too_many_frames_is_413_before_rendering(api, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("rendered despite the limit")

    monkeypatch.setattr(anim, "render_frames", boom)
    monkeypatch.setattr(anim, "execute", boom)
    body = {
        "layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3},
        "inputs": [{"shape": [1, 1, 64, 64]}],
    }
    r = api.post("/api/animate?format=gif", json=body)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "3845 frames" in r.json()["detail"]


def test_not_a_window_layer_or_bad_format(api):
    r = api.post(
        "/api/animate?format=gif",
        json={"layer": {"type": "Linear", "in_features": 3, "out_features": 2}, "inputs": [{"shape": [2, 3]}]},
    )
    assert r.status_code == 422 and r.json()["field"] == "layer.type"
    r = api.post("/api/animate?format=bmp", json=CONV1D)
    assert r.status_code == 422
