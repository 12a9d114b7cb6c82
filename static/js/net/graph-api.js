// Fetch wrappers for the graph features (docs/API.md): a model pasted as code, receptive fields.
// Errors become the same ApiError the rest of the UI shows (with the server's field, line, column).

import { ApiError, apiFetch } from "../api.js";

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

export const graphApi = {
  // {"code"} -> {"layer", "inputs", "warnings"}; the server parses the code, it never runs it.
  importCode: (code, opts = {}) => post("/api/import", { code }, opts.signal),
  // the /api/run body plus index (and path) -> per node the elements that output element depends on.
  // opts.path: an element of that module call's output; opts.node: of that graph node (⊕, relu, ...).
  receptiveField: (request, index, opts = {}) =>
    post("/api/receptive-field", { ...request, index, ...(opts.path ? { path: opts.path } : {}), ...(opts.node ? { node: opts.node } : {}) }, opts.signal),
};
