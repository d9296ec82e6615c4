/**
 * {@link Http1Connections}: HTTP/1.1 over raw TCP or TLS connections kept alive per origin, for a
 * registry client's requests when no proxy is configured and TLS is verified (or plain HTTP).
 * Request bodies go with `Content-Length` (bytes, or a stream read into pooled buffers, because
 * Deno's `fetch` sends stream bodies chunked); response bodies stream from the socket into their
 * reader's buffers (`fetch` copies every byte once more). A connection goes back to the pool when
 * its response has been read to the end; one that failed, was cancelled, framed its body by
 * closing, or said `Connection: close` is closed.
 *
 * @module
 */
import { BufferPool } from "../bytes.ts";
import { viewReader, viewSourceStream } from "./byte_streams.ts";
import { ClientError } from "./errors.ts";

/** TLS settings for an `https:` URL. */
export interface RawTls {
  /** Extra CA certificates (PEM). */
  caCerts?: string[];
  /** Client certificate and key (PEM). */
  cert?: string;
  /** Client key. */
  key?: string;
}

/** A request body of a known length: bytes, or a stream of exactly `length` bytes. */
export interface Http1Body {
  /** Length in bytes (sent as `Content-Length`). */
  length: number;
  /** The bytes, or a stream of them. */
  source: Uint8Array | ReadableStream<Uint8Array>;
}

/** Response headers, read by name (case-insensitive); repeated ones joined by ", " as `Headers`. */
export interface ResponseHeaders {
  /** The value of `name`, or null. */
  get(name: string): string | null;
  /** Whether `name` was sent. */
  has(name: string): boolean;
}

/**
 * What a client reads of an answer: `fetch`'s `Response` has this shape, and so does the
 * {@link RawResponse} of a raw connection.
 */
export interface HttpResponse {
  /** Status code. */
  readonly status: number;
  /** 2xx. */
  readonly ok: boolean;
  /** Headers. */
  readonly headers: ResponseHeaders;
  /** The body (null when there is none). */
  readonly body: ReadableStream<Uint8Array> | null;
  /** The whole body as text. */
  text(): Promise<string>;
  /** The whole body as JSON. */
  json(): Promise<unknown>;
  /** The whole body. */
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Headers of a parsed response head: a map by lower-case name (no `Headers` validation). */
export class HeadHeaders implements ResponseHeaders {
  #values = new Map<string, string>();

  /** Add a value (appended with ", " to an earlier one of the same name). */
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const before = this.#values.get(key);
    this.#values.set(key, before === undefined ? value : `${before}, ${value}`);
  }

  /** The value of `name`, or null. */
  get(name: string): string | null {
    return this.#values.get(name.toLowerCase()) ?? null;
  }

  /** Whether `name` was sent. */
  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }

  /** Drop `name`. */
  delete(name: string): void {
    this.#values.delete(name.toLowerCase());
  }
}

/**
 * An answer read from a raw connection: status, headers and a body stream (or the bytes that came
 * with the head), without `Response`'s construction (its module loads on first use, ~9 ms here,
 * and each one validates its headers again).
 */
export class RawResponse implements HttpResponse {
  /** Status code. */
  readonly status: number;
  /** Headers. */
  readonly headers: HeadHeaders;
  #body: ReadableStream<Uint8Array> | Uint8Array | null;
  #stream: ReadableStream<Uint8Array> | null | undefined;

  /** An answer with a streamed body, the whole body as bytes, or none. */
  constructor(
    status: number,
    headers: HeadHeaders,
    body: ReadableStream<Uint8Array> | Uint8Array | null,
  ) {
    this.status = status;
    this.headers = headers;
    this.#body = body;
  }

  /** 2xx. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The body as a stream (made on first use for bytes that came with the head). */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream === undefined) {
      const body = this.#body;
      this.#stream = body instanceof Uint8Array ? bytesStream(body) : body;
    }
    return this.#stream;
  }

  /** The whole body. */
  async arrayBuffer(): Promise<ArrayBuffer> {
    const body = this.#body;
    if (this.#stream === undefined && body instanceof Uint8Array) {
      this.#stream = null; // used
      return body.slice().buffer as ArrayBuffer;
    }
    const stream = this.body;
    this.#stream = null;
    if (stream === null) return new ArrayBuffer(0);
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return concat(chunks).buffer as ArrayBuffer;
  }

  /** The whole body as text (UTF-8). */
  async text(): Promise<string> {
    return new TextDecoder().decode(await this.arrayBuffer());
  }

  /** The whole body as JSON. */
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/** A byte stream of `bytes` (its readers fill their own views from it). */
function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let left = bytes;
  return viewSourceStream({
    read(view) {
      const n = Math.min(view.byteLength, left.byteLength);
      view.set(left.subarray(0, n));
      left = left.subarray(n);
      return Promise.resolve({ done: n === 0, value: view.subarray(0, n) });
    },
    cancel() {},
  });
}

const MAX_HEAD = 64 * 1024;
/** Scratch space each connection reads response heads into. */
const HEAD_BUFFER = 16 * 1024;
/** A connection idle longer than this is closed instead of reused (servers drop idle ones). */
const IDLE_REUSE_MS = 2_000;
/** Idle connections kept per origin. */
const MAX_IDLE = 16;
/** Bytes bodies up to this size are written with the request head in one write. */
const SMALL_BODY = 64 * 1024;
/** Size of each of the two buffers a streamed body is read into (without a pool). */
const BODY_BUFFER = 1 << 20;

/** A connection and the scratch buffer its response heads are read into. */
interface Connection {
  conn: Deno.Conn;
  scratch: Uint8Array;
  idleSince: number;
}

/** A reused connection that failed before any byte of an answer (the server had dropped it). */
class StaleConnection extends Error {}

/** Keep-alive HTTP/1.1 connections, by origin; `close` releases the idle ones. */
export class Http1Connections {
  #tls: RawTls;
  #buffers: BufferPool;
  #idle = new Map<string, Connection[]>();

  /** Connections with these TLS settings; streamed bodies are read into `buffers`. */
  constructor(options: { tls?: RawTls; buffers?: BufferPool } = {}) {
    this.#tls = options.tls ?? {};
    this.#buffers = options.buffers ?? new BufferPool(BODY_BUFFER, 0);
  }

  /** Close every idle connection (those in use close when their answers end). */
  close(): void {
    for (const list of this.#idle.values()) for (const c of list) closeQuietly(c.conn);
    this.#idle.clear();
  }

  /**
   * Send `method url` with `headers` (and `body`) over an idle connection to the origin, or a new
   * one; returns the response, whose body streams from the connection. A request without a
   * stream body is sent again on a new connection when a reused one turns out to be dropped.
   */
  async request(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body?: Http1Body,
    signal?: AbortSignal,
  ): Promise<RawResponse> {
    const replayable = !(body?.source instanceof ReadableStream);
    for (let attempt = 0;; attempt++) {
      signal?.throwIfAborted();
      const pooled = attempt === 0 ? this.#take(url.origin) : undefined;
      const connection = pooled ?? {
        conn: await connectRaw(url, this.#tls),
        scratch: new Uint8Array(HEAD_BUFFER),
        idleSince: 0,
      };
      try {
        return await this.#exchange(
          connection,
          pooled !== undefined,
          method,
          url,
          headers,
          body,
          signal,
        );
      } catch (error) {
        if (error instanceof StaleConnection && replayable && !signal?.aborted) continue;
        if (signal?.aborted) throw new ClientError("aborted", "interrupted");
        throw error;
      }
    }
  }

  #take(origin: string): Connection | undefined {
    const list = this.#idle.get(origin);
    const now = performance.now();
    while (list && list.length > 0) {
      const connection = list.pop()!;
      if (now - connection.idleSince <= IDLE_REUSE_MS) return connection;
      closeQuietly(connection.conn);
    }
    return undefined;
  }

  #give(origin: string, connection: Connection): void {
    let list = this.#idle.get(origin);
    if (!list) this.#idle.set(origin, list = []);
    if (list.length >= MAX_IDLE) return closeQuietly(connection.conn);
    connection.idleSince = performance.now();
    list.push(connection);
  }

  async #exchange(
    connection: Connection,
    reused: boolean,
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: Http1Body | undefined,
    signal: AbortSignal | undefined,
  ): Promise<RawResponse> {
    const { conn } = connection;
    const watch = watchAbort(conn, signal);
    let received = false;
    try {
      const head = requestHead(method, url, headers, body?.length);
      // A failed write may be the server answering early (401, 413): that answer is read below.
      // A body that fails to read is thrown as is: the server still waits for the rest of it.
      let writeError: unknown;
      const write = async (bytes: Uint8Array) => {
        if (writeError !== undefined) return;
        try {
          await writeAll(conn, bytes);
        } catch (error) {
          writeError = error;
        }
      };
      if (body === undefined) await write(head);
      else if (body.source instanceof Uint8Array) {
        if (body.source.byteLength !== body.length) {
          throw new ClientError(
            "protocol",
            `body of ${body.source.byteLength} bytes, ${body.length} announced`,
          );
        }
        if (body.length <= SMALL_BODY) await write(concat([head, body.source]));
        else {
          await write(head);
          await write(body.source);
        }
      } else {
        await write(head);
        if (writeError === undefined) {
          writeError = await this.#writeStream(conn, body.source, body.length);
        } else await body.source.cancel(writeError).catch(() => {});
      }
      let parsed: Head;
      try {
        parsed = await readHead(conn, connection.scratch, () => received = true);
      } catch (error) {
        if (reused && !received) throw new StaleConnection(errorText(error));
        throw writeError ?? error;
      }
      const { status, headers: responseHeaders, early, keepAlive } = parsed;
      const reusable = keepAlive && writeError === undefined;
      const release = () => {
        if (!watch.detach()) return;
        if (reusable) this.#give(url.origin, connection);
        else closeQuietly(conn);
      };
      const close = () => {
        watch.detach();
        closeQuietly(conn);
      };
      if (method === "HEAD" || status === 204 || status === 304) {
        if (early.byteLength === 0) release();
        else close();
        return new RawResponse(status, responseHeaders, null);
      }
      const chunked = /chunked/i.test(responseHeaders.get("Transfer-Encoding") ?? "");
      responseHeaders.delete("Transfer-Encoding");
      const declared = responseHeaders.get("Content-Length");
      if (chunked) {
        return new RawResponse(status, responseHeaders, chunkedBody(conn, early, close));
      }
      if (declared === null) {
        return new RawResponse(
          status,
          responseHeaders,
          lengthBody(conn, early, undefined, close, close),
        );
      }
      if (!/^\d+$/.test(declared)) {
        throw new ClientError("protocol", `bad Content-Length ${JSON.stringify(declared)}`);
      }
      const length = Number(declared);
      if (early.byteLength >= length) {
        // The whole body came with the head (small answers): the connection is free now.
        if (early.byteLength === length) release();
        else close();
        return new RawResponse(status, responseHeaders, early.subarray(0, length));
      }
      return new RawResponse(
        status,
        responseHeaders,
        lengthBody(conn, early, length, release, close),
      );
    } catch (error) {
      watch.detach();
      closeQuietly(conn);
      throw error;
    }
  }

  /**
   * Write exactly `length` bytes of `source`; two buffers, the next read filling one while the
   * socket takes the other. Returns a write error (the server may have answered early), throws
   * when the stream fails or its length is wrong.
   */
  async #writeStream(
    conn: Deno.Conn,
    source: ReadableStream<Uint8Array>,
    length: number,
  ): Promise<unknown> {
    const reader = viewReader(source);
    const pool = this.#buffers;
    try {
      let spare = pool.take();
      let next = reader.read(new Uint8Array(pool.take()));
      let sent = 0;
      while (true) {
        const { done, value } = await next;
        if (done) {
          pool.give(spare);
          pool.give(value.buffer);
          break;
        }
        sent += value.byteLength;
        if (sent > length) {
          throw new ClientError("protocol", `upload body longer than ${length} bytes`);
        }
        next = reader.read(new Uint8Array(spare));
        try {
          await writeAll(conn, value);
        } catch (error) {
          next.catch(() => {});
          await reader.cancel().catch(() => {});
          return error;
        }
        spare = value.buffer;
      }
      if (sent !== length) {
        throw new ClientError("protocol", `upload body of ${sent} bytes, ${length} announced`);
      }
      return undefined;
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      reader.releaseLock();
    }
  }
}

/** A TCP (`http:`) or TLS (`https:`) connection to the URL's host and port. */
export async function connectRaw(url: URL, tls: RawTls = {}): Promise<Deno.Conn> {
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return url.protocol === "https:"
    ? await Deno.connectTls({
      hostname,
      port,
      ...(tls.caCerts?.length && { caCerts: tls.caCerts }),
      ...(tls.cert !== undefined && tls.key !== undefined && { cert: tls.cert, key: tls.key }),
    })
    : await Deno.connect({ hostname, port });
}

/** Close the connection when `signal` aborts, until `detach` (false once it was closed). */
function watchAbort(conn: Deno.Conn, signal: AbortSignal | undefined) {
  let closed = false;
  const onAbort = () => {
    closed = true;
    closeQuietly(conn);
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  return {
    detach(): boolean {
      signal?.removeEventListener("abort", onAbort);
      const open = !closed;
      closed = true;
      return open;
    },
  };
}

function requestHead(
  method: string,
  url: URL,
  headers: Record<string, string>,
  length: number | undefined,
): Uint8Array {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [key, value] of Object.entries(headers)) {
    const lower = key.toLowerCase();
    if (
      lower === "host" || lower === "content-length" || lower === "connection" ||
      lower === "transfer-encoding"
    ) continue;
    lines.push(`${key}: ${value}`);
  }
  if (length !== undefined) lines.push(`Content-Length: ${length}`);
  lines.push("", "");
  return new TextEncoder().encode(lines.join("\r\n"));
}

/** A response head: status, headers, the body bytes read with it, whether the connection stays. */
interface Head {
  status: number;
  headers: HeadHeaders;
  early: Uint8Array;
  keepAlive: boolean;
}

/** Read a response head (skipping `1xx` answers) into `scratch` (grown as needed). */
async function readHead(
  conn: Deno.Conn,
  scratch: Uint8Array,
  onBytes: () => void,
): Promise<Head> {
  let buffer = scratch;
  let filled = 0;
  while (true) {
    let headEnd = indexOfBlankLine(buffer, 0, filled);
    while (headEnd < 0) {
      if (filled === buffer.byteLength) {
        if (buffer.byteLength >= MAX_HEAD) {
          throw new ClientError("protocol", "response head too large");
        }
        const larger = new Uint8Array(buffer.byteLength * 2);
        larger.set(buffer);
        buffer = larger;
      }
      const n = await conn.read(buffer.subarray(filled));
      if (n === null) throw new ClientError("protocol", "connection closed without a response");
      onBytes();
      const from = Math.max(0, filled - 3);
      filled += n;
      headEnd = indexOfBlankLine(buffer, from, filled);
    }
    const text = new TextDecoder("latin1").decode(buffer.subarray(0, headEnd));
    const { status, headers, version } = parseHead(text);
    if (status >= 100 && status < 200) {
      buffer.copyWithin(0, headEnd + 4, filled);
      filled -= headEnd + 4;
      continue;
    }
    const connection = headers.get("Connection")?.toLowerCase() ?? "";
    const keepAlive = version === "1.1"
      ? !/\bclose\b/.test(connection)
      : /\bkeep-alive\b/.test(connection);
    return { status, headers, early: buffer.slice(headEnd + 4, filled), keepAlive };
  }
}

/** The status, headers and HTTP version of a response head (the text before the blank line). */
export function parseHead(
  head: string,
): { status: number; headers: HeadHeaders; version: string } {
  const [statusLine, ...headerLines] = head.split("\r\n");
  const match = /^HTTP\/(1\.\d) (\d{3})/.exec(statusLine ?? "");
  const status = Number(match?.[2]);
  if (!match || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new ClientError("protocol", `bad response: ${statusLine}`);
  }
  const headers = new HeadHeaders();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status, headers, version: match[1]! };
}

function indexOfBlankLine(bytes: Uint8Array, from: number, end: number): number {
  for (let i = from + 3; i < end; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i - 3;
    }
  }
  return -1;
}

/**
 * A body of `length` bytes (until the connection closes when unknown), read into its views;
 * `end` runs once all of it was read, `fail` when it cannot be (error, early close, cancel),
 * and only one of them, once (after `end` the connection may serve another request).
 */
function lengthBody(
  conn: Deno.Conn,
  early: Uint8Array,
  length: number | undefined,
  end: () => void,
  fail: () => void,
): ReadableStream<Uint8Array> {
  let left = length ?? Infinity;
  let pending = early;
  let settled = false;
  const settle = (done: () => void) => {
    if (settled) return;
    settled = true;
    done();
  };
  return viewSourceStream({
    async read(view) {
      if (left <= 0) return { done: true, value: view.subarray(0, 0) };
      if (settled) throw new Error("body read after it failed or was cancelled");
      const want = Math.min(view.byteLength, left);
      let n: number;
      if (pending.byteLength > 0) {
        n = Math.min(want, pending.byteLength);
        view.set(pending.subarray(0, n));
        pending = pending.subarray(n);
      } else {
        let read: number | null;
        try {
          read = await conn.read(view.subarray(0, want));
        } catch (error) {
          settle(fail);
          throw error;
        }
        if (read === null) {
          settle(fail);
          if (length !== undefined) {
            throw new Error(`connection closed ${left} bytes before the end of the body`);
          }
          left = 0;
          return { done: true, value: view.subarray(0, 0) };
        }
        n = read;
      }
      left -= n;
      if (left <= 0) settle(end);
      return { done: false, value: view.subarray(0, n) };
    },
    cancel() {
      settle(fail);
    },
  });
}

/** A chunked body, decoded; the connection closes after it (rare for registries' answers). */
function chunkedBody(
  conn: Deno.Conn,
  early: Uint8Array,
  close: () => void,
): ReadableStream<Uint8Array> {
  let buffered = early;
  const scratch = new Uint8Array(65536);
  const more = async () => {
    const n = await conn.read(scratch);
    if (n === null) throw new Error("connection closed inside a chunked body");
    buffered = concat([buffered, scratch.subarray(0, n)]);
  };
  let chunkLeft = 0;
  return new ReadableStream({
    async pull(controller) {
      try {
        while (chunkLeft === 0) {
          let lineEnd: number;
          while ((lineEnd = indexOfLineEnd(buffered)) < 0) await more();
          const size = parseInt(new TextDecoder().decode(buffered.subarray(0, lineEnd)), 16);
          buffered = buffered.subarray(lineEnd + 2);
          if (!Number.isFinite(size)) throw new ClientError("protocol", "bad chunk size");
          if (size === 0) {
            close();
            controller.close();
            return;
          }
          chunkLeft = size;
        }
        if (buffered.byteLength === 0) await more();
        const n = Math.min(chunkLeft, buffered.byteLength);
        controller.enqueue(buffered.slice(0, n));
        buffered = buffered.subarray(n);
        chunkLeft -= n;
        if (chunkLeft === 0) {
          while (buffered.byteLength < 2) await more();
          buffered = buffered.subarray(2); // the CRLF after the chunk
        }
      } catch (error) {
        close();
        throw error;
      }
    },
    cancel() {
      close();
    },
  });
}

function indexOfLineEnd(bytes: Uint8Array): number {
  for (let i = 1; i < bytes.byteLength; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13) return i - 1;
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) offset += await conn.write(bytes.subarray(offset));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
