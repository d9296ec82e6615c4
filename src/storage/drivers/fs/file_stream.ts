/**
 * A byte stream of part of an open file. berth's HTTP server recognises it and sends the file's
 * bytes itself, through one reused buffer ({@link FileStream.takeFile}); anything else reading it
 * gets the bytes in 64 KiB pieces.
 *
 * @module
 */

/**
 * Largest piece read per pull when the stream is read as a stream. Each pull allocates a new
 * buffer (the stream hands it on); a small one is reused memory of the allocator, a large one
 * fresh pages the kernel has to fault in.
 */
const READ_CHUNK = 64 * 1024;

/**
 * What a {@link FileStream} reads: an open file (`Deno.FsFile`), or a source reading like one
 * (a file still being written, whose reads wait for the writer). A read resolves to at least one
 * byte, or `null` at the end.
 */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
  close(): void;
}

/** An open file positioned at the first byte to send, and how many bytes to send. */
export interface FileRange {
  /** The file; whoever takes it closes it. */
  file: ByteSource;
  /** Bytes to send from its current position. */
  length: number;
}

/** What a {@link FileStream}'s source and the stream share. */
interface FileState {
  file: ByteSource;
  remaining: number;
  closed: boolean;
  /** A read has started or the file was taken: the stream is no longer whole. */
  touched: boolean;
}

/**
 * The next `length` bytes of an open file (from its current position); the file is closed when
 * the stream ends, errors, is cancelled or `signal` aborts.
 */
export class FileStream extends ReadableStream<Uint8Array<ArrayBuffer>> {
  #state: FileState;

  constructor(file: ByteSource, length: number, signal?: AbortSignal) {
    const state: FileState = { file, remaining: length, closed: false, touched: false };
    const close = () => {
      if (state.closed) return;
      state.closed = true;
      try {
        file.close();
      } catch {
        // Closed by whoever took it.
      }
    };
    super({
      type: "bytes",
      start(controller) {
        // An abort closes the file under a read, whoever is reading it.
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
        state.touched = true;
        if (state.remaining <= 0) {
          close();
          controller.close();
          return;
        }
        try {
          const buffer = new Uint8Array(Math.min(state.remaining, READ_CHUNK));
          const n = await file.read(buffer);
          if (state.closed) return;
          if (n === null || n === 0) {
            close();
            controller.error(new Error("file ended before its expected length"));
            return;
          }
          state.remaining -= n;
          controller.enqueue(buffer.subarray(0, n));
          if (state.remaining <= 0) {
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
    this.#state = state;
  }

  /**
   * Take the open file to send its bytes directly; the stream is then spent. `undefined` when
   * the stream was already read, locked or closed.
   */
  takeFile(): FileRange | undefined {
    const state = this.#state;
    if (state.touched || state.closed || this.locked) return undefined;
    state.touched = true;
    const length = state.remaining;
    // Read as a stream from now on, it is empty; an abort still closes the file.
    state.remaining = 0;
    return { file: state.file, length };
  }
}
