// Entry point: loads the catalog, presets and devices, restores the state from the URL, mounts the
// catalog and the active view (single layer or network), moves between them (a network's layer
// opens in the layer view and comes back), and keeps the address bar in step with the state.

import { api } from "./api.js";
import { createStore, initialState, decodeQuery, encodeQuery, shareUrl, canonicalRequest, DEFAULT_REQUEST, DEFAULT_UI } from "./state.js";
import { createCatalog } from "./ui/catalog.js";
import { createLessonBar } from "./ui/lesson.js";
import { keepFieldsAboveDock } from "./ui/dock.js";
import { createLayerView } from "./views/layer-view.js";
import { createNetworkView } from "./views/network-view.js";
import { wireCopy } from "./ui/params.js";
import { deepCopy } from "./util/format.js";
import { isContainer, childRequest, setCatalog, withChild } from "./net/model.js";
import { splitText } from "./ui/text-panel.js";

const statusEl = document.querySelector("#status");
function setStatus(text, kind = "ok") {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
}

// A message about the link itself (unreadable config, unknown layer) that outlives the status line.
function setNotice(text) {
  const el = document.querySelector("#notice");
  el.querySelector("span").textContent = text;
  el.hidden = !text;
}
document.querySelector("#notice-close").addEventListener("click", () => setNotice(""));

// The state in the link: its query, or where the query would pass the server's 16 KiB limit on a request
// head (a big network opened from Python, layer_explorer.explore), the same parameters after "#", which
// the browser never sends. The address bar then gets the query form (replaceState below).
function linkState() {
  const { search, hash } = window.location;
  return hash.startsWith("#config=") ? `?${hash.slice(1)}` : search;
}

async function boot() {
  const store = createStore(initialState());
  setStatus("loading catalog…", "busy");
  let catalog;
  let devices = null;
  let presets = [];
  let lesson = null;
  try {
    [catalog, devices, presets, lesson] = await Promise.all([
      api.layers(),
      api.devices().catch(() => null),
      api.presets().then((r) => r.presets || [], () => []),
      api.lesson().catch(() => null),
    ]);
  } catch (e) {
    setStatus(`The catalog could not be loaded: ${e.message}`, "error");
    document.body.dataset.ready = "error";
    return;
  }
  const byType = new Map(catalog.layers.map((l) => [l.type, l]));
  setCatalog(catalog); // the network model reads container facts from it

  // Device and dtype are the user's machine choice, not part of a layer or preset: keep them.
  function keepMachine(request) {
    const current = store.get().request;
    if (current.device) request.device = current.device;
    if (current.dtype) request.dtype = current.dtype;
    return request;
  }

  // One entry per view, chosen by state.ui.view.
  const views = {
    layer: createLayerView(document.querySelector("#layer-view"), { store, byType, devices, setStatus, onLeaveDrill: leaveDrill }),
    network: createNetworkView(document.querySelector("#network-view"), {
      store,
      byType,
      catalog,
      devices,
      presets,
      setStatus,
      onDrill: drill,
      onPreset: openPreset,
    }),
  };
  let active = null;

  function show(name, request, opts) {
    const next = views[name] || views.layer;
    if (active && active !== next) active.hide();
    active = next;
    active.show();
    const ok = active.load(request, opts);
    if (ok !== false) catalogUi.setCurrent(request.layer.type);
    return ok;
  }

  function viewFor(request, ui) {
    if (ui.drill) return "layer";
    return ui.view === "network" || isContainer(request.layer) ? "network" : "layer";
  }

  const catalogUi = createCatalog(document.querySelector("#catalog"), {
    onSelect(entry) {
      const request = keepMachine(deepCopy(entry.example || { layer: { type: entry.type } }));
      request.layer ??= { type: entry.type };
      const view = isContainer(request.layer) ? "network" : "layer";
      store.update({ ui: { ...DEFAULT_UI, view } }, "ui");
      show(view, request);
      const form = document.querySelector(view === "network" ? "#net-form" : "#config-form");
      form?.querySelector("input, select, textarea")?.focus({ preventScroll: true });
    },
    onPreset: openPreset,
  });
  catalogUi.setCatalog(catalog);
  catalogUi.setPresets(presets);

  function openPreset(preset) {
    // a text input (the text preset's) goes to the text panel; the form edits its (1, L) shape
    const { request, text } = splitText(keepMachine(deepCopy(preset.request)));
    store.update({ ui: { ...DEFAULT_UI, view: "network", text } }, "ui");
    show("network", request, { presetId: preset.id });
    catalogUi.setCurrent(`preset:${preset.id}`);
    setStatus(`preset: ${preset.name}`, "busy");
  }

  // A layer of the network opens in the layer view, on the input shapes it receives there. The
  // network stays in ui.drill (and so in the link); the browser's Back returns to it.
  function drill({ field, path, inputs }) {
    const network = store.get().request;
    const request = childRequest(network, field, inputs);
    window.history.pushState(null, "", window.location.search);
    const { lesson: step } = store.get().ui; // a layer opened from a lesson step stays in the lesson
    store.update({ ui: { ...DEFAULT_UI, view: "layer", lesson: step, drill: { network, field, path, inputs } } }, "ui");
    show("layer", request);
    window.scrollTo({ top: 0 });
  }

  // Back to the network, with the layer as it was edited here.
  function leaveDrill() {
    const d = store.get().ui.drill;
    if (!d) return;
    const layer = store.get().request.layer;
    const network = d.field === "layer" ? { ...d.network, layer } : withChild(d.network, d.field, layer);
    store.update({ ui: { ...DEFAULT_UI, view: "network", lesson: store.get().ui.lesson } }, "ui");
    show("network", network, { select: d.field });
  }

  // The lesson: each step opens its layer (or the network preset) as the tutorial sets it up, with
  // an element pinned where the step explains one; the step id travels in the link (ui.lesson).
  const lessonBar = createLessonBar(document.querySelector("#lesson"), {
    steps: lesson?.steps ?? [],
    onOpen: openStep,
    onCode: showCode,
    onClose: () => store.update({ ui: { lesson: null } }, "ui"),
  });
  const lessonBtn = document.querySelector("#lesson-btn");
  lessonBtn.hidden = !lesson?.steps?.length;
  lessonBtn.addEventListener("click", () => {
    const open = lessonBar.current;
    // a second press while in the lesson brings back the current step as the tutorial set it up
    openStep(open ?? lessonBar.first());
  });

  function openStep(step) {
    const request = keepMachine(deepCopy(step.request));
    window.history.pushState(null, "", window.location.search);
    store.update({ ui: { ...DEFAULT_UI, view: step.view, lesson: step.id, pinned: step.pinned ? deepCopy(step.pinned) : null } }, "ui");
    show(step.view, request, step.preset ? { presetId: step.preset } : undefined);
    if (step.preset) catalogUi.setCurrent(`preset:${step.preset}`);
    window.scrollTo({ top: 0 });
  }

  // The step's PyTorch code is the answer's reproduction script: unfold it and bring it into view.
  function showCode() {
    const layerView = store.get().ui.view !== "network";
    if (layerView) {
      const fold = document.querySelector("#code-fold");
      if (fold.hasAttribute("data-folded")) fold.querySelector(".fold-toggle").click();
    }
    const panel = document.querySelector(layerView ? "#code-panel" : "#net-code-panel");
    panel.scrollIntoView({ block: "start" });
    panel.querySelector("pre.code").focus({ preventScroll: true });
  }

  function openFromQuery(search, { notice = true } = {}) {
    const decoded = decodeQuery(search);
    if (decoded.error && notice) setNotice(decoded.error);
    let request = decoded.request;
    let ui = decoded.ui;
    if (!request || !byType.has(request.layer.type)) {
      if (request && notice) setNotice(`The link asks for an unknown layer type “${request.layer.type}”; showing the default view instead.`);
      const fallback = byType.has(DEFAULT_REQUEST.layer.type) ? DEFAULT_REQUEST : byType.values().next().value?.example;
      request = deepCopy(fallback);
      ui = { ...DEFAULT_UI };
    }
    // an API body with a text input (a pasted link): the text to the text panel, its (1, L) shape to the form
    const split = splitText(request);
    if (split.text) {
      request = split.request;
      ui = { ...ui, text: split.text };
    }
    const view = viewFor(request, ui);
    if (ui.lesson !== null && !lessonBar.has(ui.lesson)) ui = { ...ui, lesson: null };
    store.update({ ui: { ...ui, view } }, "load");
    // a lesson step's network, as the step opened it, is still that preset
    const step = lesson?.steps?.find((s) => s.id === ui.lesson);
    const same = step?.preset && JSON.stringify(canonicalRequest(step.request)) === JSON.stringify(canonicalRequest(request));
    show(view, request, same ? { presetId: step.preset } : undefined);
    if (same) catalogUi.setCurrent(`preset:${step.preset}`);
  }

  store.subscribe((state, prev) => {
    if (state.ui.lesson !== prev.ui.lesson) lessonBar.render(state.ui.lesson);
    lessonBtn.setAttribute("aria-pressed", String(state.ui.lesson !== null));
  });
  openFromQuery(linkState());
  lessonBar.render(store.get().ui.lesson);
  lessonBtn.setAttribute("aria-pressed", String(store.get().ui.lesson !== null));
  window.addEventListener("popstate", () => openFromQuery(window.location.search, { notice: false }));

  // An edited preset is no longer that preset: the catalog stops highlighting it.
  store.subscribe((state, prev, reason) => {
    if (reason === "edit" && state.request !== prev.request && state.ui.view === "network") catalogUi.setCurrent(state.request.layer.type);
  });

  // The address bar follows every edit without adding history entries.
  let lastQuery = "";
  store.subscribe((state) => {
    const q = encodeQuery(state);
    if (q !== lastQuery) {
      lastQuery = q;
      window.history.replaceState(null, "", q);
    }
  });
  window.history.replaceState(null, "", (lastQuery = encodeQuery(store.get())));

  keepFieldsAboveDock(document.querySelector("#config-form"), document.querySelector("#diagram-panel"));
  keepFieldsAboveDock(document.querySelector("#net-form"), document.querySelector("#net-diagram-panel"));
  wireCopy(document.querySelector("#share-btn"), () => shareUrl(store.get()));
  document.body.dataset.ready = "true";
}

boot();
