// On a phone the picture docks to the bottom of the screen while a field of the form has focus
// (app.css, `:has(:focus)`). The browser's own focus scroll runs before that restyle, so a field
// low on the screen could end up under the dock: once the dock is in place, the page scrolls the
// field just above it (and below the sticky top bar).

const NARROW = "(max-width: 900px)";

export function keepFieldsAboveDock(form, dockPanel, { gap = 10 } = {}) {
  form.addEventListener("focusin", (e) => {
    if (!window.matchMedia(NARROW).matches) return;
    const field = e.target;
    requestAnimationFrame(() => {
      if (document.activeElement !== field || getComputedStyle(dockPanel).position !== "fixed") return;
      const f = field.getBoundingClientRect();
      const dockTop = dockPanel.getBoundingClientRect().top;
      const barBottom = document.querySelector(".topbar")?.getBoundingClientRect().bottom ?? 0;
      if (f.bottom > dockTop - gap) window.scrollBy({ top: f.bottom - dockTop + gap, behavior: "instant" });
      else if (f.top < barBottom + gap) window.scrollBy({ top: f.top - barBottom - gap, behavior: "instant" });
    });
  });
}
