// Fetch wrappers for the graph features (docs/API.md): a model pasted as code, receptive fields.
// Errors become the same ApiError the rest of the UI shows (with the server's field, line, column).

import { ApiError, apiFetch } from "../api.js";
import { gridFromLevels, gridFromRuns } from "../geometry/receptive.js";

async function post(path, body, signal) {
  const res = await apiFetch(path, {
    method: "POST",
    signal,
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // a proxy's HTML error page: keep the status
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// The pixels (RGBA) of a base64 PNG, exactly as stored: no colour conversion, no premultiplying.
async function pngPixels(b64) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }), { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, canvas.width, canvas.height).data;
}

// A receptive-field answer with each node's pictures decoded: `maskGrid` (structural, from run lengths)
// and `heatGrid` (effective, from its PNG), each {rows, cols, values} or null.
async function decodeField(result) {
  await Promise.all(
    result.nodes.map(async (n) => {
      n.maskGrid = n.grid ? gridFromRuns(n.grid) : null;
      const heat = n.effective?.grid;
      n.heatGrid = heat ? gridFromLevels(heat.shape, await pngPixels(heat.png)) : null;
    }),
  );
  return result;
}

export const graphApi = {
  // {"code"} -> {"layer", "inputs", "warnings"}; the server parses the code, it never runs it.
  importCode: (code, opts = {}) => post("/api/import", { code }, opts.signal),
  // the /api/run body plus index (and path) -> per node the elements that output element depends on.
  // opts.path: an element of that module call's output; opts.node: of that graph node (⊕, relu, ...).
  // Masks come as run lengths and heat maps as PNG images: the answer is decoded before it is returned.
  receptiveField: (request, index, opts = {}) =>
    post("/api/receptive-field", { ...request, index, ...(opts.path ? { path: opts.path } : {}), ...(opts.node ? { node: opts.node } : {}) }, opts.signal).then(decodeField),
};
