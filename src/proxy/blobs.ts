/**
 * Blobs of mirrored repositories: a decorator over the blob service. A missing blob is fetched
 * once from the upstream (one fill per digest, however many clients ask) and written through the
 * upload path, so its digest is verified before it becomes visible; the first client reads the
 * fill as it streams, later ones wait for it and read the stored blob. A client that goes away
 * does not stop the fill.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { RegistryError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { BlobGuard } from "../services/blob_guard.ts";
import { BlobService } from "../services/blobs.ts";
import type { MaintenanceLog } from "../services/maintenance.ts";
import { type Chunk, UploadService } from "../services/uploads.ts";
import type { BlobContent, ByteRange, Store } from "../storage/store.ts";
import { upstreamFailure } from "./manifests.ts";
import type { Mirrors, Route } from "./mirrors.ts";

/** A fill starts on its own when no client comes to read it within this time (a HEAD). */
const UNATTENDED_START_MS = 1_000;
/** Chunks the live reader may fall behind the store before the fill waits for it. */
const LIVE_QUEUE_CHUNKS = 8;

/** Blobs with mirrored repositories read through from their upstream. */
export class MirroredBlobs extends BlobService {
  readonly #mirrors: Mirrors;
  readonly #uploads: UploadService;
  readonly #log: MaintenanceLog;
  /** Fills in flight, by digest. */
  readonly #fills = new Map<string, Fill>();

  /** Blobs over `store`, mirroring through `mirrors`. */
  constructor(store: Store, guard: BlobGuard | undefined, mirrors: Mirrors, log: MaintenanceLog) {
    super(store, guard);
    this.#mirrors = mirrors;
    this.#uploads = new UploadService(store, guard);
    this.#log = log;
  }

  override async stat(name: string, digest: Digest): Promise<number> {
    const route = this.#mirrors.route(name);
    if (!route) return await super.stat(name, digest);
    const counters = route.mirror.counters;
    try {
      const size = await super.stat(name, digest);
      counters.hits++;
      return size;
    } catch (error) {
      if (!(error instanceof RegistryError) || error.kind !== "BLOB_UNKNOWN") throw error;
    }
    const running = this.#fills.get(digest.value);
    if (running) return running.size;
    // Cached already (another repository or mirror): link it here.
    if (await this.#uploads.mount(name, digest)) {
      counters.hits++;
      return await super.stat(name, digest);
    }
    counters.misses++;
    let found: { size: number } | undefined;
    try {
      found = await route.mirror.client.statBlob(route.upstream, digest.value);
    } catch (error) {
      counters.upstreamErrors++;
      throw upstreamFailure(route, error);
    }
    if (!found || found.size < 0) {
      throw new RegistryError("BLOB_UNKNOWN", { digest: digest.value });
    }
    const again = this.#fills.get(digest.value);
    if (again) return again.size;
    const fill = new Fill(name, route, digest, found.size, this.#uploads, this.#log);
    this.#fills.set(digest.value, fill);
    fill.done.catch(() => {}).finally(() => this.#fills.delete(digest.value));
    return fill.size;
  }

  override async open(digest: Digest, range?: ByteRange): Promise<BlobContent> {
    const fill = this.#fills.get(digest.value);
    if (fill && !range) {
      const live = fill.follow();
      if (live) return { body: live, size: fill.size };
    }
    if (fill) {
      try {
        await fill.done;
      } catch (error) {
        throw fill.failure(error);
      }
    }
    return await super.open(digest, range);
  }

  /** Wait for the fills in flight (shutdown and tests). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#fills.values()].map((fill) => fill.done));
  }

  /** Whether a digest is being fetched now. */
  filling(digest: string): boolean {
    return this.#fills.has(digest);
  }
}

/** One upstream fetch of a blob into the store. */
class Fill {
  readonly size: number;
  readonly done: Promise<void>;
  readonly #route: Route;
  readonly #digest: Digest;
  #started = false;
  #start!: () => void;
  #live: ReadableStreamDefaultController<Uint8Array> | undefined;
  #room: (() => void) | undefined;
  #held: Uint8Array | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    name: string,
    route: Route,
    digest: Digest,
    size: number,
    uploads: UploadService,
    log: MaintenanceLog,
  ) {
    this.size = size;
    this.#route = route;
    this.#digest = digest;
    const started = new Promise<void>((resolve) => this.#start = resolve);
    this.#timer = setTimeout(() => this.#begin(), UNATTENDED_START_MS);
    this.done = started.then(() => this.#run(name, uploads)).then(
      () => this.#finish(),
      (error) => {
        route.mirror.counters.upstreamErrors++;
        log("error", "mirror: blob fill failed", {
          mirror: route.mirror.label,
          repository: name,
          digest: digest.value,
          error: error instanceof Error ? error.message : String(error),
        });
        this.#finish(error);
        throw error;
      },
    );
  }

  /** A stream of the fill as it arrives, for the first reader only; else `undefined`. */
  follow(): ReadableStream<Uint8Array> | undefined {
    if (this.#started) return undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#live = controller;
      },
      pull: () => this.#wake(),
      cancel: () => {
        // The client went away: the fill goes on for the store.
        this.#live = undefined;
        this.#wake();
      },
    }, new CountQueuingStrategy({ highWaterMark: LIVE_QUEUE_CHUNKS }));
    this.#begin();
    return stream;
  }

  /** The error a waiting reader answers with when the fill failed. */
  failure(error: unknown): RegistryError {
    if (error instanceof RegistryError && error.kind === "DIGEST_INVALID") {
      return upstreamFailure(this.#route, new Error(`wrong bytes for ${this.#digest.value}`));
    }
    return upstreamFailure(this.#route, error);
  }

  #begin(): void {
    if (this.#started) return;
    this.#started = true;
    clearTimeout(this.#timer);
    this.#start();
  }

  #wake(): void {
    const wake = this.#room;
    this.#room = undefined;
    wake?.();
  }

  async #run(name: string, uploads: UploadService): Promise<void> {
    const route = this.#route;
    let upstream: ReadableStream<Uint8Array>;
    try {
      // The upload commit hashes the bytes and refuses a wrong digest: no second hash here.
      upstream = await route.mirror.client.getBlob(route.upstream, {
        digest: this.#digest.value,
        size: this.size,
      }, { verify: false });
    } catch (error) {
      if (error instanceof ClientError && error.kind === "not-found") {
        throw new RegistryError("BLOB_UNKNOWN", { digest: this.#digest.value });
      }
      throw error;
    }
    const reader = upstream.getReader();
    const counters = route.mirror.counters;
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        counters.bytesFetched += value.byteLength;
        controller.enqueue(value);
        const live = this.#live;
        if (!live) return;
        // The last chunk is held back until the digest is verified, so a client never receives
        // every byte of a blob that turns out wrong.
        const previous = this.#held;
        this.#held = value;
        if (previous) live.enqueue(previous);
        // A slow client holds the fill back (memory stays flat) until it reads or goes away.
        if ((live.desiredSize ?? 1) <= 0 && this.#live) {
          await new Promise<void>((resolve) => this.#room = resolve);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    const chunk: Chunk = { body, length: this.size };
    await uploads.monolithic(name, this.#digest, chunk);
  }

  #finish(error?: unknown): void {
    const live = this.#live;
    this.#live = undefined;
    if (!live) return;
    const held = this.#held;
    this.#held = undefined;
    try {
      if (error === undefined) {
        if (held) live.enqueue(held);
        live.close();
      } else live.error(this.failure(error));
    } catch { /* the reader is gone */ }
  }
}
