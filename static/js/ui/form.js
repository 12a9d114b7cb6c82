// The config form, generated from a catalog entry: one control per constructor argument (torch's
// default as placeholder, type and bounds beside it), one shape/data editor per forward() input,
// then seed, device and dtype. Edits are reported as a whole new request; errors, local or from
// the API's `field`, are shown at the control they belong to.
//
// The three parts (layer arguments, inputs, run settings) are found by id (#form-layer, …) or by
// `data-part="layer|inputs|run|error"`; a form without a part simply leaves it out, so the network
// builder reuses this module for a child's arguments alone and for the network's input and run.

import { parseValue, parseShape, parseData, formatValue, describeDefault, describeBounds, describeType } from "../util/params.js";
import { shapeOf } from "../util/format.js";
import { h, inlineCode, plainCode } from "../util/dom.js";



let uid = 0;
const idFor = (path) => `f${++uid}-${path.replace(/[^A-Za-z0-9_-]/g, "_")}`;

function fieldRow(path, labelText, control, { hint = "", title = "", typeText = "", wide = false } = {}) {
  const id = control.id || (control.id = idFor(path));
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  control.setAttribute("aria-describedby", `${hintId} ${errId}`);
  const label = h("label", { for: id, title }, h("span", { class: "pname" }, labelText), typeText ? h("span", { class: "ptype" }, typeText) : null);
  return h(
    "div",
    { class: `field${wide ? " wide" : ""}`, dataset: { field: path } },
    label,
    control,
    h("div", { class: "hint", id: hintId }, hint),
    h("div", { class: "field-error", id: errId, role: "alert" }),
  );
}

export function createConfigForm(root, { onEdit }) {
  const part = (name) => root.querySelector(`#form-${name}`) || root.querySelector(`[data-part="${name}"]`);
  const layerBox = part("layer");
  const inputsBox = part("inputs");
  const runBox = part("run");
  const general = part("error");
  // One form may sit inside another (the network builder): each handles only its own parts.
  root.dataset.configForm = "";
  for (const p of [layerBox, inputsBox, runBox]) if (p) p.dataset.formPart = "";
  const mine = (t) => t.closest("[data-form-part]")?.closest("[data-config-form]") === root;
  let entry = null;
  let original = null;
  let controls = {};
  let inputEditors = [];
  let runControls = {};

  function buildParam(spec, value) {
    const path = `layer.${spec.name}`;
    let control;
    const bounds = describeBounds(spec);
    const typeText = [describeType(spec), bounds].filter(Boolean).join(" ");
    const hint = [describeDefault(spec)].filter(Boolean).join(" · ");
    if (spec.type === "bool") {
      control = h("input", { type: "checkbox", name: path });
      control.checked = value === undefined ? Boolean(spec.default) : Boolean(value);
    } else if (spec.type === "str" && spec.choices?.length) {
      control = h("select", { name: path });
      if (!spec.required) control.append(new Option(`${formatValue(spec, spec.default)} (default)`, ""));
      for (const c of spec.choices) control.append(new Option(c, c));
      control.value = value === undefined || (value === spec.default && !spec.required) ? "" : String(value);
    } else if (spec.type === "tensor" || spec.type === "layer" || spec.type === "layers") {
      control = h("textarea", { name: path, rows: spec.type === "tensor" ? 2 : 5, spellcheck: "false", placeholder: spec.required ? "" : formatValue(spec, spec.default) });
      control.value = formatValue(spec, value);
    } else {
      const numeric = spec.type === "int" || spec.type === "float";
      control = h("input", {
        type: "text",
        name: path,
        inputmode: numeric && !spec.choices?.length ? (spec.type === "int" ? "numeric" : "decimal") : null,
        autocomplete: "off",
        spellcheck: "false",
        // left empty, None stands for what the catalog says it means (a pool's stride: kernel_size)
        placeholder: spec.required ? "" : spec.default === null && spec.default_means ? spec.default_means : formatValue(spec, spec.default),
      });
      if (spec.choices?.length) {
        const listId = idFor(`${path}-choices`);
        control.setAttribute("list", listId);
        layerBox.append(h("datalist", { id: listId }, spec.choices.map((c) => new Option(c, c))));
      }
      control.value = formatValue(spec, value);
    }
    controls[spec.name] = { spec, control };
    const firstDocLine = plainCode((spec.doc || "").split(/\n|(?<=\.)\s/)[0]);
    return fieldRow(path, spec.name, control, { hint, title: firstDocLine, typeText, wide: control.tagName === "TEXTAREA" });
  }

  function buildInput(i, spec, cur) {
    const path = `inputs[${i}]`;
    const name = spec?.name || `input ${i}`;
    const box = h("div", { class: "input-editor", dataset: { field: path } });
    const head = h("div", { class: "input-head" }, h("strong", {}, name), spec?.convention ? h("span", { class: "convention" }, spec.convention) : null, spec?.kind && spec.kind !== "normal" ? h("span", { class: "ptype" }, spec.kind) : null);
    const optional = !cur;
    let use = null;
    if (optional) {
      use = h("input", { type: "checkbox" });
      head.append(h("label", { class: "use-input" }, use, " use"));
    }
    const shape = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e.g. 5, 10" });
    const hasData = cur && cur.data !== undefined;
    shape.value = cur?.shape ? cur.shape.join(", ") : hasData ? shapeOf(cur.data).join(", ") : "";
    const data = h("textarea", { rows: 3, spellcheck: "false", placeholder: "[[0.1, 0.2, …], …] — leave empty for seeded random values" });
    data.value = hasData ? JSON.stringify(cur.data) : "";
    const shapeRow = fieldRow(`${path}.shape`, "shape", shape, { hint: hasData ? "taken from the data" : "" });
    const dataRow = fieldRow(`${path}.data`, "data (optional)", data, { wide: true });
    const details = h("details", { class: "paste" }, h("summary", {}, "Paste data"), dataRow);
    details.open = Boolean(hasData);
    box.append(head, shapeRow, details, h("div", { class: "field-error", role: "alert" }));
    const ed = { i, spec, cur, shape, data, use, box, shapeRow };
    const sync = () => {
      const on = !use || use.checked;
      shape.disabled = !on || data.value.trim() !== "";
      data.disabled = !on;
      shapeRow.querySelector(".hint").textContent = data.value.trim() ? "taken from the data" : "";
    };
    data.addEventListener("input", sync);
    use?.addEventListener("change", sync);
    sync();
    return ed;
  }

  function buildRun(request, devices) {
    const seed = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", name: "seed", placeholder: "0" });
    seed.value = request.seed ?? "";
    const device = h("select", { name: "device" });
    const def = devices?.default ?? "cpu";
    device.append(new Option(`${def} (default)`, ""));
    for (const d of devices?.devices || []) if (d.id !== def) device.append(new Option(d.name && d.name !== d.id ? `${d.id} — ${d.name}` : d.id, d.id));
    device.append(new Option("auto (CUDA when present)", "auto"));
    if (request.device && ![...device.options].some((o) => o.value === request.device)) device.append(new Option(request.device, request.device));
    device.value = request.device ?? "";
    const dtype = h("select", { name: "dtype" });
    // the dtypes this layer type can run in: a fact of its catalog entry
    for (const d of entry?.dtypes || ["float32"]) dtype.append(new Option(d, d));
    dtype.value = request.dtype ?? "float32";
    runControls = { seed, device, dtype };
    runBox.replaceChildren(
      h("legend", {}, "Run"),
      fieldRow("seed", "seed", seed, { typeText: "int ≥ 0", hint: "torch.manual_seed before building" }),
      fieldRow("device", "device", device, { wide: true }),
      fieldRow("dtype", "dtype", dtype),
    );
  }

  function collect() {
    const errors = {};
    const layer = { type: entry.type };
    for (const spec of layerBox ? entry.params : []) {
      const { control } = controls[spec.name];
      const path = `layer.${spec.name}`;
      if (spec.type === "bool") {
        const v = control.checked;
        if (v !== Boolean(spec.default) || spec.name in (original.layer || {})) layer[spec.name] = v;
        continue;
      }
      const r = parseValue(spec, control.value);
      if (r.error) errors[path] = r.error;
      else if (!r.omit) layer[spec.name] = r.value;
    }
    // Arguments the catalog does not list (a hand-edited link) go through; the server judges them.
    for (const [k, v] of Object.entries(original.layer || {})) if (k !== "type" && !(k in controls)) layer[k] = v;
    const inputs = [];
    for (const ed of inputEditors) {
      if (ed.use && !ed.use.checked) continue;
      const { shape: _s, data: _d, ...rest } = ed.cur || {};
      const d = parseData(ed.data.value);
      if (d.error) {
        errors[`inputs[${ed.i}].data`] = d.error;
        continue;
      }
      if (!d.omit) {
        inputs.push({ data: d.value, ...rest });
        continue;
      }
      const s = parseShape(ed.shape.value);
      if (s.error) errors[`inputs[${ed.i}].shape`] = s.error;
      else inputs.push({ shape: s.value, ...rest });
    }
    const request = { layer, inputs };
    if (!runBox) return { request, errors };
    const seedText = runControls.seed.value.trim();
    if (seedText !== "") {
      if (!/^\d+$/.test(seedText)) errors.seed = "a non-negative integer";
      else if (!Number.isSafeInteger(Number(seedText))) errors.seed = "at most 2⁵³ − 1 (larger seeds lose precision in the browser)";
      else request.seed = Number(seedText);
    }
    if (runControls.device.value) request.device = runControls.device.value;
    if (runControls.dtype.value && runControls.dtype.value !== "float32") request.dtype = runControls.dtype.value;
    return { request, errors };
  }

  // The field the person edited last: a shape mismatch is shown there when it is one of its two sides.
  let lastEdited = null;
  const noteEdit = (e) => {
    const row = e.target.closest?.("[data-field]");
    if (row && mine(e.target)) lastEdited = row.dataset.field;
  };
  root.addEventListener("input", noteEdit, true);
  root.addEventListener("change", noteEdit, true);

  root.addEventListener("input", (e) => {
    if (!entry || e.target.closest("#catalog") || !mine(e.target)) return;
    const { request, errors } = collect();
    onEdit(request, errors);
  });
  root.addEventListener("change", (e) => {
    if (!entry || !mine(e.target) || (e.target.tagName === "INPUT" && e.target.type === "text")) return;
    const { request, errors } = collect();
    onEdit(request, errors);
  });
  root.addEventListener("submit", (e) => e.preventDefault());

  function rowFor(field) {
    if (!field) return null;
    let f = field;
    for (;;) {
      const row = root.querySelector(`[data-field="${CSS.escape(f)}"]`);
      if (row) return row;
      const cut = Math.max(f.lastIndexOf("."), f.lastIndexOf("["));
      if (cut <= 0) return null;
      f = f.slice(0, cut);
    }
  }

  return {
    load(newEntry, request, devices) {
      entry = newEntry;
      lastEdited = null;
      original = request;
      controls = {};
      const docLine = (entry.doc || "").split("\n")[0];
      if (layerBox) {
        layerBox.replaceChildren(
          h("legend", {}, h("span", { class: "layer-type" }, entry.type), " ", h("span", { class: "family" }, entry.family)),
          docLine ? h("p", { class: "doc" }, inlineCode(docLine)) : "",
        );
        for (const spec of entry.params) layerBox.append(buildParam(spec, request.layer?.[spec.name]));
        if (!entry.params.length) layerBox.append(h("p", { class: "aside" }, "No constructor arguments."));
      }
      inputEditors = [];
      if (inputsBox) {
        const specs = entry.inputs || [];
        const curs = request.inputs || [];
        const n = Math.max(specs.length, curs.length);
        inputsBox.replaceChildren(h("legend", {}, n === 1 ? "Input" : "Inputs"));
        for (let i = 0; i < n; i++) {
          const ed = buildInput(i, specs[i], curs[i]);
          inputEditors.push(ed);
          inputsBox.append(ed.box);
        }
      }
      if (runBox) buildRun(request, devices);
      this.clearErrors();
    },
    // Replace the form's view of the request after an outside change (e.g. the URL).
    get entry() {
      return entry;
    },
    clearErrors() {
      for (const el of root.querySelectorAll(".field-error")) el.textContent = "";
      for (const el of root.querySelectorAll(".invalid")) el.classList.remove("invalid");
      for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      if (general) {
        general.textContent = "";
        general.hidden = true;
      }
    },
    // {field: message}; a field without a control of its own falls back to its nearest parent,
    // then to the general message line.
    showErrors(map) {
      this.clearErrors();
      for (const [field, msg] of Object.entries(map)) {
        const row = rowFor(field);
        const slot = row?.querySelector(":scope > .field-error");
        if (!slot) {
          if (!general) continue;
          // no control of its own: the message alone (it names the argument in words), or prefixed by the
          // argument's own name (never a path such as "layer.layers[0]") where it does not
          const name = field && field !== "null" ? field.split(".").pop().replace(/\[\d+\]$/, "") : "";
          general.textContent = name && !/^(layer|layers|inputs|body|shortcut)$/.test(name) && !msg.includes(name) ? `${name}: ${msg}` : msg;
          general.hidden = false;
          continue;
        }
        slot.textContent = msg;
        row.classList.add("invalid");
        row.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
      }
    },
    // The API names the field (for a mismatch, the input's shape) and the arguments on the other side
    // (`related`: kernel_size…): the message goes next to the one just edited, else to `field`.
    showApiError(err, { prefix = "" } = {}) {
      const strip = (f) => (prefix && f && (f === prefix || f.startsWith(`${prefix}.`) || f.startsWith(`${prefix}[`)) ? `layer${f.slice(prefix.length)}` : f);
      const sides = [err.field, ...(err.related || [])].filter(Boolean).map(strip);
      const at = lastEdited && sides.includes(lastEdited) && rowFor(lastEdited) ? lastEdited : strip(err.field || "");
      this.showErrors({ [at]: err.detail });
      return at;
    },
    get lastEdited() {
      return lastEdited;
    },
  };
}
