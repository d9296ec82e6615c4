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

/** A listing, or its promise (a lister answers at once when it can: a kept listing). */
type Listing = readonly string[] | undefined | Promise<readonly string[] | undefined>;

/**
 * Children of a folder below `repositories/` (`""` is `repositories/` itself), sorted in
 * code-unit order, or `undefined` when it is not a folder. A lister may hand back the same
 * (read-only) array while the folder is unchanged, and may answer without a promise.
 */
export type SortedLister = (dir: string) => Listing;

/** Names read per step of {@link RepositoryWalk.after}. */
const STEP = 100;

/** Walks the repository tree in name order. */
export class RepositoryWalk {
  readonly #list: SortedLister;
  /** Sort keys of a listing, by the listing's identity (kept as long as the driver keeps it). */
  readonly #keys = new WeakMap<readonly string[], string[]>();

  /** A walk over the folders `list` gives. */
  constructor(list: SortedLister) {
    this.#list = list;
  }

  /**
   * Up to `limit` repository names sorted after `last`. Names are gathered into one array (no
   * generator step or promise per name: a page of 1,000 walks 1,000 folders).
   */
  async page(last: string | undefined, limit: number): Promise<string[]> {
    const names: string[] = [];
    if (limit <= 0) return names;
    const root = await this.#list("");
    if (root) await this.#folder("", root, last, names, limit);
    return names;
  }

  /** Repository names sorted after `last`, read a page at a time (stop early to save work). */
  async *after(last?: string): AsyncGenerator<string> {
    let from = last;
    while (true) {
      const names = await this.page(from, STEP);
      yield* names;
      if (names.length < STEP) return;
      from = names[names.length - 1];
    }
  }

  /** Adds the repositories at and below folder `dir` sorted after `last` to `out`, up to `limit`. */
  async #folder(
    dir: string,
    children: readonly string[],
    last: string | undefined,
    out: string[],
    limit: number,
  ): Promise<void> {
    const keys = this.#keysOf(children);
    const base = dir === "" ? "" : `${dir}/`;
    // Listings asked for ahead (object stores answer slowly), and a folder's own listing kept
    // from its key `c` for its key `c/`. A lister that answers at once (a kept or small folder)
    // is not asked ahead.
    const pending = new Map<string, Listing>();
    const own = (child: string): Listing => {
      if (pending.has(child)) return pending.get(child);
      const listing = this.#list(base + child);
      pending.set(child, listing);
      return listing;
    };
    const below = (child: string): Listing => {
      if (!pending.has(child)) return this.#list(base + child);
      const listing = pending.get(child);
      pending.delete(child);
      return listing;
    };
    let prefetch = true;
    let ahead = 0;
    for (let at = last === undefined ? 0 : firstNeeded(keys, base, last); at < keys.length; at++) {
      for (
        ahead = Math.max(ahead, at);
        prefetch && ahead < Math.min(keys.length, at + LOOKAHEAD);
        ahead++
      ) {
        const key = keys[ahead]!;
        if (key.endsWith("/") || pending.has(key)) continue;
        const listing = own(key);
        if (!(listing instanceof Promise)) prefetch = false;
        // Read ahead may go unused when the page fills: never an unhandled rejection.
        else listing.catch(() => {});
      }
      const key = keys[at]!;
      if (key.endsWith("/")) {
        const child = key.slice(0, -1);
        let children = below(child);
        if (children instanceof Promise) children = await children;
        // Most repositories hold nothing but their marker folders: no walk below them.
        if (children && this.#keysOf(children).length > 0) {
          await this.#folder(base + child, children, last, out, limit);
          if (out.length >= limit) return;
        }
      } else {
        let listing = own(key);
        if (listing instanceof Promise) listing = await listing;
        if (listing && hasMarker(listing)) {
          out.push(base + key);
          if (out.length >= limit) return;
        }
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
