/**
 * The filesystem store's catalog index: journal shared between processes, rebuilt by one walk.
 *
 * @module
 */
import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { fsStore } from "../../src/storage/open_store.ts";
import { withTempDir } from "../helpers/temp.ts";

const digest = digestBytes(new TextEncoder().encode("manifest"));

const withRoot = (body: (root: string) => Promise<void>) => withTempDir("berth-catalog-", body);

Deno.test("catalog index: a second store on the same root sees what the first creates", async () => {
  await withRoot(async (root) => {
    const first = fsStore(root);
    const second = fsStore(root);
    await first.putTag("b", "latest", digest);
    assert.deepEqual(await second.repositoryPage(undefined, 10), ["b"]);
    await first.putTag("a", "latest", digest);
    await first.putLink("c/d", "layer", digest);
    assert.deepEqual(await second.repositoryPage(undefined, 10), ["a", "b", "c/d"]);
    await second.putTag("0", "latest", digest);
    assert.deepEqual(await first.repositoryPage(undefined, 10), ["0", "a", "b", "c/d"]);
  });
});

Deno.test("catalog index: a data directory without a journal is indexed by one walk", async () => {
  await withRoot(async (root) => {
    const writer = fsStore(root);
    for (const name of ["x/y", "a", "m"]) await writer.putTag(name, "latest", digest);
    await Deno.remove(root + writer.paths.catalog);
    const reader = fsStore(root);
    assert.deepEqual(await reader.repositoryPage(undefined, 10), ["a", "m", "x/y"]);
    const journal = await Deno.readTextFile(root + writer.paths.catalog);
    assert.match(journal, /^berth-catalog v1\n/);
    await writer.putTag("b", "latest", digest);
    assert.deepEqual(await reader.repositoryPage("a", 2), ["b", "m"]);
  });
});

Deno.test("catalog index: a journal without its header is rebuilt, keeping its records", async () => {
  await withRoot(async (root) => {
    const writer = fsStore(root);
    await writer.putTag("a", "latest", digest);
    await Deno.writeTextFile(root + writer.paths.catalog, "\n+a\n\n+ghost\n");
    const reader = fsStore(root);
    assert.deepEqual(await reader.repositoryPage(undefined, 10), ["a"]);
    const journal = await Deno.readTextFile(root + writer.paths.catalog);
    assert.match(journal, /^berth-catalog v1\n\+a\n/);
  });
});

Deno.test("catalog index: a repository removed from disk is skipped", async () => {
  await withRoot(async (root) => {
    const store = fsStore(root);
    for (const name of ["a", "b", "c"]) await store.putTag(name, "latest", digest);
    assert.deepEqual(await store.repositoryPage(undefined, 10), ["a", "b", "c"]);
    await Deno.remove(root + store.paths.repo("b"), { recursive: true });
    assert.deepEqual(await store.repositoryPage(undefined, 2), ["a", "c"]);
  });
});

Deno.test("catalog index: a journal that cannot be written never fails a push; pages come from a walk", async () => {
  await withRoot(async (root) => {
    const store = fsStore(root);
    await Deno.mkdir(`${root}/docker/registry/v2`, { recursive: true });
    // `_berth` as a file: the journal's folder cannot be created (as on a read-only disk).
    await Deno.writeTextFile(`${root}/docker/registry/v2/_berth`, "in the way");
    await store.putTag("b", "latest", digest);
    await store.putTag("a", "latest", digest);
    assert.deepEqual(await store.repositoryPage(undefined, 10), ["a", "b"]);
    await store.putTag("c", "latest", digest);
    assert.deepEqual(await store.repositoryPage("a", 10), ["b", "c"]);
  });
});

/** Make a repository the way another program would: folders and a link file, no journal. */
async function foreignRepository(root: string, name: string): Promise<void> {
  const dir = `${root}/docker/registry/v2/repositories/${name}/_layers/sha256/${digest.hex}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/link`, digest.value);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("catalog index: repositories another program creates appear without a rebuild", async () => {
  await withRoot(async (root) => {
    const store = fsStore(root);
    try {
      await store.putTag("library/app", "latest", digest);
      await store.putTag("solo", "latest", digest);
      assert.deepEqual(await store.repositoryPage(undefined, 10), ["library/app", "solo"]);
      // Top level, in a known namespace, in a new namespace, and one made in two steps.
      await foreignRepository(root, "ext");
      await foreignRepository(root, "library/other");
      await foreignRepository(root, "team/a/b");
      await Deno.mkdir(`${root}/docker/registry/v2/repositories/later`, { recursive: true });
      await pause(300);
      assert.deepEqual(await store.repositoryPage(undefined, 10), [
        "ext",
        "library/app",
        "library/other",
        "solo",
        "team/a/b",
      ]);
      await pause(300);
      await foreignRepository(root, "later");
      await foreignRepository(root, "library/third");
      await pause(300);
      const page = await store.repositoryPage(undefined, 10);
      assert.ok(page.includes("later") && page.includes("library/third"), page.join(","));
      // Recorded in the journal: a fresh process sees them without looking.
      const journal = await Deno.readTextFile(root + store.paths.catalog);
      assert.match(journal, /\+team\/a\/b\n/);
    } finally {
      store.close();
    }
  });
});
