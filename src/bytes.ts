/**
 * Joining byte chunks (small documents read whole: manifests, journals, short bodies).
 *
 * @module
 */

/** Join `chunks` (of `size` bytes in all) into one array. */
export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}
