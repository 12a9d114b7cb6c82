// The lesson bar: the tutorial's steps (GET /api/lesson, plain data) walked in order. It draws the
// current step (title, a few sentences, what to look at, a link to the reproduction script) with
// previous/next; the step itself lives in state.ui.lesson, so it travels in the link.

import { h } from "../util/dom.js";

// steps: the lesson's steps; onOpen(step): open that step's view; onCode(): show the PyTorch code;
// onClose(): leave the lesson.
export function createLessonBar(root, { steps, onOpen, onCode, onClose }) {
  const byId = new Map(steps.map((s, i) => [s.id, i]));
  let current = null;

  function render(id) {
    const i = byId.get(id);
    current = i ?? null;
    root.hidden = current === null;
    root.replaceChildren();
    if (current === null) return;
    const step = steps[i];
    root.dataset.step = step.id;
    const nav = h(
      "div",
      { class: "lesson-nav" },
      h("button", { type: "button", id: "lesson-prev", disabled: i === 0, "aria-label": "Previous step" }, "◀ Previous"),
      h("span", { class: "lesson-count", id: "lesson-count" }, `Step ${i + 1} of ${steps.length}`),
      h("button", { type: "button", id: "lesson-next", class: "primary", disabled: i === steps.length - 1, "aria-label": "Next step" }, "Next ▶"),
      h("button", { type: "button", id: "lesson-close", class: "link", "aria-label": "Leave the lesson", title: "Leave the lesson" }, "×"),
    );
    const head = h(
      "div",
      { class: "lesson-head" },
      h("h2", { id: "lesson-title" }, h("span", { class: "lesson-section" }, `${step.section} · `), step.title),
      nav,
    );
    const body = h("div", { class: "lesson-body" }, ...step.text.map((t) => h("p", {}, t)));
    const look = h(
      "div",
      { class: "lesson-look" },
      h("h3", {}, "Look at"),
      h("ul", {}, ...step.look.map((t) => h("li", {}, t))),
      h("button", { type: "button", id: "lesson-code", class: "link" }, "Its PyTorch code ▸"),
    );
    root.append(head, h("div", { class: "lesson-cols" }, body, look));
    root.querySelector("#lesson-prev").addEventListener("click", () => go(i - 1));
    root.querySelector("#lesson-next").addEventListener("click", () => go(i + 1));
    root.querySelector("#lesson-close").addEventListener("click", () => onClose());
    root.querySelector("#lesson-code").addEventListener("click", () => onCode(step));
  }

  function go(i) {
    if (i < 0 || i >= steps.length) return;
    onOpen(steps[i]);
  }

  return {
    render,
    has: (id) => byId.has(id),
    first: () => steps[0],
    get current() {
      return current === null ? null : steps[current];
    },
  };
}
