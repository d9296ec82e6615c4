/**
 * A byte stream of part of an open file, read in large pieces.
 *
 * @module
 */

/** Largest piece read per pull. */
const READ_CHUNK = 1 << 20;

/**
 * The next `length` bytes of an open file (from its current position) as a stream; the file is
 * closed when the stream ends, errors, is cancelled or `signal` aborts.
 */
export function fileStream(
  file: Deno.FsFile,
  length: number,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  let remaining = length;
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      file.close();
    }
  };
  return new ReadableStream({
    type: "bytes",
    start(controller) {
      signal?.addEventListener("abort", () => {
        close();
        try {
          controller.error(signal.reason);
        } catch {
          // Already closed.
        }
      }, { once: true });
    },
    async pull(controller) {
      if (remaining <= 0) {
        close();
        controller.close();
        return;
      }
      try {
        const buffer = new Uint8Array(Math.min(remaining, READ_CHUNK));
        const n = await file.read(buffer);
        if (closed) return;
        if (n === null || n === 0) {
          close();
          controller.error(new Error("file ended before its expected length"));
          return;
        }
        remaining -= n;
        controller.enqueue(buffer.subarray(0, n));
        if (remaining <= 0) {
          close();
          controller.close();
        }
      } catch (error) {
        close();
        controller.error(error);
      }
    },
    cancel() {
      close();
    },
  });
}
