import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { fsStore } from "../../src/storage/open_store.ts";
import { ListingCache, SETTLE_MS } from "../../src/storage/drivers/fs/listing_cache.ts";

/** A temp folder with subfolders, and a reader of it that counts its calls. */
async function folder(...names: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "berth-listing-" });
  for (const name of names) await Deno.mkdir(`${dir}/${name}`);
  const state = { reads: 0 };
  const read = async () => {
    state.reads++;
    const found: string[] = [];
    for await (const entry of Deno.readDir(dir)) found.push(entry.name);
    return found;
  };
  const settle = () => Deno.utime(dir, new Date(), new Date(Date.now() - 10 * SETTLE_MS));
  return {
    dir,
    state,
    read,
    settle,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("listing cache: an unchanged folder is listed once, sorted", async () => {
  await using f = await folder("b", "a", "c");
  await f.settle();
  const cache = new ListingCache();
  assert.deepEqual(await cache.list(f.dir, f.read), ["a", "b", "c"]);
  assert.deepEqual(await cache.list(f.dir, f.read), ["a", "b", "c"]);
  assert.equal(f.state.reads, 1);
});

Deno.test("listing cache: an entry added by anyone is seen on the next call", async () => {
  await using f = await folder("a");
  await f.settle();
  const cache = new ListingCache();
  assert.deepEqual(await cache.list(f.dir, f.read), ["a"]);
  await Deno.mkdir(`${f.dir}/b`);
  assert.deepEqual(await cache.list(f.dir, f.read), ["a", "b"]);
  await Deno.remove(`${f.dir}/a`);
  assert.deepEqual(await cache.list(f.dir, f.read), ["b"]);
  assert.equal(f.state.reads, 3);
});

Deno.test("listing cache: a folder changed within the settle time is read every time", async () => {
  await using f = await folder("a");
  const cache = new ListingCache();
  await cache.list(f.dir, f.read);
  await cache.list(f.dir, f.read);
  assert.equal(f.state.reads, 2);
});

Deno.test("listing cache: callers get their own array; a missing folder is undefined", async () => {
  await using f = await folder("a", "b");
  await f.settle();
  const cache = new ListingCache();
  const first = await cache.list(f.dir, f.read);
  first?.push("zzz");
  assert.deepEqual(await cache.list(f.dir, f.read), ["a", "b"]);
  assert.equal(await cache.list(`${f.dir}/missing`, f.read), undefined);
  await Deno.remove(f.dir, { recursive: true });
  await Deno.mkdir(f.dir);
  assert.deepEqual(await cache.list(f.dir, f.read), []);
});

Deno.test("fs store: two stores on one data directory see each other's tag changes at once", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-two-stores-" });
  try {
    const a = fsStore(root);
    const b = fsStore(root);
    const one = digestBytes(new TextEncoder().encode("one"));
    const two = digestBytes(new TextEncoder().encode("two"));
    await a.putTag("repo", "v1", one);
    await Deno.utime(
      root + a.paths.tags("repo"),
      new Date(),
      new Date(Date.now() - 10 * SETTLE_MS),
    );
    assert.deepEqual(await a.listTags("repo"), ["v1"]);
    assert.deepEqual(await a.listTags("repo"), ["v1"]);
    await b.putTag("repo", "v2", two);
    await b.putTag("repo", "v1", two);
    assert.deepEqual(await a.listTags("repo"), ["v1", "v2"]);
    assert.equal((await a.getTag("repo", "v1"))?.value, two.value);
    await b.deleteTag("repo", "v2");
    assert.deepEqual(await a.listTags("repo"), ["v1"]);
    assert.equal(await a.getTag("repo", "v2"), undefined);
    a.close();
    b.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("listing cache: the least recently used folders go once the names bound is passed", async () => {
  await using a = await folder("a1", "a2");
  await using b = await folder("b1", "b2");
  await using big = await folder("c1", "c2", "c3", "c4");
  for (const f of [a, b, big]) await f.settle();
  const cache = new ListingCache({ maxNames: 3 });
  await cache.sorted(a.dir, a.read);
  await cache.sorted(a.dir, a.read);
  assert.equal(a.state.reads, 1);
  await cache.sorted(b.dir, b.read);
  await cache.sorted(a.dir, a.read);
  assert.equal(a.state.reads, 2);
  // One folder over the bound alone is still kept (until another is read).
  await cache.sorted(big.dir, big.read);
  await cache.sorted(big.dir, big.read);
  assert.equal(big.state.reads, 1);
  await cache.sorted(b.dir, b.read);
  assert.equal(b.state.reads, 2);
});
