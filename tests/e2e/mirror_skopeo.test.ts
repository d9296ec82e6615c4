/**
 * End to end with skopeo through the pull-through cache: a multi-architecture image copied with
 * `--all` from the cache (cold, then warm with the upstream stopped) arrives with its digests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildLayout, layoutRefs } from "../helpers/images.ts";
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
