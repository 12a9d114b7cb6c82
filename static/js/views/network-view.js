// The network view: a builder (presets, the network's input, the list of layers with add, remove,
// reorder, wrap in a residual block, and the selected layer's arguments in the same generated form
// as the single-layer view), the flow diagram with a shape on every edge, a torchinfo-style
// summary, and the module and PyTorch script. Shapes come from POST /api/shape (meta device); the
// script from POST /api/run once the shapes fit. Clicking a layer hands it to onDrill.

import { api, ApiError, isAbort } from "../api.js";
import { createConfigForm } from "../ui/form.js";
import { renderNetTree } from "../ui/net-tree.js";
import { renderNetTable } from "../ui/net-table.js";
import { drawNetwork } from "../draw/network.js";
import { mountPaste } from "../net/paste.js";
import { createGraphPanel } from "../net/graph-panel.js";
import { createRfPanel } from "../net/rf-panel.js";
import { createGraphTools } from "../net/graph-tools.js";
import { centreOnNode } from "../net/graph-nav.js";
import { renderTensorGroups } from "../ui/tensors.js";
import { inlineCode } from "../util/dom.js";
import { createActivationsPanel } from "../net/activations-panel.js";
import { createTextPanel } from "../ui/text-panel.js";
import { exportSvg, exportPng } from "../export.js";
import { wireCopy } from "../ui/params.js";
import { debounce, deepCopy, shapeStr } from "../util/format.js";
import {
  buildGraph,
  walk,
  getField,
  setField,
  insert,
  insertionPoint,
  remove,
  move,
  wrapResidual,
  unwrap,
  fitToInput,
  fitToOutput,
  addableTypes,
  splitItem,
  isContainer,
  isChain,
  isSum,
  skipSlotOf,
  slotsOf,
  fmtCount,
  isOpaque,
} from "../net/model.js";

const RUN_DEBOUNCE_MS = 300;
const NETWORK_INPUTS = [{ name: "input", convention: "(*)", kind: "normal" }];

export function createNetworkView(root, { store, byType, catalog, devices, presets = [], setStatus, onDrill, onPreset }) {
  const $ = (sel) => root.querySelector(sel);
  const activations = createActivationsPanel($("#net-act-panel"));
  // the network run on a text (its own /api/run, as the activations panel does)
  const textPanel = createTextPanel($("#net-text-panel"), {
    byType,
    getUi: () => store.get().ui,
    setUi: (patch) => store.update({ ui: patch }, "ui"),
    onChange: () => textPanel.update(null, request()),
    runsItself: true,
  });
  const els = {
    outPanel: $("#net-output-panel"),
    outBody: $("#net-output-body"),
    tree: $("#net-tree"),
    addType: $("#net-add-type"),
    add: $("#net-add"),
    addHint: $("#net-add-hint"),
    editor: $("#net-editor"),
    editorH: $("#net-editor-h"),
    open: $("#net-open"),
    wrap: $("#net-wrap"),
    unwrap: $("#net-unwrap"),
    nameRow: $("#net-name-row"),
    name: $("#net-name"),
    nameError: $("#net-name-error"),
    scRow: $("#net-shortcut-row"),
    shortcut: $("#net-shortcut"),
    childForm: $("#net-child-form"),
    preset: $("#net-preset"),
    presetDesc: $("#net-preset-desc"),
    rootType: $("#net-root-type"),
    error: $("#net-error"),
    stale: $("#net-stale"),
    diagram: $("#net-diagram"),
    note: $("#net-note"),
    sum: $("#net-sum"),
    table: $("#net-table-panel"),
    repr: $("#net-repr"),
    code: $("#net-code"),
  };
  let selected = null; // field of the layer being edited
  let editorFor = null; // {field, type} the child form was built for
  let result = null; // last /api/shape response (null after an error)
  let error = null; // last error body
  let graph = null;
  let lastGood = null; // last graph whose shapes all fit (new layers are fitted to it)
  let runSeq = 0;
  let runCtl = null;
  let codeCtl = null;
  let lastCodeRequest = null; // the body of the run whose output is drawn (its .npy link asks the same)
  let renders = 0;
  let rootType = null;

  const netForm = createConfigForm(root.querySelector("#net-form"), { onEdit: onNetFormEdit });
  const childForm = createConfigForm(els.childForm, { onEdit: onChildEdit });

  // ---------- static controls ----------
  const addable = addableTypes(catalog);
  const families = catalog.families?.length ? catalog.families : [...new Set(addable.map((l) => l.family))];
  for (const fam of families) {
    const entries = addable.filter((l) => l.family === fam);
    if (!entries.length) continue;
    const og = document.createElement("optgroup");
    og.label = fam;
    for (const e of entries) og.append(new Option(e.type, e.type));
    els.addType.append(og);
  }
  // the first dense layer of the catalog (Linear) is what a new layer defaults to
  els.addType.value = (addable.find((l) => l.explain === "linear") ?? addable[0])?.type;
  els.shortcut.append(new Option("identity (no layer)", ""));
  for (const fam of families) {
    const entries = addable.filter((l) => l.family === fam && !isContainer({ type: l.type }));
    if (!entries.length) continue;
    const og = document.createElement("optgroup");
    og.label = fam;
    for (const e of entries) og.append(new Option(e.type, e.type));
    els.shortcut.append(og);
  }
  for (const p of presets) els.preset.append(new Option(p.name, p.id));
  // the dataflow graph, collapsed by module; every drawing (an edit's, or an expand/collapse) is lit
  // again with the receptive field, collapsed blocks by how much of them it touches
  let graphPanel = null;
  const rfPanel = createRfPanel(root, {
    setStatus,
    store,
    membersOf: (id) => graphPanel?.membersOf(id) ?? [id],
    // train: false is eval mode for the whole network (running statistics, no dropout); the link keeps it
    setTrain: (on) => {
      const next = { ...request() };
      if (on) delete next.train;
      else next.train = false;
      store.update({ request: next }, "edit");
      runNow();
    },
  });
  // zoom and pan, cost colouring, the selected node's details, the graph's and the trace's exports
  const graphTools = createGraphTools(root, { store, onStatus: (msg, kind) => setStatus?.(msg, kind) });
  graphPanel = createGraphPanel(root, { store, tools: graphTools, onDrawn: () => rfPanel.annotateGraph() });
  // find brings the node into the zoomed view (not by scrolling the page): centred at 1:1, selected,
  // its details beside the graph
  graphPanel.centreOn = (id, el) => {
    centreOnNode(root.querySelector("#net-graph"), id, 1);
    const node = graphPanel.visible?.nodes.find((n) => n.id === id);
    if (node) graphTools.select(node);
    if (el?.getAttribute("tabindex") !== null) el?.focus({ preventScroll: true });
  };
  // A pasted model opens like a preset (the whole request replaced, view and link updated).
  mountPaste(root, { setStatus, onOpen: (request) => onPreset({ id: "", name: "pasted code", request }) });

  els.preset.addEventListener("change", () => {
    const p = presets.find((x) => x.id === els.preset.value);
    if (p) onPreset(p);
  });
  els.add.addEventListener("click", addLayer);
  els.open.addEventListener("click", () => {
    const it = itemAt(selected);
    if (it && canPick(it)) onDrill(drillTarget(it));
  });
  els.wrap.addEventListener("click", () => {
    if (!selected) return;
    const r = wrapResidual(request(), selected);
    commit(r.request, r.field);
  });
  els.unwrap.addEventListener("click", () => {
    if (!selected) return;
    const r = unwrap(request(), selected);
    commit(r.request, r.field);
  });
  const nameEdit = debounce(() => {
    if (!selected) return;
    const cfg = { ...getField(request(), selected) };
    const v = els.name.value.trim();
    if (v) cfg.name = v;
    else delete cfg.name;
    // The field stays the same; the module path changes with the name.
    store.update({ request: setField(request(), selected, cfg) }, "edit");
    edited();
    scheduleRun();
  }, 400);
  els.name.addEventListener("input", nameEdit);
  els.shortcut.addEventListener("change", () => {
    if (!selected) return;
    const type = els.shortcut.value;
    const field = `${selected}.${skipSlotOf(getField(request(), selected))}`;
    let cfg = null;
    if (type) {
      const entry = byType.get(type);
      const it = itemAt(selected);
      // A projection: from the block's input to the body's output, so the two can be added.
      cfg = fitToOutput(fitToInput(deepCopy(entry?.example?.layer || { type }), entry, it?.inShape), entry, it?.bodyOut);
    }
    commit(setField(request(), field, cfg), selected);
  });
  wireCopy($("#net-copy-code"), () => els.code.textContent);
  $("#net-export-svg").addEventListener("click", () => exportFile("svg"));
  $("#net-export-png").addEventListener("click", () => exportFile("png"));

  async function exportFile(kind) {
    const svg = els.diagram.querySelector("svg.drawing");
    if (!svg) return;
    try {
      if (kind === "svg") exportSvg(svg, "network.svg");
      else await exportPng(svg, "network.png");
    } catch (e) {
      setStatus(`Export failed: ${e.message}`, "error");
    }
  }

  const scheduleRun = debounce(runNow, RUN_DEBOUNCE_MS);

  function request() {
    return store.get().request;
  }

  function itemAt(field) {
    return graph ? walk(graph.root).find((it) => it.field === field) || null : null;
  }

  function canPick(it) {
    // an opaque layer is never run by the server: nothing inside it to open
    return it.kind === "layer" && !isOpaque(it.config) && Array.isArray(it.inShapes) && it.inShapes.every(Array.isArray) && it.status !== "unreached" && it.status !== "unbuilt";
  }

  function drillTarget(it) {
    return { field: it.field, path: it.path, inputs: it.inShapes.map((s) => [...s]), type: it.type };
  }

  function pickable(path) {
    const it = graph ? walk(graph.root).find((x) => x.path === path && x.kind === "layer") : null;
    return it && canPick(it) ? it : null;
  }

  function edited() {
    els.preset.value = "";
    els.presetDesc.textContent = "";
  }

  // A structural edit (buttons): store it, redraw the builder from the config at once, run now.
  function commit(next, select = selected) {
    store.update({ request: next }, "edit");
    selected = select && getField(next, select) !== undefined ? select : null;
    editorFor = null; // the selected field may now hold another layer: rebuild its form
    edited();
    graph = buildGraph(next, {});
    renderBuilder();
    runNow();
  }

  // ---------- edits ----------
  function addLayer() {
    const type = els.addType.value;
    const entry = byType.get(type);
    if (!entry) return;
    const point = insertionPoint(request(), selected);
    // The shape that will flow into the new layer: from the drawing, else from the last network
    // whose shapes fit (while a run is still on its way, or after a failure).
    const shapeAt = (g) => {
      if (!g) return null;
      const sel = selected ? walk(g.root).find((it) => it.field === selected) : null;
      return (sel && splitItem(selected) ? sel.outShape : g.outputShape) ?? null;
    };
    const shape = shapeAt(graph) ?? shapeAt(lastGood);
    const cfg = fitToInput(deepCopy(entry.example?.layer || { type }), entry, shape);
    delete cfg.name;
    const next = insert(point.request, point.list, point.index, cfg);
    commit(next, `${point.list}[${point.index}]`);
    setStatus(`added ${type}`, "busy");
  }

  function onNetFormEdit(req, errors) {
    const cur = request();
    const { layer, inputs: _i, seed: _s, device: _d, dtype: _t, ...rest } = cur;
    const next = { ...rest, ...req, layer };
    store.update({ request: next }, "edit");
    edited();
    if (Object.keys(errors).length) {
      scheduleRun.cancel();
      runCtl?.abort();
      netForm.showErrors(errors);
      markStale(true, "Fix the highlighted field; the diagram shows the last valid network.");
      return;
    }
    netForm.clearErrors();
    setStatus("editing…", "busy");
    scheduleRun();
  }

  function onChildEdit(req, errors) {
    if (!selected) return;
    const old = getField(request(), selected) || {};
    const cfg = { ...req.layer };
    // Keys the form does not edit (the name, a container's layers) come from the current config,
    // not from the one the form was built with: the name may have changed since.
    for (const k of ["name", ...slotsOf(old)]) {
      if (k in old) cfg[k] = old[k];
      else delete cfg[k];
    }
    store.update({ request: setField(request(), selected, cfg) }, "edit");
    edited();
    if (Object.keys(errors).length) {
      scheduleRun.cancel();
      runCtl?.abort();
      childForm.showErrors(errors);
      markStale(true, "Fix the highlighted argument; the diagram shows the last valid network.");
      return;
    }
    childForm.clearErrors();
    setStatus("editing…", "busy");
    scheduleRun();
  }

  function clearNameError() {
    els.nameError.textContent = "";
    els.nameRow.classList.remove("invalid");
  }

  function markStale(on, msg = "") {
    root.classList.toggle("stale", on);
    els.stale.hidden = !on;
    els.stale.textContent = msg;
  }

  // ---------- run ----------
  async function runNow() {
    scheduleRun.cancel();
    const req = request();
    runCtl?.abort();
    codeCtl?.abort();
    runCtl = new AbortController();
    const seq = ++runSeq;
    setStatus("checking shapes…", "busy");
    root.setAttribute("aria-busy", "true");
    try {
      const res = await api.shape(req, { signal: runCtl.signal });
      if (seq !== runSeq) return;
      // the answer is in: the graph panel measures its first drawing from here ("graph:first")
      performance.mark("net:answer");
      result = res;
      error = null;
      netForm.clearErrors();
      childForm.clearErrors();
      clearNameError();
      markStale(false);
      render();
      activations.update(req, res);
      textPanel.update(res, req);
      setStatus(`${res.totals?.param_count?.toLocaleString("en") ?? res.param_count} parameters; shapes fit`, "ok");
      fetchCode(req, seq);
    } catch (e) {
      if (isAbort(e) || seq !== runSeq) return;
      if (e instanceof ApiError) {
        result = null;
        error = { ...(e.body || {}), detail: e.detail, status: e.status, field: e.field };
        markStale(false);
        render();
        showApiError(e);
        setStatus(e.words, "error");
      } else {
        markStale(Boolean(graph), "The server could not be reached.");
        setStatus(`network error: ${e.message}`, "error");
      }
    } finally {
      if (seq === runSeq) root.setAttribute("aria-busy", "false");
    }
  }

  async function fetchCode(req, seq) {
    codeCtl = new AbortController();
    els.code.textContent = "# building the script…";
    try {
      const run = await api.run(req, { signal: codeCtl.signal });
      if (seq !== runSeq) return;
      lastCodeRequest = req;
      els.code.textContent = run.code || "# the server sent no script";
      rfPanel.setRun(run);
      renderOutput(run, seq);
    } catch (e) {
      if (isAbort(e) || seq !== runSeq) return;
      els.code.textContent = `# The network could not be run for a script: ${e instanceof ApiError ? e.detail : e.message}`;
    }
  }

  // The final output's values (the script's run), as the layer view's tensor cards: a heatmap with
  // values on hover, the numbers when small. Every output of a multi-output network gets a card.
  function renderOutput(run, seq) {
    const outs = run.outputs?.length ? run.outputs.map((o) => (o.same_as && o.same_as === run.output?.name ? run.output : o)) : run.output ? [run.output] : [];
    els.outPanel.hidden = !outs.length;
    renderTensorGroups(els.outBody, [["Output", "output", outs]], { cancelled: () => seq !== runSeq, request: lastCodeRequest });
  }

  function showApiError(e) {
    const f = e.field || "";
    // Names are checked on the list that holds them ("layer names must be unique").
    const list = selected ? splitItem(selected)?.list : null;
    if (list && f === list && /name/.test(e.detail)) {
      els.nameError.textContent = e.detail;
      els.nameRow.classList.add("invalid");
    }
    if (!f.startsWith("layer")) {
      netForm.showErrors({ [f]: e.detail });
      return;
    }
    // A bad argument: open that layer's arguments, so the message sits beside the bad value.
    const it = graph?.bad;
    if (it && it.kind === "layer" && e.code !== "shape_mismatch" && selected !== it.field) select(it.field);
    if (childErrors()) childForm.showApiError(e, { prefix: selected });
  }

  // The last error, as the selected layer's form shows it: "layer.layers[2].in_features" → "layer.in_features".
  function childErrors() {
    const f = error?.field || "";
    if (!selected || !f) return null;
    if (f !== selected && !f.startsWith(`${selected}.`) && !f.startsWith(`${selected}[`)) return null;
    const rest = f.slice(selected.length);
    return { [rest ? `layer${rest}` : ""]: error.detail };
  }

  // ---------- render ----------
  function render() {
    const req = request();
    graph = buildGraph(req, { result, error });
    if (result) lastGood = graph;
    renderBuilder();
    renderDiagram();
    renderNetTable(els.table, { result, error, failed: graph.bad, pickable, onPick: (it) => onDrill(drillTarget(it)) });
    renderSummary();
    graphPanel.render({ result, builder: graph, pickable, onDrill: (it) => onDrill(drillTarget(it)), onDrillInner: onDrill, onOther: (node) => rfPanel.choose(node.id) });
    rfPanel.update(req, result);
    els.repr.textContent = result?.repr || "(built once the shapes fit)";
    // A single module with submodules of its own (a transformer layer, the tutorial's block): its
    // wiring is its forward(), not a chain, so the drawing keeps it whole and the table lists them.
    const inner = graph.root.kind === "layer" && result?.trace?.length;
    els.note.hidden = !inner;
    els.note.textContent = inner
      ? `${graph.root.type} is one module: its ${result.trace.length} submodules are listed in the summary, in the order they run; the dataflow graph below shows how its forward() connects them. Add a layer to make it part of a Sequential.`
      : "";
    if (!result) {
      els.code.textContent = "# the network's shapes must fit before it can run";
      els.outPanel.hidden = true;
    }
    els.error.hidden = !error;
    els.error.textContent = error ? error.detail : "";
    if (error?.path !== undefined && error?.path !== null) els.error.dataset.path = error.path;
    else delete els.error.dataset.path;
    root.dataset.renders = String(++renders);
    root.dataset.state = error ? "error" : "ok";
  }

  function renderDiagram() {
    const width = Math.max(300, els.diagram.clientWidth || 640);
    drawNetwork(els.diagram, graph, {
      width,
      message: error ? error.detail : "",
      selected,
      canPick,
      onPick: (it) => onDrill(drillTarget(it)),
    });
    lastWidth = width;
  }

  function renderSummary() {
    const items = [];
    if (result) {
      const t = result.totals || { param_count: result.param_count };
      items.push(["params", t.param_count.toLocaleString("en"), "net-total-params", t.param_count]);
      if (t.macs !== undefined && t.macs !== null) items.push(["mult-adds", `${t.macs_complete ? "" : "≥ "}${fmtCount(t.macs)}`]);
      // a network that returns a tuple (Inception-v3 with its auxiliary head): every output by name, with its shape
      const outs = result.output_shapes?.length > 1 ? result.output_shapes : null;
      if (outs) items.push([`${outs.length} outputs`, outs.map((s, i) => `${result.output_names?.[i] ?? `output ${i}`} ${shapeStr(s)}`).join(", ")]);
      else items.push(["output", shapeStr(result.output_shape)]);
    } else if (error) items.push(["network", error.error === "shape_mismatch" ? "shapes do not fit" : "not built", "net-total-params", ""]);
    els.sum.replaceChildren(
      ...items.map(([k, v, id, value]) => {
        const d = document.createElement("div");
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        if (id) {
          dd.id = id;
          dd.dataset.value = String(value);
        }
        d.append(dt, dd);
        return d;
      }),
    );
  }

  function renderBuilder() {
    const req = request();
    if (!graph) graph = buildGraph(req, {});
    if (req.layer?.type !== rootType) {
      rootType = req.layer?.type;
      els.rootType.textContent = rootType;
    }
    renderNetTree(els.tree, graph, {
      selected,
      onSelect: (f) => select(f),
      // The selection follows a moved layer; any other edit of the list lets it go, as fields shift.
      onMove(field, delta) {
        const r = move(request(), field, delta);
        commit(r.request, selected === field ? r.field : null);
      },
      onRemove(field) {
        commit(remove(request(), field), null);
      },
    });
    renderEditor();
    const sel = selected ? itemAt(selected) : null;
    els.addHint.textContent = sel && splitItem(selected) ? `Adds after ${sel.path} (${sel.type}).` : "Adds at the end of the network.";
  }

  function select(field) {
    if (field !== selected) clearNameError();
    selected = field;
    renderBuilder();
    // Mark the selection in the drawing without redrawing it.
    for (const n of els.diagram.querySelectorAll(".net-node, .net-group")) n.classList.toggle("selected", n.dataset.field === field);
  }

  function renderEditor() {
    const cfg = selected ? getField(request(), selected) : null;
    if (!cfg) {
      els.editor.hidden = true;
      editorFor = null;
      return;
    }
    els.editor.hidden = false;
    const it = itemAt(selected);
    const path = it?.path ?? "";
    els.editorH.textContent = `${path || "network"} · ${cfg.type}`;
    const inList = Boolean(splitItem(selected));
    els.nameRow.hidden = !inList;
    if (document.activeElement !== els.name) els.name.value = cfg.name ?? "";
    els.name.placeholder = inList ? String(splitItem(selected).index) : "";
    const skip = skipSlotOf(cfg);
    els.scRow.hidden = !skip;
    if (skip) els.shortcut.value = cfg[skip]?.type && [...els.shortcut.options].some((o) => o.value === cfg[skip].type) ? cfg[skip].type : "";
    els.unwrap.hidden = !(isSum(cfg) || (isChain(cfg) && selected !== "layer"));
    els.wrap.hidden = false;
    els.open.hidden = isContainer(cfg);
    els.open.disabled = !(it && canPick(it));
    els.open.title = els.open.disabled ? "Its input shape is not known yet: fix the network first" : "Open this layer's own view on the input it receives here";
    // Rebuild the argument form only when the selection (or its type) changes, so typing keeps focus.
    const key = `${selected}|${cfg.type}`;
    if (editorFor !== key) {
      editorFor = key;
      const entry = byType.get(cfg.type);
      if (!entry || isContainer(cfg)) {
        els.childForm.hidden = true;
      } else {
        els.childForm.hidden = false;
        childForm.load(entry, { layer: cfg }, devices);
        if (childErrors()) childForm.showApiError({ field: error.field, detail: error.detail, related: error.related || [] }, { prefix: selected });
      }
    }
  }

  // Width changes redraw the diagram from the last response.
  let lastWidth = 0;
  const ro = new ResizeObserver(
    debounce(() => {
      if (root.hidden || !graph) return;
      const w = els.diagram.clientWidth;
      if (Math.abs(w - lastWidth) < 8) return;
      renderDiagram();
    }, 150),
  );
  ro.observe(els.diagram);

  return {
    load(req, { select: sel = null, presetId = "" } = {}) {
      if (!req.inputs) {
        const entry = byType.get(req.layer.type);
        if (entry?.example?.inputs) req = { ...req, inputs: entry.example.inputs };
      }
      store.update({ request: req }, "load");
      const entry = byType.get(req.layer.type);
      const formEntry = {
        type: req.layer.type,
        family: entry?.family ?? "network",
        params: [],
        inputs: isContainer(req.layer) ? NETWORK_INPUTS : entry?.inputs || NETWORK_INPUTS,
      };
      netForm.load(formEntry, req, devices);
      result = null;
      error = null;
      graph = buildGraph(req, {});
      selected = sel && getField(req, sel) !== undefined ? sel : null;
      editorFor = null;
      els.preset.value = presetId;
      const p = presets.find((x) => x.id === presetId);
      els.presetDesc.replaceChildren(...inlineCode(p?.description || ""));
      renderBuilder();
      markStale(false);
      runNow();
      return true;
    },
    show() {
      root.hidden = false;
    },
    hide() {
      root.hidden = true;
    },
    get graph() {
      return graph;
    },
    // the dataflow-graph panel: reveal(id), toggle(key), and `centreOn`, which a zooming view replaces
    get graphPanel() {
      return graphPanel;
    },
  };
}
