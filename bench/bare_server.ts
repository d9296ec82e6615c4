/**
 * The floor under berth: a bare `Deno.serve` doing the same I/O as berth for the benchmark's
 * blob and manifest scenarios and nothing else (no routing table, validation, auth, limits,
 * metrics or links). Uploads are hashed and written in 1 MiB BYOB batches, fsynced and renamed;
 * blobs are served with 1 MiB `file.read()` pulls; the manifest is a fixed document. What berth
 * loses against distribution and this server loses too is the runtime's, not berth's.
 *
 * Run as `deno run --allow-net --allow-read --allow-write bare_server.ts PORT DATA_DIR`.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

const BATCH = 1 << 20;
const MANIFEST = new TextEncoder().encode(JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: `sha256:${"0".repeat(64)}`,
    size: 2,
  },
  layers: [{
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: `sha256:${"1".repeat(64)}`,
    size: 64,
  }],
}));
const MANIFEST_DIGEST = `sha256:${createHash("sha256").update(MANIFEST).digest("hex")}`;

interface Session {
  path: string;
  hash: Hash;
  size: number;
}

/** Serve until killed. */
export function serveBare(port: number, dataDir: string): Deno.HttpServer {
  const sessions = new Map<string, Session>();
  const blobPath = (digest: string) => `${dataDir}/${digest.replace(":", "_")}`;
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const path = url.pathname;
    const method = request.method;
    if (path === "/v2/") return new Response("{}");
    if (path.includes("/manifests/")) {
      return new Response(method === "HEAD" ? null : MANIFEST, {
        headers: {
          "Content-Type": "application/vnd.oci.image.manifest.v1+json",
          "Content-Length": String(MANIFEST.byteLength),
          "Docker-Content-Digest": MANIFEST_DIGEST,
        },
      });
    }
    if (method === "POST" && path.endsWith("/blobs/uploads/")) {
      const id = crypto.randomUUID();
      const file = `${dataDir}/upload-${id}`;
      await Deno.writeFile(file, new Uint8Array());
      sessions.set(id, { path: file, hash: createHash("sha256"), size: 0 });
      return new Response(null, { status: 202, headers: { Location: `/upload/${id}` } });
    }
    if (path.startsWith("/upload/")) {
      const id = path.slice("/upload/".length);
      const session = sessions.get(id);
      if (!session) return new Response(null, { status: 404 });
      if (request.body && request.headers.get("Content-Length") !== "0") {
        await append(session, request.body);
      }
      if (method === "PATCH") {
        return new Response(null, { status: 202, headers: { Location: `/upload/${id}` } });
      }
      const digest = url.searchParams.get("digest") ?? "";
      sessions.delete(id);
      if (`sha256:${session.hash.digest("hex")}` !== digest) {
        await Deno.remove(session.path);
        return new Response(null, { status: 400 });
      }
      const file = await Deno.open(session.path, { read: true });
      await file.sync();
      file.close();
      await Deno.rename(session.path, blobPath(digest));
      return new Response(null, { status: 201 });
    }
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path)?.[1];
    if (blob && method === "HEAD") {
      // One synchronous stat, as berth's filesystem store does (a page-cached inode).
      try {
        const { size } = Deno.statSync(blobPath(blob));
        return new Response(null, {
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Length": String(size),
            "Docker-Content-Digest": blob,
          },
        });
      } catch {
        return new Response(null, { status: 404 });
      }
    }
    if (blob && method === "GET") {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(blobPath(blob), { read: true });
      } catch {
        return new Response(null, { status: 404 });
      }
      const size = (await file.stat()).size;
      const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get("Range") ?? "");
      const start = range ? Number(range[1]) : 0;
      const end = range ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      const headers: Record<string, string> = { "Content-Length": String(end - start + 1) };
      if (range) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
      return new Response(pull(file, end - start + 1), { status: range ? 206 : 200, headers });
    }
    return new Response(null, { status: 404 });
  });
}

async function append(session: Session, body: ReadableStream<Uint8Array>): Promise<void> {
  const file = await Deno.open(session.path, { write: true, append: true });
  try {
    const reader = body.getReader({ mode: "byob" });
    let buffer = new Uint8Array(BATCH);
    let filled = 0;
    const flush = async () => {
      const batch = buffer.subarray(0, filled);
      session.hash.update(batch);
      for (let done = 0; done < batch.byteLength;) done += await file.write(batch.subarray(done));
      session.size += filled;
      filled = 0;
    };
    while (true) {
      const { done, value } = await reader.read(buffer.subarray(filled));
      if (value) {
        buffer = new Uint8Array(value.buffer);
        filled += value.byteLength;
      }
      if (done) break;
      if (filled === BATCH) await flush();
    }
    if (filled > 0) await flush();
  } finally {
    file.close();
  }
}

function pull(file: Deno.FsFile, length: number): ReadableStream<Uint8Array> {
  let left = length;
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      const buffer = new Uint8Array(Math.min(left, BATCH));
      const n = await file.read(buffer);
      if (!n) {
        file.close();
        controller.close();
        return;
      }
      left -= n;
      controller.enqueue(buffer.subarray(0, n));
      if (left <= 0) {
        file.close();
        controller.close();
      }
    },
    cancel: () => file.close(),
  });
}

if (import.meta.main) {
  const [port, dataDir] = Deno.args;
  await Deno.mkdir(dataDir!, { recursive: true });
  await serveBare(Number(port), dataDir!).finished;
}
