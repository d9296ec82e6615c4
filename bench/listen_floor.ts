/**
 * The floor under berth's own HTTP/1.1 server: a bare `Deno.listen` loop that reads each request's
 * `Content-Length` body off the socket in 1 MiB reads and, by mode, discards it (`discard`), writes
 * it to a file (`file`, each batch written while the next is read, as berth does) or also hashes it
 * with `node:crypto` SHA-256 on the main thread (`hash`), then answers `201`. No routing, no
 * sessions, no fsync: what a push costs the runtime at least, below berth and below `Deno.serve`.
 *
 * Run as `deno run --allow-net --allow-read --allow-write listen_floor.ts PORT DATA_DIR MODE`.
 *
 * @module
 */
import { createHash } from "node:crypto";

const BATCH = 1 << 20;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const ANSWER = new TextEncoder().encode("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");

/** What the floor does with the bytes. */
export type FloorMode = "discard" | "file" | "hash";

/** Serve until the listener closes. */
export async function serveFloor(listener: Deno.Listener, dataDir: string, mode: FloorMode) {
  let uploads = 0;
  for await (const conn of listener) {
    void connection(conn, () => `${dataDir}/floor-${uploads++}`, mode).catch(() => {}).finally(
      () => {
        try {
          conn.close();
        } catch {
          // already closed
        }
      },
    );
  }
}

async function connection(conn: Deno.Conn, nextPath: () => string, mode: FloorMode) {
  let current = new Uint8Array(BATCH);
  let spare = new Uint8Array(BATCH);
  let buffered = 0;
  for (;;) {
    // The head: read until the blank line (bytes after it are the body's start).
    let end = -1;
    while ((end = headEnd(current.subarray(0, buffered))) < 0) {
      const n = await conn.read(current.subarray(buffered));
      if (n === null) return;
      buffered += n;
    }
    const head = new TextDecoder().decode(current.subarray(0, end));
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (/\r\nexpect:\s*100-continue/i.test(head)) await conn.write(CONTINUE);
    current.copyWithin(0, end, buffered);
    buffered -= end;
    let left = length - Math.min(buffered, length);
    const file = mode === "discard"
      ? undefined
      : await Deno.open(nextPath(), { write: true, create: true, truncate: true });
    const hash = mode === "hash" ? createHash("sha256") : undefined;
    let pending: Promise<unknown> = Promise.resolve();
    const flush = async () => {
      const batch = current.subarray(0, buffered);
      hash?.update(batch);
      await pending;
      if (file) {
        pending = (async () => {
          for (let done = 0; done < batch.byteLength;) {
            done += await file.write(batch.subarray(done));
          }
        })();
      }
      [current, spare] = [spare, current];
      buffered = 0;
    };
    while (left > 0) {
      const n = await conn.read(
        current.subarray(buffered, buffered + Math.min(left, BATCH - buffered)),
      );
      if (n === null) return;
      buffered += n;
      left -= n;
      if (buffered === BATCH) await flush();
    }
    if (buffered > 0) await flush();
    await pending;
    if (hash) hash.digest("hex");
    file?.close();
    await conn.write(ANSWER);
  }
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

if (import.meta.main) {
  const [port, dataDir, mode] = Deno.args;
  if (mode !== "discard" && mode !== "file" && mode !== "hash") {
    throw new Error("usage: listen_floor.ts PORT DATA_DIR discard|file|hash");
  }
  await Deno.mkdir(dataDir!, { recursive: true });
  await serveFloor(Deno.listen({ hostname: "127.0.0.1", port: Number(port) }), dataDir!, mode);
}
