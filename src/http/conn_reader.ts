/**
 * Buffered reads of one HTTP/1.1 connection: request heads and chunk-size lines come through a
 * buffer; body bytes go straight from the socket into the reader's own buffer when nothing is
 * buffered (a 1 MiB read of an upload is one read of up to 1 MiB, not pieces copied twice).
 * Bytes past the current request (a pipelined next one) stay buffered for the next head.
 *
 * @module
 */
import type { Arrivals } from "./arrivals.ts";
import { findHeadEnd, hasLine, latin1, ProtocolError } from "./http1_head.ts";

/** Whether `byte` may appear in a token (RFC 9110, 5.6.2): the characters of a method. */
function isTokenByte(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(byte));
}

/** Size of the buffer a connection starts with (it grows up to the head limit when needed). */
const INITIAL_BUFFER = 16 * 1024;

/** Limits on what a head may take. */
export interface HeadLimits {
  /** Most bytes of a request line (414 beyond). */
  maxRequestLine: number;
  /** Most bytes of a whole head (431 beyond). */
  maxHeadBytes: number;
}

/** Reads of one connection. */
export class ConnReader {
  #conn: Deno.Conn;
  #arrivals: Arrivals | undefined;
  #buffer = new Uint8Array(INITIAL_BUFFER);
  #start = 0;
  #end = 0;

  /** Reads of `conn`, each noted in `arrivals` when given. */
  constructor(conn: Deno.Conn, arrivals?: Arrivals) {
    this.#conn = conn;
    this.#arrivals = arrivals;
  }

  /** Bytes read from the socket and not consumed yet. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Read more into the buffer (growing it up to `limit`); false at the end of the stream. */
  async #fill(limit: number): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#start > 0 && this.#end === this.#buffer.length) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      this.#moveTo(new Uint8Array(Math.min(limit, this.#buffer.length * 4)));
    }
    const n = await this.#conn.read(this.#buffer.subarray(this.#end));
    this.#arrivals?.note();
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /**
   * The next request head (its bytes, blank line included; a view of the buffer, valid until the
   * next read), or `null` when the client closed the connection before sending one. `onStart`
   * runs when its first byte is there. Throws {@link ProtocolError} on a line or head over the
   * limits, or a head cut short.
   */
  async readHead(limits: HeadLimits, onStart: () => void): Promise<Uint8Array | null> {
    let scanned = 0;
    // Empty lines before a request are ignored (RFC 9112, 2.2).
    for (;;) {
      const buffer = this.#buffer;
      while (this.buffered >= 2 && buffer[this.#start] === 13 && buffer[this.#start + 1] === 10) {
        this.#start += 2;
      }
      if (this.buffered >= 2 || (this.buffered === 1 && buffer[this.#start] !== 13)) break;
      if (this.buffered === 0) this.#start = this.#end = 0;
      if (!(await this.#fill(limits.maxHeadBytes))) {
        if (this.buffered === 0) return null;
        throw new ProtocolError(400, "connection closed inside a request head");
      }
    }
    // A request starts with a method (a token). Anything else, such as a TLS handshake from a
    // client that tries HTTPS first, is answered at once instead of waiting for a line end that
    // never comes (Go clients wait 10 s for a handshake before falling back to plain HTTP).
    if (!isTokenByte(this.#buffer[this.#start]!)) {
      throw new ProtocolError(400, "not an HTTP/1.1 request");
    }
    onStart();
    for (;;) {
      const view = this.#buffer.subarray(this.#start, this.#end);
      const end = findHeadEnd(view, scanned, view.length);
      if (end > 0) {
        if (view.indexOf(10) > limits.maxRequestLine + 1) {
          throw new ProtocolError(414, "request line too long");
        }
        // A view, not a copy: valid until the next read (the head is parsed before any).
        const head = view.subarray(0, end);
        this.#start += end;
        return head;
      }
      scanned = Math.max(0, view.length - 3);
      if (view.length > limits.maxRequestLine && !hasLine(view, limits.maxRequestLine + 2)) {
        throw new ProtocolError(414, "request line too long");
      }
      if (view.length >= limits.maxHeadBytes) {
        throw new ProtocolError(431, "request head too large");
      }
      if (!(await this.#fill(limits.maxHeadBytes))) {
        throw new ProtocolError(400, "connection closed inside a request head");
      }
    }
  }

  /**
   * One line (without its CRLF) of at most `max` bytes: a chunk-size line or a trailer. Throws
   * {@link ProtocolError} when longer, not ended by CRLF, or cut short by the end of the stream.
   */
  async readLine(max: number): Promise<string> {
    for (;;) {
      const view = this.#buffer.subarray(this.#start, this.#end);
      const lf = view.indexOf(10);
      if (lf >= 0) {
        if (lf === 0 || view[lf - 1] !== 13) throw new ProtocolError(400, "line not ended by CRLF");
        const line = latin1(view.subarray(0, lf - 1));
        this.#start += lf + 1;
        return line;
      }
      if (view.length > max) throw new ProtocolError(400, "line too long");
      if (!(await this.#fill(Math.max(max + 2, INITIAL_BUFFER)))) {
        throw new ProtocolError(400, "connection closed inside a chunked body");
      }
    }
  }

  /** Whether `count` complete lines are buffered (so reading them will not wait). */
  hasLines(count: number): boolean {
    let at = this.#start;
    for (let i = 0; i < count; i++) {
      const lf = this.#buffer.subarray(at, this.#end).indexOf(10);
      if (lf < 0) return false;
      at += lf + 1;
    }
    return true;
  }

  /** Let the buffer grow to `size` bytes at least (big reads of a chunked body). */
  reserve(size: number): void {
    if (this.#buffer.length < size) this.#moveTo(new Uint8Array(size));
  }

  /** Shrink the buffer back to its first size when what it holds fits (a chunked body ended). */
  release(): void {
    if (this.#buffer.length <= INITIAL_BUFFER || this.buffered > INITIAL_BUFFER) return;
    const big = this.#buffer;
    this.#moveTo(new Uint8Array(INITIAL_BUFFER));
    // Freed now, not at the next full garbage collection (no read or view uses it any more).
    big.buffer.transfer(0);
  }

  /** Make `buffer` (big enough for what is buffered) the buffer, the unconsumed bytes at its start. */
  #moveTo(buffer: Uint8Array<ArrayBuffer>): void {
    buffer.set(this.#buffer.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buffer = buffer;
  }

  /** The bytes buffered and not consumed yet (a view: valid until the next read). */
  peek(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#end);
  }

  /** Read more into the buffer; false at the end of the stream. */
  async more(): Promise<boolean> {
    return await this.#fill(this.#buffer.length);
  }

  /** Move up to `into.length` buffered bytes into `into`; returns how many. */
  take(into: Uint8Array): number {
    const n = Math.min(this.buffered, into.length);
    into.set(this.#buffer.subarray(this.#start, this.#start + n));
    this.#start += n;
    return n;
  }

  /**
   * Read up to `into.length` bytes: from the buffer when it holds some, else straight from the
   * socket. `null` at the end of the stream.
   */
  async read(into: Uint8Array): Promise<number | null> {
    if (this.buffered > 0) return this.take(into);
    const n = await this.#conn.read(into);
    this.#arrivals?.note();
    return n;
  }
}
