/**
 * `relayBytes`: wrap a request body in a guard (limits, error mapping) without losing zero-copy
 * reads. The relay is a byte stream: a consumer's BYOB read goes through it into the source with
 * the consumer's own buffer, so a 1 MiB read stays one read of up to 1 MiB, not sixteen 64 KiB
 * chunks, each allocated and then copied.
 *
 * Measured on the 2-core machine (1 GiB from curl, hash + write): BYOB reads into a reused 1 MiB
 * buffer ~600 MB/s against ~300 MB/s for 64 KiB chunks copied; peak RSS 69 MiB against 111 MiB.
 *
 * @module
 */

/** One read of the source. */
export type ReadResult = ReadableStreamReadResult<Uint8Array<ArrayBuffer>>;

/**
 * Sees every read of the source: returns its result, or throws to fail the relayed stream (the
 * source is then cancelled with that error). May race the read against a timer, map its errors,
 * count its bytes.
 */
export type ReadStep = (read: Promise<ReadResult>) => Promise<ReadResult>;

/** Chunk size of reads for consumers that do not bring their own buffer. */
const AUTO_CHUNK = 64 * 1024;

/** A relayed stream, and a way to cancel its source directly (the stream may be locked). */
export interface Relay {
  /** The relayed bytes. */
  stream: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** Cancel the source (e.g. a body the handler left unread). */
  cancel(reason?: unknown): void;
}

/**
 * A byte stream of `body`'s bytes where every read of `body` passes through `step`. Reads use the
 * consumer's buffer when both sides allow it (BYOB), else pass chunks on as they come.
 */
export function relayBytes(
  body: ReadableStream<Uint8Array>,
  step: ReadStep = (read) => read,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  return createRelay(body, step).stream;
}

/** {@link relayBytes}, with a handle to cancel the source. */
export function createRelay(
  body: ReadableStream<Uint8Array>,
  step: ReadStep = (read) => read,
): Relay {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream: relay its chunks.
  }
  const reader = byob ?? body.getReader();
  const readChunk = () => (reader as ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>>).read();
  const stream = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: AUTO_CHUNK,
    async pull(controller) {
      const request = controller.byobRequest;
      const view = request?.view;
      const into = byob && view
        ? new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength)
        : undefined;
      let result: ReadResult;
      try {
        result = await step(into && byob ? byob.read(into) : readChunk());
      } catch (error) {
        reader.cancel(error).catch(() => {});
        controller.error(error);
        return;
      }
      if (result.done) {
        controller.close();
        // A pending BYOB request must be answered; its buffer now lives in `result.value`.
        if (request && into && result.value) {
          request.respondWithNewView(result.value.subarray(0, 0));
        } else request?.respond(0);
        return;
      }
      if (into && request) request.respondWithNewView(result.value);
      else controller.enqueue(result.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return { stream, cancel: (reason) => void reader.cancel(reason).catch(() => {}) };
}
