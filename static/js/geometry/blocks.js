// Oblique 3-D boxes for (N, C, spatial…) tensors and conv kernels. Widths and heights follow the
// spatial extents, depth the channels; one unit for the whole drawing keeps them comparable.

export const DEPTH_DX = 0.62;
export const DEPTH_DY = -0.42;
const CARD_STEP = 7;
const MAX_CARDS = 4;

// Box corners for a front face at (x, y) of size w × h, extruded by depth d (px, oblique).
export function boxFaces(x, y, w, h, d) {
  const dx = d * DEPTH_DX;
  const dy = d * DEPTH_DY;
  return {
    front: [[x, y], [x + w, y], [x + w, y + h], [x, y + h]],
    top: [[x, y], [x + dx, y + dy], [x + w + dx, y + dy], [x + w, y]],
    side: [[x + w, y], [x + w + dx, y + dy], [x + w + dx, y + h + dy], [x + w, y + h]],
    dx,
    dy,
  };
}

// What each box shows, in element units, for a model from dims.blocksModel.
export function blockSpecs(model) {
  const { sd, input, output, weight, kernel, isPool } = model;
  const spec = (t) => {
    const dims = t.dims;
    const b = model.hasBatch ? 1 : 0;
    const batch = model.hasBatch ? dims[0] : null;
    const chan = dims[b];
    const sp = dims.slice(b + 1);
    if (sd === 1) return { cols: sp[0], rows: chan, depth: null, cards: batch };
    if (sd === 2) return { cols: sp[1], rows: sp[0], depth: chan, cards: batch };
    return { cols: sp[2], rows: sp[1], depth: sp[0], cards: chan, note: batch };
  };
  const out = { input: spec(input), output: spec(output), weight: null, window: null };
  if (weight) {
    const d = weight.dims;
    if (sd === 1) out.weight = { cols: d[2], rows: d[1], depth: null, cards: d[0] };
    else if (sd === 2) out.weight = { cols: d[3], rows: d[2], depth: d[1], cards: d[0] };
    else out.weight = { cols: d[4], rows: d[3], depth: d[2], cards: d[0], note: d[1] };
  } else if (isPool && kernel) {
    const k = kernel;
    const L = model.letters;
    const kd = (i) => ({ label: `k_${L[i]}`, size: k[i], key: L[i] });
    if (sd === 1) out.window = { cols: kd(0), rows: null, depth: null, cards: null };
    else if (sd === 2) out.window = { cols: kd(1), rows: kd(0), depth: null, cards: null };
    else out.window = { cols: kd(2), rows: kd(1), depth: kd(0), cards: null };
  }
  return out;
}

function extent(s) {
  return s ? s.size : 1;
}

export function blocksLayout(model, { width, maxHeight = 300, maxUnit = 18, margin = 14, hasBias = false }) {
  const specs = blockSpecs(model);
  const order = [["input", specs.input], [specs.weight ? "weight" : "window", specs.weight || specs.window], ["output", specs.output]].filter(
    ([, s]) => s,
  );
  const depthUnits = (s) => (s.depth ? extent(s.depth) : 0) * 0.6;
  const cardsPx = (s) => (s.cards ? Math.min(extent(s.cards) - 1, MAX_CARDS) * CARD_STEP : 0);
  const opW = 54;
  const labelW = 56;
  // Side by side needs room for three boxes and their labels; a phone gets them stacked.
  const vertical = width < 440; // beside the formula panel at 1280 px the host is ~520 px: stay horizontal
  let u;
  if (vertical) {
    const avail = width - margin * 2 - labelW - MAX_CARDS * CARD_STEP - 40;
    const widest = Math.max(...order.map(([, s]) => extent(s.cols) + depthUnits(s) * DEPTH_DX));
    u = Math.min(maxUnit, avail / Math.max(widest, 1), 200 / Math.max(...order.map(([, s]) => extent(s.rows)), 1));
  } else {
    const unitsW = order.reduce((a, [, s]) => a + extent(s.cols) + depthUnits(s) * DEPTH_DX, 0);
    const fixedW = margin * 2 + (order.length - 1) * opW + order.reduce((a, [, s]) => a + labelW + cardsPx(s), 0);
    const unitsH = Math.max(...order.map(([, s]) => extent(s.rows) + depthUnits(s) * -DEPTH_DY));
    u = Math.min(maxUnit, (width - fixedW) / Math.max(unitsW, 1), (maxHeight - 90) / Math.max(unitsH, 1));
  }
  u = Math.max(u, 0.4);
  // Very long axes (a 512-channel depth) would dwarf everything; cap any extent so the drawing
  // stays readable, the exact size is in the label.
  const cap = Math.max(vertical ? 110 : 140, width * 0.28);
  const px = (s) => (s ? Math.max(4, Math.min(cap, extent(s) * u)) : Math.max(4, u));
  const boxes = order.map(([role, s]) => ({
    role,
    spec: s,
    w: px(s.cols),
    h: s.rows ? px(s.rows) : Math.max(10, u),
    d: s.depth ? Math.min(cap, extent(s.depth) * u * 0.6) : 0,
    cards: s.cards ? Math.min(extent(s.cards) - 1, MAX_CARDS) : 0,
    capped: [s.cols, s.rows, s.depth].some((t) => t && extent(t) * u > cap),
  }));
  const above = (b) => b.d * -DEPTH_DY + b.cards * CARD_STEP; // how far depth and cards rise above the front face
  const ops = [];
  let height;
  let footY;
  let biasAt = null;
  if (vertical) {
    const cx = width / 2;
    let y = margin;
    boxes.forEach((b, i) => {
      const span = b.w + b.d * DEPTH_DX + b.cards * CARD_STEP;
      b.x = Math.max(margin + labelW, cx - span / 2);
      b.y = y + 44 + above(b);
      y = b.y + b.h + 22;
      if (b.role === "weight" && hasBias) {
        biasAt = { x: b.x + b.w / 2, y: y + 16 };
        y += 30;
      }
      if (i < boxes.length - 1) {
        ops.push({ x: cx, y: y + 14, vertical: true });
        y += 30;
      }
    });
    footY = y + 18;
    height = footY + 10;
  } else {
    const tallest = Math.max(...boxes.map((b) => b.h + above(b)));
    const top = margin + 40;
    const baseline = top + tallest; // bottoms of the front faces line up
    let x = margin;
    boxes.forEach((b, i) => {
      x += labelW;
      b.x = x;
      b.y = baseline - b.h;
      x += b.w + b.d * DEPTH_DX + b.cards * CARD_STEP;
      if (i < boxes.length - 1) {
        ops.push({ x: x + opW / 2, y: baseline - Math.min(b.h, boxes[i + 1].h) / 2, vertical: false });
        x += opW;
      }
      if (b.role === "weight" && hasBias) biasAt = { x: b.x + b.w / 2, y: baseline + 42 };
    });
    footY = baseline + (hasBias ? 66 : 42);
    height = footY + 10;
    width = x + margin;
  }
  return { unit: u, boxes, ops, width, height, cardStep: CARD_STEP, footY, biasAt, vertical };
}
