/**
 * A request body as a byte stream read off its connection: `Content-Length` bytes, or a
 * `Transfer-Encoding: chunked` body decoded (sizes checked, extensions ignored, trailers read
 * and dropped). A reader that brings its own buffer (a BYOB read, or a direct read: see
 * direct_body.ts) gets the socket's bytes in it directly.
 *
 * @module
 */
import type { ConnReader } from "./conn_reader.ts";
import { DirectBody } from "./direct_body.ts";
import { type BodyFraming, checkTrailer, parseChunkSize, ProtocolError } from "./http1_head.ts";

/**
 * Buffer of a connection reading a chunked body: big socket reads, chunks copied out of it, as
 * many as fit into the consumer's read (2 MiB for uploads, the batch size). Given back when the
 * body ends. Figures for its size: docs/chunked_uploads.md.
 */
const CHUNKED_BUFFER = 2 * 1024 * 1024;
/** Longest chunk-size line (with extensions) or trailer line accepted. */
const MAX_LINE = 4096;

/** A body being read, and what the connection needs to know about it. */
export interface RequestBody {
  /** The body's bytes (also readable directly). */
  stream: DirectBody;
  /** Whether every byte of the body (and its trailers) has been read off the connection. */
  readonly complete: boolean;
}

/** What the body calls back. */
export interface BodyHooks {
  /** Before the first read (to send `100 Continue`). */
  beforeFirstRead?: () => Promise<void>;
  /** When the body fails (a framing error or a closed connection). */
  onError?: (error: unknown) => void;
}

/** The body of a request framed by `framing` (not `none`), read through `reader`. */
export function requestBody(
  reader: ConnReader,
  framing: Exclude<BodyFraming, { kind: "none" }>,
  maxTrailerBytes: number,
  hooks: BodyHooks = {},
): RequestBody {
  let complete = false;
  let started = false;
  /** Bytes left in the body (`length`) or in the current chunk (`chunked`). */
  let left = framing.kind === "length" ? framing.length : 0;
  /** Chunked: the CRLF after a chunk's data is still to be read. */
  let chunkEnd = false;
  if (framing.kind === "chunked") reader.reserve(CHUNKED_BUFFER);

  /** Chunked: read up to the next chunk's data; false at the last chunk (trailers read). */
  const nextChunk = async (): Promise<boolean> => {
    if (chunkEnd) {
      if ((await reader.readLine(2)) !== "") {
        throw new ProtocolError(400, "chunk longer than its size");
      }
      chunkEnd = false;
    }
    left = parseChunkSize(await reader.readLine(MAX_LINE));
    if (left > 0) return true;
    let trailers = 0;
    for (;;) {
      const line = await reader.readLine(MAX_LINE);
      if (line === "") return false;
      trailers += line.length + 2;
      if (trailers > maxTrailerBytes) throw new ProtocolError(431, "trailers too large");
      checkTrailer(line);
    }
  };

  /** The next bytes of the body into `into`: how many, or `null` once it has ended. */
  const read = async (into: Uint8Array<ArrayBuffer>): Promise<number | null> => {
    if (complete) return null;
    try {
      if (!started) {
        started = true;
        await hooks.beforeFirstRead?.();
      }
      if (framing.kind === "chunked") {
        // As many chunks as the buffer holds, into one read; waits only when nothing is read.
        let filled = 0;
        while (filled < into.length) {
          if (left === 0) {
            if (filled > 0 && !reader.hasLines(chunkEnd ? 2 : 1)) break;
            if (!(await nextChunk())) {
              complete = true;
              reader.release();
              break;
            }
          }
          if (reader.buffered === 0) {
            if (filled > 0) break;
            if (!(await reader.more())) {
              throw new ProtocolError(400, "connection closed inside a request body");
            }
          }
          const n = reader.take(
            into.subarray(filled, filled + Math.min(left, into.length - filled)),
          );
          filled += n;
          left -= n;
          chunkEnd = left === 0;
        }
        return filled > 0 ? filled : null;
      }
      if (left === 0) {
        complete = true;
        return null;
      }
      const n = await reader.read(into.subarray(0, Math.min(left, into.length)));
      if (n === null) throw new ProtocolError(400, "connection closed inside a request body");
      left -= n;
      if (left === 0) complete = true;
      return n;
    } catch (error) {
      hooks.onError?.(error);
      throw error;
    }
  };
  const stream = new DirectBody(read);
  return {
    stream,
    get complete() {
      return complete;
    },
  };
}
