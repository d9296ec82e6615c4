/**
 * The floor under berth's own HTTP/1.1 server: a bare `Deno.listen` loop that does a push's I/O
 * and nothing else, what any Deno server pays for the same work at least.
 *
 * Modes `discard`, `file` and `hash` take any request's body (`Content-Length` or chunked) in 2
 * MiB batches and, by mode, drop it, write it to a new file (each batch written while the next is
 * read, as berth does) or also hash it with `node:crypto` SHA-256 on the main thread; no sessions,
 * no fsync; then `201`. Mode `push` speaks the registry's upload protocol as the benchmark drives
 * it: `POST .../blobs/uploads/` opens a session (`202`, `Location: /upload/N`), `PATCH /upload/N`
 * appends its body, `PUT /upload/N?digest=` appends an optional last body, compares the SHA-256,
 * waits for the file's `fdatasync`, renames it into place and answers `201` (`400` on a wrong
 * digest).
 * Chunked bodies are decoded through a 2 MiB receive buffer and copied into the batch; bodies with
 * a `Content-Length` are read straight into it. No routing, limits, timeouts or validation beyond
 * that.
 *
 * Run as `deno run --allow-net --allow-read --allow-write listen_floor.ts PORT DATA_DIR MODE`.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** Bytes hashed and written at once (berth's `WRITE_BATCH`). */
const BATCH = 2 << 20;
/** The receive buffer of a connection reading a chunked body (berth's `CHUNKED_BUFFER`). */
const RECEIVE = 2 << 20;
/** The receive buffer of a connection between chunked bodies (heads only). */
const SMALL = 16 << 10;
const encoder = new TextEncoder();
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** What the floor does with the bytes. */
export type FloorMode = "discard" | "file" | "hash" | "push";

/** Whether `mode` is one of the floor's modes. */
export function isFloorMode(mode: string | undefined): mode is FloorMode {
  return mode === "discard" || mode === "file" || mode === "hash" || mode === "push";
}

/** Where a body goes: a file (maybe) and a hash (maybe). */
interface Target {
  path: string;
  file: Deno.FsFile | undefined;
  hash: Hash | undefined;
  /** The write in flight. */
  pending: Promise<unknown>;
}

/** Serve until the listener closes. */
export async function serveFloor(listener: Deno.Listener, dataDir: string, mode: FloorMode) {
  const state: State = { next: 0, sessions: new Map(), buffers: [] };
  for await (const conn of listener) {
    void connection(conn, dataDir, mode, state).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
  }
}

/** What the connections share: sessions, and the batch buffers not in use. */
interface State {
  next: number;
  sessions: Map<string, Target>;
  buffers: Uint8Array<ArrayBuffer>[];
}

/** One connection's reads: request heads and chunk framing through a receive buffer. */
class Reads {
  raw = new Uint8Array(SMALL);
  start = 0;
  end = 0;
  constructor(readonly conn: Deno.Conn) {}

  get buffered(): number {
    return this.end - this.start;
  }

  /** Make the receive buffer `size` bytes long, keeping what it holds. */
  resize(size: number): void {
    if (this.raw.length === size || this.buffered > size) return;
    const raw = new Uint8Array(size);
    raw.set(this.raw.subarray(this.start, this.end));
    this.end -= this.start;
    this.start = 0;
    this.raw = raw;
  }

  /** Read more into the receive buffer; false at the end of the stream. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0;
    else if (this.end === this.raw.length) {
      this.raw.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    const n = await this.conn.read(this.raw.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /** The next line (without CRLF), or `null` when the connection ends first. */
  async line(): Promise<string | null> {
    for (;;) {
      const lf = this.raw.subarray(this.start, this.end).indexOf(10);
      if (lf >= 0) {
        const line = latin1(this.raw.subarray(this.start, this.start + lf - 1));
        this.start += lf + 1;
        return line;
      }
      if (!(await this.fill())) return null;
    }
  }
}

async function connection(
  conn: Deno.Conn,
  dataDir: string,
  mode: FloorMode,
  state: State,
) {
  const reads = new Reads(conn);
  const buffer = () => state.buffers.pop() ?? new Uint8Array(BATCH);
  for (;;) {
    const requestLine = await reads.line();
    if (requestLine === null) return;
    if (requestLine === "") continue;
    const [method = "", target = ""] = requestLine.split(" ");
    let length = 0;
    let chunked = false;
    let expect = false;
    for (let line = await reads.line(); line; line = await reads.line()) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === "content-length") length = Number(value);
      else if (name === "transfer-encoding") chunked = value === "chunked";
      else if (name === "expect") expect = value === "100-continue";
    }
    const url = new URL(target, "http://floor");
    let sink: Target | undefined;
    let answer = "201 Created";
    let location = "";
    if (url.pathname === "/v2/") {
      answer = "200 OK"; // what the benchmark polls until the server is up
    } else if (mode !== "push") {
      const path = `${dataDir}/floor-${state.next++}`;
      const file = mode === "discard"
        ? undefined
        : await Deno.open(path, { write: true, create: true, truncate: true });
      const hash = mode === "hash" ? createHash("sha256") : undefined;
      sink = { path, file, hash, pending: Promise.resolve() };
    } else if (method === "POST" && url.pathname.endsWith("/blobs/uploads/")) {
      const id = String(state.next++);
      const path = `${dataDir}/upload-${id}`;
      const file = await Deno.open(path, { write: true, create: true, truncate: true });
      const hash = createHash("sha256");
      state.sessions.set(id, {
        path,
        file,
        hash,
        pending: Promise.resolve(),
      });
      answer = "202 Accepted";
      location = `/upload/${id}`;
    } else {
      const id = url.pathname.slice("/upload/".length);
      sink = state.sessions.get(id);
      if (!sink) answer = "404 Not Found";
      else if (method === "PATCH") {
        answer = "202 Accepted";
        location = url.pathname;
      }
    }
    if (expect && (length > 0 || chunked)) await conn.write(CONTINUE);
    let current = buffer();
    let spare = buffer();
    let filled = 0;
    if (chunked) reads.resize(RECEIVE);

    /** Hash the batch, write it (after the previous write) and swap buffers. */
    const flush = async () => {
      const batch = current.subarray(0, filled);
      sink?.hash?.update(batch);
      if (sink?.file) {
        const target = sink;
        const file = sink.file;
        await target.pending;
        target.pending = (async () => {
          for (let done = 0; done < batch.byteLength;) {
            done += await file.write(batch.subarray(done));
          }
        })();
      }
      [current, spare] = [spare, current];
      filled = 0;
    };
    /** Move up to `count` buffered bytes into the batch; returns how many. */
    const take = async (count: number) => {
      const n = Math.min(count, reads.buffered, BATCH - filled);
      current.set(reads.raw.subarray(reads.start, reads.start + n), filled);
      reads.start += n;
      filled += n;
      if (filled === BATCH) await flush();
      return n;
    };

    if (chunked) {
      for (;;) {
        const sizeLine = await reads.line();
        if (sizeLine === null) return;
        let left = parseInt(sizeLine, 16);
        if (!(left >= 0)) return;
        if (left === 0) {
          while (await reads.line()) {
            // trailers, dropped
          }
          break;
        }
        while (left > 0) {
          if (reads.buffered === 0 && !(await reads.fill())) return;
          left -= await take(left);
        }
        if ((await reads.line()) !== "") return;
      }
    } else {
      let left = length;
      while (left > 0 && reads.buffered > 0) left -= await take(left);
      while (left > 0) {
        const n = await conn.read(
          current.subarray(filled, filled + Math.min(left, BATCH - filled)),
        );
        if (n === null) return;
        filled += n;
        left -= n;
        if (filled === BATCH) await flush();
      }
    }
    if (filled > 0) await flush();
    await sink?.pending;
    state.buffers.push(current, spare);
    reads.resize(SMALL);

    if (mode !== "push") {
      sink?.hash?.digest("hex");
      sink?.file?.close();
    } else if (sink && method === "PUT") {
      state.sessions.delete(url.pathname.slice("/upload/".length));
      const digest = url.searchParams.get("digest") ?? "";
      if (`sha256:${sink.hash!.digest("hex")}` === digest) {
        await sink.file!.syncData();
        sink.file!.close();
        await Deno.rename(sink.path, `${dataDir}/${digest.replace(":", "_")}`);
      } else {
        sink.file!.close();
        await Deno.remove(sink.path);
        answer = "400 Bad Request";
      }
    }
    const extra = location ? `location: ${location}\r\n` : "";
    await conn.write(
      encoder.encode(`HTTP/1.1 ${answer}\r\n${extra}content-length: 0\r\n\r\n`),
    );
  }
}

// ---- mode `get` (blob GETs) ----

/** How the `get` floor moves a file's bytes to the socket. */
export type GetVariant =
  | { kind: "read"; size: number }
  | { kind: "overlap"; size: number }
  | { kind: "pipe" };

/** The `get` floor's default: berth's way (bench/README.md has the variants measured). */
export const GET_DEFAULT = "overlap:1";

/**
 * Parse a `get` variant: `read:MIB` (one reused buffer, a read then a write), `overlap:MIB` (two
 * buffers, the next read while the last write goes out) or `pipe` (`file.readable.pipeTo`; whole
 * files only, it sends to the file's end).
 */
export function parseGetVariant(text: string): GetVariant {
  const [kind, mib = "1"] = text.split(":");
  const size = Number(mib) * (1 << 20);
  if (kind === "pipe") return { kind };
  if ((kind === "read" || kind === "overlap") && size >= 1 << 16) return { kind, size };
  throw new Error(`unknown get variant ${text}: read:MIB, overlap:MIB or pipe`);
}

/**
 * Serve blob GETs until the listener closes: `GET .../blobs/<digest>` answers the file
 * `DATA_DIR/<algorithm>_<hex>` whole, or one `Range: bytes=A-B` of it (206), with a
 * `Content-Length` and nothing else; `GET /v2/` answers `{}`. Keep-alive; no validation.
 */
export async function serveGetFloor(
  listener: Deno.Listener,
  dataDir: string,
  variant: GetVariant,
) {
  const buffers: Uint8Array<ArrayBuffer>[] = [];
  for await (const conn of listener) {
    void getConnection(conn, dataDir, variant, buffers).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
  }
}

async function getConnection(
  conn: Deno.Conn,
  dataDir: string,
  variant: GetVariant,
  buffers: Uint8Array<ArrayBuffer>[],
) {
  const reads = new Reads(conn);
  for (;;) {
    const requestLine = await reads.line();
    if (requestLine === null) return;
    if (requestLine === "") continue;
    const target = requestLine.split(" ")[1] ?? "";
    let range: [number, number] | undefined;
    for (let line = await reads.line(); line; line = await reads.line()) {
      const match = /^range:\s*bytes=(\d+)-(\d+)\s*$/i.exec(line);
      if (match) range = [Number(match[1]), Number(match[2])];
    }
    const blob = /\/blobs\/([a-z0-9]+):([a-f0-9]+)$/.exec(target);
    if (!blob) {
      const body = target === "/v2/" ? "{}" : "";
      const status = target === "/v2/" ? "200 OK" : "404 Not Found";
      await writeAll(
        conn,
        encoder.encode(`HTTP/1.1 ${status}\r\ncontent-length: ${body.length}\r\n\r\n${body}`),
      );
      continue;
    }
    const file = await Deno.open(`${dataDir}/${blob[1]}_${blob[2]}`, { read: true });
    try {
      const size = (await file.stat()).size;
      let start = 0;
      let length = size;
      let status = "200 OK";
      if (range && range[0] <= range[1] && range[1] < size) {
        [start, length] = [range[0], range[1] - range[0] + 1];
        status = "206 Partial Content";
        await file.seek(start, Deno.SeekMode.Start);
      }
      const head = encoder.encode(
        `HTTP/1.1 ${status}\r\ncontent-type: application/octet-stream\r\n` +
          `content-length: ${length}\r\n\r\n`,
      );
      if (variant.kind === "pipe") {
        await writeAll(conn, head);
        await file.readable.pipeTo(conn.writable, { preventClose: true });
      } else if (variant.kind === "read") {
        await sendRead(conn, file, head, length, variant.size, buffers);
      } else await sendOverlap(conn, file, head, length, variant.size, buffers);
    } finally {
      try {
        file.close();
      } catch {
        // closed by pipeTo
      }
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** A buffer of `size` bytes from `buffers`, or a new one. */
function takeBuffer(buffers: Uint8Array<ArrayBuffer>[], size: number): Uint8Array<ArrayBuffer> {
  const at = buffers.findIndex((b) => b.length === size);
  return at >= 0 ? buffers.splice(at, 1)[0]! : new Uint8Array(size);
}

/** The head, then the file through one reused buffer: read, write, read, write. */
async function sendRead(
  conn: Deno.Conn,
  file: Deno.FsFile,
  head: Uint8Array,
  length: number,
  size: number,
  buffers: Uint8Array<ArrayBuffer>[],
) {
  const buffer = takeBuffer(buffers, size);
  buffer.set(head);
  let filled = head.length;
  let left = length;
  while (left > 0) {
    const n = await file.read(buffer.subarray(filled, Math.min(size, filled + left)));
    if (n === null) throw new Error("file ended early");
    filled += n;
    left -= n;
    if (filled === size || left === 0) {
      await writeAll(conn, buffer.subarray(0, filled));
      filled = 0;
    }
  }
  if (filled > 0) await writeAll(conn, buffer.subarray(0, filled));
  buffers.push(buffer);
}

/** The head, then the file through two buffers: the next one is read while one is written. */
async function sendOverlap(
  conn: Deno.Conn,
  file: Deno.FsFile,
  head: Uint8Array,
  length: number,
  size: number,
  buffers: Uint8Array<ArrayBuffer>[],
) {
  let current = takeBuffer(buffers, size);
  let next = takeBuffer(buffers, size);
  /** Fill `buffer` from `from` with up to what is left; returns its filled length. */
  const fill = async (buffer: Uint8Array, from: number, want: number) => {
    let filled = from;
    const end = Math.min(buffer.length, from + want);
    while (filled < end) {
      const n = await file.read(buffer.subarray(filled, end));
      if (n === null) throw new Error("file ended early");
      filled += n;
    }
    return filled;
  };
  current.set(head);
  let filled = await fill(current, head.length, length);
  let left = length - (filled - head.length);
  for (;;) {
    const reading = left > 0 ? fill(next, 0, left) : Promise.resolve(0);
    await writeAll(conn, current.subarray(0, filled));
    filled = await reading;
    if (filled === 0) break;
    left -= filled;
    [current, next] = [next, current];
  }
  buffers.push(current, next);
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

if (import.meta.main && Deno.args[2] === "get") {
  const [port, dataDir, _, variant = GET_DEFAULT] = Deno.args;
  await Deno.mkdir(dataDir!, { recursive: true });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(port) });
  await serveGetFloor(listener, dataDir!, parseGetVariant(variant));
} else if (import.meta.main) {
  const [port, dataDir, mode] = Deno.args;
  if (!isFloorMode(mode)) {
    throw new Error("usage: listen_floor.ts PORT DATA_DIR discard|file|hash|push");
  }
  await Deno.mkdir(dataDir!, { recursive: true });
  await serveFloor(Deno.listen({ hostname: "127.0.0.1", port: Number(port) }), dataDir!, mode);
}
