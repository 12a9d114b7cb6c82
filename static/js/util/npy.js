// A NumPy .npy file (what POST /api/run?format=npy sends) as {shape, data}: little-endian float32,
// float64 and integer arrays; no DOM.

const TYPES = { "<f4": Float32Array, "<f8": Float64Array, "<i8": BigInt64Array, "<i4": Int32Array, "|u1": Uint8Array, "|b1": Uint8Array };

export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.slice(1, 6)) !== "NUMPY") throw new Error("not a .npy file");
  const major = bytes[6];
  const view = new DataView(buffer);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.slice(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] || "").split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const Type = TYPES[descr];
  if (!Type || fortran) throw new Error(`unsupported .npy array (${descr}${fortran ? ", Fortran order" : ""})`);
  const offset = start + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Type(buffer.slice(offset, offset + count * Type.BYTES_PER_ELEMENT));
  return { shape, data };
}

// The (H, W) planes of sample 0 of an (N, C, H, W) array, as nested lists of numbers.
export function npyPlanes({ shape, data }, maxChannels = Infinity) {
  if (shape.length !== 4) return [];
  const [, c, h, w] = shape;
  const planes = [];
  for (let ch = 0; ch < Math.min(c, maxChannels); ch++) {
    const plane = [];
    for (let r = 0; r < h; r++) {
      const at = (ch * h + r) * w;
      plane.push(Array.from(data.subarray(at, at + w), Number));
    }
    planes.push(plane);
  }
  return planes;
}
