/**
 * A fast `Transfer-Encoding: chunked` request written straight to a socket, as podman or
 * `curl -T -` send a layer compressed on the fly: the body is `size` bytes in chunks of `chunk`
 * bytes, framed and written as fast as the server takes them.
 *
 * @module
 */

const encoder = new TextEncoder();

/** What {@link sendChunked} saw. */
export interface ChunkedResult {
  /** Response status (0 when the connection ended without one). */
  status: number;
  /** Status line and headers of the response. */
  head: string;
  /** Body bytes sent. */
  sent: number;
}

/** Options of {@link sendChunked}. */
export interface ChunkedOptions {
  /** Bytes per chunk (default 64 KiB). */
  chunk?: number;
  /** Called with every piece of body bytes before it is sent (e.g. to hash them). */
  observe?: (bytes: Uint8Array) => void;
  /** Stops sending (the connection is closed) when it aborts. */
  signal?: AbortSignal;
}

/** The body piece {@link sendChunked} repeats: `chunk` bytes of a fixed pattern. */
export function chunkPattern(chunk: number): Uint8Array<ArrayBuffer> {
  const piece = new Uint8Array(chunk);
  for (let i = 0; i < chunk; i++) piece[i] = (i * 2654435761) >>> 24;
  return piece;
}

/** PATCH (or `method`) `path` on `base` with a chunked body of `size` bytes; reads the answer. */
export async function sendChunked(
  base: string,
  path: string,
  size: number,
  options: ChunkedOptions & { method?: string } = {},
): Promise<ChunkedResult> {
  const chunk = options.chunk ?? 64 * 1024;
  const url = new URL(base);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const onAbort = () => conn.close();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const piece = chunkPattern(chunk);
  // Many framed chunks per socket write, so the client is never the slow side.
  const framed = (n: number) => {
    const head = encoder.encode(`${n.toString(16)}\r\n`);
    const out = new Uint8Array(head.byteLength + n + 2);
    out.set(head);
    out.set(piece.subarray(0, n), head.byteLength);
    out.set(encoder.encode("\r\n"), head.byteLength + n);
    return out;
  };
  const one = framed(chunk);
  const perWrite = Math.max(1, Math.floor((256 * 1024) / one.byteLength));
  const batch = new Uint8Array(one.byteLength * perWrite);
  for (let i = 0; i < perWrite; i++) batch.set(one, i * one.byteLength);
  const writeAll = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.byteLength;) at += await conn.write(bytes.subarray(at));
  };
  let sent = 0;
  try {
    await writeAll(encoder.encode(
      `${options.method ?? "PATCH"} ${path} HTTP/1.1\r\nHost: ${url.host}\r\n` +
        "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    ));
    while (sent + chunk * perWrite <= size) {
      if (options.observe) { for (let i = 0; i < perWrite; i++) options.observe(piece); }
      await writeAll(batch);
      sent += chunk * perWrite;
    }
    while (sent < size) {
      const n = Math.min(chunk, size - sent);
      options.observe?.(piece.subarray(0, n));
      await writeAll(framed(n));
      sent += n;
    }
    await writeAll(encoder.encode("0\r\n\r\n"));
    let head = "";
    const buffer = new Uint8Array(16 * 1024);
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    head = head.split("\r\n\r\n")[0] ?? "";
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, sent };
  } catch (error) {
    if (options.signal?.aborted) return { status: 0, head: "", sent };
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch { /* closed on abort */ }
  }
}
