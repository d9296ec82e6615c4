/**
 * The layout over storage shared by several processes (replicas over one bucket): two
 * `LayoutStore`s over one driver stand for two replicas. Nothing either keeps in memory may hide
 * what the other wrote.
 *
 * @module
 */
import assert from "node:assert/strict";
import { digestBytes, Digester } from "../../src/oci/digest.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { FsDriver } from "../../src/storage/drivers/fs.ts";
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { LayoutStore } from "../../src/storage/layout/layout_store.ts";
import { fsStore } from "../../src/storage/open_store.ts";
import type { Store } from "../../src/storage/store.ts";
import { withTempDir } from "../helpers/temp.ts";

const encoder = new TextEncoder();
const one = digestBytes(encoder.encode("one"));
const two = digestBytes(encoder.encode("two"));

function stream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Run `body` with two replicas over memory, over a plain fs driver, and as two fs stores. */
async function replicas(body: (a: Store, b: Store) => Promise<void>): Promise<void> {
  const memory = new MemoryDriver();
  await body(new LayoutStore(memory), new LayoutStore(memory));
  await withTempDir("berth-shared-", async (root) => {
    const driver: StorageDriver = new FsDriver(root);
    await body(new LayoutStore(driver), new LayoutStore(driver));
  });
  await withTempDir("berth-shared-", async (root) => {
    const a = fsStore(root);
    const b = fsStore(root);
    try {
      await body(a, b);
    } finally {
      a.close();
      b.close();
    }
  });
}

Deno.test("layout(shared): a tag put, moved or deleted on one replica is seen on the other at once", async () => {
  await replicas(async (a, b) => {
    await a.putTag("team/app", "latest", one);
    assert.equal((await b.getTag("team/app", "latest"))?.value, one.value);
    await b.putTag("team/app", "latest", two);
    assert.equal((await a.getTag("team/app", "latest"))?.value, two.value);
    assert.deepEqual(await a.listTags("team/app"), ["latest"]);
    await a.putTag("team/app", "v2", two);
    assert.deepEqual((await b.listTags("team/app"))?.sort(), ["latest", "v2"]);
    assert.equal(await b.deleteTag("team/app", "latest"), true);
    assert.equal(await a.getTag("team/app", "latest"), undefined);
    assert.deepEqual(await a.listTags("team/app"), ["v2"]);
  });
});

Deno.test("layout(shared): a repository created on one replica is in the other's catalog at once", async () => {
  await replicas(async (a, b) => {
    await a.putTag("first", "latest", one);
    assert.deepEqual(await b.repositoryPage(undefined, 10), ["first"]);
    await b.putLink("second/repo", "layer", two);
    await a.createUpload("third", "session-1", new Date());
    assert.deepEqual(await a.repositoryPage(undefined, 10), ["first", "second/repo", "third"]);
    assert.deepEqual(await b.repositoryPage("first", 1), ["second/repo"]);
  });
});

Deno.test("layout(shared): an upload whose chunks alternate replicas completes with the right digest", async () => {
  await replicas(async (a, b) => {
    const parts = [encoder.encode("part one;"), encoder.encode("part two;"), encoder.encode("3")];
    const hash = new Digester();
    for (const part of parts) hash.update(part);
    const digest = hash.peek();
    await a.createUpload("up/load", "alternating", new Date());
    let size = 0;
    for (const [i, part] of parts.entries()) {
      const replica = i % 2 === 0 ? b : a;
      assert.equal((await replica.statUpload("up/load", "alternating"))?.size, size);
      size = await replica.appendUpload("up/load", "alternating", size, stream(part));
    }
    // The replica that commits re-hashes what the others wrote.
    const again = new Digester();
    for await (const bytes of (await a.readUpload("up/load", "alternating"))!) again.update(bytes);
    assert.equal(again.peek().value, digest.value);
    await a.commitUpload("up/load", "alternating", digest);
    assert.equal(await b.statUpload("up/load", "alternating"), undefined);
    assert.equal(await b.hasLink("up/load", "layer", digest), true);
    assert.equal(await b.statBlob(digest), size);
  });
});
