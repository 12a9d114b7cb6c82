// Entry point: loads the catalog and devices, restores the state from the URL, mounts the catalog
// and the active view, and keeps the address bar in step with the state.

import { api } from "./api.js";
import { createStore, initialState, decodeQuery, encodeQuery, shareUrl, DEFAULT_REQUEST, DEFAULT_UI } from "./state.js";
import { createCatalog } from "./ui/catalog.js";
import { createLayerView } from "./views/layer-view.js";
import { wireCopy } from "./ui/params.js";
import { deepCopy } from "./util/format.js";

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

async function boot() {
  const store = createStore(initialState());
  setStatus("loading catalog…", "busy");
  let catalog;
  let devices = null;
  try {
    [catalog, devices] = await Promise.all([api.layers(), api.devices().catch(() => null)]);
  } catch (e) {
    setStatus(`The catalog could not be loaded: ${e.message}`, "error");
    document.body.dataset.ready = "error";
    return;
  }
  const byType = new Map(catalog.layers.map((l) => [l.type, l]));

  // One entry per view; a network view registers here and is chosen by state.ui.view.
  const views = {
    layer: createLayerView(document.querySelector("#layer-view"), { store, byType, devices, setStatus }),
  };
  let active = views.layer;

  const catalogUi = createCatalog(document.querySelector("#catalog"), {
    onSelect(entry) {
      const current = store.get().request;
      const request = deepCopy(entry.example || { layer: { type: entry.type } });
      request.layer ??= { type: entry.type };
      // Device and dtype are the user's machine choice, not part of the layer: keep them.
      if (current.device) request.device = current.device;
      if (current.dtype) request.dtype = current.dtype;
      store.update({ ui: { ...DEFAULT_UI } }, "ui");
      if (active.load(request)) catalogUi.setCurrent(entry.type);
      document.querySelector("#config-form")?.querySelector("input, select, textarea")?.focus({ preventScroll: true });
    },
  });
  catalogUi.setCatalog(catalog);

  const decoded = decodeQuery(window.location.search);
  if (decoded.error) setNotice(decoded.error);
  store.update({ ui: decoded.ui }, "load");
  let request = decoded.request;
  if (!request || !byType.has(request.layer.type)) {
    if (request) setNotice(`The link asks for an unknown layer type “${request.layer.type}”; showing the default view instead.`);
    const fallback = byType.has(DEFAULT_REQUEST.layer.type) ? DEFAULT_REQUEST : byType.values().next().value?.example;
    request = deepCopy(fallback);
  }
  active = views[store.get().ui.view] || views.layer;
  active.show();
  active.load(request);
  catalogUi.setCurrent(request.layer.type);

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

  wireCopy(document.querySelector("#share-btn"), () => shareUrl(store.get()));
  document.body.dataset.ready = "true";
}

boot();
