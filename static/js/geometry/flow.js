// Generic tensor-flow diagram: inputs → layer (with its parameters) → outputs, each tensor a row
// of dimension chips. Text widths are estimated (no DOM), generous enough for the UI font.

const CH = 7.2; // px per character at 12px
const CHIP_H = 22;
const CHIP_GAP = 4;

export function chipWidth(d) {
  return Math.max(30, (String(d.label).length + String(d.size).length + 1) * CH + 14);
}

function tensorBox(t, kind) {
  const chips = t.dims.length ? t.dims : [{ label: "scalar", size: "", key: "scalar" }];
  let cx = 10;
  const placed = chips.map((d) => {
    const w = chipWidth(d);
    const c = { ...d, x: cx, w };
    cx += w + CHIP_GAP;
    return c;
  });
  const title = `${t.name}`;
  const w = Math.max(cx + 6, title.length * CH + 24, 90);
  return { ...t, kind, chips: placed, w, h: CHIP_H + 34 };
}

export function flowLayout(model, layerName, { width, margin = 12 }) {
  const ins = model.inputs.map((t) => tensorBox(t, "input"));
  const outs = model.outputs.map((t) => tensorBox(t, "output"));
  const params = model.params.map((p) => tensorBox(p, "param"));
  // Many parameters (a transformer block) go in columns so the box stays within a screen, but no
  // more columns than the width holds (a phone): a box wider than the drawing was cut at its left.
  const columns = (ncols) => {
    const perCol = Math.ceil(params.length / ncols) || 0;
    const paramCols = Array.from({ length: ncols }, (_, c) => params.slice(c * perCol, (c + 1) * perCol));
    const colWidths = paramCols.map((col) => Math.max(0, ...col.map((p) => p.w)));
    const innerW = Math.max(layerName.length * 8 + 30, colWidths.reduce((a, w) => a + w + 10, 10), 140);
    return { paramCols, colWidths, innerW };
  };
  let ncols = params.length > 14 ? 3 : params.length > 6 ? 2 : 1;
  while (ncols > 1 && columns(ncols).innerW > width - 2 * margin) ncols--;
  const { paramCols, colWidths, innerW: layerInnerW } = columns(ncols);
  const layerH = 40 + Math.max(0, ...paramCols.map((col) => col.reduce((a, p) => a + p.h + 8, 0)));
  const colW = (list) => Math.max(...list.map((t) => t.w), 80);
  const colH = (list) => list.reduce((a, t) => a + t.h + 12, -12);
  // Arrows shorten before the layout turns vertical (where several outputs would stack under one arrow).
  const fits = (gapX) => colW(ins) + layerInnerW + colW(outs) + 2 * gapX + margin * 2 <= width;
  const gapX = fits(70) ? 70 : 44;
  const horizontal = fits(gapX);
  const layer = { name: layerName, params, w: layerInnerW, h: layerH, paramCols, colWidths };
  if (horizontal) {
    const H = Math.max(colH(ins), layerH, colH(outs));
    const top = margin + 6;
    const mid = top + H / 2;
    let x = margin;
    stackColumn(ins, x, mid);
    x += colW(ins) + gapX;
    Object.assign(layer, { x, y: mid - layerH / 2 });
    x += layerInnerW + gapX;
    stackColumn(outs, x, mid);
    x += colW(outs);
    placeParams(layer);
    return { horizontal, inputs: ins, outputs: outs, layer, width: x + margin, height: top + H + margin + 6 };
  }
  // Narrow: top to bottom.
  let y = margin;
  const cx = width / 2;
  y = stackRow(ins, cx, y, width - 2 * margin) + 46;
  Object.assign(layer, { x: Math.max(margin, cx - layerInnerW / 2), y });
  placeParams(layer);
  y += layerH + 46;
  y = stackRow(outs, cx, y, width - 2 * margin);
  const w = Math.max(width, layerInnerW + 2 * margin, ...ins.map((t) => t.x + t.w + margin), ...outs.map((t) => t.x + t.w + margin));
  return { horizontal, inputs: ins, outputs: outs, layer, width: w, height: y + margin };
}

function stackColumn(list, x, mid) {
  const total = list.reduce((a, t) => a + t.h + 12, -12);
  let y = mid - total / 2;
  for (const t of list) {
    t.x = x;
    t.y = y;
    y += t.h + 12;
  }
}

// Row of tensors centred at cx; returns the y below it. Wraps to one per line if too wide.
function stackRow(list, cx, y, avail) {
  const total = list.reduce((a, t) => a + t.w + 12, -12);
  if (total <= avail) {
    let x = cx - total / 2;
    for (const t of list) {
      t.x = Math.max(8, x);
      t.y = y;
      x += t.w + 12;
    }
    return y + Math.max(...list.map((t) => t.h), 0);
  }
  for (const t of list) {
    t.x = Math.max(8, cx - t.w / 2);
    t.y = y;
    y += t.h + 10;
  }
  return y - 10;
}

function placeParams(layer) {
  let x = layer.x + 10;
  layer.paramCols.forEach((col, c) => {
    let y = layer.y + 34;
    for (const p of col) {
      p.x = x;
      p.y = y;
      y += p.h + 8;
    }
    x += layer.colWidths[c] + 10;
  });
}
