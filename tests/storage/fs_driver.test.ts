/**
 * Runs the driver conformance suite against {@link FsDriver}, each test in its own temporary
 * directory; and what only the fs driver does (background flushes of long uploads).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { FsDriver } from "../../src/storage/drivers/fs.ts";
import { WRITE_BATCH } from "../../src/storage/drivers/batch_writer.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("fs", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-fs-driver-" });
  return {
    driver: new FsDriver(root),
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
});

Deno.test("fs driver: an upload of several write batches, in two writes, commits its exact bytes", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-fs-batches-" });
  try {
    const driver = new FsDriver(root);
    // Two writes on two writers (two PATCHes), the first of several batches and a remainder.
    const sizes = [3 * WRITE_BATCH + 3 * 65536 + 17, 5 * 65536 + 3];
    const hash = createHash("sha256");
    let expected = 0;
    for (const [i, size] of sizes.entries()) {
      const bytes = new Uint8Array(size);
      for (let at = 0; at < size; at += 65536) {
        crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
      }
      hash.update(bytes);
      const writer = await driver.writer("/up/data", { append: i > 0 });
      assert.ok(writer);
      assert.equal(writer.size, expected);
      expected += size;
      assert.equal(await writer.write(new Blob([bytes]).stream()), expected);
      await writer.close();
    }
    const writer = await driver.writer("/up/data", { append: true });
    assert.ok(writer);
    assert.equal(writer.size, expected);
    await writer.commit();
    const stored = createHash("sha256");
    for await (const chunk of (await Deno.open(`${root}/up/data`)).readable) stored.update(chunk);
    assert.equal(stored.digest("hex"), hash.digest("hex"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("fs driver: listSorted with likely folders answers them when the link count says they are all", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-fs-likely-" });
  const driver = new FsDriver(root);
  try {
    const likely = ["_layers", "_manifests", "_uploads"];
    await Deno.mkdir(`${root}/repo/_layers`, { recursive: true });
    await Deno.mkdir(`${root}/repo/_manifests`);
    await Deno.writeTextFile(`${root}/repo/note`, "a file, not a folder");
    // Only the marker folders: they are the answer (the file is left out).
    assert.deepEqual(await driver.listSorted("/repo", { likelyFolders: likely }), [
      "_layers",
      "_manifests",
    ]);
    assert.deepEqual(await driver.listSorted("/repo"), ["_layers", "_manifests", "note"]);
    // Kept apart once settled: each way of asking keeps its own answer.
    await Deno.utime(`${root}/repo`, new Date(), new Date(Date.now() - 60_000));
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await driver.listSorted("/repo", { likelyFolders: likely }), [
        "_layers",
        "_manifests",
      ]);
      assert.deepEqual(await driver.listSorted("/repo"), ["_layers", "_manifests", "note"]);
    }
    // Another sub-folder (a nested repository): the folder is read whole.
    await Deno.mkdir(`${root}/ns/_layers`, { recursive: true });
    await Deno.mkdir(`${root}/ns/inner/_manifests`, { recursive: true });
    assert.deepEqual(await driver.listSorted("/ns", { likelyFolders: likely }), [
      "_layers",
      "inner",
    ]);
    // No sub-folders at all: none.
    await Deno.mkdir(`${root}/empty`);
    await Deno.writeTextFile(`${root}/empty/file`, "x");
    assert.deepEqual(await driver.listSorted("/empty", { likelyFolders: likely }), []);
    assert.equal(await driver.listSorted("/missing", { likelyFolders: likely }), undefined);
  } finally {
    driver.close();
    await Deno.remove(root, { recursive: true });
  }
});
