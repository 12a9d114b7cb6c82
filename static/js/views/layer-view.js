// The single-layer view: wires the form, the diagrams and the panels to the store and the API.
// A view is an object with load()/show()/hide(); main.js picks one by state.ui.view, so a network
// view can sit beside this one without either knowing about the other. A layer opened from a
// network (state.ui.drill) shows where it sits, a way back, and explains its output elements from
// the input it really receives inside the network.

import { api, ApiError, isAbort, apiFetch } from "../api.js";
import { createConfigForm } from "../ui/form.js";
import { createWindowPanel } from "../ui/window-panel.js";
import { createDataPanel } from "../ui/data-panel.js";
import { createTextPanel } from "../ui/text-panel.js";
import { renderFormulas, fitFormulas } from "../ui/formula.js";
import { renderExplain, renderExplainError, clearExplain, wireTermHover, highlightRow } from "../ui/explain.js";
import { renderTensors } from "../ui/tensors.js";
import { renderParams, renderCode, wireCopy } from "../ui/params.js";
import { diagramKind } from "../geometry/dims.js";
import { createPalette } from "../geometry/palette.js";
import { drawLinear, drawBilinear } from "../draw/matrix.js";
import { drawBlocks } from "../draw/blocks.js";
import { drawFlow } from "../draw/flow.js";
import { drawDataflow } from "../draw/dataflow.js";
import { callsChildren } from "../geometry/dataflow.js";
import { exportSvg, exportPng } from "../export.js";
import { debounce, sameShape, shapeStr } from "../util/format.js";
import { afterFrame, budgetYield, nextTask } from "../util/schedule.js";
import { withChild } from "../net/model.js";

const DRAWERS = { linear: drawLinear, bilinear: drawBilinear, blocks: drawBlocks, generic: drawFlow };

export function createLayerView(root, { store, byType, devices, setStatus, onLeaveDrill = () => {} }) {
  const $ = (sel) => root.querySelector(sel);
  const panels = {
    diagram: $("#diagram-panel"),
    formula: $("#formula-panel"),
    window: $("#window-panel"),
    explain: $("#explain-panel"),
    tensors: $("#tensors-panel"),
    params: $("#params-panel"),
    code: $("#code-panel"),
  };
  let entry = null;
  let lastRun = null;
  let lastRunRequest = null;
  let diagram = null;
  let runSeq = 0;
  let runCtl = null;
  let shapeCtl = null;
  let shapes = 0;
  let drawnSeq = 0; // the runSeq whose /api/run answer was drawn last
  let explainCtl = null;
  let renders = 0;
  let drill = null; // state.ui.drill when this layer was opened from a network

  const form = createConfigForm($("#config-form"), { onEdit });
  // an image into the input and a kernel by hand: put into the request the API gets, not the store's
  const dataPanel = createDataPanel($("#data-panel"), {
    getUi: () => store.get().ui,
    setUi: (patch) => store.update({ ui: patch }, "ui"),
    onChange: () => runNow(),
  });
  const textPanel = createTextPanel($("#text-panel"), {
    byType,
    getUi: () => store.get().ui,
    setUi: (patch) => store.update({ ui: patch }, "ui"),
    onChange: () => runNow(),
  });
  const windowPanel = createWindowPanel(panels.window, {
    getUi: () => store.get().ui,
    setUi: (patch) => store.update({ ui: patch }, "ui"),
    onPick: pin,
    // The tensors are too large to send whole: ask for the planes of this sample and channel.
    onNeedSlice: (slice) => {
      const have = lastRun?.windows?.values;
      if (sliceAsked && sliceAsked.batch === slice.batch && sliceAsked.channel === slice.channel) return;
      if (have && have.batch === slice.batch && have.channel === slice.channel) return;
      sliceAsked = slice;
      queueMicrotask(runNow);
    },
    onTermHover: (t) => {
      highlightRow(panels.explain, t);
      windowPanel.highlightTerm(t);
    },
  });
  let sliceAsked = null;
  wireTermHover(panels.explain, (t) => windowPanel.highlightTerm(t));

  wireCopy($("#copy-code"), () => lastRun?.code || "");
  // Tensors and code are folded away, so the form, diagram, formula and animation share one screen.
  for (const fold of root.querySelectorAll(".fold")) {
    const toggle = fold.querySelector(".fold-toggle");
    const body = fold.querySelector(".fold-body");
    toggle.addEventListener("click", () => {
      const open = fold.hasAttribute("data-folded");
      fold.toggleAttribute("data-folded", !open);
      body.inert = !open;
      toggle.setAttribute("aria-expanded", String(open));
    });
  }
  $("#drill-back").addEventListener("click", () => onLeaveDrill());
  $("#export-svg").addEventListener("click", () => exportFile("svg", diagramSvg(), "diagram"));
  $("#export-png").addEventListener("click", () => exportFile("png", diagramSvg(), "diagram"));
  $("#win-export-svg").addEventListener("click", () => exportFile("svg", windowPanel.svg, "windows"));
  $("#win-export-png").addEventListener("click", () => exportFile("png", windowPanel.svg, "windows"));
  for (const b of root.querySelectorAll("#win-export button[data-format]"))
    b.addEventListener("click", () => exportAnimation(b.dataset.format));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && store.get().ui.pinned && !e.target.closest("input, textarea, select")) unpin();
  });

  // An edit asks for the shapes (formula only, answered in milliseconds) and the run at once; the shapes
  // redraw the diagram and the formula, the run fills in the values. A newer edit aborts both.
  const scheduleRun = { cancel: () => {} };

  store.subscribe((state, prev, reason) => {
    if (reason === "ui" && state.ui !== prev.ui) {
      const changed = ["channel", "batch", "depth", "inChannel", "scale"].some((k) => state.ui[k] !== prev.ui[k]);
      if (changed) windowPanel.uiChanged();
      if (state.ui.scale !== prev.ui.scale && lastRun) renderTensors(panels.tensors, lastRun, { sharedScale: sharedScale(), request: lastRunRequest });
    }
  });

  $("#tensors-shared-scale")?.addEventListener("change", (e) => store.update({ ui: { scale: e.target.checked ? "shared" : "own" } }, "ui"));
  // One colour scale for inputs and outputs: the user's choice, else the catalog's same_units.
  function sharedScale() {
    const { scale } = store.get().ui;
    return scale === "shared" || (scale !== "own" && Boolean(entry?.same_units));
  }

  function diagramSvg() {
    return $("#diagram svg.drawing");
  }

  async function exportFile(kind, svg, what) {
    if (!svg) return;
    const name = `${entry?.type || "layer"}-${what}.${kind}`;
    try {
      if (kind === "svg") exportSvg(svg, name);
      else await exportPng(svg, name);
    } catch (e) {
      setStatus(`Export failed: ${e.message}`, "error");
    }
  }

  // The sliding window as a GIF/WebM/MP4 from POST /api/animate, for the sample, channel and depth slice shown.
  async function exportAnimation(format) {
    const menu = $("#win-export");
    menu.open = false;
    const body = { ...(await dataPanel.apply(lastRunRequest || store.get().request)), window_slice: windowPanel.animationSlice() };
    setStatus(`rendering the ${format.toUpperCase()}…`, "busy");
    try {
      const res = await apiFetch(`/api/animate?format=${encodeURIComponent(format)}`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
      });
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
      const blob = await res.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `${entry?.type || "layer"}-window.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      setStatus(`${format.toUpperCase()} ready (${Math.round(blob.size / 1024)} KB)`, "ok");
    } catch (e) {
      setStatus(`Export failed: ${e instanceof ApiError ? e.detail : e.message}`, "error");
    }
  }

  function onEdit(request, errors) {
    store.update({ request }, "edit");
    if (Object.keys(errors).length) {
      scheduleRun.cancel();
      runCtl?.abort();
      form.showErrors(errors);
      markStale(true, "Fix the highlighted field; the view shows the last valid configuration.");
      return;
    }
    form.clearErrors();
    editedRun = true;
    setStatus("editing…", "busy");
    shapeNow(request, runSeq + 1);
    runNow();
  }

  // The /api/shape answer drawn as if it were a run without numbers: the diagram and the formula first.
  async function shapeNow(request, seq) {
    shapeCtl?.abort();
    shapeCtl = new AbortController();
    if (insideNetwork(request)) return; // a drilled layer's shapes come with the network's run
    try {
      const shape = await api.shape(request, { signal: shapeCtl.signal, detail: "shapes" });
      if (seq !== runSeq || drawnSeq === seq) return; // a newer edit, or this edit's run already drew
      const inputs = (request.inputs || []).map((x, i) => ({ name: entry?.inputs?.[i]?.name ?? `input${i}`, shape: x.shape }));
      const outputs = shape.output_shapes.map((s, i) => ({ name: shape.output_names?.[i] ?? "output", shape: s }));
      const pseudo = { ...shape, inputs, outputs, output: outputs[0] ?? null, shape_check: null };
      const prevRequest = lastRunRequest;
      lastRunRequest = request;
      try {
        drawDiagram(pseudo);
      } finally {
        lastRunRequest = prevRequest;
      }
      renderFormulas(panels.formula, pseudo, { entry, args: request.layer ?? {} });
      setStatus("shapes ready, running…", "busy");
      root.dataset.shapes = String(++shapes);
    } catch (e) {
      if (isAbort(e)) return;
      // the run reports the same problem at its field; the shapes are only a head start
    }
  }

  function markStale(on, msg = "") {
    root.classList.toggle("stale", on);
    const banner = $("#stale-banner");
    banner.hidden = !on;
    banner.textContent = msg;
  }

  async function runNow() {
    scheduleRun.cancel();
    const request = store.get().request;
    runCtl?.abort();
    runCtl = new AbortController();
    const seq = ++runSeq;
    setStatus("running…", "busy");
    root.setAttribute("aria-busy", "true");
    try {
      // Drilled in from a network: the layer as it runs there (its real input and weights).
      const inside = insideNetwork(request);
      // The sliding window's planes come back with real values whatever the tensor size.
      const slice = entry?.windows ? { window_slice: windowPanel.slice() } : {};
      const run = inside
        ? await api.run({ ...inside, ...slice }, { signal: runCtl.signal, path: drill.path })
        : await api.run({ ...textPanel.apply(await dataPanel.apply(request, { signal: runCtl.signal })), ...slice }, { signal: runCtl.signal });
      // A run with `path` answers without the child's own graph: a drilled module that is not a
      // family drawing asks for it (meta device, no numbers), so a composite draws its dataflow here too.
      if (inside && !run.graph && diagramKind(entry) === "generic") {
        run.graph = (await api.shape(request, { signal: runCtl.signal }).catch((e) => {
          if (isAbort(e)) throw e;
          return null;
        }))?.graph ?? null;
      }
      if (seq !== runSeq) return;
      drawnSeq = seq;
      sliceAsked = null;
      lastRun = run;
      lastRunRequest = request;
      form.clearErrors();
      markStale(false);
      if (!(await render(run))) return; // a newer answer is being drawn
      setStatus(`ran on ${run.device} in ${run.dtype}`, "ok");
    } catch (e) {
      if (isAbort(e) || seq !== runSeq) return;
      if (e instanceof ApiError) {
        if (/^inputs\[0\]\.text/.test(e.field || "")) textPanel.showError(e.detail);
        form.showApiError(e, { prefix: drill?.field });
        markStale(Boolean(lastRun), lastRun ? "The server refused this configuration (see the message at the field); the view shows the last valid one." : "");
        setStatus(e.words, "error");
      } else {
        markStale(Boolean(lastRun), "The server could not be reached.");
        setStatus(`network error: ${e.message}`, "error");
      }
    } finally {
      if (seq === runSeq) root.setAttribute("aria-busy", "false");
    }
  }

  function drawDiagram(run) {
    const type = run.type || lastRunRequest.layer.type;
    const kind = diagramKind(entry);
    const host = $("#diagram");
    // The shapes' head start carries no graph: a composite's dataflow stays until the run redraws it,
    // instead of flashing the generic drawing in between.
    if (!run.graph && host.dataset.kind === "dataflow" && host.dataset.type === type) return;
    host.dataset.type = type;
    host.dataset.kind = kind;
    const opts = {
      colorOf: createPalette(),
      width: Math.max(280, host.clientWidth || 700),
      pinned: store.get().ui.pinned?.index ?? null,
      onPick: pin,
      layerType: type,
      entry,
      args: lastRunRequest?.layer ?? {},
    };
    try {
      if (callsChildren(run.graph)) {
        // One layer, one picture: a module built of children is drawn as its dataflow.
        host.dataset.kind = "dataflow";
        host.replaceChildren();
        drawDataflow(host, run.graph);
        diagram = { highlight() {} };
      } else diagram = DRAWERS[kind](host, run, opts);
      showEmpty(host, run);
    } catch (e) {
      // A shape the family drawing did not foresee still gets the generic diagram.
      console.warn(`${kind} diagram failed, drawing the generic one:`, e);
      host.dataset.kind = "generic";
      diagram = drawFlow(host, run, { ...opts, colorOf: createPalette() });
    }
    $("#diagram-title").textContent = {
      linear: "y = x·Aᵀ + b",
      bilinear: "y[n, k] = x₁[n] · A_k · x₂[n]ᵀ + b_k",
      blocks: "input, kernel and output",
      generic: "tensor flow",
      dataflow: "dataflow of its forward(): the child modules it calls",
    }[host.dataset.kind];
  }

  // torch returns an empty tensor where an output dimension is 0 (negative padding that crops it all,
  // a fractional pool to size 0, an 'area' upsample below one pixel): the page says so, plainly
  function showEmpty(host, run) {
    host.querySelector(".empty-output")?.remove();
    const empty = (run.outputs?.length ? run.outputs : [run.output]).filter((t) => t && t.numel === 0);
    if (!empty.length) return;
    const p = document.createElement("p");
    p.className = "empty-output aside";
    p.setAttribute("role", "status");
    p.textContent = empty
      .map((t) => `${t.name} is empty: its shape (${t.shape.join(", ")}) has a dimension of size 0, so it holds no values.`)
      .join(" ");
    host.prepend(p);
  }

  // The panels are drawn in pieces (the diagram and formula first, then the sliding window, then the
  // tensors card by card), and a new task starts whenever the current one has run a while, so a big
  // layer never blocks the page for long while a small one draws at once; a newer answer stops an
  // older one between the pieces. Resolves false when it was stopped.
  let renderSeq = 0;
  async function render(run) {
    const mine = ++renderSeq;
    const stale = () => mine !== renderSeq;
    // a task of its own: the answer's JSON was parsed in the task that got it
    await nextTask();
    if (stale()) return false;
    const pause = budgetYield();
    const p = store.get().ui.pinned;
    const pinOk = Boolean(p) && validIndex(p.index, outputShape(run, p.output));
    // Drop a pin that does not fit the new output before anything redraws with it.
    if (!pinOk) windowPanel.pin(null);
    drawDiagram(run);
    const bigWindow = Boolean(run.windows && !run.windows.omitted);
    // with a big drawing to come, the formulas are fitted (their widths read) after the next frame too
    renderFormulas(panels.formula, run, { entry, args: lastRunRequest?.layer ?? {}, defer: bigWindow });
    showPreviousShapes(run);
    await pause();
    if (stale()) return false;
    renderParams(panels.params, run);
    renderCode(panels.code, run);
    // the sliding window is the biggest piece: after the next frame, so the layout the pieces above
    // changed is done by the browser, not forced by the window's size reads in the same task
    if (bigWindow) {
      await afterFrame();
      if (stale()) return false;
      fitFormulas(panels.formula);
      await pause();
    } else await pause();
    if (stale()) return false;
    windowPanel.update(run, { layerType: run.type || lastRunRequest.layer.type, request: lastRunRequest, sameUnits: entry?.same_units ?? false });
    dataPanel.update(run, insideNetwork(lastRunRequest) ? null : lastRunRequest);
    textPanel.update(run, insideNetwork(lastRunRequest) ? null : lastRunRequest);
    await pause();
    if (stale()) return false;
    await renderTensors(panels.tensors, run, { cancelled: stale, pause, sharedScale: sharedScale(), request: lastRunRequest }); // false also when a resize redrew them
    if (stale()) return false;
    if (pinOk) explain(p.index, p.output);
    else {
      if (p) store.update({ ui: { pinned: null } }, "ui");
      clearExplain(panels.explain, { explainable: canExplain(entry) });
      diagram?.highlight(null);
      windowPanel.pin(null);
    }
    root.dataset.renders = String(++renders);
    root.dataset.type = run.type || "";
    return true;
  }

  // The catalog's `explain` kind (null: no element-wise explanation).
  function canExplain(e) {
    if (!e) return true;
    return e.explain !== null && e.explain !== undefined;
  }

  // After an edit, the shapes before it stay faintly beside the new ones: cause and effect. Only
  // after an edit of this layer: a layer opened anew (from the catalog, a link, a network's
  // drill-down) has no "before", whatever was on screen until then.
  let shownShapes = null;
  let editedRun = false; // the run being drawn answers an edit in the form
  function showPreviousShapes(run) {
    const el = $("#shape-prev");
    const now = { type: run.type, outputs: (run.outputs?.length ? run.outputs : [run.output]).filter(Boolean).map((t) => ({ name: t.name, shape: t.shape })) };
    const before = shownShapes;
    shownShapes = now;
    const changed = editedRun && before && before.type === now.type && JSON.stringify(before.outputs) !== JSON.stringify(now.outputs);
    el.hidden = !changed;
    if (!changed) return;
    el.replaceChildren("before this edit: ", ...before.outputs.flatMap((t, i) => [i ? ", " : "", `${before.outputs.length > 1 ? `${t.name} ` : ""}${shapeStr(t.shape)}`]));
    el.dataset.shapes = JSON.stringify(before.outputs.map((t) => t.shape));
  }

  function outputShape(run, name) {
    if (!name) return run.output.shape;
    return (run.outputs || []).find((t) => t.name === name)?.shape ?? run.output.shape;
  }

  function validIndex(index, shape) {
    return Array.isArray(index) && index.length === shape.length && index.every((v, i) => Number.isInteger(v) && v >= 0 && v < shape[i]);
  }

  function pin(index, output = null) {
    store.update({ ui: { pinned: { index, output } } }, "pin");
    explain(index, output, { follow: true });
  }

  function unpin() {
    explainCtl?.abort();
    store.update({ ui: { pinned: null } }, "pin");
    diagram?.highlight(null);
    windowPanel.pin(null);
    clearExplain(panels.explain, { explainable: canExplain(entry) });
  }

  async function explain(index, output, { follow = false } = {}) {
    diagram?.highlight(index);
    windowPanel.pin(index, null, { follow });
    if (entry && !canExplain(entry)) {
      renderExplainError(panels.explain, `${entry.type} has no element-wise explanation.`);
      return;
    }
    explainCtl?.abort();
    explainCtl = new AbortController();
    const req = lastRunRequest;
    const inside = insideNetwork(req);
    panels.explain.setAttribute("aria-busy", "true");
    try {
      const ex = inside
        ? await api.explain(inside, index, output, { signal: explainCtl.signal, path: drill.path })
        : await api.explain(await dataPanel.apply(req, { signal: explainCtl.signal }), index, output, { signal: explainCtl.signal });
      if (req !== lastRunRequest) return;
      renderExplain(panels.explain, ex, { outputName: output || lastRun.output.name || "output", onUnpin: unpin });
      if (inside) noteInside(ex);
      windowPanel.pin(index, ex, { follow });
      panels.explain.dataset.index = index.join(",");
      if (window.matchMedia("(max-width: 900px)").matches) {
        const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
        panels.explain.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
      }
    } catch (e) {
      if (isAbort(e)) return;
      renderExplainError(panels.explain, e instanceof ApiError ? e.detail : `Explain failed: ${e.message}`);
    } finally {
      panels.explain.setAttribute("aria-busy", "false");
    }
  }

  // Opened from a network, on the input shapes it receives there: explain inside the network (the
  // network's request with this layer as edited here, plus its module path). Once the input shape
  // is edited away from the one the network gives, the layer stands alone again.
  function insideNetwork(req) {
    if (!drill?.path || !Array.isArray(drill.inputs)) return null;
    const shapes = (req.inputs || []).map((i) => i.shape);
    if (shapes.length !== drill.inputs.length || !shapes.every((s, i) => sameShape(s, drill.inputs[i]))) return null;
    return withChild(drill.network, drill.field, req.layer);
  }

  function noteInside(ex) {
    const p = document.createElement("p");
    p.className = "panel-note drill-note";
    const shapes = (ex.input_shapes || drill.inputs || []).map(shapeStr).join(", ");
    p.textContent = `Inside the network: computed by layer ${ex.path ?? drill.path} from the input ${shapes} it really receives there, with the weights it has there.`;
    panels.explain.querySelector("#explain-body").prepend(p);
  }

  function renderDrillBar() {
    const bar = $("#drill-bar");
    bar.hidden = !drill;
    root.classList.toggle("drilled", Boolean(drill));
    if (!drill) return;
    const shapes = (drill.inputs || []).map(shapeStr).join(", ");
    $("#drill-text").textContent = drill.path
      ? `Layer ${drill.path} of the network, on the input it receives there: ${shapes}. Edits made here go back into the network.`
      : `The whole network is this one layer, on its input ${shapes}. Edits made here go back into the network.`;
    bar.dataset.path = drill.path ?? "";
  }

  // Width changes (window resize, narrow layout) redraw from the last response; no new request.
  let lastWidth = 0;
  const ro = new ResizeObserver(
    debounce(() => {
      const w = $("#diagram").clientWidth;
      if (!lastRun || Math.abs(w - lastWidth) < 8) return;
      lastWidth = w;
      drawDiagram(lastRun);
      windowPanel.update(lastRun, { layerType: lastRun.type, request: lastRunRequest, sameUnits: entry?.same_units ?? false });
      renderTensors(panels.tensors, lastRun, { sharedScale: sharedScale(), request: lastRunRequest });
      const p = store.get().ui.pinned;
      if (p) diagram?.highlight(p.index);
    }, 150),
  );
  ro.observe($("#diagram"));

  return {
    // Show a request: rebuild the form for its layer type and run it at once.
    load(request) {
      const type = request.layer.type;
      entry = byType.get(type) || null;
      if (!entry) {
        form.showErrors({ "": `Unknown layer type “${type}”. Choose one from the catalog.` });
        return false;
      }
      if (!request.inputs && entry.example?.inputs) request = { ...request, inputs: entry.example.inputs };
      drill = store.get().ui.drill || null;
      renderDrillBar();
      shownShapes = null;
      editedRun = false;
      store.update({ request }, "load");
      form.load(entry, request, devices);
      lastWidth = $("#diagram").clientWidth;
      runNow();
      return true;
    },
    show() {
      root.hidden = false;
    },
    hide() {
      root.hidden = true;
      windowPanel.pause();
    },
    get entry() {
      return entry;
    },
    get lastRun() {
      return lastRun;
    },
  };
}
