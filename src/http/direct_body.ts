/**
 * `DirectBody`: a request body that is a byte stream for every consumer and can also be read
 * straight into a caller's buffer, without the stream's machinery. An upload's batch writer takes
 * that path: a stream's BYOB read transfers the buffer and makes a pull-into descriptor, a
 * request and promises, and through two streams (the body and the limits' relay) a 1 GiB push
 * peaked at 82–84 MiB RSS against 77–78 read directly (bench/README.md, session 12).
 *
 * @module
 */

/** Reads up to `into.length` bytes into `into`: how many, or `null` at the end of the body. */
export type ReadInto = (into: Uint8Array<ArrayBuffer>) => Promise<number | null>;

/** Chunk size of reads for consumers that do not bring their own buffer. */
const AUTO_CHUNK = 64 * 1024;

/** A body's direct reader, once taken: the stream is locked from then on. */
export interface DirectReader {
  /** The next bytes into `into`: how many, or `null` at the end. */
  read: ReadInto;
  /** Give up the body (its source is cancelled with `reason`). */
  cancel(reason?: unknown): Promise<void>;
}

/** A byte stream over `read`, which can also be read directly ({@link DirectBody.direct}). */
export class DirectBody extends ReadableStream<Uint8Array<ArrayBuffer>> {
  readonly #read: ReadInto;

  /** A body whose bytes come from `read`; `cancel` is called when a reader gives it up. */
  constructor(read: ReadInto, cancel: (reason: unknown) => void | Promise<void> = () => {}) {
    const source: UnderlyingByteSource = {
      type: "bytes",
      autoAllocateChunkSize: AUTO_CHUNK,
      async pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view!;
        let n: number | null;
        try {
          n = await read(
            new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength),
          );
        } catch (error) {
          controller.error(error);
          return;
        }
        if (n === null) {
          controller.close();
          request.respond(0);
        } else request.respond(n);
      },
      cancel,
    };
    // The byte-source constructor is typed on `new ReadableStream()` only, not for a subclass.
    super(source as unknown as UnderlyingDefaultSource<Uint8Array<ArrayBuffer>>);
    this.#read = read;
  }

  /**
   * Take the body for direct reads: locks the stream (no stream reader can interleave), so it is
   * for a consumer that reads the whole body. Throws a `TypeError` when the stream is locked.
   */
  direct(): DirectReader {
    const reader = this.getReader();
    return { read: this.#read, cancel: (reason) => reader.cancel(reason) };
  }
}

/**
 * `body` read through `step` (which sees each read's count, or `null` at the end, and may throw):
 * direct reads stay direct.
 */
export function relayDirect(
  body: DirectBody,
  step: (read: Promise<number | null>) => Promise<number | null>,
): DirectBody {
  const source = body.direct();
  return new DirectBody(async (into) => {
    try {
      return await step(source.read(into));
    } catch (error) {
      source.cancel(error).catch(() => {});
      throw error;
    }
  }, (reason) => source.cancel(reason));
}
