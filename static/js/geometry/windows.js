// Layout for the sliding-window animation. Every position comes from the API's `windows` field
// (computed by torch itself); this module only arranges those positions on a grid of cells.

import { prod, unravel, ravel } from "../util/format.js";

// Each frame cell is an input cell, padding, or (transposed conv) a zero inserted between inputs.
export function frameCellRole(coord, win) {
  const { input_origin: origin, input_step: step } = win.frame;
  let inside = true;
  let onGrid = true;
  for (let d = 0; d < coord.length; d++) {
    const rel = coord[d] - origin[d];
    const span = (win.input_spatial[d] - 1) * step[d];
    if (rel < 0 || rel > span) inside = false;
    else if (rel % step[d] !== 0) onGrid = false;
  }
  if (!inside) return "padding";
  return onGrid ? "input" : "zero";
}

export function frameToInput(coord, win) {
  const { input_origin: origin, input_step: step } = win.frame;
  return coord.map((c, d) => (c - origin[d]) / step[d]);
}

export function stepCount(win, depth = null) {
  const out = win.output_spatial;
  if (win.spatial_dims === 3 && depth !== null) return out[1] * out[2];
  return prod(out);
}

// Output spatial coordinate shown at animation step `s` (for 3-D: within output depth `depth`).
export function stepToOutput(win, s, depth = 0) {
  if (win.spatial_dims === 3) return [depth, ...unravel(s, win.output_spatial.slice(1))];
  return unravel(s, win.output_spatial);
}

export function outputToStep(win, outCoord) {
  if (win.spatial_dims === 3) return ravel(outCoord.slice(1), win.output_spatial.slice(1));
  return ravel(outCoord, win.output_spatial);
}

// The API describes the windows compactly: output element o's window slot k (row-major over the
// kernel's shape) sits at frame coordinate o·window_step + unravel(k)·dilation, and frame coordinate
// f reads input coordinate frame_map[d][f] along each dimension d (−1: padding or an inserted zero,
// −2: past the padded input). These expand it, one window at a time.
export function windowAt(win, outCoord) {
  if (!win.window_step || outCoord.length !== win.window_step.length) return [];
  const K = prod(win.kernel);
  const cells = [];
  for (let k = 0; k < K; k++) {
    const kidx = unravel(k, win.kernel);
    cells.push(kidx.map((kd, d) => outCoord[d] * win.window_step[d] + kd * win.dilation[d]));
  }
  return cells;
}

// Input coordinate under frame cell `coord` (padding copies included), or null for padding / zeros.
export function frameSource(win, coord) {
  const src = coord.map((c, d) => win.frame_map?.[d]?.[c] ?? -1);
  return src.some((v) => v < 0) ? null : src;
}

// Hover, the other way round: the output elements whose window covers frame cell `frameCoord`.
// Along each dimension d, output o reads frame cell f when f = o·window_step + k·dilation for a
// kernel index 0 ≤ k < kernel; the outputs are every combination of those per-dimension sets.
export function outputsReading(win, frameCoord) {
  if (!win.window_step || frameCoord.length !== win.window_step.length) return [];
  const per = frameCoord.map((f, d) => {
    const os = [];
    for (let k = 0; k < win.kernel[d]; k++) {
      const rest = f - k * win.dilation[d];
      if (rest < 0 || rest % win.window_step[d]) continue;
      const o = rest / win.window_step[d];
      if (o < win.output_spatial[d]) os.push(o);
    }
    return [...new Set(os)].sort((a, b) => a - b);
  });
  return product(per);
}

// Every frame cell that holds input element `inputCoord`: the cell itself, and the padding cells
// that copy it (reflect / replicate / circular), read from the frame map.
export function framesOf(win, inputCoord) {
  if (!win.frame_map || inputCoord.length !== win.frame_map.length) return [];
  return product(win.frame_map.map((m, d) => m.flatMap((v, f) => (v === inputCoord[d] ? [f] : []))));
}

// The output elements input element `inputCoord` feeds, through any frame cell that holds it.
export function outputsFedBy(win, inputCoord) {
  const seen = new Map();
  for (const f of framesOf(win, inputCoord)) for (const o of outputsReading(win, f)) seen.set(o.join(","), o);
  return [...seen.values()].sort((a, b) => ravel(a, win.output_spatial) - ravel(b, win.output_spatial));
}

function product(lists) {
  return lists.reduce((acc, xs) => acc.flatMap((pre) => xs.map((x) => [...pre, x])), [[]]);
}

export function windowSrc(win, outCoord) {
  return windowAt(win, outCoord).map((c) => frameSource(win, c));
}

// Padding cells that repeat an input element (reflect / replicate / circular): "f0,f1" → input coordinate.
export function frameCopies(win) {
  const copies = new Map();
  if (win.pad_value !== "copy" || !win.frame_map) return copies;
  const readable = win.frame_map.map((m) => m.flatMap((v, f) => (v >= 0 ? [f] : [])));
  const walk = (prefix) => {
    const d = prefix.length;
    if (d === readable.length) {
      if (frameCellRole(prefix, win) === "padding") copies.set(prefix.join(","), frameSource(win, prefix));
      return;
    }
    for (const f of readable[d]) walk([...prefix, f]);
  };
  walk([]);
  return copies;
}

// Input depth planes (3-D) that output depth slice `depth` reads, in order.
export function depthPlanes(win, depth) {
  const zs = [];
  for (let k = 0; k < win.kernel[0]; k++) zs.push(depth * win.window_step[0] + k * win.dilation[0]);
  return [...new Set(zs)].sort((a, b) => a - b);
}

// Cells at least this wide carry their values (and the page aims for them at 1280×800).
export const READABLE_CELL = 24;

// Grid geometry. 1-D frames are a single row; 2-D frames rows × columns; 3-D frames show the
// depth planes the chosen output slice reads, side by side.
//
// Several input channels (`bands`, every channel that feeds the output channel):
// - 1-D: stacked one under another, each with its kernel slice beside it, so the picture holds
//   every term of the sum (a row per channel costs little height).
// - 2-D and 3-D: one channel at a time (`band`), big, with a strip of small thumbnails of every
//   channel above it (`strip`) to switch channels and see the window on each. Side by side does
//   not fit: even Conv2d's default (3 channels of 6×6, kernel 3, output 4×4) gives 20 px cells in
//   a 746 px panel, and LeNet's third layer (6 channels of 14×14) 6 px; one at a time they get
//   52 px and 27 px, wide enough for their values.
// In 2-D and 3-D the output sits right of the frame with the kernel slice under it, so the frame
// and the output share the width; a panel too narrow for that (a phone) puts the output and the
// kernel under the frame instead, when that gives bigger cells.
export function frameLayout(win, {
  width, maxCell = 56, minCell = 6, depth = 0, bands = 1, band = 0, kernel = false, maxHeight = 240, frameHeight = 240,
}) {
  const sd = win.spatial_dims;
  const fs = win.frame.shape;
  const os = win.output_spatial;
  let planes = [null];
  if (sd === 3) {
    planes = depthPlanes(win, depth);
    if (!planes.length) planes = [0];
  }
  const rows = sd === 1 ? 1 : fs[sd - 2];
  const cols = fs[sd - 1];
  const outRows = sd === 1 ? 1 : os[sd - 2];
  const outCols = os[sd - 1];
  const kShape = kernel && sd <= 2 ? (sd === 1 ? [1, win.kernel[0]] : win.kernel) : null;
  const kRows = kShape ? kShape[0] : 0;
  const kCols = kShape ? kShape[1] : 0;
  const gap = 28;
  const planeGap = 14;
  const kGap = kShape ? 22 : 0;
  const arrowW = 40;
  const nPlanes = planes.length;
  const useStrip = bands > 1 && sd >= 2;
  const inset = sd >= 2 ? 8 : 0;
  const left = gap / 2 + inset;
  const shown = useStrip ? [Math.max(0, Math.min(bands - 1, band))] : Array.from({ length: bands }, (_, b) => b);
  const bandGap = shown.length > 1 ? 24 : 0;
  const planesW = (c) => nPlanes * cols * c + (nPlanes - 1) * planeGap;
  let cell;
  let stacked = false;
  let kernelBeside = true; // stacked layout: the kernel right of the output (else under it)
  if (sd === 1) {
    // Frame, kernel and output in one row; stacked channels share a height budget so the output
    // stays in view beside them.
    cell = Math.floor((width - kGap - arrowW - gap * 2) / Math.max(cols + kCols + outCols, 1));
    if (shown.length > 1) cell = Math.min(cell, Math.floor((maxHeight - (shown.length - 1) * bandGap) / shown.length));
    cell = Math.max(shown.length > 1 ? Math.min(minCell, 4) : minCell, Math.min(maxCell, cell));
  } else {
    // Frame planes, kernel slice and output share one cell size so their proportions compare.
    // (`inset`: room left of the frame for two-digit row indices.)
    const beside = Math.floor((width - inset - (nPlanes - 1) * planeGap - arrowW - gap * 2) / Math.max(nPlanes * cols + Math.max(kCols, outCols), 1));
    // Under the frame: the output, with the kernel beside it when that costs no cell size, else under it.
    const under = Math.min(
      Math.floor((width - inset - (nPlanes - 1) * planeGap - gap) / Math.max(nPlanes * cols, 1)),
      Math.floor((width - inset - gap) / Math.max(outCols, 1)),
    );
    kernelBeside = Math.floor((width - inset - kGap - gap) / Math.max(outCols + kCols, 1)) >= under;
    cell = beside;
    if ((beside < READABLE_CELL || beside < minCell * 1.6) && under > beside) {
      stacked = true;
      cell = under;
    }
    // A frame taller than `frameHeight` pushes the output out of a laptop's screen: cells shrink
    // to fit it, but not below READABLE_CELL (the values come first).
    if (!stacked) cell = Math.min(cell, Math.max(READABLE_CELL, Math.floor(frameHeight / Math.max(rows, 1))));
    cell = Math.max(minCell, Math.min(maxCell, cell));
  }
  // The channel strip (one thumbnail per input channel) goes above the frame when the output is
  // under it (a phone), else in the right-hand column under the output and the kernel, so the frame
  // starts high enough for the output beside it to stay on a laptop's screen.
  let top = 30;
  let strip = null;
  const stripAt = (x0, y0, avail) => {
    const stripGap = 12;
    const tc = Math.max(2, Math.min(6, Math.floor((avail - (bands - 1) * stripGap) / (bands * (nPlanes * cols + (nPlanes - 1))))));
    const tw = nPlanes * cols * tc + (nPlanes - 1) * 2;
    const th = rows * tc;
    const labelW = 44; // "in ch 12" at 11 px
    const slot = Math.max(tw, labelW) + stripGap;
    const perRow = Math.max(1, Math.floor((avail + stripGap) / slot));
    const rowH = 16 + th + 10;
    const thumbs = Array.from({ length: bands }, (_, b) => {
      const x = x0 + (b % perRow) * slot;
      const y = y0 + 16 + Math.floor(b / perRow) * rowH + 16;
      return { band: b, x, y, w: tw, h: th, cell: tc, rows, cols, planes: planes.map((z, i) => ({ z, x: x + i * (cols * tc + 2) })) };
    });
    // A title line (y0 … y0 + 16) above the thumbnails' rows.
    return { thumbs, cell: tc, height: 16 + Math.ceil(bands / perRow) * rowH, y: y0, x: x0 };
  };
  if (useStrip && stacked) {
    strip = stripAt(gap / 2, 8, width - gap);
    top = 8 + strip.height + 30;
  }
  const frameW = planesW(cell);
  const frameH = rows * cell;
  const frames = [];
  const kernels = [];
  let output;
  if (sd === 1) {
    const bandH = Math.max(frameH, kRows * cell) + bandGap;
    shown.forEach((b, i) => {
      const y = top + i * bandH;
      frames.push({ band: b, z: null, x: gap / 2, y, rows, cols });
      if (kShape) kernels.push({ band: b, x: gap / 2 + frameW + kGap, y, rows: kRows, cols: kCols });
    });
    output = { x: gap / 2 + frameW + kGap + kCols * cell + arrowW + gap, y: top, rows: outRows, cols: outCols };
  } else {
    const b = shown[0];
    planes.forEach((z, i) => frames.push({ band: b, z, x: left + i * (cols * cell + planeGap), y: top, rows, cols }));
    if (stacked) {
      output = { x: left, y: top + frameH + 48, rows: outRows, cols: outCols };
      if (kShape && kernelBeside) kernels.push({ band: b, x: output.x + outCols * cell + kGap, y: output.y, rows: kRows, cols: kCols });
      else if (kShape) kernels.push({ band: b, x: output.x, y: output.y + outRows * cell + 40, rows: kRows, cols: kCols });
    } else {
      output = { x: left + frameW + arrowW + gap, y: top, rows: outRows, cols: outCols };
      if (kShape) kernels.push({ band: b, x: output.x, y: output.y + outRows * cell + 40, rows: kRows, cols: kCols });
      if (useStrip) {
        const below = kernels.length ? kernels[0].y + kRows * cell : output.y + outRows * cell;
        strip = stripAt(output.x, below + 24, Math.max(120, width - output.x - gap / 2));
      }
    }
  }
  const right = Math.max(...frames.map((f) => f.x + f.cols * cell), output.x + outCols * cell,
    ...kernels.map((k) => k.x + k.cols * cell), strip ? Math.max(...strip.thumbs.map((t) => t.x + Math.max(t.w, 44))) : 0);
  const bottom = Math.max(...frames.map((f) => f.y + f.rows * cell), output.y + outRows * cell, ...kernels.map((k) => k.y + k.rows * cell),
    strip ? strip.y + strip.height - 34 : 0);
  return {
    cell, frames, kernels, nPlanes, output, width: right + gap / 2, height: bottom + 34, stacked, rows, cols, sd,
    bands, shown, strip,
  };
}

// Frame coordinate → (plane index, row, col) within frameLayout's planes; plane −1 when the
// band (input channel) or the depth plane is not drawn.
export function placeFrameCoord(coord, layout, band = 0) {
  const at = (z) => layout.frames.findIndex((f) => f.band === band && (z === null || f.z === z));
  if (layout.sd === 1) return { plane: at(null), r: 0, c: coord[0] };
  if (layout.sd === 2) return { plane: at(null), r: coord[0], c: coord[1] };
  return { plane: at(coord[0]), r: coord[1], c: coord[2] };
}

// Thumbnail of the channel strip: the frame coordinate's cell, in the strip's drawing units, or null.
export function placeThumbCoord(coord, layout, band) {
  const t = layout.strip?.thumbs[band];
  if (!t) return null;
  const sd = layout.sd;
  const plane = sd === 3 ? t.planes.find((p) => p.z === coord[0]) : t.planes[0];
  if (!plane) return null;
  const r = sd === 1 ? 0 : coord[sd - 2];
  const c = coord[sd - 1];
  return { x: plane.x + c * t.cell, y: t.y + r * t.cell, w: t.cell, h: t.cell };
}

// Kernel element (its index in the weight, e.g. [kh, kw]) → row and column of the kernel grid.
export function placeKernelIndex(kidx, layout) {
  return layout.sd === 1 ? { r: 0, c: kidx[0] } : { r: kidx[0], c: kidx[1] };
}

// Fast mode: one step per output row (the window sweeps a row at a time); the last step is the last cell.
export function sweepStride(win, stepTotal, fast) {
  if (!fast) return 1;
  const cols = win.output_spatial[win.spatial_dims - 1];
  return stepTotal > cols ? cols : Math.max(1, Math.ceil(stepTotal / 8));
}

// Relative luminance of "#rrggbb" or "rgb(r, g, b)": dark fills get white text.
export function textOn(fill) {
  let rgb = null;
  const hex = /^#([0-9a-f]{6})$/i.exec(fill || "");
  if (hex) rgb = [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16));
  const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(fill || "");
  if (m) rgb = m.slice(1, 4).map(Number);
  if (!rgb) return "#0f172a";
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  // contrast against white vs against near-black (#0f172a, luminance ≈ 0.0089)
  return (1.05 / (lum + 0.05)) >= ((lum + 0.05) / 0.0589) ? "#ffffff" : "#0f172a";
}

// Font size that fits `text` in a cell of `cell` px (monospace-ish digits ≈ 0.6 em wide).
export function fitFont(text, cell, max = 11) {
  const n = Math.max(1, String(text).length);
  return Math.max(6, Math.min(max, Math.floor(((cell - 4) / (n * 0.6)) * 10) / 10));
}

export function placeOutputCoord(coord, layout) {
  if (layout.sd === 1) return { r: 0, c: coord[0] };
  if (layout.sd === 2) return { r: coord[0], c: coord[1] };
  return { r: coord[1], c: coord[2] };
}

// The frame cells of one plane with their roles; 3-D planes pass their depth `z`.
export function frameCells(win, plane) {
  const sd = win.spatial_dims;
  const fs = win.frame.shape;
  const rows = sd === 1 ? 1 : fs[sd - 2];
  const cols = fs[sd - 1];
  const cells = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const coord = sd === 1 ? [c] : sd === 2 ? [r, c] : [plane.z, r, c];
      cells.push({ r, c, coord, role: frameCellRole(coord, win) });
    }
  return cells;
}

// The channel map as a bipartite layout: input channels left, output channels right.
export function channelLayout(channelMap, cIn, { width = 170, maxRow = 18, minRow = 6, maxChannels = 64 } = {}) {
  const cOut = channelMap.length;
  if (cIn > maxChannels || cOut > maxChannels) return null;
  const n = Math.max(cIn, cOut, 1);
  const row = Math.max(minRow, Math.min(maxRow, Math.floor(260 / n)));
  const top = 26;
  const xIn = 40;
  const xOut = width - 40;
  const yOf = (i, count) => top + (i + 0.5) * row + ((n - count) * row) / 2;
  const ins = Array.from({ length: cIn }, (_, i) => ({ i, x: xIn, y: yOf(i, cIn) }));
  const outs = Array.from({ length: cOut }, (_, o) => ({ o, x: xOut, y: yOf(o, cOut) }));
  const links = [];
  channelMap.forEach((srcs, o) => srcs.forEach((i) => links.push({ i, o })));
  return { ins, outs, links, row, width, height: top + n * row + 12 };
}

// Which group an output channel belongs to, from the channel map (contiguous blocks in torch).
export function groupOf(channelMap, o, groups) {
  if (!groups || groups <= 1) return 0;
  return Math.floor(o / Math.max(1, channelMap.length / groups));
}
