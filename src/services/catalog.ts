/**
 * The catalog: repository names, sorted, one page at a time, read from the store's index (never a
 * walk of the tree), filtered to what the caller may see.
 *
 * @module
 */
import type { CatalogView } from "../auth/access_control.ts";
import type { Store } from "../storage/store.ts";
import type { Page } from "./tags.ts";

/** The repositories of a registry. */
export class CatalogService {
  readonly #store: Store;

  /** The catalog over `store`. */
  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Up to `limit` repository names sorted after `last` that `view` shows. Only the view's name
   * ranges are read, batch by batch, until the page is full: the cost follows the page.
   */
  async list(limit: number, last: string | undefined, view: CatalogView) {
    const want = limit + 1;
    const found: string[] = [];
    for (const prefix of view.prefixes) {
      if (limit <= 0 || found.length >= want) break;
      const start = prefix === "" ? undefined : justBefore(prefix);
      let after = last !== undefined && (start === undefined || last > start) ? last : start;
      while (found.length < want) {
        const batch = await this.#store.repositoryPage(after, want);
        const inRange = batch.filter((name) => name.startsWith(prefix));
        found.push(...inRange.filter((name) => view.visible(name)));
        if (inRange.length < batch.length || batch.length < want) break;
        after = batch[batch.length - 1];
      }
    }
    return { entries: found.slice(0, limit), more: found.length > limit } satisfies Page;
  }
}

/** A key sorted just before every name that starts with `prefix` (and after every smaller one). */
function justBefore(prefix: string): string {
  const lastChar = prefix.charCodeAt(prefix.length - 1);
  return `${prefix.slice(0, -1)}${String.fromCharCode(lastChar - 1)}\uffff`;
}
