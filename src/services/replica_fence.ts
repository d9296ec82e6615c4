/**
 * The handshake between garbage collection and blob uses across processes that share storage
 * (replicas over one bucket): the cross-process half of {@link BlobGuard}.
 *
 * A use of blob X writes a use mark `uses/X` (its time), then checks for a sweep mark
 * `sweeping/X` and waits while one is there. The collector writes `sweeping/X`, then reads
 * `uses/X`: a mark at or after its cut-off spares X. Each side writes before it reads, and the
 * driver makes every resolved write visible to every process, so of a use and a sweep that
 * overlap at least one sees the other: either the use waits until the removal is over (and then
 * finds X absent, as with a removal in this process), or the sweep spares X.
 *
 * Use marks are rewritten at most every `refreshMs` per blob and process: a mark that young still
 * counts when the grace period is longer than `refreshMs`.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { StorageDriver } from "../storage/driver.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of {@link ReplicaFence}. */
export interface ReplicaFenceOptions {
  /** Rewrite a blob's use mark at most this often (ms; default 5 minutes). */
  refreshMs?: number;
  /** Longest wait for a sweep mark to go (ms; default 60 s); then the use goes on. */
  waitMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** Use and sweep marks of blobs in shared storage. */
export class ReplicaFence {
  readonly #driver: StorageDriver;
  readonly #root: string;
  readonly #refreshMs: number;
  readonly #waitMs: number;
  readonly #now: () => number;
  /** Digest → when this process last wrote its use mark (bounded by the refresh window). */
  readonly #marked = new Map<string, number>();

  /** Marks under folder `root` of `driver`. */
  constructor(driver: StorageDriver, root: string, options: ReplicaFenceOptions = {}) {
    this.#driver = driver;
    this.#root = root;
    this.#refreshMs = options.refreshMs ?? 5 * 60_000;
    this.#waitMs = options.waitMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Record uses of `digests` in the storage, then wait for their removals under way to end. */
  async use(digests: readonly Digest[]): Promise<void> {
    const now = this.#now();
    for (const [digest, at] of this.#marked) {
      if (now - at < this.#refreshMs) break;
      this.#marked.delete(digest);
    }
    await Promise.all(digests.map(async (digest) => {
      if (this.#marked.has(digest.value)) return;
      await this.#driver.putContent(this.#usePath(digest), encoder.encode(String(now)));
      this.#marked.set(digest.value, now);
    }));
    for (const digest of digests) {
      const deadline = this.#now() + this.#waitMs;
      // One GET (stat would also list, looking for a folder of that name).
      while (await this.#driver.getContent(this.#sweepPath(digest)) && this.#now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /**
   * Mark `digest` as being swept unless some process used it at or after `since` (ms): `true`
   * when it may be removed (call {@link release} after), `false` when it must be kept.
   */
  async claim(digest: Digest, since: number): Promise<boolean> {
    await this.#driver.putContent(this.#sweepPath(digest), encoder.encode(String(this.#now())));
    const mark = await this.#driver.getContent(this.#usePath(digest));
    const usedAt = mark ? Number(decoder.decode(mark)) : -Infinity;
    if (usedAt >= since || Number.isNaN(usedAt)) {
      await this.release(digest);
      return false;
    }
    return true;
  }

  /** End a sweep of `digest`: its waiting uses go on. */
  async release(digest: Digest): Promise<void> {
    await this.#driver.delete(this.#sweepPath(digest));
  }

  /** Remove use marks older than `before` (ms) of blobs that are gone. */
  async prune(before: number, exists: (digest: string) => Promise<boolean>): Promise<void> {
    const folder = `${this.#root}/uses`;
    for (const alg of (await this.#driver.list(folder)) ?? []) {
      for (const hex of (await this.#driver.list(`${folder}/${alg}`)) ?? []) {
        const path = `${folder}/${alg}/${hex}`;
        const mark = await this.#driver.getContent(path);
        const at = mark ? Number(decoder.decode(mark)) : 0;
        if (at < before && !(await exists(`${alg}:${hex}`))) await this.#driver.delete(path);
      }
    }
  }

  #usePath(digest: Digest): string {
    return `${this.#root}/uses/${digest.algorithm}/${digest.hex}`;
  }

  #sweepPath(digest: Digest): string {
    return `${this.#root}/sweeping/${digest.algorithm}/${digest.hex}`;
  }
}
