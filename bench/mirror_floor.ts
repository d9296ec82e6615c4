/**
 * The floor of a pull-through cache's cold fill on this runtime (`bench/mirror.ts` runs it): a
 * server with nothing but the fill. Every GET is fetched from the upstream (`fetch`, BYOB reads
 * into 1 MiB buffers, no copy in JavaScript), each MiB hashed (node:crypto, SHA-256) on the main
 * thread while the one before is written to a file and sent to the client (raw socket writes, as
 * berth's server sends a blob); the file is fsynced at the end and removed. No storage layout, no
 * upload session, no second client, no digest check against the request.
 *
 * `deno run --allow-net --allow-read --allow-write bench/mirror_floor.ts PORT UPSTREAM DIR`
 *
 * @module
 */
import { createHash } from "node:crypto";

const BATCH = 1 << 20;
const HEAD_END = new Uint8Array([13, 10, 13, 10]);

/** Serve the floor on 127.0.0.1:`port`, proxying every GET to `upstream`, files in `dir`. */
export async function serveFloor(port: number, upstream: string, dir: string): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  for await (const conn of listener) {
    serveConnection(conn, upstream, dir).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    });
  }
}

async function serveConnection(conn: Deno.Conn, upstream: string, dir: string): Promise<void> {
  let pending = new Uint8Array(0);
  for (;;) {
    // One request head (GET without a body) per turn, keep-alive.
    let end = indexOf(pending, HEAD_END);
    while (end < 0) {
      const more = new Uint8Array(8192);
      const n = await conn.read(more);
      if (n === null) return;
      const joined = new Uint8Array(pending.length + n);
      joined.set(pending);
      joined.set(more.subarray(0, n), pending.length);
      pending = joined;
      end = indexOf(pending, HEAD_END);
    }
    const head = new TextDecoder().decode(pending.subarray(0, end));
    pending = pending.slice(end + 4);
    const [method, target] = head.split(" ");
    const headers = new Headers();
    for (const line of head.split("\r\n").slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    headers.delete("host");
    const response = await fetch(new URL(target ?? "/", upstream), {
      method: method ?? "GET",
      headers,
    });
    const length = response.headers.get("content-length");
    const type = response.headers.get("content-type");
    if (!response.body || length === null) {
      const body = new Uint8Array(await response.arrayBuffer());
      await writeAll(conn, headOf(response.status, body.byteLength, type));
      await writeAll(conn, body);
      continue;
    }
    await writeAll(conn, headOf(response.status, Number(length), type));
    await fill(response.body, conn, `${dir}/${crypto.randomUUID()}`);
  }
}

/** Fetch → hash → file and client, one MiB hashed while the one before is written and sent. */
async function fill(body: ReadableStream<Uint8Array>, conn: Deno.Conn, path: string) {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const hash = createHash("sha256");
    const reader = body.getReader({ mode: "byob" });
    let current = new ArrayBuffer(BATCH);
    let spare = new ArrayBuffer(BATCH);
    let writing: Promise<unknown> = Promise.resolve();
    for (let done = false; !done;) {
      let filled = 0;
      while (filled < BATCH) {
        const read = await reader.read(new Uint8Array(current, filled, BATCH - filled));
        if (read.value) current = read.value.buffer as ArrayBuffer;
        if (read.done) {
          done = true;
          break;
        }
        filled += read.value.byteLength;
      }
      if (filled === 0) break;
      const bytes = new Uint8Array(current, 0, filled);
      hash.update(bytes);
      await writing;
      writing = Promise.all([writeAll(file, bytes), writeAll(conn, bytes)]);
      [current, spare] = [spare, current];
    }
    await writing;
    await file.sync();
    hash.digest("hex");
  } finally {
    file.close();
    await Deno.remove(path).catch(() => {});
  }
}

function headOf(status: number, length: number, type: string | null): Uint8Array {
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} X\r\ncontent-length: ${length}\r\n` +
      (type ? `content-type: ${type}\r\n` : "") + "\r\n",
  );
}

async function writeAll(to: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  for (let done = 0; done < bytes.byteLength;) done += await to.write(bytes.subarray(done));
}

function indexOf(bytes: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

if (import.meta.main) {
  const [port, upstream, dir] = Deno.args;
  if (!port || !upstream || !dir) throw new Error("usage: mirror_floor.ts PORT UPSTREAM DIR");
  await serveFloor(Number(port), upstream, dir);
}
