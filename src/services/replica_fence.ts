/**
 * The handshake between garbage collection and blob uses across processes that share storage
 * (replicas over one bucket): the cross-process half of {@link BlobGuard}.
 *
 * A use of blob X writes a use mark `uses/X` (its time and the writer's window, below), then checks
 * for a sweep mark `sweeping/X` and waits while one is there. The collector writes `sweeping/X`,
 * then reads `uses/X`: a mark at or after its cut-off spares X. Each side writes before it reads,
 * and the driver makes every resolved write visible to every process, so of a use and a sweep that
 * overlap at least one sees the other: either the use waits until the removal is over (and then
 * finds X absent, as with a removal in this process), or the sweep spares X.
 *
 * The window (`refreshMs`): a process rewrites its mark of X at most once a window, and while its
 * mark is younger than that it skips the sweep check too ({@link ReplicaFence.held}), so a blob
 * used again and again costs no storage round trip. That is safe because a collection never
 * removes X while any process's mark of X is within two of that process's windows of the
 * collection's start (the mark carries its window): the grace period of every collection, on any
 * replica and whatever it is configured to, is at least twice the window of every mark it reads.
 * A collection that claims X while the user skips its checks (before mark + window) started
 * before that, so within two windows of the mark; one window is left for the clocks of the two
 * processes to differ.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { StorageDriver } from "../storage/driver.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of {@link ReplicaFence}. */
export interface ReplicaFenceOptions {
  /** The window: rewrite a blob's use mark and check for sweeps at most this often (ms; 5 min). */
  refreshMs?: number;
  /** Longest wait for a sweep mark to go (ms; default 60 s); then the use goes on. */
  waitMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** The longest window a mark may claim (a mark from elsewhere cannot pin a blob for longer). */
const MAX_WINDOW_MS = 60 * 60_000;

/** Use and sweep marks of blobs in shared storage. */
export class ReplicaFence {
  readonly #driver: StorageDriver;
  readonly #root: string;
  readonly #refreshMs: number;
  readonly #waitMs: number;
  readonly #now: () => number;
  /**
   * Digest → time of this process's use mark, written and then found with no sweep under way
   * (entries older than the window are dropped).
   */
  readonly #marked = new Map<string, number>();

  /** Marks under folder `root` of `driver`. */
  constructor(driver: StorageDriver, root: string, options: ReplicaFenceOptions = {}) {
    this.#driver = driver;
    this.#root = root;
    this.#refreshMs = Math.min(options.refreshMs ?? 5 * 60_000, MAX_WINDOW_MS);
    this.#waitMs = options.waitMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Record uses of `digests` in the storage, then wait for their removals under way to end; a
   * blob this process marked within its window needs neither (no storage call).
   */
  async use(digests: readonly Digest[]): Promise<void> {
    const now = this.#now();
    for (const [digest, at] of this.#marked) {
      if (now - at < this.#refreshMs) break;
      this.#marked.delete(digest);
    }
    await Promise.all(digests.map(async (digest) => {
      if (this.held(digest) !== undefined) return;
      await this.#driver.putContent(
        this.#usePath(digest),
        encoder.encode(`${now} ${this.#refreshMs}`),
      );
      const deadline = this.#now() + this.#waitMs;
      let sweeping = await this.#sweeping(digest);
      while (sweeping && this.#now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        sweeping = await this.#sweeping(digest);
      }
      // A sweep that outlasted the wait may still remove the blob: not held, checked next time.
      if (sweeping) return;
      this.#marked.delete(digest.value);
      this.#marked.set(digest.value, now);
    }));
  }

  /**
   * The time of this process's use mark of `digest` while it is within the window, else
   * `undefined`. While it is, no collection removes the blob: one found present after the
   * {@link use} that wrote the mark is still there.
   */
  held(digest: Digest): number | undefined {
    const at = this.#marked.get(digest.value);
    return at !== undefined && this.#now() - at < this.#refreshMs ? at : undefined;
  }

  /**
   * Mark `digest` as being swept unless some process used it at or after `since` (ms), or holds
   * a mark within two of its windows of `startedAt` (the collection's start): `true` when it may
   * be removed (call {@link release} after), `false` when it must be kept.
   */
  async claim(digest: Digest, since: number, startedAt = since): Promise<boolean> {
    await this.#driver.putContent(this.#sweepPath(digest), encoder.encode(String(this.#now())));
    const mark = await this.#driver.getContent(this.#usePath(digest));
    // "<time> <window>" (a mark without a window, from before windows: none).
    const fields = mark ? decoder.decode(mark).split(" ") : [];
    const usedAt = mark ? Number(fields[0]) : -Infinity;
    const window = Math.min(Math.max(Number(fields[1] ?? 0) || 0, 0), MAX_WINDOW_MS);
    if (Number.isNaN(usedAt) || usedAt >= since || usedAt >= startedAt - 2 * window) {
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
        const at = mark ? Number(decoder.decode(mark).split(" ")[0]) : 0;
        if (at < before && !(await exists(`${alg}:${hex}`))) await this.#driver.delete(path);
      }
    }
  }

  /** Whether a sweep mark of `digest` is there (a zero-length read: one HEAD on S3, no body). */
  async #sweeping(digest: Digest): Promise<boolean> {
    const opened = await this.#driver.reader(this.#sweepPath(digest), { length: 0 });
    await opened?.body.cancel();
    return opened !== undefined;
  }

  #usePath(digest: Digest): string {
    return `${this.#root}/uses/${digest.algorithm}/${digest.hex}`;
  }

  #sweepPath(digest: Digest): string {
    return `${this.#root}/sweeping/${digest.algorithm}/${digest.hex}`;
  }
}
