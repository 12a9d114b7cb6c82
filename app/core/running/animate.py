"""The sliding window as an animation file (GIF, WebM, MP4), ready for slides.

Same body as ``POST /api/run``. One frame per output position of the drawn plane (the sample and
output channel of ``window_slice``, default 0/0; for 3-D windows the output depth slice
``window_slice.depth``, default 0, or every slice in turn with ``"all"``), plus a held last frame.
Each frame shows every input channel that feeds the output channel (padded, with what the padding
reads: −∞ for max pooling, 0, × for excluded, or the copied value), the kernel window, and the
output filling in, in the page's colours and labels. A 3-D frame shows, as the page does, the input
depth planes the output depth slice reads, side by side.

Frames are drawn with Pillow; video is encoded by imageio with the ffmpeg binary that ships inside
the imageio-ffmpeg wheel. Every size and frame limit is checked before anything is rendered.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.core.errors import InvalidRequest, TooLarge
from app.core.explaining.windows import frame_copies, window_at, window_map, window_values
from app.core.running.execute import execute
from app.core.running.memory import reserve_more
from app.core.running.plan import plan_request
from app.core.schema import RunRequest, parse

MEDIA_TYPES = {"gif": "image/gif", "webm": "video/webm", "mp4": "video/mp4"}
#: most frames one animation may have (output positions of the drawn plane, plus the held last frame)
MAX_FRAMES = 1200
#: largest frame, in pixels
MAX_FRAME_PIXELS = 1600 * 1200
#: all frames together, in pixels, per format: what the default 10 s deadline can draw and encode, with
#: room for the run. Measured on the 2-CPU development machine while other work ran on it: drawing about
#: 10 ns a pixel; encoding a GIF 55 ns (one palette, then Pillow's LZW: 3.7 s for Conv2d with 3 channels
#: on 12×12, 101 frames of 693×960, which took 14.7 s with Pillow's adaptive palettes), WebM 31 ns (VP9
#: realtime; 54 s at its default speed), MP4 40 ns (x264 veryfast; 7.8 s at its default preset for the
#: same frames). At each limit drawing and encoding take about 5 s.
MAX_TOTAL_PIXELS = {"gif": 80_000_000, "webm": 160_000_000, "mp4": 140_000_000}
#: widest frame; cells shrink to fit
MAX_WIDTH = 1280
STEP_MS = 650
HOLD_MS = 2000

# The page's colours (static/js/geometry/palette.js, static/css/app.css).
INPUT = (219, 234, 254)
PADDING = (243, 244, 246)
HATCH = (203, 213, 225)
ZERO = (254, 243, 199)
PENDING = (255, 255, 255)
WINDOW = (217, 119, 6)
WINDOW_FILL = (245, 158, 11)
TEXT = (15, 23, 42)
DONE = (22, 163, 74)
MUTED = (71, 85, 105)
GRID = (203, 213, 225)
# d3.interpolateRdBu at 11 stops (ColorBrewer RdBu), reversed so negative is blue as on the page.
_RDBU = [
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
]


def value_color(v: float, m: float) -> tuple[int, int, int]:
    """Diverging colour centred on 0: blue below, red above (as valueColor in draw/common.js)."""
    if math.isnan(v):
        return (168, 85, 247)
    if math.isinf(v):
        return (127, 29, 29) if v > 0 else (30, 58, 138)
    t = 0.5 + 0.5 * max(-1.0, min(1.0, v / (m or 1.0)))
    x = t * (len(_RDBU) - 1)
    i = min(int(x), len(_RDBU) - 2)
    f = x - i
    a, b = _RDBU[i], _RDBU[i + 1]
    return tuple(round(a[j] + (b[j] - a[j]) * f) for j in range(3))  # type: ignore[return-value]


def text_on(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """White or near-black text, whichever contrasts more with the cell."""

    def ch(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * ch(rgb[0]) + 0.7152 * ch(rgb[1]) + 0.0722 * ch(rgb[2])
    return (255, 255, 255) if 1.05 / (lum + 0.05) >= (lum + 0.05) / 0.0589 else TEXT


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _fit(text: str, c: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font small enough for ``text`` to fit inside a cell of ``c`` pixels."""
    return _font(max(7, min(12, int((c - 4) / (0.62 * max(1, len(text)))))))


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    s = (
        f"{v:.2g}"
        if abs(v) < 1e-3 or abs(v) >= 1e3
        else f"{v:.2g}"
        if abs(v) < 0.1
        else f"{v:.2f}".rstrip("0").rstrip(".")
    )
    return s.replace("-", "−")


@dataclass
class Layout:
    cell: int
    rows: int
    cols: int
    out_rows: int
    out_cols: int
    bands: int
    band_h: int
    frame_x: int
    kernel_x: int
    k_rows: int
    k_cols: int
    out_x: int
    top: int
    width: int
    height: int
    #: input depth planes per band, side by side (3-D: the planes one output depth slice reads)
    planes: int = 1
    #: output depth slices drawn side by side (3-D sweeping every slice), else 1
    out_planes: int = 1
    plane_gap: int = 0

    def plane_x(self, i: int) -> int:
        """Left edge of input plane ``i`` of a band."""
        return self.frame_x + i * (self.cols * self.cell + self.plane_gap)

    def out_plane_x(self, j: int) -> int:
        """Left edge of output depth slice ``j`` (its place among the slices drawn)."""
        return self.out_x + j * (self.out_cols * self.cell + self.plane_gap)


def _layout(win: dict[str, Any], bands: int, kernel: bool = False, out_planes: int = 1) -> Layout:
    d = win["spatial_dims"]
    k_rows, k_cols = ((1, win["kernel"][0]) if d == 1 else (win["kernel"][-2], win["kernel"][-1])) if kernel else (0, 0)
    k_gap = 22 if kernel else 0
    fs = win["frame"]["shape"]
    os_ = win["output_spatial"]
    rows, cols = (1, fs[0]) if d == 1 else (fs[-2], fs[-1])
    out_rows, out_cols = (1, os_[0]) if d == 1 else (os_[-2], os_[-1])
    # 3-D: one plane per kernel depth element (o·s + k·dilation are distinct for every k)
    planes = win["kernel"][0] if d == 3 else 1
    out_planes = out_planes if d == 3 else 1
    plane_gap = 14 if d == 3 else 0
    gap, arrow, top, band_gap = 24, 48, 44, 26 if bands > 1 else 0
    fixed = 2 * gap + arrow + k_gap + (planes - 1 + out_planes - 1) * plane_gap
    cell = (MAX_WIDTH - fixed) // max(planes * cols + k_cols + out_planes * out_cols, 1)
    cell = min(36, cell, max(4, (900 - (bands - 1) * band_gap) // max(bands * rows, 1)))
    cell = max(4, cell)
    band_h = max(rows, k_rows) * cell + band_gap
    frame_x = gap
    kernel_x = frame_x + planes * cols * cell + (planes - 1) * plane_gap + k_gap
    out_x = kernel_x + k_cols * cell + arrow
    width = out_x + out_planes * out_cols * cell + (out_planes - 1) * plane_gap + gap
    height = top + max(bands * band_h - band_gap, out_rows * cell) + 36
    return Layout(
        cell,
        rows,
        cols,
        out_rows,
        out_cols,
        bands,
        band_h,
        frame_x,
        kernel_x,
        k_rows,
        k_cols,
        out_x,
        top,
        width,
        height,
        planes,
        out_planes,
        plane_gap,
    )


def output_depths(win: dict[str, Any], depth: int | str = 0) -> list[int]:
    """The output depth slices a 3-D animation draws: ``depth`` clamped to the output, or every one for ``"all"``."""
    if win["spatial_dims"] != 3:
        return []
    d_out = win["output_spatial"][0]
    if depth == "all":
        return list(range(d_out))
    return [min(max(int(depth), 0), d_out - 1)]


def _steps(win: dict[str, Any], depth: int | str = 0) -> list[tuple[int, ...]]:
    """Output positions in the order the window visits them (3-D: the chosen output depth slices)."""
    os_ = win["output_spatial"]
    if win["spatial_dims"] == 3:
        return [(z, r, c) for z in output_depths(win, depth) for r in range(os_[1]) for c in range(os_[2])]
    return [tuple(int(v) for v in np.unravel_index(i, os_)) for i in range(math.prod(os_))]


def depth_planes(win: dict[str, Any], od: int) -> list[int]:
    """Frame depths (planes) the window reads for output depth slice ``od``, in order."""
    st = 1 if win["kind"] == "transposed" else win["stride"][0]
    return sorted({od * st + k * win["dilation"][0] for k in range(win["kernel"][0])})


def plan_animation(win: dict[str, Any], depth: int | str = 0, fmt: str = "gif") -> tuple[Layout, list[tuple[int, ...]]]:
    """Layout and steps, refusing (413) what is too large before anything is drawn."""
    values = win.get("values") or {}
    bands = max(1, len(values.get("input_channels") or [0]))
    n_out = len(output_depths(win, depth)) or 1
    lay = _layout(
        win, bands, kernel=win["kind"] in ("conv", "transposed") and win["spatial_dims"] <= 2, out_planes=n_out
    )
    steps = _steps(win, depth)
    frames = len(steps) + 1
    if frames > MAX_FRAMES:
        raise TooLarge(
            f"the animation would have {frames} frames (one per output position); the limit is {MAX_FRAMES}. "
            + (
                "Animate one output depth slice (window_slice.depth), use a smaller input or a larger stride."
                if depth == "all" and win["spatial_dims"] == 3
                else "Use a smaller input or a larger stride."
            ),
            field="inputs",
        )
    if lay.width * lay.height > MAX_FRAME_PIXELS:
        raise TooLarge(f"a frame would be {lay.width}×{lay.height} pixels; the limit is {MAX_FRAME_PIXELS} pixels")
    limit = MAX_TOTAL_PIXELS.get(fmt, min(MAX_TOTAL_PIXELS.values()))
    if frames * lay.width * lay.height > limit:
        raise TooLarge(
            f"{frames} frames of {lay.width}×{lay.height} pixels is more than this server encodes as "
            f"{fmt.upper()} within its deadline ({limit} pixels in all). "
            + (
                "Animate one output depth slice (window_slice.depth), use a smaller input or a larger stride."
                if depth == "all" and win["spatial_dims"] == 3
                else "Use a smaller input or a larger stride"
                + ("; WebM allows the most pixels." if fmt != "webm" else ".")
            ),
            field="inputs",
        )
    return lay, steps


def _get(nested: Any, idx: tuple[int, ...]) -> float:
    v = nested
    for i in idx:
        v = v[i]
    return float(v)  # JSON-safe strings "inf", "-inf", "nan" parse as floats too


def _pad_text(win: dict[str, Any]) -> str | None:
    if win["kind"] == "transposed":
        return "0"
    return {"-inf": "−∞", "excluded": "×", "copy": None}.get(win.get("pad_value", "0"), "0")


def draw_cell(dr: ImageDraw.ImageDraw, x: int, y: int, c: int, fill: tuple[int, int, int], text: str | None) -> None:
    """One frame cell as the page draws it: fill, grid line, hatching for padding, its text."""
    dr.rectangle((x, y, x + c - 1, y + c - 1), fill=fill, outline=GRID)
    if fill == PADDING:
        for k in range(-c, c, 6):  # the page's hatching
            dr.line((x + max(0, k), y + max(0, -k), x + min(c, c + k) - 1, y + min(c, c - k) - 1), fill=HATCH)
    if text:
        dr.text(
            (x + c / 2, y + c / 2),
            text,
            fill=text_on(fill) if fill not in (PADDING, ZERO) else MUTED,
            font=_fit(text, c),
            anchor="mm",
        )


def _depth_note(win: dict[str, Any], z: int) -> str:
    """What frame depth ``z`` is, as the page's plane titles say: (d=i), pad, or zeros."""
    o, st = win["frame"]["input_origin"][0], win["frame"]["input_step"][0]
    rel = z - o
    if rel < 0 or rel > (win["input_spatial"][0] - 1) * st:
        return " pad"
    if rel % st:
        return " zeros"
    return f" (d={rel // st})"


def _frame_base(
    win: dict[str, Any], lay: Layout, name_in: str, name_out: str, zs: list[int] | None = None
) -> tuple[Image.Image, dict]:
    """The still part of every frame: input planes with padding, titles and indices.

    ``zs``: for 3-D windows, the frame depths of the planes drawn side by side.
    """
    values = win["values"]
    d = win["spatial_dims"]
    origin = win["frame"]["input_origin"]
    step = win["frame"]["input_step"]
    ins = win["input_spatial"]
    im = Image.new("RGB", (lay.width, lay.height), (255, 255, 255))
    dr = ImageDraw.Draw(im)
    c = lay.cell
    font = _font(max(9, min(12, c // 2 + 2)))
    title_font = _font(13)
    all_in = [abs(v) for plane in values["input"] for v in np.asarray(plane, dtype=float).ravel() if math.isfinite(v)]
    m_in = max(all_in) if all_in else 1.0
    copies = frame_copies(win)
    pad_text = _pad_text(win)
    planes: list[int | None] = list(zs) if d == 3 and zs else [None]
    for b, ch in enumerate(values["input_channels"]):
        y0 = lay.top + b * lay.band_h
        title = "padded input" if any(p[0] or p[1] for p in win["padding"]) else "input"
        if win["kind"] == "transposed":
            title = "stretched input"
        chan = f"in ch {ch}" if win["kind"] != "pool" else f"ch {ch}"
        if d == 3:
            for i, z in enumerate(planes):
                head = f"z={z}{_depth_note(win, z)}" + (f" · {chan}" if i == 0 else "")
                dr.text((lay.plane_x(i), y0 - 16), head, fill=TEXT, font=_font(11))
        else:
            dr.text((lay.frame_x, y0 - 18), f"{title} · {chan}", fill=TEXT, font=title_font)
        plane = values["input"][b]
        for i, z in enumerate(planes):
            px = lay.plane_x(i)
            for r in range(lay.rows):
                for col in range(lay.cols):
                    coord = (col,) if d == 1 else (r, col) if d == 2 else (z, r, col)
                    rel = [coord[j] - origin[j] for j in range(d)]
                    inside = all(0 <= rel[j] <= (ins[j] - 1) * step[j] for j in range(d))
                    on_grid = inside and all(rel[j] % step[j] == 0 for j in range(d))
                    text = None
                    if on_grid:
                        v = _get(plane, tuple(rel[j] // step[j] for j in range(d)))
                        fill = value_color(v, m_in)
                        text = _fmt(v) if c >= 30 else None
                    elif inside:
                        fill, text = ZERO, "0" if c >= 16 else None
                    elif coord in copies:
                        v = _get(plane, copies[coord])
                        fill = value_color(v, m_in)
                        text = _fmt(v) if c >= 30 else None
                    else:
                        fill = PADDING
                        text = pad_text if c >= 16 else None
                    draw_cell(dr, px + col * c, y0 + r * c, c, fill, text)
            if b == lay.bands - 1 and c >= 14:
                d0 = d - 1
                for k in range(ins[d0]):
                    x = px + (origin[d0] + k * step[d0]) * c + c / 2
                    dr.text((x, y0 + lay.rows * c + 8), str(k), fill=MUTED, font=_font(10), anchor="mm")
        kernel = values.get("kernel")
        if lay.k_cols and kernel:
            # the channel's kernel slice, as on the page: w[c_out, c_in - group start, *k]
            ks = np.asarray(kernel[b], dtype=float).reshape(lay.k_rows, lay.k_cols)
            m_w = float(np.abs(np.asarray(kernel, dtype=float)).max()) or 1.0
            wc = ch if win["kind"] == "transposed" else ch - values["input_channels"][0]
            dr.text((lay.kernel_x, y0 - 16), f"w[{values['channel']}, {wc}]", fill=MUTED, font=_font(11))
            for r in range(lay.k_rows):
                for col in range(lay.k_cols):
                    x, y = lay.kernel_x + col * c, y0 + r * c
                    fill = value_color(float(ks[r, col]), m_w)
                    dr.rectangle((x, y, x + c - 1, y + c - 1), fill=fill, outline=WINDOW)
                    if c >= 30:
                        t = _fmt(float(ks[r, col]))
                        dr.text((x + c / 2, y + c / 2), t, fill=text_on(fill), font=_fit(t, c), anchor="mm")
    return im, {"font": font}


def _output_frame(win: dict[str, Any], lay: Layout, im: Image.Image, name_out: str, ods: list[int]) -> None:
    """The output grid (or, 3-D, its depth slices side by side), every cell still pending."""
    dr = ImageDraw.Draw(im)
    c = lay.cell
    ch = win["values"]["channel"]
    for j in range(lay.out_planes):
        x0 = lay.out_plane_x(j)
        if win["spatial_dims"] == 3:
            head = f"{name_out} d={ods[j]}" + (f" · ch {ch}" if j == 0 else "")
            dr.text((x0, lay.top - 16), head, fill=TEXT, font=_font(11))
        else:
            dr.text((x0, lay.top - 18), f"{name_out} · ch {ch}", fill=TEXT, font=_font(13))
        for r in range(lay.out_rows):
            for col in range(lay.out_cols):
                x, y = x0 + col * c, lay.top + r * c
                dr.rectangle((x, y, x + c - 1, y + c - 1), fill=PENDING, outline=GRID)


def render_frames(
    win: dict[str, Any], name_in: str = "input", name_out: str = "output", depth: int | str = 0, fmt: str = "gif"
) -> Iterator[Image.Image]:
    """Every frame of the animation, one at a time (checked against the limits first): an encoder takes
    each as it is drawn, so the frames are never all held at once.

    ``depth`` (3-D only): the output depth slice to animate, or ``"all"`` to sweep every slice; the
    input planes change with the slice, the output slices fill in side by side.
    """
    lay, steps = plan_animation(win, depth, fmt)
    return _frames(win, lay, steps, name_in, name_out, depth)


def _frames(
    win: dict[str, Any], lay: Layout, steps: list[tuple[int, ...]], name_in: str, name_out: str, depth: int | str
) -> Iterator[Image.Image]:
    d = win["spatial_dims"]
    ods = output_depths(win, depth)
    values = win["values"]
    c = lay.cell
    out = values["output"]
    out_flat = [abs(v) for v in np.asarray(out, dtype=float).ravel() if math.isfinite(v)]
    m_out = max(out_flat) if out_flat else 1.0
    filled: Image.Image | None = None
    zs: list[int] = []
    out_box = (lay.out_x - lay.plane_gap, 0, lay.width, lay.height - 24)

    def out_xy(pos: tuple[int, ...]) -> tuple[int, int]:
        if d == 1:
            return lay.out_x + pos[0] * c, lay.top
        if d == 2:
            return lay.out_x + pos[1] * c, lay.top + pos[0] * c
        return lay.out_plane_x(ods.index(pos[0])) + pos[2] * c, lay.top + pos[1] * c

    for n, pos in enumerate([*steps, None]):
        if pos is None:  # the held last frame: the whole output, no window
            yield filled.copy()  # type: ignore[union-attr]
            break
        if filled is None or (d == 3 and depth_planes(win, pos[0]) != zs):
            # a new output depth slice reads other input planes: redraw them, keep the output so far
            zs = depth_planes(win, pos[0]) if d == 3 else []
            base, _extra = _frame_base(win, lay, name_in, name_out, zs)
            if filled is None:
                _output_frame(win, lay, base, name_out, ods)
            else:
                base.paste(filled.crop(out_box), out_box[:2])
            filled = base
        fdraw = ImageDraw.Draw(filled)
        v = _get(out, pos)
        x, y = out_xy(pos)
        fill = value_color(v, m_out)
        fdraw.rectangle((x, y, x + c - 1, y + c - 1), fill=fill, outline=GRID)
        if c >= 30:
            fdraw.text((x + c / 2, y + c / 2), _fmt(v), fill=text_on(fill), font=_fit(_fmt(v), c), anchor="mm")
        frame = filled.copy()
        dr = ImageDraw.Draw(frame, "RGBA")
        cells = window_at(win, pos)
        for b in range(lay.bands):
            y0 = lay.top + b * lay.band_h
            xs, ys = [], []
            for cell_at in cells:
                if d == 3:
                    cx = lay.plane_x(zs.index(cell_at[0])) + cell_at[2] * c
                    cy = y0 + cell_at[1] * c
                else:
                    fr = cell_at[-1:] if d == 1 else cell_at[-2:]
                    cx = lay.frame_x + fr[-1] * c
                    cy = y0 + (0 if d == 1 else fr[0] * c)
                dr.rectangle(
                    (cx + 1, cy + 1, cx + c - 2, cy + c - 2), fill=(*WINDOW_FILL, 107), outline=WINDOW, width=2
                )
                xs.append(cx)
                ys.append(cy)
            if b == 0:
                sx = (min(xs) + max(xs) + c) / 2
                dr.line(
                    (sx, min(ys) - 2, sx, lay.top - 26, x + c / 2, lay.top - 26, x + c / 2, y - 2), fill=WINDOW, width=2
                )
        dr.rectangle((x - 2, y - 2, x + c + 1, y + c + 1), outline=DONE, width=3)
        label = f"step {n + 1} / {len(steps)} · output ({', '.join(str(i) for i in pos)})"
        dr.text((lay.frame_x, lay.height - 14), label, fill=MUTED, font=_font(11), anchor="lm")
        yield frame


#: the page's own colours: always exact in a GIF
UI_COLORS = [(255, 255, 255), INPUT, PADDING, HATCH, ZERO, PENDING, WINDOW, WINDOW_FILL, TEXT, MUTED, GRID, DONE]
#: palette entries kept for exact colours; the rest approximate the first frame (text edges, the window's tint)
EXACT_COLORS = 232


Colors = list[tuple[int, int, int]]


def frame_colors(win: dict[str, Any]) -> tuple[Colors, Colors]:
    """The colours the frames fill cells with, as the drawing computes them: (the page's, every output
    value's and kernel weight's; every input value's)."""
    values = win["values"]

    def colors_of(data: Any) -> Colors:
        if data is None:
            return []
        flat = np.asarray(data, dtype=float).ravel()
        finite = np.abs(flat[np.isfinite(flat)])
        m = float(finite.max()) if finite.size else 1.0
        return [value_color(float(v), m) for v in flat[: 4 * EXACT_COLORS]]

    first = [*UI_COLORS, *colors_of(values.get("output")), *colors_of(values.get("kernel"))]
    return list(dict.fromkeys(first)), list(dict.fromkeys(colors_of(values.get("input"))))


class Indexer:
    """RGB frames to palette indices through a lookup table of every 24-bit colour seen so far: a colour
    of the palette maps to itself exactly, any other to its nearest entry. (Pillow's own conversion to
    a given palette looks colours up at 6 bits a channel, so white could come out 254, 254, 254.) A
    frame costs a few array passes: only colours not seen before are matched, a few per frame."""

    #: the table and its "seen" marks: one byte each per 24-bit colour
    BYTES = 2 * (1 << 24)
    #: per pixel: the frame's RGBX copy and its keys, the previous keys, two index arrays, a mask, and the
    #: palette's choice from the first frame (its colours sorted and counted: about 32 bytes a pixel)
    BYTES_PER_PIXEL = 64

    def __init__(self, palette: list[int]) -> None:
        self.palette = palette
        self.rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
        self.table = np.zeros(1 << 24, dtype=np.uint8)
        self.seen = np.zeros(1 << 24, dtype=bool)
        self.keys: np.ndarray | None = None
        self.index: np.ndarray | None = None

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        fresh = np.unique(keys[~self.seen[keys]])
        if fresh.size:
            rgb = np.stack([fresh & 255, (fresh >> 8) & 255, (fresh >> 16) & 255], axis=1).astype(np.int32)
            distance = ((rgb[:, None, :] - self.rgb[None, :, :]) ** 2).sum(-1)
            self.table[fresh] = distance.argmin(1).astype(np.uint8)
            self.seen[fresh] = True
        return self.table[keys]

    def __call__(self, im: Image.Image) -> Image.Image:
        # 0xBBGGRR per pixel: the RGBX bytes read as little-endian words, X masked off
        keys = np.asarray(im.convert("RGBX")).view("<u4")[..., 0] & 0xFFFFFF
        if self.keys is not None and self.index is not None and keys.shape == self.keys.shape:
            # a frame differs from the one before only where the window moved and a cell filled in
            changed = keys != self.keys
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            index = self.index.copy()
            if rows.size:
                box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                index[box] = self._lookup(keys[box])
        else:
            index = self._lookup(keys)
        self.keys, self.index = keys, index
        out = Image.fromarray(index, mode="P")
        out.putpalette(self.palette)
        return out


def _frequent(im: Image.Image) -> list[tuple[int, int, int]]:
    """The colours of a frame, most frequent first (cells before text edges)."""
    a = np.asarray(im, dtype=np.uint8)
    keys = (a[..., 0].astype(np.uint32) << 16) | (a[..., 1].astype(np.uint32) << 8) | a[..., 2]
    found, counts = np.unique(keys, return_counts=True)
    ordered = found[np.argsort(-counts, kind="stable")][: 4 * EXACT_COLORS]
    return [(int(k >> 16) & 255, int(k >> 8) & 255, int(k) & 255) for k in ordered]


def _palette(first: Image.Image, colors: tuple[Colors, Colors]) -> list[int]:
    """One palette for every frame: the cells' exact colours first, the rest fitted to the first frame
    (text edges, the window's tint). With one palette Pillow compares frames in palette mode and writes
    only what changed; an adaptive palette per frame made it convert every frame pair to RGBA
    (measured 14.7 s against 4.1 s for 101 frames of 693×960)."""
    # the page's colours and the output's and kernel's first, then the first frame's (its input planes),
    # then any other input value's (3-D: planes drawn later)
    cells, inputs = colors
    exact = list(dict.fromkeys([*cells, *_frequent(first), *inputs]))[:EXACT_COLORS]
    fitted = first.quantize(256 - len(exact), method=Image.Quantize.FASTOCTREE).getpalette() or []
    entries = [c for rgb in exact for c in rgb] + fitted[: 3 * (256 - len(exact))]
    return entries + entries[:3] * ((768 - len(entries)) // 3)


#: ffmpeg settings that encode within the deadline (two threads: an encoder's buffers grow with its threads,
#: which ffmpeg otherwise sizes from the machine's cores, not from this server's share of them): VP9 at its realtime speed was 27× faster than at its
#: default (1.4 s against 38 s for 101 frames of 693×960), x264's veryfast preset 3× (2.0 s against 6.4 s)
VIDEO_OPTIONS = {
    "webm": ("libvpx-vp9", ["-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-threads", "2"]),
    "mp4": ("libx264", ["-preset", "veryfast", "-threads", "2"]),
}


def encode(frames: Iterable[Image.Image], fmt: str, count: int, colors: tuple[Colors, Colors] | None = None) -> bytes:
    """The ``count`` frames as ``fmt``, taking each frame as it comes (none is kept in RGB). ``colors``:
    those a GIF must show exactly (:func:`frame_colors`)."""
    frames = iter(frames)
    first = next(frames)
    if fmt == "gif":
        indexed = Indexer(_palette(first, colors or (list(UI_COLORS), [])))

        buf = io.BytesIO()
        durations = [STEP_MS] * (count - 1) + [HOLD_MS]
        indexed(first).save(
            buf,
            format="GIF",
            save_all=True,
            append_images=(indexed(f) for f in frames),
            duration=durations,
            loop=0,
            optimize=False,
            disposal=1,
        )
        return buf.getvalue()
    # yuv420p needs even sizes; pad to a multiple of 16 so ffmpeg never resizes (and imageio never warns)
    w, h = first.size
    W, H = -(-w // 16) * 16, -(-h // 16) * 16

    def padded(f: Image.Image) -> np.ndarray:
        canvas = Image.new("RGB", (W, H), (255, 255, 255))
        canvas.paste(f, (0, 0))
        return np.asarray(canvas)

    codec, options = VIDEO_OPTIONS[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"animation.{fmt}")
        writer = imageio.get_writer(
            path,
            format="FFMPEG",
            mode="I",
            fps=1000 / STEP_MS,
            codec=codec,
            macro_block_size=16,
            pixelformat="yuv420p",
            ffmpeg_log_level="error",
            output_params=options,
        )
        try:
            last = padded(first)
            writer.append_data(last)
            for f in frames:
                last = padded(f)
                writer.append_data(last)
            # hold the last frame as the GIF does (video has one frame rate)
            for _ in range(round(HOLD_MS / STEP_MS) - 1):
                writer.append_data(last)
        finally:
            writer.close()
        with open(path, "rb") as fh:
            return fh.read()


#: ffmpeg's own process: its code and buffers, and the frames its encoder keeps (lookahead, references)
#: (measured: the worker and ffmpeg together peaked at 342–366 MB for the catalog's Conv2d and MaxPool3d)
ENCODER_FIXED_BYTES = 320 * 1024**2
ENCODER_FRAMES_HELD = 96


def animation_bytes(lay: Layout, frames: int, fmt: str) -> int:
    """What drawing and encoding ``frames`` frames allocate, reserved before anything is drawn.

    Drawing holds a few RGB frames at a time (the base, the filled output, the frame, the palette's
    reference). A GIF: Pillow keeps every frame in palette mode (1 byte a pixel) until it writes them,
    and the file (at most about a byte per pixel changed; a quarter of the pixels, twice: the buffer and
    its copy). A video: the padded frame and its array, the file read back, and the ffmpeg process.
    """
    pixels = lay.width * lay.height
    drawing = 6 * 3 * pixels
    if fmt == "gif":  # and the colour table with what it keeps per pixel
        # Pillow holds each frame in palette mode, its copy made while comparing it with the one before,
        # and the delta between them (measured 1.14× two bytes a pixel per frame for the catalog's Conv3d)
        return drawing + Indexer.BYTES + Indexer.BYTES_PER_PIXEL * pixels + 3 * frames * pixels + frames * pixels // 2
    padded = (-(-lay.width // 16) * 16) * (-(-lay.height // 16) * 16)
    encoder = ENCODER_FIXED_BYTES + ENCODER_FRAMES_HELD * padded * 3 // 2
    return drawing + 4 * 3 * padded + frames * padded // 4 + encoder


def animate(registry: Any, body: Any, settings: Any, fmt: str) -> tuple[bytes, str]:
    """The sliding window of the layer in ``body`` (the /api/run body) as ``fmt``: gif, webm or mp4."""
    if fmt not in MEDIA_TYPES:
        raise InvalidRequest(f"format must be one of {', '.join(MEDIA_TYPES)}; got {fmt!r}", field="format")
    req: RunRequest = parse(RunRequest, body)
    if req.path:
        raise InvalidRequest(
            "animations are made of one layer; send the layer itself, not a path in a network", field="path"
        )
    plan = plan_request(registry, req, settings)
    win = window_map(plan, settings)
    if win is None:
        raise InvalidRequest(
            f"{plan.spec.type} has no sliding window to animate; convolutions and pooling do", field="layer.type"
        )
    if win.get("omitted"):
        raise TooLarge(f"the sliding window cannot be drawn: {win['omitted']}", field="inputs")
    depth = req.window_slice.depth if req.window_slice else 0
    # Refuse oversized animations on the plan alone, before running or drawing anything, and reserve
    # what drawing and encoding will take (the plan reserved the run's own memory).
    lay, steps = plan_animation({**win, "values": {"input_channels": list(range(_bands_hint(win)))}}, depth, fmt)
    reserve_more(
        f"drawing and encoding {len(steps) + 1} frames of {lay.width}×{lay.height} as {fmt.upper()}",
        animation_bytes(lay, len(steps) + 1, fmt),
        plan.estimate_bytes,
        settings,
    )
    ex = execute(registry, req, settings)
    outputs = ex.outputs
    win = window_values(win, ex.module, ex.inputs, outputs[0][1] if outputs else None, req.window_slice)
    frames = render_frames(
        win,
        ex.plan.spec.inputs[0].name if ex.plan.spec.inputs else "input",
        outputs[0][0] if outputs else "output",
        depth,
        fmt,
    )
    return encode(frames, fmt, len(steps) + 1, frame_colors(win)), MEDIA_TYPES[fmt]


def _bands_hint(win: dict[str, Any]) -> int:
    """How many input channels one output channel reads (what the frames will stack)."""
    cmap = win.get("channel_map")
    if cmap:
        return min(len(cmap[0]), 16)
    if win.get("in_channels") and win.get("groups"):
        return min(win["in_channels"] // win["groups"], 16)
    return 1
