/**
 * A streamed upload over a raw HTTP/1.1 connection: the request head with `Content-Length`, the
 * body written straight from its stream, then the (small) response read to the end
 * (`Connection: close`). Used for blob uploads because Deno's `fetch` sends stream bodies chunked
 * and `node:http` costs several times more CPU per byte.
 *
 * @module
 */
import { BufferPool, viewReader } from "./byte_streams.ts";
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

const MAX_RESPONSE = 1 << 20;
/** Size of each of the two buffers an upload reads its body into (without a pool). */
const BUFFER = 1 << 20;

/** Send `method url` with `headers` and exactly `length` bytes from `body`; returns the response. */
export async function rawUpload(
  method: string,
  url: URL,
  headers: Record<string, string>,
  length: number,
  body: ReadableStream<Uint8Array>,
  options: { tls?: RawTls; signal?: AbortSignal; buffers?: BufferPool } = {},
): Promise<Response> {
  const conn = await connectRaw(url, options.tls);
  const close = closer(conn, options.signal);
  const reader = viewReader(body);
  try {
    const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    for (const [key, value] of Object.entries(headers)) {
      const lower = key.toLowerCase();
      if (lower === "host" || lower === "content-length" || lower === "connection") continue;
      lines.push(`${key}: ${value}`);
    }
    lines.push(`Content-Length: ${length}`, "Connection: close", "", "");
    await writeAll(conn, new TextEncoder().encode(lines.join("\r\n")));
    // Two buffers: the next read fills one while the socket takes the other.
    const pool = options.buffers ?? new BufferPool(BUFFER, 0);
    let spare = pool.take();
    let next = reader.read(new Uint8Array(pool.take()));
    let sent = 0;
    let writeError: unknown;
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
        // The server may have answered early (401, 413): read that answer below.
        writeError = error;
        next.catch(() => {});
        await reader.cancel().catch(() => {});
        break;
      }
      spare = value.buffer;
    }
    if (writeError === undefined && sent !== length) {
      throw new ClientError("protocol", `upload body of ${sent} bytes, ${length} announced`);
    }
    const response = await readResponse(conn).catch((error) => {
      throw writeError ?? error;
    });
    return response;
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    if (options.signal?.aborted) {
      throw new ClientError("aborted", "interrupted");
    }
    throw error;
  } finally {
    reader.releaseLock();
    close();
  }
}

/**
 * Close `conn` once, now or when `signal` aborts, whichever comes first: returns the function that
 * closes it (and stops listening to the signal).
 */
export function closer(conn: Deno.Conn, signal: AbortSignal | undefined): () => void {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    signal?.removeEventListener("abort", close);
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  signal?.addEventListener("abort", close, { once: true });
  return close;
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

/** The status and headers of a response head (the text before the blank line). */
export function parseHead(head: string): { status: number; headers: Headers } {
  const [statusLine, ...headerLines] = head.split("\r\n");
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(statusLine ?? "")?.[1]);
  if (!Number.isInteger(status) || status < 200) {
    throw new ClientError("protocol", `bad response: ${statusLine}`);
  }
  const headers = new Headers();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status, headers };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) offset += await conn.write(bytes.subarray(offset));
}

/** Read a whole HTTP/1.1 response from a connection the server closes after it. */
async function readResponse(conn: Deno.Conn): Promise<Response> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(16384);
  let headEnd = -1;
  let expected: number | undefined;
  let head = "";
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch (error) {
      if (headEnd >= 0) break;
      throw error;
    }
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    total += n;
    if (total > MAX_RESPONSE) throw new ClientError("protocol", "upload response too large");
    if (headEnd < 0) {
      const text = new TextDecoder("latin1").decode(concat(chunks, total));
      headEnd = text.indexOf("\r\n\r\n");
      if (headEnd >= 0) {
        head = text.slice(0, headEnd);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (length) expected = Number(length[1]);
        if (/^HTTP\/1\.\d (1\d\d|204|304)/.test(head)) expected = 0;
      }
    }
    if (headEnd >= 0 && expected !== undefined && total >= headEnd + 4 + expected) break;
  }
  if (headEnd < 0) throw new ClientError("protocol", "connection closed without a response");
  const all = concat(chunks, total);
  const { status, headers } = parseHead(head);
  let body = all.subarray(headEnd + 4);
  if (/chunked/i.test(headers.get("Transfer-Encoding") ?? "")) body = dechunk(body);
  else if (expected !== undefined) body = body.subarray(0, expected);
  headers.delete("Transfer-Encoding");
  const nullBody = status === 204 || status === 304;
  return new Response(nullBody ? null : body.slice(), { status, headers });
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  let i = 0;
  const text = new TextDecoder("latin1");
  while (i < bytes.length) {
    const lineEnd = text.decode(bytes.subarray(i, Math.min(bytes.length, i + 64))).indexOf("\r\n");
    if (lineEnd < 0) break;
    const size = parseInt(text.decode(bytes.subarray(i, i + lineEnd)), 16);
    i += lineEnd + 2;
    if (!size) break;
    parts.push(bytes.subarray(i, i + size));
    total += size;
    i += size + 2;
  }
  return concat(parts, total);
}
