// The network builder's list of layers: one row per child (nested for residual blocks and inner
// Sequentials), each with its output shape, move up/down and remove buttons. Selecting a row opens
// its editor (see views/network-view.js). DOM only; the edits themselves are net/model.js's.

import { shapeStr } from "../util/format.js";
import { splitItem } from "../net/model.js";
import { h } from "../util/dom.js";

function itemName(it) {
  return it.path || (it.field === "layer" ? "network" : it.field);
}

export function renderNetTree(root, graph, { selected, onSelect, onMove, onRemove }) {
  // Keep keyboard focus on the same control of the same layer across a re-render.
  const active = document.activeElement;
  const keep = root.contains(active) ? { field: active.closest("[data-field]")?.dataset.field, action: active.dataset.action } : null;

  function row(it, siblings, index) {
    const name = itemName(it);
    const out = it.outShape ? `→ ${shapeStr(it.outShape)}` : it.status === "unreached" ? "→ ?" : "";
    const pick = h(
      "button",
      { type: "button", class: "nt-pick", "data-action": "select", "aria-pressed": String(selected === it.field), title: `Edit ${name} (${it.type})` },
      // Nesting shows where a layer sits; its own name is enough here (the full path is in the title).
      h("span", { class: "nt-tag" }, it.path ? it.path.split(".").pop() : "·"),
      h("span", { class: "nt-type" }, it.type),
      h("span", { class: "nt-out" }, out),
    );
    pick.addEventListener("click", () => onSelect(selected === it.field ? null : it.field));
    const actions = h("span", { class: "nt-actions" });
    const inList = Boolean(splitItem(it.field));
    const isShortcut = /\.shortcut$/.test(it.field);
    if (inList) {
      const up = h("button", { type: "button", class: "icon", "data-action": "up", "aria-label": `Move ${name} (${it.type}) up`, title: "Move up", disabled: index === 0 }, "↑");
      const down = h("button", { type: "button", class: "icon", "data-action": "down", "aria-label": `Move ${name} (${it.type}) down`, title: "Move down", disabled: index === siblings - 1 }, "↓");
      up.addEventListener("click", () => onMove(it.field, -1));
      down.addEventListener("click", () => onMove(it.field, 1));
      actions.append(up, down);
    }
    if (inList || isShortcut) {
      const del = h("button", { type: "button", class: "icon del", "data-action": "remove", "aria-label": `Remove ${name} (${it.type})`, title: isShortcut ? "Back to the identity" : "Remove" }, "✕");
      del.addEventListener("click", () => onRemove(it.field));
      actions.append(del);
    }
    return h("div", { class: `nt-row${selected === it.field ? " selected" : ""}` }, pick, actions);
  }

  function item(it, siblings, index) {
    const li = h("li", { class: `nt-item nt-${it.kind} status-${it.status}`, dataset: { field: it.field, path: it.path, type: it.type } }, row(it, siblings, index));
    if (it.kind === "seq") li.append(list(it.items));
    if (it.kind === "res") {
      const block = h("div", { class: "nt-block" }, list(it.body.items));
      const sc = h("div", { class: "nt-shortcut" }, h("span", { class: "nt-sc-label" }, "skip:"));
      if (it.shortcut) sc.append(h("ol", { class: "nt-list" }, item(it.shortcut, 1, 0)));
      else sc.append(h("span", { class: "aside" }, " identity"));
      block.append(sc);
      li.append(block);
    }
    return li;
  }

  function list(items) {
    return h("ol", { class: "nt-list" }, items.map((it, i) => item(it, items.length, i)));
  }

  const g = graph.root;
  root.replaceChildren(g.kind === "seq" ? list(g.items) : h("ol", { class: "nt-list" }, item(g, 1, 0)));
  if (!root.querySelector(".nt-item")) root.append(h("p", { class: "aside" }, "No layers yet: add one below."));

  if (keep?.field) {
    const again = root.querySelector(`[data-field="${CSS.escape(keep.field)}"] > .nt-row [data-action="${keep.action}"]`);
    (again && !again.disabled ? again : root.querySelector(`[data-field="${CSS.escape(keep.field)}"] > .nt-row .nt-pick`))?.focus();
  }
}
