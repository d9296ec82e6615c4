/**
 * Copy a request body into a sink (a file, memory, a part buffer) in large batches, hashing each
 * batch while the previous one is being written (on the main thread, or on a digest thread).
 *
 * A BYOB reader reads straight into a reused 1 MiB buffer: no per-chunk allocation or copy of
 * the ~64 KiB chunks the runtime hands out, one hash update and one write per MiB, memory flat
 * (figures: bench/measurements.md).
 *
 * @module
 */
import { SizeMismatch, type WriteOptions } from "../driver.ts";

/** Bytes gathered before one hash update and one write. */
export const WRITE_BATCH = 1 << 20;

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
 * Copy `body` into `file` at its current position in batches of {@link WRITE_BATCH} bytes, each
 * written while the next is read. `options.observe` sees a batch before it is written;
 * `options.hasher` is lent it after (hashing on another thread while later batches are read and
 * written). Throws {@link SizeMismatch} as soon as more than `options.expectedLength` bytes arrive
 * (what was read past the limit is never written). Returns the number of bytes written, once
 * every batch is written and hashed.
 */
export async function writeBatched(
  body: ReadableStream<Uint8Array>,
  file: ByteSink,
  options: WriteOptions = {},
): Promise<number> {
  const { observe, hasher, signal, expectedLength } = options;
  const { fill, cancel } = filler(body);
  const onAbort = () => cancel(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const pool = new BatchPool(hasher ? LENT_BATCHES : 2);
  let current = await pool.take();
  let filled = 0;
  let total = 0;
  /** The last batch's write (each waits for the one before) and its hash, marked handled here. */
  let written: Promise<void> = Promise.resolve();
  let hashed: Promise<void> = Promise.resolve();
  const flush = () => {
    const batch = current.subarray(0, filled);
    observe?.(batch);
    written = written.then(() => writeAll(file, batch));
    // The hash is asked in the order the writes end: batches reach the hasher in order.
    const done = hasher
      ? (hashed = written.then(() => hasher.hash(batch)).then((buffer) => {
        pool.give(new Uint8Array(buffer));
      }))
      : written.then(() => pool.give(batch));
    done.catch((error) => pool.fail(error));
    written.catch(() => {});
    hashed.catch(() => {});
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
      if (filled === current.byteLength) {
        flush();
        current = await pool.take();
      }
    }
    signal?.throwIfAborted();
    if (filled > 0) flush();
    await written;
    await hashed;
    return total;
  } catch (error) {
    // The caller cuts the file back: no write may still be running then.
    await written.catch(() => {});
    cancel(error);
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Batches one write holds with a hasher: one being read, the others written or hashed. */
const LENT_BATCHES = 4;

/**
 * The batch buffers of one write, made as needed up to a count: {@link take} waits for one to
 * come back when all are out, and fails once a write or hash failed.
 */
class BatchPool {
  readonly #free: Uint8Array<ArrayBuffer>[] = [];
  readonly #waiting: {
    resolve(buffer: Uint8Array<ArrayBuffer>): void;
    reject(error: unknown): void;
  }[] = [];
  #left: number;
  #failed = false;
  #error: unknown;

  constructor(count: number) {
    this.#left = count;
  }

  take(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#failed) return Promise.reject(this.#error);
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    if (this.#left > 0) {
      this.#left--;
      return Promise.resolve(new Uint8Array(WRITE_BATCH));
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  give(buffer: Uint8Array<ArrayBuffer>): void {
    const full = new Uint8Array(buffer.buffer);
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(full);
    else this.#free.push(full);
  }

  fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = error;
    for (const { reject } of this.#waiting.splice(0)) reject(error);
  }
}

/** How to fill a buffer from `body`: BYOB reads for byte streams, else copies of each chunk. */
function filler(body: ReadableStream<Uint8Array>): { fill: Filler; cancel(reason: unknown): void } {
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
        const next = value ? new Uint8Array(value.buffer) : new Uint8Array(WRITE_BATCH);
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
