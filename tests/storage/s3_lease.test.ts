/**
 * Coordination through shared storage: the lease (one online collection at a time, on S3's
 * conditional writes) and the replica fence (uses and sweeps of one blob from two processes).
 *
 * @module
 */
import assert from "node:assert/strict";
import { S3Driver } from "../../src/storage/drivers/s3.ts";
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
  const user = new ReplicaFence(shared, "/f");
  const collector = new ReplicaFence(shared, "/f");
  const since = Date.now() - 1000;
  assert.equal(await collector.claim(X, since), true, "never used: may go");
  await collector.release(X);
  await user.use([X]);
  assert.equal(await collector.claim(X, since), false, "used since the cut-off: kept");
  assert.equal(await shared.stat(`/f/sweeping/sha256/${X.hex}`), undefined, "claim withdrawn");
  assert.equal(await collector.claim(X, Date.now() + 1000), true, "used before a later cut-off");
  await collector.release(X);
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
