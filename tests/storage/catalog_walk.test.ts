/**
 * The filesystem store's catalog: a walk of the repository tree from the `last` marker, shared
 * safely with other processes and programs (no index to go stale).
 *
 * @module
 */
import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { fsStore } from "../../src/storage/open_store.ts";
import { withTempDir } from "../helpers/temp.ts";

const digest = digestBytes(new TextEncoder().encode("manifest"));

const withRoot = (body: (root: string) => Promise<void>) => withTempDir("berth-catalog-", body);

/** Make a repository the way another program would: folders and a link file. */
async function foreignRepository(root: string, name: string): Promise<void> {
  const dir = `${root}/docker/registry/v2/repositories/${name}/_layers/sha256/${digest.hex}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/link`, digest.value);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("catalog walk: a second store on the same root sees what the first creates", async () => {
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

Deno.test("catalog walk: folders without a repository, removed ones and stray files are skipped", async () => {
  await withRoot(async (root) => {
    const store = fsStore(root);
    for (const name of ["a", "b", "c"]) await store.putTag(name, "latest", digest);
    const repositories = `${root}/docker/registry/v2/repositories`;
    await Deno.mkdir(`${repositories}/empty/nested`, { recursive: true });
    await Deno.writeTextFile(`${repositories}/file`, "not a folder");
    await Deno.mkdir(`${repositories}/Upper Case/_layers`, { recursive: true });
    // A journal an older berth left: not read.
    await Deno.mkdir(`${root}/docker/registry/v2/_berth`, { recursive: true });
    await Deno.writeTextFile(
      `${root}/docker/registry/v2/_berth/catalog`,
      "berth-catalog v1\n+ghost\n",
    );
    await Deno.remove(root + store.paths.repo("b"), { recursive: true });
    assert.deepEqual(await store.repositoryPage(undefined, 10), ["a", "c"]);
    assert.deepEqual(await store.repositoryPage("a", 1), ["c"]);
  });
});

Deno.test("catalog walk: repositories another program creates in a large, cached folder appear at once", async () => {
  await withRoot(async (root) => {
    const store = fsStore(root);
    const names = Array.from({ length: 300 }, (_, i) => `ns/r${String(i).padStart(3, "0")}`);
    for (const name of names) await foreignRepository(root, name);
    // Old enough for the listing to be kept (it is kept only once the folder has settled).
    await pause(150);
    assert.deepEqual(await store.repositoryPage(undefined, 3), names.slice(0, 3));
    assert.deepEqual(await store.repositoryPage("ns/r150", 2), ["ns/r151", "ns/r152"]);
    await foreignRepository(root, "ns/r150-b");
    await foreignRepository(root, "ns/r150/c");
    await Deno.remove(`${root}/docker/registry/v2/repositories/ns/r151`, { recursive: true });
    assert.deepEqual(await store.repositoryPage("ns/r150", 3), [
      "ns/r150-b",
      "ns/r150/c",
      "ns/r152",
    ]);
    store.close();
  });
});

Deno.test("catalog walk: changes inside kept repository folders, behind the cache's back, show on the next page", async () => {
  await withRoot(async (root) => {
    const store = fsStore(root);
    for (const name of ["solo", "team/app", "team/web"]) await foreignRepository(root, name);
    // Old enough for every folder's listing to be kept.
    await pause(150);
    const all = ["solo", "team/app", "team/web"];
    assert.deepEqual(await store.repositoryPage(undefined, 10), all);
    assert.deepEqual(await store.repositoryPage(undefined, 10), all);
    // A namespace becomes a repository, a repository gains a nested one, one loses its marker.
    await foreignRepository(root, "team");
    await foreignRepository(root, "solo/nested");
    await Deno.remove(`${root}/docker/registry/v2/repositories/team/web/_layers`, {
      recursive: true,
    });
    assert.deepEqual(await store.repositoryPage(undefined, 10), [
      "solo",
      "solo/nested",
      "team",
      "team/app",
    ]);
    assert.deepEqual(await store.repositoryPage("solo", 2), ["solo/nested", "team"]);
    store.close();
  });
});
