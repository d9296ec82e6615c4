import assert from "node:assert/strict";
import { LinkCache } from "../../src/storage/fs/link_cache.ts";
import { SETTLE_MS } from "../../src/storage/fs/listing_cache.ts";

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 50));
const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "berth-link-cache-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

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
