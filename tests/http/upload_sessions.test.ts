/**
 * The open-upload-session limit: every session opened counts (a mount that falls back to a
 * session too), only the end of that session frees its slot, the limit is per user when one is
 * authenticated and per client address otherwise (behind trusted proxies, the forwarded one), and
 * a client blocked by its own abandoned sessions is told when to retry and gets through then.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Config } from "../../src/config.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { basic, USERS, writeHtpasswd } from "../auth/fixtures.ts";

const MISSING = `sha256:${"ab".repeat(32)}`;

async function withServer(
  config: Partial<Config>,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await startServer({ config });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function post(
  server: TestServer,
  path: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const response = await fetch(`${server.url}${path}`, { method: "POST", headers });
  await response.body?.cancel();
  return response;
}

Deno.test("upload sessions: a mount with digest that falls back to a session counts against the limit", async () => {
  await withServer({ limits: { maxUploadsPerClient: 2 } }, async (server) => {
    const mount =
      `/v2/sessions/app/blobs/uploads/?mount=${MISSING}&from=other/app&digest=${MISSING}`;
    assert.equal((await post(server, mount)).status, 202, "first mount falls back to a session");
    assert.equal((await post(server, mount)).status, 202, "second mount falls back too");
    const third = await post(server, "/v2/sessions/app/blobs/uploads/");
    assert.equal(third.status, 429, "two sessions are open: the limit is reached");
    const again = await post(server, mount);
    assert.equal(again.status, 429, "a mount that may open a session is refused too");
  });
});

Deno.test("upload sessions: a 404 for the id under another repository frees no slot", async () => {
  await withServer({ limits: { maxUploadsPerClient: 1 } }, async (server) => {
    const opened = await post(server, "/v2/sessions/a/blobs/uploads/");
    assert.equal(opened.status, 202);
    const id = opened.headers.get("Docker-Upload-UUID");
    const other = await fetch(`${server.url}/v2/sessions/b/blobs/uploads/${id}`);
    await other.body?.cancel();
    assert.equal(other.status, 404);
    assert.equal((await post(server, "/v2/sessions/a/blobs/uploads/")).status, 429);
    const own = await fetch(`${server.url}${opened.headers.get("Location")}`, { method: "DELETE" });
    await own.body?.cancel();
    assert.equal(own.status, 204);
    assert.equal((await post(server, "/v2/sessions/a/blobs/uploads/")).status, 202);
  });
});

Deno.test("upload sessions: the limit is per authenticated user, not per address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-sessions-" });
  try {
    const path = await writeHtpasswd(dir);
    const config = {
      limits: { maxUploadsPerClient: 1 },
      auth: { htpasswd: { realm: "r", path } },
    };
    await withServer(config, async (server) => {
      const alice = { Authorization: basic("alice", USERS.alice) };
      const bob = { Authorization: basic("bob", USERS.bob) };
      assert.equal((await post(server, "/v2/sessions/a/blobs/uploads/", alice)).status, 202);
      assert.equal((await post(server, "/v2/sessions/b/blobs/uploads/", bob)).status, 202);
      assert.equal((await post(server, "/v2/sessions/a/blobs/uploads/", alice)).status, 429);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upload sessions: X-Forwarded-For names the client only from a trusted proxy", async () => {
  const from = (address: string) => ({ "X-Forwarded-For": `${address}, 127.0.0.1` });
  const path = "/v2/sessions/a/blobs/uploads/";
  const limits = { maxUploadsPerClient: 1 };
  await withServer({ limits, trustedProxies: ["127.0.0.0/8"] }, async (server) => {
    assert.equal((await post(server, path, from("10.0.0.1"))).status, 202);
    assert.equal((await post(server, path, from("10.0.0.2"))).status, 202);
    assert.equal((await post(server, path, from("10.0.0.1"))).status, 429);
  });
  await withServer({ limits }, async (server) => {
    assert.equal((await post(server, path, from("10.0.0.1"))).status, 202);
    assert.equal((await post(server, path, from("10.0.0.2"))).status, 429, "not trusted: ignored");
  });
});

Deno.test("upload sessions: a client blocked by its abandoned sessions is told when to retry and gets through then", async () => {
  const limits = { maxUploadsPerClient: 2, uploadSessionTimeoutMs: 1500 };
  await withServer({ limits }, async (server) => {
    const path = "/v2/sessions/a/blobs/uploads/";
    assert.equal((await post(server, path)).status, 202);
    assert.equal((await post(server, path)).status, 202);
    const refused = await fetch(`${server.url}${path}`, { method: "POST" });
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get("Retry-After"));
    assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
    const error = (await refused.json()).errors[0];
    assert.equal(error.code, "TOOMANYREQUESTS");
    assert.match(error.message, /too many open upload sessions \(2 of 2\).*retry in \d+ s/);
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    assert.equal((await post(server, path)).status, 202, "abandoned sessions expired");
  });
});
