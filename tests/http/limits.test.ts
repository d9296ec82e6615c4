/**
 * Request limits: body size (413), open upload sessions per client (429), stalled bodies (408),
 * header size (431), and expiry of idle upload sessions; nothing partial is kept.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { LimitsConfig } from "../../src/config.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

async function withServer(
  limits: Partial<LimitsConfig>,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await startServer({ config: { limits } });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function open(server: TestServer, repo = "limits/app"): Promise<Response> {
  const response = await fetch(`${server.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await response.body?.cancel();
  return response;
}

async function sizeOf(server: TestServer, location: string): Promise<string | number> {
  const response = await fetch(`${server.url}${location}`);
  await response.body?.cancel();
  return response.status === 204 ? (response.headers.get("Range") ?? "") : response.status;
}

async function errorCode(response: Response): Promise<string | undefined> {
  const text = await response.text();
  return text ? JSON.parse(text).errors?.[0]?.code : undefined;
}

Deno.test("limits: a body over maxBodyBytes answers 413 and the session keeps its bytes", async () => {
  await withServer({ maxBodyBytes: 1000 }, async (server) => {
    const location = (await open(server)).headers.get("Location")!;
    const first = await fetch(`${server.url}${location}`, {
      method: "PATCH",
      body: new Uint8Array(600),
    });
    await first.body?.cancel();
    assert.equal(first.status, 202);
    const declared = await fetch(`${server.url}${location}`, {
      method: "PATCH",
      body: new Uint8Array(2000),
    });
    assert.equal(declared.status, 413);
    assert.equal(await errorCode(declared), "SIZE_INVALID");
    const streamed = await fetch(`${server.url}${location}`, {
      method: "PATCH",
      body: ReadableStream.from([new Uint8Array(700), new Uint8Array(700)]),
    });
    assert.equal(streamed.status, 413);
    await streamed.body?.cancel();
    assert.equal(await sizeOf(server, location), "0-599");
  });
});

Deno.test("limits: more open upload sessions than allowed answers 429 TOOMANYREQUESTS", async () => {
  await withServer({ maxUploadsPerClient: 2 }, async (server) => {
    const first = await open(server);
    assert.equal(first.status, 202);
    assert.equal((await open(server, "limits/other")).status, 202);
    const third = await fetch(`${server.url}/v2/limits/app/blobs/uploads/`, { method: "POST" });
    assert.equal(third.status, 429);
    assert.equal(await errorCode(third), "TOOMANYREQUESTS");
    const cancel = await fetch(`${server.url}${first.headers.get("Location")}`, {
      method: "DELETE",
    });
    await cancel.body?.cancel();
    assert.equal(cancel.status, 204);
    assert.equal((await open(server)).status, 202, "a cancelled session frees its slot");
  });
});

Deno.test("limits: a body that stalls answers 408 and leaves nothing behind", async () => {
  await withServer({ bodyIdleTimeoutMs: 300 }, async (server) => {
    const location = (await open(server)).headers.get("Location")!;
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(new URL(server.url).port),
    });
    try {
      const head = `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head + "0123456789"));
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer);
      const reply = new TextDecoder().decode(buffer.subarray(0, n ?? 0));
      assert.match(reply, /^HTTP\/1\.1 408 /);
    } finally {
      conn.close();
    }
    assert.equal(await sizeOf(server, location), "0-0");
  });
});

Deno.test("limits: oversized request headers answer 431", async () => {
  await withServer({ maxHeaderBytes: 4096 }, async (server) => {
    const response = await fetch(`${server.url}/v2/limits/app/manifests/latest`, {
      headers: { "X-Junk": "j".repeat(8000) },
    });
    assert.equal(response.status, 431);
    assert.equal(await errorCode(response), "SIZE_INVALID");
  });
});

Deno.test("limits: an upload session untouched past its timeout is removed", async () => {
  await withServer({ uploadSessionTimeoutMs: 300 }, async (server) => {
    const location = (await open(server)).headers.get("Location")!;
    const dir = `${server.dataDir}/docker/registry/v2/repositories/limits/app/_uploads`;
    // Watch the disk, not the session: a status request counts as activity.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && [...Deno.readDirSync(dir)].length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(await sizeOf(server, location), 404);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});
