/**
 * One HTTP/1.1 request whose body is bytes in memory, sent over a connection of its own, so the
 * bytes go from the caller's buffer to the socket without a copy.
 *
 * `fetch` copies a `Uint8Array` body (the spec clones it when the request is built) and the runtime
 * copies it once more; with 10 MiB multipart parts those copies stay until the garbage collector
 * runs, which took a 1 GiB push on S3 to ~200 MiB RSS (bench/README.md, group `s3`). The S3
 * client sends part uploads through here instead.
 *
 * The answer is read whole (S3 answers a part upload with headers and at most a short XML body)
 * and handed back as a `Response`.
 *
 * TLS connections trust what `fetch` trusts (the runtime's root store: `DENO_CERT`, `--cert`,
 * `DENO_TLS_CA_STORE`). An HTTP proxy is `fetch`'s business: {@link sendsDirectly} tells the
 * caller when the proxy variables send a URL through one, and the caller uses `fetch` then.
 *
 * @module
 */
import { findHeadEnd, latin1, parseChunkSize } from "../../http/http1_head.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Largest response head or body read (a part upload's answer is a few hundred bytes). */
const MAX_ANSWER = 1 << 20;

/**
 * Whether a request to `url` may go out over a socket of its own rather than through `fetch`: no
 * proxy variable (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, upper or lower case) applies to its
 * scheme, or `NO_PROXY` plainly exempts its host (`*`, the host itself, or a domain it is under).
 * Anything less plain (address ranges, an environment that cannot be read) answers `false`, and
 * `fetch` applies its own rules.
 */
export function sendsDirectly(
  url: URL,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): boolean {
  try {
    const get = (name: string) => env(name) || env(name.toLowerCase()) || "";
    const scheme = url.protocol === "https:" ? "HTTPS_PROXY" : "HTTP_PROXY";
    if (!get(scheme) && !get("ALL_PROXY")) return true;
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    return get("NO_PROXY").split(/[\s,]+/).some((entry) => {
      if (entry === "*") return true;
      const name = entry.toLowerCase().replace(/^\*?\./, "").replace(/^\[|\]$/g, "");
      if (!name || name.includes("/")) return false;
      return host === name || (/[a-z]/.test(name) && host.endsWith(`.${name}`));
    });
  } catch {
    return false;
  }
}

/**
 * Send `method url` with `headers` (they must not carry `Content-Length`, `Connection` or
 * `Transfer-Encoding`) and `body`; resolves to the answer. `signal` aborts the exchange.
 */
export async function sendBytes(
  method: string,
  url: URL,
  headers: Headers,
  body: Uint8Array,
  signal: AbortSignal,
): Promise<Response> {
  signal.throwIfAborted();
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const conn = url.protocol === "https:"
    ? await Deno.connectTls({ hostname, port })
    : await Deno.connect({ hostname, port });
  const abort = () => conn.close();
  signal.addEventListener("abort", abort, { once: true });
  try {
    const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    headers.forEach((value, name) => {
      if (name !== "host") lines.push(`${name}: ${value}`);
    });
    lines.push(`Content-Length: ${body.byteLength}`, "Connection: close", "", "");
    await writeAll(conn, encoder.encode(lines.join("\r\n")));
    await writeAll(conn, body);
    return await readAnswer(conn);
  } catch (error) {
    throw signal.aborted ? signal.reason : error;
  } finally {
    signal.removeEventListener("abort", abort);
    try {
      conn.close();
    } catch { /* closed by the abort */ }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

/** Read the status line, headers and body (by `Content-Length`, chunks, or to the end). */
async function readAnswer(conn: Deno.Conn): Promise<Response> {
  let data: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  let ended = false;
  const more = async () => {
    const chunk = new Uint8Array(16 * 1024);
    const n = await conn.read(chunk);
    if (n === null) {
      ended = true;
      return;
    }
    const next = new Uint8Array(data.byteLength + n);
    next.set(data);
    next.set(chunk.subarray(0, n), data.byteLength);
    data = next;
    if (data.byteLength > MAX_ANSWER) throw new Error("answer too large");
  };
  let start = -1;
  let scanned = 0;
  while ((start = findHeadEnd(data, scanned, data.byteLength)) < 0) {
    if (ended) throw new Error("connection closed before the answer's headers");
    scanned = data.byteLength;
    await more();
  }
  const head = decoder.decode(data.subarray(0, start - 4));
  const [statusLine = "", ...fields] = head.split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!status) throw new Error(`bad status line: ${statusLine.slice(0, 100)}`);
  const headers = new Headers();
  for (const field of fields) {
    const colon = field.indexOf(":");
    if (colon > 0) headers.append(field.slice(0, colon).trim(), field.slice(colon + 1).trim());
  }
  const length = headers.get("content-length");
  const chunked = /chunked/i.test(headers.get("transfer-encoding") ?? "");
  if (noBody(status)) return new Response(null, { status, headers });
  if (length !== null && !chunked) {
    while (data.byteLength - start < Number(length) && !ended) await more();
  } else {
    while (!ended) await more();
  }
  let payload = data.subarray(start);
  if (length !== null && !chunked) payload = payload.subarray(0, Number(length));
  if (chunked) payload = dechunk(payload);
  return new Response(payload.slice(), { status, headers });
}

function noBody(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

/** The payload of a chunked body (what arrived of it). */
function dechunk(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < data.byteLength) {
    let lineEnd = at;
    while (lineEnd + 1 < data.byteLength && !(data[lineEnd] === 13 && data[lineEnd + 1] === 10)) {
      lineEnd++;
    }
    const size = parseChunkSize(latin1(data.subarray(at, lineEnd)));
    if (size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}
