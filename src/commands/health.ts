/**
 * `berth health`: ask a running berth for `/healthz`; exit 0 when healthy. For container health
 * checks in an image that has no shell or curl.
 *
 * @module
 */
import { parseAddr } from "../config.ts";
import { loadConfig } from "../config_file.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `health`. */
export const HEALTH_USAGE = `Usage: berth health [URL | --config FILE]

Ask a running berth whether it is healthy (GET URL/healthz) over a plain socket, so any port
works. URL defaults to the local address of REGISTRY_HTTP_ADDR, else http://127.0.0.1:5000.
With --config, the address comes from the config file as serve reads it (with REGISTRY_*
variables): http.debug.addr when set, else http.addr (https when http.tls is on). Needs
--allow-net and --allow-env (and --allow-read for --config).

Exit codes: 0 healthy, 1 unhealthy or unreachable, 2 usage.`;

/** The base URL to probe when none is given. */
export function localUrl(addr: string | undefined, scheme = "http"): string {
  if (!addr) return `${scheme}://127.0.0.1:5000`;
  const { hostname, port } = parseAddr(addr);
  const host = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The base URL of the server a config file describes: its debug address first. */
export async function configUrl(file: string, env: Record<string, string>): Promise<string> {
  const { config } = await loadConfig(file, { env });
  if (config.debugAddr !== undefined) return localUrl(config.debugAddr);
  return localUrl(config.addr, config.tls ? "https" : "http");
}

/** The environment, or nothing without the permission to read it. */
function envOrEmpty(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {};
  }
}

/** A response read off the wire: status and body text. */
export interface RawResponse {
  /** The status code. */
  status: number;
  /** The body, de-chunked. */
  body: string;
}

/**
 * GET `url` with a plain HTTP/1.1 request over a socket. Deno's `fetch` refuses ports browsers
 * block (6000, 6665-6669, ...); a health probe must reach berth on whatever port it listens.
 */
export async function rawGet(url: URL, timeoutMs = 5_000): Promise<RawResponse> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`unsupported scheme ${url.protocol} (use http: or https:)`);
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  const conn = url.protocol === "https:"
    ? await Deno.connectTls({ hostname, port })
    : await Deno.connect({ hostname, port });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
      "User-Agent: berth-health\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
    const bytes = new TextEncoder().encode(request);
    for (let written = 0; written < bytes.byteLength;) {
      written += await conn.write(bytes.subarray(written));
    }
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16 * 1024);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      chunks.push(buffer.slice(0, n));
    }
    return parseResponse(new TextDecoder().decode(concat(chunks)));
  } catch (error) {
    if (error instanceof Deno.errors.BadResource) throw new Error(`no answer in ${timeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timeout */ }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Parse a whole HTTP/1.x response (the connection closed after it). */
export function parseResponse(text: string): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (end < 0 || !status) throw new Error("not an HTTP response");
  const head = text.slice(0, end);
  let body = text.slice(end + 4);
  if (/^transfer-encoding:\s*chunked\s*$/im.test(head)) {
    let out = "";
    let at = 0;
    for (;;) {
      const line = body.indexOf("\r\n", at);
      const size = parseInt(body.slice(at, line), 16);
      if (line < 0 || !(size > 0)) break;
      out += body.slice(line + 2, line + 2 + size);
      at = line + 2 + size + 2;
    }
    body = out;
  }
  return { status: Number(status[1]), body };
}

/** Run `health`. */
export async function healthCommand(args: string[]): Promise<number> {
  let base: string | undefined;
  if (args[0] === "--config" || args[0]?.startsWith("--config=")) {
    const file = args[0].includes("=") ? args[0].slice("--config=".length) : args[1];
    if (!file) throw new UsageError("--config needs a FILE");
    if (args.length > (args[0].includes("=") ? 1 : 2)) {
      throw new UsageError(`unexpected argument ${args.at(-1)}`);
    }
    base = await configUrl(file, envOrEmpty());
  } else {
    if (args.length > 1) throw new UsageError(`unexpected argument ${args[1]}`);
    base = args[0] ?? localUrl(envOrEmpty().REGISTRY_HTTP_ADDR);
  }
  let url: URL;
  try {
    url = new URL(`${base.replace(/\/+$/, "")}/healthz`);
  } catch {
    throw new UsageError(`not a URL: ${base}`);
  }
  try {
    const response = await rawGet(url);
    console.log(response.body);
    return response.status === 200 ? 0 : 1;
  } catch (error) {
    console.error(`berth health: ${base}: ${(error as Error).message}`);
    return 1;
  }
}
