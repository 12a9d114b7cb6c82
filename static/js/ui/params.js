// Parameters table, the module's repr, and the PyTorch script (`code` from /api/run) that
// reproduces this exact view, with a copy button.

import { shapeStr } from "../util/format.js";

function td(text, cls) {
  const el = document.createElement("td");
  el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

export function renderParams(root, run) {
  const body = root.querySelector("#params-table tbody");
  const foot = root.querySelector("#params-table tfoot");
  body.replaceChildren();
  for (const p of run.params || []) {
    const tr = document.createElement("tr");
    tr.append(td(p.name, "pname"), td(shapeStr(p.shape)), td((p.numel ?? 0).toLocaleString("en"), "num"));
    body.append(tr);
  }
  if (!(run.params || []).length) {
    const tr = document.createElement("tr");
    tr.append(td("no parameters", "aside"), td(""), td("0", "num"));
    body.append(tr);
  }
  foot.replaceChildren();
  const tr = document.createElement("tr");
  const total = run.param_count ?? (run.params || []).reduce((a, p) => a + (p.numel || 0), 0);
  tr.append(td("total", "pname"), td(""), td(total.toLocaleString("en"), "num"));
  foot.append(tr);
  root.querySelector("#repr").textContent = run.repr || "";
}

export function renderCode(root, run) {
  root.querySelector("#code").textContent = run.code || "# the server sent no script";
}

export function wireCopy(button, getText) {
  const status = button.parentElement.querySelector(".copy-status");
  button.addEventListener("click", async () => {
    const text = getText();
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Clipboard API refused (insecure origin, no permission): fall back to a selection copy.
      const ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed";
      ta.style.opacity = "0";
      document.body.append(ta);
      ta.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      ta.remove();
    }
    if (status) {
      status.textContent = ok ? "Copied" : "Select the text and press Ctrl+C";
      setTimeout(() => (status.textContent = ""), 2500);
    }
  });
}
