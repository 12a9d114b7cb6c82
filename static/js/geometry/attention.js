// Attention weights as a token × token heatmap: pure layout (no DOM). Row i is query token i, column
// j key token j; each cell's shade is its weight on one scale from 0 to the largest weight shown.

// Python's list(str) (code points) and str.split(): the tokens the API will make of the text.
export function tokenize(text, how) {
  return how === "whitespace" ? text.split(/\s+/).filter(Boolean) : Array.from(text);
}

// The 2-D map of one head (or the mean) of sample 0: weights is (N, heads, L, S), (heads, L, S) or
// a mean (N, L, S) / (L, S).
export function attentionMatrix(entry, head) {
  const unbatched = entry.shape.length === 3;
  if (head === "mean") return unbatched ? entry.mean : entry.mean[0];
  return unbatched ? entry.weights[head] : entry.weights[0][head];
}

// Where a weight sits on the scale 0 … max (0 to 1; the drawing picks the colour), and whether text
// on it should be white.
export function shade(v, max) {
  const t = max > 0 ? Math.max(0, Math.min(1, v / max)) : 0;
  return { t, light: t > 0.55 };
}

export function heatmapLayout(matrix, rowLabels, colLabels, { maxWidth = 560, charPx = 7.5 } = {}) {
  const rows = matrix.length;
  const cols = matrix[0]?.length ?? 0;
  const longest = (labels) => Math.max(1, ...labels.map((s) => String(s).length));
  const left = Math.min(140, 12 + longest(rowLabels) * charPx);
  const top = Math.min(140, 12 + longest(colLabels) * charPx);
  const cell = Math.max(14, Math.min(44, Math.floor((maxWidth - left - 8) / Math.max(1, cols))));
  let max = 0;
  for (const r of matrix) for (const v of r) max = Math.max(max, v);
  const cells = [];
  matrix.forEach((r, i) => r.forEach((v, j) => cells.push({ i, j, v, x: left + j * cell, y: top + i * cell, ...shade(v, max) })));
  return {
    cell, left, top, max, cells,
    width: left + cols * cell + 8,
    height: top + rows * cell + 8,
    rows: rowLabels.map((text, i) => ({ text, x: left - 6, y: top + i * cell + cell / 2 })),
    cols: colLabels.map((text, j) => ({ text, x: left + j * cell + cell / 2, y: top - 6 })),
    showValues: cell >= 34,
  };
}
