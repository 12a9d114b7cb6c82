// Layout of a network's flow diagram, top to bottom: an input pill, one box per layer, an edge
// between consecutive layers labelled with the tensor's shape, residual blocks as a dashed frame
// whose skip connection runs down a lane on the right into a ⊕, and an output pill. The edge into
// the layer where the shapes stop fitting is lengthened to hold the error message. Pure: takes
// the graph from net/model.js and a width, returns positioned primitives for draw/network.js.

import { shapeStr } from "../util/format.js";
import { argSummary, isOpaque } from "../net/model.js";

export const NET = {
  NODE_H: 48,
  NODE_H_SMALL: 30,
  EDGE: 40, // vertical gap between two blocks of a chain
  DOT_GAP: 26, // split point → first layer of a residual body
  PAD: 12, // frame padding
  HEAD: 24, // frame label height
  BOTTOM: 12,
  LANE_GAP: 30, // body → skip lane
  ADD_R: 11,
  PILL_H: 26,
  MARGIN: 12,
  W_MAX: 264,
  W_MIN: 184,
  CH: 6.6, // px per character, 12px sans (estimate; no DOM here)
  MONO: 7.0, // px per character, 11.5px monospace
  MSG_LINE: 15,
};

export function wrapText(text, maxChars) {
  const words = String(text || "").split(/\s+/).filter(Boolean);
  const lines = [];
  let cur = "";
  for (const w of words) {
    if (!cur) cur = w;
    else if (cur.length + 1 + w.length <= maxChars) cur += ` ${w}`;
    else {
      lines.push(cur);
      cur = w;
    }
    while (cur.length > maxChars) {
      lines.push(cur.slice(0, maxChars));
      cur = cur.slice(maxChars);
    }
  }
  if (cur) lines.push(cur);
  return lines;
}

function shapeText(shape, status) {
  if (Array.isArray(shape)) return shapeStr(shape);
  return status === "unreached" ? "?" : "";
}

// The failure sits at the start of `it`: the layer itself, or the first layer of a nested group.
// (A residual block that fails at its ⊕ carries the message on its own body → ⊕ edge.)
function failsAtStart(it, bad) {
  if (!bad || !it) return false;
  if (it === bad) return it.kind !== "res";
  if (it.kind === "seq") return failsAtStart(it.items[0], bad);
  return false;
}

export function layoutNetwork(graph, { width = 600, message = "" } = {}) {
  const N = NET;
  const avail = Math.max(260, width);
  let W = N.W_MAX;
  let lay = build(W);
  if (lay.width > avail) {
    W = Math.max(N.W_MIN, Math.floor(W - (lay.width - avail)));
    lay = build(W);
  }
  return lay;

  function build(W) {
    const SW = Math.min(W, 176); // a shortcut layer sits in the lane, a little narrower
    const msgChars = Math.max(20, Math.floor((W - 20) / 6.3));
    const msgLines = graph.bad && message ? wrapText(message, msgChars) : [];
    const msgH = msgLines.length ? msgLines.length * N.MSG_LINE + 14 : 0;
    const bad = graph.bad;
    const extra = (it) => (failsAtStart(it, bad) ? msgH + 8 : 0);
    const M = new Map(); // item → its measure

    // ---- measure: extents left/right of the axis and height, per item ----
    function measure(it, w) {
      let m;
      if (it.kind === "layer") {
        // A layer without arguments (ReLU, Flatten) needs one line only.
        m = { left: w / 2, right: w / 2, h: argSummary(it.config, 99) ? N.NODE_H : N.NODE_H_SMALL, w };
      } else if (it.kind === "seq") {
        const c = measureChain(it.items, w);
        m = { left: c.left + N.PAD, right: c.right + N.PAD, h: N.HEAD + c.h + N.BOTTOM };
      } else {
        // residual block
        const body = measureChain(it.body.items, w);
        const sc = it.shortcut ? measure(it.shortcut, SW) : null;
        const bodyRight = Math.max(body.right, w / 2);
        const lane = bodyRight + N.LANE_GAP + (sc ? sc.left : 0);
        const dotGap = N.DOT_GAP + extra(it.body.items[0]);
        const inner = Math.max(dotGap + body.h, sc ? sc.h + 2 * N.EDGE : 0);
        const badGap = bad === it ? msgH + 8 : 0;
        m = {
          left: Math.max(body.left, w / 2) + N.PAD,
          right: lane + (sc ? sc.right : 10) + N.PAD,
          h: N.HEAD + inner + N.EDGE + badGap + 2 * N.ADD_R + N.BOTTOM,
          lane,
          inner,
          dotGap,
          badGap,
        };
      }
      M.set(it, m);
      return m;
    }

    function measureChain(items, w) {
      let h = 0;
      let left = w / 2;
      let right = w / 2;
      items.forEach((it, i) => {
        const m = measure(it, w);
        h += m.h + (i > 0 ? gapBefore(it) : 0);
        left = Math.max(left, m.left);
        right = Math.max(right, m.right);
      });
      return { h, left, right };
    }

    function gapBefore(it) {
      return N.EDGE + extra(it);
    }

    // Red only where the shapes stop fitting; a bad argument (nothing built) keeps its edge grey.
    function edgeStatus(target, shape = target.inShape) {
      if (failsAtStart(target, bad)) return bad.status === "bad" ? "bad" : "unknown";
      if (target.status === "unreached") return "unknown";
      if (target.status === "unbuilt") return Array.isArray(shape) ? "ok" : "unknown";
      return "ok";
    }

    // ---- place ----
    const nodes = [];
    const edges = [];
    const groups = [];
    const adds = [];
    const dots = [];
    const lanes = [];
    let msgBox = null;

    function edge(x, y1, y2, target, { shape = target.inShape, label = true, kind = "main" } = {}) {
      const status = edgeStatus(target, shape);
      const e = { kind, points: [[x, y1], [x, y2]], status, to: target.path, text: label || status === "bad" ? shapeText(shape, target.status) : "", lx: x + 8, ly: (y1 + y2) / 2 + 4 };
      if (failsAtStart(target, bad) && msgH) {
        // Shape label near the top, the message below it, the arrow continues to the layer.
        e.ly = y1 + 15;
        msgBox = { x: x - W / 2, y: y1 + 24, w: W, h: msgH - 4, lines: msgLines };
      }
      edges.push(e);
      return e;
    }

    // Returns {inY, outY}: where the incoming edge ends and the outgoing one starts.
    function place(it, ax, top, w) {
      const m = M.get(it) || measure(it, w);
      if (it.kind === "layer") {
        const nw = m.w;
        const chars = Math.floor((nw - 22) / N.CH);
        nodes.push({
          item: it,
          x: ax - nw / 2,
          y: top,
          w: nw,
          h: m.h,
          compact: m.h === N.NODE_H_SMALL,
          title: it.type,
          tag: it.path,
          sub: argSummary(it.config, chars),
          // a layer the server does not run: drawn apart (dashed), its sub line says so
          opaque: isOpaque(it.config),
          chars,
        });
        return { inY: top, outY: top + m.h };
      }
      if (it.kind === "seq") {
        groups.push({ item: it, kind: "seq", x: ax - m.left, y: top, w: m.left + m.right, h: m.h, label: groupLabel(it) });
        const r = placeChain(it.items, ax, top + N.HEAD, w);
        return r;
      }
      // residual
      groups.push({ item: it, kind: "res", x: ax - m.left, y: top, w: m.left + m.right, h: m.h, label: groupLabel(it) });
      const dotY = top + N.HEAD;
      dots.push({ x: ax, y: dotY });
      const bodyTop = dotY + m.dotGap;
      let bodyOut;
      if (it.body.items.length) {
        const r = placeChain(it.body.items, ax, bodyTop, w);
        // The body's input is the block's: labelled once, on the edge into the block.
        edge(ax, dotY, r.inY, it.body.items[0], { label: false, kind: "inner" });
        bodyOut = r.outY;
      } else bodyOut = dotY;
      const addY = top + N.HEAD + m.inner + N.EDGE + m.badGap + N.ADD_R;
      const resStatus = it.status === "bad" ? "bad" : it.outShape ? "ok" : "unknown";
      // body → ⊕
      const lastBody = it.body.items[it.body.items.length - 1];
      const be = {
        kind: "main",
        points: [[ax, bodyOut], [ax, addY - N.ADD_R]],
        status: resStatus === "bad" ? "bad" : it.bodyOut ? "ok" : "unknown",
        to: `${it.path}:add`,
        text: shapeText(it.bodyOut, lastBody?.status),
        lx: ax + 8,
        ly: (bodyOut + addY - N.ADD_R) / 2 + 4,
      };
      if (graph.bad === it && msgH) {
        be.ly = bodyOut + 15;
        msgBox = { x: ax - w / 2, y: bodyOut + 24, w, h: msgH - 4, lines: msgLines };
      }
      edges.push(be);
      adds.push({ item: it, cx: ax, cy: addY, r: N.ADD_R, status: resStatus });
      // skip lane
      const lx = ax + m.lane;
      const skipStatus = resStatus === "bad" ? "bad" : it.skipOut ? "ok" : "unknown";
      if (it.shortcut) {
        const scTop = dotY + N.EDGE;
        const r = place(it.shortcut, lx, scTop, SW);
        lanes.push({ points: [[ax, dotY], [lx, dotY], [lx, r.inY]], status: edgeStatus(it.shortcut), arrow: true, text: "" });
        lanes.push({
          points: [[lx, r.outY], [lx, addY], [ax + N.ADD_R + 2, addY]],
          status: skipStatus,
          arrow: true,
          text: shapeText(it.skipOut, it.shortcut.status),
          lx: lx + 8,
          ly: (r.outY + addY) / 2 + 4,
        });
      } else {
        lanes.push({
          points: [[ax, dotY], [lx, dotY], [lx, addY], [ax + N.ADD_R + 2, addY]],
          status: skipStatus,
          arrow: true,
          text: "identity",
          rotate: true,
          lx: lx - 6,
          ly: (dotY + addY) / 2,
        });
      }
      return { inY: dotY, outY: addY + N.ADD_R };
    }

    function placeChain(items, ax, top, w) {
      let y = top;
      let first = null;
      let prevOut = null;
      items.forEach((it, i) => {
        if (i > 0) y += gapBefore(it);
        const r = place(it, ax, y, w);
        if (prevOut !== null) edge(ax, prevOut, r.inY, it);
        if (first === null) first = r.inY;
        prevOut = r.outY;
        y += M.get(it).h;
      });
      return { inY: first ?? top, outY: prevOut ?? top };
    }

    // ---- whole diagram ----
    const root = graph.root;
    const rootM = root.kind === "seq" ? measureChain(root.items, W) : measure(root, W);
    const left = Math.max(rootM.left, W / 2);
    const ax = N.MARGIN + left;
    const pills = [];
    const inTop = N.MARGIN;
    pills.push({ kind: "input", x: ax - 44, y: inTop, w: 88, h: N.PILL_H, text: "input" });
    const firstTarget = root.kind === "seq" ? root.items[0] : root;
    const firstGap = N.EDGE + (firstTarget ? extra(firstTarget) : 0);
    const rootTop = inTop + N.PILL_H + firstGap;
    let r;
    if (root.kind === "seq") r = placeChain(root.items, ax, rootTop, W);
    else r = place(root, ax, rootTop, W);
    if (firstTarget) edge(ax, inTop + N.PILL_H, r.inY, firstTarget, { shape: graph.inputShape ?? firstTarget.inShape });
    const outTop = rootTop + rootM.h + N.EDGE;
    const outTarget = { path: "", inShape: graph.outputShape, status: graph.outputShape ? "ok" : graph.error ? (graph.error.trace ? "unreached" : "unbuilt") : "ok" };
    edge(ax, r.outY, outTop, outTarget, { shape: graph.outputShape, kind: "out" });
    pills.push({ kind: "output", x: ax - 44, y: outTop, w: 88, h: N.PILL_H, text: "output" });
    // Top to bottom, so the drawing's (and a screen reader's) order follows the flow.
    edges.sort((a, b) => a.points[0][1] - b.points[0][1] || a.points[0][0] - b.points[0][0]);
    const labelRight = Math.max(0, ...edges.map((e) => (e.text ? e.lx + e.text.length * N.MONO + 4 : 0)), ...lanes.map((l) => (l.text && !l.rotate ? l.lx + l.text.length * N.MONO + 4 : 0)));
    const widthOut = Math.ceil(Math.max(ax + rootM.right + N.MARGIN, labelRight + N.MARGIN, msgBox ? msgBox.x + msgBox.w + N.MARGIN : 0));
    return { width: widthOut, height: Math.ceil(outTop + N.PILL_H + N.MARGIN), axis: ax, W, nodes, edges, lanes, groups, adds, dots, pills, message: msgBox };
  }
}

function groupLabel(it) {
  const name = it.path ? it.path.split(".").pop() : "";
  return name ? `${name} · ${it.type}` : it.type;
}
