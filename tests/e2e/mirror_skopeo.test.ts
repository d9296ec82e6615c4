/**
 * End to end with skopeo through the pull-through cache: a multi-architecture image copied with
 * `--all` from the cache (cold, then warm with the upstream stopped) arrives with its digests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { FILL_RING } from "../../src/proxy/blobs.ts";
import { buildLayout, layoutRefs, startDistribution } from "../helpers/images.ts";
import { digestOf, MEDIA, randomBytes, text } from "../helpers/registry.ts";
import { startServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";

Deno.test({
  name: "e2e(skopeo): images copied through the cache, cold and with the upstream stopped",
  ignore: skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-mirror-" });
    const upstream = await startServer();
    let upstreamOpen = true;
    const cache = await startServer({
      config: {
        proxy: {
          mirrors: [{ prefix: "mirror", remoteUrl: upstream.url }],
          revalidateMs: 0,
          timeoutMs: 2_000,
        },
      },
    });
    try {
      const layout = await buildLayout(`${work}/layout`);
      const source = `docker://${upstream.host}/team/app:v1`;
      await run("skopeo", [
        "copy",
        "--all",
        "--dest-tls-verify=false",
        `oci:${layout.dir}:multi`,
        source,
      ]);
      const through = `docker://${cache.host}/mirror/team/app:v1`;
      await run("skopeo", [
        "copy",
        "--all",
        "--src-tls-verify=false",
        through,
        `oci:${work}/cold:v1`,
      ]);
      assert.equal((await layoutRefs(`${work}/cold`)).v1, layout.refs.multi);

      await upstream.close();
      upstreamOpen = false;
      await run("skopeo", [
        "copy",
        "--all",
        "--src-tls-verify=false",
        through,
        `oci:${work}/warm:v1`,
      ]);
      assert.equal((await layoutRefs(`${work}/warm`)).v1, layout.refs.multi);
      const inspected = JSON.parse(
        await run("skopeo", ["inspect", "--tls-verify=false", "--raw", through]),
      ) as { manifests: unknown[] };
      assert.ok(inspected.manifests.length >= 2);
    } finally {
      await cache.close();
      if (upstreamOpen) await upstream.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "e2e(podman): podman pulls through the cache, cold then with the upstream stopped",
  ignore: skipWithout("podman", "skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-mirror-podman-" });
    const podman = [
      "--root",
      `${work}/storage`,
      "--runroot",
      `${work}/run`,
      "--storage-driver",
      "vfs",
    ];
    const upstream = await startServer();
    let upstreamOpen = true;
    const cache = await startServer({
      config: {
        proxy: {
          mirrors: [{ prefix: "mirror", remoteUrl: upstream.url }],
          revalidateMs: 0,
          timeoutMs: 2_000,
        },
      },
    });
    try {
      const layout = await buildLayout(`${work}/layout`);
      await run("skopeo", [
        "copy",
        "--dest-tls-verify=false",
        `oci:${layout.dir}:amd64`,
        `docker://${upstream.host}/team/app:v1`,
      ]);
      const through = `${cache.host}/mirror/team/app:v1`;
      await run("podman", [...podman, "pull", "-q", "--tls-verify=false", through]);
      await run("podman", [...podman, "rmi", "-a", "-f"]);
      await upstream.close();
      upstreamOpen = false;
      const id = (await run("podman", [...podman, "pull", "-q", "--tls-verify=false", through]))
        .trim();
      const digest = (await run("podman", [
        ...podman,
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        id,
      ])).trim();
      assert.equal(digest, layout.refs.amd64);
    } finally {
      await run("podman", [...podman, "rmi", "-a", "-f"]).catch(() => "");
      await cache.close();
      if (upstreamOpen) await upstream.close();
      await Deno.remove(work, { recursive: true }).catch(async () => {
        await run("podman", ["unshare", "rm", "-rf", work]).catch(() => "");
      });
    }
  },
});

Deno.test({
  name:
    "e2e(skopeo): five concurrent cold pulls of a large layer through the cache; the upstream's access log shows one GET of it",
  ignore: skipWithout("skopeo", "docker-registry"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-mirror-five-" });
    // The upstream holds its port before the cache takes a free one (it could be handed the same).
    const registry = await startDistribution(`${work}/upstream`, { log: true });
    const upstream = `http://${registry.host}`;
    const cache = await startServer({
      config: {
        proxy: {
          mirrors: [{ prefix: "", remoteUrl: upstream }],
          revalidateMs: 0,
          timeoutMs: 5_000,
        },
      },
    });
    try {
      // More than a fill's ring, so later pulls join a fill under way (some from the file).
      const layer = randomBytes(FILL_RING + FILL_RING / 2 + 777, 9);
      const config = text(JSON.stringify({ architecture: "amd64", os: "linux" }));
      for (const bytes of [layer, config]) {
        // distribution takes no POST ?digest=: a session, then PUT with the bytes.
        const session = await fetch(`${upstream}/v2/lib/big/blobs/uploads/`, { method: "POST" });
        assert.equal(session.status, 202);
        await session.body?.cancel();
        const location = new URL(session.headers.get("Location")!, upstream);
        location.searchParams.set("digest", digestOf(bytes));
        const response = await fetch(location, {
          method: "PUT",
          body: bytes,
          headers: { "Content-Type": "application/octet-stream" },
        });
        assert.equal(response.status, 201);
        await response.body?.cancel();
      }
      const manifest = text(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: digestOf(config), size: config.byteLength },
        layers: [{ mediaType: MEDIA.ociLayer, digest: digestOf(layer), size: layer.byteLength }],
      }));
      const put = await fetch(`${upstream}/v2/lib/big/manifests/v1`, {
        method: "PUT",
        body: manifest,
        headers: { "Content-Type": MEDIA.ociManifest },
      });
      assert.equal(put.status, 201);
      await put.body?.cancel();

      await Promise.all(Array.from({ length: 5 }, (_, i) =>
        run("skopeo", [
          "copy",
          "--src-tls-verify=false",
          `docker://${cache.host}/lib/big:v1`,
          `dir:${work}/pull-${i}`,
        ])));
      for (let i = 0; i < 5; i++) {
        const pulled = await Deno.readFile(`${work}/pull-${i}/${digestOf(layer).slice(7)}`);
        assert.ok(pulled.byteLength === layer.byteLength, `pull ${i}: ${pulled.byteLength} bytes`);
        assert.equal(digestOf(pulled), digestOf(layer));
      }
      await new Promise((r) => setTimeout(r, 200));
      const gets = registry.log().split("\n").filter((l) =>
        l.includes(`"GET /v2/lib/big/blobs/${digestOf(layer)}`) && l.includes(" 200 ")
      );
      assert.equal(
        gets.length,
        1,
        registry.log().split("\n").filter((l) => l.includes("blobs")).join("\n"),
      );
    } finally {
      await cache.close();
      await registry.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
});
