/**
 * Builds a {@link Store}: a driver with the layout over it, wired as the configuration says.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { FsDriver } from "./drivers/fs.ts";
import type { ReadCount } from "./drivers/fs/tag_epoch.ts";
import { MemoryDriver } from "./drivers/memory.ts";
import { S3Driver, s3DriverOptions } from "./drivers/s3.ts";
import { LayoutStore } from "./layout/layout_store.ts";
import { StorePaths } from "./layout/paths.ts";
import type { Store } from "./store.ts";

/**
 * The store of a local data directory (distribution's `rootdirectory`). Safe to share with other
 * berth processes and with distribution: its caches (tag links, folder listings) are checked
 * against the disk, see `FsDriver`. `arrivals`: the read count of berth's HTTP server in front of
 * it, when there is one (see `TagEpoch`).
 */
export function fsStore(root: string, arrivals?: ReadCount): LayoutStore {
  const paths = new StorePaths();
  const driver = new FsDriver(root, {
    tmp: paths.tmp,
    contentCache: {
      match: (path) => paths.isTagCurrent(path),
      epoch: paths.tagChanges,
      ...(arrivals && { arrivals }),
    },
    listCache: (path) => paths.isTagsFolder(path),
  });
  return new LayoutStore(driver);
}

/** A store in memory. */
export function memoryStore(): LayoutStore {
  return new LayoutStore(new MemoryDriver());
}

/**
 * Build the store a config names; `arrivals` is the read count of berth's HTTP server when it
 * serves the store (see `TagEpoch`).
 */
export function createStore(config: Config, arrivals?: ReadCount): Store {
  if (config.storage === "s3") {
    if (!config.s3) throw new Error("storage.s3: no S3 configuration");
    return new LayoutStore(new S3Driver(s3DriverOptions(config.s3)), {
      redirect: config.s3.redirect,
    });
  }
  return config.storage === "memory" ? memoryStore() : fsStore(config.dataDir, arrivals);
}
