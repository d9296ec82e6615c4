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

/** The blob rules of one registry. */
export class BlobService {
  readonly #store: Store;
  readonly #guard: BlobGuard | undefined;
  /**
   * Digest → its size and the use mark under which it was found (replicas only): while that mark
   * holds, no collection removes the blob, so its size needs no storage call.
   */
  readonly #sizes = new Map<string, { size: number; mark: number }>();

  /** Blobs over `store`; reads count as uses for garbage collection through `guard`. */
  constructor(store: Store, guard?: BlobGuard) {
    this.#store = store;
    this.#guard = guard;
  }

  /** Size of a blob linked into `name`, or `BLOB_UNKNOWN`. */
  async stat(name: string, digest: Digest): Promise<number> {
    await this.#guard?.use([digest]);
    // The link is read every time: an unlink on any replica counts at once.
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
    if (!(await this.#store.deleteLink(name, "layer", digest))) throw unknownBlob(digest);
  }

  async #linked(name: string, digest: Digest): Promise<boolean> {
    return await this.#store.hasLink(name, "layer", digest) ||
      await this.#store.hasLink(name, "manifest", digest);
  }
}

function unknownBlob(digest: Digest): RegistryError {
  return new RegistryError("BLOB_UNKNOWN", { digest: digest.value });
}
