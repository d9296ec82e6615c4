import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { fsStore } from "../../src/storage/open_store.ts";
import { TagEpoch } from "../../src/storage/drivers/fs/tag_epoch.ts";
import { Arrivals } from "../../src/http/arrivals.ts";
import { withTempDir } from "../helpers/temp.ts";

const withDir = (body: (dir: string) => Promise<void>) => withTempDir("berth-tag-epoch-", body);

Deno.test("tag epoch: starts at 0 (creating its file) and grows with every bump, for all readers", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/_berth/tag-changes`;
    const reader = new TagEpoch(path);
    const writer = new TagEpoch(path);
    try {
      assert.equal(reader.current(), 0);
      assert.equal((await Deno.stat(path)).size, 0);
      await writer.bump();
      await writer.bump();
      assert.equal(reader.current(), 2);
      assert.equal(writer.current(), 2);
    } finally {
      reader.close();
      writer.close();
    }
  });
});

Deno.test("tag epoch: a bump creates the file and its folder when missing", async () => {
  await withDir(async (dir) => {
    const epoch = new TagEpoch(`${dir}/_berth/tag-changes`);
    try {
      await epoch.bump();
      assert.equal(epoch.current(), 1);
    } finally {
      epoch.close();
    }
  });
});

Deno.test("tag epoch: a replaced file is noticed within a second", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/tag-changes`;
    const epoch = new TagEpoch(path);
    try {
      await new TagEpoch(path).bump();
      assert.equal(epoch.current(), 1);
      await Deno.remove(path);
      await Deno.writeTextFile(path, "+++");
      await new Promise((resolve) => setTimeout(resolve, 1050));
      assert.equal(epoch.current(), 3);
    } finally {
      epoch.close();
    }
  });
});

Deno.test("fs store: a cached tag moved or deleted by a second store is seen at once", async () => {
  await withDir(async (root) => {
    const a = fsStore(root);
    const b = fsStore(root);
    const one = digestBytes(new TextEncoder().encode("one"));
    const two = digestBytes(new TextEncoder().encode("two"));
    try {
      await a.putTag("repo", "v1", one);
      // Old enough to be cached (see SETTLE_MS), then read twice: the second read is a hit.
      const past = new Date(Date.now() - 60_000);
      await Deno.utime(root + a.paths.tagCurrent("repo", "v1"), past, past);
      assert.equal((await a.getTag("repo", "v1"))?.value, one.value);
      assert.equal((await a.getTag("repo", "v1"))?.value, one.value);
      await b.putTag("repo", "v1", two);
      await Deno.utime(root + a.paths.tagCurrent("repo", "v1"), past, past);
      assert.equal((await a.getTag("repo", "v1"))?.value, two.value);
      assert.equal((await a.getTag("repo", "v1"))?.value, two.value);
      assert.equal(await b.deleteTag("repo", "v1"), true);
      assert.equal(await a.getTag("repo", "v1"), undefined);
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("tag epoch: a bump that cannot be written does not throw; the epoch is then never trusted", async () => {
  await withDir(async (dir) => {
    // `_berth` as a file: the epoch's folder cannot be created (as on a read-only disk).
    await Deno.writeTextFile(`${dir}/_berth`, "in the way");
    const epoch = new TagEpoch(`${dir}/_berth/tag-changes`);
    try {
      assert.ok(Number.isNaN(epoch.current()));
      await epoch.bump();
      assert.ok(Number.isNaN(epoch.current()));
    } finally {
      epoch.close();
    }
  });
});

Deno.test("tag epoch: with a read count, one read serves lookups until the server reads again", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/tag-changes`;
    const arrivals = new Arrivals();
    let now = 1000;
    const reader = new TagEpoch(path, arrivals, () => now);
    const writer = new TagEpoch(path);
    try {
      assert.equal(reader.current(), 0);
      await writer.bump();
      // No request came in since the last read: every lookup so far arrived before the change.
      assert.equal(reader.current(), 0);
      // A read from a client (a request that may have been sent after the change): read again.
      arrivals.note();
      assert.equal(reader.current(), 1);
      await writer.bump();
      assert.equal(reader.current(), 1);
      // Work no request started (background jobs) sees changes within the millisecond.
      now++;
      assert.equal(reader.current(), 2);
      // This process's own change is seen at once.
      await reader.bump();
      assert.equal(reader.current(), 3);
    } finally {
      reader.close();
      writer.close();
    }
  });
});
