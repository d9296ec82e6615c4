/**
 * The catalog: repository names, sorted, one page at a time, read from the store's walk of the
 * repository tree from the `last` marker (never an index of everything), filtered to what the
 * caller may see and, for the web UI, by a prefix or a substring.
 *
 * @module
 */
import type { CatalogView } from "../auth/access_control.ts";
import type { Page, Store } from "../storage/store.ts";

/** What to keep of the catalog besides the caller's view. */
export interface CatalogQuery {
  /** Only names starting with this; read from where they start, so the cost follows the page. */
  prefix?: string;
  /** Only names containing this text; every name in order is read until the page is full. */
  contains?: string;
  /**
   * Most names read (and tested against `contains` and the view) before a short page is
   * returned with `scannedTo` set. Default: no limit.
   */
  scanLimit?: number;
}

/** A catalog page. */
export interface CatalogPage extends Page {
  /**
   * Set when `scanLimit` names were read before the page was full: the last name read; the next
   * page starts after it (pass it as `last`), and `more` is `true`.
   */
  scannedTo?: string;
}

/** Most names read from the store in one page while filling a catalog page. */
const MAX_STEP = 1000;

/** The repositories of a registry. */
export class CatalogService {
  readonly #store: Store;

  /** The catalog over `store`. */
  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Up to `limit` repository names sorted after `last` that `view` shows and `query` keeps. Only
   * the ranges of names the view and the prefix allow are read, from `last` on, until the page is
   * full: without `contains` the cost follows the page, not what is stored.
   */
  async list(
    limit: number,
    last: string | undefined,
    view: CatalogView,
    query: CatalogQuery = {},
  ): Promise<CatalogPage> {
    const want = limit + 1;
    const found: string[] = [];
    const { contains, scanLimit = Infinity } = query;
    let scanned = 0;
    for (const prefix of ranges(view.prefixes, query.prefix ?? "")) {
      if (limit <= 0 || found.length >= want) break;
      const start = prefix === "" ? undefined : justBefore(prefix);
      const after = last !== undefined && (start === undefined || last > start) ? last : start;
      // Read in pages: what the answer still needs (all of it when nothing is filtered out), or
      // when names were filtered out, twice the last page, up to MAX_STEP.
      let from = after;
      let step = 0;
      let more = true;
      while (more && found.length < want) {
        step = Math.min(
          Math.max(want - found.length, Math.min(step * 2, MAX_STEP)),
          scanLimit - scanned,
        );
        const names = await this.#store.repositoryPage(from, step);
        more = names.length === step;
        for (const name of names) {
          if (!name.startsWith(prefix)) {
            more = false;
            break;
          }
          if ((contains === undefined || name.includes(contains)) && view.visible(name)) {
            found.push(name);
            if (found.length >= want) break;
          }
          if (++scanned >= scanLimit) {
            return { entries: found.slice(0, limit), more: true, scannedTo: name };
          }
        }
        from = names[names.length - 1];
      }
    }
    return { entries: found.slice(0, limit), more: found.length > limit };
  }
}

/** The name ranges (as prefixes) inside both a view's prefixes and `prefix`, in order. */
function ranges(prefixes: readonly string[], prefix: string): string[] {
  const out: string[] = [];
  for (const allowed of prefixes) {
    if (prefix.startsWith(allowed)) out.push(prefix);
    else if (allowed.startsWith(prefix)) out.push(allowed);
  }
  return [...new Set(out)];
}

/** A key sorted just before every name that starts with `prefix` (and after every smaller one). */
function justBefore(prefix: string): string {
  const lastChar = prefix.charCodeAt(prefix.length - 1);
  return `${prefix.slice(0, -1)}${String.fromCharCode(lastChar - 1)}\uffff`;
}
