/**
 * Manifests of mirrored repositories: a decorator over the manifest service. Tags are revalidated
 * with the upstream (HEAD, compare digests) at most once per interval and served from the cache
 * when the upstream cannot answer; digests already cached never contact the upstream.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { type Reference, tryParseReference } from "../oci/names.ts";
import type { BlobGuard } from "../services/blob_guard.ts";
import type { MaintenanceLog } from "../services/maintenance.ts";
import {
  type ManifestOptions,
  ManifestService,
  type PutOptions,
  type PutResult,
  type StoredManifest,
} from "../services/manifests.ts";
import { LayoutStore } from "../storage/layout/layout_store.ts";
import type { Store } from "../storage/store.ts";
import type { Mirrors, Route } from "./mirrors.ts";

/** Recorded uses are written to storage at most this often (and before expiry, and at close). */
const USES_FLUSH_MS = 60_000;

/** Manifests with mirrored repositories read through from their upstream. */
export class MirroredManifests extends ManifestService {
  readonly #store: Store;
  readonly #guard: BlobGuard | undefined;
  readonly #mirrors: Mirrors;
  readonly #log: MaintenanceLog;
  /** When each `name\0tag` was last confirmed with its upstream (performance.now()). */
  readonly #checked = new Map<string, number>();
  /** Revalidations in flight, by `name\0tag` (concurrent pulls of a tag ask once). */
  readonly #inflight = new Map<string, Promise<StoredManifest>>();
  /** When each `name\0digest` of a mirror with a `ttl` was last served (Date.now()). */
  readonly #used = new Map<string, number>();
  /** Content with no recorded use counts as used at this process's start. */
  readonly #startedAt = Date.now();
  /** The uses recorded in storage by earlier runs, merged into `#used`. */
  readonly #loaded: Promise<void>;
  /** Uses changed since the last write; when that write was (performance.now()). */
  #dirty = false;
  #flushedAt = performance.now();
  #flushing: Promise<void> | undefined;

  /** Manifests over `store`, mirroring through `mirrors`. */
  constructor(store: Store, options: ManifestOptions, mirrors: Mirrors, log: MaintenanceLog) {
    super(store, options);
    this.#store = store;
    this.#guard = options.guard;
    this.#mirrors = mirrors;
    this.#log = log;
    this.#loaded = mirrors.all.some((mirror) => mirror.config.ttlMs)
      ? this.#loadUses()
      : Promise.resolve();
  }

  /** The mirror of a repository, when it is mirrored. */
  route(name: string): Route | undefined {
    return this.#mirrors.route(name);
  }

  override async get(name: string, ref: string): Promise<StoredManifest> {
    const route = this.#mirrors.route(name);
    const reference = tryParseReference(ref);
    if (!route || !reference) return await super.get(name, ref);
    const stored = await this.#get(name, route, reference);
    if (route.mirror.config.ttlMs) {
      this.#used.set(`${name}\0${stored.digest.value}`, Date.now());
      this.#dirty = true;
      if (performance.now() - this.#flushedAt >= USES_FLUSH_MS) void this.flushUses();
    }
    return stored;
  }

  /**
   * Expire cached content of mirrors with a `ttl`: tags and manifests not served for that long
   * are unlinked (children and referrers of a kept manifest stay), so the safe garbage collection
   * that follows removes the blobs nothing references any more. Returns how many were unlinked.
   */
  async expire(now = Date.now()): Promise<number> {
    await this.#loaded;
    let removed = 0;
    for (const name of await this.#store.listRepositories()) {
      const ttl = this.#mirrors.route(name)?.mirror.config.ttlMs;
      if (!ttl) continue;
      const fresh = (digest: Digest) =>
        now - (this.#used.get(`${name}\0${digest.value}`) ?? this.#startedAt) <= ttl;
      const keep = new Set<string>();
      const links: Digest[] = [];
      for await (const digest of this.#store.listLinks(name, "manifest")) links.push(digest);
      for (const digest of links) {
        if (!fresh(digest)) continue;
        keep.add(digest.value);
        const stored = await this.load(digest);
        for (const child of stored?.parsed.manifests ?? []) keep.add(child.value);
      }
      for (const tag of (await this.#store.listTags(name)) ?? []) {
        const digest = await this.#store.getTag(name, tag);
        if (digest && !keep.has(digest.value)) {
          await this.#store.deleteTag(name, tag);
          removed++;
        }
      }
      for (const digest of links) {
        if (keep.has(digest.value)) continue;
        const subject = (await this.load(digest))?.parsed.subject?.digest;
        // A referrer stays while its subject does.
        if (subject && keep.has(subject.value)) continue;
        await this.#store.deleteLink(name, "manifest", digest);
        if (subject) await this.#store.deleteReferrer(name, subject, digest);
        this.#used.delete(`${name}\0${digest.value}`);
        this.#dirty = true;
        removed++;
      }
    }
    await this.flushUses();
    return removed;
  }

  /**
   * Write the recorded uses to storage when they changed (batched: requests only mark them; this
   * runs at most every {@link USES_FLUSH_MS}, before expiry and at shutdown), so a restart keeps
   * the ages `ttl` is measured by.
   */
  async flushUses(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (!this.#dirty || !(this.#store instanceof LayoutStore)) return;
    const store = this.#store;
    this.#dirty = false;
    this.#flushedAt = performance.now();
    const body = new TextEncoder().encode(JSON.stringify(Object.fromEntries(this.#used)));
    this.#flushing = this.#loaded
      .then(() => store.driver.putContent(store.paths.mirrorUses, body))
      .catch((error) => {
        this.#dirty = true;
        this.#log("error", "mirror: recording cache uses failed", { error: String(error) });
      })
      .finally(() => this.#flushing = undefined);
    await this.#flushing;
  }

  async #loadUses(): Promise<void> {
    if (!(this.#store instanceof LayoutStore)) return;
    try {
      const bytes = await this.#store.driver.getContent(this.#store.paths.mirrorUses);
      if (!bytes) return;
      const recorded = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
      for (const [key, at] of Object.entries(recorded)) {
        if (typeof at !== "number" || !Number.isFinite(at)) continue;
        // A use in this run is newer than any recorded one.
        if ((this.#used.get(key) ?? -Infinity) < at) this.#used.set(key, at);
      }
    } catch (error) {
      this.#log("error", "mirror: reading recorded cache uses failed", { error: String(error) });
    }
  }

  async #get(name: string, route: Route, reference: Reference): Promise<StoredManifest> {
    if (reference.kind === "digest") return await this.#byDigest(name, route, reference.digest);
    const key = `${name}\0${reference.tag}`;
    const running = this.#inflight.get(key);
    if (running) return await running;
    const task = this.#byTag(name, route, reference.tag, key).finally(() => {
      this.#inflight.delete(key);
    });
    this.#inflight.set(key, task);
    return await task;
  }

  override async put(
    name: string,
    ref: string,
    contentType: string,
    body: ReadableStream<Uint8Array> | null,
    options: PutOptions = {},
  ): Promise<PutResult> {
    refuseWrites(this.#mirrors, name);
    return await super.put(name, ref, contentType, body, options);
  }

  async #byDigest(name: string, route: Route, digest: Digest): Promise<StoredManifest> {
    const counters = route.mirror.counters;
    if (await this.#store.hasLink(name, "manifest", digest)) {
      const stored = await this.load(digest);
      if (stored) {
        counters.hits++;
        return stored;
      }
    }
    // Cached for another repository (or mirror): link it here, no upstream needed.
    const shared = await this.load(digest);
    if (shared) {
      await this.#remember(name, shared);
      counters.hits++;
      return shared;
    }
    counters.misses++;
    const fetched = await this.#upstream(
      route,
      () => route.mirror.client.getManifest(route.upstream, digest.value),
    );
    if (!fetched) throw unknownManifest(digest.value);
    return await this.#cache(name, route, fetched.bytes, fetched.mediaType, fetched.digest);
  }

  async #byTag(name: string, route: Route, tag: string, key: string): Promise<StoredManifest> {
    const counters = route.mirror.counters;
    const local = await this.#store.getTag(name, tag);
    const cached = local && await this.load(local);
    const checkedAt = this.#checked.get(key);
    const interval = this.#mirrors.config.revalidateMs;
    if (cached && checkedAt !== undefined && performance.now() - checkedAt < interval) {
      counters.hits++;
      return cached;
    }
    let head: Awaited<ReturnType<typeof route.mirror.client.headManifest>>;
    try {
      head = await route.mirror.client.headManifest(route.upstream, tag);
    } catch (error) {
      counters.upstreamErrors++;
      if (!cached) throw upstreamFailure(route, error);
      counters.staleServes++;
      this.#log("error", "mirror: upstream unavailable, serving the cached manifest", {
        mirror: route.mirror.label,
        repository: name,
        tag,
        digest: cached.digest.value,
        error: (error as Error).message,
      });
      return cached;
    }
    if (!head) {
      if (!cached) throw unknownManifest(tag);
      this.#log("info", "mirror: tag gone upstream, serving the cached manifest", {
        mirror: route.mirror.label,
        repository: name,
        tag,
      });
      counters.staleServes++;
      return cached;
    }
    if (cached && head.digest === cached.digest.value) {
      this.#checked.set(key, performance.now());
      counters.hits++;
      return cached;
    }
    counters.misses++;
    // A digest the upstream announced may already be cached (another tag, another mirror).
    const known = head.digest !== undefined ? await this.#knownDigest(head.digest) : undefined;
    const stored = known ?? await this.#fetchTag(name, route, tag, head.digest);
    if (known) await this.#remember(name, known);
    await this.#store.putTag(name, tag, stored.digest);
    this.#checked.set(key, performance.now());
    return stored;
  }

  async #knownDigest(value: string): Promise<StoredManifest | undefined> {
    let digest: Digest;
    try {
      digest = parseDigest(value);
    } catch {
      return undefined;
    }
    return await this.load(digest);
  }

  async #fetchTag(
    name: string,
    route: Route,
    tag: string,
    announced: string | undefined,
  ): Promise<StoredManifest> {
    // By the announced digest when there is one, so the bytes are verified against it.
    const fetched = await this.#upstream(
      route,
      () => route.mirror.client.getManifest(route.upstream, announced ?? tag),
    );
    if (!fetched) throw unknownManifest(tag);
    return await this.#cache(name, route, fetched.bytes, fetched.mediaType, fetched.digest);
  }

  /** Run an upstream call; `undefined` when the upstream says not found. */
  async #upstream<T>(route: Route, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof ClientError && error.kind === "not-found") return undefined;
      route.mirror.counters.upstreamErrors++;
      throw upstreamFailure(route, error);
    }
  }

  /** Store a fetched manifest (exact bytes) and link it into `name`. */
  async #cache(
    name: string,
    route: Route,
    bytes: Uint8Array,
    mediaType: string,
    digestValue: string,
  ): Promise<StoredManifest> {
    const digest = parseDigest(digestValue);
    const copy = new Uint8Array(bytes);
    const parsed = parseManifest(copy, mediaType);
    route.mirror.counters.bytesFetched += copy.byteLength;
    await this.#guard?.use([digest]);
    await this.#store.putBlob(digest, copy);
    const stored = { digest, mediaType: parsed.mediaType, bytes: copy, parsed };
    await this.#remember(name, stored);
    return stored;
  }

  async #remember(name: string, stored: StoredManifest): Promise<void> {
    await this.#guard?.use([stored.digest]);
    await this.#store.putLink(name, "manifest", stored.digest);
    const subject = stored.parsed.subject?.digest;
    if (subject) await this.#store.putReferrer(name, subject, stored.digest);
  }
}

/** Refuse a write into a mirrored repository (`UNSUPPORTED`, as distribution's proxy). */
export function refuseWrites(mirrors: Mirrors, name: string): void {
  const route = mirrors.route(name);
  if (!route) return;
  throw new RegistryError("UNSUPPORTED", { mirror: route.mirror.label }, {
    message: route.mirror.config.prefix === ""
      ? "this registry is a pull-through cache: pushes are not supported"
      : `repositories under ${route.mirror.config.prefix}/ mirror ${route.mirror.config.remoteUrl}: pushes are not supported`,
  });
}

/** The error answered when the upstream could not be asked and nothing is cached. */
export function upstreamFailure(route: Route, error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RegistryError("UNAVAILABLE", { mirror: route.mirror.label }, {
    message: `upstream ${route.mirror.config.remoteUrl}: ${message}`,
    headers: { "Retry-After": "5" },
  });
}

function unknownManifest(ref: string): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", { reference: ref.slice(0, 200) });
}
