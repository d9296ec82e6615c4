/**
 * Runs the store conformance suite against the layout as object stores use it: the filesystem
 * driver without its caches and the shared-storage catalog (a walk per page), and the memory
 * driver in shared mode. This is the path the S3 driver takes.
 *
 * @module
 */
import { FsDriver } from "../../src/storage/drivers/fs.ts";
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { LayoutStore } from "../../src/storage/layout/layout_store.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite("layout over a plain fs driver, shared", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-layout-plain-" });
  return {
    store: new LayoutStore(new FsDriver(root)),
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
});

storeSuite(
  "layout over memory, shared",
  () =>
    Promise.resolve({
      store: new LayoutStore(new MemoryDriver()),
      cleanup: () => Promise.resolve(),
    }),
);
