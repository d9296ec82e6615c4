/**
 * Auth around the pull-through cache: an upstream berth with Bearer token auth pulled through
 * with credentials (the client's token flow), and berth's own policy on the cache (anonymous
 * pull of `hub/**` and nothing else).
 */
import assert from "node:assert/strict";
import type { Config } from "../../src/config.ts";
import type { ProxyConfig } from "../../src/proxy/mirrors.ts";
import { basic, POLICY, USERS, writeHtpasswd } from "../auth/fixtures.ts";
import { bytesOf, digestOf, MEDIA, pushImage, randomBytes, text } from "../helpers/registry.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { skipWithout } from "../helpers/tools.ts";

function proxy(mirror: ProxyConfig["mirrors"][number]): ProxyConfig {
  return { mirrors: [mirror], revalidateMs: 60_000, timeoutMs: 5_000 };
}

/** Push a one-layer image with Basic credentials; returns its parts. */
async function pushWith(base: string, name: string, tag: string, authorization: string) {
  const layer = randomBytes(200_000, 41);
  const config = text(JSON.stringify({ architecture: "amd64", os: "linux" }));
  for (const bytes of [layer, config]) {
    const response = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digestOf(bytes)}`, {
      method: "POST",
      headers: { Authorization: authorization, "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    assert.equal(response.status, 201, await response.text());
  }
  const manifest = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: digestOf(config), size: config.byteLength },
    layers: [{ mediaType: MEDIA.ociLayer, digest: digestOf(layer), size: layer.byteLength }],
  }));
  const put = await fetch(`${base}/v2/${name}/manifests/${tag}`, {
    method: "PUT",
    headers: { Authorization: authorization, "Content-Type": MEDIA.ociManifest },
    body: manifest,
  });
  assert.equal(put.status, 201, await put.text());
  return { layer, manifest };
}

Deno.test({
  name: "proxy: an upstream with Bearer token auth is pulled through with credentials",
  ignore: skipWithout("htpasswd"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "berth-mirror-token-" });
    const auth: Config["auth"] = {
      htpasswd: { realm: "upstream", path: await writeHtpasswd(dir) },
      token: { service: "upstream", issuer: "upstream" },
      policy: structuredClone(POLICY),
    };
    const upstream = await startServer({ config: { auth } });
    const caches: TestServer[] = [];
    try {
      const image = await pushWith(
        upstream.url,
        "team/app",
        "v1",
        basic("alice", USERS.alice),
      );
      // Anonymous requests to the upstream are challenged with Bearer.
      const challenge = await fetch(`${upstream.url}/v2/team/app/manifests/v1`);
      await challenge.body?.cancel();
      assert.equal(challenge.status, 401);
      assert.match(challenge.headers.get("WWW-Authenticate") ?? "", /^Bearer /);

      const cache = await startServer({
        config: {
          proxy: proxy({
            prefix: "up",
            remoteUrl: upstream.url,
            username: "bob",
            password: USERS.bob,
          }),
        },
      });
      caches.push(cache);
      const manifest = await fetch(`${cache.url}/v2/up/team/app/manifests/v1`, {
        headers: { Accept: MEDIA.ociManifest },
      });
      assert.equal(manifest.status, 200);
      assert.deepEqual(await bytesOf(manifest), image.manifest);
      const blob = await fetch(`${cache.url}/v2/up/team/app/blobs/${digestOf(image.layer)}`);
      assert.equal(blob.status, 200);
      assert.deepEqual(await bytesOf(blob), image.layer);
      // The cache went through the token flow: the upstream issued tokens.
      const metrics = await (await fetch(`${upstream.url}/metrics`)).text();
      const issued = metrics.split("\n").filter((l) =>
        l.startsWith("berth_http_requests_total{") && l.includes('method="GET"') &&
        l.includes('status="200"') && /route="[^"]*token[^"]*"/.test(l)
      );
      assert.ok(
        issued.length > 0,
        metrics.split("\n").filter((l) => l.includes("token")).join("\n"),
      );
      // bob's token does not reach repositories the upstream's policy keeps from him.
      await pushWith(upstream.url, "secret/app", "v1", basic("alice", USERS.alice));
      const denied = await fetch(`${cache.url}/v2/up/secret/app/manifests/v1`, {
        headers: { Accept: MEDIA.ociManifest },
      });
      await denied.body?.cancel();
      assert.ok(denied.status >= 400, `status ${denied.status}`);

      // Without credentials the same pull is refused by the upstream: nothing is served.
      const anonymous = await startServer({
        config: { proxy: proxy({ prefix: "up", remoteUrl: upstream.url }) },
      });
      caches.push(anonymous);
      const refused = await fetch(`${anonymous.url}/v2/up/team/app/manifests/v1`, {
        headers: { Accept: MEDIA.ociManifest },
      });
      await refused.body?.cancel();
      assert.ok(refused.status >= 400, `status ${refused.status}`);
    } finally {
      for (const cache of caches) await cache.close();
      await upstream.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "proxy: berth's policy on the cache: anonymous pull of hub/** only; pushes to hub/ refused",
  ignore: skipWithout("htpasswd"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "berth-mirror-policy-" });
    const upstream = await startServer();
    let cache: TestServer | undefined;
    try {
      const image = await pushImage(upstream.url, "tools/x", "v1", { seed: 42 });
      cache = await startServer({
        config: {
          proxy: proxy({ prefix: "hub", remoteUrl: upstream.url }),
          auth: {
            htpasswd: { realm: "cache", path: await writeHtpasswd(dir) },
            policy: {
              groups: {},
              rules: [
                { repositories: ["hub/**"], anonymous: true, actions: ["pull"] },
                { repositories: ["**"], users: ["alice"], actions: ["*"] },
              ],
            },
          },
        },
      });
      const alice = basic("alice", USERS.alice);
      // A local repository, pushed by alice.
      await pushWith(cache.url, "mine/app", "v1", alice);

      const pulled = await fetch(`${cache.url}/v2/hub/tools/x/manifests/v1`, {
        headers: { Accept: MEDIA.ociManifest },
      });
      assert.equal(pulled.status, 200);
      assert.deepEqual(await bytesOf(pulled), image.bytes);
      const blob = await fetch(`${cache.url}/v2/hub/tools/x/blobs/${digestOf(image.layer)}`);
      assert.equal(blob.status, 200);
      assert.deepEqual(await bytesOf(blob), image.layer);

      const local = await fetch(`${cache.url}/v2/mine/app/manifests/v1`, {
        headers: { Accept: MEDIA.ociManifest },
      });
      await local.body?.cancel();
      assert.equal(local.status, 401, "anonymous pull of a local repository is refused");
      const withAlice = await fetch(`${cache.url}/v2/mine/app/manifests/v1`, {
        headers: { Accept: MEDIA.ociManifest, Authorization: alice },
      });
      await withAlice.body?.cancel();
      assert.equal(withAlice.status, 200);

      const anonymousPush = await fetch(`${cache.url}/v2/hub/tools/x/blobs/uploads/`, {
        method: "POST",
      });
      await anonymousPush.body?.cancel();
      assert.equal(anonymousPush.status, 401, "anonymous push to hub/ is refused");
      const alicePush = await fetch(`${cache.url}/v2/hub/tools/x/blobs/uploads/`, {
        method: "POST",
        headers: { Authorization: alice },
      });
      assert.equal(alicePush.status, 405, "even an allowed user cannot push into a mirror");
      assert.equal((await alicePush.json()).errors[0].code, "UNSUPPORTED");
    } finally {
      await cache?.close();
      await upstream.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
