/**
 * Uploads cut at the shutdown deadline: a chunk of declared length keeps the prefix that reached
 * storage; one cut before the deadline (a client that went away) is trimmed to where it began.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { serveHttp } from "../../src/http/server.ts";
import { makeConfig } from "../../src/config.ts";
import { digestOf, expectStatus, randomBytes } from "../helpers/registry.ts";

const MIB = 1024 * 1024;

/** A server over a fresh data directory, with its app at hand. */
async function start(given?: string) {
  const dataDir = given ?? await Deno.makeTempDir({ prefix: "berth-deadline-" });
  const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0" }), {
    logError: () => {},
    log: () => {},
  });
  const { promise, resolve } = Promise.withResolvers<number>();
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) },
    app.handler,
  );
  const port = await promise;
  const call = (path: string, init?: RequestInit) =>
    app.handler(new Request(`http://127.0.0.1:${port}${path}`, init));
  return {
    app,
    server,
    port,
    dataDir,
    call,
    async close(keep = false) {
      await server.shutdown().catch(() => {});
      await app.close();
      if (!keep) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Bytes of the session's data file on disk. */
async function sessionBytes(dataDir: string, name: string, id: string): Promise<number> {
  const path = `${dataDir}/docker/registry/v2/repositories/${name}/_uploads/${id}/data`;
  return (await Deno.stat(path).catch(() => undefined))?.size ?? 0;
}

/** Open a session, PATCH 1 MiB, then start a PATCH declaring 4 MiB that sends 3 and stalls. */
async function stalledPatch(s: Awaited<ReturnType<typeof start>>, name: string) {
  const open = await s.call(`/v2/${name}/blobs/uploads/`, { method: "POST" });
  await expectStatus(open, 202);
  const location = open.headers.get("Location")!;
  const id = location.slice(location.lastIndexOf("/") + 1);
  const bytes = randomBytes(5 * MIB, 3);
  const first = await s.call(location, {
    method: "PATCH",
    headers: { "Content-Range": `0-${MIB - 1}`, "Content-Type": "application/octet-stream" },
    body: bytes.slice(0, MIB),
  });
  await expectStatus(first, 202);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const head = `PATCH ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${4 * MIB}\r\n` +
    `Content-Range: ${MIB}-${5 * MIB - 1}\r\n\r\n`;
  await conn.write(new TextEncoder().encode(head));
  const part = bytes.subarray(MIB, 4 * MIB);
  let sent = 0;
  while (sent < part.byteLength) sent += await conn.write(part.subarray(sent));
  for (let i = 0; i < 400 && (await sessionBytes(s.dataDir, name, id)) < 2 * MIB; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok((await sessionBytes(s.dataDir, name, id)) >= 2 * MIB, "bytes reached the disk");
  return { location, id, conn, bytes };
}

async function rangeEnd(s: Awaited<ReturnType<typeof start>>, location: string) {
  const state = await s.call(location);
  await expectStatus(state, 204);
  return Number(/^0-(\d+)$/.exec(state.headers.get("Range") ?? "")?.[1]) + 1;
}

Deno.test("uploads: a chunk of declared length cut at the shutdown deadline keeps the prefix on disk", async () => {
  const s = await start();
  try {
    const { location, conn, bytes } = await stalledPatch(s, "deadline/kept");
    s.app.registry.uploads.stopWrites();
    s.app.ops.abortWrites();
    conn.close();
    await s.app.ops.idle();
    const size = await rangeEnd(s, location);
    assert.ok(
      size >= 2 * MIB && size <= 4 * MIB,
      `session at ${size} bytes, not cut back to 1 MiB`,
    );
    // The prefix is the client's bytes: after a restart the upload completes from there.
    await s.close(true);
    const again = await start(s.dataDir);
    try {
      assert.equal(await rangeEnd(again, location), size);
      const done = await again.call(`${location}?digest=${digestOf(bytes)}`, {
        method: "PUT",
        headers: { "Content-Range": `${size}-${bytes.byteLength - 1}` },
        body: bytes.slice(size),
      });
      await expectStatus(done, 201);
    } finally {
      await again.close();
    }
  } catch (error) {
    await s.close().catch(() => {});
    throw error;
  }
});

Deno.test("uploads: a chunk of declared length cut by the client is trimmed to where it began", async () => {
  const s = await start();
  try {
    const { location, conn } = await stalledPatch(s, "deadline/trimmed");
    conn.close();
    await s.app.ops.idle();
    assert.equal(await rangeEnd(s, location), MIB);
  } finally {
    await s.close();
  }
});
