/**
 * Coordination through shared storage: the lease (one online collection at a time, on S3's
 * conditional writes) and the replica fence (uses and sweeps of one blob from two processes).
 *
 * @module
 */
import assert from "node:assert/strict";
import { S3Driver } from "../../src/storage/drivers/s3.ts";
import type { ReadOptions } from "../../src/storage/driver.ts";
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { StorageLease } from "../../src/storage/lease.ts";
import { ReplicaFence } from "../../src/services/replica_fence.ts";
import { parseDigest } from "../../src/oci/digest.ts";
import { s3Options, skipWithoutS3, tempBucket } from "../helpers/s3.ts";

const ignore = skipWithoutS3();
const DIR = "/docker/registry/v2/_berth/leases/gc";

Deno.test({
  name: "lease(s3): one holder at a time; released or expired, another takes it over",
  ignore,
  async fn() {
    const bucket = await tempBucket();
    try {
      const driver = new S3Driver(s3Options(bucket.name));
      const a = new StorageLease(driver, DIR, "replica-a", 60_000);
      const b = new StorageLease(driver, DIR, "replica-b", 60_000);
      assert.equal(await a.acquire(), true);
      assert.equal(await b.acquire(), false);
      assert.equal(await a.renew(), true);
      assert.equal(await a.acquire(), true, "its own holder may acquire again");
      await a.release();
      assert.equal(a.held, false);
      assert.equal(await b.acquire(), true);
      assert.equal(await a.acquire(), false);
      // b's holder stops renewing; after the expiry a takes over and b learns it lost the lease.
      const late = new StorageLease(driver, DIR, "replica-c", 60_000);
      assert.equal(await late.acquire(), false, "b's lease is still running by the clock");
      const c = new StorageLease(driver, DIR, "replica-c", 60_000, () => Date.now() + 120_000);
      assert.equal(await c.acquire(), true, "b's lease has expired by c's clock");
      assert.equal(await b.renew(), false);
    } finally {
      await bucket.remove();
    }
  },
});

Deno.test({
  name: "lease(s3): of many contenders at once exactly one wins",
  ignore,
  async fn() {
    const bucket = await tempBucket();
    try {
      const driver = new S3Driver(s3Options(bucket.name));
      const handles = Array.from(
        { length: 6 },
        (_, i) => new StorageLease(new S3Driver(s3Options(bucket.name)), DIR, `r${i}`, 60_000),
      );
      const won = await Promise.all(handles.map((h) => h.acquire()));
      assert.equal(won.filter(Boolean).length, 1, JSON.stringify(won));
      assert.ok(await driver.list(DIR));
    } finally {
      await bucket.remove();
    }
  },
});

const X = parseDigest(`sha256:${"ab".repeat(32)}`);

Deno.test("fence: a sweep spares a blob another process used after the cut-off", async () => {
  const shared = new MemoryDriver();
  const user = new ReplicaFence(shared, "/f", { refreshMs: 100 });
  const collector = new ReplicaFence(shared, "/f");
  const since = Date.now() - 1000;
  assert.equal(await collector.claim(X, since), true, "never used: may go");
  await collector.release(X);
  await user.use([X]);
  assert.equal(await collector.claim(X, since), false, "used since the cut-off: kept");
  assert.equal(await shared.stat(`/f/sweeping/sha256/${X.hex}`), undefined, "claim withdrawn");
  const later = Date.now() + 1000;
  assert.equal(await collector.claim(X, later, later), true, "used before a later cut-off");
  await collector.release(X);
});

/** A memory driver that records the calls made to it. */
class CountingDriver extends MemoryDriver {
  readonly calls: string[] = [];
  override getContent(path: string) {
    this.calls.push(`get ${path}`);
    return super.getContent(path);
  }
  override putContent(path: string, content: Uint8Array) {
    this.calls.push(`put ${path}`);
    return super.putContent(path, content);
  }
  override reader(path: string, options?: ReadOptions) {
    this.calls.push(`read ${path}`);
    return super.reader(path, options);
  }
}

Deno.test("fence: a use within the window makes no storage call, and holds the blob", async () => {
  const shared = new CountingDriver();
  let now = 10_000;
  const user = new ReplicaFence(shared, "/f", { refreshMs: 1000, now: () => now });
  assert.equal(user.held(X), undefined);
  await user.use([X]);
  assert.deepEqual(shared.calls, [
    `put /f/uses/sha256/${X.hex}`,
    `read /f/sweeping/sha256/${X.hex}`,
  ]);
  assert.equal(user.held(X), 10_000);
  now = 10_999;
  await user.use([X]);
  assert.equal(shared.calls.length, 2, "within the window: nothing written or read");
  assert.equal(user.held(X), 10_000);
  now = 11_000;
  assert.equal(user.held(X), undefined, "the window is over");
  await user.use([X]);
  assert.equal(shared.calls.length, 4, "the mark is written and sweeps checked again");
  assert.equal(user.held(X), 11_000);
});

Deno.test("fence: a collection of any grace spares a blob within two windows of a mark", async () => {
  const shared = new MemoryDriver();
  const user = new ReplicaFence(shared, "/f", { refreshMs: 1000, now: () => 10_000 });
  await user.use([X]);
  // The user skips its sweep checks until 11,000: a grace of 0 must not remove X meanwhile.
  const at = (t: number) => new ReplicaFence(shared, "/f", { now: () => t });
  for (const start of [10_000, 10_999, 11_500, 12_000]) {
    assert.equal(await at(start).claim(X, start, start), false, `grace 0 at ${start}: kept`);
  }
  assert.equal(await at(12_001).claim(X, 12_001, 12_001), true, "two windows on: may go");
  await at(12_001).release(X);
  // A collection that started before the use (its mark phase missed a manifest pushed since)
  // and claims X long after: spared, whatever its grace.
  assert.equal(await at(60_000).claim(X, 9_500, 9_500), false);
});

Deno.test("fence: a mark without a window (older berth) counts by its time alone", async () => {
  const shared = new MemoryDriver();
  await shared.putContent(`/f/uses/sha256/${X.hex}`, new TextEncoder().encode("10000"));
  const collector = new ReplicaFence(shared, "/f", { now: () => 10_500 });
  assert.equal(await collector.claim(X, 10_000, 10_500), false, "used at the cut-off");
  assert.equal(await collector.claim(X, 10_001, 10_001), true, "used before it");
});

Deno.test("fence: a use waits while another process sweeps the blob", async () => {
  const shared = new MemoryDriver();
  const user = new ReplicaFence(shared, "/f");
  const collector = new ReplicaFence(shared, "/f");
  assert.equal(await collector.claim(X, Date.now()), true);
  let used = false;
  const use = user.use([X]).then(() => (used = true));
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(used, false, "the use waits for the sweep");
  await collector.release(X);
  await use;
  assert.equal(used, true);
});

Deno.test("fence: a sweep that outlasts the wait leaves the blob not held", async () => {
  const shared = new MemoryDriver();
  const collector = new ReplicaFence(shared, "/f");
  const user = new ReplicaFence(shared, "/f", { waitMs: 150 });
  assert.equal(await collector.claim(X, Date.now()), true);
  await user.use([X]);
  assert.equal(user.held(X), undefined, "the use went on, but the blob may still go");
  await collector.release(X);
  await user.use([X]);
  assert.ok(user.held(X));
});
