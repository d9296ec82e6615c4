/**
 * Copy a request body into a sink (a file, memory, a part buffer) in large batches, hashing each
 * batch while the previous one is being written.
 *
 * A BYOB reader reads straight into a reused 2 MiB buffer (two of them, one being written while
 * the other fills; smaller for a body of smaller known length): no per-chunk allocation or copy of
 * the pieces the connection hands out, one hash update and one write per 2 MiB, memory flat
 * (figures: bench/measurements.md). A driver keeps full-size buffers between bodies in a
 * {@link BufferPool}.
 *
 * @module
 */
import type { BufferPool } from "../../bytes.ts";
import { DirectBody } from "../../http/direct_body.ts";
import { SizeMismatch, type WriteOptions } from "../driver.ts";

/** Bytes gathered before one hash update and one write. */
export const WRITE_BATCH = 2 << 20;

/** One read into a buffer: the buffer (a BYOB read hands back a new one), bytes read, the end. */
interface Fill {
  buffer: Uint8Array<ArrayBuffer>;
  read: number;
  done: boolean;
}

type Filler = (buffer: Uint8Array<ArrayBuffer>, at: number) => Promise<Fill>;

/** Where batches go: `Deno.FsFile` is one (a write may store fewer bytes than given). */
export interface ByteSink {
  /** Store some of `bytes`; resolves to how many. */
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Copy `body` into `file` at its current position: batches of {@link WRITE_BATCH} bytes are shown
 * to `options.observe` (hashed) and written while the next one is read. Throws
 * {@link SizeMismatch} as soon as more than `options.expectedLength` bytes arrive (what was read
 * past the limit is never written). Returns the number of bytes written. Full-size buffers come
 * from `buffers` and go back to it once the body is written (without it, or after a failure, they
 * are freed).
 */
export async function writeBatched(
  body: ReadableStream<Uint8Array>,
  file: ByteSink,
  options: WriteOptions = {},
  buffers?: BufferPool,
): Promise<number> {
  const { observe, signal, expectedLength } = options;
  const { fill, cancel } = filler(body);
  const onAbort = () => cancel(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  // A body of smaller known length gets buffers one byte longer: a byte too many is then seen
  // before anything is written.
  const size = Math.min(WRITE_BATCH, (expectedLength ?? WRITE_BATCH) + 1);
  const pooled = buffers?.size === size ? buffers : undefined;
  const allocate = () => new Uint8Array(pooled ? pooled.take() : new ArrayBuffer(size));
  let current = allocate();
  let spare = allocate();
  let written = false;
  let filled = 0;
  let total = 0;
  let pending: Promise<void> = Promise.resolve();
  const flush = async () => {
    const batch = current.subarray(0, filled);
    observe?.(batch);
    await pending;
    pending = writeAll(file, batch);
    // Mark it handled now; it is awaited (and its error thrown) before the next batch or the end.
    pending.catch(() => {});
    [current, spare] = [spare, current];
    filled = 0;
  };
  try {
    while (true) {
      signal?.throwIfAborted();
      const { buffer, read, done } = await fill(current, filled);
      current = buffer;
      filled += read;
      total += read;
      if (expectedLength !== undefined && total > expectedLength) {
        throw new SizeMismatch(expectedLength, total);
      }
      if (done) break;
      if (filled === current.byteLength) await flush();
    }
    signal?.throwIfAborted();
    if (filled > 0) await flush();
    await pending;
    written = true;
    return total;
  } catch (error) {
    await pending.catch(() => {});
    cancel(error);
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // No read or write uses them now: kept for the next body, or their memory goes back at once,
    // not at the next full garbage collection (a buffer that lived through a few young ones waits
    // for it, and uploads in a row would each leave theirs behind).
    for (const buffer of [current, spare]) {
      if (!(written && pooled?.give(buffer.buffer))) giveBack(buffer);
    }
  }
}

/** Detach `bytes`' buffer, which frees its memory (unless a read still holds it: detached). */
function giveBack(bytes: Uint8Array<ArrayBuffer>): void {
  if (!bytes.buffer.detached) bytes.buffer.transfer(0);
}

/**
 * How to fill a buffer from `body`: direct reads for a request body that has them, BYOB reads for
 * other byte streams, else copies of each chunk.
 */
function filler(body: ReadableStream<Uint8Array>): { fill: Filler; cancel(reason: unknown): void } {
  if (body instanceof DirectBody && !body.locked) {
    const direct = body.direct();
    return {
      fill: async (buffer, at) => {
        const read = await direct.read(buffer.subarray(at));
        return { buffer, read: read ?? 0, done: read === null };
      },
      cancel: (reason) => void direct.cancel(reason).catch(() => {}),
    };
  }
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream: read chunks.
  }
  if (byob) {
    const reader = byob;
    return {
      fill: async (buffer, at) => {
        const { done, value } = await reader.read(buffer.subarray(at));
        // The read transferred the buffer: its memory now lives in `value.buffer`.
        const next = value ? new Uint8Array(value.buffer) : new Uint8Array(buffer.byteLength);
        return { buffer: next, read: value?.byteLength ?? 0, done };
      },
      cancel: (reason) => void reader.cancel(reason).catch(() => {}),
    };
  }
  const reader = body.getReader();
  let rest: Uint8Array | undefined;
  return {
    fill: async (buffer, at) => {
      if (!rest || rest.byteLength === 0) {
        const { done, value } = await reader.read();
        if (done) return { buffer, read: 0, done: true };
        rest = value;
      }
      const n = Math.min(rest.byteLength, buffer.byteLength - at);
      buffer.set(rest.subarray(0, n), at);
      rest = rest.subarray(n);
      return { buffer, read: n, done: false };
    },
    cancel: (reason) => void reader.cancel(reason).catch(() => {}),
  };
}

async function writeAll(file: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) written += await file.write(bytes.subarray(written));
}
