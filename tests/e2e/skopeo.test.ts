/**
 * End to end with Debian's skopeo and umoci: an image built with umoci is pushed to berth,
 * inspected, listed, and copied back with identical digests; a multi-architecture index copies
 * with `--all`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { buildLayout, layoutBlob, layoutRefs } from "../helpers/images.ts";
import { bytesOf, digestOf } from "../helpers/registry.ts";

const TLS = "--tls-verify=false";
const INSPECT = ["inspect", TLS];

Deno.test({
  name: "e2e(skopeo): an umoci image pushes, inspects and copies back unchanged",
  ignore: skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-" });
    const server = await startServer();
    try {
      const layout = await buildLayout(`${work}/layout`);
      const digest = layout.refs.amd64!;
      const ref = `docker://${server.host}/e2e/app:v1`;
      await run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout.dir}:amd64`, ref]);

      const inspected = JSON.parse(await run("skopeo", [...INSPECT, ref])) as {
        Digest: string;
        Architecture: string;
        Layers: string[];
      };
      assert.equal(inspected.Digest, digest);
      assert.equal(inspected.Architecture, "amd64");
      assert.equal(inspected.Layers.length, 2);
      const raw = await run("skopeo", [...INSPECT, "--raw", ref]);
      assert.equal(raw, new TextDecoder().decode(await layoutBlob(layout.dir, digest)));

      // Pull straight over HTTP: the registry answers with the exact manifest bytes.
      const response = await fetch(`${server.url}/v2/e2e/app/manifests/v1`, {
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      assert.equal(response.headers.get("Docker-Content-Digest"), digest);
      assert.equal(digestOf(await bytesOf(response)), digest);

      await run("skopeo", ["copy", "--src-tls-verify=false", ref, `oci:${work}/back:v1`]);
      const back = await layoutRefs(`${work}/back`);
      assert.equal(back.v1, digest);
      const manifest = JSON.parse(new TextDecoder().decode(await layoutBlob(layout.dir, digest)));
      for (const d of [manifest.config, ...manifest.layers]) {
        const bytes = await layoutBlob(`${work}/back`, d.digest);
        assert.equal(digestOf(bytes), d.digest);
        assert.equal(bytes.byteLength, d.size);
      }
    } finally {
      await server.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "e2e(skopeo): a multi-architecture index copies with --all and keeps its digest",
  ignore: skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-" });
    const server = await startServer();
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 2 });
      const ref = `docker://${server.host}/e2e/multi:latest`;
      await run("skopeo", [
        "copy",
        "--all",
        "--dest-tls-verify=false",
        `oci:${layout.dir}:multi`,
        ref,
      ]);
      const raw = await run("skopeo", [...INSPECT, "--raw", ref]);
      assert.equal(digestOf(new TextEncoder().encode(raw)), layout.refs.multi);
      const index = JSON.parse(raw) as { manifests: { digest: string }[] };
      assert.deepEqual(
        index.manifests.map((m) => m.digest),
        [layout.refs.amd64, layout.refs.arm64],
      );
      for (const child of index.manifests) {
        const response = await fetch(`${server.url}/v2/e2e/multi/manifests/${child.digest}`, {
          method: "HEAD",
        });
        await response.body?.cancel();
        assert.equal(response.status, 200);
      }
      // skopeo picks the platform it is asked for out of the index.
      const arm = JSON.parse(
        await run("skopeo", ["--override-arch", "arm64", ...INSPECT, ref]),
      ) as { Digest: string; Architecture: string };
      assert.equal(arm.Architecture, "arm64");
      assert.equal(arm.Digest, layout.refs.multi, "inspect reports the index's digest");

      await run("skopeo", [
        "copy",
        "--all",
        "--src-tls-verify=false",
        ref,
        `oci:${work}/back:multi`,
      ]);
      assert.equal((await layoutRefs(`${work}/back`)).multi, layout.refs.multi);
    } finally {
      await server.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "e2e(skopeo): list-tags and inspect list the pushed tags",
  ignore: skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-e2e-" });
    const server = await startServer();
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 3 });
      for (const [arch, tag] of [["amd64", "v1"], ["arm64", "v2"]]) {
        await run("skopeo", [
          "copy",
          "--dest-tls-verify=false",
          `oci:${layout.dir}:${arch}`,
          `docker://${server.host}/e2e/app:${tag}`,
        ]);
      }
      const tags = JSON.parse(
        await run("skopeo", ["list-tags", TLS, `docker://${server.host}/e2e/app`]),
      ) as { Repository: string; Tags: string[] };
      assert.deepEqual([...tags.Tags].sort(), ["v1", "v2"]);
      const inspected = JSON.parse(
        await run("skopeo", ["inspect", TLS, `docker://${server.host}/e2e/app:v1`]),
      ) as { Digest: string; RepoTags: string[] };
      assert.equal(inspected.Digest, layout.refs.amd64);
      assert.deepEqual([...inspected.RepoTags].sort(), ["v1", "v2"]);
    } finally {
      await server.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});
