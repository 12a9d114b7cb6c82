// Colour per dimension key. Dimensions that are "the same axis" share a key (see dims.js), so the
// eye can follow e.g. C_in from the input to the weight. Okabe–Ito hues stay distinct for the
// common forms of colour blindness.

const FIXED = {
  batch: "#6b7280",
  extra: "#8c6d31",
  in: "#e69f00",
  out: "#009e73",
  in2: "#cc79a7",
  group: "#999933",
  L: "#0072b2",
  H: "#0072b2",
  W: "#d55e00",
  D: "#56b4e9",
  T: "#0072b2",
  S: "#d55e00",
  E: "#882255",
};

const SPARE = ["#882255", "#44aa99", "#117733", "#aa4499", "#332288", "#999933", "#661100", "#6699cc"];

// Each diagram gets its own palette so spare colours are handed out in drawing order and the
// same unknown key keeps its colour across every tensor of that diagram.
export function createPalette() {
  const assigned = new Map();
  let next = 0;
  return function colorOf(key) {
    if (key in FIXED) return FIXED[key];
    if (!assigned.has(key)) assigned.set(key, SPARE[next++ % SPARE.length]);
    return assigned.get(key);
  };
}

// Roles of frame cells in the sliding-window view.
export const CELL = {
  input: "#dbeafe",
  padding: "#f3f4f6",
  zero: "#fef3c7",
  outside: "#ffffff", // past the input (ceil_mode): torch reads nothing there
  window: "#f59e0b",
  output: "#bbf7d0",
  pending: "#ffffff",
  current: "#16a34a",
};
