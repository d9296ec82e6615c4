/**
 * Byte streams that fill their reader's buffer instead of allocating one per chunk. A blob copy
 * reads a response body into a few reused buffers through every layer (resume, verification)
 * down to the upload socket: fresh buffers per chunk cost here about three times the CPU of the
 * copy itself (1 GiB: ~2.2 s with a new 64 KiB–1 MiB buffer per read, ~0.8 s into one reused
 * buffer). The layers made here are read source to source, without the streams between them.
 *
 * @module
 */

/** Bytes a default (non-BYOB) reader of these streams gets per read. */
const AUTO_CHUNK = 256 * 1024;

/** Reads into a caller's view; the result views the same memory (possibly transferred). */
export interface ViewReader {
  /** Fill `view` (partly); `done` at the end, `value` then views the same memory, empty. */
  read(view: Uint8Array<ArrayBuffer>): Promise<{ done: boolean; value: Uint8Array<ArrayBuffer> }>;
  /** Cancel the stream. */
  cancel(reason?: unknown): Promise<void>;
  /** Release the lock on the stream. */
  releaseLock(): void;
}

/** What a byte stream made by {@link viewSourceStream} reads from: views filled in place. */
export interface ViewSource {
  /** Fill `view` (partly); `done` at the end with an empty view of the same memory. */
  read(view: Uint8Array<ArrayBuffer>): Promise<{ done: boolean; value: Uint8Array<ArrayBuffer> }>;
  /** The stream was cancelled. */
  cancel(reason?: unknown): void | Promise<void>;
}

/** The source of each stream made by {@link viewSourceStream}. */
const sources = new WeakMap<ReadableStream<Uint8Array>, ViewSource>();

/**
 * A byte stream whose pulls fill their request's view from `source`. {@link viewReader} reads
 * such a stream's source directly (the stream is not even locked; its one reader reads it): a
 * chunk then passes no stream machinery, whose promises and views cost a blob copy more CPU than
 * its socket reads.
 */
export function viewSourceStream(source: ViewSource): ReadableStream<Uint8Array> {
  const stream: ReadableStream<Uint8Array> = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: AUTO_CHUNK,
    async pull(controller) {
      const request = controller.byobRequest;
      const view = request?.view;
      if (!request || !view) throw new TypeError("byte stream pulled without a request");
      const into = new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
      const { done, value } = await source.read(into);
      if (done) controller.close();
      // The answer views the request's memory at its offset (a read may have moved its buffer).
      request.respondWithNewView(done ? value.subarray(0, 0) : value);
    },
    cancel: (reason) => source.cancel(reason),
  });
  sources.set(stream, source);
  return stream;
}

/**
 * A {@link ViewReader} of any stream: its source's reads for a stream of
 * {@link viewSourceStream}, BYOB reads of another byte stream, else copies of its chunks.
 */
export function viewReader(stream: ReadableStream<Uint8Array>): ViewReader {
  const source = sources.get(stream);
  if (source && !stream.locked) {
    return {
      read: (view) => source.read(view),
      cancel: (reason) => stream.cancel(reason),
      releaseLock: () => {},
    };
  }
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
