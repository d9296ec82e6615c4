/**
 * The handshake between garbage collection and the requests that use blobs, inside one process.
 *
 * Every request that relies on a blob existing (blob HEAD/GET, upload commit, mount, manifest PUT)
 * first calls {@link BlobGuard.use}: it records the use and waits for a removal of that blob
 * already under way, so the request then sees the blob absent (and the client uploads it again)
 * rather than present-then-gone. The collector removes a blob only through
 * {@link BlobGuard.claim}, which refuses any blob used within the grace period; the check and the
 * claim happen in one synchronous step, so no use can slip between them.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { ReplicaFence } from "./replica_fence.ts";

/** Uses remembered at most (the oldest are forgotten first; beyond the grace period anyway). */
const MAX_ENTRIES = 1_000_000;

/** Records blob uses and serialises them with removals. */
export class BlobGuard {
  /** Digest → time of its last use (ms); insertion order is use order. */
  readonly #used = new Map<string, number>();
  /** Digest → the removal under way. */
  readonly #dying = new Map<string, Promise<void>>();
  readonly #now: () => number;
  readonly #fence: ReplicaFence | undefined;

  /**
   * A guard reading time from `now` (tests pass a fake clock); with `fence`, uses and removals
   * are also coordinated with the other processes sharing the storage (replicas).
   */
  constructor(now: () => number = Date.now, fence?: ReplicaFence) {
    this.#now = now;
    this.#fence = fence;
  }

  /** Record that `digests` are being used now, then wait for removals of them under way. */
  async use(digests: readonly Digest[]): Promise<void> {
    const now = this.#now();
    for (const digest of digests) {
      this.#used.delete(digest.value);
      this.#used.set(digest.value, now);
    }
    if (this.#used.size > MAX_ENTRIES) {
      const oldest = this.#used.keys().next().value;
      if (oldest !== undefined) this.#used.delete(oldest);
    }
    for (const digest of digests) await this.#dying.get(digest.value);
    await this.#fence?.use(digests);
  }

  /**
   * The time of this process's use mark of `digest` in shared storage while no collection on any
   * replica may remove the blob (see {@link ReplicaFence.held}); `undefined` without replicas.
   */
  held(digest: Digest): number | undefined {
    return this.#fence?.held(digest);
  }

  /** Whether `digest` was used at or after `since` (ms). */
  usedSince(digest: Digest, since: number): boolean {
    return (this.#used.get(digest.value) ?? -Infinity) >= since;
  }

  /**
   * Claim `digest` for removal unless it was used at or after `since`: returns a function that
   * runs the removal (waiters wake when it ends) and tells whether it ran (another process sharing
   * the storage may have used the blob, see {@link ReplicaFence.claim}; `startedAt` is when the
   * collection started), or `undefined` when the blob must be kept.
   */
  claim(
    digest: Digest,
    since: number,
    startedAt = since,
  ): ((remove: () => Promise<void>) => Promise<boolean>) | undefined {
    if (this.usedSince(digest, since) || this.#dying.has(digest.value)) return undefined;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#dying.set(digest.value, promise);
    const fence = this.#fence;
    return async (remove) => {
      try {
        if (fence && !(await fence.claim(digest, since, startedAt))) return false;
        try {
          await remove();
        } finally {
          await fence?.release(digest);
        }
        return true;
      } finally {
        this.#dying.delete(digest.value);
        resolve();
      }
    };
  }

  /** Forget uses older than `before` (ms). */
  prune(before: number): void {
    for (const [digest, at] of this.#used) {
      if (at >= before) break;
      this.#used.delete(digest);
    }
  }
}
