import assert from "node:assert/strict";
import { LinkCache, RECHECK_MS } from "../../src/storage/drivers/fs/link_cache.ts";
import { SETTLE_MS } from "../../src/storage/drivers/fs/listing_cache.ts";
import { withTempDir } from "../helpers/temp.ts";

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 50));
const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

const withDir = (body: (dir: string) => Promise<void>) => withTempDir("berth-link-cache-", body);

Deno.test("link cache: an absent file reads as undefined, also after it was cached", async () => {
  await withDir(async (dir) => {
    const cache = new LinkCache();
    assert.equal(cache.read(`${dir}/link`), undefined);
    await Deno.writeTextFile(`${dir}/link`, A);
    await settle();
    assert.equal(cache.read(`${dir}/link`), A);
    await Deno.remove(`${dir}/link`);
    assert.equal(cache.read(`${dir}/link`), undefined);
  });
});

Deno.test("link cache: a link replaced by rename (berth) is seen at once", async () => {
  await withDir(async (dir) => {
    const cache = new LinkCache();
    await Deno.writeTextFile(`${dir}/link`, A);
    await settle();
    assert.equal(cache.read(`${dir}/link`), A);
    await Deno.writeTextFile(`${dir}/next`, B);
    await Deno.rename(`${dir}/next`, `${dir}/link`);
    assert.equal(cache.read(`${dir}/link`), B);
  });
});

Deno.test("link cache: a link rewritten in place with the same size (distribution) is seen", async () => {
  await withDir(async (dir) => {
    const cache = new LinkCache();
    await Deno.writeTextFile(`${dir}/link`, A);
    await settle();
    assert.equal(cache.read(`${dir}/link`), A);
    const inode = Deno.statSync(`${dir}/link`).ino;
    await Deno.writeTextFile(`${dir}/link`, B);
    assert.equal(Deno.statSync(`${dir}/link`).ino, inode);
    assert.equal(cache.read(`${dir}/link`), B);
  });
});

Deno.test("link cache: a link changed within the settle time is read from disk every time", async () => {
  await withDir(async (dir) => {
    const cache = new LinkCache();
    await Deno.writeTextFile(`${dir}/link`, A);
    assert.equal(cache.read(`${dir}/link`), A);
    await Deno.writeTextFile(`${dir}/link`, B);
    assert.equal(cache.read(`${dir}/link`), B);
  });
});

Deno.test("link cache: at an unchanged epoch an entry is served from memory for RECHECK_MS", async () => {
  await withDir(async (dir) => {
    let now = 1_000_000;
    const cache = new LinkCache(16, () => now);
    await Deno.writeTextFile(`${dir}/link`, A);
    await settle();
    assert.equal(cache.read(`${dir}/link`, 7), A);
    // Rewritten in place by a program that does not bump the epoch: not looked at yet...
    await Deno.writeTextFile(`${dir}/link`, B);
    now += RECHECK_MS - 1;
    assert.equal(cache.read(`${dir}/link`, 7), A);
    // ...but seen as soon as the epoch moves, or the entry's check is RECHECK_MS old.
    assert.equal(cache.read(`${dir}/link`, 8), B);
    await settle();
    assert.equal(cache.read(`${dir}/link`, 8), B);
    await Deno.writeTextFile(`${dir}/link`, A);
    now += RECHECK_MS;
    assert.equal(cache.read(`${dir}/link`, 8), A);
  });
});

Deno.test("link cache: without an epoch (NaN) every read checks the file", async () => {
  await withDir(async (dir) => {
    const cache = new LinkCache(16, () => 0);
    await Deno.writeTextFile(`${dir}/link`, A);
    await settle();
    assert.equal(cache.read(`${dir}/link`, NaN), A);
    await Deno.remove(`${dir}/link`);
    assert.equal(cache.read(`${dir}/link`, NaN), undefined);
  });
});
