// "Your data": an image into an image-shaped input (N, C, H, W with C = 1 or 3), a conv kernel set
// by hand, and the input's and output's channels drawn as images with their value range.
//
// The choices live in state.ui.data ({sample, kernel: {preset, grid}, cmap}) and travel in the link;
// a picked file stays in this tab only (the link would not hold it). `apply` turns them into the
// request the API gets: inputs[0] = {"image": PNG data URL, "mode", "size"} and the top-level
// "parameters" ({weight, bias}); the store's request itself keeps the plain shape the form edits.

import { api, apiFetch } from "../api.js";
import { h } from "../util/dom.js";
import { fmt } from "../util/format.js";
import { parseNpy, npyPlanes } from "../util/npy.js";
import { SAMPLES, sampleDataUrl, fileDataUrl, planeCanvas } from "../draw/samples.js";
import { KERNEL_PRESETS, presetGrid, convParameters, planeRange, planeRgba, channelPlanes, imageShaped } from "../geometry/kernels.js";

const MAX_CHANNELS_SHOWN = 8;
const MAX_GRID_CELLS = 49; // a kernel up to 7 × 7 is edited as a grid
const SHOW_PX = 168; // the side a plane is drawn at (pixelated), whatever its size

export function createDataPanel(root, { getUi, setUi, onChange }) {
  const $ = (sel) => root.querySelector(sel);
  let uploaded = null; // {name, file}: a picked or dropped file (this tab only)
  const uploadCache = new Map(); // "h×w" -> data URL of the uploaded file at that size
  const paramShapes = new Map(); // JSON of layer config -> {name: shape} from /api/shape
  let lastRun = null;
  let fullOutput = null; // {run, planes}: the output's planes from ?format=npy when JSON sent a preview
  let npyCtl = null;
  let weightShape = null;

  const data = () => getUi().data || {};
  const setData = (patch) => {
    setUi({ data: { ...data(), ...patch } });
    onChange();
  };

  // ---- input source ----
  const sources = $("#data-sources");
  const randomBtn = h("button", { type: "button", dataset: { sample: "" } }, "random (seed)");
  sources.append(randomBtn, ...SAMPLES.map((s) => h("button", { type: "button", dataset: { sample: s.id } }, s.label)));
  sources.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-sample]");
    if (!b) return;
    setData({ sample: b.dataset.sample || null });
  });
  const fileInput = $("#data-file");
  fileInput.addEventListener("change", () => {
    if (fileInput.files?.[0]) useFile(fileInput.files[0]);
  });
  const drop = $("#data-drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files?.[0];
    if (f) useFile(f);
  });
  function useFile(file) {
    if (!/^image\//.test(file.type)) {
      $("#data-file-note").textContent = `${file.name} is not an image.`;
      return;
    }
    uploaded = { name: file.name, file };
    uploadCache.clear();
    $("#data-file-note").textContent = `${file.name} (stays in this tab; a copied link keeps the samples only)`;
    setData({ sample: "file" });
  }

  // ---- kernel ----
  const presetSel = $("#kernel-preset");
  presetSel.append(h("option", { value: "" }, "— as built —"), ...KERNEL_PRESETS.map((p) => h("option", { value: p.id }, p.label)), h("option", { value: "custom" }, "custom (edited)"));
  presetSel.addEventListener("change", () => {
    const id = presetSel.value;
    if (!id || id === "random") return setData({ kernel: id ? { preset: "random" } : null });
    if (id === "custom") return setData({ kernel: { preset: "custom", grid: currentGrid() } });
    setData({ kernel: { preset: id } });
  });
  const gridBox = $("#kernel-grid");
  gridBox.addEventListener("input", (e) => {
    if (!e.target.matches("input")) return;
    const grid = [...gridBox.querySelectorAll("input")].reduce((g, el) => {
      const r = Number(el.dataset.r);
      (g[r] ||= [])[Number(el.dataset.c)] = Number(el.value) || 0;
      return g;
    }, []);
    setData({ kernel: { preset: "custom", grid } });
  });

  const cmapSel = $("#data-cmap");
  cmapSel.addEventListener("change", () => {
    setUi({ data: { ...data(), cmap: cmapSel.value } });
    if (lastRun) drawMaps(lastRun);
  });

  function kernelGrid(kh, kw) {
    const k = data().kernel;
    if (!k || k.preset === "random") return null;
    if (k.preset === "custom") {
      const g = k.grid;
      return Array.isArray(g) && g.length === kh && g.every((r) => Array.isArray(r) && r.length === kw) ? g : presetGrid("identity", kh, kw);
    }
    return presetGrid(k.preset, kh, kw);
  }

  function currentGrid() {
    if (!weightShape) return null;
    const [, , kh, kw] = weightShape;
    return kernelGrid(kh, kw) ?? weightSlice(lastRun) ?? presetGrid("identity", kh, kw);
  }

  function weightSlice(run) {
    const w = run?.params?.find((p) => p.name === "weight");
    return Array.isArray(w?.data?.[0]?.[0]) ? w.data[0][0] : null;
  }

  // The parameter shapes of a layer config (from the last run, else /api/shape, which allocates nothing).
  async function shapesOf(request, signal) {
    const key = JSON.stringify(request.layer);
    if (!paramShapes.has(key)) {
      const r = await api.shape({ layer: request.layer, inputs: request.inputs }, { signal, detail: "shapes" });
      paramShapes.set(key, Object.fromEntries((r.params || []).map((p) => [p.name, p.shape])));
    }
    return paramShapes.get(key);
  }

  async function imageUrl(id, hgt, wid) {
    if (id !== "file") return SAMPLES.some((s) => s.id === id) ? sampleDataUrl(id, hgt, wid) : null;
    if (!uploaded) return null;
    const key = `${hgt}x${wid}`;
    if (!uploadCache.has(key)) uploadCache.set(key, await fileDataUrl(uploaded.file, hgt, wid));
    return uploadCache.get(key);
  }

  const this_ = {
    // The request the API gets: the chosen image and kernel put in (the store's request is unchanged).
    async apply(request, { signal } = {}) {
      const d = data();
      let out = request;
      const x0 = request.inputs?.[0];
      if (d.sample && x0?.shape && imageShaped(x0.shape)) {
        const [, c, hgt, wid] = x0.shape;
        const url = await imageUrl(d.sample, hgt, wid);
        if (url) out = { ...out, inputs: [{ image: url, mode: c === 1 ? "L" : "RGB", size: [hgt, wid] }, ...request.inputs.slice(1)] };
      }
      if (d.kernel && d.kernel.preset !== "random") {
        const shapes = await shapesOf(request, signal);
        const w = shapes.weight;
        if (Array.isArray(w) && w.length === 4) {
          const grid = kernelGrid(w[2], w[3]);
          if (grid) out = { ...out, parameters: convParameters(grid, w, Array.isArray(shapes.bias)) };
        }
      }
      return out;
    },

    // After a run: show what applies to this layer and draw the input's and output's planes.
    update(run, request) {
      lastRun = run;
      const x0 = request?.inputs?.[0];
      const imageIn = imageShaped(x0?.shape);
      const w = run.params?.find((p) => p.name === "weight");
      // inside a network the layer runs on what it receives there: no image or kernel of its own
      weightShape = request && Array.isArray(w?.shape) && w.shape.length === 4 ? w.shape : null;
      const planesIn = channelPlanes(run.inputs?.[0]?.data ?? run.inputs?.[0]?.preview);
      root.hidden = !imageIn && !weightShape && !planesIn.length;
      if (root.hidden) return;
      $("#data-input-row").hidden = !imageIn;
      const d = data();
      for (const b of sources.querySelectorAll("button"))
        b.setAttribute("aria-pressed", String((b.dataset.sample || null) === (d.sample || null)));
      $("#data-batch-note").hidden = !(d.sample && x0?.shape?.[0] > 1);
      $("#data-kernel-row").hidden = !weightShape;
      if (weightShape) drawKernel(weightShape, run);
      cmapSel.value = d.cmap || "grey";
      drawMaps(run);
      // JSON sent a strided preview (which aliases stripes and edges): the whole output as .npy
      if (run.output && run.output.data == null && request && channelPlanes(run.output.preview).length) fetchFull(run, request);
    },
    get root() {
      return root;
    },
  };
  return this_;

  async function fetchFull(run, request) {
    npyCtl?.abort();
    npyCtl = new AbortController();
    const { signal } = npyCtl;
    try {
      const body = await this_.apply(request, { signal });
      const res = await apiFetch(`/api/run?format=npy&tensor=${encodeURIComponent(run.output.name || "output")}`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal,
      });
      if (!res.ok || run !== lastRun) return;
      fullOutput = { run, planes: npyPlanes(parseNpy(await res.arrayBuffer()), MAX_CHANNELS_SHOWN) };
      if (run === lastRun) drawMaps(run);
    } catch {
      // the strided preview stays, labelled as one
    }
  }

  function drawKernel(shape, run) {
    const [, , kh, kw] = shape;
    const k = data().kernel;
    presetSel.value = k?.preset ?? "";
    for (const opt of presetSel.options) {
      const p = KERNEL_PRESETS.find((x) => x.id === opt.value);
      opt.disabled = Boolean(p?.only3 && !(kh === 3 && kw === 3));
    }
    const grid = kernelGrid(kh, kw) ?? weightSlice(run);
    // typing in a cell reruns the layer: keep that cell (and its half-typed text) as it is
    const cells = [...gridBox.querySelectorAll("input")];
    if (grid && gridBox.contains(document.activeElement) && cells.length === kh * kw) {
      for (const el of cells) if (el !== document.activeElement) el.value = String(+Number(grid[el.dataset.r][el.dataset.c]).toFixed(4));
      return;
    }
    gridBox.replaceChildren();
    $("#kernel-note").textContent = k && k.preset !== "random"
      ? `${shape[0] * shape[1] === 1 ? "the kernel is" : `each of the ${shape[0]}×${shape[1]} kernel slices (out × in channels) is`} this ${kh}×${kw} grid; the bias is 0`
      : `weight[0, 0] as the layer draws it (seed); pick a preset or edit a number`;
    if (!grid || kh * kw > MAX_GRID_CELLS) return;
    gridBox.style.gridTemplateColumns = `repeat(${kw}, 4.2em)`;
    for (let r = 0; r < kh; r++)
      for (let c = 0; c < kw; c++)
        gridBox.append(h("input", { type: "number", step: "any", value: String(+Number(grid[r][c]).toFixed(4)), "aria-label": `kernel row ${r} column ${c}`, dataset: { r: String(r), c: String(c) } }));
  }

  function drawMaps(run) {
    const cmap = data().cmap || "grey";
    const host = $("#data-maps");
    host.replaceChildren();
    const tensors = [["input", run.inputs?.[0]], ["output", run.output]];
    // one pixel scale for the input and the output, so a pool that halves the image draws it half as big
    const sides = tensors.filter(([, t]) => t?.shape?.length === 4).map(([, t]) => Math.max(t.shape[2], t.shape[3]));
    const scale = Math.max(1, Math.floor(SHOW_PX / Math.max(1, ...sides)));
    for (const [role, t] of tensors) {
      if (!t) continue;
      const full = role === "output" && !t.data && fullOutput?.run === run ? fullOutput.planes : null;
      const planes = full ?? channelPlanes(t.data ?? t.preview);
      if (!planes.length) continue;
      const group = h("div", { class: "map-group", dataset: { role, full: String(Boolean(t.data || full)) } });
      const step = t.data || full ? null : t.preview_step;
      group.append(h("h3", { class: "sub-h" }, `${role} ${t.name && t.name !== role ? t.name : ""} (${t.shape.join(" × ")})${step ? ` — every ${step.slice(-2).join("×")}-th value (preview)` : ""}`));
      const row = h("div", { class: "map-row" });
      planes.slice(0, MAX_CHANNELS_SHOWN).forEach((plane, ch) => {
        const range = planeRange(plane);
        const hgt = plane.length;
        const wid = plane[0]?.length ?? 0;
        const canvas = planeCanvas(planeRgba(plane, cmap, range), hgt, wid);
        // a strided preview keeps the tensor's aspect and size: each value covers step × step pixels
        const [sy, sx] = step ? step.slice(-2) : [1, 1];
        canvas.style.width = `${wid * sx * scale}px`;
        canvas.style.height = `${hgt * sy * scale}px`;
        canvas.className = "feature-map";
        Object.assign(canvas.dataset, { role, channel: String(ch), lo: String(range.lo), hi: String(range.hi), cmap });
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", `${role} channel ${ch}, values ${fmt(range.lo, 3)} to ${fmt(range.hi, 3)}`);
        const rangeText = cmap === "diverging"
          ? `${fmt(range.lo, 3)} … 0 … ${fmt(range.hi, 3)}`
          : `${fmt(range.lo, 3)} (black) … ${fmt(range.hi, 3)} (white)`;
        row.append(h("figure", { class: "map" }, canvas, h("figcaption", {}, `channel ${ch}: ${rangeText}`)));
      });
      if (t.shape[1] > MAX_CHANNELS_SHOWN) row.append(h("p", { class: "aside" }, `+ ${t.shape[1] - MAX_CHANNELS_SHOWN} more channels`));
      group.append(row);
      host.append(group);
    }
  }
}
