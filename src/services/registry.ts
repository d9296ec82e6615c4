/**
 * The services of one registry, built together by `createApp` and handed to the handlers.
 *
 * @module
 */
import { type Authorizer, OPEN_AUTHORIZER } from "../auth/access_control.ts";
import type { Config } from "../config.ts";
import { MirroredBlobs } from "../proxy/blobs.ts";
import { MirroredManifests } from "../proxy/manifests.ts";
import { Mirrors } from "../proxy/mirrors.ts";
import { MirroredReferrers } from "../proxy/referrers.ts";
import { MirroredTags } from "../proxy/tags.ts";
import { MirroredUploads } from "../proxy/uploads.ts";
import { LayoutStore } from "../storage/layout/layout_store.ts";
import { StorageLease } from "../storage/lease.ts";
import type { Store } from "../storage/store.ts";
import { BlobGuard } from "./blob_guard.ts";
import { BlobService } from "./blobs.ts";
import { CatalogService } from "./catalog.ts";
import { GarbageCollector } from "./gc.ts";
import { Maintenance, type MaintenanceLog } from "./maintenance.ts";
import { ManifestService } from "./manifests.ts";
import { Notifier } from "./events.ts";
import { PolicyService } from "./policies.ts";
import { ReferrerService } from "./referrers.ts";
import { ReplicaFence } from "./replica_fence.ts";
import { TagService } from "./tags.ts";
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
  /** The referrers API. */
  referrers: ReferrerService;
  /** Tag lists. */
  tags: TagService;
  /** The repository catalog. */
  catalog: CatalogService;
  /** Garbage collection (online: never removes what a request in flight uses). */
  gc: GarbageCollector;
  /** Background work: scheduled collection, upload purging (started and stopped by the app). */
  maintenance: Maintenance;
  /** Immutable tags and retention. */
  policies: PolicyService;
  /** Notifications (none configured: `undefined`). */
  events: Notifier | undefined;
  /** Who may pull what (for `_catalog` to list only what the caller may pull). */
  authorizer: Authorizer;
  /** The mirrored upstreams (pull-through cache), when `proxy` is configured. */
  mirrors?: Mirrors;
}

/** How long an online collection holds its lease before renewing it. */
const GC_LEASE_MS = 10 * 60_000;
/**
 * Replicas: how long a replica trusts a blob's repository link it found (ms), so a blob DELETE on
 * one replica stops pulls of that blob through the others within this time (docs/s3.md).
 */
export const LINK_WINDOW_MS = 5_000;

/** This process among the replicas (pid and a random part; the host name needs --allow-sys). */
function replicaId(): string {
  return `${Deno.pid}-${crypto.randomUUID()}`;
}

/** Build the services of a registry over a store. */
export function createRegistry(
  config: Config,
  store: Store,
  log: MaintenanceLog,
): Registry {
  // Replicas over one bucket: blob uses and sweeps meet in the bucket, one collector at a time.
  const shared = config.storage === "s3" && store instanceof LayoutStore ? store : undefined;
  const coordination = shared ? `${shared.paths.base}/_berth` : "";
  const guard = new BlobGuard(
    Date.now,
    shared && new ReplicaFence(shared.driver, `${coordination}/fence`, {
      // A use mark must stay younger than the grace period while it is not rewritten.
      refreshMs: Math.min(5 * 60_000, config.gc.gracePeriodMs / 4),
    }),
  );
  const lease = shared &&
    new StorageLease(shared.driver, `${coordination}/leases/gc`, replicaId(), GC_LEASE_MS);
  const policies = new PolicyService(store, config.policies ?? [], {
    log: (level, msg, fields) => log(level, msg, fields),
  });
  const manifestOptions = {
    policies,
    maxBytes: config.maxManifestBytes,
    cacheBytes: config.manifestCacheBytes,
    sparseIndexes: config.sparseIndexes,
    guard,
  };
  const mirrors = config.proxy && config.proxy.mirrors.length > 0
    ? new Mirrors(config.proxy)
    : undefined;
  const manifests = mirrors
    ? new MirroredManifests(store, manifestOptions, mirrors, log)
    : new ManifestService(store, manifestOptions);
  const services = {
    config,
    store,
    blobs: mirrors
      ? new MirroredBlobs(store, guard, mirrors, log)
      : new BlobService(store, guard, { linkWindowMs: shared ? LINK_WINDOW_MS : 0 }),
    uploads: mirrors ? new MirroredUploads(store, guard, mirrors) : new UploadService(store, guard),
    manifests,
    policies,
    events: config.notifications?.endpoints.length
      ? new Notifier(config.notifications, {
        dir: `${config.dataDir}/docker/registry/v2/_berth/events`,
        sourceAddr: config.addr,
        log: (level, msg, fields) => log(level, msg, fields),
        sizeOf: (digest) => store.statBlob(digest),
      })
      : undefined,
    referrers: mirrors
      ? new MirroredReferrers(store, manifests, mirrors, log)
      : new ReferrerService(store, manifests),
    tags: mirrors ? new MirroredTags(store, mirrors, log) : new TagService(store),
    catalog: new CatalogService(store),
    gc: new GarbageCollector(store, manifests, guard, Date.now, lease),
    authorizer: OPEN_AUTHORIZER,
    ...(mirrors && { mirrors }),
  };
  return { ...services, maintenance: new Maintenance(services, log) };
}
