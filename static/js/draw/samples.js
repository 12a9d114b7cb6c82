// Sample images drawn by the page itself (nothing is downloaded): each fills an H × W canvas and
// comes back as a PNG data URL for the request's {"image": ...} input.

export const SAMPLES = [
  { id: "checkerboard", label: "checkerboard" },
  { id: "disc", label: "disc" },
  { id: "stripes-0", label: "stripes 0°" },
  { id: "stripes-45", label: "stripes 45°" },
  { id: "stripes-90", label: "stripes 90°" },
  { id: "stripes-135", label: "stripes 135°" },
  { id: "digit", label: "digit 3" },
];

function paint(ctx, id, h, w) {
  const side = Math.min(h, w);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  if (id === "checkerboard") {
    const s = Math.max(2, Math.round(side / 8));
    for (let y = 0; y < h; y += s) for (let x = 0; x < w; x += s) if (((x / s) + (y / s)) % 2 === 0) ctx.fillRect(x, y, s, s);
  } else if (id === "disc") {
    ctx.beginPath();
    ctx.arc(w / 2, h / 2, side * 0.35, 0, 2 * Math.PI);
    ctx.fill();
  } else if (id.startsWith("stripes-")) {
    // hard-edged stripes across the direction at `deg` (0°: vertical stripes, varying along x)
    const deg = Number(id.slice(8));
    const period = Math.max(4, Math.round(side / 5));
    const cos = Math.cos((deg * Math.PI) / 180);
    const sin = Math.sin((deg * Math.PI) / 180);
    const img = ctx.getImageData(0, 0, w, h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const t = x * cos + y * sin;
        const on = ((t % period) + period) % period < period / 2;
        const k = (y * w + x) * 4;
        const v = on ? 255 : 0;
        img.data[k] = v;
        img.data[k + 1] = v;
        img.data[k + 2] = v;
        img.data[k + 3] = 255;
      }
    ctx.putImageData(img, 0, 0);
  } else if (id === "digit") {
    ctx.font = `bold ${Math.round(h * 0.85)}px sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("3", w / 2, h / 2 + h * 0.04);
  }
}

// The sample as a PNG data URL of exactly h × w pixels.
export function sampleDataUrl(id, h, w) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  paint(ctx, id, h, w);
  return canvas.toDataURL("image/png");
}

// A picked file drawn to h × w pixels (the browser decodes it; the page sends a PNG of the input's size).
export async function fileDataUrl(file, h, w) {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  return canvas.toDataURL("image/png");
}

// A plane's pixels (from geometry/kernels.js planeRgba) on a canvas of its own size.
export function planeCanvas(rgba, h, w) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  if (w && h) canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
  return canvas;
}
