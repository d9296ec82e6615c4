/**
 * End to end with real clients: `skopeo list-tags` pages through 1,000 tags, `skopeo delete`
 * deletes, and Debian's `docker-registry` (distribution 2.8.2) serves a berth data directory
 * after referrers, deletes and garbage collection.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { buildLayout, startDistribution } from "../helpers/images.ts";
import {
  descriptor,
  digestOf,
  expectStatus,
  MEDIA,
  pushBlob,
  pushImage,
  pushImageBlobs,
  putManifest,
  text,
} from "../helpers/registry.ts";

const GC_NOW = { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true };

Deno.test({
  name: "e2e(skopeo): list-tags pages through 1,000 tags",
  ignore: skipWithout("skopeo"),
  async fn() {
    const server = await startServer({ config: { maxListEntries: 100 } });
    try {
      const image = await pushImageBlobs(server.url, "many");
      const tags = Array.from({ length: 1000 }, (_, i) => `t${String(i).padStart(4, "0")}`);
      const queue = [...tags];
      await Promise.all(Array.from({ length: 8 }, async () => {
        for (let tag = queue.shift(); tag; tag = queue.shift()) {
          await expectStatus(
            await putManifest(server.url, "many", tag, image.bytes, MEDIA.ociManifest),
            201,
          );
        }
      }));
      const first = await fetch(`${server.url}/v2/many/tags/list`);
      assert.equal((await first.json()).tags.length, 100, "one page holds 100 tags");
      assert.match(first.headers.get("Link") ?? "", /rel="next"/);
      const out = await run("skopeo", [
        "list-tags",
        "--tls-verify=false",
        `docker://${server.host}/many`,
      ]);
      const listed = JSON.parse(out) as { Repository: string; Tags: string[] };
      assert.equal(listed.Tags.length, 1000);
      assert.deepEqual([...listed.Tags].sort(), tags);
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "e2e(skopeo): delete removes the manifest and its tags",
  ignore: skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-" });
    const server = await startServer();
    try {
      const layout = await buildLayout(`${work}/layout`);
      const ref = `docker://${server.host}/e2e/app`;
      await run("skopeo", [
        "copy",
        "--dest-tls-verify=false",
        `oci:${layout.dir}:amd64`,
        `${ref}:v1`,
      ]);
      await run("skopeo", [
        "copy",
        "--dest-tls-verify=false",
        `oci:${layout.dir}:arm64`,
        `${ref}:v2`,
      ]);
      await run("skopeo", ["delete", "--tls-verify=false", `${ref}:v1`]);
      await assert.rejects(run("skopeo", ["inspect", "--tls-verify=false", `${ref}:v1`]));
      const digest = layout.refs.amd64!;
      const gone = await fetch(`${server.url}/v2/e2e/app/manifests/${digest}`);
      await gone.body?.cancel();
      assert.equal(gone.status, 404);
      const listed = JSON.parse(
        await run("skopeo", ["list-tags", "--tls-verify=false", ref]),
      ) as { Tags: string[] };
      assert.deepEqual(listed.Tags, ["v2"]);
    } finally {
      await server.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "e2e(docker-registry): serves a berth data directory after referrers, deletes and gc",
  ignore: skipWithout("skopeo", "umoci", "docker-registry"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-" });
    const dataDir = `${work}/data`;
    await Deno.mkdir(dataDir);
    try {
      const layout = await buildLayout(`${work}/layout`);
      const server = await startServer({ dataDir, config: { gc: GC_NOW } });
      let signature: Uint8Array<ArrayBuffer>;
      try {
        const ref = `docker://${server.host}/e2e/app`;
        await run("skopeo", [
          "copy",
          "--all",
          "--dest-tls-verify=false",
          `oci:${layout.dir}:multi`,
          `${ref}:multi`,
        ]);
        await run("skopeo", [
          "copy",
          "--dest-tls-verify=false",
          `oci:${layout.dir}:amd64`,
          `${ref}:amd64`,
        ]);
        // A referrer of the amd64 image, and an image deleted before the collection.
        const empty = text("{}");
        await pushBlob(server.url, "e2e/app", empty);
        const amd64 = layout.refs.amd64!;
        const subjectBytes = await (await fetch(`${server.url}/v2/e2e/app/manifests/${amd64}`, {
          headers: { Accept: MEDIA.ociManifest },
        })).arrayBuffer();
        signature = text(JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA.ociManifest,
          artifactType: "application/vnd.example.sig",
          config: descriptor(MEDIA.ociEmpty, empty),
          layers: [descriptor(MEDIA.ociEmpty, empty)],
          subject: descriptor(MEDIA.ociManifest, new Uint8Array(subjectBytes)),
        }));
        await expectStatus(
          await putManifest(server.url, "e2e/app", "sig", signature, MEDIA.ociManifest),
          201,
        );
        const doomed = await pushImage(server.url, "e2e/doomed", "x", { seed: 7 });
        await expectStatus(
          await fetch(`${server.url}/v2/e2e/doomed/manifests/${doomed.digest}`, {
            method: "DELETE",
          }),
          202,
        );
        await new Promise((resolve) => setTimeout(resolve, 5)); // past the writes' millisecond
        const gc = await (await fetch(`${server.url}/admin/gc`, { method: "POST" })).json();
        assert.equal(gc.blobsDeleted.length, 3);
        const referrers = await (await fetch(`${server.url}/v2/e2e/app/referrers/${amd64}`)).json();
        assert.deepEqual(referrers.manifests.map((m: { digest: string }) => m.digest), [
          digestOf(signature),
        ]);
      } finally {
        await server.close();
      }
      const repo = `${dataDir}/docker/registry/v2/repositories/e2e/app`;
      assert.ok(
        (await Deno.stat(`${repo}/_referrers`)).isDirectory,
        "the referrers index is on disk",
      );

      const distribution = await startDistribution(dataDir);
      try {
        const ref = `docker://${distribution.host}/e2e/app`;
        await run("skopeo", [
          "copy",
          "--all",
          "--src-tls-verify=false",
          `${ref}:multi`,
          `oci:${work}/back:multi`,
        ]);
        await run("skopeo", ["copy", "--src-tls-verify=false", `${ref}:sig`, `dir:${work}/sig`]);
        const inspected = JSON.parse(
          await run("skopeo", ["inspect", "--tls-verify=false", `${ref}:amd64`]),
        ) as { Digest: string; RepoTags: string[] };
        assert.equal(inspected.Digest, layout.refs.amd64);
        assert.deepEqual(inspected.RepoTags.sort(), ["amd64", "multi", "sig"]);
        const catalog = await (await fetch(`http://${distribution.host}/v2/_catalog`)).json();
        assert.deepEqual(catalog.repositories, ["e2e/app", "e2e/doomed"]);
        const doomed = await fetch(`http://${distribution.host}/v2/e2e/doomed/manifests/x`, {
          headers: { Accept: MEDIA.ociManifest },
        });
        await doomed.body?.cancel();
        assert.equal(doomed.status, 404);
      } finally {
        await distribution.stop();
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
