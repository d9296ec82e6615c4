/**
 * `LinkCache`: the contents of small link files (a tag's `current/link`) kept in memory while the
 * file is unchanged, so a tag moved by another process sharing the data directory is seen.
 *
 * An entry is checked with one `stat` of its file, except while the caller's epoch (see
 * `TagEpoch`: it changes whenever any berth process changes a tag) is the one it was last checked
 * at and that check is less than {@link RECHECK_MS} old: then it is served from memory. A change by
 * another berth process is thus seen at once; one by another program (distribution writing the
 * same directory) within a second.
 *
 * berth replaces a link by rename (a new inode); distribution rewrites it in place (same inode and
 * size, new mtime). Timestamps are coarse, so a content is kept only when the file's last change is
 * older than {@link SETTLE_MS}: a later rewrite then always has a later mtime.
 * Reading the link was about half of a manifest GET by tag (figures: bench/measurements.md).
 *
 * @module
 */
import { readTextSyncOrUndefined } from "./atomic.ts";
import { SETTLE_MS, statSyncOrUndefined } from "./listing_cache.ts";

/** An entry served from memory at an unchanged epoch is checked on disk again after this, in ms. */
export const RECHECK_MS = 1000;

interface Entry {
  /** The epoch it was last checked at, and when. */
  epoch: number;
  checkedAt: number;
  dev: number;
  ino: number | null;
  mtime: number;
  size: number;
  text: string;
  /** The text's bytes, made on first use and shared by every later hit. */
  bytes?: Uint8Array<ArrayBuffer>;
}

const encoder = new TextEncoder();

/** A bounded cache of small file contents, validated by the file's `stat`. */
export class LinkCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  /** A cache of at most `maxEntries` files (least recently used go first); `now` for tests. */
  constructor(maxEntries = 4096, now: () => number = Date.now) {
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /**
   * The text of the file at `path`, or `undefined` when it is absent. `epoch` must be taken
   * before the call (`NaN` when there is none: the file is then checked every time).
   */
  read(path: string, epoch = NaN): string | undefined {
    return this.#read(path, epoch)?.text;
  }

  /**
   * {@link read} as bytes: the same array for every hit of an unchanged file (read-only for the
   * caller), so a caller may key what it derives from them by identity.
   */
  readBytes(path: string, epoch = NaN): Uint8Array<ArrayBuffer> | undefined {
    const entry = this.#read(path, epoch);
    if (!entry) return undefined;
    return entry.bytes ??= encoder.encode(entry.text);
  }

  /**
   * The bytes kept for `path` when memory alone can answer (checked at `epoch` less than
   * {@link RECHECK_MS} ago), else `undefined`: touches no disk, so the path needs no checking.
   */
  peekBytes(path: string, epoch = NaN): Uint8Array<ArrayBuffer> | undefined {
    const hit = this.#entries.get(path);
    if (!hit || hit.epoch !== epoch || this.#now() - hit.checkedAt >= RECHECK_MS) return undefined;
    return hit.bytes ??= encoder.encode(hit.text);
  }

  #read(
    path: string,
    epoch: number,
  ): { text: string; bytes?: Uint8Array<ArrayBuffer> } | undefined {
    const now = this.#now();
    const hit = this.#entries.get(path);
    if (hit && hit.epoch === epoch && now - hit.checkedAt < RECHECK_MS) return hit;
    const info = statSyncOrUndefined(path);
    if (!info?.isFile) {
      this.#entries.delete(path);
      return undefined;
    }
    if (hit && same(hit, info)) {
      hit.epoch = epoch;
      hit.checkedAt = now;
      return hit;
    }
    const text = readTextSyncOrUndefined(path);
    const after = statSyncOrUndefined(path);
    this.#entries.delete(path);
    if (text === undefined) return undefined;
    const entry = entryOf(after ?? info, text, epoch, now);
    if (
      after && same(entryOf(info, text, epoch, now), after) &&
      Date.now() - mtimeOf(after) > SETTLE_MS
    ) {
      this.#entries.set(path, entry);
      if (this.#entries.size > this.#maxEntries) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
    }
    return entry;
  }

  /** Drop what is kept of `path` (this process changed the file). */
  forget(path: string): void {
    this.#entries.delete(path);
  }

  /** Drop every entry whose path starts with `prefix` (a folder was removed); whether any was. */
  forgetUnder(prefix: string): boolean {
    let any = false;
    for (const path of this.#entries.keys()) {
      if (path.startsWith(prefix)) {
        this.#entries.delete(path);
        any = true;
      }
    }
    return any;
  }
}

function entryOf(info: Deno.FileInfo, text: string, epoch: number, checkedAt: number): Entry {
  return {
    epoch,
    checkedAt,
    dev: info.dev,
    ino: info.ino,
    mtime: mtimeOf(info),
    size: info.size,
    text,
  };
}

function same(entry: Entry, info: Deno.FileInfo): boolean {
  return entry.dev === info.dev && entry.ino === info.ino && entry.mtime === mtimeOf(info) &&
    entry.size === info.size && info.mtime !== null;
}

function mtimeOf(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? NaN;
}
