import assert from "node:assert/strict";
import {
  bytesOf,
  digestOf,
  expectStatus,
  listFiles,
  pushBlob,
  randomBytes,
} from "../helpers/registry.ts";
import { type ChildServer, spawnServer } from "../helpers/server.ts";

const MIB = 1024 * 1024;

/** A request body that sends `first` and then waits until `release()` (which may end it). */
function stalledBody(first: Uint8Array, rest?: Uint8Array) {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(first);
        return;
      }
      await released;
      if (rest) controller.enqueue(rest);
      controller.close();
    },
    cancel: () => release(),
  });
  return { body, release };
}

/** Open an upload session; returns its absolute URL. */
async function openSession(server: ChildServer, name: string): Promise<URL> {
  const response = await fetch(`${server.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
  await expectStatus(response, 202);
  return new URL(response.headers.get("Location")!, server.url);
}

/** PATCH a chunk at `start`; returns the response (body drained). */
async function patch(url: URL, start: number, bytes: Uint8Array<ArrayBuffer>) {
  return await fetch(url, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Range": `${start}-${start + bytes.byteLength - 1}`,
    },
    body: bytes,
  });
}

/** Wait until `bytes` bytes of an upload's data file are on disk. */
async function waitForBytes(dataDir: string, bytes: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const files = await listFiles(`${dataDir}/docker/registry/v2/repositories`);
    const data = files.find((f) => f.includes("/_uploads/") && f.endsWith("/data"));
    const size = data
      ? (await Deno.stat(`${dataDir}/docker/registry/v2/repositories/${data}`)).size
      : 0;
    if (size >= bytes) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the upload never reached ${bytes} bytes`);
}

Deno.test("shutdown: SIGTERM during a stalled upload exits within the drain timeout; after a restart the data is intact and the upload resumes", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-shutdown-" });
  try {
    const server = await spawnServer({ dataDir, args: ["--drain-timeout", "1s"] });
    const earlier = randomBytes(256 * 1024, 7);
    const big = randomBytes(8 * MIB, 9);
    const url = await openSession(server, "big/repo");
    let inFlight: Promise<unknown> | undefined;
    let release = () => {};
    try {
      await pushBlob(server.url, "big/repo", earlier);
      await expectStatus(await patch(url, 0, big.slice(0, 4 * MIB)), 202);
      // The second chunk sends 2 MiB and then stalls forever.
      const stalled = stalledBody(big.slice(4 * MIB, 6 * MIB));
      release = stalled.release;
      inFlight = fetch(url, {
        method: "PATCH",
        headers: { "Content-Type": "application/octet-stream" },
        body: stalled.body,
      }).then((r) => bytesOf(r), () => undefined);
      await waitForBytes(dataDir, 4 * MIB + 1);
    } catch (error) {
      await server.stop("SIGKILL");
      throw error;
    }
    const started = performance.now();
    const status = await server.stop("SIGTERM");
    const elapsed = performance.now() - started;
    release();
    await inFlight;
    assert.equal(status.code, 0);
    // It waited for the stalled request, then aborted it and exited: writes still running are
    // aborted a margin before the deadline (a quarter of a 1 s timeout), and once the aborted
    // request has ended nothing is left to wait for.
    assert.ok(elapsed >= 700, `exited after ${elapsed} ms: did not wait for the request`);
    // The deadline is kept: 1 s, plus the moment a process takes to exit.
    assert.ok(elapsed < 1700, `exited after ${elapsed} ms: past the deadline`);

    const again = await spawnServer({ dataDir });
    try {
      // The blob pushed before is intact.
      const old = await fetch(`${again.url}/v2/big/repo/blobs/${digestOf(earlier)}`);
      assert.deepEqual(await bytesOf(old), earlier);
      // The session kept the complete first chunk, not the torn second one: resume from there.
      const state = await fetch(new URL(url.pathname, again.url));
      await expectStatus(state, 204);
      assert.equal(state.headers.get("Range"), `0-${4 * MIB - 1}`);
      const resumed = new URL(url.pathname, again.url);
      await expectStatus(await patch(resumed, 4 * MIB, big.slice(4 * MIB)), 202);
      const done = await fetch(`${resumed.href}?digest=${digestOf(big)}`, { method: "PUT" });
      await expectStatus(done, 201);
      const got = await fetch(`${again.url}/v2/big/repo/blobs/${digestOf(big)}`);
      assert.deepEqual(await bytesOf(got), big);
    } finally {
      assert.equal((await again.stop("SIGTERM")).code, 0);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("shutdown: a request in flight at SIGTERM is finished before the exit", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-shutdown-" });
  try {
    const server = await spawnServer({ dataDir, args: ["--drain-timeout", "20s"] });
    const blob = randomBytes(4 * MIB, 3);
    const url = await openSession(server, "drain/repo");
    // More than one upload write batch (2 MiB) before the stall, so bytes are on disk by then.
    const stalled = stalledBody(blob.slice(0, 3 * MIB), blob.slice(3 * MIB));
    const response = fetch(url, {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream" },
      body: stalled.body,
    });
    await waitForBytes(dataDir, 1);
    const exited = server.stop("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 200));
    stalled.release();
    const answered = await response;
    await expectStatus(answered, 202);
    assert.equal(answered.headers.get("Range"), `0-${4 * MIB - 1}`);
    const started = performance.now();
    assert.equal((await exited).code, 0);
    assert.ok(performance.now() - started < 5000, "exited soon after the request finished");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("shutdown: SIGTERM during a stalled upload of declared length exits in time; the upload resumes from what the server reports", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-shutdown-" });
  try {
    const server = await spawnServer({ dataDir, args: ["--drain-timeout", "1s"] });
    const big = randomBytes(8 * MIB, 11);
    const url = await openSession(server, "declared/repo");
    let conn: Deno.TcpConn | undefined;
    try {
      await expectStatus(await patch(url, 0, big.slice(0, 4 * MIB)), 202);
      // A PATCH that declares 4 MiB, sends 2 MiB, and stalls.
      conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(server.url).port) });
      const head = `PATCH ${url.pathname} HTTP/1.1\r\nHost: ${server.host}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${4 * MIB}\r\n` +
        `Content-Range: ${4 * MIB}-${8 * MIB - 1}\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      let sent = 0;
      const part = big.subarray(4 * MIB, 6 * MIB);
      while (sent < part.byteLength) sent += await conn.write(part.subarray(sent));
      await waitForBytes(dataDir, 4 * MIB + 1);
    } catch (error) {
      conn?.close();
      await server.stop("SIGKILL");
      throw error;
    }
    const started = performance.now();
    const status = await server.stop("SIGTERM");
    const elapsed = performance.now() - started;
    conn.close();
    assert.equal(status.code, 0);
    assert.ok(elapsed >= 900, `exited after ${elapsed} ms: did not wait for the request`);
    assert.ok(elapsed < 1700, `exited after ${elapsed} ms: past the deadline`);

    const again = await spawnServer({ dataDir });
    try {
      const resumed = new URL(url.pathname, again.url);
      const state = await fetch(resumed);
      await expectStatus(state, 204);
      // Trimmed to the last complete chunk, or a prefix of what arrived: never beyond it.
      const offset = Number(/^0-(\d+)$/.exec(state.headers.get("Range") ?? "")?.[1]) + 1;
      assert.ok(offset >= 4 * MIB && offset <= 6 * MIB, `session at ${offset} bytes`);
      await expectStatus(await patch(resumed, offset, big.slice(offset)), 202);
      const done = await fetch(`${resumed.href}?digest=${digestOf(big)}`, { method: "PUT" });
      await expectStatus(done, 201);
      const got = await fetch(`${again.url}/v2/declared/repo/blobs/${digestOf(big)}`);
      assert.deepEqual(await bytesOf(got), big);
    } finally {
      assert.equal((await again.stop("SIGTERM")).code, 0);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
