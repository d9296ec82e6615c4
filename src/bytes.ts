/**
 * Joining byte chunks (small documents read whole: manifests, journals, short bodies), and
 * buffers reused from one body to the next.
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

/**
 * Reusable buffers of one size for bodies: a transfer takes two and gives them back, so bodies in
 * a row do not each fault in fresh megabytes (on this kind of VM freed memory goes back to the
 * host and is faulted in again: bench/README.md, session 13).
 */
export class BufferPool {
  /** Size of every buffer. */
  readonly size: number;
  #free: ArrayBuffer[] = [];
  #keep: number;

  /** Buffers of `size` bytes; at most `keep` are kept when given back. */
  constructor(size: number, keep: number) {
    this.size = size;
    this.#keep = keep;
  }

  /** A buffer (reused when one is free). */
  take(): ArrayBuffer {
    return this.#free.pop() ?? new ArrayBuffer(this.size);
  }

  /**
   * Give a buffer back; whether it was kept (not when detached, of another size, or enough are
   * kept).
   */
  give(buffer: ArrayBuffer): boolean {
    if (buffer.byteLength !== this.size || this.#free.length >= this.#keep) return false;
    this.#free.push(buffer);
    return true;
  }
}
