/**
 * Just enough tar for image archives: list the regular files of an archive (ustar, GNU long
 * names, pax `path`), read one as a stream of its byte range, and write an archive of files
 * from disk (ustar; long names with a pax header).
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";

/** A regular file inside an archive. */
export interface TarEntry {
  /** Path inside the archive (no leading `./`). */
  name: string;
  /** Offset of its data in the archive file. */
  offset: number;
  /** Size in bytes. */
  size: number;
}

const BLOCK = 512;

function readString(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return new TextDecoder().decode(block.subarray(start, end));
}

function readOctal(block: Uint8Array, start: number, length: number): number {
  if ((block[start]! & 0x80) !== 0) {
    let value = 0;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    return value;
  }
  const text = readString(block, start, length).trim();
  return text === "" ? 0 : parseInt(text, 8);
}

async function readExact(file: Deno.FsFile, buffer: Uint8Array): Promise<boolean> {
  let filled = 0;
  while (filled < buffer.byteLength) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) {
      if (filled === 0) return false;
      throw new ClientError("invalid", "truncated tar archive");
    }
    filled += n;
  }
  return true;
}

function normalizeName(name: string): string {
  return name.replace(/^\.\//, "").replace(/^\/+/, "");
}

/** List the regular files of a tar archive (by path; a later entry replaces an earlier one). */
export async function listTar(path: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const file = await Deno.open(path, { read: true });
  try {
    const header = new Uint8Array(BLOCK);
    let offset = 0;
    let longName: string | undefined;
    while (await readExact(file, header)) {
      offset += BLOCK;
      if (header.every((b) => b === 0)) break;
      const magic = readString(header, 257, 6);
      if (!magic.startsWith("ustar") && readOctal(header, 148, 8) === 0) {
        throw new ClientError("invalid", `${path} is not a tar archive`);
      }
      const size = readOctal(header, 124, 12);
      const type = String.fromCharCode(header[156] || 48);
      const prefix = magic.startsWith("ustar") ? readString(header, 345, 155) : "";
      let name = readString(header, 0, 100);
      if (prefix) name = `${prefix}/${name}`;
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (type === "L" || type === "x") {
        const data = new Uint8Array(padded);
        if (!await readExact(file, data)) throw new ClientError("invalid", "truncated tar archive");
        const text = new TextDecoder().decode(data.subarray(0, size));
        if (type === "L") longName = text.replace(/\0+$/, "");
        else {
          const match = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text);
          if (match) longName = match[1];
        }
        offset += padded;
        continue;
      }
      if (longName !== undefined) {
        name = longName;
        longName = undefined;
      }
      if (type === "0" || type === "7") {
        const entry = { name: normalizeName(name), offset, size };
        entries.set(entry.name, entry);
      }
      offset += padded;
      await file.seek(offset, Deno.SeekMode.Start);
    }
  } finally {
    file.close();
  }
  return entries;
}

/** A stream of one entry's bytes. */
export async function readTarEntry(
  path: string,
  entry: TarEntry,
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  await file.seek(entry.offset, Deno.SeekMode.Start);
  let remaining = entry.size;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (remaining === 0) {
        file.close();
        controller.close();
        return;
      }
      const buffer = new Uint8Array(Math.min(remaining, 1 << 20));
      const n = await file.read(buffer);
      if (n === null) {
        file.close();
        controller.error(new ClientError("invalid", `${path}: truncated entry ${entry.name}`));
        return;
      }
      remaining -= n;
      controller.enqueue(buffer.subarray(0, n));
    },
    cancel() {
      file.close();
    },
  });
}

/** Read a whole (small) entry. */
export async function readTarText(path: string, entry: TarEntry): Promise<string> {
  return await new Response(await readTarEntry(path, entry)).text();
}

function writeString(block: Uint8Array, start: number, length: number, value: string) {
  const bytes = new TextEncoder().encode(value);
  block.set(bytes.subarray(0, length), start);
}

function writeOctal(block: Uint8Array, start: number, length: number, value: number) {
  writeString(block, start, length, value.toString(8).padStart(length - 1, "0"));
}

function header(name: string, size: number, type: string, mtime: number): Uint8Array {
  const block = new Uint8Array(BLOCK);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, type === "5" ? 0o755 : 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block.fill(32, 148, 156);
  block[156] = type.charCodeAt(0);
  writeString(block, 257, 6, "ustar");
  writeString(block, 263, 2, "00");
  let sum = 0;
  for (const b of block) sum += b;
  writeString(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** A file to put in an archive: bytes, or a path on disk. */
export interface TarSource {
  /** Path inside the archive. */
  name: string;
  /** Bytes, or a file to copy. */
  data: Uint8Array | { path: string };
}

/**
 * Make `file` an archive of `sources` atomically: written beside the staging folder `staging`,
 * renamed over `file`, and the staging folder removed whatever happens.
 */
export async function commitTar(
  file: string,
  staging: string,
  sources: TarSource[],
  signal?: AbortSignal,
): Promise<void> {
  const tmp = `${staging}.tar`;
  try {
    await writeTar(tmp, sources, signal);
    await Deno.rename(tmp, file);
  } finally {
    await Deno.remove(tmp).catch(() => {});
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** Write a tar archive of `sources` to `path` (fsynced). Directories are implied by names. */
export async function writeTar(
  path: string,
  sources: TarSource[],
  signal?: AbortSignal,
): Promise<void> {
  const out = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const mtime = Math.floor(Date.now() / 1000);
    const dirs = new Set<string>();
    const writeAll = async (bytes: Uint8Array) => {
      let written = 0;
      while (written < bytes.byteLength) written += await out.write(bytes.subarray(written));
    };
    const writeHeader = async (name: string, size: number, type: string) => {
      if (new TextEncoder().encode(name).byteLength > 99) {
        const record = (n: number) => `${n} path=${name}\n`;
        let length = record(0).length;
        while (record(length).length !== length) length = record(length).length;
        const pax = new TextEncoder().encode(record(length));
        await writeAll(header("././@PaxHeader", pax.byteLength, "x", mtime));
        await writeAll(pax);
        await writeAll(new Uint8Array((BLOCK - pax.byteLength % BLOCK) % BLOCK));
      }
      await writeAll(header(name, size, type, mtime));
    };
    for (const source of sources) {
      if (signal?.aborted) throw new ClientError("aborted", "interrupted");
      const parts = source.name.split("/");
      for (let i = 1; i < parts.length; i++) {
        const dir = `${parts.slice(0, i).join("/")}/`;
        if (!dirs.has(dir)) {
          dirs.add(dir);
          await writeHeader(dir, 0, "5");
        }
      }
      if (source.data instanceof Uint8Array) {
        await writeHeader(source.name, source.data.byteLength, "0");
        await writeAll(source.data);
        await writeAll(new Uint8Array((BLOCK - source.data.byteLength % BLOCK) % BLOCK));
        continue;
      }
      const input = await Deno.open(source.data.path, { read: true });
      try {
        const size = (await input.stat()).size;
        await writeHeader(source.name, size, "0");
        const buffer = new Uint8Array(1 << 20);
        let copied = 0;
        while (true) {
          const n = await input.read(buffer);
          if (n === null) break;
          copied += n;
          await writeAll(buffer.subarray(0, n));
        }
        if (copied !== size) {
          throw new ClientError("invalid", `${source.data.path} changed while archived`);
        }
        await writeAll(new Uint8Array((BLOCK - size % BLOCK) % BLOCK));
      } finally {
        input.close();
      }
    }
    await writeAll(new Uint8Array(BLOCK * 2));
    await out.sync();
  } finally {
    out.close();
  }
}

/** Extract the regular files of an archive into `dir` (paths escaping `dir` are refused). */
export async function extractTar(path: string, dir: string): Promise<void> {
  for (const entry of (await listTar(path)).values()) {
    const parts = entry.name.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.some((p) => p === "..") || parts.length === 0) {
      throw new ClientError("invalid", `${path}: unsafe path ${entry.name}`);
    }
    const target = `${dir}/${parts.join("/")}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    const file = await Deno.open(target, { write: true, create: true, truncate: true });
    await (await readTarEntry(path, entry)).pipeTo(file.writable);
  }
}
