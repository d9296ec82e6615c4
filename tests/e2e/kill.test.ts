/**
 * Crash safety: `kill -9` of a berth process in the middle of a large chunked upload, then a
 * restart on the same data directory.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnServer } from "../helpers/server.ts";
import {
  blobFiles,
  bytesOf,
  digestOf,
  expectStatus,
  pushImage,
  randomBytes,
} from "../helpers/registry.ts";

const PIECE = 1 << 20;
const PIECES = 40;
/** Bytes the server must have on disk before it is killed. */
const KILL_AFTER = 12 * PIECE;

/** Piece `i` of the big blob (generated, never held whole). */
function piece(i: number): Uint8Array<ArrayBuffer> {
  return randomBytes(PIECE, 1000 + i);
}

/** The big blob's bytes from `offset` on, as a stream; stops early at `gate` until it opens. */
function bigBody(
  offset: number,
  gate?: { at: number; open: Promise<void> },
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let position = offset;
  return new ReadableStream({
    async pull(controller) {
      if (position >= PIECE * PIECES) return controller.close();
      if (gate && position >= gate.at) {
        await gate.open;
        return controller.close();
      }
      const index = Math.floor(position / PIECE);
      const bytes = piece(index).subarray(position - index * PIECE);
      position += bytes.byteLength;
      controller.enqueue(bytes);
    },
  });
}

Deno.test("e2e(kill): kill -9 mid-upload leaves no partial blob; the session resumes", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-kill-" });
  const hash = createHash("sha256");
  for (let i = 0; i < PIECES; i++) hash.update(piece(i));
  const digest = `sha256:${hash.digest("hex")}`;
  try {
    let server = await spawnServer({ dataDir });
    // Something pushed before the crash.
    const image = await pushImage(server.url, "before/crash", "v1", { layerSize: 3 * PIECE });
    const blobsBefore = await blobFiles(dataDir);

    const open = await fetch(`${server.url}/v2/big/blob/blobs/uploads/`, { method: "POST" });
    await expectStatus(open, 202);
    const location = open.headers.get("Location")!;
    const id = open.headers.get("Docker-Upload-UUID")!;
    const sessionData = `${dataDir}/docker/registry/v2/repositories/big/blob/_uploads/${id}/data`;

    const { promise: gateOpen, resolve: openGate } = Promise.withResolvers<void>();
    const patch = fetch(`${server.url}${location}`, {
      method: "PATCH",
      body: bigBody(0, { at: 30 * PIECE, open: gateOpen }),
    }).then((r) => r.body?.cancel(), (error: unknown) => error);
    try {
      // Wait (bounded) until a good part of the upload is on disk, then kill the server hard.
      for (let i = 0; i < 600; i++) {
        const size = (await Deno.stat(sessionData).catch(() => undefined))?.size ?? 0;
        if (size >= KILL_AFTER) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const status = await server.stop("SIGKILL");
      assert.equal(status.signal, "SIGKILL");
    } finally {
      openGate();
    }
    assert.ok((await patch) instanceof Error, "the PATCH failed with the server");
    const onDisk = (await Deno.stat(sessionData)).size;
    assert.ok(onDisk >= KILL_AFTER && onDisk < PIECES * PIECE, `session holds ${onDisk} bytes`);

    server = await spawnServer({ dataDir });
    try {
      // No partial blob anywhere.
      const head = await fetch(`${server.url}/v2/big/blob/blobs/${digest}`, { method: "HEAD" });
      await expectStatus(head, 404);
      assert.deepEqual(await blobFiles(dataDir), blobsBefore);

      // Everything pushed before is intact.
      const manifest = await fetch(`${server.url}/v2/before/crash/manifests/v1`);
      assert.equal(digestOf(await bytesOf(manifest)), image.digest);
      const layer = await fetch(`${server.url}/v2/before/crash/blobs/${digestOf(image.layer)}`);
      assert.equal(digestOf(await bytesOf(layer)), digestOf(image.layer));

      // The session resumes where the disk says it is.
      const status = await fetch(`${server.url}${location}`);
      await expectStatus(status, 204);
      const range = /^0-(\d+)$/.exec(status.headers.get("Range") ?? "");
      assert.ok(range, "status gives a Range");
      const offset = Number(range[1]) + 1;
      assert.equal(offset, onDisk);
      const rest = await fetch(`${server.url}${location}`, {
        method: "PATCH",
        headers: { "Content-Range": `${offset}-${PIECES * PIECE - 1}` },
        body: bigBody(offset),
      });
      await expectStatus(rest, 202);
      const put = await fetch(`${server.url}${location}?digest=${digest}`, { method: "PUT" });
      await expectStatus(put, 201);
      const blob = await fetch(`${server.url}/v2/big/blob/blobs/${digest}`);
      assert.equal(blob.headers.get("Content-Length"), String(PIECES * PIECE));
      const check = createHash("sha256");
      for await (const chunk of blob.body!) check.update(chunk);
      assert.equal(`sha256:${check.digest("hex")}`, digest);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("e2e(kill): after kill -9 an interrupted upload can be restarted from scratch", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-kill-" });
  try {
    let server = await spawnServer({ dataDir });
    const bytes = randomBytes(4 * PIECE, 77);
    const open = await fetch(`${server.url}/v2/repo/blobs/uploads/`, { method: "POST" });
    await expectStatus(open, 202);
    const location = open.headers.get("Location")!;
    await expectStatus(
      await fetch(`${server.url}${location}`, { method: "PATCH", body: bytes.slice(0, PIECE) }),
      202,
    );
    await server.stop("SIGKILL");
    server = await spawnServer({ dataDir });
    try {
      // Abandon the old session, push the blob again in a fresh one.
      await expectStatus(await fetch(`${server.url}${location}`, { method: "DELETE" }), 204);
      const digest = digestOf(bytes);
      const mono = await fetch(`${server.url}/v2/repo/blobs/uploads/?digest=${digest}`, {
        method: "POST",
        body: bytes,
      });
      await expectStatus(mono, 201);
      assert.deepEqual(await bytesOf(await fetch(`${server.url}/v2/repo/blobs/${digest}`)), bytes);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
