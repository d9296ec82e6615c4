/**
 * A byte stream of part of an open file, read in large pieces.
 *
 * @module
 */

/**
 * Largest piece read per pull. Each pull allocates a new buffer (the stream hands it on); a small
 * one is reused memory of the allocator, a large one fresh pages the kernel has to fault in.
 */
const READ_CHUNK = 64 * 1024;

/**
 * The next `length` bytes of an open file (from its current position) as a stream; the file is
 * closed when the stream ends, errors, is cancelled or `signal` aborts. `toEnd` says those bytes
 * run to the end of the file: the stream is then the file's own (`FsFile.readable`), which
 * `Deno.serve` sends from the file without passing each piece through JavaScript.
 */
export function fileStream(
  file: Deno.FsFile,
  length: number,
  signal?: AbortSignal,
  toEnd = false,
): ReadableStream<Uint8Array> {
  let remaining = length;
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      file.close();
    }
  };
  if (toEnd) {
    // The file's own stream closes it at the end or on cancel; an abort closes it under a read.
    signal?.addEventListener("abort", () => {
      try {
        file.close();
      } catch {
        // Already closed by the stream.
      }
    }, { once: true });
    return file.readable;
  }
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
