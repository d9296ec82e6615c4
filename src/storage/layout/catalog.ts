/**
 * The catalog as a walk of the `repositories/` tree in name order, started at the `last` marker:
 * only the folders on the way to the page are listed, and only the entries on the page are
 * checked for being repositories. Nothing is indexed or kept beyond what the driver's listings
 * keep, so replicas over shared storage and other programs writing the tree (distribution) are
 * seen at once.
 *
 * Names are ordered as whole strings (code-unit order: `a` < `a-b` < `a.b` < `a/b` < `a0`), not
 * segment by segment, so each child `c` of a folder stands for two sort keys: `c` (the folder
 * itself, a repository when it holds a marker folder) and `c/` (every name below it). All names
 * below `c` start with `c/`, so sorting these keys sorts the names.
 *
 * @module
 */
import { isValidName } from "../../oci/names.ts";
import { upperBound } from "../sorted_names.ts";

/** Folders whose presence makes a folder under `repositories/` a repository. */
export const REPOSITORY_MARKERS: ReadonlySet<string> = new Set([
  "_layers",
  "_manifests",
  "_uploads",
]);
/** Listings of the folders ahead on the page started at once (object stores answer slowly). */
const LOOKAHEAD = 16;

/**
 * Children of a folder below `repositories/` (`""` is `repositories/` itself), sorted in
 * code-unit order, or `undefined` when it is not a folder. A lister may hand back the same
 * (read-only) array while the folder is unchanged.
 */
export type SortedLister = (dir: string) => Promise<readonly string[] | undefined>;

/** Walks the repository tree in name order. */
export class RepositoryWalk {
  readonly #list: SortedLister;
  /** Sort keys of a listing, by the listing's identity (kept as long as the driver keeps it). */
  readonly #keys = new WeakMap<readonly string[], string[]>();

  /** A walk over the folders `list` gives. */
  constructor(list: SortedLister) {
    this.#list = list;
  }

  /** Up to `limit` repository names sorted after `last`. */
  async page(last: string | undefined, limit: number): Promise<string[]> {
    const names: string[] = [];
    if (limit <= 0) return names;
    for await (const name of this.after(last)) {
      names.push(name);
      if (names.length >= limit) break;
    }
    return names;
  }

  /** Repository names sorted after `last`, found as they are read (stop early to save work). */
  async *after(last?: string): AsyncGenerator<string> {
    const root = await this.#list("");
    if (root) yield* this.#folder("", root, last);
  }

  async *#folder(
    dir: string,
    children: readonly string[],
    last: string | undefined,
  ): AsyncGenerator<string> {
    const keys = this.#keysOf(children);
    const base = dir === "" ? "" : `${dir}/`;
    const pending = new Map<string, Promise<readonly string[] | undefined>>();
    const listing = (child: string) => {
      let promise = pending.get(child);
      if (!promise) {
        promise = this.#list(base + child);
        // Read ahead may go unused when the caller stops: never an unhandled rejection.
        promise.catch(() => {});
        pending.set(child, promise);
      }
      return promise;
    };
    let ahead = 0;
    for (let at = last === undefined ? 0 : firstNeeded(keys, base, last); at < keys.length; at++) {
      for (ahead = Math.max(ahead, at); ahead < Math.min(keys.length, at + LOOKAHEAD); ahead++) {
        const key = keys[ahead]!;
        if (!key.endsWith("/")) listing(key);
      }
      const key = keys[at]!;
      if (key.endsWith("/")) {
        const child = key.slice(0, -1);
        const below = await listing(child);
        pending.delete(child);
        // Most repositories hold nothing but their marker folders: no walk below them.
        if (below && this.#keysOf(below).length > 0) yield* this.#folder(base + child, below, last);
      } else {
        const own = await listing(key);
        if (own && hasMarker(own)) yield base + key;
      }
    }
  }

  /** `c` and `c/` for every child that can be part of a repository name, sorted. */
  #keysOf(children: readonly string[]): string[] {
    let keys = this.#keys.get(children);
    if (!keys) {
      keys = [];
      for (const child of children) {
        if (isValidName(child)) keys.push(child, `${child}/`);
      }
      keys.sort(compare);
      this.#keys.set(children, keys);
    }
    return keys;
  }
}

/**
 * Index of the first key whose names are not all at or before `last`: a folder key `c` when
 * `base + c` > `last`; a subtree key `c/` unless `last` is past every name starting with it.
 * Skipped keys come first in key order, so a binary search finds it.
 */
function firstNeeded(keys: readonly string[], base: string, last: string): number {
  const skipped = (key: string) => {
    const full = base + key;
    return key.endsWith("/") ? last >= full && !last.startsWith(full) : full <= last;
  };
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (skipped(keys[mid]!)) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Whether a sorted listing holds a marker folder (a binary search each: listings can be long). */
function hasMarker(sorted: readonly string[]): boolean {
  for (const marker of REPOSITORY_MARKERS) {
    const at = upperBound(sorted, marker) - 1;
    if (at >= 0 && sorted[at] === marker) return true;
  }
  return false;
}

/** Plain code-unit order (byte order for the ASCII names repositories have). */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
