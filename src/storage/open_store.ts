/**
 * Builds a {@link Store}: a driver with the layout over it, wired as the configuration says.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { FsDriver } from "./drivers/fs.ts";
import { CatalogIndex } from "./drivers/fs/catalog_index.ts";
import { MemoryDriver } from "./drivers/memory.ts";
import { S3Driver, s3DriverOptions } from "./drivers/s3.ts";
import { LayoutStore } from "./layout/layout_store.ts";
import { StorePaths } from "./layout/paths.ts";
import type { Store } from "./store.ts";

/** Folders whose presence makes a folder under `repositories/` a repository, most common first. */
const MARKERS = ["_layers", "_manifests", "_uploads"] as const;

/**
 * The store of a local data directory (distribution's `rootdirectory`). Safe to share with other
 * berth processes and with distribution: its caches (tag links, tag listings, the catalog
 * journal) are checked against the disk, see `FsDriver` and `CatalogIndex`.
 */
export function fsStore(root: string): LayoutStore {
  const paths = new StorePaths();
  const driver = new FsDriver(root, {
    tmp: paths.tmp,
    contentCache: { match: (path) => paths.isTagCurrent(path), epoch: paths.tagChanges },
    listCache: (path) => paths.isTagsFolder(path),
  });
  // A catalog page checks ~1,000 names: synchronous stats, far cheaper than async ones.
  const existsSync = (name: string) => {
    const repo = paths.repo(name);
    return MARKERS.some((marker) => driver.statSync(`${repo}/${marker}`)?.isDir === true);
  };
  return new LayoutStore(driver, {
    existsSync,
    index: (source) =>
      new CatalogIndex(
        driver.localPath(paths.catalog),
        driver.tmpDir,
        source,
        driver.localPath(paths.repositories),
      ),
  });
}

/** A store in memory (single owner: nothing is shared, the catalog is kept in memory). */
export function memoryStore(): LayoutStore {
  return new LayoutStore(new MemoryDriver(), { shared: false });
}

/** Build the store a config names. */
export function createStore(config: Config): Store {
  if (config.storage === "s3") {
    if (!config.s3) throw new Error("storage.s3: no S3 configuration");
    // Replicas share the bucket: nothing single-owner is kept (the catalog walks the bucket).
    return new LayoutStore(new S3Driver(s3DriverOptions(config.s3)), {
      shared: true,
      redirect: config.s3.redirect,
    });
  }
  return config.storage === "memory" ? memoryStore() : fsStore(config.dataDir);
}
