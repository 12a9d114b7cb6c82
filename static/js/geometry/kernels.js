// Kernels set by hand and 2-D planes as pixels: pure functions, no DOM.
//
// A preset is a kh × kw grid of numbers; `convParameters` spreads it over a conv weight of shape
// (C_out, C_in / groups, kh, kw) — every (output, input) channel pair gets the same grid — and
// zeroes the bias, for the request's top-level "parameters" field. "random" is no grid at all: the
// layer keeps its own seeded initialisation (torch's, drawn by the server).

const FIXED_3x3 = {
  sobel_x: [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
  sobel_y: [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
  laplacian: [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
  sharpen: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
};

export const KERNEL_PRESETS = [
  { id: "random", label: "random (seed)", note: "the layer's own seeded initialisation" },
  { id: "identity", label: "identity" },
  { id: "box", label: "box blur" },
  { id: "gaussian", label: "Gaussian" },
  { id: "sobel_x", label: "Sobel x", only3: true },
  { id: "sobel_y", label: "Sobel y", only3: true },
  { id: "laplacian", label: "Laplacian", only3: true },
  { id: "sharpen", label: "sharpen", only3: true },
];

function gauss1d(k) {
  // OpenCV's default sigma for a k-tap kernel (getGaussianKernel with sigma <= 0)
  const sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8;
  const c = (k - 1) / 2;
  return Array.from({ length: k }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)));
}

// The preset as a kh × kw grid, or null where it is not defined for that size (Sobel is 3 × 3).
export function presetGrid(id, kh, kw) {
  if (FIXED_3x3[id]) return kh === 3 && kw === 3 ? FIXED_3x3[id].map((r) => r.slice()) : null;
  if (id === "identity") {
    const g = Array.from({ length: kh }, () => new Array(kw).fill(0));
    g[Math.floor((kh - 1) / 2)][Math.floor((kw - 1) / 2)] = 1;
    return g;
  }
  if (id === "box") return Array.from({ length: kh }, () => new Array(kw).fill(1 / (kh * kw)));
  if (id === "gaussian") {
    const a = gauss1d(kh);
    const b = gauss1d(kw);
    const g = a.map((x) => b.map((y) => x * y));
    const sum = g.flat().reduce((s, v) => s + v, 0);
    return g.map((r) => r.map((v) => v / sum));
  }
  return null;
}

// The "parameters" entries that put `grid` into every kernel slice of a weight (C_out, C_in/g, kh, kw).
export function convParameters(grid, weightShape, hasBias) {
  const [cout, cin] = weightShape;
  const weight = Array.from({ length: cout }, () => Array.from({ length: cin }, () => grid.map((r) => r.slice())));
  const out = { weight };
  if (hasBias) out.bias = new Array(cout).fill(0);
  return out;
}

// A 2-D plane's value range and each value's colour: "grey" maps min..max to black..white;
// "diverging" maps −m..0..m to blue..white..red with m = max |value| (zero is always white).
export function planeRange(plane) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of plane) for (const v of row) if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === Infinity) return { lo: 0, hi: 0 };
  return { lo, hi };
}

export function planeRgba(plane, cmap, { lo, hi } = planeRange(plane)) {
  const h = plane.length;
  const w = h ? plane[0].length : 0;
  const out = new Uint8ClampedArray(w * h * 4);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      const v = plane[r][c];
      const k = (r * w + c) * 4;
      out[k + 3] = 255;
      if (!Number.isFinite(v)) { out[k] = 255; out[k + 1] = 0; out[k + 2] = 255; continue; } // magenta: inf/nan
      if (cmap === "diverging") {
        const t = Math.min(1, Math.abs(v) / m);
        // positive: white → red (178, 24, 43); negative: white → blue (33, 102, 172)
        const [R, G, B] = v >= 0 ? [178, 24, 43] : [33, 102, 172];
        out[k] = Math.round(R + (255 - R) * (1 - t));
        out[k + 1] = Math.round(G + (255 - G) * (1 - t));
        out[k + 2] = Math.round(B + (255 - B) * (1 - t));
      } else {
        const g = greyLevel(v, lo, hi);
        out[k] = g;
        out[k + 1] = g;
        out[k + 2] = g;
      }
    }
  return out;
}

// The grey level (0…255) of a value on a plane ranging lo…hi (a flat plane is mid-grey).
export function greyLevel(v, lo, hi) {
  return hi > lo ? Math.round((255 * (v - lo)) / (hi - lo)) : 128;
}

// The (H, W) planes of sample 0 of an (N, C, H, W) tensor's nested data, one per channel.
export function channelPlanes(data) {
  if (!Array.isArray(data?.[0]?.[0]?.[0])) return [];
  return data[0];
}

// An input shape the image tools apply to: (N, C, H, W) with one grey or three colour channels.
export function imageShaped(shape) {
  return Array.isArray(shape) && shape.length === 4 && (shape[1] === 1 || shape[1] === 3);
}
