/**
 * The handshake between garbage collection and blob users.
 *
 * @module
 */
import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { BlobGuard } from "../../src/services/blob_guard.ts";

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
