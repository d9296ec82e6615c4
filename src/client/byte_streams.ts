/**
 * Byte streams that fill their reader's buffer instead of allocating one per chunk. A blob copy
 * reads a response body into a few reused buffers (BYOB reads) through every layer (resume,
 * verification) down to the upload socket: fresh buffers per chunk cost here about three times
 * the CPU of the copy itself (1 GiB: ~2.2 s with a new 64 KiB–1 MiB buffer per read, ~0.8 s
 * into one reused buffer).
 *
 * @module
 */

/** Bytes a default (non-BYOB) reader of these streams gets per read. */
export const AUTO_CHUNK = 256 * 1024;

/** Reads into a caller's view; the result views the same memory (possibly transferred). */
export interface ViewReader {
  /** Fill `view` (partly); `done` at the end, `value` then views the same memory, empty. */
  read(view: Uint8Array<ArrayBuffer>): Promise<{ done: boolean; value: Uint8Array<ArrayBuffer> }>;
  /** Cancel the stream. */
  cancel(reason?: unknown): Promise<void>;
  /** Release the lock on the stream. */
  releaseLock(): void;
}

/** A {@link ViewReader} of any stream: BYOB reads of a byte stream, else copies of its chunks. */
export function viewReader(stream: ReadableStream<Uint8Array>): ViewReader {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    byob = undefined;
  }
  if (byob) {
    const reader = byob;
    return {
      async read(view) {
        const bufferLength = view.buffer.byteLength;
        const offset = view.byteOffset;
        const { done, value } = await reader.read(view);
        // A read of a cancelled stream gives no view back: an empty one of the same shape.
        const out = value ?? new Uint8Array(new ArrayBuffer(bufferLength), offset, 0);
        return { done, value: out as Uint8Array<ArrayBuffer> };
      },
      cancel: (reason) => reader.cancel(reason),
      releaseLock: () => reader.releaseLock(),
    };
  }
  const reader = stream.getReader();
  let left: Uint8Array | undefined;
  return {
    async read(view) {
      while (!left || left.byteLength === 0) {
        const { done, value } = await reader.read();
        if (done) return { done: true, value: view.subarray(0, 0) };
        left = value;
      }
      const n = Math.min(left.byteLength, view.byteLength);
      view.set(left.subarray(0, n));
      left = left.subarray(n);
      return { done: false, value: view.subarray(0, n) };
    },
    cancel: (reason) => reader.cancel(reason),
    releaseLock: () => reader.releaseLock(),
  };
}

/** The shape of a pending BYOB request's view, to read into it (or a replacement) by parts. */
export interface RequestView {
  /** Its buffer (replaced when a read transfers it). */
  buffer: ArrayBuffer;
  /** Where the request's bytes start. */
  offset: number;
  /** How many bytes it wants at most. */
  length: number;
  /** Size of the whole buffer (a detached one reads 0). */
  bufferLength: number;
}

/** The pending request of a byte stream's `pull` (one always exists with `autoAllocateChunkSize`). */
export function requestView(controller: ReadableByteStreamController): RequestView {
  const view = controller.byobRequest?.view;
  if (!view) throw new TypeError("byte stream pulled without a request");
  const buffer = view.buffer as ArrayBuffer;
  return {
    buffer,
    offset: view.byteOffset,
    length: view.byteLength,
    bufferLength: buffer.byteLength,
  };
}

/** A fresh buffer of the request's shape, after a failed read took the previous one. */
export function replaceBuffer(request: RequestView): void {
  request.buffer = new ArrayBuffer(request.bufferLength);
}

/** The view to read into. */
export function intoView(request: RequestView): Uint8Array<ArrayBuffer> {
  return new Uint8Array(request.buffer, request.offset, request.length);
}

/** Answer the pending request with `n` bytes at its offset of `buffer` (0 after close). */
export function respond(
  controller: ReadableByteStreamController,
  request: RequestView,
  n: number,
): void {
  controller.byobRequest!.respondWithNewView(new Uint8Array(request.buffer, request.offset, n));
}
