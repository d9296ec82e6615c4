/**
 * Interop with Debian's `docker-registry` (distribution 2.8.2) over one data directory: what it
 * stores berth serves, and what berth stores it serves.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { buildLayout, type Layout, layoutRefs, startDistribution } from "../helpers/images.ts";
import { bytesOf, digestOf, MEDIA, pushBlob, putManifest, text } from "../helpers/registry.ts";

/** Push the layout's `amd64` image as `v1` and its `multi` index (with every child) as `multi`. */
async function copyLayout(layoutDir: string, target: string): Promise<void> {
  await run("skopeo", [
    "copy",
    "--dest-tls-verify=false",
    `oci:${layoutDir}:amd64`,
    `docker://${target}:v1`,
  ]);
  await run("skopeo", [
    "copy",
    "--all",
    "--dest-tls-verify=false",
    `oci:${layoutDir}:multi`,
    `docker://${target}:multi`,
  ]);
}

/** Pull `v1` and `multi` (with every child) from `source` into a layout; both match `layout`. */
async function pullsBack(source: string, into: string, layout: Layout): Promise<void> {
  for (const tag of ["v1", "multi"]) {
    await run("skopeo", [
      "copy",
      "--all",
      "--src-tls-verify=false",
      `docker://${source}:${tag}`,
      `oci:${into}:${tag}`,
    ]);
  }
  const pulled = await layoutRefs(into);
  assert.equal(pulled.v1, layout.refs.amd64);
  assert.equal(pulled.multi, layout.refs.multi);
}

Deno.test({
  name: "e2e(interop): an image pushed to docker-registry is pulled from berth on its data dir",
  ignore: skipWithout("skopeo", "umoci", "docker-registry"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-interop-" });
    const dataDir = `${work}/data`;
    await Deno.mkdir(dataDir);
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 4 });
      const distribution = await startDistribution(dataDir);
      try {
        await copyLayout(layout.dir, `${distribution.host}/from/distribution`);
      } finally {
        await distribution.stop();
      }
      const berth = await startServer({ dataDir });
      try {
        await pullsBack(`${berth.host}/from/distribution`, `${work}/pulled`, layout);
        // And over plain HTTP, with the media type distribution recorded nowhere but in the bytes.
        const response = await fetch(`${berth.url}/v2/from/distribution/manifests/multi`);
        assert.equal(response.headers.get("Content-Type"), MEDIA.ociIndex);
        assert.equal(digestOf(await bytesOf(response)), layout.refs.multi);
      } finally {
        await berth.close();
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "e2e(interop): an image pushed to berth is pulled from docker-registry on its data dir",
  ignore: skipWithout("skopeo", "umoci", "docker-registry"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-interop-" });
    const dataDir = `${work}/data`;
    await Deno.mkdir(dataDir);
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 5 });
      const berth = await startServer({ dataDir });
      let sha512Digest: string;
      const sha512Blob = text("a blob under sha512");
      try {
        await copyLayout(layout.dir, `${berth.host}/from/berth`);
        // A Docker schema 2 image pushed by hand, with a chunked upload.
        sha512Digest = await pushBlob(berth.url, "from/berth", sha512Blob, "sha512");
        const config = text('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}');
        await pushBlob(berth.url, "from/berth", config);
        const manifest = {
          schemaVersion: 2,
          mediaType: MEDIA.dockerManifest,
          config: { mediaType: MEDIA.dockerConfig, digest: digestOf(config), size: config.length },
          layers: [{ mediaType: MEDIA.dockerLayer, digest: sha512Digest, size: sha512Blob.length }],
        };
        const put = await putManifest(
          berth.url,
          "from/berth",
          "docker",
          manifest,
          MEDIA.dockerManifest,
        );
        await put.body?.cancel();
        assert.equal(put.status, 201);
      } finally {
        await berth.close();
      }
      const distribution = await startDistribution(dataDir);
      try {
        await pullsBack(`${distribution.host}/from/berth`, `${work}/pulled`, layout);
        const base = `http://${distribution.host}/v2/from/berth`;
        const manifest = await fetch(`${base}/manifests/docker`, {
          headers: { Accept: MEDIA.dockerManifest },
        });
        assert.equal(manifest.status, 200);
        assert.equal(manifest.headers.get("Content-Type"), MEDIA.dockerManifest);
        await manifest.body?.cancel();
        const blob = await fetch(`${base}/blobs/${sha512Digest}`);
        assert.equal(blob.status, 200);
        assert.deepEqual(await bytesOf(blob), sha512Blob);
      } finally {
        await distribution.stop();
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "e2e(interop): a repository docker-registry creates while berth runs on the data dir appears in berth's _catalog",
  ignore: skipWithout("skopeo", "umoci", "docker-registry"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-interop-" });
    const dataDir = `${work}/data`;
    await Deno.mkdir(dataDir);
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 6 });
      const berth = await startServer({ dataDir });
      try {
        await pushBlob(berth.url, "mine/first", text("a blob"));
        const catalog = async () => (await (await fetch(`${berth.url}/v2/_catalog`)).json());
        assert.deepEqual(await catalog(), { repositories: ["mine/first"] });
        const distribution = await startDistribution(dataDir);
        try {
          await copyLayout(layout.dir, `${distribution.host}/theirs/app`);
          await copyLayout(layout.dir, `${distribution.host}/mine/second`);
        } finally {
          await distribution.stop();
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(await catalog(), {
          repositories: ["mine/first", "mine/second", "theirs/app"],
        });
      } finally {
        await berth.close();
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
