/**
 * `/v2/_catalog` with auth on: the 401 challenge for an anonymous caller who may see nothing
 * (as distribution answers), and a filtered page that reads names in proportion to the page.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { type Config, makeConfig } from "../../src/config.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { LayoutStore } from "../../src/storage/layout/layout_store.ts";
import { withTempDir } from "../helpers/temp.ts";
import { basic, POLICY, USERS, writeHtpasswd } from "./fixtures.ts";

/** A memory store that counts the repository names its catalog index hands out. */
class CountingStore extends LayoutStore {
  namesRead = 0;
  constructor() {
    super(new MemoryDriver());
  }
  override async repositoryPage(last: string | undefined, limit: number): Promise<string[]> {
    const names = await super.repositoryPage(last, limit);
    this.namesRead += names.length;
    return names;
  }
}

/** Run `body` with an app over a counting store holding `repositories`. */
async function withApp(
  auth: (dir: string) => Promise<Config["auth"]>,
  repositories: string[],
  body: (
    get: (path: string, authorization?: string) => Promise<Response>,
    store: CountingStore,
  ) => Promise<void>,
): Promise<void> {
  await withTempDir("berth-catalog-", async (dir) => {
    const store = new CountingStore();
    const digest = digestBytes(new TextEncoder().encode("x"));
    for (const name of repositories) await store.putLink(name, "layer", digest);
    const app = createApp(makeConfig({ storage: "memory", auth: (await auth(dir))! }), {
      store,
      log: () => {},
      logError: () => {},
    });
    try {
      await body(
        (path, authorization) =>
          app.handler(
            new Request(`http://registry.test${path}`, {
              headers: authorization ? { Authorization: authorization } : {},
            }),
          ),
        store,
      );
    } finally {
      await app.close();
    }
  });
}

async function names(response: Response): Promise<string[]> {
  assert.equal(response.status, 200);
  return (await response.json()).repositories;
}

Deno.test("catalog: with htpasswd and no anonymous rule, an anonymous caller gets 401 and the challenge", async () => {
  await withApp(
    async (dir) => ({ htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) } }),
    ["a/one", "b/two"],
    async (get) => {
      const anonymous = await get("/v2/_catalog");
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.headers.get("WWW-Authenticate"), 'Basic realm="berth-test"');
      assert.equal((await anonymous.json()).errors[0].code, "UNAUTHORIZED");
      assert.deepEqual(await names(await get("/v2/_catalog", basic("bob", USERS.bob))), [
        "a/one",
        "b/two",
      ]);
    },
  );
});

Deno.test("catalog: with tokens, the anonymous challenge asks for registry:catalog:*", async () => {
  await withApp(
    async (dir) => ({
      htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) },
      token: { service: "svc", issuer: "berth" },
    }),
    ["a/one"],
    async (get) => {
      const anonymous = await get("/v2/_catalog");
      assert.equal(anonymous.status, 401);
      assert.equal(
        anonymous.headers.get("WWW-Authenticate"),
        'Bearer realm="http://registry.test/auth/token",service="svc",scope="registry:catalog:*"',
      );
      await anonymous.body?.cancel();
      const issued = await get(
        "/auth/token?service=svc&scope=registry:catalog:*",
        basic("bob", USERS.bob),
      );
      const { token } = await issued.json();
      assert.deepEqual(await names(await get("/v2/_catalog", `Bearer ${token}`)), ["a/one"]);
      // An anonymous token sees what anonymous callers see: nothing here, so the challenge.
      const anonymousToken = (await (await get("/auth/token?service=svc")).json()).token;
      const refused = await get("/v2/_catalog", `Bearer ${anonymousToken}`);
      assert.equal(refused.status, 401);
      assert.match(refused.headers.get("WWW-Authenticate")!, /error="insufficient_scope"/);
      await refused.body?.cancel();
    },
  );
});

Deno.test("catalog: a filtered page reads names in proportion to the page, not to the repositories", async () => {
  const hidden = Array.from({ length: 3000 }, (_, i) => `private/r${String(i).padStart(4, "0")}`);
  const shown = ["public/a", "public/b", "public/c", "team/app", "team/lib", "zz/last"];
  await withApp(
    async (dir) => ({
      htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) },
      policy: structuredClone(POLICY),
    }),
    [...hidden, ...shown],
    async (get, store) => {
      store.namesRead = 0;
      const first = await get("/v2/_catalog?n=2");
      assert.match(
        first.headers.get("Link")!,
        /^<\/v2\/_catalog\?n=2&last=public(\/|%2F)b>; rel="next"$/,
      );
      assert.deepEqual(await names(first), ["public/a", "public/b"]);
      assert.deepEqual(await names(await get("/v2/_catalog?n=2&last=public/b")), ["public/c"]);
      assert.ok(store.namesRead < 30, `${store.namesRead} names read for two small pages`);
      // bob: public/** and team/* from the policy, across two ranges, in order.
      store.namesRead = 0;
      const bob = basic("bob", USERS.bob);
      assert.deepEqual(await names(await get("/v2/_catalog?n=4", bob)), [
        "public/a",
        "public/b",
        "public/c",
        "team/app",
      ]);
      assert.deepEqual(await names(await get("/v2/_catalog?n=4&last=public/c", bob)), [
        "team/app",
        "team/lib",
      ]);
      assert.ok(store.namesRead < 40, `${store.namesRead} names read for two small pages`);
      // alice may pull everything: every name is a candidate, in order, page by page.
      const alice = basic("alice", USERS.alice);
      const all = await names(await get("/v2/_catalog?n=5&last=public/c", alice));
      assert.deepEqual(all, ["team/app", "team/lib", "zz/last"]);
    },
  );
});
