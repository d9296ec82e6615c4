/**
 * Blobs as seen through a repository: visible only when linked into it.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { BlobContent, ByteRange, Store } from "../storage/store.ts";
import type { BlobGuard } from "./blob_guard.ts";

/** Sizes remembered at most (the oldest are forgotten first). */
const MAX_SIZES = 50_000;
/** Layer links remembered at most (the oldest are forgotten first). */
const MAX_LINKS = 50_000;

/** Options of {@link BlobService}. */
export interface BlobServiceOptions {
  /**
   * Replicas: a layer link found present is trusted for this long (ms) before it is read again,
   * so an unlink on another replica counts here within this window; 0 (default): read every time.
   */
  linkWindowMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** The blob rules of one registry. */
export class BlobService {
  readonly #store: Store;
  readonly #guard: BlobGuard | undefined;
  /**
   * Digest → its size and the use mark under which it was found (replicas only): while that mark
   * holds, no collection removes the blob, so its size needs no storage call.
   */
  readonly #sizes = new Map<string, { size: number; mark: number }>();
  /**
   * `<name>@<digest>` → when a read that found its layer link started (replicas only; entries
   * older than the link window are dropped).
   */
  readonly #links = new Map<string, number>();
  readonly #linkWindowMs: number;
  readonly #now: () => number;

  /** Blobs over `store`; reads count as uses for garbage collection through `guard`. */
  constructor(store: Store, guard?: BlobGuard, options: BlobServiceOptions = {}) {
    this.#store = store;
    this.#guard = guard;
    this.#linkWindowMs = options.linkWindowMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  /** Size of a blob linked into `name`, or `BLOB_UNKNOWN`. */
  async stat(name: string, digest: Digest): Promise<number> {
    await this.#guard?.use([digest]);
    // The link is read every time, or once a link window (replicas): an unlink on another replica
    // counts at once, or within that window.
    const mark = this.#guard?.held(digest);
    const known = mark === undefined ? undefined : this.#sizes.get(digest.value);
    if (known !== undefined && known.mark === mark) {
      if (!(await this.#linked(name, digest))) throw unknownBlob(digest);
      return known.size;
    }
    const [linked, size] = await Promise.all([
      this.#linked(name, digest),
      this.#store.statBlob(digest),
    ]);
    if (!linked || size === undefined) throw unknownBlob(digest);
    if (mark !== undefined) {
      this.#sizes.delete(digest.value);
      this.#sizes.set(digest.value, { size, mark });
      if (this.#sizes.size > MAX_SIZES) this.#sizes.delete(this.#sizes.keys().next().value!);
    }
    return size;
  }

  /**
   * Open a blob that {@link stat} has just found in the repository (that call recorded the use and
   * checked the link), whole or a range already checked against its size.
   */
  async open(digest: Digest, range?: ByteRange): Promise<BlobContent> {
    const content = await this.#store.openBlob(digest, range);
    if (!content) throw unknownBlob(digest);
    return content;
  }

  /**
   * Where the client may fetch a blob that {@link stat} has just found (a presigned object-store
   * URL), or `undefined` when berth serves it itself.
   */
  async redirectUrl(digest: Digest): Promise<string | undefined> {
    return await this.#store.blobUrl?.(digest);
  }

  /** Unlink a blob from `name`. */
  async delete(name: string, digest: Digest): Promise<void> {
    this.#links.delete(`${name}@${digest.value}`);
    if (!(await this.#store.deleteLink(name, "layer", digest))) throw unknownBlob(digest);
    this.#links.delete(`${name}@${digest.value}`);
  }

  /**
   * Whether `digest` is linked into `name` (as a layer, or as a manifest fetched by blob URL). A
   * layer link found by a read that started less than the link window ago is not read again.
   */
  async #linked(name: string, digest: Digest): Promise<boolean> {
    const window = this.#linkWindowMs;
    if (window <= 0) {
      return await this.#store.hasLink(name, "layer", digest) ||
        await this.#store.hasLink(name, "manifest", digest);
    }
    const key = `${name}@${digest.value}`;
    const started = this.#now();
    const at = this.#links.get(key);
    if (at !== undefined && started - at < window) return true;
    if (await this.#store.hasLink(name, "layer", digest)) {
      // The read's start, not its answer: an unlink answered after it started may have been missed.
      this.#links.delete(key);
      this.#links.set(key, started);
      for (const [old, time] of this.#links) {
        if (this.#links.size <= MAX_LINKS && started - time < window) break;
        this.#links.delete(old);
      }
      return true;
    }
    this.#links.delete(key);
    return await this.#store.hasLink(name, "manifest", digest);
  }
}

function unknownBlob(digest: Digest): RegistryError {
  return new RegistryError("BLOB_UNKNOWN", { digest: digest.value });
}
