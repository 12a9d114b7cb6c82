// The network's activations at a glance (CNN Explainer's overview): a sample image into the
// network's image-shaped input, then every layer's output channels drawn as images, one row per
// layer in the order they run. The values are the server's: one POST /api/run per layer with its
// module path (the whole network runs each time; the answer is that layer's output as it ran).

import { api, isAbort, apiFetch } from "../api.js";
import { h } from "../util/dom.js";
import { fmt } from "../util/format.js";
import { SAMPLES, sampleDataUrl, planeCanvas } from "../draw/samples.js";
import { parseNpy, npyPlanes } from "../util/npy.js";
import { planeRange, planeRgba, imageShaped } from "../geometry/kernels.js";

const MAX_CHANNELS = 8;
const MAP_PX = 64; // the side each feature map is drawn at (pixelated)

// The planes of sample 0 of a layer's output: (N, C, H, W) -> C planes; (N, F) -> one 1 × F strip.
function planesOf(t) {
  const v = t?.data ?? t?.preview;
  if (!Array.isArray(v)) return [];
  if (Array.isArray(v[0]?.[0]?.[0])) return v[0];
  if (Array.isArray(v[0]) && !Array.isArray(v[0][0])) return [[v[0]]];
  return [];
}

export function createActivationsPanel(root) {
  const $ = (sel) => root.querySelector(sel);
  let sample = null;
  let ctl = null;
  let last = null; // {req, result}
  const buttons = $("#act-samples");
  buttons.append(...SAMPLES.map((s) => h("button", { type: "button", dataset: { sample: s.id } }, s.label)));
  buttons.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-sample]");
    if (!b) return;
    sample = b.dataset.sample;
    if (last) show(last.req, last.result);
  });

  async function show(req, result) {
    ctl?.abort();
    ctl = new AbortController();
    const { signal } = ctl;
    for (const b of buttons.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.sample === sample));
    const host = $("#act-rows");
    if (!sample) {
      host.replaceChildren(h("p", { class: "aside" }, "Pick an image: every layer's output is drawn from the network's real run on it."));
      return;
    }
    const [, c, hgt, wid] = req.inputs[0].shape;
    const body = { ...req, inputs: [{ image: sampleDataUrl(sample, hgt, wid), mode: c === 1 ? "L" : "RGB", size: [hgt, wid] }, ...req.inputs.slice(1)] };
    const leaves = (result.trace || []).filter((e) => e.leaf);
    root.setAttribute("aria-busy", "true");
    host.replaceChildren();
    root.dataset.layers = "0";
    try {
      let first = true;
      for (const entry of leaves) {
        const run = await api.run(body, { signal, path: entry.path });
        if (signal.aborted) return;
        if (first) {
          host.append(row("input", `input ${run.inputs?.[0]?.shape ? `(${run.inputs[0].shape.join("×")})` : ""}`, planesOf(run.inputs?.[0]), run.inputs?.[0]));
          first = false;
        }
        // JSON sent a strided preview of a big (N, C, H, W) map: that layer's whole output as .npy instead
        const full = !run.output.data && run.output.shape.length === 4 ? await layerNpy(body, entry.path, signal) : null;
        if (signal.aborted) return;
        const out = full ? { ...run.output, data: true } : run.output;
        host.append(row(entry.path, `${entry.path} ${entry.type} (${run.output.shape.join("×")})`, full ?? planesOf(run.output), out));
        root.dataset.layers = String(Number(root.dataset.layers) + 1);
      }
      root.dataset.sample = sample;
    } catch (e) {
      if (isAbort(e)) return;
      host.append(h("p", { class: "form-error" }, `The network could not be run on the image: ${e.detail || e.message}`));
    } finally {
      if (!signal.aborted) root.setAttribute("aria-busy", "false");
    }
  }

  // A layer's output in full (POST /api/run?format=npy with its path): its first MAX_CHANNELS planes, or
  // null where the file could not be had (the labelled preview stays).
  async function layerNpy(body, path, signal) {
    try {
      const res = await apiFetch("/api/run?format=npy", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, path }), signal,
      });
      if (!res.ok) return null;
      const array = parseNpy(await res.arrayBuffer());
      return Object.assign(npyPlanes(array, MAX_CHANNELS), { total: array.shape[1] });
    } catch (e) {
      if (isAbort(e)) throw e;
      return null;
    }
  }

  function row(path, title, planes, t) {
    const r = h("div", { class: "act-row", dataset: { path } });
    r.append(h("div", { class: "act-title" }, title, t?.data ? "" : h("span", { class: "aside" }, ` (every ${(t?.preview_step ?? []).slice(-2).join("×")}-th value)`)));
    const maps = h("div", { class: "act-maps" });
    planes.slice(0, MAX_CHANNELS).forEach((plane, ch) => {
      const range = planeRange(plane);
      const ph = plane.length;
      const pw = plane[0]?.length ?? 0;
      const canvas = planeCanvas(planeRgba(plane, "diverging", range), ph, pw);
      // a strided preview keeps the layer's aspect: each previewed value covers step rows × step columns
      const step = t?.data ? [1, 1] : (t?.preview_step ?? []).slice(-2);
      const [sy, sx] = ph === 1 ? [1, step[1] ?? 1] : [step[0] ?? 1, step[1] ?? 1];
      const scale = Math.max(1, Math.floor(MAP_PX / Math.max(ph * sy, pw * sx)));
      canvas.style.width = `${pw * sx * (ph === 1 ? Math.min(scale, 2) : scale)}px`;
      canvas.style.height = `${ph === 1 ? 12 : ph * sy * scale}px`;
      canvas.className = "feature-map";
      Object.assign(canvas.dataset, { channel: String(ch), lo: String(range.lo), hi: String(range.hi) });
      canvas.title = `channel ${ch}: ${fmt(range.lo, 3)} … ${fmt(range.hi, 3)}`;
      maps.append(canvas);
    });
    const channels = planes.total ?? planes.length;
    if (channels > MAX_CHANNELS) maps.append(h("span", { class: "aside" }, `+${channels - MAX_CHANNELS}`));
    if (!planes.length) maps.append(h("span", { class: "aside" }, "not drawn (not an image or a vector)"));
    r.append(maps);
    return r;
  }

  return {
    // After the shapes fit: show the panel where the network's first input is an image.
    update(req, result) {
      const ok = imageShaped(req?.inputs?.[0]?.shape) && (result?.trace || []).some((e) => e.leaf);
      root.hidden = !ok;
      if (!ok) {
        ctl?.abort();
        last = null;
        return;
      }
      last = { req, result };
      show(req, result);
    },
  };
}
