/**
 * Transports: round trips between OCI layouts, OCI archives and docker archives through the copy
 * engine (digests kept, the archive written only on success), tar long names, and what skopeo
 * makes of berth's archives.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ClientError } from "../../src/client/errors.ts";
import { copyImage } from "../../src/copy/copy.ts";
import { ClientPool } from "../../src/transports/client_pool.ts";
import { openDestination, openSource } from "../../src/transports/mod.ts";
import { listTar, readTarText, writeTar } from "../../src/transports/tar.ts";
import { withTempDir } from "../helpers/temp.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { refsOf, writeTestLayout } from "./layouts.ts";

async function copy(src: string, dst: string, options: Parameters<typeof copyImage>[2] = {}) {
  const pool = new ClientPool();
  const source = await openSource(src, pool);
  const destination = await openDestination(dst, pool);
  try {
    return await copyImage(source, destination, options);
  } finally {
    await source.close();
    await pool.close();
  }
}

async function blobNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(`${dir}/blobs/sha256`))).map((e) => e.name).sort();
}

Deno.test("transports: oci → oci-archive → oci keeps the index, its children and every digest", async () => {
  await withTempDir("berth-transports-", async (dir) => {
    const layout = await writeTestLayout(`${dir}/src`);
    const result = await copy(`oci:${dir}/src:multi`, `oci-archive:${dir}/a.tar:multi`);
    assert.equal(result.digest, layout.tags.multi);
    assert.equal(result.manifests, 3);
    const entries = await listTar(`${dir}/a.tar`);
    assert.ok(entries.has("index.json") && entries.has("oci-layout"));
    await copy(`oci-archive:${dir}/a.tar:multi`, `oci:${dir}/back:again`);
    assert.equal((await refsOf(`${dir}/back`)).again, layout.tags.multi);
    const expected = (await blobNames(`${dir}/src`)).filter((n) => !layout.signature.endsWith(n));
    // Everything but the signature and its empty config ("{}") came across.
    const got = await blobNames(`${dir}/back`);
    for (const name of got) assert.ok(expected.includes(name), `unexpected blob ${name}`);
    assert.equal(got.length, expected.length - 1);
  });
});

Deno.test("transports: referrers in an OCI layout are found and copied with referrers: true", async () => {
  await withTempDir("berth-transports-", async (dir) => {
    const layout = await writeTestLayout(`${dir}/src`);
    const result = await copy(`oci:${dir}/src:amd64`, `oci:${dir}/dst:amd64`, { referrers: true });
    assert.equal(result.referrers, 1);
    const source = await openSource(`oci:${dir}/dst:amd64`, new ClientPool());
    const referrers = await source.referrers(layout.tags.amd64!);
    assert.deepEqual(referrers.map((r) => [r.digest, r.artifactType]), [
      [layout.signature, "application/vnd.example.signature"],
    ]);
  });
});

Deno.test("transports: oci → docker-archive → oci keeps config and layer digests", async () => {
  await withTempDir("berth-transports-", async (dir) => {
    const layout = await writeTestLayout(`${dir}/src`);
    await copy(`oci:${dir}/src:multi`, `docker-archive:${dir}/d.tar:example/app:v1`, {
      platform: { os: "linux", architecture: "arm64" },
    });
    const entries = await listTar(`${dir}/d.tar`);
    const manifest = JSON.parse(await readTarText(`${dir}/d.tar`, entries.get("manifest.json")!));
    assert.deepEqual(manifest[0].RepoTags, ["example/app:v1"]);
    assert.equal(manifest[0].Layers.length, 1);
    const back = await copy(`docker-archive:${dir}/d.tar:example/app:v1`, `oci:${dir}/back:v1`);
    assert.equal(back.blobs.copied, 2);
    const doc = JSON.parse(
      await Deno.readTextFile(`${dir}/back/blobs/sha256/${back.digest.slice(7)}`),
    );
    assert.equal(doc.layers[0].digest, layout.layers.arm64);
    assert.equal(doc.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  });
});

Deno.test("transports: a corrupted blob fails the copy and leaves no tag, temp file or archive", async () => {
  await withTempDir("berth-transports-", async (dir) => {
    const layout = await writeTestLayout(`${dir}/src`);
    await Deno.writeFile(
      `${dir}/src/blobs/sha256/${layout.layers.amd64!.slice(7)}`,
      new Uint8Array(20_480),
    );
    await copy(`oci:${dir}/src:arm64`, `oci:${dir}/dst:existing`);
    const before = await Deno.readTextFile(`${dir}/dst/index.json`);
    await assert.rejects(copy(`oci:${dir}/src:amd64`, `oci:${dir}/dst:new`), (error: Error) => {
      assert.ok(error instanceof ClientError && error.kind === "digest-mismatch", error.message);
      assert.match(error.message, new RegExp(layout.layers.amd64!));
      return true;
    });
    assert.equal(await Deno.readTextFile(`${dir}/dst/index.json`), before);
    assert.ok(!(await blobNames(`${dir}/dst`)).includes(layout.layers.amd64!.slice(7)));
    const leftovers = (await Array.fromAsync(Deno.readDir(`${dir}/dst`))).filter((e) =>
      e.name.startsWith(".")
    );
    assert.deepEqual(leftovers, []);
    await assert.rejects(
      copy(`oci:${dir}/src:amd64`, `docker-archive:${dir}/x.tar:a:b`),
      ClientError,
    );
    await assert.rejects(Deno.stat(`${dir}/x.tar`), Deno.errors.NotFound);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "dst",
      "src",
    ]);
  });
});

Deno.test("transports: a missing tag and an ambiguous layout are clear errors", async () => {
  await withTempDir("berth-transports-", async (dir) => {
    await writeTestLayout(`${dir}/src`);
    await assert.rejects(copy(`oci:${dir}/src:nope`, `oci:${dir}/dst`), /no tag nope/);
    await assert.rejects(copy(`oci:${dir}/src`, `oci:${dir}/dst`), /name one with :TAG/);
    await assert.rejects(copy(`oci:${dir}/missing:x`, `oci:${dir}/dst`), /index.json missing/);
  });
});

Deno.test("transports: tar entries with long names round trip through a pax header", async () => {
  await withTempDir("berth-tar-", async (dir) => {
    const long = `${"a".repeat(80)}/${"b".repeat(80)}.json`;
    await writeTar(`${dir}/t.tar`, [{ name: long, data: new TextEncoder().encode("{}") }]);
    const entries = await listTar(`${dir}/t.tar`);
    assert.equal(await readTarText(`${dir}/t.tar`, entries.get(long)!), "{}");
    const listed = await run("tar", ["-tf", `${dir}/t.tar`]);
    assert.ok(listed.includes(long));
  });
});

Deno.test({
  name:
    "transports(e2e): skopeo reads berth's docker-archive and oci-archive, berth reads skopeo's",
  ignore: skipWithout("skopeo"),
  async fn() {
    await withTempDir("berth-transports-", async (dir) => {
      const layout = await writeTestLayout(`${dir}/src`);
      await copy(`oci:${dir}/src:amd64`, `docker-archive:${dir}/d.tar:example/app:v1`);
      await run("skopeo", ["copy", `docker-archive:${dir}/d.tar`, `oci:${dir}/viaskopeo:v1`]);
      const viaSkopeo = JSON.parse(
        await Deno.readTextFile(
          `${dir}/viaskopeo/blobs/sha256/${(await refsOf(`${dir}/viaskopeo`)).v1!.slice(7)}`,
        ),
      );
      assert.equal(viaSkopeo.layers.length, 1);
      await copy(`oci:${dir}/src:multi`, `oci-archive:${dir}/o.tar:multi`);
      await run("skopeo", [
        "copy",
        "--all",
        "--preserve-digests",
        `oci-archive:${dir}/o.tar:multi`,
        `oci:${dir}/viaskopeo2:m`,
      ]);
      assert.equal((await refsOf(`${dir}/viaskopeo2`)).m, layout.tags.multi);
      await run("skopeo", [
        "copy",
        `oci:${dir}/src:arm64`,
        `docker-archive:${dir}/s.tar:from/skopeo:v2`,
      ]);
      const back = await copy(
        `docker-archive:${dir}/s.tar:from/skopeo:v2`,
        `oci:${dir}/fromskopeo:v2`,
      );
      const doc = JSON.parse(
        await Deno.readTextFile(`${dir}/fromskopeo/blobs/sha256/${back.digest.slice(7)}`),
      );
      assert.equal(doc.layers.length, 1);
    });
  },
});

Deno.test("transports: dir: round trip keeps the index and digests; a foreign folder is not replaced", async () => {
  await withTempDir("berth-transports-", async (dir) => {
    const layout = await writeTestLayout(`${dir}/src`);
    await copy(`oci:${dir}/src:multi`, `dir:${dir}/d`);
    assert.equal(await Deno.readTextFile(`${dir}/d/version`), "Directory Transport Version: 1.1\n");
    assert.ok(await Deno.stat(`${dir}/d/${layout.tags.amd64!.slice(7)}.manifest.json`));
    const back = await copy(`dir:${dir}/d`, `oci:${dir}/back:m`);
    assert.equal(back.digest, layout.tags.multi);
    assert.equal(back.manifests, 3);
    await copy(`oci:${dir}/src:arm64`, `dir:${dir}/d`); // replaces the previous copy
    assert.equal((await copy(`dir:${dir}/d`, `oci:${dir}/back2:a`)).digest, layout.tags.arm64);
    await Deno.mkdir(`${dir}/mine`);
    await Deno.writeTextFile(`${dir}/mine/notes.txt`, "keep me");
    await assert.rejects(copy(`oci:${dir}/src:arm64`, `dir:${dir}/mine`), /not a dir: image/);
    assert.equal(await Deno.readTextFile(`${dir}/mine/notes.txt`), "keep me");
  });
});

Deno.test({
  name: "transports(e2e): skopeo reads berth's dir: and berth reads skopeo's, digests identical",
  ignore: skipWithout("skopeo"),
  async fn() {
    await withTempDir("berth-transports-", async (dir) => {
      const layout = await writeTestLayout(`${dir}/src`);
      await copy(`oci:${dir}/src:multi`, `dir:${dir}/ours`);
      await run("skopeo", [
        "copy",
        "--all",
        "--preserve-digests",
        `dir:${dir}/ours`,
        `oci:${dir}/viaskopeo:m`,
      ]);
      assert.equal((await refsOf(`${dir}/viaskopeo`)).m, layout.tags.multi);
      await run("skopeo", [
        "copy",
        "--all",
        "--preserve-digests",
        `oci:${dir}/src:multi`,
        `dir:${dir}/theirs`,
      ]);
      assert.equal(
        (await copy(`dir:${dir}/theirs`, `oci:${dir}/back:m`)).digest,
        layout.tags.multi,
      );
    });
  },
});
