/**
 * `relayBytes`: wrap a request body in a guard (limits, error mapping) without losing zero-copy
 * reads. The relay is a byte stream: a consumer's BYOB read goes through it into the source with
 * the consumer's own buffer, so a 1 MiB read stays one read of up to 1 MiB, not sixteen 64 KiB
 * chunks, each allocated and then copied.
 * That doubles the upload rate and lowers peak memory (figures: bench/measurements.md).
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

/**
 * A byte stream of `body`'s bytes where every read of `body` passes through `step`. Reads use the
 * consumer's buffer when both sides allow it (BYOB), else pass chunks on as they come.
 */
export function relayBytes(
  body: ReadableStream<Uint8Array>,
  step: ReadStep = (read) => read,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream: relay its chunks.
  }
  const reader = byob ?? body.getReader();
  const readChunk = () => (reader as ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>>).read();
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: AUTO_CHUNK,
    async pull(controller) {
      const request = controller.byobRequest;
      const view = request?.view;
      let into = byob && view
        ? new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength)
        : undefined;
      let result: ReadResult;
      try {
        result = await step(into && byob ? byob.read(into) : readChunk());
        // An empty chunk (Deno's body of a request without Content-Length) cannot be enqueued or
        // answer a BYOB request: read on until bytes or the end.
        while (!result.done && result.value.byteLength === 0) {
          if (into) {
            into = new Uint8Array(result.value.buffer, result.value.byteOffset, into.length);
          }
          result = await step(into && byob ? byob.read(into) : readChunk());
        }
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
}
