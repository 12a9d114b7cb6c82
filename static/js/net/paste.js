// "Paste PyTorch code": a text box in the network builder. The server reads the code (nn.Module
// classes, Sequentials, helper functions, printouts) into a config (POST /api/import, parsed with ast,
// never run); the result opens in the builder. What it skipped (imports, print, .to(device)) is listed
// one line each; a refusal is shown with its line and column, and the caret jumps there.

import { ApiError } from "../api.js";
import { graphApi } from "./graph-api.js";

export function mountPaste(root, { onOpen, setStatus }) {
  const text = root.querySelector("#net-paste-code");
  const button = root.querySelector("#net-paste-open");
  const error = root.querySelector("#net-paste-error");
  const note = root.querySelector("#net-paste-note");

  function showError(msg) {
    error.hidden = !msg;
    error.textContent = msg || "";
    text.classList.toggle("invalid", Boolean(msg));
  }

  // Put the caret on the line and column the server named (1-based, as in the message).
  function caretAt(line, column) {
    const lines = text.value.split("\n");
    let pos = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) pos += lines[i].length + 1;
    pos += Math.max(0, column - 1);
    text.focus();
    text.setSelectionRange(pos, pos);
  }

  async function open() {
    const code = text.value;
    if (!code.trim()) {
      showError("Paste a model first, e.g. nn.Sequential(nn.Linear(10, 5), nn.ReLU())");
      return;
    }
    button.disabled = true;
    setStatus("reading the code…", "busy");
    try {
      const res = await graphApi.importCode(code);
      showError("");
      const warnings = res.warnings || [];
      note.hidden = !warnings.length;
      note.replaceChildren(
        ...warnings.map((w) => {
          const li = document.createElement("li");
          li.textContent = w;
          return li;
        }),
      );
      onOpen({ layer: res.layer, inputs: res.inputs?.length ? res.inputs : undefined, seed: 0 });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showError(e.detail);
      if (e.body?.line) caretAt(e.body.line, e.body.column || 1);
      setStatus("the code was not accepted", "error");
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener("click", open);
  text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      open();
    }
  });
}
