/** Float32Array ↔ base64, the form vectors take inside JSON (document files, Redis values). */

/** The vector's bytes (little-endian, as in memory) in base64. */
export function float32ToBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/** A vector from {@link float32ToBase64}'s output, in a fresh 4-byte-aligned buffer (pooled Buffers may start unaligned). */
export function base64ToFloat32(s: string): Float32Array {
  const bytes = new Uint8Array(Buffer.from(s, 'base64'));
  return new Float32Array(bytes.buffer, 0, bytes.byteLength >>> 2);
}
