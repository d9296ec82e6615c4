/**
 * Runs the store conformance suite against the layout over the filesystem driver, each test in
 * its own temporary directory.
 *
 * @module
 */
import { fsStore } from "../../src/storage/open_store.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite("fs", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-fs-store-" });
  return {
    store: fsStore(root),
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
});
