// Layer Explorer's notebook widget (anywidget): the web page's own ES modules, drawing a network inline.
//
// The kernel sends the page's modules as the `_modules` trait ({"js/api.js": source, ...}); they are
// loaded here from blob: URLs, each relative import pointed at its dependency's URL, so the widget runs
// the page's code unchanged, with no server to fetch it from. The page's API module gets a transport
// that posts each request to the kernel as a widget message; the kernel answers with the functions the
// server's workers call (layer_explorer/widget.py LocalApi).

const IMPORT_RE = /(\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}\/[^"']+)\2/g;

function resolve(base, spec) {
  const parts = base.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

// path -> blob: URL of that module with its relative imports rewritten (dependencies first).
export function moduleLoader(sources) {
  const urls = new Map();
  const busy = new Set();
  function url(path) {
    if (urls.has(path)) return urls.get(path);
    if (!(path in sources)) throw new Error(`the widget was not sent the module ${path}`);
    if (busy.has(path)) throw new Error(`import cycle through ${path}`);
    busy.add(path);
    const text = sources[path].replace(IMPORT_RE, (m, pre, q, spec) => {
      const dep = resolve(path, spec);
      return dep in sources ? `${pre}${q}${url(dep)}${q}` : m;
    });
    busy.delete(path);
    const u = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
    urls.set(path, u);
    return u;
  }
  return { url, load: (path) => import(url(path)), revoke: () => urls.forEach((u) => URL.revokeObjectURL(u)) };
}

// fetch(url, init) over the widget's messages: {kind: "request", id, method, url, body} to the kernel,
// {kind: "response", id, status, type} and the body's bytes back.
export function kernelTransport(model) {
  let next = 0;
  const waiting = new Map();
  const onMessage = (msg, buffers) => {
    if (msg?.kind !== "response" || !waiting.has(msg.id)) return;
    const { resolve } = waiting.get(msg.id);
    waiting.delete(msg.id);
    const b = buffers?.[0];
    const bytes = b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice() : new Uint8Array();
    resolve(new Response(bytes, { status: msg.status, headers: { "content-type": msg.type || "application/json" } }));
  };
  model.on("msg:custom", onMessage);
  const transport = (url, init = {}) =>
    new Promise((resolve, reject) => {
      const abort = () => reject(new DOMException("The request was cancelled", "AbortError"));
      if (init.signal?.aborted) return abort();
      const id = ++next;
      waiting.set(id, { resolve });
      init.signal?.addEventListener("abort", () => waiting.delete(id) && abort());
      const body = typeof init.body === "string" ? init.body : null;
      model.send({ kind: "request", id, method: init.method || "GET", url: String(url), body });
    });
  transport.close = () => model.off("msg:custom", onMessage);
  return transport;
}

const MAX_MAPS = 8;
const MAP_PX = 56; // the side each output channel is drawn at (pixelated)

const TABS = [
  ["flow", "Flow"],
  ["graph", "Dataflow graph"],
  ["table", "Summary"],
];

const MARKUP = `
<div class="lew" data-ready="false">
  <header class="lew-head">
    <h2 class="lew-title"></h2>
    <dl class="net-totals-list lew-totals"></dl>
  </header>
  <p class="lew-note" hidden></p>
  <p class="lew-error" role="alert" hidden></p>
  <div class="lew-tabs" role="tablist" aria-label="Views of the network">
    ${TABS.map(([id, label]) => `<button type="button" role="tab" data-tab="${id}" aria-selected="false">${label}</button>`).join("")}
  </div>
  <div class="lew-body">
    <div class="lew-panes">
      <section class="lew-pane" data-pane="flow" role="tabpanel"><div id="net-diagram" class="drawing-host"></div></section>
      <section class="lew-pane" data-pane="graph" role="tabpanel" hidden>
        <p id="net-graph-meta" class="df-meta"></p>
        <div id="net-graph-tools" class="df-tools" hidden>
          <div class="df-find">
            <label for="net-graph-find">Find</label>
            <input id="net-graph-find" type="search" role="combobox" autocomplete="off" spellcheck="false"
                   aria-autocomplete="list" aria-expanded="false" aria-controls="net-graph-suggest">
            <ul id="net-graph-suggest" class="df-suggest" role="listbox" aria-label="Matching nodes" hidden></ul>
          </div>
          <button type="button" id="net-graph-expand-all">Expand all</button>
          <button type="button" id="net-graph-collapse-all">Collapse all</button>
          <span id="net-graph-count" class="df-count" aria-live="polite"></span>
        </div>
        <div id="net-graph" class="drawing-host"></div>
      </section>
      <section class="lew-pane" data-pane="table" role="tabpanel" hidden>
        <div id="net-table-panel">
          <div class="table-wrap">
            <table class="params net-table">
              <thead><tr><th scope="col">Layer (path, type)</th><th scope="col">Output shape</th><th scope="col" class="num">Param #</th><th scope="col" class="num">Mult-adds</th></tr></thead>
              <tbody></tbody>
              <tfoot></tfoot>
            </table>
          </div>
          <dl class="net-totals-list"></dl>
        </div>
      </section>
    </div>
    <aside class="lew-layer panel" aria-live="polite">
      <h3 class="lew-layer-h">A layer as it ran</h3>
      <p class="lew-layer-body aside">Click a layer to see its input, output and parameters as they were in this forward pass.</p>
    </aside>
  </div>
</div>`;

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The page's tooltip lives on document.body, outside the widget's shadow root: its rule goes there once.
function tooltipStyle(css) {
  if (document.querySelector("style[data-layer-explorer-tooltip]")) return;
  const rule = css.match(/\.tooltip\s*\{[^}]*\}/)?.[0];
  if (!rule) return;
  const style = document.createElement("style");
  style.dataset.layerExplorerTooltip = "";
  style.textContent = `body > ${rule}`;
  document.head.append(style);
}

async function render({ model, el }) {
  const host = document.createElement("div");
  host.className = "layer-explorer-widget";
  el.append(host);
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = model.get("_css") || "";
  root.append(style);
  const wrap = document.createElement("div");
  wrap.innerHTML = MARKUP;
  root.append(wrap.firstElementChild);
  const $ = (sel) => root.querySelector(sel);
  const top = $(".lew");
  tooltipStyle(model.get("_css") || "");

  const loader = moduleLoader(model.get("_modules") || {});
  const transport = kernelTransport(model);
  let modules;
  try {
    const paths = ["js/api.js", "js/util/format.js", "js/net/model.js", "js/draw/network.js", "js/net/graph-panel.js", "js/ui/net-table.js", "js/util/npy.js", "js/geometry/kernels.js", "js/draw/samples.js"];
    const [api, fmt, model_, netDraw, graphPanel, table, npy, kernels, samples] = await Promise.all(paths.map((p) => loader.load(p)));
    modules = { api, fmt, model: model_, netDraw, graphPanel, table, npy, kernels, samples };
  } catch (e) {
    $(".lew-error").hidden = false;
    $(".lew-error").textContent = `The widget's modules could not be loaded: ${e.message}`;
    top.dataset.ready = "error";
    return () => transport.close();
  }
  const { api, fmt, netDraw, graphPanel, table, npy, kernels, samples } = modules;
  const net = modules.model;
  api.setTransport(transport);
  // one graph panel per widget: it keeps the expansion (big models open collapsed by module) between drawings
  const graphView = graphPanel.createGraphPanel(root);

  const config = model.get("config");
  let result = model.get("result") || null;
  let error = result?.error || null;
  if (error) result = null;
  let graph = null;
  let tab = null;
  let selected = null;

  $(".lew-title").textContent = model.get("title") || config.layer?.type || "network";
  const note = model.get("note");
  $(".lew-note").hidden = !note;
  $(".lew-note").textContent = note || "";

  const pickable = (path) => {
    const it = graph ? net.walk(graph.root).find((x) => x.path === path && x.kind === "layer") : null;
    return it && Array.isArray(it.inShapes) && it.status === "ok" ? it : null;
  };

  function showTab(id) {
    tab = id;
    for (const b of root.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === id));
    for (const p of root.querySelectorAll("[data-pane]")) p.hidden = p.dataset.pane !== id;
    if (id === "flow") drawFlow();
  }
  for (const b of root.querySelectorAll("[data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));

  function drawFlow() {
    const diagram = $("#net-diagram");
    netDraw.drawNetwork(diagram, graph, {
      width: Math.max(300, diagram.clientWidth || 640),
      message: error ? error.detail : "",
      selected,
      canPick: (it) => Boolean(pickable(it.path)),
      onPick: (it) => openLayer(it.path, it.type),
    });
  }

  function totals() {
    const items = [];
    if (result) {
      const t = result.totals || { param_count: result.param_count };
      items.push(["params", t.param_count.toLocaleString("en")]);
      if (t.macs !== undefined && t.macs !== null) items.push(["mult-adds", `${t.macs_complete ? "" : "≥ "}${net.fmtCount(t.macs)}`]);
      const outs = result.output_shapes?.length > 1 ? result.output_shapes : [result.output_shape];
      items.push([outs.length > 1 ? `${outs.length} outputs` : "output", outs.map((s) => fmt.shapeStr(s)).join(", ")]);
    }
    const shapes = (config.inputs || []).map((i) => (i.shape ? fmt.shapeStr(i.shape) : "")).filter(Boolean);
    if (shapes.length) items.unshift(["input", shapes.join(", ")]);
    $(".lew-totals").replaceChildren(
      ...items.map(([k, v]) => {
        const d = h("div");
        d.append(h("dt", "", k), h("dd", "", v));
        return d;
      }),
    );
  }

  // One layer as it ran inside the network: POST /api/run with its path (the kernel adds the module's
  // own parameters when explore() was asked for them).
  let seq = 0;
  async function openLayer(path, type) {
    selected = path;
    const mine = ++seq;
    const box = $(".lew-layer");
    box.querySelector(".lew-layer-h").textContent = `${path}: ${type}`;
    const body = box.querySelector(".lew-layer-body");
    body.className = "lew-layer-body aside";
    body.textContent = "running…";
    box.dataset.path = path;
    box.dataset.state = "busy";
    if (tab === "flow") drawFlow();
    markSelected();
    try {
      const run = await api.api.run(config, { path });
      if (mine !== seq) return;
      const maps = await featureMaps(run, path);
      if (mine !== seq) return;
      body.className = "lew-layer-body";
      body.replaceChildren(...layerFacts(run), ...(maps ? [maps] : []));
      box.dataset.state = "ok";
      // one column (a narrow notebook): the answer is below the drawing, bring it into view
      const r = box.getBoundingClientRect();
      if (r.top > window.innerHeight || r.bottom < 0) box.scrollIntoView({ block: "nearest" });
    } catch (e) {
      if (mine !== seq) return;
      body.className = "lew-layer-body lew-bad";
      body.textContent = e.message;
      box.dataset.state = "error";
    }
  }

  // the dataflow graph and the summary mark the layer shown (the flow draws its own selection)
  function markSelected() {
    for (const n of root.querySelectorAll(".df-node, .net-table tbody tr")) n.classList.toggle("lew-selected", n.dataset.path === selected);
  }

  function stats(t) {
    const s = t?.summary;
    if (!s) return "";
    return ["min", "max", "mean", "std"].filter((k) => s[k] !== undefined && s[k] !== null).map((k) => `${k} ${fmt.fmt(s[k], 3)}`).join(" · ");
  }

  // The layer's output channels as images (sample 0, diverging around zero): an (N, C, H, W) output whole,
  // as .npy (JSON carries a strided preview of a big map); a vector output as one strip.
  async function featureMaps(run, path) {
    const shape = run.output?.shape || [];
    let planes = [];
    let total = 0;
    if (shape.length === 4) {
      const res = await api.apiFetch("/api/run?format=npy", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...config, path }),
      });
      if (!res.ok) return null;
      planes = npy.npyPlanes(npy.parseNpy(await res.arrayBuffer()), MAX_MAPS);
      total = shape[1];
    } else if (shape.length === 2 && Array.isArray(run.output.data?.[0])) {
      planes = [[run.output.data[0]]];
      total = 1;
    }
    if (!planes.length) return null;
    const wrap = h("div", "lew-maps");
    wrap.append(h("p", "lew-maps-h", shape.length === 4 ? `output channels${total > MAX_MAPS ? ` (the first ${MAX_MAPS} of ${total})` : ""}` : "output"));
    const row = h("div", "act-maps");
    planes.forEach((plane, ch) => {
      const range = kernels.planeRange(plane);
      const ph = plane.length;
      const pw = plane[0]?.length ?? 0;
      const canvas = samples.planeCanvas(kernels.planeRgba(plane, "diverging", range), ph, pw);
      // every map at the same size, its longest side MAP_PX (a 6×6 map and a 32×32 one side by side)
      const scale = MAP_PX / Math.max(ph, pw);
      canvas.style.width = `${ph === 1 ? Math.min(pw * 2, 240) : Math.round(pw * scale)}px`;
      canvas.style.height = `${ph === 1 ? 12 : Math.round(ph * scale)}px`;
      canvas.className = "feature-map";
      canvas.dataset.channel = String(ch);
      canvas.title = `channel ${ch}: ${fmt.fmt(range.lo, 3)} … ${fmt.fmt(range.hi, 3)}`;
      row.append(canvas);
    });
    wrap.append(row);
    return wrap;
  }

  function layerFacts(run) {
    const dl = h("dl", "lew-facts");
    const row = (k, v, cls) => {
      dl.append(h("dt", "", k), h("dd", cls, v));
    };
    for (const t of run.inputs || []) row(t.name || "input", `${fmt.shapeStr(t.shape)}  ${stats(t)}`);
    for (const t of run.outputs || [run.output]) if (t && !t.same_as) row(t.name || "output", `${fmt.shapeStr(t.shape)}  ${stats(t)}`, "lew-out");
    for (const p of run.params || []) row(p.name, `${fmt.shapeStr(p.shape)}  ${stats(p)}`, "lew-param");
    row("parameters", (run.param_count ?? 0).toLocaleString("en"));
    const code = h("pre", "code lew-code");
    code.textContent = run.code || "";
    const more = h("details");
    more.append(h("summary", "", "PyTorch that reproduces it"), code);
    return [dl, more];
  }

  function draw() {
    graph = net.buildGraph(config, { result, error });
    totals();
    table.renderNetTable($("#net-table-panel"), { result, error, failed: graph.bad, pickable, onPick: (it) => openLayer(it.path, it.type) });
    graphView.render({
      result,
      builder: graph,
      pickable,
      onDrill: (it) => openLayer(it.path, it.type),
      onDrillInner: (t) => openLayer(t.path, t.type),
    });
    const err = $(".lew-error");
    err.hidden = !error;
    err.textContent = error ? `${error.detail}${error.field ? ` (${error.field})` : ""}` : "";
    markSelected();
    // a chain draws as a flow; a module whose forward() is its wiring (a Graph, one big layer) as its dataflow
    showTab(tab ?? (graph.root.kind === "layer" && result?.graph?.nodes?.length ? "graph" : "flow"));
  }

  try {
    net.setCatalog(await api.api.layers());
    if (!result && !error) result = await api.api.shape(config);
  } catch (e) {
    error = e.body || { detail: e.message };
  }
  draw();
  top.dataset.ready = "true";
  // redraw the flow at the new width (the drawing itself never changes the host's width)
  let lastWidth = $("#net-diagram").clientWidth;
  const resize = new ResizeObserver(() => {
    const w = $("#net-diagram").clientWidth;
    if (w === lastWidth || tab !== "flow") return;
    lastWidth = w;
    drawFlow();
  });
  resize.observe($("#net-diagram"));
  return () => {
    resize.disconnect();
    transport.close();
    api.setTransport(null);
    loader.revoke();
  };
}

export default { render };
