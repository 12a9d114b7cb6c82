// Export a drawn SVG as a standalone .svg or a .png. The page styles SVG with CSS classes, which a
// file on its own would lose, so computed styles are copied onto the clone first. Big grids are
// painted on canvases inside the SVG (draw/canvas.js); a file cannot hold a live canvas, so each
// becomes an <image> of its pixels in the same place.

const SVG_NS = "http://www.w3.org/2000/svg";
const XLINK_NS = "http://www.w3.org/1999/xlink";

const PROPS = [
  "fill", "fill-opacity", "stroke", "stroke-width", "stroke-dasharray", "stroke-opacity", "opacity",
  "font-family", "font-size", "font-weight", "font-style", "text-anchor", "dominant-baseline", "visibility", "display",
  // a label drawn with a halo (paint-order: stroke) would otherwise have its halo painted over its letters
  "paint-order", "stroke-linejoin",
];

function inlineStyles(src, dst) {
  const cs = window.getComputedStyle(src);
  const decl = PROPS.map((p) => `${p}:${cs.getPropertyValue(p)}`).join(";");
  dst.setAttribute("style", decl);
  const a = src.children;
  const b = dst.children;
  for (let i = 0; i < a.length; i++) if (b[i]) inlineStyles(a[i], b[i]);
}

function canvasesToImages(src, clone) {
  const live = src.querySelectorAll("foreignObject");
  const copies = clone.querySelectorAll("foreignObject");
  live.forEach((fo, i) => {
    const canvas = fo.querySelector("canvas");
    if (!canvas || !copies[i]) return;
    const img = document.createElementNS(SVG_NS, "image");
    for (const k of ["x", "y", "width", "height", "class"]) if (fo.hasAttribute(k)) img.setAttribute(k, fo.getAttribute(k));
    const url = canvas.toDataURL("image/png");
    img.setAttribute("href", url);
    img.setAttributeNS(XLINK_NS, "xlink:href", url);
    img.setAttribute("preserveAspectRatio", "none");
    copies[i].replaceWith(img);
  });
}

export function svgString(svg) {
  const clone = svg.cloneNode(true);
  inlineStyles(svg, clone);
  canvasesToImages(svg, clone);
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  clone.setAttribute("xmlns:xlink", "http://www.w3.org/1999/xlink");
  const vb = svg.viewBox.baseVal;
  clone.setAttribute("width", String(vb?.width || svg.clientWidth));
  clone.setAttribute("height", String(vb?.height || svg.clientHeight));
  // A white backdrop: transparent exports look broken in dark viewers.
  const bg = document.createElementNS(SVG_NS, "rect");
  // from the viewBox's corner: a drawing framed from a point other than 0,0 (the whole dataflow graph)
  bg.setAttribute("x", String(vb?.x || 0));
  bg.setAttribute("y", String(vb?.y || 0));
  bg.setAttribute("width", "100%");
  bg.setAttribute("height", "100%");
  bg.setAttribute("fill", "#ffffff");
  clone.insertBefore(bg, clone.firstChild);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(clone)}`;
}

export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function exportSvg(svg, filename) {
  download(new Blob([svgString(svg)], { type: "image/svg+xml" }), filename);
}

export function pngBlob(svg, scale = 2) {
  const text = svgString(svg);
  const vb = svg.viewBox.baseVal;
  const w = Math.ceil(vb?.width || svg.clientWidth);
  const h = Math.ceil(vb?.height || svg.clientHeight);
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = w * scale;
      canvas.height = h * scale;
      const ctx = canvas.getContext("2d");
      ctx.scale(scale, scale);
      ctx.drawImage(img, 0, 0, w, h);
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("PNG encoding failed"))), "image/png");
    };
    img.onerror = () => reject(new Error("the SVG could not be rasterised"));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
  });
}

export async function exportPng(svg, filename) {
  download(await pngBlob(svg), filename);
}
