/**
 * Garbage collection: mark every blob a manifest of any repository needs, sweep the rest.
 *
 * Mark: every manifest revision of every repository (found by walking the store) marks itself, its config and layers, and its index children. With
 * `deleteUntagged`, manifests not reachable from a tag first lose their revision link; reachable
 * means tagged, a child of a reachable index, or a referrer (`subject`) of a reachable manifest.
 *
 * Sweep: every unmarked blob is removed unless it is younger than the grace period (written
 * recently: a push in flight uploads before it puts its manifest) or was used within it through
 * this process — a blob HEAD/GET, an upload commit, a mount, or a manifest PUT naming it, which
 * also covers manifests pushed while the sweep runs (see {@link BlobGuard}). Upload sessions are
 * never touched here (they are not blobs until committed); stale ones are purged by age.
 *
 * Online collections (the server's schedule and `POST /admin/gc`) never delete manifests; the
 * offline `berth gc --delete-untagged` does.
 *
 * @module
 */
import { type Digest, tryParseDigest } from "../oci/digest.ts";
import type { StorageLease } from "../storage/lease.ts";
import type { Store } from "../storage/store.ts";
import type { BlobGuard } from "./blob_guard.ts";
import type { ManifestService } from "./manifests.ts";

/** Blobs whose info is read at once (storage round trips overlap; a few file handles). */
const STAT_BATCH = 64;
/** Blobs removed at once (each removal is claimed first, as one at a time). */
const SWEEP_BATCH = 8;
/**
 * Removed blobs listed in a report (the count covers all): the answer of `POST /admin/gc` stays
 * small however many blobs go (every one listed took the server to 282 MiB at 100,000).
 */
export const LISTED_MAX = 1000;

/** Options of one collection. */
export interface GcRunOptions {
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Remove manifests that no tag reaches (offline use). */
  deleteUntagged?: boolean;
  /** Spare blobs written or used less than this many milliseconds ago. */
  gracePeriodMs?: number;
  /** Called with each line of the report as it happens (like distribution's output). */
  log?: (line: string) => void;
}

/** What a collection did. */
export interface GcReport {
  /** Whether nothing was removed on purpose. */
  dryRun: boolean;
  /** Repositories scanned. */
  repositories: number;
  /** Blobs marked in use (manifests included). */
  blobsMarked: number;
  /** Manifests removed (or that would be, in a dry run). */
  manifestsDeleted: { name: string; digest: string }[];
  /** Blobs removed (or that would be), with their sizes: the first {@link LISTED_MAX}. */
  blobsDeleted: { digest: string; size: number }[];
  /** How many blobs were removed (or would be), listed or not. */
  blobsDeletedCount: number;
  /** Unmarked blobs kept because they are young or in use. */
  blobsSpared: number;
  /** Sum of the sizes of the blobs removed. */
  bytesFreed: number;
  /** When the collection started. */
  startedAt: string;
  /** How long it took. */
  durationMs: number;
  /** Why nothing was done (another replica holds the collection lease), when so. */
  skipped?: string;
}

/** Runs collections over one store, one at a time. */
export class GarbageCollector {
  readonly #store: Store;
  readonly #manifests: ManifestService;
  readonly #guard: BlobGuard;
  readonly #now: () => number;
  readonly #lease: StorageLease | undefined;
  #running: Promise<unknown> = Promise.resolve();

  /** A collector over `store`, parsing through `manifests`, coordinating through `guard`. */
  constructor(
    store: Store,
    manifests: ManifestService,
    guard: BlobGuard,
    now: () => number = Date.now,
    lease?: StorageLease,
  ) {
    this.#store = store;
    this.#manifests = manifests;
    this.#guard = guard;
    this.#now = now;
    this.#lease = lease;
  }

  /** Run a collection (after the one under way, if any). */
  run(options: GcRunOptions = {}): Promise<GcReport> {
    const next = this.#running.then(() => this.#leased(options));
    this.#running = next.catch(() => {});
    return next;
  }

  /** With a lease (replicas sharing the storage), collect only while holding it. */
  async #leased(options: GcRunOptions): Promise<GcReport> {
    const lease = this.#lease;
    if (!lease) return await this.#collect(options);
    if (!(await lease.acquire())) {
      const report = emptyReport(options.dryRun ?? false, this.#now());
      report.skipped = "another process holds the collection lease";
      return report;
    }
    try {
      return await this.#collect(options);
    } finally {
      await lease.release().catch(() => {});
    }
  }

  /** Whether the sweep may go on: the lease (if any) is held, renewed when half spent. */
  async #mayContinue(): Promise<boolean> {
    const lease = this.#lease;
    if (!lease) return true;
    return lease.held && (!lease.renewDue || await lease.renew());
  }

  async #collect(options: GcRunOptions): Promise<GcReport> {
    const started = this.#now();
    const dryRun = options.dryRun ?? false;
    const grace = Math.max(0, options.gracePeriodMs ?? 0);
    const log = options.log ?? (() => {});
    const report = emptyReport(dryRun, started);
    const marked = new Set<string>();
    const mark = (name: string, digest: Digest, what: string) => {
      if (marked.has(digest.value)) return;
      marked.add(digest.value);
      log(`${name}: marking ${what} ${digest.value}`);
    };

    for (const name of await this.#store.listRepositories()) {
      report.repositories++;
      const revisions = new Map<string, Digest>();
      for await (const digest of this.#store.listLinks(name, "manifest")) {
        revisions.set(digest.value, digest);
      }
      let keep = revisions;
      if (options.deleteUntagged) {
        keep = await this.#reachable(name, revisions);
        for (const [value, digest] of revisions) {
          if (keep.has(value)) continue;
          report.manifestsDeleted.push({ name, digest: value });
          log(`${name}: manifest eligible for deletion ${value}`);
          if (!dryRun) await this.#deleteManifest(name, digest);
        }
      }
      for (const digest of keep.values()) {
        mark(name, digest, "manifest");
        const manifest = await this.#manifests.load(digest);
        if (manifest) {
          for (const blob of manifest.parsed.blobs) mark(name, blob, "blob");
          for (const child of manifest.parsed.manifests) mark(name, child, "manifest");
          continue;
        }
        // Not a manifest berth accepts (schema 1, or another registry's leniency): keep every
        // digest it names rather than lose a layer.
        const bytes = await this.#store.readBlob(digest);
        if (!bytes) continue;
        for (const blob of looseReferences(bytes, `${name}@${digest.value}`)) {
          mark(name, blob, "blob");
        }
      }
    }
    report.blobsMarked = marked.size;

    // One pass over the blobs: each batch of unmarked ones is checked, then what may go is
    // removed (or reported, in a dry run) before the next batch is read, so memory stays flat
    // however many blobs are stored.
    const since = started - grace;
    let eligible = 0;
    const check = async (digest: Digest) => {
      const info = await this.#store.blobInfo(digest);
      if (!info) return undefined;
      if (info.modifiedAt.getTime() >= since || this.#guard.usedSince(digest, since)) {
        report.blobsSpared++;
        return undefined;
      }
      eligible++;
      return { digest, size: info.size };
    };
    const deleted = (digest: Digest, size: number) => {
      report.blobsDeletedCount++;
      if (report.blobsDeleted.length < LISTED_MAX) {
        report.blobsDeleted.push({ digest: digest.value, size });
      }
      report.bytesFreed += size;
    };
    const sweep = async ({ digest, size }: { digest: Digest; size: number }) => {
      const remove = this.#guard.claim(digest, since, started);
      if (!remove || !(await remove(() => this.#store.deleteBlob(digest)))) {
        report.blobsSpared++;
        return;
      }
      deleted(digest, size);
      log(`deleting blob: ${digest.value} (${size} bytes)`);
    };
    const batch = async (unmarked: Digest[]): Promise<boolean> => {
      const found = (await Promise.all(unmarked.map(check))).filter((blob) => blob !== undefined);
      if (dryRun) {
        for (const { digest, size } of found) {
          deleted(digest, size);
          log(`blob eligible for deletion: ${digest.value}`);
        }
        return true;
      }
      for (let at = 0; at < found.length; at += SWEEP_BATCH) {
        if (!(await this.#mayContinue())) {
          report.skipped = "the collection lease was lost: the sweep stopped";
          return false;
        }
        await Promise.all(found.slice(at, at + SWEEP_BATCH).map(sweep));
      }
      return true;
    };
    let unmarked: Digest[] = [];
    let going = true;
    for await (const digest of this.#store.listBlobs()) {
      if (marked.has(digest.value)) continue;
      unmarked.push(digest);
      if (unmarked.length < STAT_BATCH) continue;
      going = await batch(unmarked);
      unmarked = [];
      if (!going) break;
    }
    if (going) await batch(unmarked);
    log(
      `\n${marked.size} blobs marked, ${eligible} blobs and ` +
        `${report.manifestsDeleted.length} manifests eligible for deletion`,
    );
    this.#guard.prune(started - grace);
    report.durationMs = this.#now() - started;
    log(
      `${dryRun ? "would free" : "freed"} ${report.bytesFreed} bytes in ` +
        `${report.blobsDeletedCount} blobs`,
    );
    return report;
  }

  /** Manifests of `name` reachable from its tags (through index children and referrers). */
  async #reachable(name: string, revisions: Map<string, Digest>): Promise<Map<string, Digest>> {
    const referrersOf = new Map<string, Digest[]>();
    const childrenOf = new Map<string, Digest[]>();
    for (const [value, digest] of revisions) {
      const manifest = await this.#manifests.load(digest);
      if (!manifest) continue;
      childrenOf.set(value, manifest.parsed.manifests);
      const subject = manifest.parsed.subject?.digest.value;
      if (subject) referrersOf.set(subject, [...(referrersOf.get(subject) ?? []), digest]);
    }
    const keep = new Map<string, Digest>();
    const queue: Digest[] = [];
    const visit = (digest: Digest) => {
      const own = revisions.get(digest.value);
      if (!own || keep.has(own.value)) return;
      keep.set(own.value, own);
      queue.push(own);
    };
    for (const tag of (await this.#store.listTags(name)) ?? []) {
      const digest = await this.#store.getTag(name, tag);
      if (digest) visit(digest);
    }
    while (queue.length > 0) {
      const digest = queue.pop()!;
      for (const child of childrenOf.get(digest.value) ?? []) visit(child);
      for (const referrer of referrersOf.get(digest.value) ?? []) visit(referrer);
    }
    return keep;
  }

  async #deleteManifest(name: string, digest: Digest): Promise<void> {
    const manifest = await this.#manifests.load(digest);
    await this.#store.deleteLink(name, "manifest", digest);
    const subject = manifest?.parsed.subject?.digest;
    if (subject) await this.#store.deleteReferrer(name, subject, digest);
  }
}

function emptyReport(dryRun: boolean, started: number): GcReport {
  return {
    dryRun,
    repositories: 0,
    blobsMarked: 0,
    manifestsDeleted: [],
    blobsDeleted: [],
    blobsDeletedCount: 0,
    blobsSpared: 0,
    bytesFreed: 0,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
  };
}

/**
 * Every digest a JSON document names under a `digest` or `blobSum` key, at any depth. Throws when
 * the document is not JSON: a collection that cannot read a manifest must not sweep.
 */
export function looseReferences(bytes: Uint8Array, where: string): Digest[] {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`manifest ${where} is not JSON: garbage collection stopped before the sweep`);
  }
  const found: Digest[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach(visit);
    } else if (typeof value === "object" && value !== null) {
      for (const [key, child] of Object.entries(value)) {
        const digest = (key === "digest" || key === "blobSum") && typeof child === "string"
          ? tryParseDigest(child)
          : undefined;
        if (digest) found.push(digest);
        else visit(child);
      }
    }
  };
  visit(doc);
  return found;
}
