/**
 * `berth gc` (offline), run as a child process over a data directory a server filled.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer, type TestServer } from "../helpers/server.ts";
import {
  digestOf,
  expectStatus,
  MEDIA,
  pushImageBlobs,
  pushIndexAndSignature,
  putManifest,
  type TestImage,
} from "../helpers/registry.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function berthGc(args: string[]): Promise<{ out: string; summary: Record<string, number> }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", MAIN, "gc", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `berth gc failed: ${out}\n${new TextDecoder().decode(stderr)}`);
  const summary = JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, number>;
  return { out, summary };
}

function blobPath(dataDir: string, digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `${dataDir}/docker/registry/v2/blobs/${alg}/${hex.slice(0, 2)}/${hex}/data`;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Fill a data directory: a tagged image, an untagged one, a tagged index over two untagged
 * children, a referrer of one child, and an image deleted by digest. */
async function fill(server: TestServer) {
  const push = async (seed: number, ref?: string): Promise<TestImage> => {
    const image = await pushImageBlobs(server.url, "app", { seed, layerSize: 2000 + seed });
    const reference = ref ?? image.digest;
    await expectStatus(
      await putManifest(server.url, "app", reference, image.bytes, MEDIA.ociManifest),
      201,
    );
    return image;
  };
  const tagged = await push(1, "latest");
  const untagged = await push(2);
  const children = [await push(3), await push(4)];
  const { index, signature } = await pushIndexAndSignature(server.url, "app", "multi", children);
  const deleted = await push(5, "deleted");
  await expectStatus(
    await fetch(`${server.url}/v2/app/manifests/${deleted.digest}`, { method: "DELETE" }),
    202,
  );
  return { tagged, untagged, children, index, signature, deleted };
}

function digests(image: TestImage): string[] {
  return [image.digest, digestOf(image.config), digestOf(image.layer)];
}

Deno.test("berth gc: dry run prints, removes nothing; a real run frees the deleted image's bytes", async () => {
  const server = await startServer();
  try {
    const { deleted, tagged, untagged } = await fill(server);
    const dry = await berthGc(["--data", server.dataDir, "--dry-run"]);
    assert.match(dry.out, /app: marking manifest sha256:/);
    assert.match(dry.out, /blobs marked, 3 blobs and 0 manifests eligible for deletion/);
    assert.equal(dry.summary.blobsDeleted, 3);
    for (const d of digests(deleted)) assert.equal(await exists(blobPath(server.dataDir, d)), true);

    const real = await berthGc(["--data", server.dataDir]);
    const size = deleted.bytes.byteLength + deleted.config.byteLength + deleted.layer.byteLength;
    assert.equal(real.summary.bytesFreed, size);
    assert.match(real.out, new RegExp(`freed ${size} bytes in 3 blobs`));
    for (const d of digests(deleted)) {
      assert.equal(await exists(blobPath(server.dataDir, d)), false);
    }
    for (const d of [...digests(tagged), ...digests(untagged)]) {
      assert.equal(await exists(blobPath(server.dataDir, d)), true);
    }
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/latest`), 200);
  } finally {
    await server.close();
  }
});

Deno.test("berth gc --delete-untagged: removes untagged manifests, keeps index children and referrers", async () => {
  const server = await startServer();
  try {
    const { untagged, children, signature, tagged } = await fill(server);
    const { summary, out } = await berthGc(["--data", server.dataDir, "--delete-untagged"]);
    assert.equal(summary.manifestsDeleted, 1);
    assert.match(out, new RegExp(`app: manifest eligible for deletion ${untagged.digest}`));
    for (const d of digests(untagged)) {
      assert.equal(await exists(blobPath(server.dataDir, d)), false);
    }
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/${untagged.digest}`), 404);
    for (const image of [tagged, ...children]) {
      for (const d of digests(image)) assert.equal(await exists(blobPath(server.dataDir, d)), true);
      await expectStatus(await fetch(`${server.url}/v2/app/manifests/${image.digest}`), 200);
    }
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/${digestOf(signature)}`), 200);
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/multi`), 200);
  } finally {
    await server.close();
  }
});

Deno.test("berth gc: a missing data directory fails (exit 1), a bad flag exits 2", async () => {
  const missing = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      MAIN,
      "gc",
      "--data",
      "/nonexistent/berth",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(missing.code, 1);
  assert.match(new TextDecoder().decode(missing.stderr), /does not exist/);
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", MAIN, "gc", "--bogus"],
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(bad.code, 2);
});
