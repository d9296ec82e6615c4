/**
 * Runs the store conformance suite against {@link FsStore}, each test in its own temporary
 * directory.
 *
 * @module
 */
import { FsStore } from "../../src/storage/fs/fs_store.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite("fs", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-fs-store-" });
  return {
    store: new FsStore(root),
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
});
