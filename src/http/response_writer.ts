/**
 * Writing a `Response` onto an HTTP/1.1 connection: the status line and headers, then the body
 * framed by its `Content-Length`, by its measured size (small bodies), or chunked (HTTP/1.0: until
 * the connection closes). `HEAD`, 204 and 304 answers carry no body. A file body
 * ({@link FileStream}) is sent from the file through two reused buffers (one read while the other
 * is written), without a stream in between.
 *
 * @module
 */
import { BufferPool } from "../bytes.ts";
import { type FileRange, FileStream } from "../storage/drivers/fs/file_stream.ts";
import { statusLine } from "./http1_head.ts";
import { Reply } from "./reply.ts";

/** Bodies up to this size are gathered and sent in one write with the head. */
const SMALL_BODY = 64 * 1024;
/** Size of the buffers files are sent through. */
const FILE_BUFFER = 1024 * 1024;
/** Buffers kept for the next files sent, two per file (more are allocated while more files go out
 * at once). */
const POOL_SIZE = 4;
/** Size of a connection's buffer for small answers (head and body), reused answer to answer. */
const SCRATCH_SIZE = 8 * 1024;

const encoder = new TextEncoder();
const CRLF = encoder.encode("\r\n");
const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/** Buffers for sending files, reused from one response to the next. */
export function fileBuffers(): BufferPool {
  return new BufferPool(FILE_BUFFER, POOL_SIZE);
}

/** What the writer needs to know about the request and the connection (one object per
 * connection, updated for each request). */
export interface WriteOptions {
  /** The request's method. */
  method: string;
  /** The request's minor HTTP version. */
  minor: 0 | 1;
  /** Whether the connection may stay open after this response. */
  keepAlive: boolean;
  /** The `Date` header's value. */
  date: string;
  /** Buffers for file bodies. */
  pool: BufferPool;
  /** Where the start of a write in progress is noted (from `clock`; 0 between writes). */
  watch: WriteWatch;
  /** The server's coarse clock (`performance.now()` of its last timeout sweep). */
  clock: { now: number };
  /** The connection's buffer for small answers (made on first use): a write completes before
   * the next begins, and after a failed one the connection is not written again. */
  scratch: Uint8Array | undefined;
}

/** The server's view of a connection's writes, for its write timeout. */
export interface WriteWatch {
  /** When the write in progress started; 0 when none is. */
  writing: number;
  /**
   * Fails the write in progress (the server calls it when it closes the connection): closing does
   * not end a write the runtime has in progress, which waits until the client reads or goes.
   */
  fail: ((reason: Error) => void) | undefined;
}

/** One write, which `watch.fail` can end early. */
function write(conn: Deno.Conn, bytes: Uint8Array, watch: WriteWatch): Promise<number> {
  // A promise per write, not `Promise.race` with one per connection: each race would leave a
  // reaction on that promise for as long as the connection lives.
  return new Promise((resolve, reject) => {
    watch.fail = reject;
    conn.write(bytes).then(resolve, reject);
  });
}

/**
 * Write all of `bytes`, noting each write in progress in `watch`. When the connection is closed
 * meanwhile this throws at once; the runtime may still hold `bytes` until the client goes, so
 * they must not be reused after a throw.
 */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array, options: WriteOptions): Promise<void> {
  const watch = options.watch;
  let written = 0;
  try {
    while (written < bytes.length) {
      watch.writing = options.clock.now;
      written += await write(conn, bytes.subarray(written), watch);
    }
  } finally {
    watch.writing = 0;
    watch.fail = undefined;
  }
}

/**
 * A head's text as bytes (one byte per character: header values are byte strings), followed by
 * `body` when given: in the connection's scratch buffer when they fit (no allocation), else in
 * one new buffer.
 */
function encodeHead(text: string, options: WriteOptions, body?: Uint8Array): Uint8Array {
  const size = text.length + (body?.length ?? 0);
  const bytes = size <= SCRATCH_SIZE
    ? (options.scratch ??= new Uint8Array(SCRATCH_SIZE)).subarray(0, size)
    : new Uint8Array(size);
  // UTF-8 is the same bytes while every character is ASCII; any other takes more bytes.
  const { read, written } = encoder.encodeInto(text, bytes);
  if (read !== text.length || written !== text.length) {
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  }
  if (body) bytes.set(body, text.length);
  return bytes;
}

/** Fields the writer sets itself: a response's own are dropped. */
function ownField(name: string): boolean {
  return name === "connection" || name === "content-length" || name === "transfer-encoding" ||
    name === "keep-alive" || name === "date";
}

/** Whether an answer to `method` with `status` carries no body. */
function bodiless(method: string, status: number): boolean {
  return method === "HEAD" || status === 204 || status === 304 || status < 200;
}

/** The `Content-Length` line of a body-less answer: the size a GET's body would have. */
function bodilessLength(status: number, size: number | undefined): string {
  return size !== undefined && status !== 204 && status >= 200 ? `content-length: ${size}\r\n` : "";
}

/** The end of a head: the connection's fate and the blank line. */
function endHead(head: string, keepAlive: boolean, minor: 0 | 1): string {
  if (!keepAlive) return `${head}connection: close\r\n\r\n`;
  return `${head}${minor === 0 ? "connection: keep-alive\r\n" : ""}\r\n`;
}

/**
 * Write a {@link Reply}: head and body in one write, from its fields as they are (no `Headers`).
 * Returns whether the connection may carry another request.
 */
async function writeReply(conn: Deno.Conn, reply: Reply, options: WriteOptions): Promise<boolean> {
  const { status, body } = reply;
  let keepAlive = options.keepAlive;
  let head = statusLine(status);
  let declared: string | undefined;
  for (const [name, value] of reply.headers.fields) {
    const key = name.toLowerCase();
    if (ownField(key)) {
      if (key === "content-length") declared = value;
      else if (key === "connection" && /\bclose\b/i.test(value)) keepAlive = false;
      continue;
    }
    head += `${key}: ${value}\r\n`;
  }
  head += `date: ${options.date}\r\n`;
  if (bodiless(options.method, status)) {
    const size = declared !== undefined && /^\d{1,15}$/.test(declared)
      ? Number(declared)
      : body?.length;
    await writeAll(
      conn,
      encodeHead(endHead(head + bodilessLength(status, size), keepAlive, options.minor), options),
      options,
    );
    return keepAlive;
  }
  const bytes = body ?? new Uint8Array();
  const text = endHead(`${head}content-length: ${bytes.length}\r\n`, keepAlive, options.minor);
  await writeAll(
    conn,
    encodeHead(text, options, bytes),
    options,
  );
  return keepAlive;
}

/**
 * Write `response` to `conn`. Returns whether the connection may carry another request (false
 * after `Connection: close` or a body that only its end delimits). Throws when the connection
 * fails; the response body is then cancelled.
 */
export function writeResponse(
  conn: Deno.Conn,
  response: Response | Reply,
  options: WriteOptions,
): Promise<boolean> {
  return response instanceof Reply
    ? writeReply(conn, response, options)
    : writeStandard(conn, response, options);
}

/** {@link writeResponse} of a standard `Response`. */
async function writeStandard(
  conn: Deno.Conn,
  response: Response,
  options: WriteOptions,
): Promise<boolean> {
  const { status, headers } = response;
  let keepAlive = options.keepAlive && !/\bclose\b/i.test(headers.get("connection") ?? "");
  let head = statusLine(status);
  for (const [name, value] of headers) {
    if (!ownField(name)) head += `${name}: ${value}\r\n`;
  }
  head += `date: ${options.date}\r\n`;
  const declared = headers.get("content-length");
  const length = declared !== null && /^\d{1,15}$/.test(declared) ? Number(declared) : undefined;
  const framing = (text: string) => endHead(head + text, keepAlive, options.minor);

  if (bodiless(options.method, status)) {
    // The length a GET would have is the client's to know (a small body given to a HEAD is
    // measured for it); the body is not sent.
    let size = length;
    if (response.body) {
      if (size === undefined && status >= 200 && status !== 204 && status !== 304) {
        size = await measure(response.body);
      } else await response.body.cancel().catch(() => {});
    }
    await writeAll(conn, encodeHead(framing(bodilessLength(status, size)), options), options);
    return keepAlive;
  }

  if (length !== undefined && length <= SMALL_BODY) {
    const bytes = await response.bytes();
    await writeAll(
      conn,
      encodeHead(framing(`content-length: ${bytes.length}\r\n`), options, bytes),
      options,
    );
    return keepAlive;
  }

  const body = response.body;
  if (!body) {
    await writeAll(conn, encodeHead(framing("content-length: 0\r\n"), options), options);
    return keepAlive;
  }
  if (length !== undefined && body instanceof FileStream) {
    const range = body.takeFile();
    if (range && range.length === length) {
      await sendFile(
        conn,
        encodeHead(framing(`content-length: ${length}\r\n`), options),
        range,
        options,
      );
      return keepAlive;
    }
    if (range) range.file.close();
  }

  const reader = body.getReader();
  try {
    if (length !== undefined) {
      await writeAll(conn, encodeHead(framing(`content-length: ${length}\r\n`), options), options);
      let sent = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (sent + value.length > length) throw new Error("response body longer than its length");
        await writeAll(conn, value, options);
        sent += value.length;
      }
      if (sent < length) throw new Error("response body shorter than its length");
      return keepAlive;
    }
    // No declared length: a small body is measured, a larger one goes out chunked.
    const gathered: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        const bytes = new Uint8Array(size);
        let at = 0;
        for (const chunk of gathered) {
          bytes.set(chunk, at);
          at += chunk.length;
        }
        await writeAll(
          conn,
          encodeHead(framing(`content-length: ${size}\r\n`), options, bytes),
          options,
        );
        return keepAlive;
      }
      gathered.push(value);
      size += value.length;
      if (size > SMALL_BODY) break;
    }
    const chunked = options.minor === 1;
    if (!chunked) keepAlive = false;
    await writeAll(
      conn,
      encodeHead(framing(chunked ? "transfer-encoding: chunked\r\n" : ""), options),
      options,
    );
    const send = async (chunk: Uint8Array) => {
      if (chunk.length === 0) return;
      if (!chunked) return await writeAll(conn, chunk, options);
      await writeAll(conn, encoder.encode(`${chunk.length.toString(16)}\r\n`), options);
      await writeAll(conn, chunk, options);
      await writeAll(conn, CRLF, options);
    };
    for (const chunk of gathered) await send(chunk);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await send(value);
    }
    if (chunked) await writeAll(conn, LAST_CHUNK, options);
    return keepAlive;
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}

/** The size of a body up to `SMALL_BODY` bytes, else `undefined`; the body is spent. */
async function measure(body: ReadableStream<Uint8Array>): Promise<number | undefined> {
  const reader = body.getReader();
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return size;
      size += value.length;
      if (size > SMALL_BODY) return undefined;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Send `head`, then the file's bytes, through two pooled buffers: the next read fills one while
 * the other is written, so the file read and the socket write overlap. Each read's bytes go out
 * as they come (the head with the first ones): a short read, from a file still being written, is
 * sent before the next read waits.
 */
async function sendFile(
  conn: Deno.Conn,
  head: Uint8Array,
  range: FileRange,
  options: WriteOptions,
): Promise<void> {
  const { file } = range;
  let current = new Uint8Array(options.pool.take());
  let next = new Uint8Array(options.pool.take());
  let reading: Promise<number> | undefined;
  /** Start reading up to `left` bytes into `buffer` from `at`; resolves to how many. */
  const read = async (buffer: Uint8Array, at: number, left: number) => {
    const n = await file.read(buffer.subarray(at, at + Math.min(left, buffer.length - at)));
    if (n === null || n === 0) throw new Error("file ended before its expected length");
    return n;
  };
  let done = false;
  try {
    let left = range.length;
    let filled = 0;
    if (head.length < current.length) {
      current.set(head);
      filled = head.length;
    } else await writeAll(conn, head, options);
    if (left > 0) {
      const n = await read(current, filled, left);
      filled += n;
      left -= n;
    }
    while (filled > 0) {
      reading = left > 0 ? read(next, 0, left) : undefined;
      // A read that fails while the write is in progress is seen when awaited, not as unhandled.
      reading?.catch(() => {});
      await writeAll(conn, current.subarray(0, filled), options);
      filled = reading ? await reading : 0;
      reading = undefined;
      left -= filled;
      [current, next] = [next, current];
    }
    done = true;
  } finally {
    // After a failed write the runtime may still be sending from a buffer, and a read still in
    // flight fills the other: neither is reused.
    if (done) {
      options.pool.give(current.buffer);
      options.pool.give(next.buffer);
    }
    try {
      file.close();
    } catch {
      // Closed by an abort.
    }
  }
}
