/**
 * Garbage collection over HTTP (`POST /admin/gc`, the schedule) and as `berth gc`: what is
 * marked, what is swept, grace period and in-use protection, upload purging.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { GcReport } from "../../src/services/gc.ts";
import { type StartOptions, startServer, type TestServer } from "../helpers/server.ts";
import {
  digestOf,
  expectStatus,
  MEDIA,
  pushBlob,
  pushImageBlobs,
  pushIndexAndSignature,
  putManifest,
  type TestImage,
  text,
} from "../helpers/registry.ts";

const GC_NOW = { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true };

async function withServer(
  body: (server: TestServer) => Promise<void>,
  options: StartOptions = {},
): Promise<void> {
  const server = await startServer({ ...options, config: { gc: GC_NOW, ...options.config } });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function collect(server: TestServer, query = ""): Promise<GcReport> {
  // A grace period of 0 still spares what was written in the collection's first millisecond.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const response = await fetch(`${server.url}/admin/gc${query}`, { method: "POST" });
  assert.equal(response.status, 200);
  return await response.json() as GcReport;
}

async function pushTagged(server: TestServer, name: string, tag: string, seed: number) {
  const image = await pushImageBlobs(server.url, name, { seed, layerSize: 5000 + seed });
  await expectStatus(await putManifest(server.url, name, tag, image.bytes, MEDIA.ociManifest), 201);
  return image;
}

function blobPath(server: TestServer, digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `${server.dataDir}/docker/registry/v2/blobs/${alg}/${hex.slice(0, 2)}/${hex}/data`;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function imageDigests(image: TestImage): string[] {
  return [digestOf(image.config), digestOf(image.layer), image.digest];
}

async function assertPulls(server: TestServer, name: string, image: TestImage): Promise<void> {
  const manifest = await fetch(`${server.url}/v2/${name}/manifests/${image.digest}`);
  assert.deepEqual(new Uint8Array(await manifest.arrayBuffer()), image.bytes);
  for (const bytes of [image.config, image.layer]) {
    const blob = await fetch(`${server.url}/v2/${name}/blobs/${digestOf(bytes)}`);
    assert.equal(blob.status, 200);
    assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), bytes);
  }
}

Deno.test("gc: an online collection removes unreferenced blobs and reports the bytes freed", async () => {
  await withServer(async (server) => {
    const kept = await pushTagged(server, "app", "kept", 1);
    const gone = await pushTagged(server, "app", "gone", 2);
    await expectStatus(
      await fetch(`${server.url}/v2/app/manifests/${gone.digest}`, { method: "DELETE" }),
      202,
    );
    const report = await collect(server);
    const expected = [gone.config, gone.layer, gone.bytes];
    assert.deepEqual(
      report.blobsDeleted.map((b) => b.digest).sort(),
      imageDigests(gone).sort(),
    );
    assert.equal(report.bytesFreed, expected.reduce((sum, b) => sum + b.byteLength, 0));
    assert.equal(report.dryRun, false);
    assert.equal(report.manifestsDeleted.length, 0);
    for (const digest of imageDigests(gone)) {
      assert.equal(await exists(blobPath(server, digest)), false);
    }
    for (const digest of imageDigests(kept)) {
      assert.equal(await exists(blobPath(server, digest)), true);
    }
    await assertPulls(server, "app", kept);
    const again = await collect(server);
    assert.deepEqual(again.blobsDeleted, []);
    assert.equal(again.bytesFreed, 0);
  });
});

Deno.test("gc: a dry run reports and removes nothing", async () => {
  await withServer(async (server) => {
    const gone = await pushTagged(server, "app", "gone", 3);
    await expectStatus(
      await fetch(`${server.url}/v2/app/manifests/${gone.digest}`, { method: "DELETE" }),
      202,
    );
    const report = await collect(server, "?dryRun=true");
    assert.equal(report.dryRun, true);
    assert.equal(report.blobsDeleted.length, 3);
    for (const digest of imageDigests(gone)) {
      assert.equal(await exists(blobPath(server, digest)), true);
    }
  });
});

Deno.test("gc: blobs younger than the grace period are kept", async () => {
  await withServer(async (server) => {
    const digest = await pushBlob(server.url, "app", text("young and unreferenced"));
    const report = await collect(server);
    assert.deepEqual(report.blobsDeleted, []);
    assert.equal(report.blobsSpared, 1);
    assert.equal(await exists(blobPath(server, digest)), true);
  }, { config: { gc: { ...GC_NOW, gracePeriodMs: 3600_000 } } });
});

Deno.test("gc: an old blob a client just checked (HEAD) or mounted is kept; left alone it goes", async () => {
  const server = await startServer({ config: { gc: { ...GC_NOW, gracePeriodMs: 60_000 } } });
  try {
    const headed = await pushBlob(server.url, "app", text("old blob, checked by a client"));
    const mounted = await pushBlob(server.url, "app", text("old blob, mounted"));
    const idle = await pushBlob(server.url, "app", text("old blob, nobody cares"));
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const d of [headed, mounted, idle]) {
      await Deno.utime(blobPath(server, d), hourAgo, hourAgo);
    }
    // A fresh server on the same data: no use of these blobs is remembered yet.
    const fresh = await startServer({
      dataDir: server.dataDir,
      config: { gc: { ...GC_NOW, gracePeriodMs: 60_000 } },
    });
    try {
      await expectStatus(
        await fetch(`${fresh.url}/v2/app/blobs/${headed}`, { method: "HEAD" }),
        200,
      );
      await expectStatus(
        await fetch(`${fresh.url}/v2/other/blobs/uploads/?mount=${mounted}&from=app`, {
          method: "POST",
        }),
        201,
      );
      const report = await collect(fresh);
      assert.deepEqual(report.blobsDeleted.map((b) => b.digest), [idle]);
      assert.equal(await exists(blobPath(server, headed)), true);
      assert.equal(await exists(blobPath(server, mounted)), true);
      assert.equal(await exists(blobPath(server, idle)), false);
    } finally {
      await fresh.close();
    }
  } finally {
    await server.close();
  }
});

Deno.test("gc: index children and referrers of kept manifests are marked", async () => {
  await withServer(async (server) => {
    const children: TestImage[] = [];
    for (const seed of [11, 12]) {
      const child = await pushImageBlobs(server.url, "app", { seed });
      await expectStatus(
        await putManifest(server.url, "app", child.digest, child.bytes, MEDIA.ociManifest),
        201,
      );
      children.push(child);
    }
    const { signature } = await pushIndexAndSignature(server.url, "app", "multi", children);
    const report = await collect(server);
    assert.deepEqual(report.blobsDeleted, []);
    for (const child of children) await assertPulls(server, "app", child);
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/multi`), 200);
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/${digestOf(signature)}`), 200);
  });
});

Deno.test("gc: the schedule collects by itself and app.close() stops it", async () => {
  await withServer(async (server) => {
    const gone = await pushTagged(server, "app", "gone", 4);
    await expectStatus(
      await fetch(`${server.url}/v2/app/manifests/${gone.digest}`, { method: "DELETE" }),
      202,
    );
    const deadline = Date.now() + 10_000;
    while (await exists(blobPath(server, digestOf(gone.layer)))) {
      assert.ok(Date.now() < deadline, "the scheduled collection never removed the layer");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }, { config: { gc: { intervalMs: 30, gracePeriodMs: 1500, adminEndpoint: false } } });
});

Deno.test("gc: the admin endpoint is off unless configured", async () => {
  const server = await startServer();
  try {
    const response = await fetch(`${server.url}/admin/gc`, { method: "POST" });
    assert.equal(response.status, 404);
    await response.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("uploads: stale sessions are purged on schedule, young ones kept", async () => {
  const purging = { enabled: true, ageMs: 0, intervalMs: 30, dryRun: false };
  await withServer(async (server) => {
    const start = await fetch(`${server.url}/v2/app/blobs/uploads/`, { method: "POST" });
    await expectStatus(start, 202);
    const location = new URL(start.headers.get("Location")!, server.url).href;
    const deadline = Date.now() + 10_000;
    const status = async () => {
      const response = await fetch(location);
      await response.body?.cancel();
      return response.status;
    };
    while ((await status()) !== 404) {
      assert.ok(Date.now() < deadline, "the stale session was never purged");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }, { config: { uploadPurging: purging } });
  await withServer(async (server) => {
    const start = await fetch(`${server.url}/v2/app/blobs/uploads/`, { method: "POST" });
    await expectStatus(start, 202);
    const location = new URL(start.headers.get("Location")!, server.url).href;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expectStatus(await fetch(location), 204);
  }, { config: { uploadPurging: { ...purging, ageMs: 3600_000 } } });
});

Deno.test("gc: an open upload session survives a collection and completes afterwards", async () => {
  await withServer(async (server) => {
    const bytes = text("bytes of an upload in flight");
    const start = await fetch(`${server.url}/v2/app/blobs/uploads/`, { method: "POST" });
    await expectStatus(start, 202);
    const location = new URL(start.headers.get("Location")!, server.url);
    const patch = await fetch(location, {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    await expectStatus(patch, 202);
    const report = await collect(server);
    assert.deepEqual(report.blobsDeleted, []);
    const next = new URL(patch.headers.get("Location")!, server.url);
    next.searchParams.set("digest", digestOf(bytes));
    await expectStatus(await fetch(next, { method: "PUT" }), 201);
    const blob = await fetch(`${server.url}/v2/app/blobs/${digestOf(bytes)}`);
    assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), bytes);
  });
});
