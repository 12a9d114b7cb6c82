// Thin fetch wrappers over the REST API (docs/API.md). Errors become ApiError with the
// server's `field`, so the form can put the message next to the input that caused it.

export class ApiError extends Error {
  constructor(status, body) {
    const detail = describeDetail(body);
    super(detail || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error ?? null;
    this.field = body?.field ?? fieldFromLoc(body) ?? null;
    this.detail = detail || `The server answered ${status}`;
    this.body = body;
    // the constructor arguments on the other side of a shape mismatch (kernel_size vs the input shape)
    this.related = Array.isArray(body?.related) ? body.related : [];
  }

  // What went wrong, in words for the status line: never the raw code.
  get words() {
    return ERROR_WORDS[this.code] || (this.status >= 500 ? "the server failed" : "the request was refused");
  }
}

const ERROR_WORDS = {
  shape_mismatch: "shapes do not fit",
  invalid_argument: "invalid argument",
  invalid_request: "invalid request",
  bad_request: "bad request",
  unknown_layer: "unknown layer type",
  not_explainable: "cannot be explained",
  too_large: "too large for this server",
  device_unavailable: "device not available",
  server_busy: "the server is busy: try again",
  request_timeout: "took too long",
  deadline_exceeded: "took too long",
  worker_crashed: "the computation crashed",
  internal_error: "the server failed",
  unsupported_media_type: "not JSON",
  client_closed_request: "cancelled",
  bad_host: "wrong host name",
  http_error: "the request was refused",
};

// FastAPI's own request validation answers {"detail": [{"loc": [...], "msg": ...}]}: fold it
// into the same shape as the app's errors.
function describeDetail(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return "";
}

function fieldFromLoc(body) {
  const loc = Array.isArray(body?.detail) ? body.detail[0]?.loc : null;
  if (!Array.isArray(loc)) return null;
  const parts = loc[0] === "body" ? loc.slice(1) : loc;
  let s = "";
  for (const p of parts) s += typeof p === "number" ? `[${p}]` : s ? `.${p}` : p;
  return s || null;
}

// Where the requests go: this page's server, unless a host swaps in a transport of its own (the notebook
// widget sends each one to the Python kernel over the widget's messages). Same signature as fetch.
const serverFetch = (path, init) => fetch(path, init);
let transport = serverFetch;
let catalogPromise = null;

export function setTransport(fn) {
  transport = fn || serverFetch;
  catalogPromise = null; // the catalog came from the previous transport
}

// fetch() through the current transport: every module that talks to the API uses this.
export function apiFetch(path, init) {
  return transport(path, init);
}

async function call(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await apiFetch(path, init);
  let data = null;
  try {
    data = await res.json();
  } catch {
    // A proxy's HTML error page: keep the status, lose the detail.
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}


export const api = {
  layers() {
    catalogPromise ??= call("/api/layers").catch((e) => {
      catalogPromise = null;
      throw e;
    });
    return catalogPromise;
  },
  devices: () => call("/api/devices"),
  presets: () => call("/api/presets"),
  lesson: () => call("/api/lesson"),
  // opts.path: run the network in `request` and report that child layer as it ran inside it.
  run: (request, opts = {}) =>
    call("/api/run", { method: "POST", body: opts.path ? { ...request, path: opts.path } : request, signal: opts.signal })
      .then(resolveSameAs),
  // opts.detail "shapes": the formulas' answer alone (no dataflow graph or inner trace: what an edit redraws)
  shape: (request, opts = {}) =>
    call(opts.detail ? `/api/shape?detail=${encodeURIComponent(opts.detail)}` : "/api/shape", { method: "POST", body: request, signal: opts.signal }),
  // opts.path: explain an element of that child's output inside a network (the request is the network's).
  explain(request, index, output, opts = {}) {
    const body = { ...request, index };
    if (output) body.output = output;
    if (opts.path) body.path = opts.path;
    return call("/api/explain", { method: "POST", body, signal: opts.signal });
  },
};

// The server sends the first output's numbers once, in `output`; `outputs[0]` says {"same_as": "output"}.
// Point it back at that tensor so the views can read every output from one list.
export function resolveSameAs(run) {
  if (run && Array.isArray(run.outputs)) run.outputs = run.outputs.map((t) => (t?.same_as ? run[t.same_as] ?? t : t));
  return run;
}

export function isAbort(err) {
  return err?.name === "AbortError";
}
