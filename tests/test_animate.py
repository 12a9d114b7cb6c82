"""POST /api/animate: the sliding window as GIF/WebM/MP4, limits checked before rendering."""

import io

import pytest
from PIL import Image

from app.core.explaining.windows import window_at
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


# --- 3-D windows: the input depth planes one output depth slice reads, side by side -----------------

CONV3D = {
    "layer": {"type": "Conv3d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
    "inputs": [{"shape": [1, 2, 5, 6, 6]}],
    "seed": 1,
}
NEG3 = [[[[[-(d * 16 + i * 4 + j + 1) for j in range(4)] for i in range(4)] for d in range(3)]]]
MAXPOOL3D = {"layer": {"type": "MaxPool3d", "kernel_size": 3, "stride": 2, "padding": 1}, "inputs": [{"data": NEG3}]}


def frame(im, i):
    im.seek(i)
    return im.convert("RGB")


@pytest.mark.parametrize(
    "layer, shape",
    [
        (
            {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "dilation": 2, "padding": 1},
            [1, 1, 9],
        ),
        (
            {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1},
            [1, 1, 6, 5],
        ),
        (
            {
                "type": "ConvTranspose2d",
                "in_channels": 1,
                "out_channels": 1,
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
            },
            [1, 1, 3, 3],
        ),
        ({"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "ceil_mode": True}, [1, 1, 6, 6]),
        (CONV3D["layer"], [1, 2, 5, 6, 6]),
        (
            {
                "type": "ConvTranspose3d",
                "in_channels": 1,
                "out_channels": 1,
                "kernel_size": [2, 3, 2],
                "stride": [2, 1, 2],
                "dilation": [1, 2, 1],
            },
            [1, 1, 2, 3, 2],
        ),
        ({"type": "AvgPool3d", "kernel_size": 2, "stride": [1, 2, 2], "padding": 1}, [1, 1, 3, 4, 4]),
    ],
)
def test_window_cells_are_where_torch_reads(api, layer, shape):
    # The frames place the window from the compact description (o·window_step + k·dilation); /api/explain
    # lists, for one output element, the cells torch's own probe says its window reads.
    body = {"layer": layer, "inputs": [{"shape": shape}]}
    win = api.post("/api/run", json=body).json()["windows"]
    for pos in anim._steps(win, "all"):
        ex = api.post("/api/explain", json=body | {"index": [0, 0, *pos]}).json()
        assert window_at(win, pos) == ex["window"]["at"]
    if win["spatial_dims"] == 3:
        for od in range(win["output_spatial"][0]):
            zs = sorted({c[0] for r in range(win["output_spatial"][1]) for c in window_at(win, (od, r, 0))})
            assert anim.depth_planes(win, od) == zs


def test_conv3d_gif_shows_the_depth_planes_of_the_chosen_slice(api):
    body = CONV3D | {"window_slice": {"channel": 1, "depth": 1}}
    im = gif(api, body)
    run = api.post("/api/run", json=CONV3D).json()
    win = run["windows"]
    assert win["output_spatial"] == [3, 3, 3]
    lay, steps = anim.plan_animation(win | {"values": {"input_channels": [0, 1]}}, 1)
    assert im.n_frames == 3 * 3 + 1 and len(steps) == 9
    assert im.size == (lay.width, lay.height)
    assert lay.planes == 3 and lay.bands == 2 and lay.out_planes == 1
    c = lay.cell
    first = frame(im, 0)
    # Output depth 1 reads frame depths 2, 3, 4 = input depths 1, 2, 3 (padding 1, stride 2).
    assert anim.depth_planes(win, 1) == [2, 3, 4]
    x = run["inputs"][0]["data"][0]  # (C_in, D, H, W) of sample 0
    m_in = max(abs(v) for ch in x for pl in ch for row in pl for v in row)
    # Plane 0 of channel 0, frame cell (5, 5) = input [0, 1, 4, 4], outside the window: its own colour.
    assert first.getpixel((lay.plane_x(0) + 5 * c + 3, lay.top + 5 * c + 3)) == anim.value_color(x[0][1][4][4], m_in)
    # Plane 2 of channel 1 (the second band), frame cell (3, 4) = input [1, 3, 2, 3].
    y1 = lay.top + lay.band_h
    assert first.getpixel((lay.plane_x(2) + 4 * c + 3, y1 + 3 * c + 3)) == anim.value_color(x[1][3][2][3], m_in)
    # The window at output (1, 0, 0) covers frame rows/cols 0..2 of every plane: its orange border.
    for i in range(3):
        assert first.getpixel((lay.plane_x(i) + 2, lay.top + c // 2)) == anim.WINDOW
        assert first.getpixel((lay.plane_x(i) + 2, y1 + 2 * c + c // 2)) == anim.WINDOW
    assert first.getpixel((lay.plane_x(0) + 3 * c + 2, lay.top + c // 2)) != anim.WINDOW
    # The output slice of output channel 1 at depth 1 fills in: first cell in torch's colour.
    out = api.post("/api/run", json=CONV3D).json()["output"]["data"][0][1]
    m = max(abs(v) for pl in out for row in pl for v in row)
    assert first.getpixel((lay.out_x + c // 2, lay.top + 3)) == anim.value_color(out[1][0][0], m)
    assert first.getpixel((lay.out_x + c + c // 2, lay.top + c // 2)) == anim.PENDING
    last = frame(im, im.n_frames - 1)
    assert last.getpixel((lay.out_x + 2 * c + c // 2, lay.top + 2 * c + 3)) == anim.value_color(out[1][2][2], m)


def test_depth_is_clamped_and_can_sweep_every_slice(api):
    past = api.post("/api/animate?format=gif", json=CONV3D | {"window_slice": {"depth": 99}})
    last = api.post("/api/animate?format=gif", json=CONV3D | {"window_slice": {"depth": 2}})
    assert past.status_code == last.status_code == 200 and past.content == last.content
    im = gif(api, CONV3D | {"window_slice": {"depth": "all"}})
    assert im.n_frames == 27 + 1
    win = api.post("/api/run", json=CONV3D).json()["windows"]
    lay, _ = anim.plan_animation(win | {"values": {"input_channels": [0, 1]}}, "all")
    assert lay.out_planes == 3 and im.size == (lay.width, lay.height)
    out = api.post("/api/run", json=CONV3D).json()["output"]["data"][0][0]
    m = max(abs(v) for pl in out for row in pl for v in row)
    c = lay.cell
    # Step 10 is output (1, 0, 0): slice 0 is complete, slice 1 has begun, slice 2 is still empty.
    f = frame(im, 9)
    assert f.getpixel((lay.out_plane_x(0) + 2 * c + 3, lay.top + 2 * c + 3)) == anim.value_color(out[0][2][2], m)
    assert f.getpixel((lay.out_plane_x(1) + 3, lay.top + 3)) == anim.value_color(out[1][0][0], m)
    assert f.getpixel((lay.out_plane_x(2) + c // 2, lay.top + c // 2)) == anim.PENDING
    for bad in ("some", -1, 1.5):
        r = api.post("/api/animate?format=gif", json=CONV3D | {"window_slice": {"depth": bad}})
        assert r.status_code == 422 and "depth" in r.text


def test_max_pool3d_padding_reads_minus_infinity(api):
    im = gif(api, MAXPOOL3D)
    win = api.post("/api/run", json=MAXPOOL3D).json()["windows"]
    assert win["output_spatial"] == [2, 2, 2] and win["pad_value"] == "-inf"
    lay, _ = anim.plan_animation(win | {"values": {"input_channels": [0]}})
    assert im.n_frames == 4 + 1 and im.size == (lay.width, lay.height) and lay.planes == 3
    c = lay.cell
    assert c >= 16  # large enough for the padding's text
    first = frame(im, 0)

    def crop(x, y):
        return first.crop((x, y, x + c, y + c))

    def reference(fill, text):
        ref = Image.new("RGB", (c, c), (255, 255, 255))
        anim.draw_cell(anim.ImageDraw.Draw(ref), 0, 0, c, fill, text)
        return ref

    # Plane 0 is frame depth 0, all padding; cell (5, 5) lies outside the window: it says −∞, not 0.
    pad = crop(lay.plane_x(0) + 5 * c, lay.top + 5 * c)
    assert pad.tobytes() == reference(anim.PADDING, "−∞").tobytes()
    assert pad.tobytes() != reference(anim.PADDING, "0").tobytes()
    # Plane 1 is input depth 0: cell (4, 4) is input [0, 3, 3] = −16, in the input's colour.
    assert first.getpixel((lay.plane_x(1) + 4 * c + 2, lay.top + 4 * c + 2)) == anim.value_color(-16.0, 48.0)
    # The window's first cell (frame 0, 0, 0) is padding under the window: orange border.
    assert first.getpixel((lay.plane_x(0) + 2, lay.top + c // 2)) == anim.WINDOW
    # max over the window = −1 (input [0, 0, 0]), as torch says; it fills the first output cell.
    out = api.post("/api/run", json=MAXPOOL3D).json()["output"]["data"][0][0]
    assert out[0][0][0] == -1
    m = max(abs(v) for pl in out for row in pl for v in row)
    assert first.getpixel((lay.out_x + 3, lay.top + 3)) == anim.value_color(-1.0, m)


def test_3d_limits_are_checked_before_rendering(api, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("rendered despite the limit")

    body = {
        "layer": {"type": "Conv3d", "in_channels": 1, "out_channels": 1, "kernel_size": 3},
        "inputs": [{"shape": [1, 1, 14, 14, 14]}],
        "window_slice": {"depth": "all"},
    }
    win = api.post("/api/run", json=body).json()["windows"]
    _, steps = anim.plan_animation(win | {"values": {"input_channels": [0]}}, 5)
    assert len(steps) == 12 * 12  # one slice fits
    monkeypatch.setattr(anim, "render_frames", boom)
    monkeypatch.setattr(anim, "execute", boom)
    r = api.post("/api/animate?format=gif", json=body)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "1729 frames" in r.json()["detail"]
    assert "window_slice.depth" in r.json()["detail"]


@pytest.mark.parametrize("fmt, magic", [("webm", b"\x1a\x45\xdf\xa3"), ("mp4", b"ftyp")])
def test_3d_video_formats(api, fmt, magic):
    r = api.post(f"/api/animate?format={fmt}", json=MAXPOOL3D | {"window_slice": {"depth": "all"}})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"video/{fmt}" and magic in r.content[:16]


def test_the_frame_limits_follow_each_format_encode_cost(api, monkeypatch):
    """Conv3d on 8³ sweeping every depth slice: 513 frames of 1256×190 (122 Mpx). A GIF of it took over
    the 10 s deadline; it is refused before anything runs, naming the format, while WebM (the fastest
    encoder) takes it."""
    body = {
        "layer": {"type": "Conv3d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 1},
        "inputs": [{"shape": [1, 1, 8, 8, 8]}],
        "window_slice": {"depth": "all"},
    }
    win = api.post("/api/run", json=body).json()["windows"]
    lay, steps = anim.plan_animation(win | {"values": {"input_channels": [0]}}, "all", "webm")
    pixels = (len(steps) + 1) * lay.width * lay.height
    assert anim.MAX_TOTAL_PIXELS["gif"] < pixels <= anim.MAX_TOTAL_PIXELS["webm"]
    r = api.post("/api/animate?format=gif", json=body)
    assert r.status_code == 413 and "as GIF within its deadline" in r.json()["detail"]
    r = api.post("/api/animate?format=webm", json=body)
    assert r.status_code == 200 and r.content[:4] == b"\x1a\x45\xdf\xa3"
