/**
 * Writes the safetensors format (an 8-byte little-endian header length, a
 * JSON header naming each tensor's dtype, shape and byte range, then the
 * tensors' bytes) for float32 tensors. Tensors are laid out in name order
 * and the header is padded with spaces to a multiple of 8 bytes, so the
 * same tensors always give the same bytes (a pinned sha256 can check them).
 */

/** One float32 tensor to write. */
export interface F32Tensor {
  shape: readonly number[];
  data: Float32Array;
}

/** The safetensors bytes of `tensors` (sorted by name), with optional string metadata. */
export function encodeSafetensors(tensors: ReadonlyMap<string, F32Tensor>, metadata?: Record<string, string>): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`tensor '${name}': shape ${JSON.stringify(t.shape)} needs ${count} values, got ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = Buffer.allocUnsafe(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** Reads float32 tensors back from safetensors bytes (other dtypes are an error). */
export function decodeSafetensors(bytes: Uint8Array): Map<string, F32Tensor> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, F32Tensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`tensor '${name}' is ${t.dtype}; only F32 is read`);
    const [start, end] = t.data_offsets;
    const data = new Float32Array((end - start) / 4);
    new Uint8Array(data.buffer).set(buf.subarray(8 + n + start, 8 + n + end));
    out.set(name, { shape: t.shape, data });
  }
  return out;
}
