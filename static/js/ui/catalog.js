// The catalog sidebar: every layer type from GET /api/layers, grouped by family, filtered by the
// search box, and above them the network presets from GET /api/presets. Selecting a type hands its
// example request to the caller; selecting a preset hands over the preset.

function matches(entry, q) {
  if (!q) return true;
  const hay = `${entry.type} ${entry.family} ${entry.doc || ""}`.toLowerCase();
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
}

function presetMatches(p, q) {
  if (!q) return true;
  const hay = `${p.name} ${p.description || ""} ${p.id} network preset`.toLowerCase();
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
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

  function render() {
    const q = search.value.trim();
    const frag = document.createDocumentFragment();
    let shown = 0;
    const ps = presets.filter((p) => presetMatches(p, q));
    if (ps.length) {
      const group = document.createElement("section");
      group.className = "cat-presets";
      const h = document.createElement("h3");
      h.textContent = "networks";
      const ul = document.createElement("ul");
      for (const p of ps) {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.className = "cat-preset";
        b.dataset.preset = p.id;
        b.textContent = p.name.replace(/^Tutorial: /, "");
        b.title = p.description || p.name;
        if (`preset:${p.id}` === current) {
          b.classList.add("current");
          b.setAttribute("aria-current", "true");
        }
        b.addEventListener("click", () => {
          setOpen(false);
          onPreset(p);
        });
        li.append(b);
        ul.append(li);
      }
      group.append(h, ul);
      frag.append(group);
    }
    const families = catalog.families?.length ? catalog.families : [...new Set(catalog.layers.map((l) => l.family))];
    for (const fam of families) {
      const entries = catalog.layers.filter((l) => l.family === fam && matches(l, q));
      if (!entries.length) continue;
      const group = document.createElement("section");
      group.className = "cat-family";
      group.dataset.family = fam;
      const h = document.createElement("h3");
      h.textContent = fam;
      const ul = document.createElement("ul");
      for (const e of entries) {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.className = "cat-item";
        b.dataset.type = e.type;
        b.textContent = e.type;
        b.title = (e.doc || "").split("\n")[0];
        if (e.type === current) {
          b.classList.add("current");
          b.setAttribute("aria-current", "true");
        }
        b.addEventListener("click", () => {
          setOpen(false);
          onSelect(e);
        });
        li.append(b);
        ul.append(li);
        shown++;
      }
      group.append(h, ul);
      frag.append(group);
    }
    list.replaceChildren(frag);
    if (!shown && !ps.length) {
      const p = document.createElement("p");
      p.className = "aside";
      p.textContent = `No layer matches “${q}”.`;
      list.append(p);
    }
    count.textContent = q ? `${shown} of ${catalog.layers.length}` : `${catalog.layers.length} layers`;
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
    const first = list.querySelector(".cat-item") || list.querySelector(".cat-preset");
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
