/**
 * `ListingCache`: folder listings (a repository's tags) kept in memory while the folder is
 * unchanged, checked with one `stat` per use, so it stays right when another process shares the
 * data directory.
 *
 * A folder's mtime changes whenever an entry is added, removed or renamed in it, and its inode
 * when it is replaced. Timestamps are coarse (the kernel's clock tick, and Deno reports
 * milliseconds), so two changes in the same tick could leave the mtime equal: a listing is kept
 * only when the folder did not change while it was read and its last change is older than
 * {@link SETTLE_MS}; any later change then gets a strictly later mtime. (Local filesystems: a
 * network filesystem's server clock may disagree with ours.)
 * A hit costs one `stat` instead of reading and sorting the folder (figures:
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
}

/** A bounded cache of sorted folder listings, validated by the folder's `stat`. */
export class ListingCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #minNames: number;

  /**
   * A cache of at most `maxEntries` folders (least recently used go first), keeping only
   * listings of at least `minNames` names (smaller ones are cheap to read again).
   */
  constructor(maxEntries = 256, minNames = 0) {
    this.#maxEntries = maxEntries;
    this.#minNames = minNames;
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
   * As {@link list}, but the array is frozen and the same one while the folder is unchanged (no
   * copy: a page of a large folder costs a `stat` and a slice).
   */
  async sorted(
    dir: string,
    read: (info: Deno.FileInfo) => Promise<string[]> | string[],
  ): Promise<readonly string[] | undefined> {
    const before = statSyncOrUndefined(dir);
    if (!before?.isDirectory) {
      this.#entries.delete(dir);
      return undefined;
    }
    const hit = this.#entries.get(dir);
    if (hit && same(hit, before)) {
      this.#entries.delete(dir);
      this.#entries.set(dir, hit);
      return hit.names;
    }
    let names: readonly string[];
    try {
      names = Object.freeze((await read(before)).sort(compare));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const after = statSyncOrUndefined(dir);
    if (
      names.length >= this.#minNames && after && same(entryOf(before, names), after) &&
      Date.now() - mtimeOf(after) > SETTLE_MS
    ) {
      this.#entries.delete(dir);
      this.#entries.set(dir, entryOf(after, names));
      if (this.#entries.size > this.#maxEntries) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
    } else {
      this.#entries.delete(dir);
    }
    return names;
  }

  /** Forget a folder's listing. */
  forget(dir: string): void {
    this.#entries.delete(dir);
  }
}

function entryOf(info: Deno.FileInfo, names: readonly string[]): Entry {
  return { dev: info.dev, ino: info.ino, mtime: mtimeOf(info), names };
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
