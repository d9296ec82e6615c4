/**
 * docker-archive with real consumers: podman loads what `berth copy` and `berth sync` write (one
 * image; several images with several tags in one archive), skopeo reads it, and berth reads what
 * `podman save` and skopeo write. Images are built with umoci (real tar layers). podman runs with
 * the vfs driver in a temporary root, so it touches nothing of the machine's own storage.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildLayout, layoutBlob } from "../helpers/images.ts";
import { withTempDir } from "../helpers/temp.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { berth } from "../copy/cli.ts";

/** The config digest and rootfs diff_ids of an image manifest in a layout. */
async function configOf(
  layout: string,
  digest: string,
): Promise<{ digest: string; diffIds: string[] }> {
  const manifest = JSON.parse(new TextDecoder().decode(await layoutBlob(layout, digest)));
  const configDigest = manifest.config.digest as string;
  const config = JSON.parse(new TextDecoder().decode(await layoutBlob(layout, configDigest)));
  return { digest: configDigest, diffIds: config.rootfs.diff_ids };
}

/** The config digest of the image an OCI layout tags `tag`. */
async function configOfTag(layout: string, tag: string): Promise<string> {
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`)) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  assert.ok(entry, `${layout} has no tag ${tag}`);
  return (await configOf(layout, entry.digest)).digest;
}

async function ok(args: string[]): Promise<string> {
  const result = await berth(args);
  assert.equal(result.code, 0, `berth ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

Deno.test({
  name:
    "docker-archive(e2e): podman loads berth's archives, skopeo reads them, berth reads podman's",
  ignore: skipWithout("podman", "skopeo", "umoci"),
  async fn() {
    await withTempDir("berth-pa-", async (dir) => {
      const layout = `${dir}/layout`;
      const built = await buildLayout(layout);
      const amd64 = await configOf(layout, built.refs.amd64!);
      const arm64 = await configOf(layout, built.refs.arm64!);
      const podman = (...args: string[]) =>
        run("podman", [
          "--root",
          `${dir}/root`,
          "--runroot",
          `${dir}/run`,
          "--storage-driver",
          "vfs",
          ...args,
        ]);

      // One image, written by copy.
      await ok([
        "copy",
        "-q",
        `oci:${layout}:amd64`,
        `docker-archive:${dir}/one.tar:example.com/app:v1`,
      ]);
      assert.match(
        await podman("load", "-i", `${dir}/one.tar`),
        /Loaded image: example\.com\/app:v1/,
      );
      const id = (await podman("image", "inspect", "--format", "{{.Id}}", "example.com/app:v1"))
        .trim();
      assert.equal(`sha256:${id}`, amd64.digest); // podman's image ID is the config digest
      const layers = JSON.parse(
        await podman(
          "image",
          "inspect",
          "--format",
          "{{json .RootFS.Layers}}",
          "example.com/app:v1",
        ),
      );
      assert.deepEqual(layers, amd64.diffIds);

      // Every tag of the layout, written by sync: the index tag `multi` is the host's platform
      // (amd64), so it shares an entry with `amd64`.
      await ok(["sync", "-q", `oci:${layout}`, `docker-archive:${dir}/all.tar`]);
      const entries = JSON.parse(await run("tar", ["-xOf", `${dir}/all.tar`, "manifest.json"]));
      assert.equal(entries.length, 2);
      const loaded = await podman("load", "-i", `${dir}/all.tar`);
      for (const tag of ["amd64", "arm64", "multi"]) {
        assert.match(loaded, new RegExp(`Loaded image: (localhost/)?layout:${tag}`));
      }
      const armId = (await podman("image", "inspect", "--format", "{{.Id}}", "layout:arm64"))
        .trim();
      assert.equal(`sha256:${armId}`, arm64.digest);
      const multiId = (await podman("image", "inspect", "--format", "{{.Id}}", "layout:multi"))
        .trim();
      assert.equal(multiId, id);

      // skopeo reads both archives, an image of the multi-image one by its name.
      const inspected = JSON.parse(
        await run("skopeo", ["inspect", `docker-archive:${dir}/all.tar:layout:arm64`]),
      );
      assert.equal(inspected.Architecture, "arm64");
      assert.equal(inspected.Layers.length, arm64.diffIds.length);
      const raw = JSON.parse(
        await run("skopeo", ["inspect", "--raw", `docker-archive:${dir}/one.tar`]),
      );
      assert.equal(raw.config.digest, amd64.digest);
      await run("skopeo", ["copy", `docker-archive:${dir}/one.tar`, `oci:${dir}/viaskopeo:v1`]);

      // podman's own archive (several images, uncompressed layers) read by berth.
      await podman(
        "save",
        "-m",
        "--format",
        "docker-archive",
        "-o",
        `${dir}/podman.tar`,
        "example.com/app:v1",
        "localhost/layout:arm64",
      );
      const fromPodman = JSON.parse(
        await ok(["inspect", `docker-archive:${dir}/podman.tar:example.com/app:v1`]),
      );
      assert.deepEqual(fromPodman.Layers, amd64.diffIds); // uncompressed: digests are diff_ids
      await ok([
        "copy",
        "-q",
        `docker-archive:${dir}/podman.tar:localhost/layout:arm64`,
        `oci:${dir}/frompodman:a`,
      ]);
      assert.equal(await configOfTag(`${dir}/frompodman`, "a"), arm64.digest);

      // skopeo's archive read by berth.
      await run("skopeo", [
        "copy",
        `oci:${layout}:arm64`,
        `docker-archive:${dir}/skopeo.tar:from/skopeo:v2`,
      ]);
      await ok([
        "copy",
        "-q",
        `docker-archive:${dir}/skopeo.tar:from/skopeo:v2`,
        `oci:${dir}/fromskopeo:v2`,
      ]);
      assert.equal(await configOfTag(`${dir}/fromskopeo`, "v2"), arm64.digest);
    });
  },
});
