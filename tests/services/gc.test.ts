/**
 * The garbage collector against the in-memory store (no HTTP): reachability with
 * `deleteUntagged`, and its handshake with pushes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { makeConfig } from "../../src/config.ts";
import { digestBytes, parseDigest } from "../../src/oci/digest.ts";
import { LISTED_MAX } from "../../src/services/gc.ts";
import { createRegistry, type Registry } from "../../src/services/registry.ts";
import { memoryStore } from "../../src/storage/open_store.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const encoder = new TextEncoder();

function registry(): Registry {
  return createRegistry(makeConfig({ storage: "memory" }), memoryStore(), () => {});
}

function body(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([new Uint8Array(bytes)]).stream();
}

async function blob(r: Registry, name: string, content: string) {
  const bytes = encoder.encode(content);
  const digest = digestBytes(bytes);
  await r.uploads.monolithic(name, digest, { body: body(bytes), length: bytes.byteLength });
  return { mediaType: "application/octet-stream", digest: digest.value, size: bytes.byteLength };
}

async function manifest(r: Registry, name: string, ref: string | undefined, doc: object) {
  const bytes = encoder.encode(JSON.stringify(doc));
  const digest = digestBytes(bytes);
  const type = "manifests" in doc ? OCI_INDEX : OCI_MANIFEST;
  await r.manifests.put(name, ref ?? digest.value, type, body(bytes));
  return { mediaType: type, digest: digest.value, size: bytes.byteLength };
}

async function image(r: Registry, name: string, seed: string, ref?: string, subject?: object) {
  const config = await blob(r, name, `config ${seed}`);
  const layer = await blob(r, name, `layer ${seed}`);
  const descriptor = await manifest(r, name, ref, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { ...config, mediaType: "application/vnd.oci.image.config.v1+json" },
    layers: [layer],
    ...(subject && { subject }),
  });
  return { descriptor, blobs: [config.digest, layer.digest, descriptor.digest] };
}

async function present(r: Registry, digests: string[]): Promise<boolean[]> {
  return await Promise.all(
    digests.map(async (d) => (await r.store.statBlob(parseDigest(d))) !== undefined),
  );
}

Deno.test("gc(memory): deleteUntagged keeps what a tag reaches through indexes and referrers", async () => {
  const r = registry();
  const tagged = await image(r, "app", "tagged", "latest");
  const child = await image(r, "app", "child");
  await manifest(r, "app", "multi", {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [child.descriptor],
  });
  const signature = await image(r, "app", "sig", undefined, child.descriptor);
  const sigOfSig = await image(r, "app", "sig2", undefined, signature.descriptor);
  const orphan = await image(r, "app", "orphan");
  const orphanSig = await image(r, "app", "orphan-sig", undefined, orphan.descriptor);
  // Grace 0 still spares what was used at or after the start: let the clock move on first.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const report = await r.gc.run({ deleteUntagged: true });
  assert.deepEqual(
    report.manifestsDeleted.map((m) => m.digest).sort(),
    [orphan.descriptor.digest, orphanSig.descriptor.digest].sort(),
  );
  assert.deepEqual(
    report.blobsDeleted.map((b) => b.digest).sort(),
    [...orphan.blobs, ...orphanSig.blobs].sort(),
  );
  for (const kept of [tagged, child, signature, sigOfSig]) {
    assert.deepEqual(await present(r, kept.blobs), [true, true, true]);
  }
  const listed = await r.referrers.list(
    "app",
    digestBytes(encoder.encode("")) && {
      algorithm: "sha256",
      hex: orphan.descriptor.digest.slice(7),
      value: orphan.descriptor.digest,
    },
  );
  assert.deepEqual(listed.descriptors, [], "a deleted referrer leaves the referrers index");
  await r.maintenance.close();
});

Deno.test("gc(memory): a manifest pushed during a collection is never stored over missing blobs", async () => {
  const r = registry();
  // Blobs uploaded, no manifest yet: garbage unless a push names them.
  const config = await blob(r, "app", "config late");
  const layer = await blob(r, "app", "layer late");
  const run = r.gc.run({ gracePeriodMs: 0 });
  const pushed = manifest(r, "app", "latest", {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { ...config, mediaType: "application/vnd.oci.image.config.v1+json" },
    layers: [layer],
  });
  const [report] = await Promise.allSettled([run, pushed]);
  assert.equal(report.status, "fulfilled");
  const result = await pushed.then(() => "pushed", () => "refused");
  const kept = await present(r, [config.digest, layer.digest]);
  // Either the push won (its blobs are kept) or the collection took the blobs first and the push
  // was refused: never a stored manifest over missing blobs.
  if (result === "pushed") assert.deepEqual(kept, [true, true]);
  else assert.ok(kept.includes(false));
  await r.maintenance.close();
});

Deno.test("gc(memory): a manifest berth would refuse (schema 1) still keeps its layers", async () => {
  const r = registry();
  const layer = encoder.encode("schema 1 layer");
  const garbage = encoder.encode("garbage");
  const layerDigest = digestBytes(layer);
  const manifestBytes = encoder.encode(JSON.stringify({
    schemaVersion: 1,
    name: "old",
    tag: "v1",
    fsLayers: [{ blobSum: layerDigest.value }],
  }));
  const manifestDigest = digestBytes(manifestBytes);
  await r.store.putBlob(layerDigest, layer);
  await r.store.putBlob(digestBytes(garbage), garbage);
  await r.store.putBlob(manifestDigest, manifestBytes);
  await r.store.putLink("old", "layer", layerDigest);
  await r.store.putLink("old", "manifest", manifestDigest);
  await r.store.putTag("old", "v1", manifestDigest);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const report = await r.gc.run();
  assert.deepEqual(report.blobsDeleted.map((b) => b.digest), [digestBytes(garbage).value]);
  assert.deepEqual(await present(r, [layerDigest.value, manifestDigest.value]), [true, true]);
  await r.maintenance.close();
});

Deno.test("gc(memory): a manifest that is not JSON stops the collection before the sweep", async () => {
  const r = registry();
  const broken = encoder.encode("not json at all");
  const garbage = encoder.encode("garbage");
  await r.store.putBlob(digestBytes(broken), broken);
  await r.store.putBlob(digestBytes(garbage), garbage);
  await r.store.putLink("bad", "manifest", digestBytes(broken));
  await new Promise((resolve) => setTimeout(resolve, 5));
  await assert.rejects(r.gc.run(), /not JSON/);
  assert.deepEqual(await present(r, [digestBytes(garbage).value]), [true]);
  await r.maintenance.close();
});

Deno.test("gc(memory): a report lists the first LISTED_MAX removed blobs and counts them all", async () => {
  const r = registry();
  const kept = await image(r, "app", "kept", "latest");
  const count = LISTED_MAX + 7;
  const garbage = Array.from({ length: count }, (_, i) => encoder.encode(`garbage ${i}`));
  for (const bytes of garbage) await r.store.putBlob(digestBytes(bytes), bytes);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const dry = await r.gc.run({ dryRun: true });
  assert.equal(dry.blobsDeletedCount, count);
  assert.equal(dry.blobsDeleted.length, LISTED_MAX);
  const report = await r.gc.run();
  assert.equal(report.blobsDeletedCount, count);
  assert.equal(report.blobsDeleted.length, LISTED_MAX);
  assert.equal(report.bytesFreed, garbage.reduce((sum, bytes) => sum + bytes.byteLength, 0));
  const all = garbage.map((bytes) => digestBytes(bytes).value);
  for (const { digest } of report.blobsDeleted) assert.ok(all.includes(digest));
  assert.deepEqual(await present(r, all), all.map(() => false));
  assert.deepEqual(await present(r, kept.blobs), kept.blobs.map(() => true));
  await r.maintenance.close();
});
