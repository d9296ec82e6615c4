/**
 * E2E: `berth copy` with distribution 2.8.2 (Debian's `docker-registry`) and skopeo: what berth
 * copies skopeo reads with identical digests and the other way round; referrers reach a registry
 * without a referrers API through the `sha256-<hex>` tag and come back from it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { copyImage } from "../../src/copy/copy.ts";
import { ClientPool } from "../../src/transports/client_pool.ts";
import { openDestination, openSource } from "../../src/transports/mod.ts";
import { startDistribution } from "../helpers/images.ts";
import { digestOf, MEDIA } from "../helpers/registry.ts";
import { startServer } from "../helpers/server.ts";
import { withTempDir } from "../helpers/temp.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { refsOf, writeTestLayout } from "../transports/layouts.ts";

async function copy(src: string, dst: string, referrers = false) {
  const pool = new ClientPool({ tlsVerify: false });
  const source = await openSource(src, pool);
  try {
    return await copyImage(source, await openDestination(dst, pool), { referrers });
  } finally {
    await source.close();
    await pool.close();
  }
}

async function inspectDigest(reference: string): Promise<string> {
  const out = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", reference]);
  return digestOf(new TextEncoder().encode(out));
}

Deno.test({
  name: "e2e(copy): berth → distribution (index + referrers via tag) → skopeo and back to berth",
  ignore: skipWithout("skopeo", "docker-registry"),
  async fn() {
    await withTempDir("berth-copy-interop-", async (dir) => {
      const layout = await writeTestLayout(`${dir}/src`);
      await Deno.mkdir(`${dir}/data`);
      const distribution = await startDistribution(`${dir}/data`);
      const berth = await startServer();
      try {
        const target = `docker://${distribution.host}/mirror/app`;
        const result = await copy(`oci:${dir}/src:multi`, `${target}:multi`, true);
        assert.equal(result.digest, layout.tags.multi);
        assert.equal(result.referrers, 1);
        // distribution has no referrers API: the signature is listed under the fallback tag.
        const tag = layout.tags.amd64!.replace(":", "-");
        const fallback = await fetch(`http://${distribution.host}/v2/mirror/app/manifests/${tag}`, {
          headers: { Accept: MEDIA.ociIndex },
        });
        assert.equal(fallback.status, 200);
        const listed = (await fallback.json()).manifests.map((m: { digest: string }) => m.digest);
        assert.deepEqual(listed, [layout.signature]);
        // skopeo reads what berth wrote, digests identical.
        assert.equal(await inspectDigest(`${target}:multi`), layout.tags.multi);
        await run("skopeo", [
          "copy",
          "--all",
          "--preserve-digests",
          "--src-tls-verify=false",
          `${target}:multi`,
          `oci:${dir}/viaskopeo:m`,
        ]);
        assert.equal((await refsOf(`${dir}/viaskopeo`)).m, layout.tags.multi);
        // From distribution to berth, referrers found through the tag, served by berth's API.
        const back = await copy(`${target}:multi`, `docker://${berth.host}/back/app:multi`, true);
        assert.equal(back.digest, layout.tags.multi);
        const referrers = await fetch(`${berth.url}/v2/back/app/referrers/${layout.tags.amd64}`);
        const got = (await referrers.json()).manifests.map((m: { digest: string }) => m.digest);
        assert.deepEqual(got, [layout.signature]);
      } finally {
        await berth.close();
        await distribution.stop();
      }
    });
  },
});

Deno.test({
  name:
    "e2e(copy): what skopeo pushes berth copies, and berth's copy matches skopeo's byte for byte",
  ignore: skipWithout("skopeo", "docker-registry"),
  async fn() {
    await withTempDir("berth-copy-interop-", async (dir) => {
      const layout = await writeTestLayout(`${dir}/src`);
      await Deno.mkdir(`${dir}/data`);
      const distribution = await startDistribution(`${dir}/data`);
      const berth = await startServer();
      try {
        await run("skopeo", [
          "copy",
          "--all",
          "--preserve-digests",
          "--dest-tls-verify=false",
          `oci:${dir}/src:multi`,
          `docker://${berth.host}/pushed/app:multi`,
        ]);
        const pushed = await inspectDigest(`docker://${berth.host}/pushed/app:multi`);
        await copy(
          `docker://${berth.host}/pushed/app:multi`,
          `docker://${distribution.host}/by/berth:multi`,
        );
        await run("skopeo", [
          "copy",
          "--all",
          "--preserve-digests",
          "--src-tls-verify=false",
          "--dest-tls-verify=false",
          `docker://${berth.host}/pushed/app:multi`,
          `docker://${distribution.host}/by/skopeo:multi`,
        ]);
        const byBerth = await inspectDigest(`docker://${distribution.host}/by/berth:multi`);
        const bySkopeo = await inspectDigest(`docker://${distribution.host}/by/skopeo:multi`);
        assert.equal(byBerth, pushed);
        assert.equal(bySkopeo, pushed);
        const child = await inspectDigest(
          `docker://${distribution.host}/by/berth@${layout.tags.arm64}`,
        );
        assert.equal(child, layout.tags.arm64);
        // And berth pulls from distribution into a docker archive skopeo loads.
        await copy(
          `docker://${distribution.host}/by/skopeo:multi`,
          `docker-archive:${dir}/d.tar:by/skopeo:v1`,
        );
        await run("skopeo", ["copy", `docker-archive:${dir}/d.tar`, `oci:${dir}/loaded:v1`]);
        assert.ok((await refsOf(`${dir}/loaded`)).v1);
      } finally {
        await berth.close();
        await distribution.stop();
      }
    });
  },
});
