// The catalog sidebar: every layer type from GET /api/layers, grouped by family, filtered by the
// search box, and above them the network presets from GET /api/presets. Selecting a type hands its
// example request to the caller; selecting a preset hands over the preset.

import { plainCode } from "../util/dom.js";

const words = (q) => q.toLowerCase().split(/\s+/).filter(Boolean);

// How well a query names an entry: 4 the exact name, 3 a prefix of it, 2 inside it, 1 every word in
// the name, 0 only in the family or description, -1 not at all. Names outrank descriptions, so
// "basic" + Enter opens BasicLinear, not the Transformer whose doc says "a basic transformer layer".
export function matchRank(name, rest, q) {
  const ws = words(q || "");
  if (!ws.length) return 0;
  const n = name.toLowerCase();
  const whole = ws.join(" ");
  const squeezed = ws.join("");
  if (n === whole || n === squeezed) return 4;
  if (n.startsWith(whole) || n.startsWith(squeezed)) return 3;
  if (n.includes(whole) || n.includes(squeezed)) return 2;
  if (ws.every((w) => n.includes(w))) return 1;
  const hay = `${n} ${rest}`.toLowerCase();
  return ws.every((w) => hay.includes(w)) ? 0 : -1;
}

const presetName = (p) => p.name.replace(/^Tutorial: /, "");

// Every layer and preset the query finds, best first (rank, then layers before networks, then the
// catalog's own order): the list shows them in this order and Enter opens the first.
export function rankMatches(layers, presets, q) {
  const found = [];
  layers.forEach((l, i) => {
    const r = matchRank(l.type, `${l.family} ${l.doc || ""}`, q);
    if (r >= 0) found.push({ kind: "layer", entry: l, rank: r, order: i });
  });
  presets.forEach((p, i) => {
    const r = matchRank(presetName(p), `${p.name} ${p.description || ""} ${p.id} network preset`, q);
    if (r >= 0) found.push({ kind: "preset", entry: p, rank: r, order: layers.length + i });
  });
  return found.sort((a, b) => b.rank - a.rank || a.order - b.order);
}

export function createCatalog(root, { onSelect, onPreset = () => {} }) {
  const search = root.querySelector("#catalog-search");
  const list = root.querySelector("#catalog-list");
  const count = root.querySelector("#catalog-count");
  const toggle = root.querySelector("#catalog-toggle");
  const currentLabel = root.querySelector("#catalog-current");
  const setOpen = (on) => {
    root.classList.toggle("open", on);
    toggle.setAttribute("aria-expanded", String(on));
  };
  toggle.addEventListener("click", () => setOpen(!root.classList.contains("open")));
  search.addEventListener("focus", () => setOpen(true));
  let catalog = null;
  let current = null;
  let presets = [];

  function presetButton(p) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cat-preset";
    b.dataset.preset = p.id;
    b.textContent = presetName(p);
    b.title = plainCode(p.description || p.name);
    if (`preset:${p.id}` === current) {
      b.classList.add("current");
      b.setAttribute("aria-current", "true");
    }
    b.addEventListener("click", () => {
      setOpen(false);
      onPreset(p);
    });
    return b;
  }

  function layerButton(e) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cat-item";
    b.dataset.type = e.type;
    b.textContent = e.type;
    b.title = plainCode((e.doc || "").split("\n")[0]);
    if (e.type === current) {
      b.classList.add("current");
      b.setAttribute("aria-current", "true");
    }
    b.addEventListener("click", () => {
      setOpen(false);
      onSelect(e);
    });
    return b;
  }

  function section(cls, title, buttons, family) {
    const group = document.createElement("section");
    group.className = cls;
    if (family) group.dataset.family = family;
    const h = document.createElement("h3");
    h.textContent = title;
    const ul = document.createElement("ul");
    for (const b of buttons) {
      const li = document.createElement("li");
      li.append(b);
      ul.append(li);
    }
    group.append(h, ul);
    return group;
  }

  function render() {
    const q = search.value.trim();
    const total = catalog.layers.length + presets.length;
    const frag = document.createDocumentFragment();
    if (q) {
      // One list, best match first: the order is the ranking, so Enter opens what is on top.
      const found = rankMatches(catalog.layers, presets, q);
      const buttons = found.map((m) => {
        const b = m.kind === "layer" ? layerButton(m.entry) : presetButton(m.entry);
        const tag = document.createElement("span");
        tag.className = "cat-tag";
        tag.textContent = m.kind === "layer" ? m.entry.family : "network";
        b.append(" ", tag);
        return b;
      });
      if (buttons.length) frag.append(section("cat-results", "best matches first", buttons));
      list.replaceChildren(frag);
      if (!found.length) {
        const p = document.createElement("p");
        p.className = "aside";
        p.textContent = `Nothing matches “${q}”: no layer, no network.`;
        list.append(p);
      }
      const layers = found.filter((m) => m.kind === "layer").length;
      const nets = found.length - layers;
      count.textContent = `${found.length} of ${total}: ${layers} layer${layers === 1 ? "" : "s"}, ${nets} network${nets === 1 ? "" : "s"}`;
      list.dataset.shown = String(found.length);
      rove();
      return;
    }
    if (presets.length) frag.append(section("cat-presets", "networks", presets.map(presetButton)));
    const families = catalog.families?.length ? catalog.families : [...new Set(catalog.layers.map((l) => l.family))];
    for (const fam of families) {
      const entries = catalog.layers.filter((l) => l.family === fam);
      if (entries.length) frag.append(section("cat-family", fam, entries.map(layerButton), fam));
    }
    list.replaceChildren(frag);
    count.textContent = `${catalog.layers.length} layers, ${presets.length} networks`;
    list.dataset.shown = String(total);
    rove();
  }

  // One Tab stop for the whole list: arrow keys move between layer buttons.
  list.addEventListener("keydown", (e) => {
    const items = [...list.querySelectorAll(".cat-preset, .cat-item")];
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: items.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = items[Math.max(0, Math.min(items.length - 1, to))];
    items.forEach((b) => (b.tabIndex = b === next ? 0 : -1));
    next.focus();
  });
  function rove() {
    const items = [...list.querySelectorAll(".cat-preset, .cat-item")];
    const keep = items.find((b) => b.classList.contains("current")) || items.find((b) => b.classList.contains("cat-item")) || items[0];
    items.forEach((b) => (b.tabIndex = b === keep ? 0 : -1));
  }

  search.addEventListener("input", () => catalog && render());
  // Enter in the search box opens the first match: type "conv2", Enter.
  search.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const first = list.querySelector(".cat-item, .cat-preset");
    if (first) {
      e.preventDefault();
      first.click();
    }
  });
  // "/" focuses the search box from anywhere but a text field.
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !e.target.closest("input, textarea, select, [contenteditable]")) {
      e.preventDefault();
      search.focus();
    }
  });

  return {
    setCatalog(c) {
      catalog = c;
      render();
    },
    setPresets(list) {
      presets = list || [];
      if (catalog) render();
    },
    // The current layer type, or a preset ("preset:<id>") when one was just loaded.
    setCurrent(type) {
      const preset = presets.find((p) => `preset:${p.id}` === type);
      currentLabel.textContent = preset ? preset.name.replace(/^Tutorial: /, "") : type;
      if (type === current) return;
      current = type;
      if (!catalog) return;
      for (const b of list.querySelectorAll(".cat-item, .cat-preset")) {
        const on = b.dataset.type === type || `preset:${b.dataset.preset}` === type;
        b.classList.toggle("current", on);
        if (on) b.setAttribute("aria-current", "true");
        else b.removeAttribute("aria-current");
      }
      rove();
    },
  };
}
