/**
 * Basic auth from htpasswd with the policy: challenges, wrong credentials, 401 against 403,
 * anonymous pull, cross-repository mounts, and the `canPull` hook for `_catalog`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { LayoutStore } from "../../src/storage/layout/layout_store.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { basic, POLICY, USERS, writeHtpasswd } from "./fixtures.ts";

const BOB = basic("bob", USERS.bob);
const ALICE = basic("alice", USERS.alice);

async function withServer(body: (server: TestServer) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "berth-auth-" });
  const path = await writeHtpasswd(dir);
  const server = await startServer({
    config: { auth: { htpasswd: { realm: "berth-test", path }, policy: structuredClone(POLICY) } },
  });
  try {
    await body(server);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function call(
  server: TestServer,
  method: string,
  path: string,
  auth?: string,
  body?: Uint8Array<ArrayBuffer>,
): Promise<{ status: number; headers: Headers; json: { errors?: { code: string }[] } | null }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: auth ? { Authorization: auth } : {},
    ...(body && { body }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: text ? JSON.parse(text) : null,
  };
}

async function pushBlob(
  server: TestServer,
  repo: string,
  auth: string,
  bytes: Uint8Array<ArrayBuffer>,
) {
  const digest = digestBytes(bytes).value;
  return {
    digest,
    ...(await call(server, "POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, auth, bytes)),
  };
}

Deno.test("basic auth: /v2/ without credentials answers 401 with the Basic challenge", async () => {
  await withServer(async (server) => {
    const r = await call(server, "GET", "/v2/");
    assert.equal(r.status, 401);
    assert.equal(r.headers.get("WWW-Authenticate"), 'Basic realm="berth-test"');
    assert.equal(r.json?.errors?.[0]?.code, "UNAUTHORIZED");
    assert.equal((await call(server, "GET", "/v2/", BOB)).status, 200);
  });
});

Deno.test("basic auth: wrong password, unknown user and garbage credentials answer 401", async () => {
  await withServer(async (server) => {
    for (
      const auth of [basic("bob", "wrong"), basic("mallory", USERS.bob), "Basic %%%", "Digest x"]
    ) {
      const r = await call(server, "GET", "/v2/team/app/manifests/latest", auth);
      assert.equal(r.status, 401, auth);
      assert.equal(r.json?.errors?.[0]?.code, "UNAUTHORIZED");
      assert.match(r.headers.get("WWW-Authenticate") ?? "", /^Basic realm=/);
    }
  });
});

Deno.test("basic auth: the policy grants push to a group and refuses others with 403 DENIED", async () => {
  await withServer(async (server) => {
    const bytes = new TextEncoder().encode("team layer");
    assert.equal((await pushBlob(server, "team/app", BOB, bytes)).status, 201);
    const denied = await pushBlob(server, "secret/app", BOB, bytes);
    assert.equal(denied.status, 403);
    assert.equal(denied.json?.errors?.[0]?.code, "DENIED");
    const carol = await pushBlob(server, "team/app", basic("carol", USERS.carol), bytes);
    assert.equal(carol.status, 403, "carol may only pull team/*");
    const { digest } = await pushBlob(server, "team/app", BOB, bytes);
    const del = await call(server, "DELETE", `/v2/team/app/blobs/${digest}`, BOB);
    assert.equal(del.status, 403, "devs may not delete");
    assert.equal((await call(server, "DELETE", `/v2/team/app/blobs/${digest}`, ALICE)).status, 202);
  });
});

Deno.test("basic auth: anonymous pull only where the policy allows it", async () => {
  await withServer(async (server) => {
    const bytes = new TextEncoder().encode("public layer");
    const { digest } = await pushBlob(server, "public/base", ALICE, bytes);
    await pushBlob(server, "team/app", ALICE, bytes);
    const pub = await fetch(`${server.url}/v2/public/base/blobs/${digest}`);
    assert.equal(pub.status, 200);
    assert.deepEqual(new Uint8Array(await pub.arrayBuffer()), bytes);
    const team = await call(server, "GET", `/v2/team/app/blobs/${digest}`);
    assert.equal(team.status, 401);
    assert.equal(team.json?.errors?.[0]?.code, "UNAUTHORIZED");
    const head = await fetch(`${server.url}/v2/team/app/blobs/${digest}`, { method: "HEAD" });
    assert.equal(head.status, 401);
    assert.match(head.headers.get("WWW-Authenticate") ?? "", /^Basic /);
    const push = await pushBlob(server, "public/base", "Basic Og==", bytes);
    assert.equal(push.status, 401, "anonymous push");
  });
});

Deno.test("basic auth: a mount from a repository the caller cannot pull opens a plain upload", async () => {
  await withServer(async (server) => {
    const bytes = new TextEncoder().encode("secret layer");
    const { digest } = await pushBlob(server, "secret/app", ALICE, bytes);
    await pushBlob(server, "team/one", ALICE, new TextEncoder().encode("team layer"));
    const refused = await call(
      server,
      "POST",
      `/v2/team/app/blobs/uploads/?mount=${digest}&from=secret/app`,
      BOB,
    );
    assert.equal(refused.status, 202, "no mount from secret/app for bob");
    const noFrom = await call(server, "POST", `/v2/team/app/blobs/uploads/?mount=${digest}`, BOB);
    assert.equal(noFrom.status, 202, "no mount from the global store without from=");
    assert.equal((await call(server, "GET", `/v2/team/app/blobs/${digest}`, BOB)).status, 404);
    const team = digestBytes(new TextEncoder().encode("team layer")).value;
    const allowed = await call(
      server,
      "POST",
      `/v2/team/app/blobs/uploads/?mount=${team}&from=team/one`,
      BOB,
    );
    assert.equal(allowed.status, 201);
  });
});

Deno.test("basic auth: canPull tells what the caller of a request may pull (the catalog filter)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-auth-" });
  const path = await writeHtpasswd(dir);
  const app = createApp(
    makeConfig({
      storage: "memory",
      auth: { htpasswd: { realm: "r", path }, policy: structuredClone(POLICY) },
    }),
    { logError: () => {} },
  );
  try {
    const asBob = new Request("http://registry.test/v2/", { headers: { Authorization: BOB } });
    assert.equal((await app.handler(asBob)).status, 200);
    const anonymous = new Request("http://registry.test/v2/public/x/tags/list");
    await (await app.handler(anonymous)).body?.cancel();
    const { authorizer } = app.registry;
    assert.equal(authorizer.enabled, true);
    const bob = { user: "bob", via: "basic" } as const;
    assert.equal(authorizer.canPull(bob, "team/app"), true);
    assert.equal(authorizer.canPull(bob, "secret/app"), false);
    assert.equal(authorizer.canPull(undefined, "public/a/b"), true);
    assert.equal(authorizer.canPull(undefined, "team/app"), false);
  } finally {
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("basic auth: credentials and tokens never reach the error log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-auth-" });
  const path = await writeHtpasswd(dir);
  const logged: string[] = [];
  class BrokenStore extends LayoutStore {
    constructor() {
      super(new MemoryDriver());
    }
    override statBlob(): Promise<number | undefined> {
      return Promise.reject(new Error("disk on fire"));
    }
  }
  const app = createApp(
    makeConfig({ auth: { htpasswd: { realm: "r", path }, policy: structuredClone(POLICY) } }),
    {
      store: new BrokenStore(),
      logError: (message, fields) => logged.push(message + JSON.stringify(fields)),
    },
  );
  try {
    const digest = digestBytes(new Uint8Array()).value;
    const response = await app.handler(
      new Request(`http://registry.test/v2/team/app/blobs/${digest}?token=sekrit-token`, {
        headers: { Authorization: BOB },
      }),
    );
    await response.body?.cancel();
    assert.equal(response.status, 500);
    assert.equal(logged.length, 1, "the unexpected error is logged");
    for (const secret of [USERS.bob, BOB.slice(6), "sekrit-token"]) {
      assert.ok(!logged[0]!.includes(secret), `log holds ${secret}`);
    }
  } finally {
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("basic auth: _catalog lists only the repositories the caller may pull, page by page", async () => {
  await withServer(async (server) => {
    for (const repo of ["public/base", "secret/app", "secret/b", "team/app", "team/lib"]) {
      assert.equal(
        (await pushBlob(server, repo, ALICE, new TextEncoder().encode(repo))).status,
        201,
      );
    }
    const list = async (auth?: string, query = "") => {
      const r = await call(server, "GET", `/v2/_catalog${query}`, auth);
      assert.equal(r.status, 200);
      return (r.json as unknown as { repositories: string[] }).repositories;
    };
    assert.deepEqual(await list(ALICE), [
      "public/base",
      "secret/app",
      "secret/b",
      "team/app",
      "team/lib",
    ]);
    assert.deepEqual(await list(BOB), ["public/base", "team/app", "team/lib"]);
    assert.deepEqual(await list(), ["public/base"]);
    assert.deepEqual(await list(BOB, "?n=1&last=public/base"), ["team/app"]);
  });
});
