/**
 * The handshake between garbage collection and blob users, in one process and across replicas.
 *
 * @module
 */
import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { BlobGuard } from "../../src/services/blob_guard.ts";
import { BlobService } from "../../src/services/blobs.ts";
import { ReplicaFence } from "../../src/services/replica_fence.ts";
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { LayoutStore } from "../../src/storage/layout/layout_store.ts";

const digest = digestBytes(new TextEncoder().encode("blob"));

Deno.test("blob guard: a blob used since the cut-off cannot be claimed", async () => {
  let now = 1000;
  const guard = new BlobGuard(() => now);
  await guard.use([digest]);
  assert.equal(guard.usedSince(digest, 1000), true);
  assert.equal(guard.claim(digest, 1000), undefined);
  now = 5000;
  assert.equal(guard.usedSince(digest, 2000), false);
  assert.ok(guard.claim(digest, 2000));
});

Deno.test("blob guard: a use during a removal waits for it to finish", async () => {
  const guard = new BlobGuard(() => 0);
  const remove = guard.claim(digest, 1);
  assert.ok(remove);
  const order: string[] = [];
  const { promise: gate, resolve: open } = Promise.withResolvers<void>();
  const removal = remove(async () => {
    await gate;
    order.push("removed");
  });
  const use = guard.use([digest]).then(() => order.push("used"));
  assert.equal(guard.claim(digest, 1), undefined, "a blob being removed is not claimed twice");
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(order, []);
  open();
  await Promise.all([removal, use]);
  assert.deepEqual(order, ["removed", "used"]);
});

Deno.test("blob guard: prune forgets old uses", async () => {
  let now = 10;
  const guard = new BlobGuard(() => now);
  await guard.use([digest]);
  now = 100;
  guard.prune(50);
  assert.equal(guard.usedSince(digest, 0), false);
});

/** A memory driver that counts `stat` calls per path. */
class StatCounting extends MemoryDriver {
  readonly stats = new Map<string, number>();
  override stat(path: string) {
    this.stats.set(path, (this.stats.get(path) ?? 0) + 1);
    return super.stat(path);
  }
}

Deno.test("blobs(replicas): a held blob's size is read once a window, its link every time", async () => {
  const shared = new StatCounting();
  let now = 10_000;
  const replica = (clock: () => number) => {
    const store = new LayoutStore(shared);
    const fence = new ReplicaFence(shared, "/fence", { refreshMs: 1000, now: clock });
    const guard = new BlobGuard(clock, fence);
    return { store, guard, fence, blobs: new BlobService(store, guard) };
  };
  const a = replica(() => now);
  const b = replica(() => now);
  const bytes = new TextEncoder().encode("blob");
  await a.store.putBlob(digest, bytes);
  await a.store.putLink("app", "layer", digest);
  const data = a.store.paths.blobData(digest);
  const link = a.store.paths.link("app", "layer", digest);

  assert.equal(await a.blobs.stat("app", digest), 4);
  assert.equal(await a.blobs.stat("app", digest), 4);
  assert.equal(shared.stats.get(data), 2, "putBlob's check and the first stat only");
  assert.equal(shared.stats.get(link), 2);

  // An unlink on another replica counts at once.
  await b.blobs.delete("app", digest);
  await assert.rejects(a.blobs.stat("app", digest), /BLOB_UNKNOWN|unknown/i);
  await a.store.putLink("app", "layer", digest);
  assert.equal(await a.blobs.stat("app", digest), 4);

  // While a holds its mark no collection (of any grace) on b removes the blob...
  assert.equal(await b.fence.claim(digest, now, now), false);
  // ...and once the window and the collector's margin are over one may, and a sees it gone.
  now += 2001;
  const remove = b.guard.claim(digest, now, now);
  assert.ok(remove);
  assert.equal(await remove(() => b.store.deleteBlob(digest)), true);
  await assert.rejects(a.blobs.stat("app", digest), /BLOB_UNKNOWN|unknown/i);
  assert.equal(shared.stats.get(data), 3, "the size is read again in the new window");
});

Deno.test("blobs: without replicas the size is read on every stat", async () => {
  const shared = new StatCounting();
  const store = new LayoutStore(shared);
  const blobs = new BlobService(store, new BlobGuard());
  await store.putBlob(digest, new TextEncoder().encode("blob"));
  await store.putLink("app", "layer", digest);
  shared.stats.clear();
  await blobs.stat("app", digest);
  await blobs.stat("app", digest);
  assert.equal(shared.stats.get(store.paths.blobData(digest)), 2);
});

Deno.test("blobs(replicas): a layer link found is trusted for the link window, an unlink elsewhere counts after it", async () => {
  const shared = new StatCounting();
  let now = 10_000;
  const clock = () => now;
  const replica = () => {
    const store = new LayoutStore(shared);
    const guard = new BlobGuard(clock, new ReplicaFence(shared, "/fence", { now: clock }));
    return { store, blobs: new BlobService(store, guard, { linkWindowMs: 5000, now: clock }) };
  };
  const a = replica();
  const b = replica();
  await a.store.putBlob(digest, new TextEncoder().encode("blob"));
  await a.store.putLink("app", "layer", digest);
  const link = a.store.paths.link("app", "layer", digest);

  assert.equal(await b.blobs.stat("app", digest), 4);
  assert.equal(await b.blobs.stat("app", digest), 4);
  assert.equal(shared.stats.get(link), 1, "the link is read once in its window");

  // Unlinked on a: b may still serve it until the window since its read ends, not after.
  await a.blobs.delete("app", digest);
  now += 4999;
  assert.equal(await b.blobs.stat("app", digest), 4);
  now += 1;
  await assert.rejects(b.blobs.stat("app", digest), /BLOB_UNKNOWN|unknown/i);
  // Gone on the replica that unlinked it at once; an absent link is never remembered.
  await assert.rejects(a.blobs.stat("app", digest), /BLOB_UNKNOWN|unknown/i);
  await a.store.putLink("app", "layer", digest);
  assert.equal(await b.blobs.stat("app", digest), 4, "a new link is seen at once");

  // An unlink on this replica counts here at once, whatever the window.
  await b.blobs.delete("app", digest);
  await assert.rejects(b.blobs.stat("app", digest), /BLOB_UNKNOWN|unknown/i);
});
