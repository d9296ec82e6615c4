/**
 * `ListingCache`: folder listings (a repository's tags, the repository tree's folders) kept in
 * memory while the folder is unchanged, checked with one `stat` per use, so it stays right when
 * another process shares the data directory.
 *
 * A folder's mtime changes whenever an entry is added, removed or renamed in it, and its inode
 * when it is replaced. Timestamps are coarse: ext4 here stamps with the kernel's coarse clock,
 * which moves in 4 ms ticks (nanosecond fields, but `stat` of a folder changed six times shows
 * the same sub-tick part each time), and Deno reports milliseconds. Two changes in one tick leave
 * the mtime equal, so a listing is kept only when the folder's last change, as seen by the `stat`
 * taken before the read, is older than {@link SETTLE_MS}: a change the read may have missed
 * happened after that `stat`, at least {@link SETTLE_MS} after the recorded mtime, so it left a
 * strictly later one. (Local filesystems: a network filesystem's server clock may disagree with
 * ours.) A hit costs one `stat` instead of reading and sorting the folder (figures:
 * bench/measurements.md).
 *
 * @module
 */
import { isNotFound } from "./atomic.ts";

/** A listing is kept only when the folder's last change is at least this old, in ms. */
export const SETTLE_MS = 100;

interface Entry {
  dev: number;
  ino: number | null;
  mtime: number;
  names: readonly string[];
  /** Used since it was last passed over for eviction (second chance, no reordering per hit). */
  used: boolean;
}

/** Bounds of a {@link ListingCache}. */
export interface ListingCacheOptions {
  /** Most folders kept (least recently used go first). Default 256. */
  maxEntries?: number;
  /**
   * Most names kept over all folders (least recently used go first; the folder read last is kept
   * even alone over it). Default: no bound.
   */
  maxNames?: number;
}

/** A bounded cache of sorted folder listings, validated by the folder's `stat`. */
export class ListingCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxNames: number;
  #names = 0;

  /** A cache within `options`' bounds. */
  constructor(options: ListingCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 256;
    this.#maxNames = options.maxNames ?? Infinity;
  }

  /**
   * The sorted names `read` gives for folder `dir` (a fresh array the caller may change), from
   * memory when the folder is unchanged; `undefined` when `dir` is not a folder.
   */
  async list(dir: string, read: () => Promise<string[]>): Promise<string[] | undefined> {
    const names = await this.sorted(dir, read);
    return names && [...names];
  }

  /**
   * Drop one entry other than `keep`: the oldest not used since it was last passed over (one used
   * meanwhile goes to the back instead: a hit only sets a flag, no reordering of the map).
   */
  #evictOne(keep: string): boolean {
    if (this.#entries.size <= 1) return false;
    for (const [dir, entry] of this.#entries) {
      if (dir === keep) continue;
      this.#entries.delete(dir);
      if (entry.used) {
        entry.used = false;
        this.#entries.set(dir, entry);
        continue;
      }
      this.#names -= entry.names.length;
      return true;
    }
    return false;
  }

  /**
   * As {@link list}, but the array is shared (read-only by type, not frozen: V8 slices and
   * serialises a frozen array through a slow path, 100–150× slower for 1,000 names) and the same
   * one while the folder is unchanged (no copy: a page of a large folder costs a `stat` and a
   * slice). When the listing is kept or `read` answers synchronously, so does this (a walk over
   * thousands of small folders saves a promise and a turn per folder).
   */
  sorted(
    dir: string,
    read: (info: Deno.FileInfo) => Promise<string[]> | string[],
  ): readonly string[] | undefined | Promise<readonly string[] | undefined> {
    const info = statSyncOrUndefined(dir);
    if (!info?.isDirectory) {
      this.#drop(dir);
      return undefined;
    }
    const hit = this.#entries.get(dir);
    if (hit && same(hit, info)) {
      hit.used = true;
      return hit.names;
    }
    // Before the read: a change it may miss is then at least SETTLE_MS past the recorded mtime.
    const settled = Date.now() - mtimeOf(info) > SETTLE_MS && info.mtime !== null;
    let names: Promise<string[]> | string[];
    try {
      names = read(info);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    if (!Array.isArray(names)) {
      return names.then((read) => this.#keep(dir, info, read, settled), (error) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
    }
    return this.#keep(dir, info, names, settled);
  }

  /** Sort a listing just read and keep it when the folder has settled. */
  #keep(dir: string, info: Deno.FileInfo, read: string[], settled: boolean): readonly string[] {
    const names: readonly string[] = read.sort(compare);
    this.#drop(dir);
    if (settled) {
      this.#entries.set(dir, entryOf(info, names));
      this.#names += names.length;
      // The listing just read stays even alone over the names bound.
      while (this.#entries.size > this.#maxEntries || this.#names > this.#maxNames) {
        if (!this.#evictOne(dir)) break;
      }
    }
    return names;
  }

  /** Forget a folder's listing. */
  forget(dir: string): void {
    this.#drop(dir);
  }

  #drop(dir: string): void {
    const entry = this.#entries.get(dir);
    if (!entry) return;
    this.#names -= entry.names.length;
    this.#entries.delete(dir);
  }
}

function entryOf(info: Deno.FileInfo, names: readonly string[]): Entry {
  return { dev: info.dev, ino: info.ino, mtime: mtimeOf(info), names, used: false };
}

function same(entry: Entry, info: Deno.FileInfo): boolean {
  return entry.dev === info.dev && entry.ino === info.ino && entry.mtime === mtimeOf(info) &&
    info.mtime !== null;
}

function mtimeOf(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? NaN;
}

/** Plain code-unit order (byte order for ASCII tags), as the tags list is sorted. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * `Deno.statSync`, or `undefined` when absent. Synchronous on purpose: a lookup of a cached inode
 * costs far less than an async `stat`'s thread-pool round trip.
 */
export function statSyncOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}
