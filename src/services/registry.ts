/**
 * The services of one registry, built together by `createApp` and handed to the handlers.
 *
 * @module
 */
import { type Authorizer, OPEN_AUTHORIZER } from "../auth/access_control.ts";
import type { Config } from "../config.ts";
import type { Store } from "../storage/store.ts";
import { BlobService } from "./blobs.ts";
import { ManifestService } from "./manifests.ts";
import { UploadService } from "./uploads.ts";

/** Everything a handler may use. */
export interface Registry {
  /** The configuration in force. */
  config: Config;
  /** The store. */
  store: Store;
  /** Blob reads and deletes. */
  blobs: BlobService;
  /** Upload sessions. */
  uploads: UploadService;
  /** Manifests. */
  manifests: ManifestService;
  /** Who may pull what (e.g. for `_catalog` to list only what the caller may pull). */
  authorizer: Authorizer;
}

/** Build the services of a registry over a store. */
export function createRegistry(config: Config, store: Store): Registry {
  return {
    config,
    store,
    blobs: new BlobService(store),
    uploads: new UploadService(store),
    manifests: new ManifestService(store, {
      maxBytes: config.maxManifestBytes,
      sparseIndexes: config.sparseIndexes,
    }),
    authorizer: OPEN_AUTHORIZER,
  };
}
